"""Harmonization rules on small hand-drawn frames (instance map + class map + meta classes)."""

from __future__ import annotations

import numpy as np
import pytest

from curate import harmonize as hz
from curate.errors import CurateError
from curate.labels import INSTANCE_ID_OFFSET, LABEL_ID
from curate.rle import column_runs, expand_runs, merge_runs

ROAD, PERSON, RIDER, CAR = LABEL_ID["road"], LABEL_ID["person"], LABEL_ID["rider"], LABEL_ID["car"]
BICYCLE, MOTORCYCLE, CARAVAN = LABEL_ID["bicycle"], LABEL_ID["motorcycle"], LABEL_ID["caravan"]
# Synscapes ids are 24-bit; use ids near the top to show rider ids cannot clash
BIKE_ID, MOTO_ID, CAR_ID, VAN_ID, GHOST_ID, PED_ID = (1 << 24) - 1, 70001, 70002, 70003, 70009, 70004


def frame():
    """8x6 frame: a ridden bicycle (rider on top, one person-labelled pixel), an unridden
    motorcycle, a car, a caravan, a pedestrian, car-class pixels with no instance, and an
    invisible meta instance."""
    inst = np.zeros((8, 6), dtype=np.int32)
    cls = np.full((8, 6), ROAD, dtype=np.uint8)

    def put(rows, cols, iid, c):
        inst[rows, cols] = iid
        cls[rows, cols] = c

    put(slice(0, 2), slice(0, 2), BIKE_ID, RIDER)  # 4 rider pixels
    put(slice(2, 4), slice(0, 2), BIKE_ID, BICYCLE)  # 4 bicycle pixels
    cls[3, 1] = PERSON  # 1 pixel neither rider nor bicycle: stays with the bicycle
    put(slice(0, 2), slice(3, 5), MOTO_ID, MOTORCYCLE)  # unridden
    put(slice(5, 7), slice(0, 3), CAR_ID, CAR)
    put(slice(5, 6), slice(4, 6), VAN_ID, CARAVAN)
    put(7, slice(4, 6), PED_ID, PERSON)
    cls[4, 4:6] = CAR  # car pixels outside every instance
    meta = {BIKE_ID: BICYCLE, MOTO_ID: MOTORCYCLE, CAR_ID: CAR, VAN_ID: CARAVAN, PED_ID: PERSON, GHOST_ID: PERSON}
    return inst, cls, meta


def state_of(inst, cls, meta):
    return hz.from_meta(column_runs(inst, cls), meta)


def pixel_map(state):
    return expand_runs(state.runs, state.instance_ids)


def test_rider_split_creates_rider_and_keeps_vehicle_rest():
    inst, cls, meta = frame()
    state = state_of(inst, cls, meta)
    before_ids = state.instance_ids.copy()
    new, counts = hz.rider_split(state)
    assert np.array_equal(state.instance_ids, before_ids)  # pure: the input is untouched

    rider_id = BIKE_ID + hz.RIDER_ID_OFFSET
    assert rider_id not in meta and rider_id > max(meta)
    ids = pixel_map(new)
    assert np.array_equal(ids == rider_id, (inst == BIKE_ID) & (cls == RIDER))
    assert np.array_equal(ids == BIKE_ID, (inst == BIKE_ID) & (cls != RIDER))
    rider = new.records[rider_id]
    assert (rider.label_id, rider.source_id, rider.rule, rider.pixels) == (RIDER, BIKE_ID, "rider-split", 4)
    assert rider.meta_id == BIKE_ID
    assert new.records[BIKE_ID].pixels == 4 and new.records[BIKE_ID].label_id == BICYCLE
    assert counts == {"riders_created": 1, "rider_pixels": 4, "unridden_vehicles": 1,
                      "other_pixels_kept_with_vehicle": 1, "vehicles_left_without_pixels": 0}
    # the unridden motorcycle and everything else is unchanged
    assert np.array_equal(ids[inst != BIKE_ID], inst[inst != BIKE_ID])


def test_rider_split_is_deterministic():
    inst, cls, meta = frame()
    a, _ = hz.rider_split(state_of(inst, cls, meta))
    b, _ = hz.rider_split(state_of(inst.copy(), cls.copy(), dict(reversed(list(meta.items())))))
    assert np.array_equal(pixel_map(a), pixel_map(b))
    assert sorted(a.records) == sorted(b.records)


def test_vehicle_made_only_of_rider_pixels_is_left_empty_then_invisible():
    inst = np.full((2, 2), MOTO_ID, dtype=np.int32)
    cls = np.full((2, 2), RIDER, dtype=np.uint8)
    state, counts = hz.harmonize(state_of(inst, cls, {MOTO_ID: MOTORCYCLE}))
    rules = counts["rules"]
    assert rules["rider-split"]["vehicles_left_without_pixels"] == 1
    assert rules["invisible"]["instances_dropped"] == 1
    assert [r.label_id for r in state.records.values()] == [RIDER]


def test_invisible_rule_drops_meta_instances_without_pixels():
    inst, cls, meta = frame()
    state = state_of(inst, cls, meta)
    assert state.records[GHOST_ID].pixels == 0
    new, counts = hz.drop_invisible(state)
    assert GHOST_ID not in new.records and counts == {"instances_dropped": 1}
    kept, _ = hz.harmonize(state, ("rider-split", "drop-ignored-classes"))  # rule off: stays
    assert kept.records[GHOST_ID].exported


