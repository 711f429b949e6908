"""Procedural sample sets in the exact BDD100K instance segmentation layout (docs/formats/bdd100k.md).

Per frame: ``images/10k/{split}/NAME.jpg`` (JPEG) and ``labels/ins_seg/bitmasks/{split}/NAME.png``
(8-bit RGBA bitmask: R = category id 1..8, G = attribute bits, instance id = (B << 8) + A). NAME is
a BDD-like ``xxxxxxxx-xxxxxxxx`` hex stem drawn from (seed, split, index).

Conventions of this generator:

- every object part is one instance: a rider is his own ``rider`` instance, separate from his
  bicycle/motorcycle (BDD100K's convention, as Cityscapes');
- far crowds (the scene's groups) are single instances of their class with the crowd bit set;
- instance ids count up in painting order (far → near) from :data:`FIRST_INSTANCE_ID`, so every
  frame holds ids on both sides of 255 (B = 0 and B > 0); instances that end up fully hidden keep
  their id, which leaves a gap, as in real bitmasks;
- ``truncated``: the frame border cuts part of the silhouette; ``occluded``: more than
  :data:`OCCLUDED_SHARE` of the in-frame silhouette is hidden by nearer objects;
- the ego-vehicle hood is painted into the image but is background in the bitmask.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from curate.errors import CurateError
from curate.fileio import write_bytes_atomic, write_png_atomic
from curate.sample.render import add_noise, paint, visible_pixels
from curate.sample.scene import generate_scene
from curate.sample.truth import FrameTruth, SampleTruth
from curate.sample.writer import check_sample_options, check_size, generate_and_write, run_frames
from curate.sources.bdd100k import (
    CATEGORY_ID,
    SPLITS,
    bitmask_path,
    encode_attributes,
    encode_bitmask,
    image_path,
)
from curate.sources.bdd100k import (
    NAME as SOURCE_NAME,
)

#: Instance id of the first (farthest) instance of a frame.
FIRST_INSTANCE_ID = 250
#: An instance is flagged occluded when more than this share of its in-frame silhouette is hidden.
OCCLUDED_SHARE = 0.1
JPEG_QUALITY = 90
TWO_WHEELERS = ("bicycle", "motorcycle")


@dataclass
class Bdd100kFrameData:
    split: str
    name: str  # file stem, "xxxxxxxx-xxxxxxxx"
    rgb: np.ndarray  # uint8 H×W×3, RGB order
    bitmask: np.ndarray  # uint8 H×W×4, R, G, B, A order
    truth: FrameTruth


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise CurateError(None, f"sample split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def frame_name(seed: int, split: str, index: int) -> str:
    """BDD-like stem of the ``index``-th frame (0-based) of ``split``: 16 hex digits from blake2b."""
    h = hashlib.blake2b(f"synmix-bdd100k/{seed}/{split}/{index}".encode(), digest_size=8).hexdigest()
    return f"{h[:8]}-{h[8:16]}"


def make_bdd100k_frame(index: int, split: str, seed: int, size: tuple[int, int] = (1280, 720),
                       traffic: str = "street") -> Bdd100kFrameData:
    """Generate the ``index``-th frame of ``split`` (pure: depends only on its arguments)."""
    width, height = check_size(size)
    check_split(split)
    name = frame_name(seed, split, index)
    rng = np.random.default_rng([seed, zlib.crc32(f"bdd100k/{split}".encode()), index])
    # cityscapes=True: the scene also holds far crowds (→ crowd instances) and the hood (→ background)
    scene = generate_scene(rng, width, height, cityscapes=True, traffic=traffic)

    # (part, object or None) in painting order; each part is painted as its own group so the
    # painting measures every instance's full and in-frame silhouette
    entries = [(p, None) for p in scene.stuff]
    entries += [(p, obj) for obj in scene.objects for p in obj.parts]
    entries += [(p, None) for p in scene.overlay]
    painting = paint(width, height, [[p] for p, _ in entries])
    seen = visible_pixels(painting.owner, len(entries))

    n = len(entries) + 1
    category_lut = np.zeros(n, dtype=np.uint8)
    attribute_lut = np.zeros(n, dtype=np.uint8)
    instance_lut = np.zeros(n, dtype=np.int32)
    truth = FrameTruth()
    next_id = FIRST_INSTANCE_ID
    for i, (part, obj) in enumerate(entries):
        if obj is None:
            continue
        crowd = obj.kind == "group"
        class_name = obj.label if crowd else part.label
        iid = next_id
        next_id += 1
        full, in_frame, visible = int(painting.full_pixels[i]), int(painting.in_frame_pixels[i]), int(seen[i])
        category_lut[i + 1] = CATEGORY_ID[class_name]
        instance_lut[i + 1] = iid
        attribute_lut[i + 1] = encode_attributes(
            truncated=in_frame < full, occluded=visible < (1.0 - OCCLUDED_SHARE) * in_frame, crowd=crowd)
        if visible == 0:
            truth.invisible.append(iid)
        elif crowd:
            truth.groups.append((part.label, visible))
        else:
            truth.pixels[iid] = visible
            truth.visible.setdefault(class_name, []).append(iid)
            if class_name == "rider":
                truth.riders.append((iid, visible))
            elif class_name in TWO_WHEELERS and not obj.ridden:
                truth.unridden.append(iid)
    if next_id > 0xFFFF + 1:
        raise CurateError(None, f"frame {name}: {next_id - FIRST_INSTANCE_ID} instances exceed the 16-bit ids")
    truth.normalised()

    owner = painting.owner
    bitmask = encode_bitmask(category_lut[owner], attribute_lut[owner], instance_lut[owner])
    rgb = add_noise(painting.rgb, rng, int(scene.params["noise_amplitude"]))
    return Bdd100kFrameData(split, name, rgb, bitmask, truth)


def frame_paths(root: Path, split: str, name: str) -> dict[str, Path]:
    return {"image": image_path(root, split, name), "bitmask": bitmask_path(root, split, name)}


def encode_jpeg(rgb: np.ndarray, path: Path | str = "image") -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise CurateError(path, "JPEG encoding failed")
    return buf.tobytes()


def write_bdd100k_frame(root: Path, frame: Bdd100kFrameData) -> None:
    paths = frame_paths(root, frame.split, frame.name)
    write_bytes_atomic(paths["image"], encode_jpeg(frame.rgb, paths["image"]))
    write_png_atomic(paths["bitmask"], cv2.cvtColor(frame.bitmask, cv2.COLOR_RGBA2BGRA))


def write_bdd100k_sample(out: Path, frames: int, split: str, seed: int, size: tuple[int, int] = (1280, 720), *,
                         workers: int = 1, progress: bool = False, traffic: str = "street") -> SampleTruth:
    """Write ``frames`` procedural frames of ``split`` in the BDD100K layout under ``out`` (the
    ``bdd100k`` folder); return what was drawn, keyed by file stem.

    Output is byte-identical for the same seed, split, size and traffic, whatever ``workers`` is.
    """
    out, size = check_sample_options(out, size, traffic, seed, frames)
    check_split(split)
    names = [frame_name(seed, split, i) for i in range(frames)]
    if len(set(names)) != len(names):  # 64-bit hashes: never seen, but names must be unique
        raise CurateError(None, f"seed {seed}: two {split} frames got the same name")
    task = partial(generate_and_write, make_bdd100k_frame, write_bdd100k_frame)
    results = run_frames(task, [(out, i, split, seed, size, traffic) for i in range(frames)], workers, progress,
                         f"bdd100k {split} frames")
    return SampleTruth(SOURCE_NAME, str(out), seed, size, split, dict(sorted(results)))
