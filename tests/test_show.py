"""``curate show``: the pictures show what harmonization and pruning do, checked on their pixels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.convert import convert
from curate.errors import CurateError
from curate.labels import COCO_ID_BY_LABEL_ID, LABEL_ID
from curate.overlay import class_colour
from curate.prune import plan_pruning, uniform_fractions
from curate.show import prune_picture, synscapes_picture
from curate.sources import synscapes as syn_source

REPO = Path(__file__).resolve().parents[1]
RIDER = LABEL_ID["rider"]
FRACTIONS = (0.0, 0.4, 0.6, 0.7, 0.8, 0.9)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def colour_mask(image: np.ndarray, label_id: int) -> np.ndarray:
    return (image == class_colour(label_id)).all(axis=2)


def interior(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` whose 8 neighbours are in it too (away from every outline)."""
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0).astype(bool)


@pytest.fixture(scope="module")
def ridden_frame(synscapes_sample):
    """The train frame whose riders cover the most pixels, and its label maps."""
    root, truth = synscapes_sample
    train = [n for n in truth.frames if n in syn_source.DEFAULT_SPLITS["train"]]
    n = max(train, key=lambda k: (sum(p for _, p in truth.frames[k].riders), -k))
    return root, n, truth.frames[n], syn_source.load_frame(root, n)


@pytest.fixture(scope="module")
def converted(synscapes_sample, tmp_path_factory):
    root, _ = synscapes_sample
    out = tmp_path_factory.mktemp("show-out")
    convert("synscapes", root, out, split="train", workers=1, progress=False)
    return out, json.loads((out / "synscapes_train.json").read_text())


# --- curate show synscapes ---------------------------------------------------------------------


def test_rider_appears_only_in_the_harmonized_panel(ridden_frame):
    root, n, truth, frame = ridden_frame
    assert truth.riders, "the chosen frame must carry a rider"
    picture = synscapes_picture(root, n, alpha=1.0)  # solid fills: interior pixels are exact class colours
    assert len(picture.figure.boxes) == 2
    original, harmonized = (box.crop(picture.image) for box in picture.figure.boxes)
    height, width = frame.class_map.shape
    assert original.shape[:2] == harmonized.shape[:2] == (height, width)  # small frame: not scaled

    assert not colour_mask(original, RIDER).any()
    rider_pixels = colour_mask(harmonized, RIDER)
    assert rider_pixels.any()
    vehicles = {vid for vid, _ in truth.riders}
    on_ridden = np.isin(frame.instance_map, list(vehicles)) & (frame.class_map == RIDER)
    assert not (rider_pixels & ~on_ridden).any()  # rider colour only where a rider sat on a two-wheeler

    for vid, _ in truth.riders:
        inside = interior((frame.instance_map == vid) & (frame.class_map == RIDER))
        vehicle_class = frame.meta.instances[vid].class_id
        # Synscapes: the rider is painted as part of his bicycle/motorcycle; harmonized: as a rider
        assert colour_mask(original, vehicle_class)[inside].all()
        assert colour_mask(harmonized, RIDER)[inside].all()

    left, right = picture.panels
    assert right.by_class.get("rider", 0) - left.by_class.get("rider", 0) == len(truth.riders)
    assert f"{len(truth.riders)} riders split off" in right.title


def test_without_rider_split_no_rider_is_drawn(ridden_frame):
    root, n, truth, _ = ridden_frame
    picture = synscapes_picture(root, n, rules="invisible,drop-ignored-classes", alpha=1.0)
    assert not any(colour_mask(box.crop(picture.image), RIDER).any() for box in picture.figure.boxes)
    assert "rider-split not applied" in picture.panels[1].title


def test_large_frames_are_scaled_to_the_width_limit(ridden_frame):
    root, n, _, frame = ridden_frame
    picture = synscapes_picture(root, n, max_width=500)
    assert picture.image.shape[1] <= 500
    box = picture.figure.boxes[0]
    height, width = frame.class_map.shape
    assert box.width < width and abs(box.height / box.width - height / width) < 0.02


# --- curate show prune -------------------------------------------------------------------------


def test_prune_panels_keep_what_prune_keeps(converted):
    out, coco = converted
    instances = [a for a in coco["annotations"] if not a["iscrowd"]]
    image_id = max(coco["images"], key=lambda im: sum(a["image_id"] == im["id"] for a in instances))["id"]
    frame_key = next(im["frame"] for im in coco["images"] if im["id"] == image_id)
    picture = prune_picture(out, frame_key, FRACTIONS, alpha=1.0)

    assert len(picture.figure.boxes) == len(picture.panels) == len(FRACTIONS)
    category = np.array([a["category_id"] for a in coco["annotations"]])
    area = np.array([a["area"] for a in coco["annotations"]])
    ann_id = np.array([a["id"] for a in coco["annotations"]])
    iscrowd = np.array([a["iscrowd"] for a in coco["annotations"]])
    in_frame = (np.array([a["image_id"] for a in coco["annotations"]]) == image_id) & (iscrowd == 0)
    kept_counts = []
    for fraction, panel in zip(FRACTIONS, picture.panels):
        plan = plan_pruning(category, area, ann_id, iscrowd, uniform_fractions(fraction))
        expected = int((in_frame & ~plan.removed).sum())
        assert panel.instances == expected and panel.total == int(in_frame.sum())
        assert panel.title == f"p = {fraction * 100:g} %: {expected} of {int(in_frame.sum())} instances"
        kept_counts.append(expected)
    assert kept_counts[0] == int(in_frame.sum())
    assert all(a >= b for a, b in zip(kept_counts, kept_counts[1:])) and kept_counts[-1] < kept_counts[0]

    # what is filled shrinks with p: pixels painted in some class colour, per panel
    filled = []
    for box in picture.figure.boxes:
        panel = box.crop(picture.image)
        filled.append(sum(int(colour_mask(panel, lid).sum()) for lid in COCO_ID_BY_LABEL_ID))
    assert all(a >= b for a, b in zip(filled, filled[1:])) and filled[-1] < filled[0]


