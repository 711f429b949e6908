"""Per-class percentile pruning: remove the share p of a class's instances with the smallest area.

The rule (method.md step 2, as the study did it): for class c with fraction p, over **all**
instances of class c in the source split (not per frame, and before any frame is sampled), sort by
(area, annotation id) and remove the first ``removal_count(p, n) = floor(p * n)`` of them. The
annotation id breaks ties between equal areas, so the result does not depend on file order. Crowd
regions (``iscrowd = 1``) are not instances: they are neither counted nor pruned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.fileio import read_versioned_json
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID

#: The study's choice (method.md: "remove about 40 % of labels").
STUDY_FRACTION = 0.4
#: The removal fractions the study swept: 0 %, 10 %, … 90 %.
PRUNE_SWEEP = tuple(round(i / 10, 1) for i in range(10))
THRESHOLDS_SCHEMA = "synmix.thresholds"
THRESHOLDS_SCHEMA_VERSION = 1
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


def parse_prune(spec: str | None, no_prune: bool = False) -> tuple[dict[str, float], str]:
    """``--prune`` → (fraction per class, the spec as recorded in the manifest).

    Forms: ``0.4`` (every class), ``person=0.6,default=0.3`` (named classes; the rest take
    ``default``, or 0 when no default is given), or a ``thresholds.json`` written by
    ``curate stats`` (its ``prune`` map). ``None`` means the study's 0.4.
    """
    if no_prune:
        if spec is not None:
            raise CurateError(None, "--prune and --no-prune exclude each other")
        return uniform_fractions(0.0), "none"
    if spec is None:
        return uniform_fractions(STUDY_FRACTION), str(STUDY_FRACTION)
    spec = spec.strip()
    if spec.endswith(".json"):
        return read_thresholds_fractions(Path(spec)), spec
    if "=" not in spec:
        return uniform_fractions(check_fraction(_to_float(spec, spec), "--prune")), spec
    return _parse_pairs(spec), spec


def _to_float(text: str, spec: str, path=None) -> float:
    try:
        return float(text)
    except ValueError:
        raise CurateError(path, f"--prune {spec}: '{text}' is not a number") from None


def _parse_pairs(spec: str) -> dict[str, float]:
    named: dict[str, float] = {}
    default = 0.0
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise CurateError(None, f"--prune {spec}: '{part}' is not class=fraction")
        fraction = check_fraction(_to_float(value.strip(), spec), f"--prune {name}")
        if name == "default":
            default = fraction
        elif name in CLASS_NAMES:
            named[name] = fraction
        else:
            raise CurateError(None, f"--prune: unknown class '{name}' (classes: {', '.join(CLASS_NAMES)}, default)")
    return {name: named.get(name, default) for name in CLASS_NAMES}


def read_thresholds_fractions(path: Path) -> dict[str, float]:
    data = read_thresholds(path)
    table = data.get("prune")
    if not isinstance(table, dict):
        raise CurateError(path, "no \"prune\" map of class → fraction")
    fractions = {}
    for name in CLASS_NAMES:
        if name not in table:
            raise CurateError(path, f"\"prune\" has no fraction for {name}")
        value = table[name]
        if not isinstance(value, (int, float)):
            raise CurateError(path, f"\"prune\".{name} is not a number")
        fractions[name] = check_fraction(float(value), f"prune.{name}", path)
    unknown = sorted(set(table) - set(CLASS_NAMES))
    if unknown:
        raise CurateError(path, f"\"prune\" names unknown class '{unknown[0]}'")
    return fractions


def read_thresholds(path: Path) -> dict:
    return read_versioned_json(path, THRESHOLDS_SCHEMA, THRESHOLDS_SCHEMA_VERSION, "thresholds file",
                               "rerun curate stats")


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
