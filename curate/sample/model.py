"""Plain data of a procedural scene: parts (one silhouette polygon each), objects, the camera.

A :class:`Part` is what one Cityscapes polygon is: one label, one simple polygon. An object is one
or more parts painted in order (a two-wheeler with its rider is two parts). RGB decorations
(windows, wheels, lane marks) are drawn inside a part's silhouette only and never touch label maps.
Coordinates are (x, y) pairs: metres with y up while a shape is built, image pixels once placed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

RGB = tuple[int, int, int]
PointMap = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Decor:
    """RGB-only decoration: filled polygons (``thickness == 0``) or outlines ``thickness`` wide."""

    polygons: tuple[np.ndarray, ...]
    colour: RGB
    thickness: float = 0.0
    closed: bool = True

    def mapped(self, fn: PointMap, scale: float) -> Decor:
        return replace(self, polygons=tuple(fn(p) for p in self.polygons), thickness=self.thickness * scale)


@dataclass(frozen=True)
class Part:
    """One labelled silhouette, filled with a vertical colour gradient (cheap shading) plus decor."""

    label: str  # label name from curate.labels, or a group name such as "cargroup"
    outline: np.ndarray  # (N, 2) polygon
    colour: RGB  # at the top of the silhouette
    colour_bottom: RGB  # at the bottom
    decor: tuple[Decor, ...] = ()

    def mapped(self, fn: PointMap, scale: float) -> Part:
        return replace(
            self, outline=fn(self.outline), decor=tuple(d.mapped(fn, scale) for d in self.decor)
        )


@dataclass(frozen=True)
class Camera:
    """Pinhole camera over a flat road; objects are upright billboards facing the camera."""

    width: int
    height: int
    fx: float
    fy: float
    u0: float
    v0: float
    horizon: float  # image row of the horizon (v0 moved by the pitch)
    mount_height: float  # metres above the road

    def project(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Pixel (u, v) of camera-frame points: x right, y up from the road, z depth (metres)."""
        x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
        u = self.u0 + self.fx * x / z
        v = self.horizon + self.fy * (self.mount_height - y) / z
        return np.stack(np.broadcast_arrays(u, v), axis=-1)

    def billboard(self, x: float, z: float) -> tuple[PointMap, float]:
        """Map of local metres (x right, y up, origin on the road) at lateral ``x``, depth ``z``."""
        scale = self.fx / z
        u_origin = self.u0 + self.fx * x / z
        v_origin = self.horizon + self.fy * self.mount_height / z

        def to_pixels(points: np.ndarray) -> np.ndarray:
            points = np.asarray(points, dtype=np.float64)
            return np.stack([u_origin + scale * points[:, 0], v_origin - scale * points[:, 1]], axis=1)

        return to_pixels, scale


@dataclass(frozen=True)
class SceneObject:
    """One countable thing (a Synscapes instance), painted after everything farther away."""

    kind: str  # car, truck, bus, train, person, bicycle, motorcycle, group
    label: str  # class of the Synscapes instance: the vehicle for a ridden two-wheeler; base class of a group
    x: float  # lateral position of the front face, metres (right positive)
    z: float  # depth of the front face, metres
    length: float
    width: float
    height: float
    side_view: bool  # long axis across the image (crossing / parked sideways) rather than along the road
    parts: tuple[Part, ...]  # in pixels, painted in this order
    ridden: bool = False
    behind_occluder: bool = False  # placed on purpose behind a near vehicle (often fully hidden)

    @property
    def depth_extent(self) -> float:
        return self.width if self.side_view else self.length

    @property
    def lateral_extent(self) -> float:
        return self.length if self.side_view else self.width


@dataclass(frozen=True)
class Scene:
    camera: Camera
    stuff: tuple[Part, ...]  # background, painted first in order
    objects: tuple[SceneObject, ...]  # far → near
    overlay: tuple[Part, ...] = ()  # painted last (the Cityscapes ego-vehicle hood)
    extrinsic: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
