"""Polygon helpers: arcs, boxes, mirroring, clipping to the frame, rounding to pixel polygons."""

from __future__ import annotations

import numpy as np


def arc(cx: float, cy: float, radius: float, start_deg: float, end_deg: float, n: int = 9) -> np.ndarray:
    """Points on a circle (y up) from ``start_deg`` to ``end_deg`` (either direction), ends included."""
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> np.ndarray:
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def poly(*points) -> np.ndarray:
    """Concatenate points and (N, 2) arrays into one polygon."""
    return np.concatenate([np.atleast_2d(np.asarray(p, dtype=np.float64)) for p in points], axis=0)


def mirror_x(points: np.ndarray) -> np.ndarray:
    return points * np.array([-1.0, 1.0])


def clip_polygon(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland–Hodgman clip of a polygon to the box [x0, x1] × [y0, y1]; (0, 2) if nothing is left."""
    out = np.asarray(points, dtype=np.float64)
    if out.size and out[:, 0].min() >= x0 and out[:, 0].max() <= x1 and out[:, 1].min() >= y0 and out[:, 1].max() <= y1:
        return out
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if len(out) == 0:
            break
        out = _clip_half_plane(out, axis, bound, keep_above)
    return out.reshape(-1, 2)


def _clip_half_plane(points: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    values = points[:, axis]
    inside = values >= bound if keep_above else values <= bound
    if inside.all():
        return points
    if not inside.any():
        return np.empty((0, 2))
    result = []
    n = len(points)
    for i in range(n):
        cur, nxt = points[i], points[(i + 1) % n]
        cur_in, nxt_in = inside[i], inside[(i + 1) % n]
        if cur_in:
            result.append(cur)
        if cur_in != nxt_in:
            t = (bound - cur[axis]) / (nxt[axis] - cur[axis])
            crossing = cur + t * (nxt - cur)
            crossing[axis] = bound  # exact, so rounding never leaves the box
            result.append(crossing)
    return np.array(result)


def pixel_polygon(points: np.ndarray) -> np.ndarray:
    """Round to an int32 pixel polygon, dropping consecutive repeats (keeps at least one point)."""
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32)
    if len(pts) > 1:
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
        pts = pts[keep]
        if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]
    return pts


def frame_polygon(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip to the image (pixel centres 0..W-1, 0..H-1) and round: a polygon lying wholly inside."""
    clipped = clip_polygon(points, 0.0, 0.0, width - 1.0, height - 1.0)
    if len(clipped) == 0:
        return np.empty((0, 2), dtype=np.int32)
    return pixel_polygon(clipped)
