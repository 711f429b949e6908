"""Procedural sample sets in the exact Synscapes layout (docs/formats/synscapes.md §2–§6).

Writes ``img/rgb/N.png`` (8-bit RGB), ``img/class/N.png`` (8-bit label ids), ``img/instance/N.png``
(24-bit ids as R + 256·G + 65536·B) and ``meta/N.json``. The optional ``img/depth/N.exr`` and the
``img/rgb-2k`` copies are not written: nothing in synmix reads them.

Conventions of this generator (the real data leaves them undocumented):

- instance ids are ``class_id * 100000 + n`` with n = 1, 2, … per class in painting order, as
  observed in Synscapes (e.g. 2400004); readers must still take the class from the meta file.
- a rider and the bicycle/motorcycle he rides are ONE instance whose meta class is the vehicle;
  the class PNG labels the rider's pixels ``rider`` and the vehicle's pixels ``bicycle``/``motorcycle``.
- ``bbox2d`` is the in-frame extent of the whole silhouette (occlusion ignored), normalised;
  ``zmin``/``zmax`` the depth range of the 3-D box. ``bbox3d`` is in ego-vehicle metres (x forward,
  y left, z up): ``origin`` a bottom corner and ``x``/``y``/``z`` the box edges from it.
- ``truncated`` = 1 − in-frame silhouette pixels / full silhouette pixels;
  ``occluded`` = 1 − visible pixels / in-frame silhouette pixels (0 when nothing is in frame).
  Fully occluded instances stay in the meta file with no pixel in the PNGs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import write_json_atomic, write_png_atomic
from curate.labels import LABEL_ID
from curate.sample.render import add_noise, paint, visible_pixels
from curate.sample.scene import generate_scene
from curate.sample.truth import FrameTruth, SampleTruth
from curate.sample.writer import check_frames, check_sample_options, check_size, run_frames
from curate.sources.synscapes import DEFAULT_SPLITS, encode_instance_png, frame_paths
from curate.sources.synscapes import NAME as SOURCE_NAME

#: Observed Synscapes id scheme: class id × this + running number.
INSTANCE_ID_STRIDE = 100_000
TWO_WHEELERS = ("bicycle", "motorcycle")


@dataclass
class SynscapesFrameData:
    number: int
    rgb: np.ndarray  # uint8 H×W×3, RGB order
    class_map: np.ndarray  # uint8 H×W label ids
    instance_ids: np.ndarray  # int32 H×W, 0 = none
    meta: dict
    truth: FrameTruth


def frame_numbers(frames: int, val_fraction: float = 0.2) -> list[int]:
    """The first ceil(frames·(1 − val_fraction)) frames are 1, 2, … (train), the rest 20001, … (val)."""
    check_frames(frames)
    if not 0.0 <= val_fraction <= 1.0:
        raise CurateError(None, f"val fraction must lie in 0..1, got {val_fraction}")
    train = math.ceil(round(frames * (1.0 - val_fraction), 9))
    val = frames - train
    train_range, val_range = DEFAULT_SPLITS["train"], DEFAULT_SPLITS["val"]
    if train > len(train_range) or val > len(val_range):
        raise CurateError(
            None, f"{train} train / {val} val frames exceed Synscapes' {len(train_range)} / {len(val_range)}"
        )
    return list(train_range[:train]) + list(val_range[:val])


def make_synscapes_frame(number: int, seed: int, size: tuple[int, int] = (1440, 720),
                         traffic: str = "street") -> SynscapesFrameData:
    """Generate frame ``number`` (pure: depends only on seed, number, size and traffic profile)."""
    width, height = check_size(size)
    rng = np.random.default_rng([seed, number])
    scene = generate_scene(rng, width, height, traffic=traffic)
    groups = [[p] for p in scene.stuff] + [list(o.parts) for o in scene.objects]
    painting = paint(width, height, groups)
    n_parts = sum(len(g) for g in groups)

    ids, counters = [], defaultdict(int)
    for obj in scene.objects:
        counters[obj.label] += 1
        ids.append(LABEL_ID[obj.label] * INSTANCE_ID_STRIDE + counters[obj.label])
    label_lut = np.zeros(n_parts + 1, dtype=np.uint8)
    instance_lut = np.zeros(n_parts + 1, dtype=np.int32)
    part_index = {}  # (object, part) → painting index
    index = 0
    for g, parts in enumerate(groups):
        for k, p in enumerate(parts):
            index += 1
            label_lut[index] = LABEL_ID[p.label]
            if g >= len(scene.stuff):
                instance_lut[index] = ids[g - len(scene.stuff)]
                part_index[g - len(scene.stuff), k] = index
    class_map = label_lut[painting.owner]
    instance_ids = instance_lut[painting.owner]
    seen = visible_pixels(painting.owner, n_parts)

    first = len(scene.stuff)
    truth = FrameTruth()
    instance = {key: {} for key in ("bbox2d", "bbox3d", "class", "occluded", "truncated")}
    for o, (obj, iid) in enumerate(zip(scene.objects, ids)):
        full, in_frame = int(painting.full_pixels[first + o]), int(painting.in_frame_pixels[first + o])
        visible = sum(int(seen[part_index[o, k] - 1]) for k in range(len(obj.parts)))
        key = str(iid)
        instance["bbox2d"][key] = _bbox2d(painting.boxes[first + o], obj, width, height)
        instance["bbox3d"][key] = _bbox3d(obj, scene.extrinsic["x"])
        instance["class"][key] = LABEL_ID[obj.label]
        instance["occluded"][key] = round(1.0 - visible / in_frame, 6) if in_frame else 0.0
        instance["truncated"][key] = round(1.0 - in_frame / full, 6)
        if visible == 0:
            truth.invisible.append(iid)
            continue
        truth.pixels[iid] = visible
        truth.visible.setdefault(obj.label, []).append(iid)
        if obj.label in TWO_WHEELERS:
            rider = sum(int(seen[part_index[o, k] - 1]) for k, p in enumerate(obj.parts) if p.label == "rider")
            if rider:
                truth.riders.append((iid, rider))
            else:
                truth.unridden.append(iid)
    truth.normalised()

    camera = scene.camera
    meta = {
        "camera": {
            "extrinsic": dict(scene.extrinsic),
            "intrinsic": {
                "fx": round(camera.fx, 6), "fy": round(camera.fy, 6), "u0": round(camera.u0, 6),
                "v0": round(camera.v0, 6), "resx": width, "resy": height,
            },
        },
        "instance": instance,
        "scene": dict(scene.params),
    }
    rgb = add_noise(painting.rgb, rng, int(scene.params["noise_amplitude"]))
    return SynscapesFrameData(number, rgb, class_map, instance_ids, meta, truth)


def _bbox2d(box: np.ndarray, obj, width: int, height: int) -> dict:
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0:  # nothing inside the frame: the clipped extent of the outline points
        points = np.concatenate([p.outline for p in obj.parts])
        x0, y0 = np.clip(points.min(axis=0), 0, [width, height])
        x1, y1 = np.clip(points.max(axis=0), 0, [width, height])
    return {
        "xmin": round(x0 / width, 6), "xmax": round(x1 / width, 6),
        "ymin": round(y0 / height, 6), "ymax": round(y1 / height, 6),
        "zmin": round(obj.z, 6), "zmax": round(obj.z + obj.depth_extent, 6),
    }


def _bbox3d(obj, camera_x: float) -> dict:
    forward, left = camera_x + obj.z, -obj.x  # camera right (+x) is ego left's opposite
    return {
        "origin": [round(forward, 6), round(left - obj.lateral_extent / 2, 6), 0.0],
        "x": [round(obj.depth_extent, 6), 0.0, 0.0],
        "y": [0.0, round(obj.lateral_extent, 6), 0.0],
        "z": [0.0, 0.0, round(obj.height, 6)],
    }


def write_synscapes_frame(root: Path, frame: SynscapesFrameData) -> None:
    paths = frame_paths(root, frame.number)
    write_png_atomic(paths["rgb"], np.ascontiguousarray(frame.rgb[..., ::-1]))
    write_png_atomic(paths["class"], frame.class_map)
    write_png_atomic(paths["instance"], encode_instance_png(frame.instance_ids))
    write_json_atomic(paths["meta"], frame.meta)


def _generate_and_write(root: Path, number: int, seed: int, size: tuple[int, int],
                        traffic: str) -> tuple[int, FrameTruth]:
    frame = make_synscapes_frame(number, seed, size, traffic)
    write_synscapes_frame(root, frame)
    return number, frame.truth


def write_synscapes_sample(
    out: Path,
    frames: int,
    seed: int,
    size: tuple[int, int] = (1440, 720),
    val_fraction: float = 0.2,
    *,
    workers: int = 1,
    progress: bool = False,
    traffic: str = "street",
) -> SampleTruth:
    """Write ``frames`` procedural frames in the Synscapes layout under ``out``; return what was drawn.

    Output is byte-identical for the same seed and size, whatever ``workers`` is. ``traffic``:
    "street" (dense, Synscapes-like) or "sparse" (few near objects; see ``scene.TRAFFIC``).
    """
    out, size = check_sample_options(out, size, traffic, seed, frames)
    numbers = frame_numbers(frames, val_fraction)
    results = run_frames(
        _generate_and_write, [(out, n, seed, size, traffic) for n in numbers], workers, progress, "synscapes frames"
    )
    return SampleTruth(SOURCE_NAME, str(out), seed, size, None, dict(results))