def test_drop_ignored_classes_keeps_pixels_but_not_export():
    inst, cls, meta = frame()
    state, counts = hz.harmonize(state_of(inst, cls, meta))
    van = state.records[VAN_ID]
    assert not van.exported and van.pixels == 2
    assert counts["rules"]["drop-ignored-classes"] == {"instances_dropped": 1, "by_class": {"caravan": 1}}
    exported = {r.label_id for r in state.records.values() if r.exported}
    assert exported == {BICYCLE, RIDER, MOTORCYCLE, CAR, PERSON}


def test_instance_counts_before_and_after_each_rule():
    inst, cls, meta = frame()
    _, counts = hz.harmonize(state_of(inst, cls, meta))
    stages = counts["instances"]
    assert list(stages) == ["before", "after rider-split", "after invisible", "after drop-ignored-classes"]
    assert stages["before"] == {"bicycle": 1, "car": 1, "caravan": 1, "motorcycle": 1, "person": 2}
    assert stages["after rider-split"]["rider"] == 1
    assert stages["after invisible"]["person"] == 1
    assert "caravan" not in stages["after drop-ignored-classes"]


def test_gtfine_values_follow_cityscapes_encoding():
    inst, cls, meta = frame()
    state, _ = hz.harmonize(state_of(inst, cls, meta))
    values = hz.gtfine_values(state)
    gt = expand_runs(merge_runs(state.runs, values), merge_runs(state.runs, values).values[0])
    rider_id = BIKE_ID + hz.RIDER_ID_OFFSET
    ids = pixel_map(state)
    assert set(np.unique(gt[ids == rider_id])) == {RIDER * INSTANCE_ID_OFFSET}
    assert set(np.unique(gt[ids == BIKE_ID])) == {BICYCLE * INSTANCE_ID_OFFSET}
    assert set(np.unique(gt[inst == VAN_ID])) == {CARAVAN * INSTANCE_ID_OFFSET}  # as Cityscapes holds it
    assert set(np.unique(gt[inst == 0])) == {ROAD, CAR}  # stuff and unassigned car pixels: plain ids


def test_crowd_runs_are_unassigned_instance_class_pixels():
    inst, cls, meta = frame()
    state, _ = hz.harmonize(state_of(inst, cls, meta))
    crowd = expand_runs(state.runs, hz.crowd_runs(state))
    assert np.array_equal(crowd, (inst == 0) & (cls == CAR))


def test_select_rules():
    from curate.sources.synscapes import SOURCE

    assert SOURCE.select_rules(None) == hz.DEFAULT_RULES
    assert SOURCE.select_rules("invisible, rider-split") == ("rider-split", "invisible")
    assert SOURCE.select_rules("") == ()
    with pytest.raises(CurateError, match="unknown rule 'wheelchairs'"):
        SOURCE.select_rules("rider-split,wheelchairs")
    from curate.sources.cityscapes import SOURCE as CITYSCAPES

    assert CITYSCAPES.select_rules(None) == ("drop-ignored-classes",)
    with pytest.raises(CurateError, match="no switchable rules"):
        CITYSCAPES.select_rules("invisible")


def test_findings_name_each_odd_instance_once():
    """instance_findings reads the (instance, class) pairs of the runs: what the class map says
    against the meta, per instance in id order, and meta instances without pixels last."""
    from curate.sources.synscapes import FrameMeta, InstanceMeta, instance_findings

    inst, cls, meta = frame()
    cls[7, 4] = RIDER  # the pedestrian holds a rider pixel (and stays a person)
    cls[5, 0] = ROAD  # a car pixel the class map calls road
    inst[1, 5], cls[1, 5] = BIKE_ID, MOTORCYCLE  # a bicycle pixel of motorcycle class
    meta_of = FrameMeta({}, {i: InstanceMeta(i, c, None, 0.0, 0.0, None) for i, c in meta.items()}, {})
    found = instance_findings(state_of(inst, cls, meta).pairs, meta_of)
    assert [(f["kind"], f["instance"], f.get("detail")) for f in found] == [
        ("class_disagreement", CAR_ID, "car/road"),
        ("mixed_class_instance", CAR_ID, "road, car"),
        ("class_disagreement", PED_ID, "person/rider"),
        ("person_with_rider_pixels", PED_ID, None),
        ("mixed_class_instance", PED_ID, "person, rider"),
        ("class_disagreement", BIKE_ID, "bicycle/person"),
        ("class_disagreement", BIKE_ID, "bicycle/motorcycle"),
        ("mixed_class_instance", BIKE_ID, "person, rider, motorcycle, bicycle"),
        ("meta_instance_without_pixels", GHOST_ID, None),
    ]


def test_a_meta_instance_named_0_is_not_the_background():
    """Id 0 is no instance in the map, even where a meta file lists an instance "0": it gets no
    pixels (the invisible rule drops it), and the background stays background."""
    inst = np.array([[0, 5]], dtype=np.int32)
    cls = np.array([[ROAD, CAR]], dtype=np.uint8)
    state = state_of(inst, cls, {0: CAR, 5: CAR})
    assert state.records[0].pixels == 0 and state.records[5].pixels == 1
    harmonized, _ = hz.harmonize(state)
    assert sorted(harmonized.records) == [5]
    assert hz.gtfine_values(harmonized).tolist() == [ROAD, CAR * INSTANCE_ID_OFFSET]
