"""Class shapes in metres (x along the object, y up, origin on the road under its centre).

Each class keeps one look so a small detector learns it quickly: cars blue with dark windows,
trucks a light box with a green cab, buses yellow with a window band, trains teal with a window
band, persons red torsos with dark legs, riders orange torsos with a helmet, bicycles thin dark
maroon frames with black wheels, motorcycles dark purple bodies with a silver engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.sample.geometry import arc, box, ellipse, mirror_x, poly
from curate.sample.model import RGB, Decor, Part

BLACK: RGB = (18, 18, 20)
WINDOW: RGB = (28, 34, 48)
HUB: RGB = (150, 150, 155)
TAIL_LIGHT: RGB = (205, 25, 25)
HEAD_LIGHT: RGB = (235, 225, 170)
SKIN: RGB = (222, 178, 146)


@dataclass(frozen=True)
class Model:
    """A shape before placement: parts in metres and the 3-D box size."""

    parts: tuple[Part, ...]
    length: float  # along the object's own axis (shown across the image in side view)
    width: float
    height: float


def vary(rng: np.random.Generator, base: RGB, spread: int) -> RGB:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(np.clip(round(c * factor), 0, 255)) for c in colour)


def part(label: str, outline: np.ndarray, colour: RGB, decor=(), shading: float = 0.78) -> Part:
    return Part(label, outline, colour, shade(colour, shading), tuple(decor))


def fill(colour: RGB, *polygons: np.ndarray) -> Decor:
    return Decor(tuple(polygons), colour)


def outline(colour: RGB, thickness: float, *polylines: np.ndarray, closed: bool = True) -> Decor:
    return Decor(tuple(polylines), colour, thickness, closed)


def wheel(cx: float, cy: float, r: float) -> list[Decor]:
    return [fill(BLACK, ellipse(cx, cy, r, r, 14)), fill(HUB, ellipse(cx, cy, 0.4 * r, 0.4 * r, 8))]


def mirrored(model: Model) -> Model:
    """The same shape facing the other way."""
    return Model(
        tuple(p.mapped(mirror_x, 1.0) for p in model.parts), model.length, model.width, model.height
    )


# --- four-wheelers -------------------------------------------------------------------------------


def _rear_outline(w: float, h: float, shoulder: float, roof: float, wheel_h: float) -> np.ndarray:
    """Rear view: body, narrower cabin, the two wheels as notches at the bottom."""
    outer, inner = w / 2 - 0.05, w / 2 - 0.4
    return poly(
        [-outer, 0], [-inner, 0], [-inner, wheel_h], [inner, wheel_h], [inner, 0], [outer, 0],
        [w / 2, wheel_h - 0.05], [w / 2, shoulder], [roof * w / 2, h], [-roof * w / 2, h],
        [-w / 2, shoulder], [-w / 2, wheel_h - 0.05],
    )


def _rear_lights_and_wheels(w: float, y0: float, y1: float, wheel_h: float) -> list[Decor]:
    outer, inner = w / 2 - 0.05, w / 2 - 0.4
    return [
        fill(TAIL_LIGHT, box(-w / 2 + 0.06, y0, -w / 2 + 0.32, y1), box(w / 2 - 0.32, y0, w / 2 - 0.06, y1)),
        fill(BLACK, box(-outer, 0, -inner, wheel_h + 0.02), box(inner, 0, outer, wheel_h + 0.02)),
    ]


def car(rng: np.random.Generator, side_view: bool) -> Model:
    body = vary(rng, [(40, 70, 170), (60, 95, 205), (30, 50, 130), (75, 115, 195)][rng.integers(4)], 14)
    length, width, height = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6)
    if not side_view:
        w, h = width, height
        shape = _rear_outline(w, h, 0.88, 0.72, 0.28)
        decor = [
            fill(WINDOW, poly([-0.31 * w, 0.93], [0.31 * w, 0.93], [0.29 * w, h - 0.07], [-0.29 * w, h - 0.07])),
            fill((225, 225, 215), box(-0.2, 0.36, 0.2, 0.47)),
            *_rear_lights_and_wheels(w, 0.62, 0.77, 0.28),
        ]
        return Model((part("car", shape, body, decor),), length, width, height)
    l, h, r = length, height, 0.33
    xr, xf = -l / 2 + 0.85, l / 2 - 0.85
    shape = poly(
        [-l / 2, r], arc(xr, r, r, 180, 360), arc(xf, r, r, 180, 360), [l / 2, r], [l / 2, 0.9],
        [l / 2 - 1.15, 0.97], [l / 2 - 1.75, h], [-l / 2 + 1.1, h], [-l / 2 + 0.75, 0.97], [-l / 2, 0.92],
    )
    decor = [
        fill(WINDOW, poly([l / 2 - 1.27, 1.0], [l / 2 - 1.8, h - 0.06], [-l / 2 + 1.17, h - 0.06], [-l / 2 + 0.86, 1.0])),
        outline(body, 0.09, poly([0.0, 0.98], [0.0, h - 0.03]), closed=False),
        fill(HEAD_LIGHT, box(l / 2 - 0.18, 0.68, l / 2, 0.8)),
        fill(TAIL_LIGHT, box(-l / 2, 0.7, -l / 2 + 0.12, 0.84)),
        *wheel(xr, r, r),
        *wheel(xf, r, r),
    ]
    return Model((part("car", shape, body, decor),), length, width, height)


def truck(rng: np.random.Generator, side_view: bool) -> Model:
    cargo = vary(rng, (200, 198, 185), 16)
    cab = vary(rng, (45, 120, 70), 14)
    length, width, height = rng.uniform(6.5, 9.5), rng.uniform(2.4, 2.55), rng.uniform(3.2, 3.8)
    if not side_view:
        w, h = width, height
        shape = poly(
            [-w / 2 + 0.05, 0], [-w / 2 + 0.5, 0], [-w / 2 + 0.5, 0.45], [w / 2 - 0.5, 0.45], [w / 2 - 0.5, 0],
            [w / 2 - 0.05, 0], [w / 2, 0.5], [w / 2, h], [-w / 2, h], [-w / 2, 0.5],
        )
        decor = [
            outline(shade(cargo, 0.6), 0.05, poly([0.0, 0.6], [0.0, h - 0.1]), closed=False),
            fill(cab, box(-w / 2, 0.45, w / 2, 0.62)),
            *_rear_lights_and_wheels(w, 0.5, 0.6, 0.45),
        ]
        return Model((part("truck", shape, cargo, decor, 0.85),), length, width, height)
    l, h, r, c = length, height, 0.5, 2.3
    cab_h = h - 0.45
    xs = (-l / 2 + 1.0, -l / 2 + 2.1, l / 2 - 1.2)
    shape = poly(
        [-l / 2, 0.55], arc(xs[0], r, r, 180, 360), arc(xs[1], r, r, 180, 360), arc(xs[2], r, r, 180, 360),
        [l / 2, r], [l / 2, cab_h * 0.55], [l / 2 - 0.35, cab_h], [l / 2 - c, cab_h],
        [l / 2 - c - 0.15, cab_h], [l / 2 - c - 0.15, h], [-l / 2, h],
    )
    decor = [
        fill(cab, poly([l / 2 - c, r], [l / 2, r], [l / 2, cab_h * 0.55], [l / 2 - 0.35, cab_h], [l / 2 - c, cab_h])),
        fill(WINDOW, poly([l / 2 - 0.95, cab_h * 0.62], [l / 2 - 0.12, cab_h * 0.62], [l / 2 - 0.4, cab_h - 0.15],
                          [l / 2 - 0.95, cab_h - 0.15])),
        fill(shade(cargo, 0.8), box(-l / 2 + 0.3, h * 0.55, l / 2 - c - 0.45, h * 0.68)),
        *[d for x in xs for d in wheel(x, r, r)],
    ]
    return Model((part("truck", shape, cargo, decor, 0.85),), length, width, height)


def bus(rng: np.random.Generator, side_view: bool) -> Model:
    body = vary(rng, (238, 196, 40), 14)
    length, width, height = rng.uniform(10.5, 13.0), 2.55, rng.uniform(3.0, 3.3)
    if not side_view:
        w, h = width, height
        shape = _rear_outline(w, h, h - 0.3, 0.94, 0.4)
        decor = [
            fill(WINDOW, box(-w / 2 + 0.3, h * 0.62, w / 2 - 0.3, h - 0.3)),
            fill((40, 40, 40), box(-0.5, h - 0.2, 0.5, h - 0.05)),
            *_rear_lights_and_wheels(w, 0.6, 0.85, 0.4),
        ]
        return Model((part("bus", shape, body, decor, 0.85),), length, width, height)
    l, h, r = length, height, 0.5
    xr, xf = -l / 2 + 2.8, l / 2 - 2.4
    shape = poly(
        [-l / 2, 0.45], arc(xr, r, r, 180, 360), arc(xf, r, r, 180, 360), [l / 2, 0.45],
        [l / 2, h - 0.25], [l / 2 - 0.25, h], [-l / 2 + 0.2, h], [-l / 2, h - 0.2],
    )
    starts = np.arange(-l / 2 + 0.4, l / 2 - 2.0, 1.55)
    decor = [
        fill(WINDOW, *[box(x, 1.5, x + 1.1, h - 0.55) for x in starts]),
        fill(WINDOW, box(l / 2 - 0.55, 1.0, l / 2 - 0.05, h - 0.3)),
        fill(shade(body, 0.55), box(l / 2 - 1.9, 0.3, l / 2 - 0.9, h - 0.4)),
        *wheel(xr, r, r),
        *wheel(xf, r, r),
    ]
    return Model((part("bus", shape, body, decor, 0.85),), length, width, height)


def train(rng: np.random.Generator) -> Model:
    body = vary(rng, (40, 150, 160), 14)
    length, width, height = rng.uniform(30.0, 60.0), 2.9, rng.uniform(3.6, 4.0)
    l, h = length, height
    shape = poly([-l / 2, 0.5], [l / 2, 0.5], [l / 2, h - 0.6], [l / 2 - 0.8, h], [-l / 2 + 0.8, h], [-l / 2, h - 0.6])
    starts = np.arange(-l / 2 + 1.0, l / 2 - 1.5, 2.1)
    joints = np.arange(-l / 2 + 15.0, l / 2 - 1.0, 15.0)
    bogies = np.concatenate([[c - 0.9, c + 0.9] for c in np.arange(-l / 2 + 2.5, l / 2, 15.0)])
    decor = [
        fill((225, 232, 232), box(-l / 2, 1.2, l / 2, 1.38)),
        fill(WINDOW, *[box(x, 1.65, x + 1.3, 2.7) for x in starts]),
        outline((25, 60, 65), 0.12, *[poly([x, 0.55], [x, h - 0.05]) for x in joints], closed=False),
        *[d for x in bogies for d in wheel(x, 0.88, 0.38)],
    ]
    return Model((part("train", shape, body, decor, 0.85),), length, width, height)


# --- people and two-wheelers --------------------------------------------------------------------


def person(rng: np.random.Generator) -> Model:
    torso = vary(rng, [(205, 40, 60), (180, 30, 45), (225, 60, 80)][rng.integers(3)], 14)
    legs = vary(rng, (70, 28, 45), 10)
    height = rng.uniform(1.55, 1.95)
    s = height / 1.75
    hr = 0.11 * s
    head_y = height - hr
    neck_y, shoulder_y, hip_y = height - 2 * hr - 0.02 * s, height - 2 * hr - 0.07 * s, 0.88 * s
    stride = rng.uniform(-0.12, 0.12) * s
    lower = poly(
        [0.15 * s, hip_y + 0.03 * s], [0.19 * s + stride, 0], [0.03 * s + stride, 0], [0, 0.78 * s],
        [-0.03 * s - stride, 0], [-0.19 * s - stride, 0], [-0.15 * s, hip_y + 0.03 * s],
    )
    shape = poly(
        [-0.05 * s, neck_y], arc(0, head_y, hr, 240, -60, 11), [0.05 * s, neck_y],
        [0.22 * s, shoulder_y], [0.22 * s, hip_y], lower, [-0.22 * s, hip_y], [-0.22 * s, shoulder_y],
    )
    decor = [
        fill(legs, lower),
        fill(vary(rng, SKIN, 12), ellipse(0, head_y, hr * 0.95, hr * 0.95, 10)),
        fill((45, 32, 25), arc(0, head_y, hr, 0, 180, 8)),
    ]
    return Model((part("person", shape, torso, decor, 0.85),), 0.45 * s, 0.6 * s, height)


def _rider(rng: np.random.Generator, seat, hand, foot, scale: float) -> Part:
    """Rider sitting at ``seat``, hands on ``hand``, one foot on ``foot``; faces +x."""
    torso = vary(rng, (242, 128, 25), 14)
    legs = vary(rng, (35, 45, 95), 10)
    helmet = vary(rng, [(235, 235, 235), (30, 30, 30), (250, 215, 30)][rng.integers(3)], 8)
    s = scale
    sx, sy = seat
    hx, hy = hand
    fx, fy = foot
    shoulder = (sx + 0.22 * s, sy + 0.58 * s)
    hr = 0.115 * s
    head = (shoulder[0] + 0.08 * s, shoulder[1] + 0.2 * s)
    knee = (sx + 0.32 * s, (sy + fy) / 2 + 0.15 * s)
    leg = poly(
        [sx + 0.12 * s, sy + 0.06 * s], [knee[0] + 0.06 * s, knee[1]], [fx + 0.1 * s, fy],
        [fx - 0.08 * s, fy - 0.03 * s], [knee[0] - 0.08 * s, knee[1] - 0.05 * s], [sx - 0.12 * s, sy - 0.03 * s],
    )
    shape = poly(
        [head[0] - 0.07 * s, head[1] - 0.09 * s], arc(head[0], head[1], hr, 225, -45, 11),
        [shoulder[0] + 0.08 * s, shoulder[1] - 0.02 * s], [hx, hy + 0.04 * s], [hx, hy - 0.04 * s],
        [shoulder[0] + 0.04 * s, shoulder[1] - 0.2 * s], leg, [shoulder[0] - 0.12 * s, shoulder[1]],
    )
    decor = [
        fill(legs, leg),
        fill(vary(rng, SKIN, 12), ellipse(head[0], head[1], hr * 0.95, hr * 0.95, 10)),
        fill(helmet, arc(head[0], head[1], hr * 1.05, -10, 190, 9)),
    ]
    return part("rider", shape, torso, decor, 0.85)


def bicycle(rng: np.random.Generator, ridden: bool) -> Model:
    frame = vary(rng, (165, 28, 70), 14)
    r, xr, xf = 0.34, -0.53, 0.53
    seat, bar, crank = (xr + 0.26, 0.93), (xf - 0.1, 1.02), (-0.04, 0.3)
    shape = poly(
        [xr + 0.05, 2 * r], arc(xr, r, r, 90, 320, 12), [crank[0], crank[1] - 0.04], arc(xf, r, r, 220, 450, 12),
        [bar[0] + 0.06, bar[1]], [bar[0] - 0.1, bar[1] + 0.02], [bar[0] - 0.08, bar[1] - 0.12],
        [seat[0] + 0.12, seat[1] - 0.06], [seat[0] + 0.12, seat[1] + 0.03], [seat[0] - 0.13, seat[1] + 0.03],
        [seat[0] - 0.05, seat[1] - 0.07],
    )
    decor = [
        outline(BLACK, 0.07, ellipse(xr, r, r - 0.035, r - 0.035, 16), ellipse(xf, r, r - 0.035, r - 0.035, 16)),
        outline(frame, 0.05, poly([xr, r], crank, seat, [xr, r]), poly(crank, [bar[0] - 0.06, bar[1] - 0.1], [xf, r]),
                poly(seat, [bar[0] - 0.06, bar[1] - 0.1]), closed=False),
        fill(HUB, ellipse(xr, r, 0.05, 0.05, 6), ellipse(xf, r, 0.05, 0.05, 6)),
        fill(BLACK, box(seat[0] - 0.12, seat[1] - 0.01, seat[0] + 0.11, seat[1] + 0.03)),
    ]
    vehicle = part("bicycle", shape, shade(frame, 0.55), decor, 0.85)
    parts = (vehicle,)
    height = 1.05
    if ridden:
        scale = rng.uniform(0.92, 1.08)
        parts += (_rider(rng, seat, bar, (crank[0] + 0.08, crank[1] - 0.1), scale),)
        height = seat[1] + 0.9 * scale
    return Model(parts, 1.75, 0.6, height)


def motorcycle(rng: np.random.Generator, ridden: bool) -> Model:
    body = vary(rng, (85, 40, 140), 14)
    r, xr, xf = 0.32, -0.7, 0.72
    seat, bar, peg = (-0.25, 0.86), (0.45, 1.12), (0.0, 0.42)
    shape = poly(
        [xr + 0.1, 2 * r], arc(xr, r, r, 90, 320, 12), [0.0, 0.24], arc(xf, r, r, 220, 450, 12),
        [bar[0] + 0.06, bar[1]], [bar[0] - 0.1, bar[1] + 0.03], [0.22, 0.98], [-0.05, 0.87],
        [-0.6, 0.87], [-0.9, 0.8], [-0.88, 0.6],
    )
    decor = [
        fill(shade(body, 1.2), poly([0.3, 0.95], [0.22, 0.98], [-0.05, 0.87], [-0.6, 0.87], [-0.5, 0.7], [0.3, 0.72])),
        fill((178, 178, 186), box(-0.22, 0.3, 0.25, 0.66)),
        outline((120, 120, 125), 0.06, poly([-0.2, 0.32], [-0.75, 0.45]), closed=False),
        *wheel(xr, r, r),
        *wheel(xf, r, r),
    ]
    parts = (part("motorcycle", shape, body, decor, 0.8),)
    height = 1.15
    if ridden:
        scale = rng.uniform(0.95, 1.08)
        parts += (_rider(rng, seat, bar, peg, scale),)
        height = seat[1] + 0.9 * scale
    return Model(parts, 2.1, 0.8, height)
