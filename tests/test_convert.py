"""``curate convert`` end to end: real Cityscapes fixtures, generated sample sets, hand-made bad input."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from conftest import every_frame_file
from pycocotools.coco import COCO

from curate import sources
from curate.convert import convert
from curate.errors import CurateError
from curate.fileio import read_png
from curate.harmonize import TWO_WHEELERS
from curate.labels import (
    COCO_ID_BY_LABEL_ID,
    FIRST_INSTANCE_LABEL_ID,
    INSTANCE_CLASSES,
    INSTANCE_ID_OFFSET,
    LABEL_ID,
    LABEL_ID_BY_COCO_ID,
    coco_categories,
)
from curate.sources import synscapes as syn_source

REPO = Path(__file__).resolve().parents[1]
RIDER = LABEL_ID["rider"]


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": rle["counts"].decode()}


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


#: Runs the CLI with the Synscapes conversion patched to SIGKILL its own process at one frame:
#: a hard interruption at a known point, injected from the test (no hook in production code).
_KILL_AT_FRAME = """
import dataclasses, os, signal, sys
import curate.sources.synscapes as module
kill_at = int(sys.argv[1])
convert_frame = module.SOURCE.convert_frame

def killing(settings, ref):
    if ref.key == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return convert_frame(settings, ref)

