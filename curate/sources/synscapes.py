"""Synscapes, the synthetic source: layout, reading, harmonized conversion and ``--gtfine`` output.

Layout (docs/formats/synscapes.md §2–§6): ``img/rgb/N.png``, ``img/class/N.png`` (label ids),
``img/instance/N.png`` (24-bit ids, R + 256·G + 65536·B), ``meta/N.json``; N = 1..25000 without
zero padding. Synscapes has no split; synmix's default is 1..20000 train, 20001..25000 val.

Per frame, :func:`convert_frame` reads the maps and the meta, harmonizes the instances to
Cityscapes conventions (:mod:`curate.harmonize`: rider split, invisible instances, ignored
classes) in one sweep over the id map, and returns the COCO records; with ``--gtfine`` it also
writes the harmonized Cityscapes-style ground truth (docs/formats/cityscapes.md §9)::

    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_instanceIds.png   uint16, label*1000+k
    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_labelIds.png      uint8, the class map
    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_labelTrainIds.png uint8, trainIds (label table)
    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_polygons.json     outer contours of every region
    OUT/leftImg8bit/S/synscapes/synscapes_000000_{N:06}_leftImg8bit.png     relative link (or copy)

The polygons redraw the maps with cityscapesScripts' own tools (``csCreateTrainIdLabelImgs``
reproduces labelTrainIds up to boundary pixels): one object per region, outer contours only, the
largest first so that what lies in a hole is drawn over it. Read masks from the PNGs
(``from_json=False`` in Detectron2): the polygons are contours of pixels, not the annotators'.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import cv2
import numpy as np

from curate import harmonize as hz
from curate.errors import CurateError
from curate.fileio import (
    check_image_size,
    link_or_copy,
    read_json,
    read_png,
    write_bytes_atomic,
    write_json_atomic,
    write_png_atomic,
)
from curate.findings import finding
from curate.labels import (
    COCO_ID_BY_LABEL_ID,
    GROUP_SUFFIX,
    ID_TO_LABEL,
    INSTANCE_ID_OFFSET,
    LABEL_ID,
    VALID_LABEL_IDS,
    train_id_lut,
)
from curate.records import (
    FrameResult,
    annotation,
    check_annotation_count,
    content_digest,
    image_record,
    mask_fields,
    summary_counts,
)
from curate.rle import column_runs, encode_run_groups, expand_runs, merge_runs, unpack, value_boxes
from curate.sources.base import ConvertSettings, FrameRef, Listing, Problem, Source

NAME = "synscapes"
_PERSON = LABEL_ID["person"]

#: synmix's documented default split (Synscapes has no official one; the study used 20k / 5k).
DEFAULT_SPLITS: dict[str, range] = {"train": range(1, 20001), "val": range(20001, 25001)}
_MAX_LABEL_ID = max(VALID_LABEL_IDS)
_CONTIGUOUS_LABELS = VALID_LABEL_IDS == frozenset(range(_MAX_LABEL_ID + 1))
_INSTANCE_META_KEYS = ("bbox2d", "bbox3d", "class", "occluded", "truncated")
_BBOX2D_KEYS = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")
_SIX_FLOATS = (float,) * len(_BBOX2D_KEYS)


@dataclass(slots=True)  # not frozen: built once per meta instance, 2.4x faster so (never changed)
class InstanceMeta:
    id: int
    class_id: int
    #: (xmin, xmax, ymin, ymax) normalised to 0..1, then (zmin, zmax) in metres.
    bbox2d: tuple[float, float, float, float, float, float] | None
    occluded: float
    truncated: float
    bbox3d: dict | None


@dataclass(frozen=True)
class FrameMeta:
    camera: dict
    instances: dict[int, InstanceMeta]
    scene: dict


@dataclass
class SynscapesFrame:
    frame: int
    class_map: np.ndarray  # uint8 H×W, Cityscapes label ids
    # int32 H×W, 0 = no instance; load_frame(packed=True): the H×W×3 RGB bytes as read, id = R + 256·G + 65536·B
    instance_map: np.ndarray
    meta: FrameMeta
    rgb_path: Path


def frame_paths(root: Path, n: int) -> dict[str, Path]:
    root = Path(root)
    return {  # one join per path: Path joins cost more than the frame's other bookkeeping
        "rgb": root / f"img/rgb/{n}.png",
        "class": root / f"img/class/{n}.png",
        "instance": root / f"img/instance/{n}.png",
        "meta": root / f"meta/{n}.json",
    }


def check_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise CurateError(root, "Synscapes root not found")
    for sub in ("img/class", "img/instance", "meta"):
        if not (root / sub).is_dir():
            hint = " (this looks like a Cityscapes folder)" if (root / "gtFine").is_dir() else ""
            raise CurateError(root / sub, f"missing folder: not a Synscapes root{hint}")
    return root


def read_split_file(path: Path) -> list[int]:
    """Frame numbers, one per line (``#`` comments and blank lines allowed), in ASCII decimal digits."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "split file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise CurateError(path, f"not UTF-8 text (byte {err.start})") from None
    frames = []
    for lineno, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if not _DECIMAL.fullmatch(value) or int(value) < 1:
            raise CurateError(path, f"line {lineno}: {value!r} is not a frame number (ASCII digits 1, 2, …)")
        frames.append(int(value))
    return sorted(set(frames))


#: A frame's file stem: N in ASCII digits without a leading zero (01.json would name frame 1 twice).
_FRAME_STEM = re.compile(r"[1-9][0-9]*", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
#: (role, folder, suffix) of a frame's files; the RGB image may be absent (only counted).
FRAME_FILES = (("meta", "meta", ".json"), ("class", "img/class", ".png"), ("instance", "img/instance", ".png"),
               ("rgb", "img/rgb", ".png"))
REQUIRED_ROLES = ("meta", "class", "instance")


def _stray_problem(path: Path, stem: str, suffix: str, numbers: dict) -> Problem:
    try:
        same = int(stem) if stem.isdigit() else None  # int() reads non-ASCII digits too: "１" is 1
    except ValueError:
        same = None
    if same is not None and same in numbers:
        return Problem(path, f"names frame {same} like {same}{suffix}: only ASCII decimal names without leading "
                             "zeros are Synscapes frames")
    return Problem(path, f"not a Synscapes frame file (expected N{suffix}, N = 1, 2, … in ASCII digits without a "
                         "leading zero)")


def scan_frame_files(root: Path) -> tuple[dict[int, dict[str, Path]], list[Problem]]:
    """Every frame's files by role, and a problem for every other entry of the frame folders."""
    found: dict[int, dict[str, Path]] = {}
    strays: list[tuple[Path, str, str]] = []
    for role, folder, suffix in FRAME_FILES:
        directory = Path(root) / folder
        if not directory.is_dir():
            continue
        with os.scandir(directory) as listing:  # a DirEntry knows a plain file without a stat call
            entries = sorted((entry.name, entry) for entry in listing)
        for name, entry in entries:
            stem = name[: -len(suffix)] if name.endswith(suffix) else name
            path = directory / name
            if name.endswith(suffix) and _FRAME_STEM.fullmatch(stem) and entry.is_file():
                found.setdefault(int(stem), {})[role] = path
            else:
                strays.append((path, stem, suffix))
    problems = [_stray_problem(path, stem, suffix, found) for path, stem, suffix in strays]
    return found, problems


def scan_split(root: Path, split: str = "train", split_file: Path | None = None) -> Listing:
    """The complete frames of ``split`` (or of ``split_file``), and the problems of the tree: stray
    files, and frames of the split that lack one of their files (a frame exists when any of its
    files does: PNGs without meta are reported, not silently dropped)."""
    root = check_root(root)
    found, problems = scan_frame_files(root)
    if split_file is not None:
        wanted = read_split_file(split_file)
        absent = [n for n in wanted if n not in found]
        if absent:
            raise CurateError(split_file, f"frame {absent[0]} is listed but {root}/meta/{absent[0]}.json does not exist")
    elif split in DEFAULT_SPLITS:
        wanted = [n for n in sorted(found) if n in DEFAULT_SPLITS[split]]
    else:
        raise CurateError(None, f"unknown split {split!r} (expected one of {', '.join(DEFAULT_SPLITS)})")
    frames = []
    for n in wanted:
        files = found[n]
        lacking = [role for role in REQUIRED_ROLES if role not in files]
        if lacking:
            paths = frame_paths(root, n)
            have = " and ".join(str(files[r].relative_to(root)) for r in REQUIRED_ROLES if r in files)
            problems.append(Problem(paths[lacking[0]], f"missing: frame {n} has {have} but not this file", n,
                                    "missing_file"))
            continue
        frames.append(FrameRef(n, n, files["meta"], tuple(files[r] for r, _, _ in FRAME_FILES if r in files)))
    return Listing(frames, problems)


def frame_numbers(root: Path, split: str = "train", split_file: Path | None = None) -> list[int]:
    """Sorted numbers of the complete frames of ``split`` (or of ``split_file``) under ``root``."""
    return [ref.key for ref in scan_split(root, split, split_file).frames]


def decode_instance_png(bgr: np.ndarray) -> np.ndarray:
    """24-bit instance ids from an OpenCV (B, G, R) array: id = R + 256·G + 65536·B."""
    return unpack(cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2RGB))


def decode_instance_rgb(rgb: np.ndarray, buffer: str | None = None) -> np.ndarray:
    """:func:`decode_instance_png` of an (R, G, B) array; ``buffer``: a :func:`curate.buffers.scratch`
    name for the result (:func:`curate.rle.unpack`)."""
    return unpack(rgb, buffer)


def encode_instance_png(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_instance_png`: an OpenCV (B, G, R) uint8 array."""
    ids = ids.astype(np.int32)
    return np.dstack([(ids >> 16) & 255, (ids >> 8) & 255, ids & 255]).astype(np.uint8)


def _float(path: Path, where: str, value) -> float:
    try:  # an integer beyond a double's range (JSON allows any) overflows: not a finite number either
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        shown = repr(value)
        if type(value) is int and len(shown) > 40:
            shown = f"{shown[:20]}… ({len(shown)} digits)"
        raise CurateError(path, f"{where} is {shown}, expected a finite number", "bad_meta_value")
    return float(value)


def _fraction(path: Path, where: str, value) -> float:
    value = _float(path, where, value)
    if not 0.0 <= value <= 1.0:
        raise CurateError(path, f"{where} is {value!r}, outside 0..1", "bad_meta_value")
    return value


def parse_meta(path: Path, raw) -> FrameMeta:
    """Typed metadata with int instance ids; a missing key or unknown class id names the file."""
    if not isinstance(raw, dict):
        raise CurateError(path, "meta is not a JSON object", "bad_meta_value")
    for key in ("camera", "instance", "scene"):
        if key not in raw:
            raise CurateError(path, f"meta has no {key!r} key", "bad_meta_value")
    inst = raw["instance"]
    if not isinstance(inst, dict):
        raise CurateError(path, "meta instance is not an object", "bad_meta_value")
    for key in _INSTANCE_META_KEYS:
        if not isinstance(inst.get(key), dict):
            raise CurateError(path, f"meta instance.{key} missing or not an object", "bad_meta_value")
    instances = _checked_in_bulk(inst)
    if instances is None:
        instances = _checked_one_by_one(path, inst)
    return FrameMeta(camera=raw["camera"], instances=instances, scene=raw["scene"])


def _checked_in_bulk(inst: dict) -> dict[int, InstanceMeta] | None:
    """The instances when every value is as the format has it — the common case, checked a kind
    of value at a time (types by set, ranges by min/max, finiteness by a sum: NaN or infinity
    anywhere makes it non-finite) —, else None: then :func:`_checked_one_by_one` names the first
    bad value."""
    classes = inst["class"]
    keys = list(classes)
    class_ids = list(classes.values())
    if not all(map(_DECIMAL.fullmatch, keys)) or set(map(type, class_ids)) - {int} \
            or not VALID_LABEL_IDS.issuperset(class_ids):
        return None
    box_objects = list(map(inst["bbox2d"].get, keys))
    if set(map(type, box_objects)) - {dict, type(None)}:
        return None
    boxes = [None if box is None else tuple(map(box.get, _BBOX2D_KEYS)) for box in box_objects]
    numbers = [v for box in boxes if box is not None for v in box]
    occluded = list(map(inst["occluded"].get, keys, repeat(0.0)))
    truncated = list(map(inst["truncated"].get, keys, repeat(0.0)))
    fractions = occluded + truncated
    if set(map(type, numbers)) - {float} or set(map(type, fractions)) - {float} \
            or not math.isfinite(sum(numbers)) or not math.isfinite(sum(fractions)) \
            or min(fractions, default=0.0) < 0.0 or max(fractions, default=0.0) > 1.0:
        return None
    ids = list(map(int, keys))
    return dict(zip(ids, map(InstanceMeta, ids, class_ids, boxes, occluded, truncated, map(inst["bbox3d"].get, keys))))


def _checked_one_by_one(path: Path, inst: dict) -> dict[int, InstanceMeta]:
    boxes, occluded, truncated, boxes3d = inst["bbox2d"], inst["occluded"], inst["truncated"], inst["bbox3d"]
    instances: dict[int, InstanceMeta] = {}
    for key, class_id in inst["class"].items():
        if not _DECIMAL.fullmatch(key):
            raise CurateError(path, f"instance id {key!r} is not a decimal integer", "bad_meta_value")
        iid = int(key)
        if isinstance(class_id, bool) or not isinstance(class_id, int) or class_id not in VALID_LABEL_IDS:
            raise CurateError(path, f"instance {iid} has unknown class id {class_id!r}", "bad_meta_value")
        box = boxes.get(key)
        bbox2d = None
        if box is not None:
            if not isinstance(box, dict):
                raise CurateError(path, f"meta instance.bbox2d[{key}] is not an object", "bad_meta_value")
            bbox2d = tuple(map(box.get, _BBOX2D_KEYS))
            # JSON numbers with a fraction are already floats: check and convert only the others
            if tuple(map(type, bbox2d)) != _SIX_FLOATS or not all(map(math.isfinite, bbox2d)):
                bbox2d = tuple(_float(path, f"instance.bbox2d[{key}].{k}", v) for k, v in zip(_BBOX2D_KEYS, bbox2d))
        occ, trunc = occluded.get(key, 0.0), truncated.get(key, 0.0)
        if type(occ) is not float or not 0.0 <= occ <= 1.0:  # the common case without two calls each
            occ = _fraction(path, f"instance.occluded[{key}]", occ)
        if type(trunc) is not float or not 0.0 <= trunc <= 1.0:
            trunc = _fraction(path, f"instance.truncated[{key}]", trunc)
        instances[iid] = InstanceMeta(id=iid, class_id=class_id, bbox2d=bbox2d, occluded=occ, truncated=trunc,
                                      bbox3d=boxes3d.get(key))
    return instances


def read_meta(path: Path) -> FrameMeta:
    return parse_meta(Path(path), read_json(path, fast=True))  # every value is type-checked there


def read_class_map(path: Path, digest=None) -> np.ndarray:
    class_map = read_png(path, buffer="synscapes.class", digest=digest)
    if class_map.ndim != 2 or class_map.dtype != np.uint8:
        raise CurateError(path, f"class map must be single-channel 8-bit, got {class_map.dtype} {class_map.shape}",
                          "bit_depth")
    if _CONTIGUOUS_LABELS and int(class_map.max(initial=0)) <= _MAX_LABEL_ID:
        return class_map  # every value 0..max is a label id: no need to count them
    counts = np.bincount(class_map.ravel(), minlength=256)
    unknown = sorted(set(np.flatnonzero(counts).tolist()) - VALID_LABEL_IDS)
    if unknown:
        raise CurateError(path, f"unknown class id {unknown[0]} in class map", "unknown_label_id")
    return class_map


def read_instance_map(path: Path, digest=None, packed: bool = False) -> np.ndarray:
    """The instance ids (H×W int32); ``packed=True``: the H×W×3 RGB bytes they are packed in, as
    read (:func:`curate.rle.column_runs` takes those as they are: no unpacking pass)."""
    rgb = read_png(path, rgb=True, buffer="synscapes.instance", digest=digest)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CurateError(path, f"instance map must be 3-channel 8-bit RGB, got {rgb.dtype} {rgb.shape}", "bit_depth")
    return rgb if packed else decode_instance_rgb(rgb, buffer="synscapes.ids")


def check_instance_ids(meta_path: Path, png_name: str, ids: np.ndarray, meta: FrameMeta) -> None:
    """Every non-zero id of the instance PNG must have a meta entry (``ids``: the PNG's unique ids)."""
    unknown = set(np.asarray(ids).tolist()).difference(meta.instances, (0,))
    if unknown:
        raise CurateError(meta_path, f"instance id {int(min(unknown))} of {png_name} has no entry in meta", "id_not_in_meta")


def load_frame(root: Path, n: int, check_ids: bool = True, digest=None, packed: bool = False,
               paths: dict[str, Path] | None = None) -> SynscapesFrame:
    """Load frame ``n``; any inconsistency raises a one-line :class:`CurateError` naming the file.

    ``check_ids=False`` skips the PNG-ids-vs-meta check (a sort of the whole map) for callers that
    already get the unique ids from their own pass and call :func:`check_instance_ids` themselves;
    with it, ``packed=True`` keeps the instance map as the RGB bytes the ids are packed in
    (:func:`read_instance_map`) for callers that only take its runs, as :func:`convert_frame_data` does.
    ``digest`` is fed the class and instance PNGs' bytes (:func:`curate.fileio.read_png`);
    ``paths``: :func:`frame_paths` of the frame, when the caller already made them.
    """
    paths = frame_paths(root, n) if paths is None else paths
    meta = read_meta(paths["meta"])
    class_map = read_class_map(paths["class"], digest)
    instance_map = read_instance_map(paths["instance"], digest, packed=packed and not check_ids)
    if class_map.shape != instance_map.shape[:2]:
        raise CurateError(
            paths["instance"],
            f"size {instance_map.shape[1]}x{instance_map.shape[0]} differs from class map "
            f"{class_map.shape[1]}x{class_map.shape[0]}", "size_mismatch",
        )
    if check_ids:
        check_instance_ids(paths["meta"], paths["instance"].name, np.unique(instance_map), meta)
    return SynscapesFrame(frame=n, class_map=class_map, instance_map=instance_map, meta=meta, rgb_path=paths["rgb"])


# --- harmonized conversion of one frame ----------------------------------------------------------


def harmonize_frame(frame: SynscapesFrame, rules: tuple[str, ...], meta_path):
    """The frame's runs, its instances as the meta has them (ids checked against the map), and the
    instances after ``rules`` with their counters."""
    runs = column_runs(frame.instance_map, frame.class_map)  # ids or their packed RGB: the same runs
    initial = hz.from_meta(runs, {i: m.class_id for i, m in frame.meta.instances.items()})
    # the runs' pairs hold every id of the map
    check_instance_ids(meta_path, f"img/instance/{frame.frame}.png", hz.present_ids(initial), frame.meta)
    state, counts = hz.harmonize(initial, tuple(rules))
    return runs, initial, state, counts


def convert_frame_data(
    frame: SynscapesFrame,
    split: str,
    rules: tuple[str, ...] = hz.DEFAULT_RULES,
    with_gtfine: bool = False,
    meta_path: Path | str | None = None,
) -> FrameResult:
    """Harmonize one loaded frame and export it as COCO records (pure: no file is read or written).

    ``meta_path`` only names the file in error messages. Instance annotations carry the meta's
    occlusion, truncation and depth (bbox2d zmin); instance-class pixels outside every instance
    become one crowd region per class (see :func:`curate.harmonize.export_keys`).
    """
    meta_path = meta_path if meta_path is not None else f"meta/{frame.frame}.json"
    height, width = frame.class_map.shape
    runs, initial, state, counts = harmonize_frame(frame, rules, meta_path)

    exported = {i: r for i, r in state.records.items() if r.exported}
    without_category = [r for r in exported.values() if r.label_id not in COCO_ID_BY_LABEL_ID]
    if without_category:
        r = without_category[0]
        raise CurateError(meta_path, f"instance {r.source_id} has class {ID_TO_LABEL[r.label_id].name}, which has "
                                     "no COCO category (enable rule drop-ignored-classes)")

    # One encoding pass for instances and crowd regions: a group per exported instance and one per
    # class of crowd pixels (hz.export_keys: each (instance, class) pair of the runs joins one or none).
    group_of_key: dict[int, int] = {}
    group_of_pair = [group_of_key.setdefault(key, len(group_of_key)) if key else -1 for key in hz.export_keys(state)]
    masks = encode_run_groups(runs, state.pairs.per_run(group_of_pair), len(group_of_key))
    if len(masks) != len(group_of_key):  # every group has a run (its pairs come from runs): row = group
        raise CurateError(meta_path, f"{len(group_of_key) - len(masks)} exported regions without pixels (a synmix bug)")

    entries = []  # (source id, harmonized id, label, row, crowd, rule, meta id); row = group (all have pixels)
    for r in exported.values():
        entries.append((r.source_id, r.id, r.label_id, group_of_key.get(r.id), 0, r.rule, r.meta_id))
    for key, row in group_of_key.items():
        if key < 0:
            entries.append((-key, key, -key, row, 1, "crowd", None))
    entries.sort(key=lambda e: (e[0], e[4], e[1]))
    check_annotation_count(meta_path, len(entries))

    image_id = frame.frame
    meta = frame.meta.instances
    annotations = []
    fields = mask_fields(masks)
    for k, (source_id, _, label_id, row, crowd, rule, meta_id) in enumerate(entries):
        ann = annotation(image_id, k, label_id, fields[row] if row is not None else None, crowd, source_id, rule,
                         height, width)
        m = meta.get(meta_id) if meta_id is not None else None
        ann["occluded"] = m.occluded if m else None
        ann["truncated"] = m.truncated if m else None
        ann["depth"] = m.bbox2d[4] if m and m.bbox2d else None
        annotations.append(ann)
    counts.update(summary_counts(annotations))
    findings = instance_findings(initial.pairs, frame.meta)
    if not annotations:
        findings.append(finding("empty_frame"))
    disagreements: dict[str, int] = {}
    for f in findings:
        if f["kind"] == "class_disagreement":
            disagreements[f["detail"]] = disagreements.get(f["detail"], 0) + 1
    counts["class_disagreements"] = disagreements

    gtfine = None
    if with_gtfine:
        try:
            values = hz.gtfine_values(state)
        except ValueError as err:
            raise CurateError(meta_path, str(err), "too_many_instances") from None
        gt_runs = merge_runs(runs, values)
        instance_ids = expand_runs(gt_runs, gt_runs.values[0], np.uint16)
        # labelIds must agree with instanceIds: an instance's pixels carry its class even where the
        # class map says another (counted above as class_disagreement); elsewhere the class map.
        labels = np.where(values >= INSTANCE_ID_OFFSET, values // INSTANCE_ID_OFFSET, state.class_ids)
        from_class_png = np.array_equal(labels, state.class_ids)
        if from_class_png:
            label_ids = frame.class_map
        else:
            label_runs = merge_runs(runs, labels)
            label_ids = expand_runs(label_runs, label_runs.values[0], np.uint8)
            counts["gtfine_labels_from_instances"] = 1
        gtfine = GtFine(instance_ids, label_ids, from_class_png, gtfine_polygons(instance_ids, gt_runs))
    image = image_record(frame.frame, f"img/rgb/{frame.frame}.png", width, height, frame.frame, NAME, split)
    return FrameResult(image, annotations, counts, gtfine, findings)


def instance_findings(pairs, meta: FrameMeta) -> list[dict]:
    """Notes on the frame's instances as the meta and the class map describe them (one pass over
    the distinct (instance, class) pairs of the runs, :func:`curate.rle.value_pairs`): pixel
    classes that disagree with the meta class, two-wheelers labelled rider/person, persons with
    rider pixels, instances spanning several classes, meta instances without pixels. Only an
    instance with a pair other than its meta class (or a two-wheeler's rider) can have a note."""
    instances = meta.instances
    visible = set()
    odd = set()
    for iid, cls in zip(pairs.first, pairs.second):
        if iid:
            visible.add(iid)
            meta_class = instances[iid].class_id
            if cls != meta_class and not (cls == hz.RIDER and meta_class in hz.TWO_WHEELERS):
                odd.add(iid)
    found = []
    for iid in sorted(odd):
        classes = {cls for i, cls in zip(pairs.first, pairs.second) if i == iid}
        found.extend(_instance_notes(iid, instances[iid].class_id, classes))
    for iid in sorted(set(instances) - visible):
        found.append(finding("meta_instance_without_pixels", iid))
    return found


def _instance_notes(iid: int, meta_class: int, classes: set[int]) -> list[dict]:
    """The notes of one instance of meta class ``meta_class`` whose pixels carry ``classes``."""
    found = []
    two_wheeler = meta_class in hz.TWO_WHEELERS
    for other in sorted(classes - ({meta_class, hz.RIDER} if two_wheeler else {meta_class})):
        found.append(finding("class_disagreement", iid, f"{ID_TO_LABEL[meta_class].name}/{ID_TO_LABEL[other].name}"))
    if meta_class in (hz.RIDER, _PERSON) and classes & set(hz.TWO_WHEELERS):
        found.append(finding("two_wheeler_meta_rider_or_person", iid, f"meta {ID_TO_LABEL[meta_class].name}"))
    if meta_class == _PERSON and hz.RIDER in classes:
        found.append(finding("person_with_rider_pixels", iid))
    if len(classes - ({hz.RIDER} if two_wheeler else set())) > 1:
        found.append(finding("mixed_class_instance", iid, ", ".join(ID_TO_LABEL[c].name for c in sorted(classes))))
    return found


# --- Cityscapes-style ground truth (--gtfine) ----------------------------------------------------


@dataclass
class GtFine:
    """One frame's harmonized Cityscapes-style ground truth."""

    instance_ids: np.ndarray  # uint16, label*1000+k on instances, the label id elsewhere
    label_ids: np.ndarray  # uint8, consistent with instance_ids
    label_ids_are_class_map: bool  # then labelIds is written as a byte copy of the class PNG
    polygons: list[dict]  # polygons.json objects, drawn in file order


def gtfine_polygons(instance_ids: np.ndarray, gt_runs) -> list[dict]:
    """polygons.json objects that redraw the maps: the outer contours of every region of one
    instanceIds value (instances by instance, stuff and groups by label; groups as "cargroup" …),
    ordered by the area each contour encloses, largest first. cityscapesScripts draws objects in
    file order, later over earlier, so a region inside another's hole is drawn after it (docs/
    formats/cityscapes.md §5); only boundary pixels can differ from the maps."""
    values, boxes = value_boxes(gt_runs)
    drawn = []
    for value, (x, y, w, h) in zip(values.tolist(), boxes.astype(np.int64).tolist()):
        label = ID_TO_LABEL[value // INSTANCE_ID_OFFSET if value >= INSTANCE_ID_OFFSET else value]
        if label.id == 0:
            continue  # "unlabeled" is the background the tools start from
        name = label.name + (GROUP_SUFFIX if value < INSTANCE_ID_OFFSET and label.hasInstances else "")
        crop = np.ascontiguousarray(instance_ids[y:y + h, x:x + w] == value, dtype=np.uint8)
        contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
        for contour in contours:
            points = contour.reshape(-1, 2).tolist()
            points += points[-1:] * (3 - len(points))  # a pixel or a line: tools want 3 vertices
            drawn.append((-cv2.contourArea(contour), value, points[0], {"label": name, "polygon": points}))
    drawn.sort(key=lambda d: d[:3])
    return [d[3] for d in drawn]


GTFINE_CITY = NAME
GTFINE_SEQUENCE = 0


def cityscapes_stem(frame: int) -> str:
    """``synscapes_000000_{N:06}``: frame N named as a Cityscapes frame of city "synscapes"."""
    return f"{GTFINE_CITY}_{GTFINE_SEQUENCE:06}_{frame:06}"


def gtfine_paths(out: Path, split: str, frame: int) -> dict[str, Path]:
    stem = cityscapes_stem(frame)
    gt = Path(out) / "gtFine" / split / GTFINE_CITY
    return {
        "instanceIds": gt / f"{stem}_gtFine_instanceIds.png",
        "labelIds": gt / f"{stem}_gtFine_labelIds.png",
        "labelTrainIds": gt / f"{stem}_gtFine_labelTrainIds.png",
        "polygons": gt / f"{stem}_gtFine_polygons.json",
        "image": Path(out) / "leftImg8bit" / split / GTFINE_CITY / f"{stem}_leftImg8bit.png",
    }


def write_gtfine_frame(out: Path, split: str, frame: int, gt: GtFine, class_png: Path, rgb_path: Path,
                       copy_images: bool = False) -> None:
    """Write one frame's Cityscapes-style files (labelIds: a byte copy of the class PNG unless
    instances and class map disagree; labelTrainIds from the label table; polygons that redraw them)."""
    paths = gtfine_paths(out, split, frame)
    height, width = gt.instance_ids.shape
    if not Path(rgb_path).is_file():
        raise CurateError(rgb_path, "file not found (needed for the leftImg8bit link)")
    link_or_copy(rgb_path, paths["image"], copy_images)
    write_png_atomic(paths["instanceIds"], gt.instance_ids.astype(np.uint16, copy=False))
    if gt.label_ids_are_class_map:
        write_bytes_atomic(paths["labelIds"], Path(class_png).read_bytes())
    else:
        write_png_atomic(paths["labelIds"], gt.label_ids)
    write_png_atomic(paths["labelTrainIds"], train_id_lut()[gt.label_ids])
    write_json_atomic(paths["polygons"], {"imgHeight": height, "imgWidth": width, "objects": gt.polygons})


# --- the source ----------------------------------------------------------------------------------


def convert_frame(settings: ConvertSettings, ref: FrameRef) -> FrameResult:
    """Read, harmonize and (with ``--gtfine``) write one frame. Raises CurateError on bad input."""
    paths = frame_paths(settings.root, ref.key)
    digest = content_digest()
    data = load_frame(settings.root, ref.key, check_ids=False, digest=digest, packed=True, paths=paths)
    height, width = data.class_map.shape
    has_image = check_image_size(paths["rgb"], width, height, "its label maps")
    result = convert_frame_data(data, settings.split, settings.rules, settings.gtfine, paths["meta"])
    if settings.gtfine:
        write_gtfine_frame(settings.out, settings.split, ref.key, result.gtfine, paths["class"], paths["rgb"],
                           settings.copy_images)
        result.gtfine = None
    result.counts["images_missing"] = int(not has_image)
    result.digest = digest.hexdigest()
    return result


SOURCE = Source(
    name=NAME, title="Synscapes", kind="synthetic", splits=tuple(DEFAULT_SPLITS), frame_key_type=int,
    colour="tab:orange", check_root=check_root, list_frames=scan_split, convert_frame=convert_frame,
    rules=hz.DEFAULT_RULES, rules_switchable=True, writes_gtfine=True,
    cityscapes_gt="output", cityscapes_stem=cityscapes_stem,
    root_help="Synscapes root (holding img/ and meta/).",
    summary="Harmonize Synscapes to Cityscapes conventions (rider split, invisible and ignored instances) "
            "and write OUT/synscapes_{split}.json.",
)
