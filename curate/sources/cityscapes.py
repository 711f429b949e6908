"""Cityscapes (gtFine) reader: enumerate the frames of a split, load one frame's label maps.

Layout (formats.md §2): ``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_{instanceIds,labelIds,
polygons}…`` and optionally ``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png``
(annotations can be present without images).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import read_json, read_png
from curate.labels import ID_TO_LABEL, INSTANCE_ID_OFFSET, VALID_LABEL_IDS

SPLIT_NAMES = ("train", "val", "test")
_NAME = re.compile(r"^(?P<city>[A-Za-z0-9-]+(?:_[A-Za-z-]+)*)_(?P<seq>\d{6})_(?P<frame>\d{6})$")
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


def list_frames(root: Path, split: str) -> list[CityscapesFrameRef]:
    """Every frame of ``split`` with an instanceIds PNG, sorted by name."""
    root = check_root(root)
    if split not in SPLIT_NAMES:
        raise CurateError(None, f"unknown split {split!r} (expected one of {', '.join(SPLIT_NAMES)})")
    split_dir = root / "gtFine" / split
    if not split_dir.is_dir():
        raise CurateError(split_dir, "missing folder: no such split")
    refs = []
    for path in sorted(split_dir.glob(f"*/*{INSTANCE_SUFFIX}")):
        name = path.name[: -len(INSTANCE_SUFFIX)]
        if not _NAME.match(name):
            raise CurateError(path, "file name is not {city}_{seq:06}_{frame:06}" + INSTANCE_SUFFIX)
        city = path.parent.name
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
    return sorted(refs, key=lambda r: r.name)


def check_instance_ids(path: Path, ids: np.ndarray) -> None:
    """Every value of an instanceIds map must be a label id or ``label*1000+k`` of an instance class."""
    plain = ids[ids < INSTANCE_ID_OFFSET]
    bad_plain = np.setdiff1d(plain, np.fromiter(VALID_LABEL_IDS, dtype=np.int64))
    if bad_plain.size:
        raise CurateError(path, f"unknown label id {int(bad_plain[0])}")
    for value in ids[ids >= INSTANCE_ID_OFFSET].tolist():
        label = ID_TO_LABEL.get(value // INSTANCE_ID_OFFSET)
        if label is None or not label.hasInstances:
            what = f"label {label.id} ({label.name}), which has no instances" if label else "an unknown label"
            raise CurateError(path, f"instance id {value} encodes {what}")


def read_instance_ids(path: Path) -> np.ndarray:
    """The map in its stored integer type (uint16; uint8 for tiny files): no int32 copy needed."""
    ids = read_png(path)
    if ids.ndim != 2 or ids.dtype not in (np.uint16, np.uint8):
        raise CurateError(path, f"instanceIds must be a single-channel 16-bit PNG, got {ids.dtype} {ids.shape}")
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
