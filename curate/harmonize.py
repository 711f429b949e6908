"""Synscapes → Cityscapes labelling conventions, as named, switchable rules.

A frame is held as the column-major runs of its (instance map, class map) pair
(:func:`curate.rle.column_runs`) plus one :class:`InstanceRecord` per instance. A rule is a pure
function ``(FrameInstances) -> (FrameInstances, counts)``: it relabels *runs* (a vectorised
lookup over a few thousand runs, never a full-frame mask per instance) and edits records.
:func:`harmonize` applies the selected rules in the canonical order of :data:`RULES` and reports
the instances per class after every step. ``curate.rle.expand_runs`` turns the result back into
a pixel map when one is wanted (``--gtfine``).

Rules
-----
``rider-split`` (default on)
    Synscapes draws a rider and the bicycle/motorcycle he rides as **one** instance (its tools
    call those two classes "motorcyclist"/"bicyclist"); Cityscapes has two. For every instance whose
    *meta* class is bicycle or motorcycle, its pixels whose class-map value is rider become a new
    rider instance; the vehicle keeps the rest, including pixels that are neither rider nor the
    vehicle's class (counted). A two-wheeler without rider pixels stays as it is (counted as
    unridden). The rider's id is ``vehicle id + RIDER_ID_OFFSET`` (2**24): Synscapes ids are
    24-bit, so it can never clash with an id of the frame, and it is the same on every run. The
    rider inherits the vehicle's meta (occlusion, truncation, depth): they are one object in
    Synscapes' meta. A vehicle whose every pixel is rider is left without pixels (counted) and
    is then removed by ``invisible``.
``invisible`` (default on)
    A meta instance with no visible pixel (fully occluded, or out of view) gives no annotation —
    Cityscapes only labels what is visible. Turned off, such instances are exported with an empty
    mask (area 0), which is only useful to inspect the meta.
``drop-ignored-classes`` (default on)
    Instances of a class outside the 8 evaluated ones (caravan, trailer, or any label without
    instances) give no annotation: the COCO file has no category for them. Caravan/trailer
    instances keep their pixels in ``--gtfine`` output as ``label*1000+k``, exactly as Cityscapes
    holds them; Cityscapes' evaluator and Detectron2 both ignore those labels. Turned off, a frame
    holding such an instance is an error (there is no category to write it under).

Mismatches deliberately without a rule
--------------------------------------
* **Unridden bicycles and motorcycles.** Cityscapes annotates parked or pushed two-wheelers as
  ``bicycle``/``motorcycle`` instances (clusters as ``bicyclegroup``). After ``rider-split`` an
  unridden Synscapes two-wheeler is already exactly that, so nothing is changed; the study's
  concern was the ridden ones. They are counted (``rider-split.unridden_vehicles``) so a data set
  with suspicious numbers shows up in the report.
* **Wheelchairs.** Cityscapes labels a person in a wheelchair as ``rider`` (and the chair is not a
  bicycle). Synscapes has no wheelchair label, meta class or attribute: neither its class map nor
  its meta tells a wheelchair user from a pedestrian, so no rule can find them. Relabelling would
  need a signal the data does not carry; synmix leaves them as ``person`` and says so here.
* **Instance-class pixels without an instance id** (class map says car, instance map says 0) are
  not a rule either: they are exported the way Cityscapes stores such pixels (a plain label id,
  like its group regions): one crowd region (``iscrowd: 1``) per class — see :func:`crowd_runs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from curate.labels import COCO_ID_BY_LABEL_ID, ID_TO_LABEL, INSTANCE_ID_OFFSET, LABEL_ID
from curate.rle import Runs, is_in

#: Offset added to a two-wheeler's id to name the rider split off it (Synscapes ids are 24-bit).
RIDER_ID_OFFSET = 1 << 24
RIDER = LABEL_ID["rider"]
TWO_WHEELERS = (LABEL_ID["bicycle"], LABEL_ID["motorcycle"])


@dataclass(slots=True)  # not frozen: a frozen dataclass is built 2.4x slower, and every frame makes dozens
class InstanceRecord:
    """One instance of a frame after harmonization (``id``: its id in the harmonized runs); rules
    make new records (``dataclasses.replace``) and never change one."""

    id: int
    source_id: int  # the Synscapes instance it comes from
    label_id: int
    rule: str  # "original" or the rule that created it
    pixels: int
    exported: bool = True  # becomes a COCO annotation
    meta_id: int | None = None  # meta entry whose occlusion/truncation/depth it carries


@dataclass(frozen=True)
class FrameInstances:
    """A frame's instances as runs: ``instance_ids[r]`` is the harmonized id on run ``r`` (0: none)."""

    runs: Runs  # values: (source instance id, class id) per run
    instance_ids: np.ndarray
    records: dict[int, InstanceRecord] = field(default_factory=dict)
    #: :func:`id_index` of ``instance_ids`` when already known (else computed on first use).
    known_index: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def class_ids(self) -> np.ndarray:
        return self.runs.values[1]

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, slot)``: ascending ids and, per run, the position of its id in them, so that a
        per-id table becomes a gather (:func:`run_values`) instead of a search per run."""
        if self.known_index is None:
            object.__setattr__(self, "known_index", id_index(self.instance_ids))  # a cache, not a change
        return self.known_index


def id_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``ids`` (ascending) and each element's position in them (one stable sort:
    on run ids, long stretches of equal values, several times faster than np.unique's quicksort)."""
    ids = np.asarray(ids)
    slot = np.empty(len(ids), dtype=np.intp)
    if len(ids) == 0:
        return ids.astype(np.int64), slot
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.empty(len(ids), dtype=bool)
    first[0] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=first[1:])
    slot[order] = np.cumsum(first) - 1
    return sorted_ids[first].astype(np.int64, copy=False), slot


