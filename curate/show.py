"""Pictures a person would rather look at than read: ``curate show synscapes`` and ``curate show prune``.

* :func:`synscapes_picture` — one Synscapes frame twice: its original instances (one per meta
  id, coloured by meta class, so a rider on a bicycle is one bicycle-coloured instance) and the
  instances after :func:`curate.harmonize.harmonize` (the rider split off as a rider instance),
  like figure 2 of the study.
* :func:`prune_picture` — one frame of a ``curate convert`` output once per removal fraction p,
  with the labels that survive the per-class cut-offs :func:`curate.prune.plan_pruning` computes
  over the *whole split* (filled) and the removed ones as white outlines, like figure 3.

Both return a :class:`Picture` (an RGB array plus where each panel lies); :func:`write_picture`
writes it as a PNG atomically. Drawing lives in :mod:`curate.overlay`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util

from curate import harmonize as hz
from curate import sources
from curate.coco import CocoColumns, coco_path, read_coco_columns, read_image_masks
from curate.errors import CurateError
from curate.fileio import check_output_folder, read_png, write_png_atomic
from curate.labels import ID_TO_LABEL, LABEL_ID_BY_COCO_ID
from curate.overlay import (
    FILL_ALPHA,
    GHOST_COLOUR,
    NO_IMAGE_GREY,
    Figure,
    InstanceStyle,
    LegendEntry,
    class_legend,
    compose,
    fit_size,
    panel_width_for,
    render_panel,
    row_of,
    zoom,
)
from curate.prune import check_fraction, plan_pruning, uniform_fractions
from curate.rle import expand_runs, extract_instances
from curate.sources import synscapes as syn_source

#: Figures stay about this wide: panels of large frames are scaled down to fit.
DEFAULT_MAX_WIDTH = 2000
#: The removal fractions of the study's figure 3.
DEFAULT_FRACTIONS = (0.0, 0.4, 0.6, 0.7, 0.8, 0.9)
#: Arrow's JSON block size is an int32: larger files are read with json.loads.


@dataclass
class PanelSummary:
    """What one panel shows: its title, how many instances are drawn filled, and (prune pictures)
    the removal fraction and the frame's instance count before removal."""

    title: str
    instances: int
    fraction: float | None = None
    total: int | None = None
    by_class: dict[str, int] = field(default_factory=dict)


@dataclass
class Picture:
    figure: Figure
    panels: list[PanelSummary]
    heading: str

    @property
    def image(self) -> np.ndarray:
        return self.figure.image


# --- small parsers (one-line errors for the CLI) --------------------------------------------------


def parse_frame_number(text: str | int) -> int:
    """A Synscapes frame number (1, 2, …) from the command line."""
    value = str(text).strip()
    if not value.isdigit() or int(value) < 1:
        raise CurateError(None, f"FRAME {text!r} is not a Synscapes frame number (1, 2, …)")
    return int(value)


