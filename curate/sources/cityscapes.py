"""Cityscapes (gtFine), the real source: layout, reading, and the conversion of instanceIds to COCO.

Layout (docs/formats/cityscapes.md §2–§5): ``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_
{instanceIds,labelIds,polygons}…`` and optionally ``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}
_leftImg8bit.png`` (annotations can be present without images). The frame key is the file stem
``{city}_{seq:06}_{frame:06}``; image ids count the sorted frames of a split from 1.

The conversion makes Detectron2's decisions (docs/formats/cityscapes.md §7–§8): every instanceIds
value of an instance class is a candidate, values < 1000 (group regions) become ``iscrowd: 1``,
caravan/trailer are dropped (counted); unlike Detectron2, masks one pixel wide or tall are kept.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import check_image_size, read_json, read_png
from curate.findings import finding
from curate.labels import COCO_ID_BY_LABEL_ID, FIRST_INSTANCE_LABEL_ID, ID_TO_LABEL, INSTANCE_ID_OFFSET, VALID_LABEL_IDS
from curate.records import (
    FrameResult,
    annotation,
    check_annotation_count,
    content_digest,
    count_by_name,
    exported_by_class,
    image_record,
    mask_fields,
    summary_counts,
)
from curate.rle import column_runs, encode_instances, is_in, sorted_unique
from curate.sources.base import ConvertSettings, FrameRef, Listing, Problem, Source

NAME = "cityscapes"
SPLIT_NAMES = ("train", "val", "test")
#: Splits with public labels (``--split all`` converts these).
LABELLED_SPLITS = ("train", "val")
#: A frame's file stem ``{city}_{seq:06}_{frame:06}`` (the official evaluator pairs files by it).
STEM = re.compile(r"^(?P<city>[A-Za-z0-9-]+(?:_[A-Za-z-]+)*)_(?P<seq>\d{6})_(?P<frame>\d{6})$")
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
POLYGON_SUFFIX = "_gtFine_polygons.json"
IMAGE_SUFFIX = "_leftImg8bit.png"


@dataclass(frozen=True)
class CityscapesFrameRef:
    split: str
    city: str
    name: str  # "{city}_{seq:06}_{frame:06}"
    instance_path: Path
    label_path: Path | None
    polygons_path: Path | None
    image_path: Path | None


@dataclass
class CityscapesFrame:
    ref: CityscapesFrameRef
    instance_ids: np.ndarray  # uint16 H×W as stored: label*1000+k for instances, plain label id otherwise
    label_ids: np.ndarray | None  # uint8 H×W
    polygons: dict | None


def check_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise CurateError(root, "Cityscapes root not found")
    if not (root / "gtFine").is_dir():
        hint = " (this looks like a Synscapes folder)" if (root / "img").is_dir() and (root / "meta").is_dir() else ""
        raise CurateError(root / "gtFine", f"missing folder: not a Cityscapes root{hint}")
    return root


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None


def scan_split(root: Path, split: str, split_file: Path | None = None) -> Listing:
    """Every frame of ``split`` with an instanceIds PNG, sorted by name (image id = position from 1),
    and the problems: file names that are no frame, a city prefix that differs from the city
    folder, a frame name that appears twice."""
    if split_file is not None:
        raise CurateError(split_file, "--split-file applies to Synscapes only (Cityscapes has its own splits)")
    root = check_root(root)
    if split not in SPLIT_NAMES:
        raise CurateError(None, f"unknown split {split!r} (expected one of {', '.join(SPLIT_NAMES)})")
    split_dir = root / "gtFine" / split
    if not split_dir.is_dir():
        raise CurateError(split_dir, "missing folder: no such split")
    found: dict[str, Path] = {}
    problems = []
    for path in sorted(split_dir.glob(f"*/*{INSTANCE_SUFFIX}")):
        name, city = path.name[: -len(INSTANCE_SUFFIX)], path.parent.name
        match = STEM.fullmatch(name)
        if not match:
            problems.append(Problem(path, "file name is not {city}_{seq:06}_{frame:06}" + INSTANCE_SUFFIX))
        elif match["city"] != city:
            problems.append(Problem(path, f"city prefix {match['city']!r} differs from its folder {city!r}", name,
                                    "city_mismatch"))
        elif name in found:
            problems.append(Problem(path, f"frame {name} appears twice (also {found[name]})", name,
                                    "duplicate_frame_key"))
        else:
            found[name] = path
    frames = []
    for i, name in enumerate(sorted(found), start=1):
        path = found[name]
        image = root / image_file_name(split, path.parent.name, name)
        frames.append(FrameRef(name, i, path, (path, image) if image.is_file() else (path,)))
    return Listing(frames, problems)


def list_frames(root: Path, split: str) -> list[CityscapesFrameRef]:
    """Every frame of ``split`` with its optional files (stops at the first problem of the tree)."""
    listing = scan_split(root, split)
    if listing.problems:
        first = listing.problems[0]
        raise CurateError(first.path, first.problem)
    root = Path(root)
    refs = []
    for ref in listing.frames:
        path, name, city = ref.path, ref.key, ref.path.parent.name
        refs.append(
            CityscapesFrameRef(
                split=split,
                city=city,
                name=name,
                instance_path=path,
                label_path=_optional(path.with_name(name + LABEL_SUFFIX)),
                polygons_path=_optional(path.with_name(name + POLYGON_SUFFIX)),
                image_path=_optional(root / "leftImg8bit" / split / city / (name + IMAGE_SUFFIX)),
            )
        )
    return refs


@functools.cache
def _valid_values() -> np.ndarray:
    """``table[v]``: whether the 16-bit value ``v`` is a label id or ``label*1000+k`` of an instance class."""
    values = np.arange(1 << 16)
    with_instances = [label.id for label in ID_TO_LABEL.values() if label.hasInstances]
    plain = (values < INSTANCE_ID_OFFSET) & np.isin(values, list(VALID_LABEL_IDS))
    return plain | ((values >= INSTANCE_ID_OFFSET) & np.isin(values // INSTANCE_ID_OFFSET, with_instances))


def check_instance_ids(path: Path, ids: np.ndarray) -> None:
    """Every value of an instanceIds map must be a label id or ``label*1000+k`` of an instance class."""
    ids = np.asarray(ids)
    table = _valid_values()
    if ids.size and 0 <= ids.min() and ids.max() < len(table) and table[ids].all():
        return  # one lookup per distinct value; the messages below only for a bad map
    plain = ids[ids < INSTANCE_ID_OFFSET]
    bad_plain = np.setdiff1d(plain, np.fromiter(VALID_LABEL_IDS, dtype=np.int64))
    if bad_plain.size:
        raise CurateError(path, f"unknown label id {int(bad_plain[0])}", "unknown_label_id")
    for value in ids[ids >= INSTANCE_ID_OFFSET].tolist():
        label = ID_TO_LABEL.get(value // INSTANCE_ID_OFFSET)
        if label is None or not label.hasInstances:
            what = f"label {label.id} ({label.name}), which has no instances" if label else "an unknown label"
            raise CurateError(path, f"instance id {value} encodes {what}", "unknown_label_id")


def read_instance_ids(path: Path, digest=None) -> np.ndarray:
    """The map in its stored integer type (uint16; uint8 for tiny files): no int32 copy needed."""
    ids = read_png(path, buffer="cityscapes.instanceIds", digest=digest)
    if ids.ndim != 2 or ids.dtype not in (np.uint16, np.uint8):
        raise CurateError(path, f"instanceIds must be a single-channel 16-bit PNG, got {ids.dtype} {ids.shape}",
                          "bit_depth")
    return ids


def read_label_ids(path: Path) -> np.ndarray:
    labels = read_png(path)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise CurateError(path, f"labelIds must be a single-channel 8-bit PNG, got {labels.dtype} {labels.shape}")
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    unknown = sorted(set(present.tolist()) - VALID_LABEL_IDS)
    if unknown:
        raise CurateError(path, f"unknown label id {unknown[0]}")
    return labels


def read_polygons(path: Path) -> dict:
    raw = read_json(path)
    if not isinstance(raw, dict) or not {"imgHeight", "imgWidth", "objects"} <= raw.keys():
        raise CurateError(path, "polygons file lacks imgHeight/imgWidth/objects")
    for i, obj in enumerate(raw["objects"]):
        if not isinstance(obj, dict) or "label" not in obj or "polygon" not in obj:
            raise CurateError(path, f"object {i} lacks label/polygon")
    return raw


def load_frame(ref: CityscapesFrameRef, with_polygons: bool = False, check_ids: bool = True) -> CityscapesFrame:
    """Load one frame's maps; ``check_ids=False`` leaves the id check to a caller with its own pass."""
    instance_ids = read_instance_ids(ref.instance_path)
    if check_ids:
        check_instance_ids(ref.instance_path, np.unique(instance_ids))
    label_ids = None
    if ref.label_path is not None:
        label_ids = read_label_ids(ref.label_path)
        if label_ids.shape != instance_ids.shape:
            raise CurateError(
                ref.label_path,
                f"size {label_ids.shape[1]}x{label_ids.shape[0]} differs from instanceIds "
                f"{instance_ids.shape[1]}x{instance_ids.shape[0]}",
            )
    polygons = read_polygons(ref.polygons_path) if with_polygons and ref.polygons_path else None
    return CityscapesFrame(ref=ref, instance_ids=instance_ids, label_ids=label_ids, polygons=polygons)


