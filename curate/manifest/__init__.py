"""``curate manifest``: seeded real + synthetic training mixes with per-class pruning.

A manifest (schema in ``manifests/README.md``) says which frames of which converted COCO files
form a training set, how they were pruned, which sets evaluate it and a schedule hint. Beside it,
``<name>.coco.json`` is that training set as one COCO file: pruned, mixed, ids renumbered, and
``file_name`` relative to the manifest's folder (so the folder is the image root of the mix).

- :mod:`~curate.manifest.schema`: the file's schema and its reader, ``load_manifest`` (what ``train`` uses);
- :mod:`~curate.manifest.plan`: options → the manifests to write (no file read);
- :mod:`~curate.manifest.draws`: the seeded, nested frame draws;
- :mod:`~curate.manifest.build`: read the sources, prune, draw, write (``make_manifests``).

The schema's names are imported here at once; ``plan`` and ``build`` (numpy, the COCO reader,
pruning) only when one of their names is first used, so reading a manifest stays light.
"""

from __future__ import annotations

import importlib

from curate.manifest.schema import (
    MANIFEST_SCHEMA,
    MANIFEST_SCHEMA_VERSION,
    Manifest,
    ManifestEval,
    ManifestSource,
    load_manifest,
    mix_coco_path,
)

_LAZY = {
    "ManifestRequest": "plan",
    "MixSpec": "plan",
    "command_line": "plan",
    "plan_mixes": "plan",
    "make_manifests": "build",
}

__all__ = [
    "MANIFEST_SCHEMA", "MANIFEST_SCHEMA_VERSION", "Manifest", "ManifestEval", "ManifestSource",
    "load_manifest", "mix_coco_path", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
