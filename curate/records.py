"""COCO records of one frame, shared by every source: annotations, counters, the frame result.

A source module turns one frame's label maps into a :class:`FrameResult` with these helpers, so
every source writes the same annotation fields in the same order (``docs/architecture.md``).
Annotation ids are ``image_id * ANNOTATION_ID_STRIDE + k`` with k counting the frame's annotations
in the source's own order, so ids never depend on which worker ran the frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.labels import COCO_ID_BY_LABEL_ID, ID_TO_LABEL, LABEL_ID_BY_COCO_ID
from curate.rle import InstanceMasks, empty_rle

#: Annotation id = image id * this + k: room for 10,000 annotations per frame.
ANNOTATION_ID_STRIDE = 10_000

#: (segmentation, area, bbox) of one mask, as plain Python values.
MaskFields = tuple[dict, int, list[float]]


@dataclass
class FrameResult:
    """What one frame contributes: its COCO image, its annotations, counters to sum over frames,
    and (Synscapes ``--gtfine`` only) the harmonized Cityscapes maps (instanceIds, labelIds)."""

    image: dict
    annotations: list[dict]
    counts: dict
    gtfine: tuple[np.ndarray, np.ndarray | None] | None = field(default=None, repr=False)
    #: notes on the frame (curate.findings.finding), counted in the report and listed by curate check
    findings: list[dict] = field(default_factory=list)
    #: hash of the frame's label files: byte-identical frames are found at the merge
    digest: str | None = None


def content_digest():
    """A hash for the bytes of a frame's label files, fed by :func:`curate.fileio.read_png` as it
    reads them (``digest=``): duplicate frames have equal ``hexdigest()``s, at no extra read.
    SHA-256: with the SHA instructions of current x86-64 and ARM processors, twice blake2b's speed
    (19 vs 34 us for a generated Synscapes frame's two PNGs, benchmarks/convert_bench.py's data)."""
    return hashlib.sha256()


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


def count_by_name(counter: dict[str, int], name: str) -> None:
    counter[name] = counter.get(name, 0) + 1


def is_thin(bbox: list[float]) -> bool:
    # Detectron2's Cityscapes loader drops masks one pixel wide or tall; synmix keeps them.
    return bbox[2] <= 1 or bbox[3] <= 1


def image_record(image_id: int, file_name: str, width: int, height: int, frame, source: str, split: str) -> dict:
    """The COCO ``images`` entry every source writes (``frame``: the source's own frame key)."""
    return {"id": image_id, "file_name": file_name, "width": width, "height": height, "frame": frame,
            "source": source, "split": split}


def annotation(image_id: int, k: int, label_id: int, mask: MaskFields | None, iscrowd: int, source_id: int,
               rule: str, height: int, width: int) -> dict:
    """The k-th annotation of an image; ``mask=None`` is an instance without pixels."""
    if mask is None:  # only when Synscapes' "invisible" rule is off
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


def mask_fields(masks: InstanceMasks) -> list[MaskFields]:
    """(segmentation, area, bbox) of every row of ``masks``, as plain Python values."""
    return [({"size": [masks.height, masks.width], "counts": counts}, area, bbox)
            for counts, area, bbox in zip(masks.counts, masks.areas.tolist(), masks.bboxes.tolist())]


def check_annotation_count(path: Path | str, n: int) -> None:
    if n > ANNOTATION_ID_STRIDE:
        raise CurateError(path, f"{n} annotations in one frame; annotation ids allow {ANNOTATION_ID_STRIDE}",
                          "too_many_instances")


def class_name_of(annotation_record: dict) -> str:
    return ID_TO_LABEL[LABEL_ID_BY_COCO_ID[annotation_record["category_id"]]].name


def summary_counts(annotations: list[dict]) -> dict:
    """Counters every source reports: annotations, crowd regions per class, thin masks kept."""
    crowd: dict[str, int] = {}
    thin = 0
    for a in annotations:
        if a["iscrowd"]:
            count_by_name(crowd, class_name_of(a))
        elif a["area"] and is_thin(a["bbox"]):
            thin += 1
    return {"annotations": len(annotations), "crowd_regions": crowd, "thin_instances_kept": thin}


def exported_by_class(annotations: list[dict]) -> dict[str, int]:
    """Instances (not crowd regions) per class name."""
    exported: dict[str, int] = {}
    for a in annotations:
        if not a["iscrowd"]:
            count_by_name(exported, class_name_of(a))
    return exported
