"""Pictures of instances: coloured fills and outlines on the RGB frame, with a class legend.

Pure functions over arrays (RGB uint8 H×W×3 in, RGB out); callers read and write the files.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_util

from curate.labels import ID_TO_LABEL

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(label_id: int, shade: int = 0) -> np.ndarray:
    """The Cityscapes colour of a class, lightened or darkened per instance so neighbours differ."""
    base = np.array(ID_TO_LABEL[label_id].color, dtype=np.int32)
    factor = 0.65 + 0.35 * ((shade * 0.618034) % 1.0) * 2  # golden-ratio steps in 0.65..1.35
    return np.clip(base * factor + 25 * (factor > 1), 0, 255).astype(np.uint8)


def _boundaries(id_map: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour holds another id (one O(pixels) pass)."""
    edge = np.zeros(id_map.shape, dtype=bool)
    diff_x = id_map[:, 1:] != id_map[:, :-1]
    diff_y = id_map[1:, :] != id_map[:-1, :]
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    return edge & (id_map != 0)


def overlay_id_map(rgb: np.ndarray, id_map: np.ndarray, class_of_id: Mapping[int, int], alpha: float = 0.5) -> np.ndarray:
    """Fill every instance of ``id_map`` (0 = none) with its class colour and outline it."""
    ids = sorted(i for i in class_of_id if i != 0)
    palette = np.zeros((len(ids) + 1, 3), np.uint8)
    for n, iid in enumerate(ids, 1):
        palette[n] = class_colour(class_of_id[iid], n)
    index = np.searchsorted(np.asarray(ids, dtype=np.int64), id_map) + 1 if ids else np.zeros(id_map.shape, int)
    index = np.where(np.isin(id_map, ids), index, 0)
    colours = palette[index]
    out = rgb.astype(np.float32)
    inside = index > 0
    out[inside] = (1 - alpha) * out[inside] + alpha * colours[inside]
    edge = _boundaries(index)
    out[edge] = colours[edge] * 0.5
    return out.astype(np.uint8)


def id_map_from_annotations(annotations: Sequence[Mapping], height: int, width: int) -> tuple[np.ndarray, dict[int, int]]:
    """Paint COCO annotations (RLE) into an id map, large first so small instances stay visible.

    Returns the map (values 1..n) and ``{value: cityscapes label id}`` from each annotation's
    ``label_id`` key.
    """
    id_map = np.zeros((height, width), np.int32)
    class_of = {}
    order = sorted(range(len(annotations)), key=lambda i: (-annotations[i]["area"], i))
    for value, i in enumerate(order, 1):
        ann = annotations[i]
        mask = mask_util.decode(ann["segmentation"]).astype(bool)
        id_map[mask] = value
        class_of[value] = ann["label_id"]
    return id_map, class_of


def add_title(image: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((28, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (6, 20), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, image])


def legend(label_ids: Iterable[int], width: int) -> np.ndarray:
    """A strip with one swatch and name per class."""
    names = [(lid, ID_TO_LABEL[lid].name) for lid in sorted(set(label_ids))]
    strip = np.full((30, width, 3), 255, np.uint8)
    x = 6
    for lid, name in names:
        cv2.rectangle(strip, (x, 8), (x + 14, 22), tuple(int(c) for c in class_colour(lid, 0)), -1)
        cv2.putText(strip, name, (x + 18, 21), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x += 26 + 9 * len(name)
    return strip


def grid(panels: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized panels row by row (missing cells stay white)."""
    h, w = panels[0].shape[:2]
    rows = -(-len(panels) // columns)
    canvas = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = panel
    return canvas
