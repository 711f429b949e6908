"""Hand-made street-like frames for the training tests, in both on-disk layouts the trainer meets.

Real PNGs, real pycocotools RLE, Cityscapes-style ``gtFine`` ground truth:

* ``cityscapes`` layout: ``leftImg8bit/{split}/{city}/{key}_leftImg8bit.png`` and the COCO
  ``file_name`` under it (the evaluator pairs by that name directly);
* ``synscapes`` layout: ``img/rgb/N.png`` as the COCO ``file_name`` plus the ``leftImg8bit`` links
  and ``gtFine`` files that ``curate convert --gtfine`` writes (the trainer maps to the links).

Each class has its own colour and shape so that a small detector learns them in a few hundred
iterations; objects overlap (later ones occlude earlier ones), some are small (< 100 px, which the
Cityscapes evaluator ignores), and some frames hold a crowd region (``cargroup``: plain label id).
The tests at the bottom check the writer against its own label maps.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util

from curate.labels import (
    CLASS_NAMES,
    COCO_ID_BY_LABEL_ID,
    INSTANCE_ID_OFFSET,
    LABEL_ID,
    coco_categories,
)

# BGR colour and (height, width) ranges in pixels at 192×384 per class.
STYLE = {
    "person": ((60, 20, 220), (34, 60), (10, 18)),
    "rider": ((0, 200, 255), (26, 40), (14, 22)),
    "car": ((200, 60, 0), (22, 36), (44, 76)),
    "truck": ((40, 140, 40), (44, 64), (52, 80)),
    "bus": ((200, 200, 0), (40, 56), (90, 130)),
    "train": ((160, 0, 160), (34, 48), (130, 180)),
    "motorcycle": ((0, 0, 140), (16, 24), (26, 40)),
    "bicycle": ((255, 255, 255), (16, 24), (26, 40)),
}
assert tuple(STYLE) == CLASS_NAMES


def _draw_object(shape_mask: np.ndarray, name: str, y: int, x: int, h: int, w: int) -> None:
    if name in ("person", "rider"):
        cv2.ellipse(shape_mask, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
    elif name in ("motorcycle", "bicycle"):  # two wheels and a bar
        r = h // 2
        cv2.circle(shape_mask, (x + r, y + r), r, 1, -1)
        cv2.circle(shape_mask, (x + w - r, y + r), r, 1, -1)
        cv2.rectangle(shape_mask, (x + r, y + r // 2), (x + w - r, y + r), 1, -1)
    else:
        cv2.rectangle(shape_mask, (x, y), (x + w, y + h), 1, -1)


def render_frame(rng: np.random.Generator, size=(192, 384), objects=(3, 8), crowd=True):
    """One frame: BGR image, labelIds map (uint8), instanceIds map (int32, Cityscapes encoding)."""
    h, w = size
    labels = np.full((h, w), LABEL_ID["road"], np.uint8)
    labels[: h // 3] = LABEL_ID["sky"]
    labels[h // 3 : h // 2] = LABEL_ID["building"]
    ids = labels.astype(np.int32)
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 3] = (200, 160, 110)
    image[h // 3 : h // 2] = (90, 90, 90)
    image[h // 2 :] = (60, 60, 60)
    if crowd and rng.random() < 0.5:  # a crowd of cars: label id without instance number
        y, x = int(h * 0.45), int(rng.integers(0, w - 60))
        region = np.zeros((h, w), np.uint8)
        cv2.rectangle(region, (x, y), (x + 50, y + 14), 1, -1)
        labels[region > 0] = LABEL_ID["car"]
        ids[region > 0] = LABEL_ID["car"]
        image[region > 0] = STYLE["car"][0]
    next_k: dict[str, int] = {}
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        name = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
        colour, (h0, h1), (w0, w1) = STYLE[name]
        oh, ow = int(rng.integers(h0, h1 + 1)), int(rng.integers(w0, w1 + 1))
        if rng.random() < 0.15:  # a small, distant one
            oh, ow = max(oh // 4, 5), max(ow // 4, 8)
        y = int(rng.integers(h // 3, max(h - oh, h // 3 + 1)))
        x = int(rng.integers(0, max(w - ow, 1)))
        shape = np.zeros((h, w), np.uint8)
        _draw_object(shape, name, y, x, oh, ow)
        k = next_k.get(name, 0)
        next_k[name] = k + 1
        labels[shape > 0] = LABEL_ID[name]
        ids[shape > 0] = LABEL_ID[name] * INSTANCE_ID_OFFSET + k
        shade = np.clip(np.array(colour, np.int32) + rng.integers(-25, 26, 3), 0, 255)
        image[shape > 0] = shade.astype(np.uint8)
    noise = rng.normal(0, 6, image.shape)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return image, labels, ids


def coco_annotations(ids: np.ndarray, image_id: int) -> list[dict]:
    """COCO annotations of one instanceIds map, crowd regions (plain instance-class ids) as iscrowd."""
    anns = []
    for value in sorted(int(v) for v in np.unique(ids)):
        label = value // INSTANCE_ID_OFFSET if value >= INSTANCE_ID_OFFSET else value
        if label not in COCO_ID_BY_LABEL_ID:
            continue  # stuff
        rle = mask_util.encode(np.asfortranarray(ids == value))
        anns.append({
            "id": image_id * 10000 + len(anns),
            "image_id": image_id,
            "category_id": COCO_ID_BY_LABEL_ID[label],
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()},
            "area": int(mask_util.area(rle)),
            "bbox": [float(v) for v in mask_util.toBbox(rle)],
            "iscrowd": int(value < INSTANCE_ID_OFFSET),
        })
    return anns


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def write_scene_set(root: Path, split: str, frames: int, seed: int, layout: str = "cityscapes",
                    size=(192, 384), first_frame: int = 1, crowd: bool = True) -> Path:
    """Write ``frames`` frames of one split under ``root``; returns the COCO file ``root/{split}.json``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    images, annotations = [], []
    for i in range(frames):
        image_id = i + 1
        image, labels, ids = render_frame(rng, size, crowd=crowd)
        if layout == "cityscapes":
            city, n = "lindau", first_frame + i
            key = f"{city}_000000_{n:06d}"
            file_name = f"leftImg8bit/{split}/{city}/{key}_leftImg8bit.png"
            _write_png(root / file_name, image)
            frame = key
        else:
            city, n = "synscapes", first_frame + i
            key = f"synscapes_000000_{n:06d}"
            file_name = f"img/rgb/{n}.png"
            _write_png(root / file_name, image)
            link = root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png"
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(root / file_name, link.parent), link)
            frame = n
        gt = root / "gtFine" / split / city
        _write_png(gt / f"{key}_gtFine_instanceIds.png", ids.astype(np.uint16))
        _write_png(gt / f"{key}_gtFine_labelIds.png", labels)
        images.append({"id": image_id, "file_name": file_name, "width": size[1], "height": size[0],
                       "frame": frame, "source": layout, "split": split})
        annotations += coco_annotations(ids, image_id)
    coco = {"info": {"description": "test scenes", "source": layout, "split": split, "image_root": str(root)},
            "licenses": [], "categories": coco_categories(), "images": images, "annotations": annotations}
    path = root / f"{split}.json"
    path.write_text(json.dumps(coco))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(path: Path, train_coco: Path, train_root: Path, eval_sets: list[dict], schedule=None) -> Path:
    """A manifest per notes/spec.md; paths relative to the manifest file where possible.

    ``eval_sets``: dicts with ``name``, ``coco``, ``root``, optional ``gt_dir``/``image_dir`` (absolute).
    The training COCO file's ``file_name`` entries are rewritten relative to the manifest's folder,
    as ``curate manifest`` writes ``mix.coco.json``.
    """
    path = Path(path)
    base = path.parent
    base.mkdir(parents=True, exist_ok=True)
    rel = lambda p: os.path.relpath(p, base) if p is not None else None  # noqa: E731
    coco = json.loads(Path(train_coco).read_text())
    for image in coco["images"]:
        image["file_name"] = rel(Path(train_root) / image["file_name"])
    mix = base / (path.stem + ".coco.json")
    mix.write_text(json.dumps(coco))
    manifest = {
        "schema": "synmix.manifest", "schema_version": 1, "tool_version": "test", "created_at": "",
        "seed": 0, "command": "test",
        "train": {"coco": mix.name, "sha256": sha256(mix), "frames": len(coco["images"]),
                  "instances_per_class": {}},
        "sources": {},
        "eval": [{"name": e["name"], "coco": rel(e["coco"]), "sha256": sha256(e["coco"]),
                  "image_root": rel(e["root"]), "gt_dir": rel(e.get("gt_dir")),
                  "image_dir": rel(e.get("image_dir"))} for e in eval_sets],
        "schedule": schedule or {},
    }
    path.write_text(json.dumps(manifest, indent=1))
    return path


# ---------------------------------------------------------------------------------------------
# the writer itself


def test_scene_coco_matches_the_written_ground_truth(tmp_path):
    coco_path = write_scene_set(tmp_path, "val", frames=3, seed=1, layout="synscapes", first_frame=20001)
    coco = json.loads(coco_path.read_text())
    assert [img["frame"] for img in coco["images"]] == [20001, 20002, 20003]
    for img in coco["images"]:
        key = f"synscapes_000000_{img['frame']:06d}"
        ids = cv2.imread(str(tmp_path / "gtFine/val/synscapes" / f"{key}_gtFine_instanceIds.png"),
                         cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint16
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        things = [v for v in np.unique(ids) if v >= INSTANCE_ID_OFFSET]
        assert len([a for a in anns if not a["iscrowd"]]) == len(things) > 0
        for ann in anns:
            mask = mask_util.decode(ann["segmentation"]).astype(bool)
            values = np.unique(ids[mask])
            assert len(values) == 1 and ann["area"] == mask.sum()
        link = tmp_path / "leftImg8bit/val/synscapes" / f"{key}_leftImg8bit.png"
        assert link.is_symlink() and cv2.imread(str(link)).shape == (192, 384, 3)
