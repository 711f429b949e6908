"""Per-frame conversion: label arrays in, COCO records and counters out — no file I/O.

Both sources go through one O(pixels) sweep (:func:`curate.rle.column_runs`); everything after
it works on runs. Annotation ids are ``image_id * ANNOTATION_ID_STRIDE + k`` with k counting the
frame's annotations in ascending source id, so ids never depend on which worker ran the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate import harmonize as hz
from curate.errors import CurateError
from curate.labels import (
    COCO_ID_BY_LABEL_ID,
    FIRST_INSTANCE_LABEL_ID,
    ID_TO_LABEL,
    INSTANCE_ID_OFFSET,
)
from curate.rle import (
    InstanceMasks,
    column_runs,
    empty_rle,
    encode_instances,
    expand_runs,
    is_in,
    merge_runs,
    sorted_unique,
)
from curate.sources import cityscapes as cs_source
from curate.sources import synscapes as syn_source

#: Annotation id = image id * this + k: room for 10,000 annotations per frame.
ANNOTATION_ID_STRIDE = 10_000


@dataclass
class FrameResult:
    """What one frame contributes: its COCO image, its annotations, counters to sum over frames,
    and (Synscapes ``--gtfine`` only) the harmonized Cityscapes maps (instanceIds, labelIds)."""

    image: dict
    annotations: list[dict]
    counts: dict
    gtfine: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def add_counts(total: dict, counts: dict) -> dict:
    """Add nested counters ``counts`` into ``total`` (in place; returns it)."""
    for key, value in counts.items():
        if isinstance(value, dict):
            add_counts(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


def sort_counts(counts: dict) -> dict:
    """Same counters with every nested dict's keys sorted (stable report layout)."""
    return {k: sort_counts(v) if isinstance(v, dict) else v for k, v in sorted(counts.items())}


def _is_thin(bbox: list[float]) -> bool:
    # Detectron2's Cityscapes loader drops masks one pixel wide or tall; synmix keeps them.
    return bbox[2] <= 1 or bbox[3] <= 1


def _annotation(image_id: int, k: int, label_id: int, mask: tuple[dict, int, list[float]] | None,
                iscrowd: int, source_id: int, rule: str, height: int, width: int) -> dict:
    if mask is None:  # an instance without pixels (only when the "invisible" rule is off)
        segmentation, area, bbox = empty_rle(height, width), 0, [0.0, 0.0, 0.0, 0.0]
    else:
        segmentation, area, bbox = mask
    return {
        "id": image_id * ANNOTATION_ID_STRIDE + k,
        "image_id": image_id,
        "category_id": COCO_ID_BY_LABEL_ID[label_id],
        "segmentation": segmentation,
        "area": area,
        "bbox": bbox,
        "iscrowd": iscrowd,
        "source_instance_id": source_id,
        "rule": rule,
    }


def _mask_fields(masks: InstanceMasks) -> list[tuple[dict, int, list[float]]]:
    """(segmentation, area, bbox) of every row of ``masks``, as plain Python values."""
    return [({"size": [masks.height, masks.width], "counts": counts}, area, bbox)
            for counts, area, bbox in zip(masks.counts, masks.areas.tolist(), masks.bboxes.tolist())]


def _check_annotation_count(path, n: int) -> None:
    if n > ANNOTATION_ID_STRIDE:
        raise CurateError(path, f"{n} annotations in one frame; annotation ids allow {ANNOTATION_ID_STRIDE}")


def _summary_counts(annotations: list[dict]) -> dict:
    crowd: dict[str, int] = {}
    thin = 0
    for a in annotations:
        if a["iscrowd"]:
            name = ID_TO_LABEL[_LABEL_BY_COCO[a["category_id"]]].name
            crowd[name] = crowd.get(name, 0) + 1
        elif a["area"] and _is_thin(a["bbox"]):
            thin += 1
    return {"annotations": len(annotations), "crowd_regions": crowd, "thin_instances_kept": thin}


