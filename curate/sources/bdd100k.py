"""BDD100K instance segmentation: layout, bitmask decoding and the per-frame conversion to COCO.

The format in brief (details and sources in ``docs/formats/bdd100k.md``; official: bdd100k/bdd100k
``doc/source/format.rst`` and ``doc/source/download.rst``):

- ROOT is the ``bdd100k`` folder. Labels: ``labels/ins_seg/bitmasks/{train,val}/NAME.png``;
  images (optional, a separate download): ``images/10k/{train,val,test}/NAME.jpg``, 1280×720.
  NAME is a plain stem such as ``0a0a0b1a-7c39d841``; the test split has no public labels.
- A bitmask is an 8-bit RGBA PNG: R = category id (0 background, 1..8 = pedestrian, rider, car,
  truck, bus, train, motorcycle, bicycle), G = attribute bits ``truncated<<3 | occluded<<2 |
  crowd<<1 | ignore``, instance ("ann") id = ``(B << 8) + A`` (1..65535 per image).

synmix's conversion: one annotation per (category, instance id) with pixels, ordered by (instance
id, category); pedestrian becomes Cityscapes ``person``, the other seven keep their names;
``iscrowd`` = crowd or ignore bit (the official evaluation leaves both out); ``occluded`` and
``truncated`` are kept as 1.0 / 0.0. The frame key is the file stem, image ids are positions in the
sorted split. Every mask of a frame comes from one sweep over the bitmask (:mod:`curate.rle`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import check_image_size, read_png
from curate.findings import finding
from curate.labels import LABEL_ID
from curate.records import (
    FrameResult,
    annotation,
    check_annotation_count,
    content_digest,
    exported_by_class,
    image_record,
    mask_fields,
    summary_counts,
)
from curate.rle import column_runs, encode_instances, merge_runs, sorted_unique
from curate.sources.base import ConvertSettings, FrameRef, Listing, Problem, Source

NAME = "bdd100k"

# --- layout ------------------------------------------------------------------------------------

#: Bitmasks of a split: ``ROOT/BITMASK_DIR/{split}/NAME.png``.
BITMASK_DIR = "labels/ins_seg/bitmasks"
#: Images of a split: ``ROOT/IMAGE_DIR/{split}/NAME.jpg`` (the "10K Images" download).
IMAGE_DIR = "images/10k"
BITMASK_SUFFIX = ".png"
IMAGE_SUFFIX = ".jpg"
#: Labelled splits (``images/10k/test`` exists, but its labels are not public).
SPLITS = ("train", "val")
#: File stems synmix accepts: ASCII letters, digits, '-' and '_' (real names: ``0a0a0b1a-7c39d841``).
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

# --- categories and attributes -----------------------------------------------------------------

#: The instance segmentation categories; category id = index + 1 (0 = background).
CATEGORY_NAMES: tuple[str, ...] = (
    "pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
#: BDD100K category name → synmix (Cityscapes) label name.
CITYSCAPES_NAME: dict[str, str] = {name: ("person" if name == "pedestrian" else name) for name in CATEGORY_NAMES}
#: Cityscapes label name → BDD100K category id (what the sample generator writes into R).
CATEGORY_ID: dict[str, int] = {CITYSCAPES_NAME[name]: i + 1 for i, name in enumerate(CATEGORY_NAMES)}
#: category id → Cityscapes label id (index 0, background, unused).
_LABEL_ID_OF_CATEGORY: tuple[int, ...] = (-1,) + tuple(LABEL_ID[CITYSCAPES_NAME[n]] for n in CATEGORY_NAMES)

#: Attribute bits of the G channel.
IGNORE = 1 << 0
CROWD = 1 << 1
OCCLUDED = 1 << 2
TRUNCATED = 1 << 3
ATTRIBUTE_BITS = TRUNCATED | OCCLUDED | CROWD | IGNORE


def encode_attributes(truncated: bool = False, occluded: bool = False, crowd: bool = False,
                      ignore: bool = False) -> int:
    """The G value of an instance (official ``to_mask``: ``(t << 3) + (o << 2) + (c << 1) + i``)."""
    return (int(truncated) << 3) | (int(occluded) << 2) | (int(crowd) << 1) | int(ignore)


# --- root and frames ---------------------------------------------------------------------------


def check_root(root: Path) -> Path:
    """``root`` if it is a BDD100K root (holds ``labels/ins_seg/bitmasks``); a one-line error otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise CurateError(root, "BDD100K root not found")
    bitmasks = root / BITMASK_DIR
    if not bitmasks.is_dir():
        hint = ""
        if (root / "gtFine").is_dir():
            hint = " (this looks like a Cityscapes folder)"
        elif (root / "img").is_dir() and (root / "meta").is_dir():
            hint = " (this looks like a Synscapes folder)"
        elif (root / "bdd100k" / BITMASK_DIR).is_dir():
            hint = f" (did you mean {root / 'bdd100k'}?)"
        raise CurateError(bitmasks, f"missing folder: not a BDD100K root{hint}")
    return root


