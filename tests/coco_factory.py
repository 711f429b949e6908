"""Small COCO files shaped like ``curate convert`` output, with real pycocotools RLE
(docs/formats/synscapes.md §9, docs/formats/cityscapes.md §8).

Used by the stats and manifest tests so they do not depend on the converter: every annotation is
a rectangle (or a crowd region) drawn into a small mask and encoded by pycocotools, so area and
bbox are what pycocotools says they are. Rectangles are small, so equal areas (ties) are common.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from curate.fileio import write_png_atomic
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID, coco_categories

COCO_IDS = [COCO_ID_BY_LABEL_ID[LABEL_ID[name]] for name in CLASS_NAMES]
#: Synscapes val frames are numbered from here (synmix's default split).
SYNSCAPES_VAL_FIRST = 20001


def cityscapes_frame(i: int) -> str:
    return f"aachen_000000_{i:06d}"


def _image(source: str, split: str, index: int, size: tuple[int, int]) -> dict:
    width, height = size
    if source == "synscapes":
        frame = index + (SYNSCAPES_VAL_FIRST if split == "val" else 1)
        return {"id": frame, "file_name": f"img/rgb/{frame}.png", "width": width, "height": height,
                "frame": frame, "source": source, "split": split}
    frame = cityscapes_frame(index)
    return {"id": index + 1, "file_name": f"leftImg8bit/{split}/aachen/{frame}_leftImg8bit.png",
            "width": width, "height": height, "frame": frame, "source": source, "split": split}


def _annotation(rng, image: dict, k: int, max_side: int, crowd: bool, synthetic: bool) -> dict:
    width, height = image["width"], image["height"]
    w = int(rng.integers(1, min(max_side, width) + 1))
    h = int(rng.integers(1, min(max_side, height) + 1))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y:y + h, x:x + w] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    annotation = {
        "id": image["id"] * 10000 + k,
        "image_id": image["id"],
        "category_id": int(rng.choice(COCO_IDS)),
        "segmentation": {"size": [height, width], "counts": rle["counts"].decode()},
        "area": int(mask_util.area(rle)),
        "bbox": [float(v) for v in mask_util.toBbox(rle)],
        "iscrowd": int(crowd),
        "source_instance_id": int(1000 * k + 7),
        "rule": "original",
    }
    if synthetic:
        annotation.update(occluded=round(float(rng.random()), 3), truncated=0.0,
                          depth=round(float(rng.uniform(2, 80)), 2))
    return annotation


def make_coco(source: str, split: str, frames: int, seed: int, image_root: Path,
              size: tuple[int, int] = (48, 32), max_instances: int = 10, max_side: int | None = None) -> dict:
    """A COCO object for ``frames`` frames; Synscapes instances are smaller than Cityscapes ones."""
    rng = np.random.default_rng(seed)
    synthetic = source == "synscapes"
    max_side = max_side or (12 if synthetic else 24)
    images = [_image(source, split, i, size) for i in range(frames)]
    annotations = []
    for image in images:
        count = int(rng.integers(0, max_instances + 1))
        for k in range(count):
            crowd = not synthetic and rng.random() < 0.1
            annotations.append(_annotation(rng, image, k, max_side, crowd, synthetic))
    return {
        "info": {"description": f"test {source} {split}", "version": "test", "source": source,
                 "split": split, "image_root": str(Path(image_root).resolve()), "rules": []},
        "licenses": [],
        "categories": coco_categories(),
        "images": images,
        "annotations": annotations,
    }


def write_coco(out: Path, source: str, split: str, frames: int, seed: int, image_root: Path,
               write_images: bool = True, indent: int | None = None, **kwargs) -> Path:
    """Write ``OUT/{source}_{split}.json`` (one line, as convert does) and, optionally, the images."""
    coco = make_coco(source, split, frames, seed, image_root, **kwargs)
    path = Path(out) / f"{source}_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(coco, indent=indent) if indent else json.dumps(coco, separators=(",", ":"))
    path.write_text(text + "\n")
    if write_images:
        for image in coco["images"]:
            pixels = np.zeros((image["height"], image["width"], 3), dtype=np.uint8)
            write_png_atomic(Path(image_root) / image["file_name"], pixels)
    return path


def write_dataset(out: Path, roots: Path, seed: int = 0, synscapes_train: int = 40, synscapes_val: int = 5,
                  cityscapes_train: int = 20, cityscapes_val: int = 4) -> dict[str, Path]:
    """Both sources, train and val, as convert would leave them (plus Cityscapes-style GT folders)."""
    syn_root, cs_root = Path(roots) / "Synscapes", Path(roots) / "cityscapes"
    paths = {
        "synscapes_train": write_coco(out, "synscapes", "train", synscapes_train, seed, syn_root),
        "synscapes_val": write_coco(out, "synscapes", "val", synscapes_val, seed + 1, syn_root),
        "cityscapes_train": write_coco(out, "cityscapes", "train", cityscapes_train, seed + 2, cs_root),
        "cityscapes_val": write_coco(out, "cityscapes", "val", cityscapes_val, seed + 3, cs_root),
    }
    (cs_root / "gtFine" / "val").mkdir(parents=True, exist_ok=True)
    (Path(out) / "gtFine" / "val").mkdir(parents=True, exist_ok=True)
    (Path(out) / "leftImg8bit" / "val").mkdir(parents=True, exist_ok=True)
    return paths
