"""Fault injection, input side: damaged or surprising data sets, and ``curate check``.

Every case runs the real CLI as a subprocess on a real (generated) tree that the test damages, and
asserts the exit status, exactly one ``error:`` line naming the file really at fault and no
traceback, and that nothing partial was written. Cases are listed in ``BROKEN`` (one per fault) so
that each is its own test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ})


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def strict_json(path: Path):
    """RFC 8259 JSON only: NaN and Infinity are refused."""
    def refuse(name):
        raise ValueError(f"{name} in {path}")
    return json.loads(path.read_text(), parse_constant=refuse)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")] if folder.exists() else True


# --- trees ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_trees(tmp_path_factory):
    from curate.sample import write_bdd100k_sample, write_cityscapes_sample, write_synscapes_sample

    base = tmp_path_factory.mktemp("clean")
    write_synscapes_sample(base / "syn", frames=4, seed=21, size=(320, 160), val_fraction=0)
    write_cityscapes_sample(base / "cs", frames=3, split="train", seed=22, size=(256, 128))
    write_bdd100k_sample(base / "bdd", frames=3, split="train", seed=23, size=(256, 144))
    return base


@pytest.fixture
def trees(clean_trees, tmp_path):
    shutil.copytree(clean_trees, tmp_path / "in", symlinks=True)
    return tmp_path / "in"


def _meta(root: Path, n: int) -> tuple[Path, dict]:
    path = root / f"meta/{n}.json"
    return path, json.loads(path.read_text())


def _first_instance(meta: dict) -> str:
    return next(iter(meta["instance"]["class"]))


def _set_meta(root: Path, n: int, group: str, value, raw: str | None = None) -> Path:
    path, meta = _meta(root, n)
    key = _first_instance(meta)
    meta["instance"][group][key] = value
    text = json.dumps(meta)
    if raw is not None:  # a value json.dumps would refuse to write strictly
        text = text.replace(json.dumps(value), raw, 1)
    path.write_text(text)
    return path


def _resize(path: Path, size: tuple[int, int]) -> None:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), cv2.resize(image, size, interpolation=cv2.INTER_NEAREST))


def _cs_frame(root: Path) -> Path:
    return sorted((root / "gtFine/train").rglob("*_gtFine_instanceIds.png"))[0]


def _bad_syn_rgb_size(t):
    _resize(t / "syn/img/rgb/2.png", (321, 160))
    return "synscapes", t / "syn", t / "syn/img/rgb/2.png"


def _syn_pngs_without_meta(t):
    (t / "syn/meta/3.json").unlink()
    return "synscapes", t / "syn", t / "syn/meta/3.json"


def _syn_meta_without_pngs(t):
    (t / "syn/img/class/3.png").unlink()
    (t / "syn/img/instance/3.png").unlink()
    return "synscapes", t / "syn", t / "syn/img/class/3.png"


def _syn_leading_zero(t):
    shutil.copy(t / "syn/meta/1.json", t / "syn/meta/01.json")
    return "synscapes", t / "syn", t / "syn/meta/01.json"


def _syn_full_width_digit(t):
    shutil.copy(t / "syn/img/class/1.png", t / "syn/img/class/１.png")
    return "synscapes", t / "syn", t / "syn/img/class/１.png"


def _syn_meta_nan(t):
    return "synscapes", t / "syn", _set_meta(t / "syn", 2, "occluded", 0.123456, raw="NaN")


def _syn_meta_out_of_range(t):
    return "synscapes", t / "syn", _set_meta(t / "syn", 2, "truncated", 1.5)


def _syn_meta_infinity(t):
    path, meta = _meta(t / "syn", 2)
    key = _first_instance(meta)
    meta["instance"]["bbox2d"][key]["zmin"] = 1e999  # json.dumps writes Infinity
    path.write_text(json.dumps(meta))
    return "synscapes", t / "syn", path


def _syn_meta_bool_fraction(t):
    return "synscapes", t / "syn", _set_meta(t / "syn", 2, "occluded", True)


def _syn_meta_unicode_id(t):
    path, meta = _meta(t / "syn", 2)
    for group in ("class", "occluded", "truncated", "bbox2d", "bbox3d"):
        table = meta["instance"][group]
        key = next(iter(table))
        table["²"] = table.pop(key)
    path.write_text(json.dumps(meta))
    return "synscapes", t / "syn", path


def _cs_image_size(t):
    gt = _cs_frame(t / "cs")
    image = t / "cs/leftImg8bit/train" / gt.parent.name / gt.name.replace("_gtFine_instanceIds.png", "_leftImg8bit.png")
    _resize(image, (256, 129))
    return "cityscapes", t / "cs", image


def _cs_city_prefix(t):
    gt = _cs_frame(t / "cs")
    other = gt.parent.parent / "otherville"
    other.mkdir()
    moved = other / gt.name
    shutil.move(gt, moved)
    return "cityscapes", t / "cs", moved


def _cs_frame_twice(t):
    gt = _cs_frame(t / "cs")
    city = gt.name.split("_")[0]
    twin = gt.parent.parent / f"{city}-2"
    twin.mkdir()
    # same stem in a second folder: the city prefix then differs too, unless the folder is named alike
    copy = twin / gt.name
    shutil.copy(gt, copy)
    return "cityscapes", t / "cs", copy


def _bdd_image_size(t):
    image = sorted((t / "bdd/images/10k/train").glob("*.jpg"))[0]
    _resize(image, (250, 144))
    return "bdd100k", t / "bdd", image


def _bdd_stray_file(t):
    stray = t / "bdd/labels/ins_seg/bitmasks/train/readme.txt"
    stray.write_text("not a bitmask")
    return "bdd100k", t / "bdd", stray


def _bdd_not_rgba(t):
    bitmask = sorted((t / "bdd/labels/ins_seg/bitmasks/train").glob("*.png"))[1]
    cv2.imwrite(str(bitmask), np.zeros((144, 256), np.uint8))
    return "bdd100k", t / "bdd", bitmask


BROKEN = {
    "synscapes RGB size differs from its label maps": _bad_syn_rgb_size,
    "synscapes PNGs without meta": _syn_pngs_without_meta,
    "synscapes meta without PNGs": _syn_meta_without_pngs,
    "synscapes 01.json beside 1.json": _syn_leading_zero,
    "synscapes full-width digit in a file name": _syn_full_width_digit,
    "synscapes meta NaN": _syn_meta_nan,
    "synscapes meta fraction out of range": _syn_meta_out_of_range,
    "synscapes meta Infinity": _syn_meta_infinity,
    "synscapes meta bool as a fraction": _syn_meta_bool_fraction,
    "synscapes meta instance id in non-ASCII digits": _syn_meta_unicode_id,
    "cityscapes leftImg8bit size differs": _cs_image_size,
    "cityscapes city prefix differs from its folder": _cs_city_prefix,
    "cityscapes frame in two city folders": _cs_frame_twice,
    "bdd100k JPEG size differs from its bitmask": _bdd_image_size,
    "bdd100k stray file among the bitmasks": _bdd_stray_file,
    "bdd100k bitmask not RGBA": _bdd_not_rgba,
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_input_is_one_line_naming_the_file_or_a_recorded_skip(case, trees, tmp_path):
    source, root, culprit = BROKEN[case](trees)
    out = tmp_path / "out"
    result = run("convert", source, str(root), "--out", str(out), "--split", "train", "-j", "1", "-q")
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(f"error: {culprit}: "), line
    assert not (out / f"{source}_train.json").exists() and no_temp_files(out)

    # with --on-error skip: a recorded skip, never a silent success with the frame missing unsaid
    skipped = run("convert", source, str(root), "--out", str(out), "--split", "train", "-j", "1", "-q",
                  "--on-error", "skip")
    assert skipped.returncode == 0, skipped.stderr
    report = strict_json(out / f"{source}_train.report.json")
    recorded = [s["path"] for s in report["skipped_frames"] + report["skipped_files"]]
    assert str(culprit) in recorded

    # curate check lists the same file, and exits 1
    checked = run("check", source, str(root), "--split", "train", "--json", str(tmp_path / "f.json"), "-q")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    findings = strict_json(tmp_path / "f.json")["findings"]
    files = [e.get("file") for kind in findings.values() for e in kind["examples"]]
    assert str(culprit) in files


def test_every_frame_skipped_is_no_success(trees, tmp_path):
    for n in range(1, 5):
        (trees / f"syn/img/instance/{n}.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    result = run("convert", "synscapes", str(trees / "syn"), "--out", str(out), "--on-error", "skip", "-q")
    assert result.returncode == 2
    assert "every frame of synscapes_train was skipped" in one_error_line(result)
    assert strict_json(out / "synscapes_train.report.json")["frames"]["skipped"] == 4
    assert not (out / "synscapes_train.json").exists()


def test_8bit_instance_ids_warn_and_are_counted(trees, tmp_path):
    gt = _cs_frame(trees / "cs")
    ids = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(gt), np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8))  # a labelIds copy
    result = run("convert", "cityscapes", str(trees / "cs"), "--out", str(tmp_path / "out"), "-q")
    assert result.returncode == 0, result.stderr
    assert f"warning: {gt}: instance_ids_8bit" in result.stderr and "Traceback" not in result.stderr
    report = strict_json(tmp_path / "out/cityscapes_train.report.json")
    assert report["findings"]["instance_ids_8bit"]["count"] == 1


def test_meta_class_disagreeing_with_pixels_keeps_gtfine_consistent(trees, tmp_path):
    """A car instance whose pixels the class map calls person: counted per (meta, pixel) class, and
    the --gtfine labelIds follow the instance so that the two gtFine maps never disagree."""
    root = trees / "syn"
    path, meta = _meta(root, 1)
    instance = cv2.imread(str(root / "img/instance/1.png"), cv2.IMREAD_UNCHANGED).astype(np.int64)
    ids = instance[..., 2] + 256 * instance[..., 1] + 65536 * instance[..., 0]
    cars = [k for k, c in meta["instance"]["class"].items() if c == 26 and (ids == int(k)).any()]
    car = int(cars[0])
    classes = cv2.imread(str(root / "img/class/1.png"), cv2.IMREAD_UNCHANGED)
    ys, xs = np.nonzero(ids == car)
    classes[ys[0], xs[0]] = 24  # one pixel of the car labelled person in the class map
    cv2.imwrite(str(root / "img/class/1.png"), classes)
    out = tmp_path / "out"
    result = run("convert", "synscapes", str(root), "--out", str(out), "--gtfine", "-q")
    assert result.returncode == 0, result.stderr
    report = strict_json(out / "synscapes_train.report.json")
    assert report["class_disagreements"] == {"car/person": 1}
    gt = out / "gtFine/train/synscapes"
    inst = cv2.imread(str(gt / "synscapes_000000_000001_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    labels = cv2.imread(str(gt / "synscapes_000000_000001_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
    is_instance = inst >= 1000
    assert np.array_equal(labels[is_instance], inst[is_instance] // 1000)
    assert labels[ys[0], xs[0]] == 26


def test_resume_after_an_input_changed_equals_a_fresh_run(trees, tmp_path):
    """An interrupted run left every shard; then frame 2's class map changed. --resume redoes that
    shard (its fingerprint covers the size and time of each input file) and equals a fresh run."""
    from curate.convert.driver import ConvertJob, make_shards, run_shard
    from curate.sources import ConvertSettings, get

    root, out = (trees / "syn").resolve(), (tmp_path / "out").resolve()
    spec = get("synscapes")
    job = ConvertJob("synscapes", ConvertSettings(root, "train", out, spec.rules))
    shards = make_shards(job, spec.list_frames(root, "train", None).frames, 1)
    for shard in shards:  # what an interrupted run leaves: every shard, no merged file
        run_shard(shard)
    classes = cv2.imread(str(root / "img/class/2.png"), cv2.IMREAD_UNCHANGED)
    classes[:, :20] = 7  # road over the left edge: frame 2 changes
    cv2.imwrite(str(root / "img/class/2.png"), classes)
    resumed = run("convert", "synscapes", str(root), "--out", str(out), "--shard-size", "1", "--resume", "-q")
    fresh = run("convert", "synscapes", str(root), "--out", str(tmp_path / "fresh"), "--shard-size", "1", "-q")
    assert resumed.returncode == fresh.returncode == 0, resumed.stderr + fresh.stderr
    assert (out / "synscapes_train.json").read_bytes() == (tmp_path / "fresh/synscapes_train.json").read_bytes()
    assert strict_json(out / "synscapes_train.report.json")["shards"] == {"total": 4, "reused": 3}


def test_a_second_convert_into_the_same_outputs_stops_at_once(tmp_path):
    from curate.sample import write_synscapes_sample

    root = tmp_path / "syn"
    write_synscapes_sample(root, frames=24, seed=3, size=(1440, 720), val_fraction=0, workers=2)
    for n in range(25, 241):  # links to the 24 frames: a first run long enough for the second to meet it
        for folder, suffix in (("meta", "json"), ("img/class", "png"), ("img/instance", "png"), ("img/rgb", "png")):
            (root / folder / f"{n}.{suffix}").symlink_to(root / folder / f"{(n - 1) % 24 + 1}.{suffix}")
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "curate", "convert", "synscapes", str(root), "--out", str(out),
                              "-j", "1", "--shard-size", "1", "-q"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    lock = out / ".synscapes_train.lock"
    deadline = time.time() + 60
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.05)
    second = run("convert", "synscapes", str(root), "--out", str(out), "-j", "1", "-q")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2
    line = one_error_line(second)
    assert line.startswith(f"error: {lock}: another curate convert (pid {first.pid}")
    fresh = run("convert", "synscapes", str(root), "--out", str(tmp_path / "fresh"), "-q")
    assert fresh.returncode == 0
    assert (out / "synscapes_train.json").read_bytes() == (tmp_path / "fresh/synscapes_train.json").read_bytes()
    assert not lock.exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over(trees, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    import socket

    (out / ".synscapes_train.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    result = run("convert", "synscapes", str(trees / "syn"), "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert not (out / ".synscapes_train.lock").exists()


def test_killed_parent_leaves_no_worker_behind(tmp_path):
    from curate.sample import write_synscapes_sample

    root = tmp_path / "syn"
    write_synscapes_sample(root, frames=40, seed=4, size=(1440, 720), val_fraction=0, workers=2)
    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-m", "curate", "convert", "synscapes", str(root), "--out", str(out),
                               "-j", "2", "--shard-size", "2", "-q"], cwd=REPO, stderr=subprocess.DEVNULL)
    shards = out / ".shards/synscapes_train"
    deadline = time.time() + 120
    while not (shards.is_dir() and any(p.suffix == ".json" for p in shards.iterdir())) and time.time() < deadline:
        time.sleep(0.05)
    children = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True,
                                                   text=True).stdout.split()]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert children, "the conversion finished before it could be killed: use more frames"
    killed_at = time.time()

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False

    while any(running(pid) for pid in children) and time.time() - killed_at < 10:
        time.sleep(0.1)
    assert not any(running(pid) for pid in children), "a worker outlived its parent by 10 s"
    assert time.time() - killed_at < 5


def test_check_clean_findings_and_unreadable(trees, tmp_path):
    clean = run("check", "synscapes", str(trees / "syn"), "--json", str(tmp_path / "clean.json"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert strict_json(tmp_path / "clean.json")["clean"] is True

    missing = run("check", "bdd100k", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and one_error_line(missing).startswith(f"error: {tmp_path / 'nowhere'}")

    _syn_leading_zero(trees)
    _bad_syn_rgb_size(trees)
    shutil.copy(trees / "syn/img/class/4.png", trees / "syn/img/class/3.png")  # frame 3 = frame 4
    shutil.copy(trees / "syn/img/instance/4.png", trees / "syn/img/instance/3.png")
    shutil.copy(trees / "syn/meta/4.json", trees / "syn/meta/3.json")
    found = run("check", "synscapes", str(trees / "syn"), "--json", str(tmp_path / "f.json"), "-j", "2")
    assert found.returncode == 1
    report = strict_json(tmp_path / "f.json")
    assert {"stray_file", "size_mismatch", "duplicate_frames"} <= set(report["findings"])
    assert report["findings"]["duplicate_frames"]["examples"][0]["frame"] == 4
    assert "size_mismatch: 1" in found.stdout and "stray_file: 1" in found.stdout

    # convert --on-error skip counts what check found
    out = tmp_path / "out"
    assert run("convert", "synscapes", str(trees / "syn"), "--out", str(out), "--on-error", "skip", "-q").returncode == 0
    converted = strict_json(out / "synscapes_train.report.json")
    assert converted["findings"]["duplicate_frames"]["count"] == report["findings"]["duplicate_frames"]["count"]
    assert {s["kind"] for s in converted["skipped_frames"] + converted["skipped_files"]} == {"stray_file",
                                                                                             "size_mismatch"}


def test_readme_lists_every_kind_of_finding():
    from curate.findings import KINDS

    readme = (REPO / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): (line.split("|")[2].strip(), line.split("|")[3].strip())
            for line in readme.splitlines() if line.startswith("| `") and line.count("|") == 4}
    assert {k: (v.severity, v.meaning) for k, v in KINDS.items()} == {k: rows[k] for k in KINDS if k in rows}
    assert set(KINDS) <= set(rows)
