"""``curate convert``: Synscapes/Cityscapes label maps → harmonized COCO instances (+ report).

* :mod:`curate.convert.frames` — pure per-frame functions (arrays in, COCO records out);
* :mod:`curate.convert.gtfine` — Cityscapes-style ground truth files for Synscapes (``--gtfine``);
* :mod:`curate.convert.driver` — shards, parallel backends, resume, merge and report.
"""

from curate.convert.driver import (
    DEFAULT_SHARD_SIZE,
    ConvertJob,
    ConvertResult,
    ShardSpec,
    convert,
    run_shard,
    run_tasks,
)
from curate.convert.frames import (
    ANNOTATION_ID_STRIDE,
    FrameResult,
    convert_cityscapes_frame,
    convert_synscapes_frame,
)
from curate.convert.gtfine import gtfine_paths

__all__ = [
    "ANNOTATION_ID_STRIDE",
    "DEFAULT_SHARD_SIZE",
    "ConvertJob",
    "ConvertResult",
    "FrameResult",
    "ShardSpec",
    "convert",
    "convert_cityscapes_frame",
    "convert_synscapes_frame",
    "gtfine_paths",
    "run_shard",
    "run_tasks",
]
