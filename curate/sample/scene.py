"""Procedural street scenes: a pure function of a random generator and the frame size.

A scene is a pinhole camera over a flat street: sky, a distant skyline, sidewalk, road with lane
marks, facades on both sides, trees; then objects painted far → near (painter's order), so nearer
objects occlude farther ones. Depths are log-uniform, so most instances are small and far (a few to
a few hundred pixels) and a few are large and near, often cut by the frame border. A few objects
are placed on purpose right behind a near truck, bus or car, where they are often fully hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from curate.sample import shapes
from curate.sample.geometry import box, clip_polygon, ellipse, poly
from curate.sample.model import Camera, Decor, Part, Scene, SceneObject

#: Objects nearer than this are never placed (their billboard would dwarf the frame).
MIN_DEPTH = 3.0
#: Largest unclipped object extent, in frame widths/heights, before a placement is retried farther.
MAX_EXTENT = 2.5
PLACEMENT_TRIES = 8


@dataclass(frozen=True)
class Traffic:
    """How busy a scene is: ``[lo, hi)`` ranges of object counts and the farthest object (metres)."""

    cars: tuple[int, int]
    trucks: tuple[int, int]
    buses: tuple[int, int]
    pedestrians: tuple[int, int]
    bicyclists: tuple[int, int]
    motorcyclists: tuple[int, int]
    parked_bicycles: tuple[int, int]
    parked_motorcycles: tuple[int, int]
    hidden_attempts: tuple[int, int]
    train_chance: float
    max_depth: float


#: "street": dense city traffic with many tiny far-away instances (Synscapes-like, ~40 per frame);
#: "sparse": 3–12 near objects per frame, for short CPU learning runs that must see every class.
TRAFFIC: dict[str, Traffic] = {
    "street": Traffic(cars=(10, 28), trucks=(0, 3), buses=(0, 3), pedestrians=(8, 24), bicyclists=(1, 5),
                      motorcyclists=(0, 3), parked_bicycles=(0, 4), parked_motorcycles=(0, 2),
                      hidden_attempts=(1, 4), train_chance=0.1, max_depth=160.0),
    "sparse": Traffic(cars=(1, 4), trucks=(0, 2), buses=(0, 2), pedestrians=(1, 4), bicyclists=(1, 3),
                      motorcyclists=(0, 2), parked_bicycles=(0, 2), parked_motorcycles=(0, 1),
                      hidden_attempts=(0, 2), train_chance=0.15, max_depth=35.0),
}

SYNSCAPES_SCENE_KEYS = (
    "num_cars", "num_trucks", "num_buses", "num_trains", "num_pedestrians", "num_bicyclists",
    "num_motorcyclists", "num_parked_bicycles", "num_parked_motorcycles", "num_hidden_attempts",
    "ego_speed", "sun_height", "sun_azimuth", "cloudiness", "fog_density", "wetness", "time_of_day",
    "exposure", "camera_height", "camera_pitch", "camera_roll", "camera_yaw", "focal_length",
    "horizon_row", "road_half_width", "sidewalk_width", "lane_width", "building_height_mean",
    "building_height_std", "num_buildings", "num_trees", "vegetation_density", "min_object_depth",
    "max_object_depth", "noise_amplitude",
)


@dataclass(frozen=True)
class Street:
    road_half: float  # metres from the road centre to the kerb
    sidewalk: float  # sidewalk width, metres
    lanes: int


def make_camera(rng: np.random.Generator, width: int, height: int) -> tuple[Camera, dict]:
    fx = width * rng.uniform(1.05, 1.15)
    u0 = width / 2 + rng.uniform(-0.01, 0.01) * width
    v0 = height / 2 + rng.uniform(-0.01, 0.01) * height
    pitch = rng.uniform(-1.5, 1.5)  # degrees, positive looks down (the horizon moves up)
    mount = rng.uniform(1.6, 2.0)
    horizon = v0 - fx * math.tan(math.radians(pitch))
    camera = Camera(width, height, fx, fx, u0, v0, horizon, mount)
    extrinsic = {
        "x": round(float(rng.uniform(1.5, 1.9)), 6),
        "y": 0.0,
        "z": round(mount, 6),
        "roll": round(float(rng.uniform(-0.5, 0.5)), 6),
        "pitch": round(pitch, 6),
        "yaw": round(float(rng.uniform(-1.0, 1.0)), 6),
    }
    return camera, extrinsic


# --- background ----------------------------------------------------------------------------------


def _stuff_part(label: str, outline: np.ndarray, top, bottom, decor=()) -> Part:
    return Part(label, outline, tuple(int(c) for c in top), tuple(int(c) for c in bottom), tuple(decor))


def _frame_box(camera: Camera, y0: float, y1: float) -> np.ndarray:
    return box(0.0, y0, camera.width - 1.0, y1)


def _ground_quad(camera: Camera, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    xs = np.array([x0, x1, x1, x0])
    zs = np.array([z0, z0, z1, z1])
    return camera.project(xs, np.zeros(4), zs)


def _lane_marks(rng, camera: Camera, street: Street) -> list[np.ndarray]:
    lane_width = 2 * street.road_half / street.lanes
    marks = []
    dash, gap = rng.uniform(2.5, 3.5), rng.uniform(5.0, 8.0)
    for k in range(1, street.lanes):
        x = -street.road_half + k * lane_width
        z = 2.0 + rng.uniform(0, dash + gap)
        while z < 160.0:
            marks.append(_ground_quad(camera, x - 0.07, x + 0.07, z, z + dash))
            z += dash + gap
    for x in (-street.road_half + 0.25, street.road_half - 0.25):
        marks.append(_ground_quad(camera, x - 0.07, x + 0.07, 2.0, 400.0))
    return [clip_polygon(m, -2.0, -2.0, camera.width + 1.0, camera.height + 1.0) for m in marks]


def _facade(rng, camera: Camera, x: float, z0: float, z1: float, height: float) -> Part:
    xs = np.full(4, x)
    outline = camera.project(xs, np.array([0.0, 0.0, height, height]), np.array([z0, z1, z1, z0]))
    base = np.array([[150, 150, 150], [175, 160, 135], [140, 120, 105], [190, 188, 180], [115, 118, 125]])[
        rng.integers(5)
    ] + rng.integers(-12, 13, 3)
    windows = []
    window_colour = tuple(int(c) for c in rng.integers(25, 70, 3))
    for floor_y in np.arange(1.2, height - 1.8, 3.0):
        for wz in np.arange(z0 + 0.8, z1 - 1.6, 2.6):
            if wz < 2.0 or camera.fy * 1.5 / wz < 2.0:
                continue
            windows.append(camera.project(np.full(4, x), np.array([floor_y, floor_y, floor_y + 1.5, floor_y + 1.5]),
                                          np.array([wz, wz + 1.3, wz + 1.3, wz])))
    decor = [Decor(tuple(windows), window_colour)] if windows else []
    return _stuff_part("building", outline, base, np.clip(base * 0.8, 0, 255), decor)


def _tree(rng, camera: Camera, x: float, z: float) -> list[Part]:
    to_px, scale = camera.billboard(x, z)
    crown_y, rx = rng.uniform(3.5, 6.0), rng.uniform(1.5, 3.0)
    ry = rx * rng.uniform(0.8, 1.2)
    green = np.array([60, 135, 45]) + rng.integers(-15, 16, 3)
    blobs = [ellipse(rng.uniform(-rx, rx) * 0.6, crown_y + rng.uniform(-ry, ry) * 0.6, rx * 0.35, ry * 0.3, 10)
             for _ in range(4)]
    trunk = _stuff_part("vegetation", to_px(box(-0.15, 0.0, 0.15, crown_y)), (95, 70, 45), (80, 58, 38))
    crown = _stuff_part(
        "vegetation", to_px(ellipse(0.0, crown_y, rx, ry, 20)), green + 15, green - 20,
        [Decor(tuple(to_px(b) for b in blobs), tuple(int(c) for c in green - 30))],
    )
    return [trunk, crown]


def make_stuff(rng, camera: Camera, street: Street, params: dict) -> list[Part]:
    w, h = camera.width, camera.height
    horizon = camera.horizon
    sun = params["sun_height"]
    sky_top = np.array([55, 110, 190]) + sun * 40
    sky = _stuff_part("sky", _frame_box(camera, 0, h - 1), sky_top, np.minimum(sky_top + 70, 245))
    # distant skyline: a step profile of blocks just above the horizon
    xs = np.concatenate([[0.0], np.sort(rng.uniform(0, w - 1, rng.integers(8, 20))), [w - 1.0]])
    tops = horizon - rng.uniform(0.02, 0.16, len(xs) - 1) * h
    steps = [[x, t] for x0, x1, t in zip(xs[:-1], xs[1:], tops) for x in (x0, x1)]
    skyline = _stuff_part("building", poly([0.0, horizon + 2], steps, [w - 1.0, horizon + 2]),
                          (128, 133, 145), (118, 122, 132))
    ground = _stuff_part("sidewalk", _frame_box(camera, horizon, h - 1), (172, 160, 162), (150, 138, 142))
    road = _stuff_part(
        "road", _ground_quad(camera, -street.road_half, street.road_half, 1.0, 1000.0), (96, 90, 102), (72, 66, 78),
        [Decor(tuple(m for m in _lane_marks(rng, camera, street) if len(m)), (215, 215, 210))],
    )
    parts = [sky, skyline, ground, road]
    heights = []
    for side in (-1.0, 1.0):
        x = side * (street.road_half + street.sidewalk)
        z = 1.0
        while z < 250.0:
            length, height = rng.uniform(8.0, 30.0), rng.uniform(6.0, 26.0)
            parts.append(_facade(rng, camera, x, z, z + length, height))
            heights.append(height)
            z += length
    trees = []
    for _ in range(int(params["num_trees"])):
        side = rng.choice([-1.0, 1.0])
        z = float(np.exp(rng.uniform(np.log(6.0), np.log(150.0))))
        trees.append((z, _tree(rng, camera, side * (street.road_half + street.sidewalk * rng.uniform(0.4, 0.8)), z)))
    for _, tree in sorted(trees, key=lambda t: -t[0]):
        parts.extend(tree)
    params["num_buildings"] = float(len(heights))
    params["building_height_mean"] = float(np.mean(heights))
    params["building_height_std"] = float(np.std(heights))
    return [p for p in (_clipped(p, camera) for p in parts) if p is not None]


def _clipped(part: Part, camera: Camera) -> Part | None:
    """Background polygons reach far outside the frame: clip them to it (the painter needs no more)."""
    outline = clip_polygon(part.outline, 0.0, 0.0, camera.width - 1.0, camera.height - 1.0)
    if len(outline) < 3:
        return None
    return Part(part.label, outline, part.colour, part.colour_bottom, part.decor)


def ego_vehicle(camera: Camera) -> Part:
    """The Cityscapes hood at the bottom of the frame (label "ego vehicle"), painted last."""
    w, h = camera.width, camera.height
    xs = np.linspace(0, w - 1, 17)
    ys = (h - 1) - h * (0.05 + 0.04 * np.cos(np.linspace(-np.pi / 2, np.pi / 2, 17)))
    outline = poly([0.0, h - 1.0], np.stack([xs, ys], axis=1), [w - 1.0, h - 1.0])
    return Part("ego vehicle", outline, (38, 38, 44), (20, 20, 24))


# --- objects -------------------------------------------------------------------------------------


def _log_uniform(rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _build(rng, kind: str, side_view: bool, ridden: bool) -> shapes.Model:
    if kind == "car":
        return shapes.car(rng, side_view)
    if kind == "truck":
        return shapes.truck(rng, side_view)
    if kind == "bus":
        return shapes.bus(rng, side_view)
    if kind == "train":
        return shapes.train(rng)
    if kind == "person":
        return shapes.person(rng)
    if kind == "bicycle":
        return shapes.bicycle(rng, ridden)
    if kind == "motorcycle":
        return shapes.motorcycle(rng, ridden)
    raise ValueError(kind)


def _place(camera: Camera, model: shapes.Model, kind: str, x: float, z: float, side_view: bool,
           ridden: bool = False, behind: bool = False) -> SceneObject | None:
    """Project a model; ``None`` when it misses the frame or is too large to be plausible."""
    to_px, scale = camera.billboard(x, z)
    parts = tuple(p.mapped(to_px, scale) for p in model.parts)
    points = np.concatenate([p.outline for p in parts])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    if x1 < 0 or y1 < 0 or x0 > camera.width - 1 or y0 > camera.height - 1:
        return None
    if x1 - x0 > MAX_EXTENT * camera.width or y1 - y0 > MAX_EXTENT * camera.height:
        return None
    label = model.parts[0].label  # the vehicle for a ridden two-wheeler
    return SceneObject(kind, label, x, z, model.length, model.width, model.height, side_view, parts, ridden, behind)


def _depth_in(rng, near: float, far: float, near_share: float = 0.1, mid: float = 12.0) -> float:
    """Mostly log-uniform in [mid, far] (many small far instances), a few in [near, mid) (large ones)."""
    if rng.random() < near_share:
        return float(rng.uniform(near, mid))
    return _log_uniform(rng, mid, far)


def _placement(rng, kind: str, street: Street, parked: bool, max_depth: float):
    """Depth, lateral position, side view and traffic slot (lane or kerb, or None) of one object."""
    r, s = street.road_half, street.sidewalk

    def _depth(rng, near, far, *args):  # every depth range ends at the traffic's farthest object
        return _depth_in(rng, near, min(far, max_depth), *args)

    side = float(rng.choice([-1.0, 1.0]))
    if kind in ("car", "truck", "bus"):
        if kind == "car" and rng.random() < 0.3:  # parked along the kerb, often cut by the frame side
            return _depth(rng, MIN_DEPTH + 1.0, 120.0, 0.25), side * (r - 1.1), False, ("kerb", side)
        z = _depth(rng, 6.0 if kind == "car" else 8.0, 160.0)
        if z > (15.0 if kind == "car" else 30.0) and rng.random() < (0.2 if kind == "car" else 0.25):
            return z, float(rng.uniform(-r, r)), True, None  # crossing the street (between the facades)
        lane_width = (2 * r - 1.0) / street.lanes
        lane = int(rng.integers(street.lanes))
        x = -r + 0.5 + (lane + 0.5) * lane_width + rng.uniform(-0.3, 0.3)
        return z, float(x), False, ("lane", lane)
    if kind == "train":
        return float(rng.uniform(min(40.0, max_depth / 2), min(120.0, max_depth))), float(rng.uniform(-r, r)), True, None
    if kind == "person":
        if rng.random() < 0.2:  # crossing the road
            return _depth(rng, 6.0, 140.0), float(rng.uniform(-r, r)), False, None
        return _depth(rng, MIN_DEPTH, 140.0, 0.2), side * float(rng.uniform(r + 0.3, r + s - 0.3)), False, None
    if parked:  # unridden bicycle / motorcycle on the sidewalk
        return _depth(rng, MIN_DEPTH + 1.0, 80.0, 0.2), side * float(rng.uniform(r + 0.3, r + 1.5)), True, None
    return _depth(rng, 6.0, 120.0, 0.15), side * float(rng.uniform(r - 2.2, r - 0.4)), True, None


def _spawn(rng, kind: str, camera: Camera, street: Street, traffic: dict, max_depth: float, *, ridden=False,
           parked=False):
    """Place one object; vehicles in the same lane or kerb keep a gap. ``None`` if no try fits."""
    for _ in range(PLACEMENT_TRIES):
        z, x, side_view, slot = _placement(rng, kind, street, parked, max_depth)
        model = _build(rng, kind, side_view, ridden)
        if slot is not None and any(abs(z - z1) < (model.length + l1) / 2 + 4.0 for z1, l1 in traffic.get(slot, ())):
            continue
        if side_view and rng.random() < 0.5:
            model = shapes.mirrored(model)
        placed = _place(camera, model, kind, x, z, side_view, ridden)
        if placed is not None:
            if slot is not None:
                traffic.setdefault(slot, []).append((z, model.length))
            return placed
    return None


def _hidden_behind(rng, occluder: SceneObject, camera: Camera) -> SceneObject | None:
    """An object right behind ``occluder`` on the same line of sight, smaller than it in the image."""
    tall = occluder.kind in ("truck", "bus")
    kind = str(rng.choice(["person", "car", "bicycle"] if tall else ["bicycle", "motorcycle"]))
    z = occluder.z * rng.uniform(1.3, 1.8) + occluder.depth_extent
    x = occluder.x * z / occluder.z
    side_view = kind in ("bicycle", "motorcycle")
    model = _build(rng, kind, side_view, ridden=False)
    return _place(camera, model, kind, x, z, side_view, behind=True)


def make_objects(rng, camera: Camera, street: Street, params: dict) -> list[SceneObject]:
    """Every object of the scene (counts from ``params``), sorted far → near for painting."""
    plan = [
        ("car", "num_cars", {}), ("truck", "num_trucks", {}), ("bus", "num_buses", {}),
        ("train", "num_trains", {}), ("person", "num_pedestrians", {}),
        ("bicycle", "num_bicyclists", {"ridden": True}), ("motorcycle", "num_motorcyclists", {"ridden": True}),
        ("bicycle", "num_parked_bicycles", {"parked": True}), ("motorcycle", "num_parked_motorcycles", {"parked": True}),
    ]
    objects: list[SceneObject] = []
    traffic: dict = {}  # lane / kerb → [(depth, length)] of vehicles already there
    for kind, key, options in plan:
        for _ in range(int(params[key])):
            placed = _spawn(rng, kind, camera, street, traffic, params["max_object_depth"], **options)
            if placed is None:
                continue
            objects.append(placed)
            if options.get("parked") and rng.random() < 0.5:
                # parked two-wheelers come in rows: a neighbour just behind and beside, overlapping
                z = placed.z + rng.uniform(0.3, 0.7)
                model = _build(rng, kind, True, False)
                neighbour = _place(camera, model, kind, placed.x + rng.uniform(-0.3, 0.3), z, True)
                if neighbour is not None:
                    objects.append(neighbour)
    occluders = [o for o in objects if o.z < 30.0 and (o.kind in ("truck", "bus") or (o.kind == "car" and not o.side_view))]
    attempts = min(int(params["num_hidden_attempts"]), len(occluders))
    for index in rng.permutation(len(occluders))[:attempts]:
        hidden = _hidden_behind(rng, occluders[int(index)], camera)
        if hidden is not None:
            objects.append(hidden)
    order = sorted(range(len(objects)), key=lambda i: (-objects[i].z, i))  # painter's order, stable
    return [objects[i] for i in order]


# --- groups (Cityscapes only) --------------------------------------------------------------------


def make_group(rng, camera: Camera, street: Street, max_depth: float) -> SceneObject | None:
    """A far crowd of cars, persons or bicycles annotated as one region ("cargroup", ...)."""
    kind = str(rng.choice(["car", "person", "bicycle"]))
    z = float(rng.uniform(min(35.0, max_depth * 0.6), min(110.0, max_depth)))
    centre = float(rng.uniform(-street.road_half - street.sidewalk, street.road_half + street.sidewalk))
    members, outlines = [], []
    for i in range(int(rng.integers(3, 7))):
        model = _build(rng, kind, side_view=kind == "bicycle", ridden=False)
        offset = np.array([(i - 2) * model.width * rng.uniform(0.5, 0.9), 0.0])
        for p in model.parts:
            members.append((p.outline + offset, p.colour))
            outlines.append(p.outline + offset)
    points = np.concatenate(outlines)
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    colour = members[0][1]
    decor = tuple(Decor((outline_m,), c) for outline_m, c in members)
    group = Part(kind + "group", hull, shapes.shade(colour, 0.8), shapes.shade(colour, 0.6), decor)
    width_m = float(points[:, 0].max() - points[:, 0].min())
    model = shapes.Model((group,), width_m, 2.0, float(points[:, 1].max()))
    placed = _place(camera, model, "group", centre, z, True)
    return None if placed is None else replace(placed, label=kind)


# --- the whole scene -----------------------------------------------------------------------------


def scene_params(rng, camera: Camera, extrinsic: dict, street: Street, traffic: Traffic) -> dict:
    """The ~35 float generation parameters a Synscapes meta file carries under ``scene``."""
    train = rng.random() < traffic.train_chance
    params = {
        "num_cars": rng.integers(*traffic.cars), "num_trucks": rng.integers(*traffic.trucks),
        "num_buses": rng.integers(*traffic.buses), "num_trains": 1 if train else 0,
        "num_pedestrians": rng.integers(*traffic.pedestrians),
        "num_bicyclists": rng.integers(*traffic.bicyclists), "num_motorcyclists": rng.integers(*traffic.motorcyclists),
        "num_parked_bicycles": rng.integers(*traffic.parked_bicycles),
        "num_parked_motorcycles": rng.integers(*traffic.parked_motorcycles),
        "num_hidden_attempts": rng.integers(*traffic.hidden_attempts),
        "ego_speed": rng.uniform(0.0, 15.0), "sun_height": rng.uniform(0.1, 1.0),
        "sun_azimuth": rng.uniform(0.0, 360.0), "cloudiness": rng.uniform(0.0, 1.0),
        "fog_density": rng.uniform(0.0, 0.2), "wetness": rng.uniform(0.0, 1.0),
        "time_of_day": rng.uniform(7.0, 19.0), "exposure": rng.uniform(0.85, 1.15),
        "camera_height": camera.mount_height, "camera_pitch": extrinsic["pitch"],
        "camera_roll": extrinsic["roll"], "camera_yaw": extrinsic["yaw"], "focal_length": camera.fx,
        "horizon_row": camera.horizon / camera.height, "road_half_width": street.road_half,
        "sidewalk_width": street.sidewalk, "lane_width": 2 * street.road_half / street.lanes,
        "building_height_mean": 0.0, "building_height_std": 0.0, "num_buildings": 0.0,
        "num_trees": rng.integers(3, 12), "vegetation_density": rng.uniform(0.1, 0.9),
        "min_object_depth": MIN_DEPTH, "max_object_depth": traffic.max_depth, "noise_amplitude": float(rng.integers(4, 9)),
    }
    return {k: float(v) for k, v in params.items()}


def generate_scene(rng: np.random.Generator, width: int, height: int, *, cityscapes: bool = False,
                   traffic: str = "street") -> Scene:
    """One street scene. ``cityscapes`` adds crowd groups and the ego-vehicle hood (Cityscapes only);
    ``traffic`` names a :data:`TRAFFIC` profile."""
    camera, extrinsic = make_camera(rng, width, height)
    lanes = int(rng.integers(2, 5))
    street = Street(road_half=lanes * rng.uniform(3.0, 3.6) / 2 + 0.5, sidewalk=rng.uniform(2.5, 5.0), lanes=lanes)
    params = scene_params(rng, camera, extrinsic, street, TRAFFIC[traffic])
    stuff = make_stuff(rng, camera, street, params)
    objects = make_objects(rng, camera, street, params)
    overlay: tuple[Part, ...] = ()
    if cityscapes:
        made = (make_group(rng, camera, street, params["max_object_depth"]) for _ in range(int(rng.integers(1, 3))))
        groups = [g for g in made if g]
        objects = sorted(objects + groups, key=lambda o: -o.z)
        overlay = (ego_vehicle(camera),)
    params = {k: round(params[k], 6) for k in SYNSCAPES_SCENE_KEYS}
    return Scene(camera, tuple(stuff), tuple(objects), overlay, extrinsic, params)
