"""curate manifest: pruning, nested sampling, sweeps, budget rule, round trip and clean failures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from coco_factory import write_dataset

from curate.errors import CurateError
from curate.labels import CLASS_NAMES, coco_categories
from curate.manifest import ManifestRequest, load_manifest, make_manifests, mix_coco_path
from curate.manifest.plan import budget_synthetic
from curate.schedule import schedule_hint

CATEGORY_NAME = {c["id"]: c["name"] for c in coco_categories()}
FIXED_TIME = "2000-01-01T00:00:00Z"


def _make(out: Path, output: Path, **options) -> list[Path]:
    return make_manifests(ManifestRequest(out=out, output=output, **options), created_at=FIXED_TIME, progress=False)


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _kept_by_independent_rule(coco: dict, fractions: dict[str, float]) -> set[int]:
    """Annotation ids a per-class ⌊p·n⌋ smallest-(area, id) removal keeps, computed from scratch."""
    kept = set()
    for name in CLASS_NAMES:
        members = sorted((a["area"], a["id"]) for a in coco["annotations"]
                         if CATEGORY_NAME[a["category_id"]] == name and not a["iscrowd"])
        k = math.floor(Fraction(str(fractions[name])) * len(members))
        kept |= {ann_id for _, ann_id in members[k:]}
    kept |= {a["id"] for a in coco["annotations"] if a["iscrowd"]}
    return kept


def _mix_source_ids(mix: dict, source: str) -> set[int]:
    images = {im["id"]: im for im in mix["images"]}
    return {a["source_annotation_id"] for a in mix["annotations"] if images[a["image_id"]]["source"] == source}


@pytest.mark.parametrize("prune, fractions", [
    ("0.3", {name: 0.3 for name in CLASS_NAMES}),
    ("person=0.6,default=0.25", {name: 0.6 if name == "person" else 0.25 for name in CLASS_NAMES}),
    ("car=0.5", {name: 0.5 if name == "car" else 0.0 for name in CLASS_NAMES}),
])
def test_pruning_removes_exactly_the_smallest_share_per_class_over_the_whole_split(dataset, tmp_path, prune, fractions):
    _, out = dataset
    [path] = _make(out, tmp_path / "m.json", synthetic="all", prune=prune)
    mix, manifest = _json(mix_coco_path(path)), _json(path)
    synthetic = _json(out / "synscapes_train.json")
    assert _mix_source_ids(mix, "synscapes") == _kept_by_independent_rule(synthetic, fractions)
    classes = manifest["sources"]["synscapes"]["pruning"]["classes"]
    for name in CLASS_NAMES:
        areas = sorted(a["area"] for a in synthetic["annotations"] if CATEGORY_NAME[a["category_id"]] == name)
        k = math.floor(Fraction(str(fractions[name])) * len(areas))
        assert classes[name]["removed"] == k and classes[name]["instances"] == len(areas)
        assert classes[name]["max_removed_area"] == (areas[k - 1] if k else None)
        assert classes[name]["min_kept_area"] == (areas[k] if k < len(areas) else None)
    after = manifest["sources"]["synscapes"]["instances_after"]
    assert sum(after.values()) == manifest["train"]["instances"] == len(mix["annotations"])


def test_percentile_is_over_the_whole_split_not_the_chosen_frames(dataset, tmp_path):
    _, out = dataset
    [path] = _make(out, tmp_path / "m.json", synthetic=7, prune="0.5")
    synthetic = _json(out / "synscapes_train.json")
    kept_whole_split = _kept_by_independent_rule(synthetic, {name: 0.5 for name in CLASS_NAMES})
    chosen = set(_json(path)["sources"]["synscapes"]["frames"])
    in_chosen = {a["id"] for a in synthetic["annotations"] if a["image_id"] in chosen}
    assert _mix_source_ids(_json(mix_coco_path(path)), "synscapes") == kept_whole_split & in_chosen


def test_real_source_is_pruned_only_with_prune_real(dataset, tmp_path):
    _, out = dataset
    real = _json(out / "cityscapes_train.json")
    fractions = {name: 0.4 for name in CLASS_NAMES}
    [plain] = _make(out, tmp_path / "a.json", real="all")
    [pruned] = _make(out, tmp_path / "b.json", real="all", prune_real=True)
    assert _mix_source_ids(_json(mix_coco_path(plain)), "cityscapes") == {a["id"] for a in real["annotations"]}
    assert _mix_source_ids(_json(mix_coco_path(pruned)), "cityscapes") == _kept_by_independent_rule(real, fractions)
    # crowd regions are no instances: never pruned
    crowd = {a["id"] for a in real["annotations"] if a["iscrowd"]}
    assert crowd and crowd <= _mix_source_ids(_json(mix_coco_path(pruned)), "cityscapes")
    [none] = _make(out, tmp_path / "c.json", synthetic="all", no_prune=True)
    assert len(_json(mix_coco_path(none))["annotations"]) == len(_json(out / "synscapes_train.json")["annotations"])


def test_sampling_is_seeded_and_nested(dataset, tmp_path):
    _, out = dataset

    def frames(n, seed=0, name="m"):
        [path] = _make(out, tmp_path / f"{name}{n}_{seed}.json", synthetic=n, real=n // 2, seed=seed)
        sources = _json(path)["sources"]
        return sources["synscapes"]["frames"], sources["cityscapes"]["frames"]

    small, large = frames(10), frames(25)
    assert len(small[0]) == 10 and len(large[0]) == 25 and len(small[1]) == 5
    assert set(small[0]) < set(large[0]) and set(small[1]) < set(large[1])
    assert frames(10, name="again") == small
    assert frames(10, seed=1) != small


def test_ratio_sweep_writes_eleven_nested_compositions(dataset, tmp_path):
    _, out = dataset
    paths = _make(out, tmp_path / "ratio", sweep="ratio", total=20)
    assert len(paths) == 11
    previous_real = set()
    for step, path in enumerate(paths):
        manifest = _json(path)
        real = round(step * 20 / 10)  # whole numbers here: 0, 2, … 20
        assert (manifest["train"]["real_frames"], manifest["train"]["synthetic_frames"]) == (real, 20 - real)
        assert manifest["train"]["frames"] == len(_json(mix_coco_path(path))["images"]) == 20
        real_frames = set(manifest["sources"]["cityscapes"]["frames"])
        assert previous_real <= real_frames
        previous_real = real_frames


def test_prune_sweep_writes_ten_mixes_of_the_same_frames(dataset, tmp_path):
    _, out = dataset
    paths = _make(out, tmp_path / "prune", sweep="prune", synthetic=30)
    assert [p.name for p in paths] == [f"prune_{10 * i:02d}.json" for i in range(10)]
    manifests = [_json(p) for p in paths]
    assert len({tuple(m["sources"]["synscapes"]["frames"]) for m in manifests}) == 1
    for i, manifest in enumerate(manifests):
        assert set(manifest["sources"]["synscapes"]["pruning"]["fractions"].values()) == {i / 10}
    instances = [m["train"]["instances"] for m in manifests]
    assert instances == sorted(instances, reverse=True) and instances[0] > instances[-1]


def test_budget_rule_and_schedule_hint(dataset, tmp_path):
    assert budget_synthetic(80000, 8, 50, 2975) == 9825
    assert schedule_hint(12800, 8, 50)["iterations"] == 80000
    assert schedule_hint(3840, 8, 50)["steps"] == [18000, 22000]  # 24k baseline → 18k, 22k
    _, out = dataset
    [path] = _make(out, tmp_path / "b.json", budget=150, batch=2, epochs=10, real="all")  # 30 frames
    train = _json(path)["train"]
    assert (train["real_frames"], train["synthetic_frames"]) == (20, 10)
    [path] = _make(out, tmp_path / "t.json", total=20, real_fraction=0.25)
    assert (_json(path)["train"]["real_frames"], _json(path)["train"]["synthetic_frames"]) == (5, 15)


def _assert_ground_truth_fingerprints(manifest) -> int:
    """Each evaluation set records the files the official evaluator will read; returns how many."""
    total = 0
    for eval_set in manifest.eval_sets:
        files = sorted(eval_set.gt_dir.glob("*/*_gtFine_instanceIds.png"))
        assert eval_set.gt_files["count"] == len(files)
        assert [line.split(" ")[0] for line in eval_set.gt_files["files"]] == [
            f.relative_to(eval_set.gt_dir).as_posix() for f in files]
        assert eval_set.gt_files["bytes"] == sum(f.stat().st_size for f in files)
        total += len(files)
    return total


def test_manifest_round_trips_and_mix_is_a_valid_coco_file(dataset, tmp_path):
    from pycocotools.coco import COCO

    root, out = dataset
    [path] = _make(out, tmp_path / "sub" / "mix.json", real=8, synthetic=12, seed=3)
    manifest = load_manifest(path)
    assert manifest.train_coco == tmp_path / "sub" / "mix.coco.json" and manifest.frames == 20
    assert manifest.sources["synscapes"].coco == out / "synscapes_train.json"
    assert manifest.sources["cityscapes"].image_root == (root / "cityscapes").resolve()
    assert {e.name for e in manifest.eval_sets} == {"cityscapes_val", "synscapes_val"}
    by_name = {e.name: e for e in manifest.eval_sets}
    assert by_name["cityscapes_val"].gt_dir == (root / "cityscapes" / "gtFine" / "val").resolve()
    assert by_name["synscapes_val"].gt_dir == out / "gtFine" / "val"
    _assert_ground_truth_fingerprints(manifest)
    coco = COCO(str(manifest.train_coco))
    mix = coco.dataset
    # the hint counts the frames Detectron2 trains on: those with an instance left after pruning
    trained = len({a["image_id"] for a in mix["annotations"] if not a["iscrowd"]})
    assert manifest.data["train"]["frames_trained"] == trained < 20
    assert manifest.data["train"]["frames_without_instances"] == 20 - trained
    assert manifest.schedule["iterations"] == math.ceil(50 * trained / 8)
    assert mix["categories"] == coco_categories()
    assert [im["id"] for im in mix["images"]] == list(range(1, 21))
    assert [a["id"] for a in mix["annotations"]] == list(range(1, len(mix["annotations"]) + 1))
    for image in mix["images"]:
        assert os.path.isfile(manifest.train_image_root / image["file_name"])
    assert len(coco.getAnnIds()) == len(mix["annotations"])
    counts = manifest.data["train"]["instances_per_class"]
    assert sum(counts.values()) == sum(1 for a in mix["annotations"] if not a["iscrowd"])


def test_same_inputs_and_seed_give_identical_files(dataset, tmp_path):
    _, out = dataset
    path = tmp_path / "mix.json"
    _make(out, path, real=6, synthetic=9, seed=5)
    first = path.read_bytes(), mix_coco_path(path).read_bytes()
    make_manifests(ManifestRequest(out=out, output=path, real=6, synthetic=9, seed=5),
                   created_at="2030-06-01T00:00:00Z", progress=False)
    second = _json(path)
    assert mix_coco_path(path).read_bytes() == first[1]
    assert second.pop("created_at") == "2030-06-01T00:00:00Z"
    first_manifest = json.loads(first[0])
    first_manifest.pop("created_at")
    assert second == first_manifest


def test_thresholds_file_is_used_and_checked_against_the_source(dataset, tmp_path):
    from curate.stats import run_stats

    root, out = dataset
    stats_out = tmp_path / "OUT"
    write_dataset(stats_out, tmp_path, seed=21, synscapes_val=0, cityscapes_val=0)
    result = run_stats(stats_out, figures=False, progress=False)
    [path] = _make(stats_out, tmp_path / "m.json", synthetic="all", prune=str(result.thresholds_path))
    fractions = _json(path)["sources"]["synscapes"]["pruning"]["fractions"]
    assert fractions == result.thresholds["prune"]
    # the synthetic file changes after stats ran: the thresholds are stale
    (stats_out / "synscapes_train.json").write_bytes((out / "synscapes_val.json").read_bytes()
                                                     .replace(b'"split":"val"', b'"split":"train"'))
    with pytest.raises(CurateError, match="sha256 differs"):
        _make(stats_out, tmp_path / "n.json", synthetic=2, prune=str(result.thresholds_path))
    assert not (tmp_path / "n.json").exists()


@pytest.mark.parametrize("options, message", [
    ({"synthetic": 41}, "asked for 41 synthetic frames; the file has 40"),
    ({"real": "all", "synthetic": 1, "real_split": "test"}, "file not found"),
    ({"synthetic": 5, "prune": "caravan=0.2"}, "unknown class 'caravan'"),
    ({"synthetic": 5, "prune": "1.0"}, r"outside \[0, 1\)"),
    ({"synthetic": 5, "prune": "person=-0.1"}, r"outside \[0, 1\)"),
    ({"synthetic": 5, "prune": "0.3", "no_prune": True}, "exclude each other"),
    ({"synthetic": 5, "eval": "cityscapes:test"}, "file not found"),
    ({"synthetic": 5, "eval": "kitti:val"}, "expected source:split"),
    ({"sweep": "ratio"}, "needs --total"),
    ({"total": 10}, "go together"),
    ({}, "say how many frames"),
    ({"synthetic": "many"}, "expected a frame count"),
])
def test_bad_input_fails_with_one_line_and_writes_nothing(dataset, tmp_path, options, message):
    _, out = dataset
    target = tmp_path / "manifests"
    with pytest.raises(CurateError, match=message) as err:
        _make(out, target / "mix.json", **options)
    assert "\n" not in str(err.value)
    assert not target.exists()


def test_load_manifest_rejects_changed_files_and_other_versions(dataset, tmp_path):
    _, out = dataset
    [path] = _make(out, tmp_path / "mix.json", synthetic=4)
    load_manifest(path)
    manifest = _json(path)
    manifest["schema_version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(manifest))
    with pytest.raises(CurateError, match="schema version 99"):
        load_manifest(tmp_path / "v99.json")
    coco = mix_coco_path(path)
    coco.write_bytes(coco.read_bytes().replace(b'"iscrowd":0', b'"iscrowd":1', 1))
    with pytest.raises(CurateError, match="sha256 differs") as err:
        load_manifest(path)
    assert str(coco) in str(err.value)
    load_manifest(path, verify=False)
    coco.unlink()
    with pytest.raises(CurateError, match="file not found"):
        load_manifest(path)


def test_cli_writes_a_manifest_and_reports_errors_in_one_line(dataset, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    _, out = dataset
    target = tmp_path / "cli.json"
    result = CliRunner().invoke(app, ["manifest", str(out), "--real", "3", "--synthetic", "4", "--prune",
                                      "person=0.5,default=0.2", "--eval", "cityscapes:val", "-o", str(target), "-q"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(target)
    assert manifest.data["command"].startswith("curate manifest ")
    assert "--prune person=0.5,default=0.2" in manifest.data["command"]
    assert [e.name for e in manifest.eval_sets] == ["cityscapes_val"]
    proc = subprocess.run([sys.executable, "-m", "curate", "manifest", str(out), "--synthetic", "999",
                           "-o", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "999" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_end_to_end_on_converted_sample_sets(synscapes_sample, cityscapes_sample, tmp_path):
    convert = pytest.importorskip("curate.convert").convert
    from curate.stats import run_stats

    syn_root, _ = synscapes_sample
    cs_root, _ = cityscapes_sample
    out = tmp_path / "OUT"
    for source, root, split, extra in (("synscapes", syn_root, "train", {}),
                                       ("synscapes", syn_root, "val", {"gtfine": True}),
                                       ("cityscapes", cs_root, "train", {}), ("cityscapes", cs_root, "val", {})):
        convert(source, root, out, split=split, workers=1, progress=False, **extra)
    result = run_stats(out, figures=False, progress=False)
    assert result.thresholds is not None and result.instances > 0
    [path] = _make(out, tmp_path / "m" / "mix.json", real="all", synthetic="all", prune="0.4")
    manifest = load_manifest(path)
    synthetic = _json(out / "synscapes_train.json")
    mix = _json(manifest.train_coco)
    assert _mix_source_ids(mix, "synscapes") == _kept_by_independent_rule(synthetic, {n: 0.4 for n in CLASS_NAMES})
    assert manifest.frames == len(synthetic["images"]) + len(_json(out / "cityscapes_train.json")["images"])
    for image in mix["images"]:
        assert os.path.isfile(manifest.train_image_root / image["file_name"])
    by_name = {e.name: e for e in manifest.eval_sets}
    assert by_name["synscapes_val"].gt_dir == out / "gtFine" / "val"
    assert by_name["cityscapes_val"].gt_dir == (cs_root / "gtFine" / "val").resolve()
    assert _assert_ground_truth_fingerprints(manifest) == 5  # 2 Synscapes (--gtfine) + 3 Cityscapes val frames


def test_mix_bytes_do_not_depend_on_how_the_source_file_is_laid_out(synscapes_sample, cityscapes_sample, tmp_path):
    """Picked annotations are slices of convert's one-line files; a pretty-printed file (parsed whole)
    or a compact one of other making (each picked annotation parsed) gives the very same mix."""
    convert = pytest.importorskip("curate.convert").convert
    out = tmp_path / "OUT"
    for source, root in (("synscapes", synscapes_sample[0]), ("cityscapes", cityscapes_sample[0])):
        convert(source, root, out, split="train", workers=1, progress=False)
    layouts = {"pretty": lambda obj: json.dumps(obj, indent=1),
               "foreign": lambda obj: json.dumps({**obj, "info": {**obj["info"], "description": "hand-made"}},
                                                 separators=(",", ":"))}
    mixes = {}
    for name in ("convert", *layouts):
        folder = tmp_path / f"OUT-{name}"
        folder.mkdir()
        for source in ("synscapes", "cityscapes"):
            text = (out / f"{source}_train.json").read_text()
            if name != "convert":
                text = layouts[name](json.loads(text))
            (folder / f"{source}_train.json").write_text(text)
        [path] = _make(folder, tmp_path / f"m-{name}" / "mix.json", real="all", synthetic="all", prune="0.4",
                       eval="none")
        mixes[name] = mix_coco_path(path).read_bytes()
    assert mixes["pretty"] == mixes["convert"] == mixes["foreign"]
    assert len(_json(mix_coco_path(path))["annotations"]) > 50


def test_numpy_of_is_arrows_own_conversion():
    """coco.numpy_of reads an Arrow column's buffer itself (pyarrow's to_numpy imports pandas):
    same values and dtype as to_numpy, on sliced columns too, and nulls left to pyarrow."""
    import numpy as np
    import pyarrow as pa

    from curate.coco import arrow_of, numpy_of

    for values, type_ in (([3, -1, 7, 2**40], pa.int64()), ([1, 2, 3, 4], pa.int32()), ([1.5, -0.25, 3.0, 8.0], pa.float64()),
                          ([1, 255, 0, 4], pa.uint8()), ([0.5, 1.0, 2.5, 4.0], pa.float32())):
        column = pa.array(values, type=type_)
        for part in (column, column.slice(1), column.slice(1, 2)):
            got, want = numpy_of(part), part.to_numpy(zero_copy_only=False)
            assert got.dtype == want.dtype and np.array_equal(got, want)
    with_null = pa.array([1.0, None, 3.0])
    assert np.array_equal(numpy_of(with_null), with_null.to_numpy(zero_copy_only=False), equal_nan=True)
    # null=: fill_null's values, on slices whose validity bits start mid-byte, and all-null columns
    nulls = pa.array([None, 4, None, 6, 7, None, 9, 10, None, 12], type=pa.int64())
    for part in (nulls, nulls.slice(1), nulls.slice(3, 6), nulls.slice(9), pa.array([None, None], pa.int64())):
        got = numpy_of(part, null=0)
        want = part.fill_null(0).to_numpy(zero_copy_only=False)
        assert got.dtype == want.dtype and got.tolist() == want.tolist()
    order = np.array([2, 0, 1])
    assert pa.array(["a", "b", "c"]).take(arrow_of(order)).to_pylist() == ["c", "a", "b"]


def test_manifest_command_does_not_import_pandas(dataset, tmp_path):
    """`curate manifest` reads columns with pyarrow alone: importing pandas was ~0.2 s of its time
    on a 100,000-annotation set, more than the whole difference to `curate stats` (issue 12)."""
    _, out = dataset
    code = ("import sys\nfrom curate.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nprint('pandas' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code, "manifest", str(out), "--real", "all", "--synthetic", "4",
                           "-o", str(tmp_path / "mix.json"), "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]
    assert load_manifest(tmp_path / "mix.json").data
