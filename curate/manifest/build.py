"""The build side of ``curate manifest``: read the sources, prune, draw frames, write each mix.

Order of operations, for each source: pruning is planned over the **whole** source split (the
percentile is a property of the data set, docs/method.md §4.2), then frames are drawn (seeded,
nested: :mod:`curate.manifest.draws`), then the chosen frames keep their annotations that survive
pruning. Everything is checked before anything is written; then each mix COCO file is written
before the manifest that records its sha256.
"""

from __future__ import annotations

import functools
import os
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate import __version__, sources
from curate.coco import (
    CocoColumns,
    CocoRecords,
    CocoWriter,
    coco_files,
    coco_path,
    image_root_of,
    read_coco_columns,
    read_coco_columns_and_bytes,
)
from curate.errors import CurateError
from curate.fileio import write_json_atomic
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID, coco_categories
from curate.manifest.draws import draw_frames
from curate.manifest.plan import (
    KINDS,
    ManifestRequest,
    MixSpec,
    budget_frames,
    budget_synthetic,
    command_line,
    plan_mixes,
)
from curate.manifest.schema import MANIFEST_SCHEMA, MANIFEST_SCHEMA_VERSION, gt_fingerprint, mix_coco_path
from curate.progress import progress_bar
from curate.prune import PrunePlan, plan_pruning, uniform_fractions
from curate.schedule import schedule_hint
from curate.thresholds import check_thresholds_source

EVAL_SPLIT = "val"


@dataclass
class LoadedSource:
    kind: str
    source: str
    split: str
    path: Path
    records: CocoRecords  # images as dicts, any annotation's whole record on demand
    columns: CocoColumns
    image_root: Path
    frame_keys: list  # per image, in image-id order
    image_order: np.ndarray  # position in records.images of the i-th image by id
    ann_bounds: np.ndarray  # annotations of image i: ann_order[bounds[i]:bounds[i+1]]
    ann_order: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.frame_keys)


# ---------------------------------------------------------------- loading sources


def load_source(out: Path, kind: str, split: str, source: str) -> LoadedSource:
    """Columns as ``curate stats`` reads them (Arrow), plus the records of the file's bytes
    (:class:`curate.coco.CocoRecords`): no annotation becomes a Python object until it is picked."""
    path = coco_path(out, source, split)
    if not path.is_file():
        raise CurateError(path, f"file not found (the {kind} source; run curate convert for {source} {split})")
    columns, data = read_coco_columns_and_bytes(path, source, split, fields=_FIELDS)
    records = CocoRecords(path, data, columns)
    del data
    image_root = image_root_of(path, columns.info)
    images = records.images
    ids = np.array([image["id"] for image in images], dtype=np.int64)
    image_order = np.argsort(ids, kind="stable")
    frame_keys = [_frame_key(images[i]) for i in image_order]
    ann_order = np.argsort(columns.ann_image_index, kind="stable")
    ann_bounds = np.searchsorted(columns.ann_image_index[ann_order], np.arange(len(ids) + 1))
    return LoadedSource(kind, source, split, path, records, columns, image_root, frame_keys,
                        image_order, ann_bounds, ann_order)


#: The annotation fields a manifest reads into columns (prune, draw, count); the rest is copied as text.
_FIELDS = ("id", "image_id", "category_id", "area", "iscrowd")


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _frame_key(image: dict):
    return image.get("frame", image["id"])


def _resolve_counts(spec: MixSpec, loaded: dict[str, LoadedSource],
                    request: ManifestRequest) -> tuple[dict[str, int], dict | None]:
    """Frames of each kind for one mix, and the ``budget`` record of a ``--budget`` mix (else None).

    A budget asks for at most the synthetic frames there are: one that covers more (the study's 150k
    iterations: 24,000 frames, 21,025 synthetic, of Synscapes' 20,000) takes all of them and says so."""
    counts: dict[str, int] = {}
    for kind in KINDS:
        wanted = spec.counts[kind]
        if wanted == "budget":
            continue
        available = loaded[kind].frames if kind in loaded else 0
        count = available if wanted == "all" else int(wanted)
        if count > available:
            path = coco_path(request.out, request.source_of(kind), request.split_of(kind))
            raise CurateError(path, f"asked for {count} {kind} frames; the file has {available}")
        counts[kind] = count
    budget = None
    if spec.counts["synthetic"] == "budget":
        asked = budget_synthetic(request.budget, request.batch, request.epochs, counts["real"])
        available = loaded["synthetic"].frames if "synthetic" in loaded else 0
        counts["synthetic"] = min(asked, available)
        budget = {"iterations": request.budget, "batch": request.batch, "epochs": request.epochs,
                  "frames": budget_frames(request.budget, request.batch, request.epochs),
                  "synthetic_asked": asked, "synthetic_available": available,
                  "synthetic_taken": counts["synthetic"], "capped": asked > available}
    if sum(counts.values()) == 0:
        raise CurateError(spec.output, "the mix would hold no frames")
    return counts, budget