# --- conversion of one frame ---------------------------------------------------------------------


def stem_of_file_name(file_name: str) -> str | None:
    """The frame stem of a Cityscapes-style file name (``…/aachen_000000_000019_leftImg8bit.png``)."""
    base = file_name.rsplit("/", 1)[-1]
    for suffix in (IMAGE_SUFFIX, INSTANCE_SUFFIX, LABEL_SUFFIX, POLYGON_SUFFIX):
        if base.endswith(suffix) and STEM.match(base[: -len(suffix)]):
            return base[: -len(suffix)]
    return None


def label_of_instance_value(value: int) -> int:
    """Label id of an instanceIds value: ``value // 1000`` for instances, the value itself for groups."""
    return value // INSTANCE_ID_OFFSET if value >= INSTANCE_ID_OFFSET else value


def image_file_name(split: str, city: str, name: str) -> str:
    return f"leftImg8bit/{split}/{city}/{name}{IMAGE_SUFFIX}"


def convert_instance_ids(instance_ids: np.ndarray, image_id: int, split: str, city: str, name: str,
                         path: Path | str) -> FrameResult:
    """COCO records of one instanceIds map (pure; ``path`` only names the file in errors)."""
    height, width = instance_ids.shape
    runs = column_runs(instance_ids)
    present = sorted_unique(runs.values[0])
    check_instance_ids(path, present)
    candidates = present[present >= FIRST_INSTANCE_LABEL_ID].tolist()
    before: dict[str, int] = {}
    skipped: dict[str, int] = {}
    wanted = []
    for value in candidates:
        label_id = label_of_instance_value(value)
        name_of_class = ID_TO_LABEL[label_id].name
        is_instance = value >= INSTANCE_ID_OFFSET
        if is_instance:
            count_by_name(before, name_of_class)
        if label_id in COCO_ID_BY_LABEL_ID:
            wanted.append(value)
        elif is_instance:
            count_by_name(skipped, name_of_class)
    check_annotation_count(path, len(wanted))
    masks = encode_instances(runs, keep=is_in(runs.values[0], wanted))
    annotations = [
        annotation(image_id, k, label_of_instance_value(value), mask, int(value < INSTANCE_ID_OFFSET), value,
                   "original", height, width)
        for k, (value, mask) in enumerate(zip(masks.ids.tolist(), mask_fields(masks)))
    ]
    counts = {
        "instances": {"before": before, "after drop-ignored-classes": exported_by_class(annotations)},
        "rules": {"drop-ignored-classes": {"instances_dropped": sum(skipped.values()), "by_class": skipped}},
    }
    counts.update(summary_counts(annotations))
    image = image_record(image_id, image_file_name(split, city, name), width, height, name, NAME, split)
    return FrameResult(image, annotations, counts)


