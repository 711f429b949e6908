"""The manifest file, schema ``synmix.manifest`` version 2, and its reader (what ``train`` imports).

A manifest is one JSON object: ``schema``/``schema_version``; ``train`` (the training set as one
COCO file ``<name>.coco.json`` beside the manifest, its sha256, frame and instance counts);
``sources`` (per source the converted COCO file and its sha256, the chosen frames and the pruning
applied); ``eval`` (evaluation sets, never pruned, each with the fingerprint ``gt_files`` of its
Cityscapes-style ground truth, new in version 2); ``schedule`` (a hint: batch, epochs,
iterations, LR steps, base LR, momentum); plus ``seed``, ``command``, ``tool_version`` and
``created_at``. Every path in it is relative to the manifest's folder. The full field list is in
``manifests/README.md``.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from curate.coco import sha256_file
from curate.errors import CurateError
from curate.fileio import read_versioned_json
from curate.sources.cityscapes import INSTANCE_SUFFIX

MANIFEST_SCHEMA = "synmix.manifest"
#: 2: every evaluation set records ``gt_files``, the fingerprint of its ground truth (1 had none).
MANIFEST_SCHEMA_VERSION = 2
#: The ground-truth files of an evaluation set, relative to its gt_dir: what the official
#: Cityscapes evaluator reads (``{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png``).
GT_PATTERN = "*/*" + INSTANCE_SUFFIX
#: hex digits of each file's sha256 kept in the fingerprint (64 bits: enough to see a change)
GT_FILE_HASH_CHARS = 16


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
    #: the fingerprint of gt_dir when the manifest was made (:func:`gt_fingerprint`); None without gt_dir
    gt_files: dict | None = None


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
                                    resolve(e.get("gt_dir")), resolve(e.get("image_dir")), _gt_files_field(e))
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
        for eval_set in manifest.eval_sets:
            if eval_set.gt_dir is not None:
                verify_gt_files(eval_set, path)
    return manifest


# ---------------------------------------------------------------- ground-truth fingerprint


def _gt_files_field(entry: dict) -> dict | None:
    """``eval[].gt_files``: required (version 2), null exactly when gt_dir is null."""
    gt_files = entry["gt_files"]
    if entry.get("gt_dir") is None:
        if gt_files is not None:
            raise ValueError(f"eval {entry.get('name')}: gt_files without gt_dir")
        return None
    if not (isinstance(gt_files, dict) and isinstance(gt_files.get("files"), list)
            and all(isinstance(f, str) for f in gt_files["files"]) and isinstance(gt_files.get("sha256"), str)):
        raise ValueError(f"eval {entry.get('name')}: gt_files must hold files (strings) and sha256")
    return gt_files


def _file_entry(gt_dir: Path, file: Path) -> str:
    """``"{city}/{name}_gtFine_instanceIds.png {bytes} {sha256 prefix}"``: one line per file."""
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:GT_FILE_HASH_CHARS]
    return f"{file.relative_to(gt_dir).as_posix()} {len(data)} {digest}"


def gt_fingerprint(gt_dir: Path) -> dict:
    """What the official evaluator will read in ``gt_dir``: every ``GT_PATTERN`` file by relative
    path, size and content hash (one line each, sorted), plus one sha256 over those lines.

    Content, not modification times: a copy of the data (``cp -r``, a new machine) keeps its
    fingerprint; only a changed, added or removed file changes it.
    """
    gt_dir = Path(gt_dir)
    files = sorted(gt_dir.glob(GT_PATTERN))
    try:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            entries = list(pool.map(lambda f: _file_entry(gt_dir, f), files))
    except OSError as err:
        raise CurateError(err.filename or gt_dir, f"cannot read ground truth ({err.strerror})") from None
    return {
        "pattern": GT_PATTERN,
        "count": len(entries),
        "bytes": sum(int(e.split(" ")[1]) for e in entries),
        "sha256": hashlib.sha256("\n".join(entries).encode()).hexdigest(),
        "files": entries,
    }


def verify_gt_files(eval_set: ManifestEval, manifest_path: Path) -> None:
    """The ground truth of ``eval_set`` must be the files the manifest recorded: name the first file
    that was removed, changed or added since (and how many more differ)."""
    gt_dir = eval_set.gt_dir
    if not gt_dir.is_dir():
        raise CurateError(gt_dir, f"gt_dir of evaluation set {eval_set.name} not found (listed in {manifest_path})")
    now = gt_fingerprint(gt_dir)
    recorded = eval_set.gt_files
    if now["sha256"] == recorded["sha256"] and now["files"] == recorded["files"]:
        return
    old = {line.rsplit(" ", 2)[0]: line for line in recorded["files"]}
    new = {line.rsplit(" ", 2)[0]: line for line in now["files"]}
    removed = sorted(set(old) - set(new))
    changed = sorted(rel for rel in set(old) & set(new) if old[rel] != new[rel])
    added = sorted(set(new) - set(old))
    differ = len(removed) + len(changed) + len(added)
    more = f" (and {differ - 1} more {'file differs' if differ == 2 else 'files differ'})" if differ > 1 else ""
    remedy = f"the ground truth of evaluation set {eval_set.name} changed since {manifest_path} was made{more}; " \
             "rebuild the manifest with curate manifest"
    if removed:
        raise CurateError(gt_dir / removed[0], f"file missing: {remedy}")
    if changed:
        raise CurateError(gt_dir / changed[0], f"size or content differs from the one recorded: {remedy}")
    if added:
        raise CurateError(gt_dir / added[0], f"file not recorded in the manifest: {remedy}")
    raise CurateError(manifest_path, f"gt_files of evaluation set {eval_set.name} is inconsistent (its sha256 does "
                                     "not match its file list): rebuild the manifest with curate manifest")