# ---------------------------------------------------------------- evaluation sets


def parse_eval(spec: str | None, out: Path) -> list[tuple[str, str]]:
    """``cityscapes:val,synscapes:val`` → [(source, split)]; default: every ``*_val.json`` in OUT."""
    if spec is None:
        return [(source, split) for source, split, _ in coco_files(out) if split == EVAL_SPLIT]
    if spec.strip().lower() in ("", "none"):
        return []
    pairs = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        source, sep, split = item.partition(":")
        if not sep or not split or source not in sources.NAMES:
            raise CurateError(None, f"--eval {item}: expected source:split with source one of "
                                    f"{', '.join(sources.NAMES)}")
        if (source, split) in pairs:
            raise CurateError(None, f"--eval names {item} twice")
        pairs.append((source, split))
    return pairs


@dataclass
class EvalSource:
    source: str
    split: str
    path: Path
    sha256: str
    image_root: Path
    gt_dir: Path | None
    image_dir: Path | None
    frames: int
    gt_files: dict | None = None  # schema.gt_fingerprint of gt_dir


def load_eval(out: Path, source: str, split: str) -> EvalSource:
    path = coco_path(out, source, split)
    if not path.is_file():
        raise CurateError(path, f"file not found (evaluation set {source}:{split}; run curate convert)")
    columns = read_coco_columns(path, source, split)
    image_root = image_root_of(path, columns.info)
    # Cityscapes-style ground truth for the official evaluator: the Cityscapes root's own folders,
    # or for Synscapes the folders convert --gtfine wrote into OUT.
    where = sources.get(source).cityscapes_gt
    base = {"input": image_root, "output": Path(os.path.abspath(out))}.get(where)
    gt_dir = base / "gtFine" / split if base is not None else None
    image_dir = base / "leftImg8bit" / split if base is not None else None
    gt_dir = gt_dir if gt_dir is not None and gt_dir.is_dir() else None
    return EvalSource(source, split, path, columns.sha256, image_root, gt_dir,
                      image_dir if image_dir is not None and image_dir.is_dir() else None,
                      len(columns.image_id),
                      # what the official evaluator will read, so that train can tell it changed since
                      gt_fingerprint(gt_dir) if gt_dir is not None else None)


# ---------------------------------------------------------------- building one mix


def _relative(path: Path | None, folder: Path) -> str | None:
    if path is None:
        return None
    return Path(os.path.relpath(os.path.abspath(path), folder)).as_posix()


def _class_counts(category_id: np.ndarray) -> dict[str, int]:
    return {name: int((category_id == COCO_ID_BY_LABEL_ID[LABEL_ID[name]]).sum()) for name in CLASS_NAMES}


@dataclass
class _Part:
    """The chosen frames of one source and their kept annotations."""

    source: LoadedSource
    chosen: list[int]  # image positions (in id order)
    annotations: np.ndarray  # annotation indices of the chosen frames, image by image
    kept: np.ndarray  # bool per entry of ``annotations``
    plan: PrunePlan | None
    fractions: dict[str, float]

    @functools.cached_property
    def is_instance(self) -> np.ndarray:
        """Per entry of ``annotations``: not a crowd region."""
        return self.source.columns.numpy("iscrowd")[self.annotations] == 0

    @functools.cached_property
    def frames_trained(self) -> int:
        """Chosen frames with at least one kept instance: those Detectron2 trains on
        (``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, on by default, drops the others)."""
        return _frames_with(self, self.is_instance & self.kept)


def _select(source: LoadedSource, count: int, seed: int, plan: PrunePlan | None,
            fractions: dict[str, float]) -> _Part:
    chosen = draw_frames(source.frame_keys, count, seed, source.source)
    bounds = source.ann_bounds
    pieces = [source.ann_order[bounds[i]:bounds[i + 1]] for i in chosen]
    annotations = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    kept = ~plan.removed[annotations] if plan is not None else np.ones(len(annotations), bool)
    return _Part(source, chosen, annotations, kept, plan, fractions)


