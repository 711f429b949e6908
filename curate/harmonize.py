"""Synscapes → Cityscapes labelling conventions, as named, switchable rules.

A frame is held as the column-major runs of its (instance map, class map) pair
(:func:`curate.rle.column_runs`), the distinct (instance id, class) pairs of those runs with their
pixels (:func:`curate.rle.value_pairs`: a few dozen per frame) and one :class:`InstanceRecord` per
instance. A rule is a pure function ``(FrameInstances) -> (FrameInstances, counts)``: it relabels
*pairs* — every rule decides by a pixel's instance and class, so a run's harmonized id is its
pair's; never a full-frame mask per instance, nor a pass over the runs — and edits records.
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
  like its group regions): one crowd region (``iscrowd: 1``) per class — see :func:`export_keys`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from curate.labels import COCO_ID_BY_LABEL_ID, ID_TO_LABEL, INSTANCE_ID_OFFSET, LABEL_ID
from curate.rle import Runs, ValuePairs, value_pairs

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
    """A frame's instances as runs. Rules never touch the runs: every run's harmonized id is a
    function of its (source instance id, class) pair, so a rule relabels the frame's few dozen
    distinct pairs (``pair_ids``) and :attr:`instance_ids` gathers them per run when wanted."""

    runs: Runs  # values: (source instance id, class id) per run
    pairs: ValuePairs  # the distinct (source id, class id) pairs of the runs, their pixels, each run's pair
    pair_ids: tuple[int, ...]  # harmonized id of each pair (0: none)
    records: dict[int, InstanceRecord] = field(default_factory=dict)

    @property
    def class_ids(self) -> np.ndarray:
        return self.runs.values[1]

    @property
    def instance_ids(self) -> np.ndarray:
        """The harmonized id on every run (0: none), int64."""
        return self.pairs.per_run(self.pair_ids)


def run_values(state: FrameInstances, table: dict[int, int], default: int = -1) -> np.ndarray:
    """``table[id]`` for the harmonized id of every run (``default`` where absent): one lookup per
    pair, then a gather."""
    return state.pairs.per_run([table.get(i, default) for i in state.pair_ids])


def from_meta(runs: Runs, meta_classes: dict[int, int]) -> FrameInstances:
    """Initial state: one record per meta instance (visible or not), ids unchanged.

    ``runs``: :func:`curate.rle.column_runs` of (instance map, class map); ``meta_classes``:
    meta instance id → class id. Every non-zero id of the map must be in ``meta_classes``
    (the reader checks that, with :func:`present_ids`).
    """
    pairs = value_pairs(runs)
    pixels: dict[int, int] = {}
    for iid, n in zip(pairs.first, pairs.pixels):
        if iid:  # 0 is no instance, even where a meta names one "0"
            pixels[iid] = pixels.get(iid, 0) + n
    records = {  # positional: a frame makes dozens, keywords cost a third more
        iid: InstanceRecord(iid, iid, cls, "original", pixels.get(iid, 0), True, iid)
        for iid, cls in sorted(meta_classes.items())
    }
    return FrameInstances(runs=runs, pairs=pairs, pair_ids=tuple(pairs.first), records=records)


def present_ids(state: FrameInstances) -> list[int]:
    """The source ids the runs hold (0 included when present), ascending."""
    return sorted(set(state.pairs.first))


# --- the rules ---------------------------------------------------------------------------------


def rider_split(state: FrameInstances) -> tuple[FrameInstances, dict]:
    """Rider pixels of a bicycle/motorcycle instance become a new rider instance (see module doc)."""
    two_wheelers = {i: r.label_id for i, r in state.records.items()
                    if r.label_id in TWO_WHEELERS and r.rule == "original"}
    counts = {"riders_created": 0, "rider_pixels": 0, "unridden_vehicles": 0,
              "other_pixels_kept_with_vehicle": 0, "vehicles_left_without_pixels": 0}
    if not two_wheelers:
        return state, counts
    pair_ids = list(state.pair_ids)
    rider_pixels: dict[int, int] = {}
    for p, (iid, cls, n) in enumerate(zip(state.pair_ids, state.pairs.second, state.pairs.pixels)):
        vehicle_class = two_wheelers.get(iid)
        if vehicle_class is None:
            continue
        if cls == RIDER:
            pair_ids[p] = iid + RIDER_ID_OFFSET
            rider_pixels[iid + RIDER_ID_OFFSET] = rider_pixels.get(iid + RIDER_ID_OFFSET, 0) + n
        elif cls != vehicle_class:
            counts["other_pixels_kept_with_vehicle"] += n
    records = dict(state.records)
    for rider_id, n in sorted(rider_pixels.items()):
        vehicle = records[rider_id - RIDER_ID_OFFSET]
        records[rider_id] = InstanceRecord(id=rider_id, source_id=vehicle.source_id, label_id=RIDER,
                                           rule="rider-split", pixels=n, meta_id=vehicle.meta_id)
        left = vehicle.pixels - n
        records[vehicle.id] = InstanceRecord(vehicle.id, vehicle.source_id, vehicle.label_id, vehicle.rule, left,
                                             vehicle.exported, vehicle.meta_id)
        counts["vehicles_left_without_pixels"] += int(left == 0)
    counts["riders_created"] = len(rider_pixels)
    counts["rider_pixels"] = sum(rider_pixels.values())
    counts["unridden_vehicles"] = sum(
        1 for i in two_wheelers if state.records[i].pixels > 0 and i + RIDER_ID_OFFSET not in rider_pixels)
    return FrameInstances(state.runs, state.pairs, tuple(pair_ids), records), counts


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


def export_keys(state: FrameInstances) -> list[int]:
    """What each (instance, class) pair of the runs is exported as: the harmonized id (> 0) of an
    exported instance with pixels; minus the label id for pixels of an evaluated class that no
    instance covers (class map says car, instance map says none, or an instance of a class without
    instances) — Cityscapes stores such pixels as a plain label id (< 1000), a crowd region, and the
    converter exports one crowd annotation per class, the way Detectron2 reads them; else 0 (stuff,
    and instances not exported, such as caravans, which Cityscapes stores as ``label*1000+k``)."""
    keys = []
    records = state.records
    for iid, label_id in zip(state.pair_ids, state.pairs.second):
        record = records.get(iid)
        if record is not None and record.exported and record.pixels:
            keys.append(iid)
        elif (record is None or not ID_TO_LABEL[record.label_id].hasInstances) and label_id in COCO_ID_BY_LABEL_ID:
            keys.append(-label_id)
        else:
            keys.append(0)
    return keys


def crowd_runs(state: FrameInstances) -> np.ndarray:
    """Per run: is it part of a crowd region (:func:`export_keys`)?"""
    return state.pairs.per_run(export_keys(state)) < 0


def gtfine_values(state: FrameInstances) -> np.ndarray:
    """Cityscapes instanceIds value per run: ``label*1000+k`` on the runs of a record of a class
    with instances (exported, or an ignored class such as caravan), the class-map label id elsewhere.

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