# --- the command line --------------------------------------------------------------------------


def test_cli_writes_the_pictures(ridden_frame, converted, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    root, n, _, _ = ridden_frame
    out, coco = converted
    runner = CliRunner()
    target = tmp_path / "figs" / "synscapes.png"
    result = runner.invoke(app, ["show", "synscapes", str(root), str(n), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(target)
    written = cv2.cvtColor(cv2.imread(str(target)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, synscapes_picture(root, n).image)  # colours stored as RGB, not swapped

    target = tmp_path / "prune.png"
    frame_key = str(coco["images"][0]["frame"])
    result = runner.invoke(app, ["show", "prune", str(out), frame_key, "--fractions", "0,0.5", "--out", str(target)])
    assert result.exit_code == 0, result.output
    written = cv2.cvtColor(cv2.imread(str(target)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, prune_picture(out, frame_key, (0.0, 0.5)).image)
    assert not list(tmp_path.glob(".*.tmp"))


def test_every_option_has_help():
    import typer

    from curate.cli import _mount, app

    _mount()
    show = typer.main.get_command(app).commands["show"]
    for name in ("synscapes", "prune"):
        command = show.commands[name]
        assert command.help
        for param in command.params:
            assert getattr(param, "help", None), f"show {name}: {param.name} has no help"


@pytest.mark.parametrize("case", ["frame-missing", "frame-not-number", "out-missing", "fraction-1", "bad-frame-key",
                                  "not-png"])
def test_bad_input_gives_one_line_and_exit_2(case, ridden_frame, converted, tmp_path):
    root, _, _, _ = ridden_frame
    out, _ = converted
    png = str(tmp_path / "x.png")
    args, expected = {
        "frame-missing": (["synscapes", str(root), "999", "--out", png], "meta/999.json"),
        "frame-not-number": (["synscapes", str(root), "abc", "--out", png], "not a Synscapes frame number"),
        "out-missing": (["prune", str(tmp_path), "1", "--out", png], "synscapes_train.json: file not found"),
        "fraction-1": (["prune", str(out), "1", "--fractions", "0,1.2", "--out", png], "outside [0, 1)"),
        "bad-frame-key": (["prune", str(out), "aachen_000000_000019", "--out", png], "no frame"),
        "not-png": (["synscapes", str(root), "1", "--out", str(tmp_path / "x.jpg")], ".png"),
    }[case]
    proc = run_cli("show", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not Path(png).exists()


def test_library_errors_are_curate_errors(converted):
    out, _ = converted
    with pytest.raises(CurateError, match="outside"):
        prune_picture(out, 1, (0.0, -0.1))
    with pytest.raises(CurateError, match="at least one"):
        prune_picture(out, 1, "")


def test_pretty_printed_coco_gives_the_same_picture(converted, tmp_path):
    """Files not on one line are read with json.loads instead of Arrow: same masks, same picture."""
    out, coco = converted
    other = tmp_path / "pretty"
    other.mkdir()
    (other / "synscapes_train.json").write_text(json.dumps(coco, indent=1))
    frame_key = coco["images"][-1]["frame"]
    fast = prune_picture(out, frame_key, (0.0, 0.5))
    slow = prune_picture(other, frame_key, (0.0, 0.5))
    assert np.array_equal(fast.image, slow.image)


def test_cityscapes_frames_are_named(cityscapes_sample, tmp_path):
    root, _ = cityscapes_sample
    convert("cityscapes", root, tmp_path, split="val", workers=1, progress=False)
    coco = json.loads((tmp_path / "cityscapes_val.json").read_text())
    name = coco["images"][1]["frame"]
    picture = prune_picture(tmp_path, name, (0.0, 0.8), source="cityscapes", split="val", alpha=1.0)
    instances = sum(a["image_id"] == coco["images"][1]["id"] and not a["iscrowd"] for a in coco["annotations"])
    assert picture.panels[0].instances == instances and name in picture.heading
    first = picture.figure.boxes[0].crop(picture.image)
    assert first.shape[:2] == (coco["images"][1]["height"], coco["images"][1]["width"])
    assert any(colour_mask(first, lid).any() for lid in COCO_ID_BY_LABEL_ID)
