"""Per-class percentile pruning: remove the share p of a class's instances with the smallest area.

The rule (docs/method.md §4.2, as the study did it): for class c with fraction p, over **all**
instances of class c in the source split (not per frame, and before any frame is sampled), sort by
(area, annotation id) and remove the first ``removal_count(p, n) = floor(p * n)`` of them. The
annotation id breaks ties between equal areas, so the result does not depend on file order. Crowd
regions (``iscrowd = 1``) are not instances: they are neither counted nor pruned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from curate.errors import CurateError
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID

#: The study's choice (docs/method.md §4.3: "remove about 40 % of labels").
STUDY_FRACTION = 0.4
#: The removal fractions the study swept: 0 %, 10 %, … 90 %.
PRUNE_SWEEP = tuple(round(i / 10, 1) for i in range(10))
#: Guard against 0.29 * 100 = 28.999999999999996 flooring to 28.
_FLOOR_TOLERANCE = 1e-9


def removal_count(fraction: float, n: int) -> int:
    """How many of ``n`` instances the fraction removes: ⌊p·n⌋ (never more than the stated share)."""
    return min(n, math.floor(fraction * n + _FLOOR_TOLERANCE))


def check_fraction(value: float, what: str, path=None) -> float:
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise CurateError(path, f"{what}: removal fraction {value:g} is outside [0, 1)")
    return float(value)


def uniform_fractions(fraction: float) -> dict[str, float]:
    return {name: float(fraction) for name in CLASS_NAMES}


@dataclass
class PrunePlan:
    """Which annotations of a source split the fractions remove, and the cut-offs per class."""

    removed: np.ndarray  # bool per annotation
    classes: dict[str, dict]  # name → fraction, instances, removed, max_removed_area, min_kept_area


def plan_pruning(category_id: np.ndarray, area: np.ndarray, annotation_id: np.ndarray,
                 iscrowd: np.ndarray, fractions: dict[str, float]) -> PrunePlan:
    """Mark the ⌊p·n⌋ smallest instances of each class (by area, then annotation id) for removal."""
    removed = np.zeros(len(area), dtype=bool)
    classes: dict[str, dict] = {}
    is_instance = np.asarray(iscrowd) == 0
    for name in CLASS_NAMES:
        members = np.flatnonzero((category_id == COCO_ID_BY_LABEL_ID[LABEL_ID[name]]) & is_instance)
        fraction = float(fractions.get(name, 0.0))
        order = members[np.lexsort((annotation_id[members], area[members]))]
        k = removal_count(fraction, len(order))
        removed[order[:k]] = True
        classes[name] = {
            "fraction": fraction,
            "instances": int(len(order)),
            "removed": int(k),
            "max_removed_area": int(area[order[k - 1]]) if k else None,
            "min_kept_area": int(area[order[k]]) if k < len(order) else None,
        }
    return PrunePlan(removed=removed, classes=classes)
