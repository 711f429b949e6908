"""The manifest file, schema ``synmix.manifest`` version 1, and its reader (what ``train`` imports).

A manifest is one JSON object: ``schema``/``schema_version``; ``train`` (the training set as one
COCO file ``<name>.coco.json`` beside the manifest, its sha256, frame and instance counts);
``sources`` (per source the converted COCO file and its sha256, the chosen frames and the pruning
applied); ``eval`` (evaluation sets, never pruned); ``schedule`` (a hint: batch, epochs,
iterations, LR steps, base LR, momentum); plus ``seed``, ``command``, ``tool_version`` and
``created_at``. Every path in it is relative to the manifest's folder. The full field list is in
``manifests/README.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from curate.coco import sha256_file
from curate.errors import CurateError
from curate.fileio import read_versioned_json

MANIFEST_SCHEMA = "synmix.manifest"
MANIFEST_SCHEMA_VERSION = 1


def mix_coco_path(manifest_path: Path) -> Path:
    """``manifests/mix.json`` → ``manifests/mix.coco.json``."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(manifest_path.stem + ".coco.json")


@dataclass
class ManifestSource:
    name: str
    kind: str
    coco: Path
    sha256: str
    image_root: Path
    split: str
    frames: list


@dataclass
class ManifestEval:
    name: str
    coco: Path
    sha256: str
    image_root: Path
    gt_dir: Path | None
    image_dir: Path | None


@dataclass
class Manifest:
    """A checked manifest; every path absolute (resolved against the manifest's folder)."""

    path: Path
    data: dict
    train_coco: Path
    train_sha256: str
    train_image_root: Path
    frames: int
    sources: dict[str, ManifestSource] = field(default_factory=dict)
    eval_sets: list[ManifestEval] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)


def load_manifest(path: Path, verify: bool = True) -> Manifest:
    """Read a manifest, check schema and version and (``verify``) the sha256 of every file it names."""
    path = Path(os.path.abspath(path))
    data = read_versioned_json(path, MANIFEST_SCHEMA, MANIFEST_SCHEMA_VERSION, "manifest",
                               "rebuild it with curate manifest")
    base = path.parent

    def resolve(value) -> Path | None:
        return None if value is None else Path(os.path.normpath(base / value))

    try:
        train = data["train"]
        manifest = Manifest(
            path=path, data=data,
            train_coco=resolve(train["coco"]), train_sha256=str(train["sha256"]),
            train_image_root=resolve(train.get("image_root", ".")), frames=int(train["frames"]),
            sources={name: ManifestSource(name, str(s["kind"]), resolve(s["coco"]), str(s["sha256"]),
                                          resolve(s["image_root"]), str(s["split"]), list(s["frames"]))
                     for name, s in data["sources"].items()},
            eval_sets=[ManifestEval(str(e["name"]), resolve(e["coco"]), str(e["sha256"]), resolve(e["image_root"]),
                                    resolve(e.get("gt_dir")), resolve(e.get("image_dir")))
                       for e in data["eval"]],
            schedule=dict(data["schedule"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CurateError(path, f"manifest field missing or malformed ({type(err).__name__}: {err})") from None
    if verify:
        files = [(manifest.train_coco, manifest.train_sha256)]
        files += [(s.coco, s.sha256) for s in manifest.sources.values()]
        files += [(e.coco, e.sha256) for e in manifest.eval_sets]
        for file, expected in files:
            if not file.is_file():
                raise CurateError(file, f"file not found (listed in {path})")
            if sha256_file(file) != expected:
                raise CurateError(file, f"sha256 differs from the one recorded in {path}: the file changed "
                                        "since the manifest was made (rebuild the manifest)")
    return manifest
