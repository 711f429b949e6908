"""``curate convert``: a source's label maps → COCO instances (+ report), in parallel and resumably.

The per-frame work belongs to the source modules (:mod:`curate.sources`); this package is only
the driver (:mod:`curate.convert.driver`: shards, backends, resume, merge, report) and its Dask
backend (:mod:`curate.convert.dask_backend`).
"""

from curate.convert.defaults import DEFAULT_SHARD_SIZE

__all__ = ["DEFAULT_SHARD_SIZE", "ConvertJob", "ConvertResult", "ShardSpec", "convert", "run_shard"]


def __getattr__(name: str):
    # The driver (OpenCV, numpy, joblib) loads on first use, not when the CLI reads the defaults.
    if name in __all__:
        from curate.convert import driver

        return getattr(driver, name)
    raise AttributeError(name)