def parse_fractions(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"0,0.4,0.6"`` → (0.0, 0.4, 0.6); each in [0, 1) (:func:`curate.prune.check_fraction`)."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    values = []
    for part in parts:
        if part == "":
            continue
        try:
            value = float(part)
        except (TypeError, ValueError):
            raise CurateError(None, f"--fractions: {part!r} is not a number") from None
        values.append(check_fraction(value, "--fractions"))
    if not values:
        raise CurateError(None, "--fractions: give at least one removal fraction, e.g. 0,0.4,0.8")
    return tuple(values)


def check_png_path(path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise CurateError(path, "--out must name a .png file")
    if path.is_dir():
        raise CurateError(path, "--out is a folder; name a .png file")
    check_output_folder(path.parent, "folder of --out")
    return path


def format_percent(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g} %"


# --- images ------------------------------------------------------------------------------------


def read_rgb(path: Path | None, width: int, height: int) -> tuple[np.ndarray, bool]:
    """The frame's RGB image at the label maps' size, or a grey canvas (False) when it is missing."""
    if path is None or not Path(path).is_file():
        return np.full((height, width, 3), NO_IMAGE_GREY, np.uint8), False
    bgr = read_png(path, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (height, width):  # e.g. Synscapes' 2048×1024 RGB beside 1440×720 labels
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return rgb, True


def write_picture(path: Path, picture: Picture) -> Path:
    """Write the picture as a PNG (temp name, then rename)."""
    path = check_png_path(path)
    write_png_atomic(path, cv2.cvtColor(picture.image, cv2.COLOR_RGB2BGR))
    return path


def _no_image_note(found: bool, path) -> str:
    return "" if found else f" (no RGB image at {path}: grey background)"


def _count_by_class(labels: Sequence[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label_id in sorted(labels):
        name = ID_TO_LABEL[label_id].name
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- curate show synscapes ---------------------------------------------------------------------


@dataclass
class HarmonizedFrame:
    """A Synscapes frame's instances before and after harmonization, as drawable id maps."""

    original_labels: dict[int, int]  # visible Synscapes id → meta class
    harmonized_map: np.ndarray  # harmonized id per pixel (0: none)
    harmonized_labels: dict[int, int]  # exported harmonized id with pixels → class
    counts: dict  # curate.harmonize.harmonize's counters
    riders: dict[int, int]  # two-wheeler id → pixels of the rider split off it


def harmonize_frame(frame: syn_source.SynscapesFrame, rules: Sequence[str] = hz.DEFAULT_RULES) -> HarmonizedFrame:
    """The converter's own harmonization of the frame, kept as id maps to draw."""
    runs, initial, state, counts = syn_source.harmonize_frame(frame, tuple(rules), f"meta/{frame.frame}.json")
    harmonized = {i: r.label_id for i, r in state.records.items() if r.exported and r.pixels > 0}
    return HarmonizedFrame(
        original_labels={i: r.label_id for i, r in initial.records.items() if r.pixels > 0},
        harmonized_map=expand_runs(runs, state.instance_ids, np.int64),
        harmonized_labels=harmonized,
        counts=counts,
        riders={r.source_id: r.pixels for r in state.records.values() if r.rule == "rider-split" and r.pixels > 0},
    )


#: At most this many ridden two-wheelers are shown enlarged under the panels.
MAX_DETAILS = 4


def rider_details(rgb: np.ndarray, instance_map: np.ndarray, frame_instances: HarmonizedFrame,
                  size: tuple[int, int], alpha: float) -> tuple[list[np.ndarray] | None, list[str] | None]:
    """Enlarged crops of the ridden two-wheelers (most rider pixels first), as Synscapes labels them
    and after harmonization: a strip under each panel, or (None, None) when the frame has none."""
    # riders of a few pixels say nothing enlarged: keep those of at least 1/10,000 of the frame
    least = max(1, instance_map.size // 10_000)
    riders = {i: n for i, n in frame_instances.riders.items() if n >= least}
    if not riders:
        return None, None
    vehicles = sorted(riders, key=lambda i: (-riders[i], i))[:MAX_DETAILS]
    masks = extract_instances(instance_map, keep=vehicles)
    boxes = dict(zip(masks.ids.tolist(), masks.bboxes.tolist()))
    height = int(min(240, max(96, size[1] // 3)))
    original_styles = {i: InstanceStyle(c) for i, c in frame_instances.original_labels.items()}
    harmonized_styles = {i: InstanceStyle(c) for i, c in frame_instances.harmonized_labels.items()}
    before, after = [], []
    for vehicle in vehicles:
        image_crop, original_crop = zoom(rgb, instance_map, boxes[vehicle], height)
        _, harmonized_crop = zoom(rgb, frame_instances.harmonized_map, boxes[vehicle], height)
        before.append(render_panel(image_crop, original_crop, original_styles, alpha=alpha, thickness=2))
        after.append(render_panel(image_crop, harmonized_crop, harmonized_styles, alpha=alpha, thickness=2))
    titles = ["enlarged: ridden two-wheelers, one instance each in Synscapes",
              "enlarged: the same after rider-split — rider and vehicle are two instances"]
    return [row_of(before, size[0]), row_of(after, size[0])], titles


def synscapes_picture(root: Path, frame: int | str, rules: str | Sequence[str] | None = None,
                      alpha: float = FILL_ALPHA, max_width: int = DEFAULT_MAX_WIDTH) -> Picture:
    """Original Synscapes instances (left) next to the harmonized ones (right) on the RGB frame."""
    root = syn_source.check_root(root)
    n = parse_frame_number(frame)
    paths = syn_source.frame_paths(root, n)
    if not paths["meta"].is_file():
        raise CurateError(paths["meta"], f"no frame {n} in {root} (its meta file does not exist)")
    rule_names = syn_source.SOURCE.select_rules(rules)
    data = syn_source.load_frame(root, n)
    height, width = data.class_map.shape
    rgb, found = read_rgb(paths["rgb"], width, height)
    frame_instances = harmonize_frame(data, rule_names)

    size = fit_size(width, height, panel_width_for(width, 2, max_width))
    original = render_panel(rgb, data.instance_map,
                            {i: InstanceStyle(c) for i, c in frame_instances.original_labels.items()}, size, alpha)
    harmonized = render_panel(rgb, frame_instances.harmonized_map,
                              {i: InstanceStyle(c) for i, c in frame_instances.harmonized_labels.items()},
                              size, alpha)

    footers, footer_titles = rider_details(rgb, data.instance_map, frame_instances, size, alpha)

    split_counts = frame_instances.counts["rules"].get("rider-split")
    riders = (f", {split_counts['riders_created']} riders split off" if split_counts
              else " (rider-split not applied)")
    n_original = len(frame_instances.original_labels)
    n_harmonized = len(frame_instances.harmonized_labels)
    titles = [
        f"original: {n_original} instances (a rider and his two-wheeler are one)",
        f"harmonized: {n_harmonized} instances{riders}",
    ]
    heading = (f"Synscapes frame {n}: original instances vs. Cityscapes conventions (rules: "
               f"{', '.join(rule_names) or 'none'}){_no_image_note(found, paths['rgb'])}")
    legend_ids = set(frame_instances.original_labels.values()) | set(frame_instances.harmonized_labels.values())
    figure = compose([original, harmonized], titles, columns=2, heading=heading,
                     legend_entries=class_legend(sorted(legend_ids)), footers=footers, footer_titles=footer_titles)
    panels = [
        PanelSummary(titles[0], n_original, by_class=_count_by_class(frame_instances.original_labels.values())),
        PanelSummary(titles[1], n_harmonized, by_class=_count_by_class(frame_instances.harmonized_labels.values())),
    ]
    return Picture(figure, panels, heading)


# --- curate show prune -------------------------------------------------------------------------


@dataclass
class FrameAnnotations:
    """One frame of a ``curate convert`` COCO file: the split's columns (for the cut-offs), the
    frame's image record and its instances' masks, and where the images are."""

    path: Path
    columns: CocoColumns
    image: dict  # id, width, height, frame, file_name
    members: np.ndarray  # rows of the frame's instances (not crowd) in ``columns``
    segmentations: list[dict]  # COCO RLE of each member, in the same order
    image_root: Path


def _coco_file(out: Path, source: str, split: str) -> Path:
    if source not in sources.NAMES:
        raise CurateError(None, f"--source must be one of {', '.join(sources.NAMES)}, not {source!r}")
    out = Path(out)
    if not out.is_dir():
        raise CurateError(out, "folder not found (expected a curate convert output folder)")
    path = coco_path(out, source, split)
    if not path.is_file():
        raise CurateError(path, f"file not found (run curate convert {source} … --out {out} --split {split})")
    return path


def _frame_row(path: Path, columns: CocoColumns, frame: str | int) -> int:
    """Position (in ``columns.image_id``) of the image whose ``frame`` is ``frame``."""
    key = str(frame).strip()
    if sources.get(columns.source).frame_key_type is int and key.isdigit():
        key = str(int(key))  # "007" names frame 7
    frames = columns.image_frame.to_pylist()
    if key in frames:
        return frames.index(key)
    more = ", …" if len(frames) > 3 else ""
    raise CurateError(path, f"no frame {key!r} among its {len(frames)} frames ({', '.join(frames[:3])}{more})")


def load_frame_annotations(out: Path, frame: str | int, source: str | None = None,
                           split: str = "train") -> FrameAnnotations:
    """Columns of ``OUT/{source}_{split}.json`` and the masks of one of its frames (``source``:
    default the synthetic source, the one pruning is for)."""
    source = source or sources.of_kind("synthetic")[0].name
    path = _coco_file(out, source, split)
    columns = read_coco_columns(path, source, split)
    row = _frame_row(path, columns, frame)
    image_id = int(columns.image_id[row])
    members = np.flatnonzero((columns.numpy("image_id") == image_id) & (columns.numpy("iscrowd") == 0))
    file_name, segmentations = read_image_masks(path, image_id, members)
    image = {"id": image_id, "width": int(columns.image_width[row]), "height": int(columns.image_height[row]),
             "frame": columns.image_frame[row].as_py(), "file_name": file_name}
    root = columns.info.get("image_root")
    if not root:
        raise CurateError(path, "info.image_root missing: cannot tell where the images are")
    root = Path(root)
    image_root = root if root.is_absolute() else Path(os.path.abspath(path.parent / root))
    return FrameAnnotations(path, columns, image, members, segmentations, image_root)


def paint_annotations(segmentations: Sequence[dict], areas: Sequence[int], height: int, width: int,
                      path=None) -> np.ndarray:
    """Id map with value k + 1 on the pixels of ``segmentations[k]`` (large first, so a small
    instance is never hidden under a large one where masks overlap)."""
    id_map = np.zeros((height, width), np.int32)
    for k in sorted(range(len(segmentations)), key=lambda i: (-areas[i], i)):
        rle = segmentations[k]
        if not isinstance(rle, dict) or list(rle.get("size", [])) != [height, width]:
            raise CurateError(path, f"annotation segmentation is not an RLE of the image's size {width}x{height}")
        counts = rle["counts"]
        mask = mask_util.decode({"size": [height, width], "counts": counts.encode() if isinstance(counts, str)
                                 else counts})
        id_map[mask.astype(bool)] = k + 1
    return id_map


def prune_picture(out: Path, frame: str | int, fractions: Sequence[float] | str = DEFAULT_FRACTIONS,
                  source: str | None = None, split: str = "train", columns: int = 2,
                  alpha: float = FILL_ALPHA, max_width: int = DEFAULT_MAX_WIDTH) -> Picture:
    """One panel per removal fraction p: the frame's labels that survive p's per-class cut-offs.

    The cut-offs come from :func:`curate.prune.plan_pruning` over every instance of the split (as
    ``curate manifest`` prunes), so a frame keeps more or fewer than p of its own instances.
    Crowd regions are not instances (neither pruned nor drawn).
    """
    fractions = parse_fractions(fractions)
    if columns < 1:
        raise CurateError(None, f"--columns must be at least 1, not {columns}")
    data = load_frame_annotations(out, frame, source, split)
    cols, image, members = data.columns, data.image, data.members
    height, width = image["height"], image["width"]
    areas, category, ann_ids, iscrowd = (cols.numpy(name) for name in ("area", "category_id", "id", "iscrowd"))
    labels = [LABEL_ID_BY_COCO_ID[int(c)] for c in category[members]]
    id_map = paint_annotations(data.segmentations, areas[members].tolist(), height, width, data.path)
    rgb_path = data.image_root / image["file_name"] if image["file_name"] else None
    rgb, found = read_rgb(rgb_path, width, height)

    columns = min(columns, len(fractions))
    size = fit_size(width, height, panel_width_for(width, columns, max_width))
    panels, titles, summaries = [], [], []
    for fraction in fractions:
        plan = plan_pruning(category, areas, ann_ids, iscrowd, uniform_fractions(fraction))
        kept = ~plan.removed[members]
        styles = {k + 1: InstanceStyle(labels[k], filled=bool(kept[k])) for k in range(len(members))}
        panels.append(render_panel(rgb, id_map, styles, size, alpha))
        title = f"p = {format_percent(fraction)}: {int(kept.sum())} of {len(members)} instances"
        titles.append(title)
        summaries.append(PanelSummary(title, int(kept.sum()), fraction, len(members),
                                      _count_by_class([lab for lab, k in zip(labels, kept) if k])))

    n_split = int((iscrowd == 0).sum())
    heading = (f"{source} {split}, frame {image['frame']}: labels left after removing the p % "
               f"smallest instances of each class (cut-offs over all {len(cols.image_id)} frames, {n_split} "
               f"instances){_no_image_note(found, rgb_path)}")
    legend_entries = class_legend(labels) + [LegendEntry("removed (outline only)", GHOST_COLOUR, filled=False)]
    figure = compose(panels, titles, columns, heading, legend_entries)
    return Picture(figure, summaries, heading)


__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_MAX_WIDTH",
    "Picture",
    "PanelSummary",
    "harmonize_frame",
    "parse_fractions",
    "prune_picture",
    "synscapes_picture",
    "write_picture",
]