module.SOURCE = dataclasses.replace(module.SOURCE, convert_frame=killing)
from curate.cli import main
main(sys.argv[2:])
"""


def run_cli_killed_at_frame(frame: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _KILL_AT_FRAME, str(frame), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def is_thin(ann: dict) -> bool:
    return ann["bbox"][2] <= 1 or ann["bbox"][3] <= 1


# --- hand-made Synscapes frames ----------------------------------------------------------------

H, W = 24, 32
BIKE, CAR, VAN, PED, HIDDEN = 81007, 81003, 81001, 81002, 81005


def write_frame(root: Path, n: int, inst: np.ndarray, cls: np.ndarray, classes: dict[int, int]) -> None:
    for sub in ("img/rgb", "img/class", "img/instance", "meta"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "img/instance" / f"{n}.png"), syn_source.encode_instance_png(inst))
    cv2.imwrite(str(root / "img/class" / f"{n}.png"), cls)
    cv2.imwrite(str(root / "img/rgb" / f"{n}.png"), np.full((*cls.shape, 3), n % 255, np.uint8))
    keys = {str(i): c for i, c in classes.items()}
    box = {"xmin": 0.1, "xmax": 0.4, "ymin": 0.2, "ymax": 0.6, "zmin": 7.5, "zmax": 9.0}
    meta = {"camera": {}, "scene": {},
            "instance": {"class": keys, "bbox2d": {k: box for k in keys}, "bbox3d": {},
                         "occluded": {k: 0.5 for k in keys}, "truncated": {k: 0.125 for k in keys}}}
    (root / "meta" / f"{n}.json").write_text(json.dumps(meta))


def handmade_frame(shift: int = 0):
    """A ridden bicycle, a car, a caravan, a pedestrian one pixel wide, car pixels with no
    instance, and a meta instance with no pixel."""
    inst = np.zeros((H, W), np.int32)
    cls = np.full((H, W), LABEL_ID["road"], np.uint8)
    inst[2:14, 2 + shift:9 + shift] = BIKE
    cls[2:14, 2 + shift:9 + shift] = LABEL_ID["bicycle"]
    cls[2:7, 3 + shift:8 + shift] = RIDER
    inst[15:22, 10:25] = CAR
    cls[15:22, 10:25] = LABEL_ID["car"]
    inst[2:8, 20:30] = VAN
    cls[2:8, 20:30] = LABEL_ID["caravan"]
    inst[9:14, 27] = PED
    cls[9:14, 27] = LABEL_ID["person"]
    cls[22:24, 0:4] = LABEL_ID["car"]
    classes = {BIKE: LABEL_ID["bicycle"], CAR: LABEL_ID["car"], VAN: LABEL_ID["caravan"],
               PED: LABEL_ID["person"], HIDDEN: LABEL_ID["person"]}
    return inst, cls, classes


@pytest.fixture
def handmade(tmp_path) -> Path:
    root = tmp_path / "syn"
    for n in (1, 2, 3, 20001):
        write_frame(root, n, *handmade_frame(shift=n % 3))
    return root


def test_handmade_synscapes_rules_and_fields(handmade, tmp_path):
    result = convert("synscapes", handmade, tmp_path / "out", split="train", workers=1)
    coco = load(result.coco_path)
    assert [img["id"] for img in coco["images"]] == [1, 2, 3]
    assert coco["categories"] == coco_categories()
    assert coco["info"]["image_root"] == str(handmade.resolve())
    by_rule = {}
    for ann in coco["annotations"]:
        by_rule.setdefault(ann["rule"], []).append(ann)
    assert len(by_rule["rider-split"]) == 3 and len(by_rule["crowd"]) == 3
    for ann in by_rule["rider-split"]:
        assert ann["category_id"] == COCO_ID_BY_LABEL_ID[RIDER] and ann["source_instance_id"] == BIKE
        assert ann["area"] == 25 and (ann["occluded"], ann["truncated"], ann["depth"]) == (0.5, 0.125, 7.5)
    for ann in by_rule["crowd"]:
        assert ann["iscrowd"] == 1 and ann["source_instance_id"] == LABEL_ID["car"] and ann["area"] == 8
    assert not any(a["source_instance_id"] in (VAN, HIDDEN) for a in coco["annotations"])
    # ids: image id * 10000 + k, k in ascending source id
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        assert [a["id"] for a in anns] == [img["id"] * 10000 + k for k in range(len(anns))]
        assert [a["source_instance_id"] for a in anns] == sorted(a["source_instance_id"] for a in anns)

    report = load(result.report_path)
    assert report["rule_counts"]["rider-split"]["riders_created"] == 3
    assert report["rule_counts"]["invisible"]["instances_dropped"] == 3
    assert report["rule_counts"]["drop-ignored-classes"]["by_class"] == {"caravan": 3}
    assert report["instances"]["before"]["caravan"] == 3
    assert "caravan" not in report["instances"]["after drop-ignored-classes"]
    assert report["thin_instances_kept"] == 3  # the one-pixel-wide pedestrians
    assert report["frames"] == {"listed": 3, "converted": 3, "skipped": 0}
    assert not (tmp_path / "out" / ".shards").exists()


def test_rules_switch_off(handmade, tmp_path):
    result = convert("synscapes", handmade, tmp_path / "out", split="val", workers=1,
                     rules="drop-ignored-classes")
    anns = load(result.coco_path)["annotations"]
    assert not any(a["rule"] == "rider-split" for a in anns)
    bike = next(a for a in anns if a["source_instance_id"] == BIKE)
    assert bike["area"] == 12 * 7  # the rider stays part of the bicycle
    hidden = next(a for a in anns if a["source_instance_id"] == HIDDEN)  # invisible off: empty mask
    assert hidden["area"] == 0 and mask_util.area(hidden["segmentation"]) == 0
    with pytest.raises(CurateError, match="no COCO category"):
        convert("synscapes", handmade, tmp_path / "out2", split="val", workers=1, rules="rider-split")
    with pytest.raises(CurateError, match="unknown rule"):
        convert("synscapes", handmade, tmp_path / "out3", split="val", workers=1, rules="wheelchairs")


BAD_CASES = {
    "corrupt instance PNG": lambda root: (root / "img/instance/2.png").write_bytes(b"\x89PNG broken"),
    "missing class PNG": lambda root: (root / "img/class/2.png").unlink(),
    "meta not JSON": lambda root: (root / "meta/2.json").write_text("{not json"),
    "id not in meta": lambda root: write_frame(root, 2, handmade_frame()[0], handmade_frame()[1],
                                               {CAR: LABEL_ID["car"]}),
    "size mismatch": lambda root: cv2.imwrite(str(root / "img/class/2.png"),
                                              np.zeros((H + 1, W), np.uint8)),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_with_one_line_or_is_skipped(case, handmade, tmp_path):
    BAD_CASES[case](handmade)
    out = tmp_path / "out"
    with pytest.raises(CurateError) as err:
        convert("synscapes", handmade, out, split="train", workers=1, shard_size=2)
    message = str(err.value)
    assert "\n" not in message and err.value.path and "/2." in err.value.path
    assert not (out / "synscapes_train.json").exists()  # nothing half-written

    result = convert("synscapes", handmade, out, split="train", workers=1, on_error="skip", shard_size=2)
    report = load(result.report_path)
    assert report["frames"]["converted"] == 2
    # a frame that fails to convert is a skipped frame; one that lacks a file is a skipped file
    skipped = report["skipped_frames"] + report["skipped_files"]
    assert [(s["frame"], s["path"], s["problem"]) for s in skipped] == [(2, err.value.path, err.value.problem)]
    assert [img["id"] for img in load(result.coco_path)["images"]] == [1, 3]


def test_bad_frame_in_parallel_run_then_resume_with_skip(handmade, tmp_path):
    (handmade / "meta/2.json").write_text("{broken")
    out = tmp_path / "out"
    with pytest.raises(CurateError, match="meta/2.json"):
        convert("synscapes", handmade, out, split="all", split_file=every_frame_file(handmade),
                     workers=2, shard_size=1)
    finished = len(list((out / ".shards/synscapes_all").glob("*.json")))  # how many depends on timing
    result = convert("synscapes", handmade, out, split="all", split_file=every_frame_file(handmade),
                     workers=2, shard_size=1, on_error="skip", resume=True)
    report = load(result.report_path)
    assert report["frames"]["skipped"] == 1 and report["skipped_frames"][0]["frame"] == 2
    assert report["shards"]["reused"] == finished  # shards the failed run finished are kept


def test_cli_prints_one_line_error_and_exit_2(handmade, tmp_path):
    (handmade / "meta/1.json").write_text("[]")
    proc = run_cli("convert", "synscapes", str(handmade), "--out", str(tmp_path / "o"), "-j", "1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "meta/1.json" in lines[0]
    proc = run_cli("convert", "synscapes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_cli_help():
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    runner = CliRunner()
    expected = {("convert",): ["synscapes", "cityscapes"],
                ("convert", "synscapes"): ["--out", "--gtfine", "--rules", "--resume", "--on-error", "--split-file"],
                ("convert", "cityscapes"): ["--out", "--workers", "--resume", "--on-error"]}
    for args, words in expected.items():
        result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert all(word in result.output for word in words), (args, result.output)


def test_gtfine_output_reads_in_detectron2_as_our_coco(handmade, tmp_path):
    pytest.importorskip("detectron2")

    out = tmp_path / "out"
    result = convert("synscapes", handmade, out, split="train", workers=1, gtfine=True)
    coco = load(result.coco_path)
    link = out / "leftImg8bit/train/synscapes/synscapes_000000_000001_leftImg8bit.png"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == (handmade / "img/rgb/1.png").resolve()
    ids = read_png(out / "gtFine/train/synscapes/synscapes_000000_000001_gtFine_instanceIds.png")
    assert ids.dtype == np.uint16
    assert (ids == LABEL_ID["caravan"] * INSTANCE_ID_OFFSET).sum() == 60  # kept as Cityscapes holds it

    assert_detectron2_reads_gtfine_as_coco(out, "train", coco)


def assert_detectron2_reads_gtfine_as_coco(out: Path, split: str, coco: dict) -> None:
    """Detectron2's Cityscapes loader on our gtFine output gives our COCO annotations (less the
    masks one pixel wide or tall, which that loader drops)."""
    from detectron2.data.datasets.cityscapes import load_cityscapes_instances

    d2 = load_cityscapes_instances(str(out / "leftImg8bit" / split), str(out / "gtFine" / split),
                                   from_json=False, to_polygons=False)
    thing_ids = [label.id for label in INSTANCE_CLASSES]  # Detectron2's contiguous order
    assert len(d2) == len(coco["images"])
    for record in d2:
        frame = int(Path(record["file_name"]).name.split("_")[2])
        ours = sorted(
            (LABEL_ID_BY_COCO_ID[a["category_id"]], a["iscrowd"], a["segmentation"]["counts"])
            for a in coco["annotations"] if a["image_id"] == frame and not is_thin(a))
        theirs = sorted(
            (thing_ids[a["category_id"]], int(a["iscrowd"]), a["segmentation"]["counts"].decode())
            for a in record["annotations"])
        assert ours == theirs and len(ours) >= 4


def test_copy_images(handmade, tmp_path):
    out = tmp_path / "out"
    convert("synscapes", handmade, out, split="val", workers=1, gtfine=True, copy_images=True)
    image = out / "leftImg8bit/val/synscapes/synscapes_000000_020001_leftImg8bit.png"
    assert image.is_file() and not image.is_symlink()
    assert image.read_bytes() == (handmade / "img/rgb/20001.png").read_bytes()


# --- real Cityscapes fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_val(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    return convert("cityscapes", fixtures_dir / "cityscapes-real", out, split="val", workers=1)


def test_real_cityscapes_loads_in_pycocotools_and_detectron2(real_val):
    coco = COCO(str(real_val.coco_path))
    assert len(coco.getImgIds()) == 15 and len(coco.getAnnIds()) > 300
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {label.name for label in INSTANCE_CLASSES}
    assert any(a["iscrowd"] for a in coco.dataset["annotations"])
    pytest.importorskip("detectron2")
    from detectron2.data.datasets.coco import load_coco_json

    records = load_coco_json(str(real_val.coco_path), str(Path(load(real_val.coco_path)["info"]["image_root"])))
    assert len(records) == 15 and sum(len(r["annotations"]) for r in records) == len(coco.getAnnIds())


def test_real_cityscapes_matches_detectron2_per_instance_loader(real_val, fixtures_dir):
    pytest.importorskip("detectron2")
    from detectron2.data.datasets.cityscapes import _cityscapes_files_to_dict

    coco = load(real_val.coco_path)
    report = load(real_val.report_path)
    assert report["images_missing"] == 15  # the val fixtures have no images
    for image in coco["images"][::4]:  # the per-instance path is slow: a spread of frames
        gt = fixtures_dir / "cityscapes-real/gtFine/val/frankfurt" / f"{image['frame']}_gtFine_instanceIds.png"
        d2 = _cityscapes_files_to_dict(("", str(gt), "", ""), from_json=False, to_polygons=False)
        theirs = sorted((a["category_id"], int(a["iscrowd"]), a["segmentation"]["counts"].decode())
                        for a in d2["annotations"])
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        ours = sorted((LABEL_ID_BY_COCO_ID[a["category_id"]], a["iscrowd"], a["segmentation"]["counts"])
                      for a in anns if not is_thin(a))
        assert ours == theirs
        id_map = read_png(gt)
        for a in anns:  # area and bbox as pycocotools gives them for the same mask
            rle = rle_of(id_map == a["source_instance_id"])
            assert a["segmentation"] == rle
            assert a["area"] == int(mask_util.area(rle)) and a["bbox"] == mask_util.toBbox(rle).tolist()
            assert a["iscrowd"] == int(a["source_instance_id"] < INSTANCE_ID_OFFSET)
            assert a["source_instance_id"] >= FIRST_INSTANCE_LABEL_ID


def test_cityscapes_caravan_skipped_and_bad_id_reported(tmp_path, fixtures_dir):
    root = tmp_path / "cs"
    city = root / "gtFine/train/testcity"
    city.mkdir(parents=True)
    ids = np.zeros((10, 12), np.uint16)
    ids[1:4, 1:4] = LABEL_ID["caravan"] * INSTANCE_ID_OFFSET
    ids[5:8, 1:6] = LABEL_ID["car"] * INSTANCE_ID_OFFSET + 3
    ids[5:9, 7:11] = LABEL_ID["car"]  # a cargroup region
    cv2.imwrite(str(city / "testcity_000000_000001_gtFine_instanceIds.png"), ids)
    result = convert("cityscapes", root, tmp_path / "out", split="train", workers=1)
    anns = load(result.coco_path)["annotations"]
    assert [(a["source_instance_id"], a["iscrowd"]) for a in anns] == [
        (LABEL_ID["car"], 1), (LABEL_ID["car"] * INSTANCE_ID_OFFSET + 3, 0)]
    assert load(result.report_path)["rule_counts"]["drop-ignored-classes"]["by_class"] == {"caravan": 1}

    bad = fixtures_dir / "edge-cases/train_dataset"  # holds 1024: "ego vehicle" with an instance number
    with pytest.raises(CurateError, match="instance id 1024") as err:
        convert("cityscapes", bad, tmp_path / "bad", split="val", workers=1)
    assert err.value.path.endswith("defaultcity_000001_000019_gtFine_instanceIds.png")
    with pytest.raises(CurateError, match="every frame of cityscapes_val was skipped"):  # never a silent success
        convert("cityscapes", bad, tmp_path / "bad", split="val", workers=1, on_error="skip")
    report = load(tmp_path / "bad" / "cityscapes_val.report.json")
    assert report["frames"] == {"listed": 1, "converted": 0, "skipped": 1}
    assert not (tmp_path / "bad" / "cityscapes_val.json").exists()
    one_pixel = load(convert("cityscapes", bad, tmp_path / "bad", split="train", workers=1).coco_path)
    assert [a["area"] for a in one_pixel["annotations"]] == [1]  # Detectron2 would drop it; synmix keeps it


# --- determinism and resume --------------------------------------------------------------------


def test_output_is_byte_identical_for_any_worker_count(handmade, tmp_path):
    one = convert("synscapes", handmade, tmp_path / "one", split="all", split_file=every_frame_file(handmade),
                     workers=1, shard_size=1, gtfine=True)
    two = convert("synscapes", handmade, tmp_path / "two", split="all", split_file=every_frame_file(handmade),
                     workers=2, shard_size=1, gtfine=True)
    assert one.coco_path.read_bytes() == two.coco_path.read_bytes()
    assert load(two.report_path)["options"]["workers"] == 2
    gt_one = sorted((tmp_path / "one/gtFine").rglob("*.png"))
    assert len(gt_one) == 12  # instanceIds, labelIds, labelTrainIds of 4 frames
    for path in gt_one:
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()


def test_resume_after_hard_kill_gives_identical_file(handmade, tmp_path):
    fresh = {split: convert("synscapes", handmade, tmp_path / "fresh", split=split, workers=1, shard_size=1)
             for split in ("train", "val")}
    out = tmp_path / "out"
    # --split all on the command line: train (frames 1, 2, 3) then val (20001), one file each
    args = ["convert", "synscapes", str(handmade), "--out", str(out), "--split", "all", "-j", "1",
            "--shard-size", "1", "-q"]
    killed = run_cli_killed_at_frame(3, *args)
    assert killed.returncode == -9  # SIGKILL: no cleanup ran
    shards = sorted(p.name for p in (out / ".shards/synscapes_train").glob("*.json"))
    assert shards == ["00000.json", "00001.json"] and not (out / "synscapes_train.json").exists()

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for split, result in fresh.items():
        assert (out / f"synscapes_{split}.json").read_bytes() == result.coco_path.read_bytes()
    assert load(out / "synscapes_train.report.json")["shards"] == {"total": 3, "reused": 2}


def test_resume_ignores_shards_of_another_configuration(handmade, tmp_path):
    out = tmp_path / "out"
    convert("synscapes", handmade, out, split="all", split_file=every_frame_file(handmade),
                     workers=1, shard_size=1, rules="drop-ignored-classes")
    shard_dir = out / ".shards/synscapes_all"
    # leave a complete shard of a run with other rules, as an interrupted run would
    from curate.convert.driver import ConvertJob, ShardSpec, run_shard
    from curate.sources import ConvertSettings, FrameRef

    settings = ConvertSettings(handmade.resolve(), "all", out.resolve(), ("drop-ignored-classes",))
    run_shard(ShardSpec(ConvertJob("synscapes", settings), 0, (FrameRef(1, 1, handmade / "meta/1.json"),)))
    assert (shard_dir / "00000.json").is_file()
    result = convert("synscapes", handmade, out, split="all", split_file=every_frame_file(handmade),
                     workers=1, shard_size=1, resume=True)
    assert load(result.report_path)["shards"]["reused"] == 0
    assert any(a["rule"] == "rider-split" for a in load(result.coco_path)["annotations"])


# --- generated sample sets ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def synscapes_converted(synscapes_sample, tmp_path_factory):
    root, truth = synscapes_sample
    out = tmp_path_factory.mktemp("syn-out")
    return root, truth, {split: convert("synscapes", root, out, split=split, workers=1, shard_size=4)
                         for split in ("train", "val")}


def truth_of(truth, frame: int):
    return truth.frames[frame] if frame in truth.frames else truth.frames[str(frame)]


def test_synscapes_sample_rider_split_creates_exactly_the_drawn_riders(synscapes_converted):
    root, truth, results = synscapes_converted
    frames_seen = 0
    totals = {"riders": 0, "unridden": 0, "invisible": 0, "emptied": 0, "dropped": 0}
    for result in results.values():
        coco = load(result.coco_path)
        report = load(result.report_path)
        for image in coco["images"]:
            frame_truth = truth_of(truth, image["frame"])
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            riders = sorted((a["source_instance_id"], a["area"]) for a in anns if a["rule"] == "rider-split")
            assert riders == sorted(tuple(r) for r in frame_truth.riders)
            assert all(a["category_id"] == COCO_ID_BY_LABEL_ID[RIDER] for a in anns if a["rule"] == "rider-split")
            visible = {i for ids in frame_truth.visible.values() for i in ids}
            assert {a["source_instance_id"] for a in anns if not a["iscrowd"]} <= visible
            totals["riders"] += len(frame_truth.riders)
            totals["unridden"] += len(frame_truth.unridden)
            totals["invisible"] += len(frame_truth.invisible)
            frames_seen += 1
        rules = report["rule_counts"]
        totals["emptied"] += rules["rider-split"]["vehicles_left_without_pixels"]
        totals["dropped"] += rules["invisible"]["instances_dropped"]
        assert rules["rider-split"]["riders_created"] == report["instances"]["after rider-split"].get("rider", 0)
    assert frames_seen == len(truth.frames) == 12
    assert totals["riders"] > 0 and totals["unridden"] > 0  # the sample exercises both cases
    reported = sum(load(r.report_path)["rule_counts"]["rider-split"]["unridden_vehicles"] for r in results.values())
    assert reported == totals["unridden"]
    # invisible drops the fully hidden meta instances plus vehicles whose every pixel was rider
    assert totals["dropped"] == totals["invisible"] + totals["emptied"]


def test_synscapes_sample_masks_match_per_instance_pycocotools(synscapes_converted):
    root, _, results = synscapes_converted
    coco = load(results["train"].coco_path)
    checked = 0
    for image in coco["images"][:4]:
        frame = syn_source.load_frame(root, image["frame"])
        inst, cls = frame.instance_map, frame.class_map
        classes = {i: m.class_id for i, m in frame.meta.instances.items()}
        for a in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            source = a["source_instance_id"]
            if a["iscrowd"]:
                mask = (inst == 0) & (cls == source)
            elif a["rule"] == "rider-split":
                mask = (inst == source) & (cls == RIDER)
            elif classes[source] in TWO_WHEELERS:
                mask = (inst == source) & (cls != RIDER)
            else:
                mask = inst == source
            rle = rle_of(mask)
            assert a["segmentation"] == rle
            assert a["area"] == int(mask_util.area(rle)) and a["bbox"] == mask_util.toBbox(rle).tolist()
            m = frame.meta.instances[source] if not a["iscrowd"] else None
            if m is not None:
                assert (a["occluded"], a["truncated"], a["depth"]) == (m.occluded, m.truncated, m.bbox2d[4])
            checked += 1
    assert checked > 30


def test_synscapes_sample_loads_in_pycocotools_and_detectron2(synscapes_converted):
    root, _, results = synscapes_converted
    path = results["train"].coco_path
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 10  # 10 train + 2 val frames in the fixture
    assert all(coco.annToMask(a).sum() == a["area"] for a in coco.dataset["annotations"][:50])
    pytest.importorskip("detectron2")
    from detectron2.data.datasets.coco import load_coco_json

    records = load_coco_json(str(path), str(root))
    assert len(records) == 10 and all(Path(r["file_name"]).is_file() for r in records)


def test_synscapes_sample_identical_for_workers_1_and_2(synscapes_sample, tmp_path):
    root, _ = synscapes_sample
    one = convert("synscapes", root, tmp_path / "one", split="all", split_file=every_frame_file(root),
                     workers=1, shard_size=3)
    two = convert("synscapes", root, tmp_path / "two", split="all", split_file=every_frame_file(root),
                     workers=2, shard_size=3)
    assert one.coco_path.read_bytes() == two.coco_path.read_bytes()
    assert load(one.coco_path)["annotations"]


def test_cityscapes_sample_matches_truth(cityscapes_sample, tmp_path):
    root, truths = cityscapes_sample
    result = convert("cityscapes", root, tmp_path / "out", split="train", workers=2, shard_size=2)
    coco = load(result.coco_path)
    assert [img["id"] for img in coco["images"]] == list(range(1, 7))
    assert [img["frame"] for img in coco["images"]] == sorted(truths["train"].frames)
    for image in coco["images"]:
        frame_truth = truths["train"].frames[image["frame"]]
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        instances = {a["source_instance_id"]: a for a in anns if not a["iscrowd"]}
        assert sorted(instances) == sorted(i for ids in frame_truth.visible.values() for i in ids)
        for rider_id, pixels in frame_truth.riders:
            assert instances[rider_id]["area"] == pixels
            assert instances[rider_id]["category_id"] == COCO_ID_BY_LABEL_ID[RIDER]
        for source, a in instances.items():
            assert a["area"] == frame_truth.pixels[source]
        group_labels = {LABEL_ID[name[: -len("group")]] for name, n in frame_truth.groups if n > 0}
        assert {a["source_instance_id"] for a in anns if a["iscrowd"]} == group_labels
        assert (root / image["file_name"]).is_file()
    assert COCO(str(result.coco_path)).getAnnIds()


def test_synscapes_sample_gtfine_reads_in_detectron2(synscapes_sample, tmp_path):
    pytest.importorskip("detectron2")
    root, _ = synscapes_sample
    result = convert("synscapes", root, tmp_path / "out", split="val", workers=1, gtfine=True)
    assert_detectron2_reads_gtfine_as_coco(tmp_path / "out", "val", load(result.coco_path))


@pytest.mark.parametrize("command", ["convert", "check"])
def test_frames_run_with_reused_buffers_and_one_opencv_thread(command, synscapes_sample, tmp_path, monkeypatch):
    """convert's shards and check's tasks both convert frames under ``frame_loop``: the scratch pool
    is open (arrays reused from frame to frame, no page faults for each), OpenCV runs one thread and
    the cyclic garbage collector is paused; all are restored afterwards."""
    from curate import buffers
    from curate.check import run_check
    from curate.convert import driver

    seen = []
    real = driver.convert_frame

    def watching(job, ref):
        seen.append((getattr(buffers._LOCAL, "pool", None) is not None, cv2.getNumThreads(), gc.isenabled()))
        return real(job, ref)

    monkeypatch.setattr(driver, "convert_frame", watching)
    threads = cv2.getNumThreads()
    if command == "convert":
        convert("synscapes", synscapes_sample[0], tmp_path / "out", split="train", workers=1, progress=False)
    else:
        run_check("synscapes", synscapes_sample[0], ["train"], workers=1, progress=False)
    assert seen and all(seen_ == (True, 1, False) for seen_ in seen)
    assert getattr(buffers._LOCAL, "pool", None) is None and cv2.getNumThreads() == threads
    assert gc.isenabled()


@pytest.mark.parametrize("source", ["synscapes", "cityscapes", "bdd100k"])
def test_frame_conversion_makes_no_reference_cycles(source, synscapes_sample, cityscapes_sample, fixtures_dir,
                                                    tmp_path):
    """``frame_loop`` pauses the garbage collector: that is only safe while converting a frame
    (with --gtfine, and a frame skipped for an error) leaves no cyclic garbage behind."""
    from curate.convert.driver import ConvertJob, ShardSpec, run_shard
    from curate.sources import ConvertSettings

    root, split = {"synscapes": (synscapes_sample[0], "train"), "cityscapes": (cityscapes_sample[0], "train"),
                   "bdd100k": (fixtures_dir / "bdd100k", "val")}[source]
    src = sources.get(source)
    frames = list(src.list_frames(root, split, None).frames)
    assert frames
    if source == "synscapes":  # a frame whose files do not exist
        frames.append(replace(frames[0], key=10**6, image_id=10**6))
    else:  # a frame whose label map is no PNG
        broken = tmp_path / "broken.png"
        broken.write_bytes(b"not a png")
        frames.append(replace(frames[0], path=broken, image_id=10**6))
    settings = ConvertSettings(root, split, tmp_path / "out", src.rules, gtfine=src.writes_gtfine)
    job = ConvertJob(source, settings, on_error="skip")
    job.shard_dir.mkdir(parents=True)
    gc.collect()
    gc.disable()
    try:
        summary = run_shard(ShardSpec(job, 0, tuple(frames)))
        shard = json.loads(ShardSpec(job, 0, tuple(frames)).path.read_text())
        assert summary["error"] is None and len(shard["skipped"]) == 1 and len(shard["images"]) == len(frames) - 1
        assert gc.collect() == 0
    finally:
        gc.enable()