def build_mix_coco(parts: list[_Part], manifest_dir: Path, manifest_name: str) -> dict:
    """The training set as one COCO object: image and annotation ids renumbered from 1. Its
    ``annotations`` is a generator of their JSON text in batches (:meth:`CocoRecords.annotation_texts`)
    for :meth:`CocoWriter.add_annotation_text`; ``category_id`` and ``crowd`` are their columns."""
    images, picked, new_image_ids = [], [], []
    for part in parts:
        src = part.source
        root = _relative(src.image_root, manifest_dir)
        new_image_id = {}
        for i in part.chosen:
            original = src.records.images[src.image_order[i]]
            image = dict(original)
            image["id"] = len(images) + 1
            image["file_name"] = posixpath.join(root, original["file_name"])
            image.setdefault("source", src.source)
            image.setdefault("split", src.split)
            image["source_image_id"] = original["id"]
            new_image_id[original["id"]] = image["id"]
            images.append(image)
        indices = part.annotations[part.kept]
        picked.append((src, indices))
        old, new = (np.fromiter(ids, np.int64, len(new_image_id)) for ids in (new_image_id, new_image_id.values()))
        order = np.argsort(old)
        new_image_ids.append(new[order][np.searchsorted(old[order], src.columns.numpy("image_id")[indices])])

    def annotations():
        new_id = 1
        for (src, indices), image_ids in zip(picked, new_image_ids):
            yield from src.records.annotation_texts(indices, image_ids, new_id)
            new_id += len(indices)

    return {
        "info": {
            "description": "synmix training mix (pruned real + synthetic frames)",
            "version": __version__,
            "manifest": manifest_name,
            # file_name is relative to the folder of this file and of its manifest.
            "image_root": ".",
        },
        "licenses": [],
        "categories": coco_categories(),
        "images": images,
        "annotations": annotations(),
        "category_id": np.concatenate([np.zeros(0, np.int64)] + [src.columns.numpy("category_id")[indices]
                                                                 for src, indices in picked]),
        "crowd": np.concatenate([np.zeros(0, bool)] + [src.columns.numpy("iscrowd")[indices] != 0
                                                        for src, indices in picked]),
    }


def _frames_with(part: _Part, mask: np.ndarray) -> int:
    """Chosen frames of ``part`` holding at least one annotation where ``mask`` (per entry of ``annotations``)."""
    src = part.source
    image_of = src.columns.ann_image_index[part.annotations]
    return len(np.unique(image_of[mask]))


def _source_entry(part: _Part, manifest_dir: Path, prune_spec: str, pruned: bool) -> dict:
    src = part.source
    category = src.columns.numpy("category_id")[part.annotations]
    is_instance = part.is_instance
    with_instances_before = _frames_with(part, is_instance)
    with_instances_after = part.frames_trained
    return {
        "kind": src.kind,
        "coco": _relative(src.path, manifest_dir),
        "sha256": src.columns.sha256,
        "image_root": _relative(src.image_root, manifest_dir),
        "split": src.split,
        "frames_available": src.frames,
        "frames_count": len(part.chosen),
        "frames": [src.frame_keys[i] for i in part.chosen],
        "pruning": {
            "applied": pruned,
            "spec": prune_spec if pruned else "none",
            "scope": "per class over the whole source split, before frame sampling; removes the "
                     "floor(p*n) smallest instances by (area, annotation id); crowd regions kept",
            "fractions": dict(part.fractions) if pruned else uniform_fractions(0.0),
            "classes": part.plan.classes if part.plan is not None else None,
        },
        "instances_before": _class_counts(category[is_instance]),
        "instances_after": _class_counts(category[is_instance & part.kept]),
        "crowd_regions": int((~is_instance).sum()),
        # Detectron2 drops frames without an instance (crowd regions alone do not count) from training
        "frames_without_instances": len(part.chosen) - with_instances_after,
        "frames_emptied_by_pruning": with_instances_before - with_instances_after,
    }


def _eval_entry(ev: EvalSource, manifest_dir: Path) -> dict:
    return {
        "name": f"{ev.source}_{ev.split}",
        "source": ev.source,
        "split": ev.split,
        "coco": _relative(ev.path, manifest_dir),
        "sha256": ev.sha256,
        "image_root": _relative(ev.image_root, manifest_dir),
        "gt_dir": _relative(ev.gt_dir, manifest_dir),
        "image_dir": _relative(ev.image_dir, manifest_dir),
        "frames": ev.frames,
        "gt_files": ev.gt_files,
    }