def _index_from_candidates(ids: np.ndarray, candidates) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`id_index` by a search among known ``candidates`` (plus 0) instead of a sort, or None
    when ``ids`` holds a value outside them. The ids list every candidate, present or not."""
    known = np.array(sorted({0, *candidates}), dtype=np.int64)
    slot = np.searchsorted(known, ids)
    np.minimum(slot, len(known) - 1, out=slot)
    if not np.array_equal(known[slot], ids):
        return None
    return known, slot


def run_values(state: FrameInstances, table: dict[int, int], default: int = -1) -> np.ndarray:
    """``table[id]`` for the harmonized id of every run (``default`` where absent), through the
    state's id index (a gather, not a search per run)."""
    ids, slot = state.index()
    per_id = np.fromiter((table.get(i, default) for i in ids.tolist()), dtype=np.int64, count=len(ids))
    return per_id[slot]


def _pixels(index: tuple[np.ndarray, np.ndarray], lengths: np.ndarray) -> dict[int, int]:
    """Pixels of every non-zero id of an id index (ids no run has count 0)."""
    ids, slot = index
    sums = np.bincount(slot, weights=lengths, minlength=len(ids)).astype(np.int64)
    return {i: n for i, n in zip(ids.tolist(), sums.tolist()) if i != 0}


def from_meta(runs: Runs, meta_classes: dict[int, int], pixels: dict[int, int] | None = None) -> FrameInstances:
    """Initial state: one record per meta instance (visible or not), ids unchanged.

    ``runs``: :func:`curate.rle.column_runs` of (instance map, class map); ``meta_classes``:
    meta instance id → class id. Every non-zero id of the map must be in ``meta_classes``
    (the reader checks that). ``pixels``: pixel count per non-zero id, if already known.
    """
    index = _index_from_candidates(runs.values[0], meta_classes) or id_index(runs.values[0])
    if pixels is None:
        pixels = _pixels(index, runs.lengths)
    records = {
        iid: InstanceRecord(id=iid, source_id=iid, label_id=cls, rule="original",
                            pixels=pixels.get(iid, 0), meta_id=iid)
        for iid, cls in sorted(meta_classes.items())
    }
    return FrameInstances(runs=runs, instance_ids=runs.values[0].astype(np.int64), records=records,
                          known_index=index)