_LABEL_BY_COCO = {coco: label for label, coco in COCO_ID_BY_LABEL_ID.items()}


# --- Synscapes ---------------------------------------------------------------------------------


def synscapes_image(frame: int, width: int, height: int, split: str) -> dict:
    return {
        "id": frame,
        "file_name": f"img/rgb/{frame}.png",
        "width": width,
        "height": height,
        "frame": frame,
        "source": "synscapes",
        "split": split,
    }


def harmonize_synscapes_frame(frame: syn_source.SynscapesFrame, rules: tuple[str, ...], meta_path):
    """The frame's runs, its instances as the meta has them (ids checked against the map), and the
    instances after ``rules`` with their counters."""
    runs = column_runs(frame.instance_map, frame.class_map)
    initial = hz.from_meta(runs, {i: m.class_id for i, m in frame.meta.instances.items()})
    # the state's id index lists every id of the map (plus, maybe, ids only the meta has)
    syn_source.check_instance_ids(meta_path, f"img/instance/{frame.frame}.png", initial.index()[0], frame.meta)
    state, counts = hz.harmonize(initial, tuple(rules))
    return runs, initial, state, counts


def convert_synscapes_frame(
    frame: syn_source.SynscapesFrame,
    split: str,
    rules: tuple[str, ...] = hz.DEFAULT_RULES,
    with_gtfine: bool = False,
    meta_path: Path | str | None = None,
) -> FrameResult:
    """Harmonize one Synscapes frame and export it as COCO records.

    ``meta_path`` only names the file in error messages. Instance annotations carry the meta's
    occlusion, truncation and depth (bbox2d zmin); instance-class pixels outside every instance
    become one crowd region per class (see :func:`curate.harmonize.crowd_runs`).
    """
    meta_path = meta_path if meta_path is not None else f"meta/{frame.frame}.json"
    height, width = frame.class_map.shape
    runs, _, state, counts = harmonize_synscapes_frame(frame, rules, meta_path)

    exported = {i: r for i, r in state.records.items() if r.exported}
    without_category = [r for r in exported.values() if r.label_id not in COCO_ID_BY_LABEL_ID]
    if without_category:
        r = without_category[0]
        raise CurateError(meta_path, f"instance {r.source_id} has class {ID_TO_LABEL[r.label_id].name}, which has "
                                     "no COCO category (enable rule drop-ignored-classes)")

    # One encoding pass for instances and crowd regions: instance runs keyed by their harmonized
    # id (> 0), crowd runs by minus their label id, so the two can never collide.
    is_exported = hz.run_values(state, {i: 1 for i, r in exported.items() if r.pixels}, 0).astype(bool)
    is_crowd = hz.crowd_runs(state)
    keys = np.where(is_exported, state.instance_ids, np.where(is_crowd, -state.class_ids.astype(np.int64), 0))
    merged = merge_runs(runs, keys)
    masks = encode_instances(merged, keep=merged.values[0] != 0)
    row_of = masks.index()

    entries = []  # (source id, harmonized id, label, row, crowd, rule, meta id)
    for r in exported.values():
        entries.append((r.source_id, r.id, r.label_id, row_of.get(r.id), 0, r.rule, r.meta_id))
    for key, row in row_of.items():
        if key < 0:
            entries.append((-key, key, -key, row, 1, "crowd", None))
    entries.sort(key=lambda e: (e[0], e[4], e[1]))
    _check_annotation_count(meta_path, len(entries))

    image_id = frame.frame
    meta = frame.meta.instances
    annotations = []
    fields = _mask_fields(masks)
    for k, (source_id, _, label_id, row, crowd, rule, meta_id) in enumerate(entries):
        ann = _annotation(image_id, k, label_id, fields[row] if row is not None else None, crowd, source_id, rule,
                          height, width)
        m = meta.get(meta_id) if meta_id is not None else None
        ann["occluded"] = m.occluded if m else None
        ann["truncated"] = m.truncated if m else None
        ann["depth"] = m.bbox2d[4] if m and m.bbox2d else None
        annotations.append(ann)
    counts.update(_summary_counts(annotations))

    gtfine = None
    if with_gtfine:
        try:
            values = hz.gtfine_values(state)
        except ValueError as err:
            raise CurateError(meta_path, str(err)) from None
        gt_runs = merge_runs(runs, values)
        instance_ids = expand_runs(gt_runs, gt_runs.values[0], np.uint16)
        gtfine = (instance_ids, frame.class_map)
    return FrameResult(synscapes_image(frame.frame, width, height, split), annotations, counts, gtfine)


