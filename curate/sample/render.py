"""Painter's-order rasterisation of parts into an owner map and an RGB image.

Label maps are never drawn directly: every part is filled (cv2.fillPoly, ``LINE_8``, no
anti-aliasing) into an *owner* map holding ``1 + part index``; class and instance maps are then one
look-up each (``lut[owner]``), so they agree pixel for pixel. Each part is rasterised in its own
bounding-box patch, unclipped, which also gives the full silhouette size of objects cut by the
frame border (for Synscapes' ``truncated``). Work is proportional to the painted area.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.sample.geometry import clip_polygon
from curate.sample.model import Part


@dataclass
class Painting:
    owner: np.ndarray  # int32 H×W: 1 + index (over all parts, in painting order) of the part seen; 0 = none
    rgb: np.ndarray  # uint8 H×W×3, RGB order
    full_pixels: np.ndarray  # per group: pixels of the union silhouette, frame ignored
    in_frame_pixels: np.ndarray  # per group: those inside the frame (before occlusion)
    boxes: np.ndarray  # per group: (x0, y0, x1, y1) of the in-frame silhouette, max exclusive; 0s if none


def paint(width: int, height: int, groups: Sequence[Sequence[Part]]) -> Painting:
    """Paint groups of parts in order (later over earlier); a group is one object's parts."""
    owner = np.zeros((height, width), dtype=np.int32)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    full = np.zeros(len(groups), dtype=np.int64)
    in_frame = np.zeros(len(groups), dtype=np.int64)
    boxes = np.zeros((len(groups), 4), dtype=np.int64)
    index = 0
    for g, parts in enumerate(groups):
        full[g], in_frame[g], boxes[g] = _paint_group(owner, rgb, parts, index)
        index += len(parts)
    return Painting(owner, rgb, full, in_frame, boxes)


def visible_pixels(owner: np.ndarray, n_parts: int) -> np.ndarray:
    """Pixels each part (by painting index) still shows after everything was painted."""
    return np.bincount(owner.ravel(), minlength=n_parts + 1)[1:]


def add_noise(rgb: np.ndarray, rng: np.random.Generator, amplitude: int) -> np.ndarray:
    """Uniform per-pixel noise of ±amplitude, so no region is perfectly flat."""
    noise = rng.integers(-amplitude, amplitude + 1, size=rgb.shape, dtype=np.int16)
    return np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _pixel_points(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.round(points).astype(np.int32)).reshape(-1, 2)


def _paint_group(owner: np.ndarray, rgb: np.ndarray, parts: Sequence[Part], first: int):
    height, width = owner.shape
    polygons = [_pixel_points(p.outline) for p in parts]
    every = np.concatenate(polygons)
    gx0, gy0 = every.min(axis=0)
    gx1, gy1 = every.max(axis=0) + 1
    union = np.zeros((gy1 - gy0, gx1 - gx0), dtype=bool)
    for i, (part, pts) in enumerate(zip(parts, polygons)):
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0) + 1
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(mask, [pts - np.array([x0, y0], dtype=np.int32)], 1, cv2.LINE_8)
        mask = mask.view(bool)
        union[y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0] |= mask
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if fx0 >= fx1 or fy0 >= fy1:
            continue
        visible = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        np.copyto(owner[fy0:fy1, fx0:fx1], first + i + 1, where=visible)
        colours = _part_colours(part, y0, y1, (fx0, fy0, fx1, fy1))
        np.copyto(rgb[fy0:fy1, fx0:fx1], colours, where=visible[..., None])
    fx0, fy0, fx1, fy1 = max(gx0, 0), max(gy0, 0), min(gx1, width), min(gy1, height)
    inside = union[fy0 - gy0 : fy1 - gy0, fx0 - gx0 : fx1 - gx0] if fx0 < fx1 and fy0 < fy1 else union[:0, :0]
    box = (0, 0, 0, 0)
    if inside.any():
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        box = (fx0 + cols[0], fy0 + rows[0], fx0 + cols[-1] + 1, fy0 + rows[-1] + 1)
    return int(np.count_nonzero(union)), int(np.count_nonzero(inside)), box


def _part_colours(part: Part, y0: int, y1: int, window: tuple[int, int, int, int]) -> np.ndarray:
    """RGB of the part over ``window`` (frame coordinates): vertical gradient, then its decor."""
    fx0, fy0, fx1, fy1 = window
    t = (np.arange(fy0, fy1) - y0) / max(y1 - y0 - 1, 1)
    top, bottom = np.array(part.colour, dtype=np.float64), np.array(part.colour_bottom, dtype=np.float64)
    rows = np.clip(np.round(top + (bottom - top) * t[:, None]), 0, 255).astype(np.uint8)
    shape = (fy1 - fy0, fx1 - fx0, 3)
    if not part.decor:
        return np.broadcast_to(rows[:, None, :], shape)
    patch = np.empty(shape, dtype=np.uint8)
    patch[:] = rows[:, None, :]
    offset = np.array([fx0, fy0], dtype=np.float64)
    h, w = shape[:2]
    for decor in part.decor:
        colour = tuple(int(c) for c in decor.colour)
        for polygon in decor.polygons:
            if len(polygon) == 0:
                continue
            local = np.asarray(polygon, dtype=np.float64) - offset
            if decor.thickness <= 0:
                if local.min() < -4 or local[:, 0].max() > w + 4 or local[:, 1].max() > h + 4:
                    local = clip_polygon(local, -2.0, -2.0, w + 1.0, h + 1.0)  # keep cv2 far from overflow
                    if len(local) == 0:
                        continue
                # one polygon per call: fillPoly with several contours would XOR their overlaps
                cv2.fillPoly(patch, [_pixel_points(local)], colour, cv2.LINE_8)
            else:
                thickness = max(1, int(round(decor.thickness)))
                cv2.polylines(patch, [_pixel_points(local)], decor.closed, colour, thickness, cv2.LINE_8)
    return patch