# --- the source ----------------------------------------------------------------------------------


def convert_frame(settings: ConvertSettings, ref: FrameRef) -> FrameResult:
    city = ref.path.parent.name
    digest = content_digest()
    instance_ids = read_instance_ids(ref.path, digest)
    result = convert_instance_ids(instance_ids, ref.image_id, settings.split, city, ref.key, ref.path)
    image = Path(settings.root) / image_file_name(settings.split, city, ref.key)
    height, width = instance_ids.shape
    has_image = check_image_size(image, width, height, "its label map")
    if instance_ids.dtype == np.uint8:
        result.findings.append(finding("instance_ids_8bit", detail="real instanceIds are 16-bit"))
    if not result.annotations:
        result.findings.append(finding("empty_frame"))
    result.counts["images_missing"] = int(not has_image)
    result.digest = digest.hexdigest()
    return result


SOURCE = Source(
    name=NAME, title="Cityscapes", kind="real", splits=LABELLED_SPLITS, frame_key_type=str, colour="tab:blue",
    check_root=check_root, list_frames=scan_split, convert_frame=convert_frame,
    # the only decision, as Detectron2 makes it: caravan and trailer have no category
    rules=("drop-ignored-classes",),
    cityscapes_gt="input", cityscapes_stem=str,
    root_help="Cityscapes root (holding gtFine/ and optionally leftImg8bit/).",
    summary="Export Cityscapes gtFine instances to OUT/cityscapes_{split}.json (groups as iscrowd, "
            "caravan/trailer skipped: Detectron2's decisions).",
)