# --- Cityscapes --------------------------------------------------------------------------------


def cityscapes_image(ref: cs_source.CityscapesFrameRef, image_id: int, width: int, height: int) -> dict:
    return {
        "id": image_id,
        "file_name": f"leftImg8bit/{ref.split}/{ref.city}/{ref.name}{cs_source.IMAGE_SUFFIX}",
        "width": width,
        "height": height,
        "frame": ref.name,
        "source": "cityscapes",
        "split": ref.split,
    }


def label_of_cityscapes_id(value: int) -> int:
    """Label id of an instanceIds value: ``value // 1000`` for instances, the value itself for groups."""
    return value // INSTANCE_ID_OFFSET if value >= INSTANCE_ID_OFFSET else value


def convert_cityscapes_frame(
    instance_ids: np.ndarray, ref: cs_source.CityscapesFrameRef, image_id: int
) -> FrameResult:
    """COCO records of one Cityscapes instanceIds map, with Detectron2's decisions (formats.md §3):
    every value ≥ FIRST_INSTANCE_LABEL_ID (person) is a candidate; values < 1000 (group regions) become ``iscrowd: 1``;
    caravan/trailer are skipped (counted). Unlike Detectron2, masks one pixel wide or tall are
    kept (they are real labels) and counted as ``thin_instances_kept``."""
    height, width = instance_ids.shape
    runs = column_runs(instance_ids)
    present = sorted_unique(runs.values[0])
    cs_source.check_instance_ids(ref.instance_path, present)
    candidates = present[present >= FIRST_INSTANCE_LABEL_ID].tolist()
    before: dict[str, int] = {}
    skipped: dict[str, int] = {}
    wanted = []
    for value in candidates:
        label_id = label_of_cityscapes_id(value)
        name = ID_TO_LABEL[label_id].name
        is_instance = value >= INSTANCE_ID_OFFSET
        if is_instance:
            before[name] = before.get(name, 0) + 1
        if label_id in COCO_ID_BY_LABEL_ID:
            wanted.append(value)
        elif is_instance:
            skipped[name] = skipped.get(name, 0) + 1
    _check_annotation_count(ref.instance_path, len(wanted))
    masks = encode_instances(runs, keep=is_in(runs.values[0], wanted))
    annotations = [
        _annotation(image_id, k, label_of_cityscapes_id(value), mask, int(value < INSTANCE_ID_OFFSET), value,
                    "original", height, width)
        for k, (value, mask) in enumerate(zip(masks.ids.tolist(), _mask_fields(masks)))
    ]
    exported = {}
    for a in annotations:
        if not a["iscrowd"]:
            name = ID_TO_LABEL[_LABEL_BY_COCO[a["category_id"]]].name
            exported[name] = exported.get(name, 0) + 1
    counts = {
        "instances": {"before": before, "after drop-ignored-classes": exported},
        "rules": {"drop-ignored-classes": {"instances_dropped": sum(skipped.values()), "by_class": skipped}},
    }
    counts.update(_summary_counts(annotations))
    return FrameResult(cityscapes_image(ref, image_id, width, height), annotations, counts)
