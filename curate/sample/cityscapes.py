"""Procedural sample sets in the exact Cityscapes gtFine layout (docs/formats/cityscapes.md §2–§5).

Per frame: ``leftImg8bit/{split}/{city}/{name}_leftImg8bit.png`` and, under ``gtFine/{split}/{city}/``,
``{name}_gtFine_polygons.json``, ``_labelIds.png`` (8 bit), ``_instanceIds.png`` (16 bit) and
``_color.png`` (RGBA). The maps are rasterised from the very polygons of the JSON file, in file order
(cv2.fillPoly, ``LINE_8``), like cityscapesScripts' ``json2instanceImg``: instance number k counts
per label from 0 in file order, so a polygon that later ones cover completely leaves a gap in the
numbering. Riders are their own ``rider`` instances, separate from their bicycle/motorcycle; crowd
regions (``cargroup`` …) and stuff hold plain label ids in instanceIds. Polygons are clipped to the
frame, and shapes that shrink below three distinct vertices are not annotated (as annotators skip them).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import write_json_atomic, write_png_atomic
from curate.labels import INSTANCE_ID_OFFSET, LABELS, label_of_polygon
from curate.sample.geometry import frame_polygon
from curate.sample.model import Part
from curate.sample.render import add_noise, paint, visible_pixels
from curate.sample.scene import generate_scene
from curate.sample.truth import FrameTruth, SampleTruth
from curate.sample.writer import check_sample_options, check_size, generate_and_write, run_frames
from curate.sources.cityscapes import NAME as SOURCE_NAME

#: Made-up city names per split (sorted frame names interleave the cities, like the real set).
CITIES = {"train": ("elmburg", "koppelfeld", "tarnstadt"), "val": ("marlow", "wendhausen")}
#: Cityscapes annotates the 20th frame of each 30-frame snippet: names end in _000019.
ANNOTATED_FRAME = 19
TWO_WHEELERS = ("bicycle", "motorcycle")


@dataclass
class CityscapesFrameData:
    split: str
    city: str
    name: str  # "{city}_{seq:06}_{frame:06}"
    rgb: np.ndarray  # uint8 H×W×3, RGB order
    label_ids: np.ndarray  # uint8
    instance_ids: np.ndarray  # uint16
    polygons: dict
    truth: FrameTruth


def frame_name(split: str, index: int) -> tuple[str, str]:
    """City and frame name of the ``index``-th frame (0-based) of ``split``."""
    if split not in CITIES:
        raise CurateError(None, f"sample split must be one of {', '.join(CITIES)}, got {split!r}")
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{ANNOTATED_FRAME:06d}"


def make_cityscapes_frame(index: int, split: str, seed: int, size: tuple[int, int] = (2048, 1024),
                          traffic: str = "street") -> CityscapesFrameData:
    """Generate the ``index``-th frame of ``split`` (pure: depends only on its arguments)."""
    width, height = check_size(size)
    city, name = frame_name(split, index)
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
    scene = generate_scene(rng, width, height, cityscapes=True, traffic=traffic)

    entries: list[tuple[Part, int]] = []  # (part with pixel polygon, object index or -1), in file order
    for p in scene.stuff:
        entries.append((_framed(p, width, height), -1))
    for o, obj in enumerate(scene.objects):
        for p in obj.parts:
            entries.append((_framed(p, width, height), o))
    for p in scene.overlay:
        entries.append((_framed(p, width, height), -1))
    entries = [(p, o) for p, o in entries if p is not None]

    painting = paint(width, height, [[p] for p, _ in entries])
    seen = visible_pixels(painting.owner, len(entries))
    label_lut = np.zeros(len(entries) + 1, dtype=np.uint8)
    instance_lut = np.zeros(len(entries) + 1, dtype=np.uint16)
    next_k: dict[str, int] = {}
    truth = FrameTruth()
    for i, (p, o) in enumerate(entries, start=1):
        label, is_group = label_of_polygon(p.label)
        label_lut[i] = label.id
        if not label.hasInstances or is_group:
            instance_lut[i] = label.id
            if is_group:
                truth.groups.append((p.label, int(seen[i - 1])))
            continue
        k = next_k.get(label.name, 0)
        next_k[label.name] = k + 1
        iid = label.id * INSTANCE_ID_OFFSET + k
        instance_lut[i] = iid
        pixels = int(seen[i - 1])
        if pixels == 0:
            truth.invisible.append(iid)
            continue
        truth.pixels[iid] = pixels
        truth.visible.setdefault(label.name, []).append(iid)
        if label.name == "rider":
            truth.riders.append((iid, pixels))
        elif label.name in TWO_WHEELERS and not scene.objects[o].ridden:
            truth.unridden.append(iid)
    truth.normalised()

    polygons = {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [{"label": p.label, "polygon": p.outline.tolist()} for p, _ in entries],
    }
    rgb = add_noise(painting.rgb, rng, int(scene.params["noise_amplitude"]))
    return CityscapesFrameData(
        split, city, name, rgb, label_lut[painting.owner], instance_lut[painting.owner], polygons, truth
    )


def _framed(part: Part, width: int, height: int) -> Part | None:
    outline = frame_polygon(part.outline, width, height)
    if len(np.unique(outline, axis=0)) < 3:
        return None
    return Part(part.label, outline, part.colour, part.colour_bottom, part.decor)


def _colour_lut() -> np.ndarray:
    """label id → BGRA colour of the ``_color.png`` files."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    for label in LABELS:
        if label.id >= 0:
            r, g, b = label.color
            lut[label.id] = (b, g, r, 255)
    return lut


_COLOURS = _colour_lut()


def frame_paths(root: Path, split: str, city: str, name: str) -> dict[str, Path]:
    gt = Path(root) / "gtFine" / split / city
    return {
        "image": Path(root) / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
        "polygons": gt / f"{name}_gtFine_polygons.json",
        "labelIds": gt / f"{name}_gtFine_labelIds.png",
        "instanceIds": gt / f"{name}_gtFine_instanceIds.png",
        "color": gt / f"{name}_gtFine_color.png",
    }


def write_cityscapes_frame(root: Path, frame: CityscapesFrameData) -> None:
    paths = frame_paths(root, frame.split, frame.city, frame.name)
    write_png_atomic(paths["image"], np.ascontiguousarray(frame.rgb[..., ::-1]))
    write_json_atomic(paths["polygons"], frame.polygons, indent=4)
    write_png_atomic(paths["labelIds"], frame.label_ids)
    write_png_atomic(paths["instanceIds"], frame.instance_ids)
    write_png_atomic(paths["color"], _COLOURS[frame.label_ids])


def write_cityscapes_sample(out: Path, frames: int, split: str, seed: int, size: tuple[int, int] = (2048, 1024), *,
                            workers: int = 1, progress: bool = False, traffic: str = "street") -> SampleTruth:
    """Write ``frames`` procedural frames of ``split`` in the Cityscapes layout; return what was drawn.

    Output is byte-identical for the same seed, split and size, whatever ``workers`` is.
    """
    out, size = check_sample_options(out, size, traffic, seed, frames)
    frame_name(split, 0)  # validates the split
    task = partial(generate_and_write, make_cityscapes_frame, write_cityscapes_frame)
    results = run_frames(task, [(out, i, split, seed, size, traffic) for i in range(frames)], workers, progress,
                         f"cityscapes {split} frames")
    return SampleTruth(SOURCE_NAME, str(out), seed, size, split, dict(sorted(results)))