def list_frames(root: Path, split: str, split_file: Path | None = None) -> Listing:
    """The bitmasks of ``split``, sorted by stem (image id = position + 1, key = the stem), and a
    problem for every file of the folder that is no plain ``NAME.png``."""
    if split_file is not None:
        raise CurateError(None, "--split-file applies to Synscapes only")
    if split not in SPLITS:
        extra = " (BDD100K publishes no test labels)" if split == "test" else ""
        raise CurateError(None, f"unknown split {split!r} (expected one of {', '.join(SPLITS)}){extra}")
    root = check_root(root)
    split_dir = root / BITMASK_DIR / split
    if not split_dir.is_dir():
        raise CurateError(split_dir, "missing folder: no such split")
    frames, problems = [], []
    for name in sorted(os.listdir(split_dir)):
        path = split_dir / name
        stem = name[: -len(BITMASK_SUFFIX)]
        if name.endswith(BITMASK_SUFFIX) and _PLAIN_NAME.fullmatch(stem) and path.is_file():
            image = image_path(root, split, stem)
            frames.append(FrameRef(stem, len(frames) + 1, path, (path, image) if image.is_file() else (path,)))
        else:
            problems.append(Problem(path, "not a BDD100K bitmask (a plain NAME.png: ASCII letters, digits, '-', '_')"))
    return Listing(frames, problems)


def bitmask_path(root: Path, split: str, key: str) -> Path:
    return Path(root) / BITMASK_DIR / split / f"{key}{BITMASK_SUFFIX}"


def image_path(root: Path, split: str, key: str) -> Path:
    return Path(root) / IMAGE_DIR / split / f"{key}{IMAGE_SUFFIX}"


# --- reading and decoding ----------------------------------------------------------------------


def read_bitmask(path: Path, digest=None) -> np.ndarray:
    """The bitmask as H×W×4 uint8 in R, G, B, A order (``digest``: see :func:`curate.fileio.read_png`)."""
    rgba = read_png(path, rgb=True, buffer="bdd100k.bitmask", digest=digest)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise CurateError(path, f"bitmask must be an 8-bit RGBA PNG, got {rgba.dtype} {rgba.shape}", "bit_depth")
    return rgba


def decode_bitmask(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(category uint8 H×W, attributes uint8 H×W, instance id int32 H×W = (B << 8) + A)."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected an H×W×4 uint8 array, got {rgba.dtype} {rgba.shape}")
    instance = (rgba[..., 2].astype(np.int32) << 8) | rgba[..., 3]
    return rgba[..., 0].copy(), rgba[..., 1].copy(), instance