# --- the rules ---------------------------------------------------------------------------------


def rider_split(state: FrameInstances) -> tuple[FrameInstances, dict]:
    """Rider pixels of a bicycle/motorcycle instance become a new rider instance (see module doc)."""
    two_wheelers = {i: r.label_id for i, r in state.records.items()
                    if r.label_id in TWO_WHEELERS and r.rule == "original"}
    counts = {"riders_created": 0, "rider_pixels": 0, "unridden_vehicles": 0,
              "other_pixels_kept_with_vehicle": 0, "vehicles_left_without_pixels": 0}
    if not two_wheelers:
        return state, counts
    ids = state.instance_ids
    unique, slot = state.index()
    lengths = state.runs.lengths
    vehicle_class = run_values(state, two_wheelers)  # -1 on runs of other instances
    on_vehicle = vehicle_class >= 0
    rider_runs = on_vehicle & (state.class_ids == RIDER)
    other_runs = on_vehicle & ~rider_runs & (state.class_ids != vehicle_class)
    new_ids = ids.copy()
    new_ids[rider_runs] += RIDER_ID_OFFSET

    # rider pixels per vehicle, through the index: slot s holds id unique[s]
    rider_slot = slot[rider_runs]
    per_slot = np.bincount(rider_slot, weights=lengths[rider_runs], minlength=len(unique)).astype(np.int64)
    ridden = np.flatnonzero(per_slot)
    rider_pixels = {v + RIDER_ID_OFFSET: n for v, n in zip(unique[ridden].tolist(), per_slot[ridden].tolist())}
    records = dict(state.records)
    for rider_id, n in sorted(rider_pixels.items()):
        vehicle = records[rider_id - RIDER_ID_OFFSET]
        records[rider_id] = InstanceRecord(id=rider_id, source_id=vehicle.source_id, label_id=RIDER,
                                           rule="rider-split", pixels=n, meta_id=vehicle.meta_id)
        left = vehicle.pixels - n
        records[vehicle.id] = replace(vehicle, pixels=left)
        counts["vehicles_left_without_pixels"] += int(left == 0)
    counts["riders_created"] = len(rider_pixels)
    counts["rider_pixels"] = int(sum(rider_pixels.values()))
    counts["unridden_vehicles"] = sum(
        1 for i in two_wheelers if state.records[i].pixels > 0 and i + RIDER_ID_OFFSET not in rider_pixels)
    counts["other_pixels_kept_with_vehicle"] = int(lengths[other_runs].sum())
    # The new ids' index, without a new sort: the rider ids join the old ids (which may keep an
    # id no run has any more: harmless for lookups).
    candidates = np.concatenate([unique, unique[ridden] + RIDER_ID_OFFSET])
    rider_slot_of = np.zeros(len(unique), dtype=np.intp)
    rider_slot_of[ridden] = len(unique) + np.arange(len(ridden))
    new_slot = slot.copy()
    new_slot[rider_runs] = rider_slot_of[rider_slot]
    order = np.argsort(candidates, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    index = (candidates[order], rank[new_slot])
    return FrameInstances(state.runs, new_ids, records, known_index=index), counts


def drop_invisible(state: FrameInstances) -> tuple[FrameInstances, dict]:
    """Instances without a visible pixel give no annotation."""
    hidden = [i for i, r in state.records.items() if r.pixels == 0]
    records = {i: r for i, r in state.records.items() if r.pixels > 0}
    return replace(state, records=records), {"instances_dropped": len(hidden)}


def drop_ignored_classes(state: FrameInstances) -> tuple[FrameInstances, dict]:
    """Instances of classes outside the 8 evaluated ones are not exported (pixels stay for gtFine)."""
    dropped: dict[str, int] = {}
    records = {}
    for i, r in state.records.items():
        if r.exported and r.label_id not in COCO_ID_BY_LABEL_ID:
            name = ID_TO_LABEL[r.label_id].name
            dropped[name] = dropped.get(name, 0) + 1
            r = replace(r, exported=False)
        records[i] = r
    counts = {"instances_dropped": sum(dropped.values()), "by_class": dict(sorted(dropped.items()))}
    return replace(state, records=records), counts


Rule = Callable[[FrameInstances], tuple[FrameInstances, dict]]
#: Every rule by name, in the order they are applied.
RULES: dict[str, Rule] = {
    "rider-split": rider_split,
    "invisible": drop_invisible,
    "drop-ignored-classes": drop_ignored_classes,
}
DEFAULT_RULES: tuple[str, ...] = tuple(RULES)


def class_counts(records: dict[int, InstanceRecord], exported_only: bool = False) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records.values():
        if exported_only and not r.exported:
            continue
        name = ID_TO_LABEL[r.label_id].name
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def harmonize(state: FrameInstances, rules: tuple[str, ...] = DEFAULT_RULES) -> tuple[FrameInstances, dict]:
    """Apply ``rules`` (canonical order) and count: instances per class before and after each
    rule (``instances``) and each rule's own counters (``rules``)."""
    instances = {"before": class_counts(state.records)}
    rule_counts = {}
    for name in RULES:
        if name not in rules:
            continue
        state, counts = RULES[name](state)
        rule_counts[name] = counts
        instances[f"after {name}"] = class_counts(state.records, exported_only=True)
    return state, {"instances": instances, "rules": rule_counts}


def instance_runs(state: FrameInstances) -> np.ndarray:
    """Per run: does it belong to an instance Cityscapes would store as ``label*1000+k`` (a record
    of a class with instances — exported or an ignored class such as caravan)?"""
    with_instances = {i: 1 for i, r in state.records.items() if ID_TO_LABEL[r.label_id].hasInstances}
    return run_values(state, with_instances, default=0).astype(bool)


def crowd_runs(state: FrameInstances) -> np.ndarray:
    """Per run: pixels of an evaluated class that no instance covers (class map says car,
    instance map says none). Cityscapes stores such pixels as a plain label id (< 1000), a crowd
    region; the converter exports one crowd annotation per class, the way Detectron2 reads them."""
    return ~instance_runs(state) & is_in(state.class_ids, COCO_ID_BY_LABEL_ID)


def gtfine_values(state: FrameInstances) -> np.ndarray:
    """Cityscapes instanceIds value per run: ``label*1000+k`` on instance runs
    (:func:`instance_runs`), the class-map label id elsewhere.

    k counts from 0 per class in order of (source id, harmonized id) — a rider right after the
    vehicle it was split from. Raises ValueError past 1000 instances of one class.
    """
    order = sorted(state.records.values(), key=lambda r: (r.source_id, r.id))
    next_k: dict[int, int] = {}
    cityscapes_id: dict[int, int] = {}
    for r in order:
        if r.pixels == 0 or not ID_TO_LABEL[r.label_id].hasInstances:
            continue
        k = next_k.get(r.label_id, 0)
        if k >= INSTANCE_ID_OFFSET:
            raise ValueError(f"more than {INSTANCE_ID_OFFSET} {ID_TO_LABEL[r.label_id].name} instances"
                             " in one frame: Cityscapes instanceIds cannot encode them")
        next_k[r.label_id] = k + 1
        cityscapes_id[r.id] = r.label_id * INSTANCE_ID_OFFSET + k
    values = run_values(state, cityscapes_id, default=-1)
    return np.where(values >= 0, values, state.class_ids.astype(np.int64))