def created_at_now() -> str:
    """UTC time, or SOURCE_DATE_EPOCH when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(epoch) if epoch and epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def frames_trained(parts: list[_Part]) -> int:
    """Frames Detectron2 trains on, over every part (:attr:`_Part.frames_trained`)."""
    return sum(part.frames_trained for part in parts)


def build_manifest(spec: MixSpec, parts: list[_Part], mix: dict, mix_sha256: str, mix_name: str,
                   evals: list[EvalSource], request: ManifestRequest, command: str, created_at: str,
                   budget: dict | None = None) -> dict:
    manifest_dir = Path(os.path.abspath(spec.output.parent))
    category, crowd = mix["category_id"], mix["crowd"]
    frames = len(mix["images"])
    trained = frames_trained(parts)
    by_kind = {part.source.kind: len(part.chosen) for part in parts}
    return {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "tool_version": __version__,
        "created_at": created_at,
        "seed": request.seed,
        "command": command,
        "train": {
            "coco": mix_name,
            "sha256": mix_sha256,
            "image_root": ".",
            "frames": frames,
            "real_frames": by_kind.get("real", 0),
            "synthetic_frames": by_kind.get("synthetic", 0),
            # what Detectron2 trains on (it drops frames without an instance); the schedule hint counts these
            "frames_trained": trained,
            "frames_without_instances": frames - trained,
            "instances": int((~crowd).sum()),
            "instances_per_class": _class_counts(category[~crowd]),
            "crowd_regions": int(crowd.sum()),
        },
        "sources": {part.source.source: _source_entry(part, manifest_dir, spec.prune_spec,
                                                      part.plan is not None) for part in parts},
        "eval": [_eval_entry(ev, manifest_dir) for ev in evals],
        "schedule": schedule_hint(trained, request.batch, request.epochs),
        "sweep": spec.sweep,
        "budget": budget,
    }


# ---------------------------------------------------------------- the command


def make_manifests(request: ManifestRequest, command: str | None = None, created_at: str | None = None,
                   progress: bool | None = None) -> list[Path]:
    """Check everything, then write each mix COCO file and its manifest. Returns the manifest paths."""
    out = Path(request.out)
    if not out.is_dir():
        raise CurateError(out, "folder not found")
    specs = plan_mixes(request)
    needed = [kind for kind in KINDS if any(spec.counts[kind] != 0 for spec in specs)]
    # the largest file first: its parse is the peak of memory, with nothing else held yet
    by_size = sorted(needed, key=lambda kind: -_size(coco_path(out, request.source_of(kind), request.split_of(kind))))
    read = {kind: load_source(out, kind, request.split_of(kind), request.source_of(kind))
            for kind in progress_bar(by_size, desc="reading COCO", progress=progress, leave=False)}
    loaded = {kind: read[kind] for kind in needed}
    resolved = [_resolve_counts(spec, loaded, request) for spec in specs]
    if "synthetic" in loaded:
        synthetic = loaded["synthetic"]
        for spec in {s.prune_spec for s in specs}:
            if Path(spec).suffix == ".json":
                check_thresholds_source(Path(spec), synthetic.path, synthetic.columns.sha256)
    evals = [load_eval(out, source, split) for source, split in parse_eval(request.eval, out)]
    command = command or command_line(request)
    created_at = created_at or created_at_now()

    plans: dict[tuple, PrunePlan] = {}

    def plan_for(kind: str, fractions: dict[str, float]) -> PrunePlan | None:
        if kind == "real" and not request.prune_real:
            return None
        key = (kind, tuple(sorted(fractions.items())))
        if key not in plans:
            c = loaded[kind].columns
            plans[key] = plan_pruning(c.numpy("category_id"), c.numpy("area"), c.numpy("id"),
                                      c.numpy("iscrowd"), fractions)
        return plans[key]

    # every mix's frames, checked before anything is written: one left without an instance is an error
    mixes = []
    for spec, (count, budget) in zip(specs, resolved):
        parts = [_select(loaded[kind], count[kind], request.seed, plan_for(kind, spec.fractions), spec.fractions)
                 for kind in KINDS if kind in loaded]
        frames = sum(len(part.chosen) for part in parts)
        if frames_trained(parts) == 0:
            raise CurateError(spec.output, f"none of the mix's {frames} frames holds an instance after pruning "
                                           "(Detectron2 would train on nothing): prune less or take more frames")
        mixes.append((spec, parts, budget))

    written = []
    for spec, parts, budget in progress_bar(mixes, desc="writing manifests",
                                            progress=False if len(specs) < 2 else progress, leave=False):
        manifest_dir = Path(os.path.abspath(spec.output.parent))
        coco_file = mix_coco_path(spec.output)
        mix = build_mix_coco(parts, manifest_dir, spec.output.name)
        with CocoWriter(coco_file, mix["info"], mix["categories"]) as writer:
            writer.add_images(mix["images"])
            for text, count in mix["annotations"]:
                writer.add_annotation_text(text, count)
        manifest = build_manifest(spec, parts, mix, writer.sha256, coco_file.name, evals, request, command,
                                  created_at, budget)
        del mix
        try:
            write_json_atomic(spec.output, manifest, indent=1)
        except BaseException:  # no mix COCO file without the manifest that records it
            coco_file.unlink(missing_ok=True)
            raise
        written.append(spec.output)
    return written
