"""Cityscapes-style ground truth for Synscapes frames (``--gtfine``), read unchanged by Detectron2's
``load_cityscapes_instances`` and by cityscapesScripts' instance evaluator.

Per frame N of split S (city "synscapes", sequence 0, frame N)::

    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_instanceIds.png   uint16, label*1000+k
    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_labelIds.png      uint8, the class map
    OUT/gtFine/S/synscapes/synscapes_000000_{N:06}_gtFine_polygons.json     size only, no objects
    OUT/leftImg8bit/S/synscapes/synscapes_000000_{N:06}_leftImg8bit.png     relative link (or copy)

The polygons file exists only because Detectron2's loader asserts that the first frame has one
even with ``from_json=False``; it holds the frame size and no objects (synmix keeps masks, not
polygons), so read this ground truth with ``from_json=False``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import atomic_path, write_bytes_atomic, write_json_atomic, write_png_atomic

CITY = "synscapes"
SEQUENCE = 0


def frame_stem(frame: int) -> str:
    return f"{CITY}_{SEQUENCE:06}_{frame:06}"


def gtfine_paths(out: Path, split: str, frame: int) -> dict[str, Path]:
    stem = frame_stem(frame)
    gt = Path(out) / "gtFine" / split / CITY
    return {
        "instanceIds": gt / f"{stem}_gtFine_instanceIds.png",
        "labelIds": gt / f"{stem}_gtFine_labelIds.png",
        "polygons": gt / f"{stem}_gtFine_polygons.json",
        "image": Path(out) / "leftImg8bit" / split / CITY / f"{stem}_leftImg8bit.png",
    }


def link_or_copy(target: Path, link: Path, copy: bool) -> None:
    """Atomically make ``link`` a relative symlink to ``target`` (or a copy of it)."""
    target = Path(target)
    if not target.is_file():
        raise CurateError(target, "file not found (needed for the leftImg8bit link)")
    with atomic_path(link) as tmp:
        if copy:
            shutil.copyfile(target, tmp)
        else:
            tmp.unlink()
            os.symlink(os.path.relpath(target.resolve(), link.parent.resolve()), tmp)


def write_gtfine_frame(out: Path, split: str, frame: int, instance_ids: np.ndarray, class_png: Path,
                       rgb_path: Path, copy_images: bool = False) -> None:
    """Write one frame's Cityscapes-style files (labelIds is a byte copy of the class PNG)."""
    paths = gtfine_paths(out, split, frame)
    height, width = instance_ids.shape
    link_or_copy(rgb_path, paths["image"], copy_images)
    write_png_atomic(paths["instanceIds"], instance_ids.astype(np.uint16, copy=False))
    write_bytes_atomic(paths["labelIds"], Path(class_png).read_bytes())
    write_json_atomic(paths["polygons"], {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [],
        "synmix": "no polygons: instances are in the instanceIds PNG (load with from_json=False)",
    })