def encode_bitmask(category: np.ndarray, attributes: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_bitmask`: an H×W×4 uint8 RGBA array."""
    instance = np.asarray(instance)
    if instance.size and (instance.min() < 0 or instance.max() > 0xFFFF):
        raise ValueError("instance ids must lie in 0..65535")
    return np.dstack([category, attributes, instance >> 8, instance & 0xFF]).astype(np.uint8)


# --- conversion --------------------------------------------------------------------------------


def convert_bitmask(rgba: np.ndarray, image_id: int, key: str, split: str, path: Path | str | None = None,
                    image_present: bool = True) -> FrameResult:
    """COCO records of one bitmask (pure: arrays in, records out; ``path`` only names errors).

    One sweep over the frame: the four channels are read as one 32-bit value per pixel, its
    column-major runs are keyed by ``instance_id * 256 + category`` (0 for background), and every
    annotation's RLE, area and bbox come from those runs at once. An instance whose pixels carry
    different attribute bits gets their OR (counted as ``attribute_conflicts``); an instance id
    that carries several categories gives one annotation per category (``category_conflicts``).
    """
    path = path if path is not None else f"{BITMASK_DIR}/{split}/{key}{BITMASK_SUFFIX}"
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise CurateError(path, f"bitmask must be H×W×4 uint8 (RGBA), got {rgba.dtype} {rgba.shape}", "bit_depth")
    height, width = rgba.shape[:2]
    packed = np.ascontiguousarray(rgba).view("<u4")[..., 0]  # R | G << 8 | B << 16 | A << 24 on any host
    runs = column_runs(packed)
    values = runs.values[0].astype(np.int64)
    category = values & 0xFF
    attributes = (values >> 8) & ATTRIBUTE_BITS
    instance = (((values >> 16) & 0xFF) << 8) | (values >> 24)

    present = sorted_unique(category)
    if present.size and int(present[-1]) > len(CATEGORY_NAMES):
        raise CurateError(path, f"unknown category id {int(present[present > len(CATEGORY_NAMES)][0])}",
                          "unknown_label_id")

    labelled = category != 0
    keys = np.where(labelled, (instance << 8) | category, 0)
    merged = merge_runs(runs, keys)  # runs that differ only in attribute bits join
    masks = encode_instances(merged, keep=merged.values[0] != 0)  # ids ascending = (instance, category)
    check_annotation_count(path, len(masks))

    # attribute bits per annotation: OR over its runs; a conflict when the runs disagree
    run_keys, run_bits = keys[labelled], attributes[labelled]
    order = np.argsort(run_keys, kind="stable")
    run_keys, run_bits = run_keys[order], run_bits[order]
    first = np.flatnonzero(np.r_[True, run_keys[1:] != run_keys[:-1]]) if len(run_keys) else np.zeros(0, np.int64)
    if len(first):
        bits = np.bitwise_or.reduceat(run_bits, first)
        conflicts = int(np.count_nonzero(np.bitwise_and.reduceat(run_bits, first) != bits))
    else:
        bits, conflicts = np.zeros(0, np.int64), 0
    assert np.array_equal(run_keys[first], masks.ids)  # one sweep, two groupings of the same keys

    annotations = []
    for k, (akey, fields, b) in enumerate(zip(masks.ids.tolist(), mask_fields(masks), bits.tolist())):
        ann = annotation(image_id, k, _LABEL_ID_OF_CATEGORY[akey & 0xFF], fields, int(bool(b & (CROWD | IGNORE))),
                         akey >> 8, "original", height, width)
        ann["occluded"] = 1.0 if b & OCCLUDED else 0.0
        ann["truncated"] = 1.0 if b & TRUNCATED else 0.0
        annotations.append(ann)

    instance_ids = masks.ids >> 8
    counts = {
        "instances": {"before": exported_by_class(annotations)},
        "attribute_conflicts": conflicts,
        "category_conflicts": int(len(instance_ids) - len(sorted_unique(instance_ids))),
        "images_missing": int(not image_present),
    }
    counts.update(summary_counts(annotations))
    image = image_record(image_id, f"{IMAGE_DIR}/{split}/{key}{IMAGE_SUFFIX}", width, height, key, NAME, split)
    return FrameResult(image, annotations, counts)


def convert_frame(settings: ConvertSettings, ref: FrameRef) -> FrameResult:
    """Read one bitmask and convert it; a missing JPEG is counted (``images_missing``), not an error."""
    digest = content_digest()
    rgba = read_bitmask(ref.path, digest)
    image = image_path(settings.root, settings.split, str(ref.key))
    height, width = rgba.shape[:2]
    present = check_image_size(image, width, height, "its bitmask")
    result = convert_bitmask(rgba, ref.image_id, str(ref.key), settings.split, ref.path, present)
    result.findings += [finding(kind, detail=f"{n} instances") for kind, n in
                        (("attribute_conflict", result.counts["attribute_conflicts"]),
                         ("category_conflict", result.counts["category_conflicts"])) if n]
    if not result.annotations:
        result.findings.append(finding("empty_frame"))
    result.digest = digest.hexdigest()
    return result


SOURCE = Source(
    name=NAME, title="BDD100K", kind="real", splits=SPLITS, frame_key_type=str, colour="tab:purple",
    check_root=check_root, list_frames=list_frames, convert_frame=convert_frame,
    root_help="BDD100K root (the bdd100k/ folder holding labels/ins_seg/bitmasks/ and optionally images/10k/).",
    summary="Export BDD100K instance-segmentation bitmasks to OUT/bdd100k_{split}.json (pedestrian as person, crowd "
            "or ignore as iscrowd, occluded/truncated kept).",
)
