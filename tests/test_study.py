"""The study as commands: sweeps that record themselves, many runs from one `python -m train` (in turn and
through submitit), fine-tuning options, test-server predictions, and `curate results` (table and figures).

The training runs are real PointRend runs on the project's sample sets, tiny and short (cpu-tiny, 2
iterations): a 2-point prune sweep and a 2-point LR grid fine-tuned from one of its runs, once in turn
and once through ``--submit local --wait`` (submitit's local executor: real subprocesses). SLURM is not
available here: its submission is checked against a stand-in ``sbatch`` that records the job script.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.labels import CLASS_NAMES
from curate.manifest import ManifestRequest, make_manifests

FIXED_TIME = "2000-01-01T00:00:00Z"
#: what every training run here shares: the tiny CPU model, 2 iterations, every detection kept
TINY = ["--preset", "cpu-tiny", "--device", "cpu", "--iterations", "2", "--threads", "1",
        "--opts", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.DETECTIONS_PER_IMAGE", "5"]


def _make(out: Path, output: Path, **options) -> list[Path]:
    return make_manifests(ManifestRequest(out=out, output=output, **options), created_at=FIXED_TIME, progress=False)


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------------------------------------
# sweeps write everything they need (no training)


def test_each_sweep_records_its_variable_and_value(dataset, tmp_path):
    _, out = dataset
    prune = _make(out, tmp_path / "prune", sweep="prune", synthetic=12, fractions="0,0.3,0.6")
    assert [p.name for p in prune] == ["prune_00.json", "prune_30.json", "prune_60.json"]
    for path, value in zip(prune, (0.0, 0.3, 0.6)):
        sweep = _json(path)["sweep"]
        assert sweep == {"sweep": "prune", "variable": "removal_fraction", "value": value, "values": [0.0, 0.3, 0.6]}
        assert set(_json(path)["sources"]["synscapes"]["pruning"]["fractions"].values()) == {value}

    ratio = _make(out, tmp_path / "ratio", sweep="ratio", total=10, ratios="0,0.25,1")
    assert [(_json(p)["train"]["real_frames"], _json(p)["sweep"]["value"]) for p in ratio] == [(0, 0.0), (3, 0.25),
                                                                                               (10, 1.0)]
    assert {_json(p)["sweep"]["variable"] for p in ratio} == {"real_share"}

    # additive (table 3): all real frames + a growing number of synthetic ones, nested
    additive = _make(out, tmp_path / "additive", sweep="additive", synthetic_steps="0,5,20")
    manifests = [_json(p) for p in additive]
    assert [p.name for p in additive] == ["additive_syn000000.json", "additive_syn000005.json", "additive_syn000020.json"]
    assert [(m["train"]["real_frames"], m["train"]["synthetic_frames"]) for m in manifests] == [(20, 0), (20, 5), (20, 20)]
    assert [m["sweep"]["value"] for m in manifests] == [0, 5, 20]
    assert set(manifests[1]["sources"]["synscapes"]["frames"]) <= set(manifests[2]["sources"]["synscapes"]["frames"])
    assert manifests[0]["sweep"]["variable"] == "synthetic_frames"

    [single] = _make(out, tmp_path / "one.json", real=2, synthetic=2)
    assert _json(single)["sweep"] is None and _json(single)["budget"] is None


def test_default_additive_steps_are_the_studys(dataset, tmp_path):
    from curate.manifest.plan import plan_mixes

    _, out = dataset
    specs = plan_mixes(ManifestRequest(out=out, output=tmp_path / "a", sweep="additive"))
    assert [s.counts for s in specs] == [{"real": "all", "synthetic": n} for n in (0, 3000, 6000, 9000, 12000, 20000)]


@pytest.mark.parametrize("options, message", [
    ({"synthetic": 5, "fractions": "0,0.1"}, "--fractions sets the points of --sweep prune"),
    ({"sweep": "prune", "fractions": "0.1,0"}, "distinct and ascending"),
    ({"sweep": "prune", "fractions": "0,1.0"}, r"outside \[0, 1\)"),
    ({"sweep": "prune", "fractions": "0.1,0.101"}, "would write the same manifest"),
    ({"sweep": "ratio", "total": 10, "ratios": "0,1.5"}, r"outside \[0, 1\]"),
    ({"sweep": "additive", "synthetic_steps": "0,x"}, "'x' is not a valid point"),
    ({"sweep": "additive", "synthetic_steps": "0,99"}, "asked for 99 synthetic frames; the file has 40"),
])
def test_bad_sweep_points_fail_in_one_line_and_write_nothing(dataset, tmp_path, options, message):
    _, out = dataset
    with pytest.raises(CurateError, match=message) as err:
        _make(out, tmp_path / "m", **options)
    assert "\n" not in str(err.value) and not (tmp_path / "m").exists()


def test_budget_takes_at_most_the_synthetic_frames_there_are_and_says_so(dataset, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _, out = dataset
    # the study's 150k iterations at batch 8 for 50 epochs cover 24,000 frames: 23,980 synthetic asked, 40 exist
    [path] = _make(out, tmp_path / "b150k.json", budget=150000, real="all")
    manifest = _json(path)
    assert (manifest["train"]["real_frames"], manifest["train"]["synthetic_frames"]) == (20, 40)
    assert manifest["budget"] == {"iterations": 150000, "batch": 8, "epochs": 50, "frames": 24000,
                                  "synthetic_asked": 23980, "synthetic_available": 40, "synthetic_taken": 40,
                                  "capped": True}
    [small] = _make(out, tmp_path / "small.json", budget=150, batch=2, epochs=10, real="all")  # 30 frames: 10 synthetic
    assert _json(small)["budget"]["capped"] is False and _json(small)["train"]["synthetic_frames"] == 10
    _mount()
    result = CliRunner().invoke(app, ["manifest", str(out), "--budget", "150000", "--real", "all",
                                      "-o", str(tmp_path / "cli.json")])
    assert result.exit_code == 0, result.output
    assert "23980 synthetic asked, the split has 40; all of them taken" in result.output


def test_frames_pruning_empties_are_counted_as_detectron2_sees_them(dataset, tmp_path):
    """Detectron2 drops frames without an instance (crowd regions alone do not count): the manifest
    counts them, and the schedule hint's epochs are over the frames that are trained on."""
    _, out = dataset
    [path] = _make(out, tmp_path / "p.json", synthetic=40, prune="0.8")
    manifest = _json(path)
    mix = _json(path.with_name("p.coco.json"))
    with_instance = {a["image_id"] for a in mix["annotations"] if not a["iscrowd"]}
    train, source = manifest["train"], manifest["sources"]["synscapes"]
    assert train["frames_trained"] == len(with_instance) < train["frames"] == 40
    assert train["frames_without_instances"] == 40 - len(with_instance) == source["frames_without_instances"]
    assert source["frames_emptied_by_pruning"] > 0
    assert manifest["schedule"]["frames"] == len(with_instance)
    assert manifest["schedule"]["iterations"] == -(-50 * len(with_instance) // 8)
    with pytest.raises(CurateError, match="holds an instance after pruning"):
        _make(out, tmp_path / "empty.json", synthetic=1, prune="0.99")


# ---------------------------------------------------------------------------------------------
# schedules, presets and grids (no training)


def test_steps_from_end_finetune_preset_and_the_schedule_the_config_holds():
    from train.schedule import PRESET_SCHEDULE_DEFAULTS, Schedule, applied_schedule, resolve_schedule

    s = resolve_schedule(100, iterations=100_000, steps_from_end=(60_000, 20_000))
    assert s.steps == (40_000, 80_000) and s.dropped_steps == () and "before the end" in s.origin
    short = resolve_schedule(100, iterations=24_000, steps_from_end=(60_000, 20_000))
    assert short.steps == (4_000,) and short.dropped_steps == (-36_000,)
    assert PRESET_SCHEDULE_DEFAULTS["finetune"] == {"batch": 8, "base_lr": 0.005, "momentum": 0.0}

    planned = Schedule(100, (75, 91), 8, 0.01, 0.9, "--iterations 100")
    assert applied_schedule(planned, max_iter=100, steps=(75, 91), batch=8, base_lr=0.01, momentum=0.9) == planned
    changed = applied_schedule(planned, max_iter=100, steps=(50, 120), batch=8, base_lr=0.01, momentum=0.9)
    assert changed.steps == (50,) and changed.dropped_steps == (120,) and changed.origin.endswith("changed by --opts")
    with pytest.raises(ValueError, match="strictly increasing"):
        applied_schedule(planned, max_iter=100, steps=(60, 50), batch=8, base_lr=0.01, momentum=0.9)


def test_grid_expands_into_one_run_per_point_with_the_shared_options(tmp_path):
    from train.__main__ import build_parser
    from train.runs import parse_grid, plan_runs

    manifests = tmp_path / "m"
    manifests.mkdir()
    for name in ("a", "b"):
        (manifests / f"{name}.json").write_text(json.dumps({"schema": "synmix.manifest", "schema_version": 2}))
    parser = build_parser()
    args = parser.parse_args([str(manifests / "a.json"), "--grid", "lr=0.0005,0.005,0.01", "momentum=0,0.9",
                              "--out", str(tmp_path / "runs"), "--iterations", "5", "--opts", "A", "1"])
    assert len(parse_grid(args.grid, args)) == 6
    with pytest.raises(CurateError, match="malformed"):  # the parent reads every manifest before any run
        plan_runs(args, parser)
    for bad, message in ((["--grid", "lr=0.1", "--lr", "0.2"], "--grid lr and --lr both set lr"),
                         (["--grid", "epochs=1,2", "--iterations", "3"], "exclude each other"),
                         (["--grid", "gamma=1"], "KEY one of lr, momentum"),
                         (["--grid", "lr=0.1,0.1"], "distinct values"),
                         (["--grid", "lr=fast"], "'fast' is not a valid lr")):
        args = parser.parse_args([str(manifests / "a.json"), *bad])
        with pytest.raises(CurateError, match=message):
            parse_grid(args.grid, args)


# ---------------------------------------------------------------------------------------------
# the real pipeline: sample → convert → sweep manifests → runs → results


@pytest.fixture(scope="module")
def study(tmp_path_factory, synscapes_sample, cityscapes_sample):
    """Converted sample sets (Synscapes with --gtfine), a 2-point prune sweep over every synthetic frame
    and a real-only manifest to fine-tune on; manifest paths are relative, so the tree is self-contained."""
    from curate.convert import convert

    pytest.importorskip("detectron2")
    root = tmp_path_factory.mktemp("study")
    syn, cs = root / "Synscapes", root / "cityscapes"
    shutil.copytree(synscapes_sample[0], syn)
    shutil.copytree(cityscapes_sample[0], cs)
    out = root / "converted"
    for split in ("train", "val"):
        convert("synscapes", syn, out, split=split, gtfine=True, workers=1, progress=False)
        convert("cityscapes", cs, out, split=split, workers=1, progress=False)
    prune = _make(out, root / "manifests" / "prune", sweep="prune", synthetic="all", fractions="0,0.5")
    [baseline] = _make(out, root / "manifests" / "baseline.json", real="all", synthetic=0)
    return {"root": root, "out": out, "prune_dir": root / "manifests" / "prune", "prune": prune, "baseline": baseline}


@pytest.fixture
def quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _train(argv) -> int:
    from train.__main__ import main

    return main([str(a) for a in argv])


def _eval_files(run: Path) -> dict[str, dict]:
    return {p.stem.removeprefix("synmix_"): _json(p) for p in sorted((run / "eval").glob("*.json"))}


def _check_results_against_eval_files(results: Path, runs: dict[str, Path]) -> list[dict]:
    """Every number of results.csv is the one in the run's own eval file; every eval number is in the table."""
    rows = list(csv.DictReader((results / "results.csv").open()))
    assert {row["run"] for row in rows} == set(runs)
    seen = 0
    for name, run in runs.items():
        record = _json(run / "run.json")
        for eval_set, data in _eval_files(run).items():
            for family in ("coco", "cityscapes"):
                for statistic in ("AP", "AP50"):
                    metric = f"{family}_{statistic}"
                    metric_rows = {row["class"]: row for row in rows
                                   if (row["run"], row["eval_set"], row["metric"]) == (name, eval_set, metric)}
                    if data[family] is None:
                        assert not metric_rows
                        continue
                    assert set(metric_rows) == {"mean", *CLASS_NAMES}
                    want = {"mean": data[family][statistic],
                            **{c: data[family]["per_class"][c][statistic] for c in CLASS_NAMES}}
                    for cls, value in want.items():
                        row = metric_rows[cls]
                        assert (row["value"] == "") if value is None else float(row["value"]) == pytest.approx(value)
                        seen += 1
                        # the run's parameters, from its run.json, on every row
                        assert float(row["lr"]) == record["schedule"]["base_lr"]
                        assert float(row["momentum"]) == record["schedule"]["momentum"]
                        assert int(row["iterations"]) == record["schedule"]["iterations"] == 2
                        assert int(row["real_frames"]) == record["manifest"]["real_frames"]
                        assert int(row["synthetic_frames"]) == record["manifest"]["synthetic_frames"]
    assert seen == len(rows)
    # results.md: one row per run with each evaluation set's mean Cityscapes AP, as in the eval files
    table = (results / "results.md").read_text()
    for name, run in runs.items():
        line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        for data in _eval_files(run).values():
            assert f" {data['cityscapes']['AP']:.1f} " in line
    return rows


def _results(argv) -> str:
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    result = CliRunner().invoke(app, ["results", *map(str, argv)])
    assert result.exit_code == 0, result.output
    return result.output


def _check_study_runs(runs_dir: Path, study, capsys_text: str = "") -> dict[str, Path]:
    runs = {p.name: p for p in sorted(runs_dir.iterdir()) if (p / "run.json").is_file()}
    assert set(runs) == {"prune_00", "prune_50", "baseline__lr0.002", "baseline__lr0.02"}
    for run in runs.values():
        record = _json(run / "run.json")
        assert record["status"] == "finished" and record["eval"] == ["synmix_cityscapes_val.json",
                                                                      "synmix_synscapes_val.json"]
        assert (run / "model_final.pth").is_file()
        for data in _eval_files(run).values():
            assert data["iteration"] == 2 and data["cityscapes"] is not None
    assert _json(runs["prune_50"] / "run.json")["manifest"]["removal_fraction"] == 0.5
    assert _json(runs["prune_50"] / "run.json")["manifest"]["sweep"] == "prune"
    grid = _json(runs["baseline__lr0.002"] / "run.json")
    assert grid["schedule"]["base_lr"] == 0.002 and grid["schedule"]["momentum"] == 0.9
    assert grid["schedule"]["steps"] == [1] and "1 iterations before the end" in grid["schedule"]["origin"]
    assert grid["init"] == {"kind": "run", "run": str((runs_dir / "prune_00").absolute()),
                            "weights": str((runs_dir / "prune_00" / "model_final.pth").absolute())}
    return runs


def test_sweep_and_grid_run_in_turn_then_results(study, tmp_path, capsys, quiet_threads):
    runs_dir = tmp_path / "runs"
    assert _train([study["prune_dir"], "--out", runs_dir, "--weights", "none", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "[1/2] prune_00" in printed and "[2/2] prune_50" in printed and "finished  " in printed
    # the grid: fine-tuned from a run of the sweep, LR steps counted from the end
    assert _train([study["baseline"], "--init", runs_dir / "prune_00", "--grid", "lr=0.002,0.02",
                   "--steps-from-end", "1", "--out", runs_dir, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "LR x0.1 at [1]" in printed and "learning rate 0.002, momentum 0.9" in printed
    runs = _check_study_runs(runs_dir, study)
    assert (runs["prune_00"] / "train.log").read_text().count("schedule (--iterations 2)") == 1

    # run again: every run finished, nothing is trained
    assert _train([study["prune_dir"], "--out", runs_dir, "--weights", "none", *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped   ") == 2 and "[1/" not in printed

    out = _results([runs_dir, "-o", tmp_path / "results", "--reference", "study"])
    assert "4 runs, " in out and "figure: " in out
    _check_results_against_eval_files(tmp_path / "results", runs)
    figures = sorted(p.name for p in (tmp_path / "results").glob("*.png"))
    assert figures == ["ap_vs_removal.png", "lr_momentum_grid.png"]  # what varies: removal, and LR
    for name in figures:
        assert (tmp_path / "results" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "results" / "results.md").read_text()
    assert "## The study's published numbers" in table and "| 39.6 |" in table


def test_sweep_and_grid_through_submitit_local_then_results(study, tmp_path, capsys, quiet_threads):
    runs_dir = tmp_path / "runs"
    common = ["--out", runs_dir, "--submit", "local", "--wait", "--timeout", "30", *TINY]
    assert _train([study["prune_dir"], "--weights", "none", *common]) == 0
    printed = capsys.readouterr().out
    assert printed.count("submitted job") == 2 and printed.count("finished  ") == 2
    assert _train([study["baseline"], "--init", runs_dir / "prune_00", "--grid", "lr=0.002,0.02",
                   "--steps-from-end", "1", *common]) == 0
    capsys.readouterr()
    runs = _check_study_runs(runs_dir, study)
    for run in runs.values():  # each run was a submitit job: its log is in the run folder
        assert any(p.name.endswith("_log.out") for p in (run / "submitit").iterdir())
    assert "submitted job" not in _train_output(capsys, [study["prune_dir"], "--weights", "none", *common])

    _results([runs_dir, "-o", tmp_path / "results"])
    _check_results_against_eval_files(tmp_path / "results", runs)


def _train_output(capsys, argv) -> str:
    assert _train(argv) == 0
    return capsys.readouterr().out


def test_failed_jobs_are_reported_with_their_logs(study, tmp_path, capsys, quiet_threads):
    shutil.copytree(study["root"], tmp_path, symlinks=True, dirs_exist_ok=True)  # relative paths: a working copy
    broken = tmp_path / "manifests" / "prune" / "prune_50.coco.json"
    broken.write_text(broken.read_text().replace('"iscrowd"', '"iscrowd" ', 1))  # sha256 differs now
    runs_dir = tmp_path / "runs"
    code = _train([tmp_path / "manifests" / "prune" / "prune_50.json", tmp_path / "manifests" / "baseline.json",
                   "--out", runs_dir, "--submit", "local", "--wait", "--timeout", "10", "--weights", "none", *TINY])
    captured = capsys.readouterr()
    assert code == 2
    [line] = captured.err.strip().splitlines()
    log = runs_dir / "prune_50" / "submitit"
    assert line.startswith(f"error: {log}") and "run prune_50 failed: error: " in line and "sha256" in line
    assert "failed    " in captured.out and "_log.err" in captured.out and "more failed" not in line
    assert f"finished  {runs_dir / 'baseline'}" in captured.out  # the other job ran on


def test_slurm_submission_sends_one_job_per_run_with_the_allocation(study, tmp_path, capsys, monkeypatch):
    """No SLURM here: a stand-in sbatch records the job script submitit writes and answers with a job id."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/job_$$.sh\necho "Submitted batch job $$"\n')
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    runs_dir = tmp_path / "runs"
    line = _error_line(capsys, [study["baseline"], "--out", runs_dir, "--submit", "slurm"])
    # one manifest: --out is the run folder itself
    assert line.startswith(f"error: {runs_dir / 'submitit'}: cannot submit (slurm): ") and "srun" in line
    (bin_dir / "srun").symlink_to(sbatch)  # submitit only checks that srun is there
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    code = _train([study["baseline"], "--grid", "momentum=0,0.9", "--preset", "finetune", "--init", weights,
                   "--out", tmp_path / "runs", "--submit", "slurm", "--partition", "gpu", "--account", "proj",
                   "--nodes", "2", "--gpus-per-node", "4", "--timeout", "600", "--slurm", "mail-type=END"])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("submitted job") == 2 and printed.count("submitted ") >= 2
    scripts = sorted(tmp_path.glob("job_*.sh"))
    assert len(scripts) == 2
    text = scripts[0].read_text()
    for option in ("--partition=gpu", "--account=proj", "--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=1",
                   "--time=600", "--mail-type=END", "--job-name=synmix-baseline__momentum"):
        assert f"#SBATCH {option}" in text, option
    assert "submitit.core._submit" in text
    # what each job runs: the run's own python -m train call (distributed options come from the allocation)
    import pickle

    pickled = sorted((tmp_path / "runs").glob("*/submitit/*_submitted.pkl"))
    assert len(pickled) == 2
    with open(pickled[0], "rb") as f:
        job = pickle.load(f)
    argv = job.function.argv
    assert argv[:3] == [str(study["baseline"]), "--out", str(tmp_path / "runs" / "baseline__momentum0")]
    assert "--momentum" in argv and "--num-gpus" not in argv and "--submit" not in argv


def _error_line(capsys, argv) -> str:
    assert _train(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


def test_banner_and_run_record_show_the_schedule_opts_changed(study, tmp_path, capsys, quiet_threads):
    from train.__main__ import build_parser, describe, prepare

    argv = [str(study["baseline"]), "--out", str(tmp_path / "r"), "--preset", "cpu-tiny", "--device", "cpu",
            "--iterations", "4", "--weights", "none", "--opts", "SOLVER.STEPS", "(1, 9)", "SOLVER.BASE_LR", "0.03"]
    job, _, init = prepare(build_parser().parse_args(argv), argv)
    assert job.schedule.steps == (1,) and job.schedule.dropped_steps == (9,) and job.schedule.base_lr == 0.03
    banner = describe(job, job.train_set.frames)
    assert "changed by --opts" in banner and "LR x0.1 at [1] (not applied, outside the run: [9])" in banner
    assert "learning rate 0.03" in banner and init == {"kind": "random", "run": None, "weights": None}


def test_finetune_preset_and_init_errors(study, tmp_path, capsys):
    def error(argv) -> str:
        return _error_line(capsys, argv)

    base = [study["baseline"], "--device", "cpu", "--out", tmp_path / "r"]
    assert "--preset finetune starts from pre-trained weights" in error(base + ["--preset", "finetune"])
    assert "no model_final.pth in this run folder" in error(base + ["--init", tmp_path])
    assert "--init and --weights both" in error(base + ["--init", tmp_path, "--weights", "none"])
    assert "--predict needs --eval-only" in error(base + ["--predict", tmp_path])
    assert "--wait is for --submit" in error([study["prune_dir"], "--wait", "--device", "cpu"])
    assert "--submit sets --num-gpus" in error(base + ["--submit", "local", "--num-gpus", "2"])


def test_predictions_for_the_cityscapes_test_server(study, tmp_path, capsys, quiet_threads):
    runs_dir = tmp_path / "runs"
    assert _train([study["baseline"], "--out", runs_dir / "m", "--weights", "none", *TINY]) == 0
    images = study["root"] / "cityscapes" / "leftImg8bit" / "val"
    target = tmp_path / "preds.zip"
    assert _train([study["baseline"], "--eval-only", "--weights", runs_dir / "m" / "model_final.pth", "--predict",
                   images, "-o", target, "--out", runs_dir / "p", *TINY]) == 0
    assert "Cityscapes test server format" in capsys.readouterr().out
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        stems = sorted(p.stem for p in images.rglob("*.png"))
        assert sorted(n for n in names if n.endswith(".txt")) == [f"{s}_pred.txt" for s in stems]  # one per image
        valid_ids = {24, 25, 26, 27, 28, 31, 32, 33}
        lines = [line.split() for s in stems for line in archive.read(f"{s}_pred.txt").decode().splitlines()]
        assert lines, "the model kept every detection: there are instances"
        for mask, label_id, confidence in lines:
            assert mask in names and mask.endswith(".png") and int(label_id) in valid_ids
            assert 0 <= float(confidence) <= 1
    assert _json(runs_dir / "p" / "run.json")["predictions"] == str(target)
    assert not (runs_dir / "p" / "eval").exists()  # predictions only: no evaluation


# ---------------------------------------------------------------------------------------------
# curate results on made-up runs: the figures each experiment gets


def _fake_run(folder: Path, name: str, manifest: dict, schedule: dict, ap: float, init=None, eval_sets=None) -> Path:
    run = folder / name
    (run / "eval").mkdir(parents=True)
    per_class = {c: {"AP": ap + i, "AP50": ap + 10 + i} for i, c in enumerate(CLASS_NAMES)}
    for eval_set, offset in (eval_sets or {"cityscapes_val": 0.0, "synscapes_val": -5.0}).items():
        summary = {"AP": ap + offset, "AP50": ap + offset + 20,
                   "per_class": {c: {"AP": v["AP"] + offset, "AP50": v["AP50"] + offset} for c, v in per_class.items()}}
        (run / "eval" / f"synmix_{eval_set}.json").write_text(json.dumps(
            {"dataset": f"synmix_{eval_set}", "iteration": 10, "coco": summary, "cityscapes": summary}))
    record = {"schema": "synmix.run", "schema_version": 1, "status": "finished", "preset": "cityscapes", "seed": 0,
              "manifest": {"path": f"/m/{manifest.pop('name')}.json", "real_source": "cityscapes",
                           "synthetic_source": "synscapes", "manifest_seed": 0, **manifest},
              "schedule": {"iterations": 100, "batch": 8, "base_lr": 0.01, "momentum": 0.9, "steps": [75, 91],
                           "epochs": 50.0, **schedule},
              "init": init or {"kind": "imagenet", "run": None, "weights": "x"}}
    (run / "run.json").write_text(json.dumps(record))
    return run


def test_results_draws_what_varies_with_the_studys_numbers(tmp_path):
    from curate.results import collect

    runs = tmp_path / "runs"
    for i, share in enumerate((0.0, 0.5, 1.0)):  # ratio sweep, 2,975 frames each
        _fake_run(runs / "ratio", f"r{i}", {"name": f"ratio_real{int(share * 100):03d}", "real_frames": int(2975 * share),
                                            "synthetic_frames": 2975 - int(2975 * share), "frames": 2975,
                                            "real_share": share, "removal_fraction": 0.4, "sweep": "ratio"}, {},
                  10 + 20 * share)
    for synthetic in (0, 6000, 20000):  # additive, two epoch counts
        for epochs in (33, 50):
            _fake_run(runs / "additive", f"a{synthetic}_{epochs}",
                      {"name": f"additive_syn{synthetic:06d}", "real_frames": 2975, "synthetic_frames": synthetic,
                       "frames": 2975 + synthetic, "real_share": 2975 / (2975 + synthetic), "removal_fraction": 0.4,
                       "sweep": "additive"},
                      {"epochs": float(epochs)}, 30 + synthetic / 2000 + epochs / 50)
    for lr in (0.0005, 0.005, 0.01):
        for momentum in (0.0, 0.9):
            _fake_run(runs / "grid", f"g{lr}_{momentum}", {"name": "baseline", "real_frames": 2975,
                                                            "synthetic_frames": 0, "frames": 2975, "real_share": 1.0},
                      {"base_lr": lr, "momentum": momentum}, 35 + 10 * lr / (1 - momentum),
                      init={"kind": "run", "run": "/runs/syn20k", "weights": "w"})
    for removal in (0.0, 0.3, 0.6, 0.9):
        _fake_run(runs / "prune", f"p{removal}", {"name": f"prune_{int(removal * 100):02d}", "real_frames": 0,
                                                  "synthetic_frames": 2975, "frames": 2975, "real_share": 0.0,
                                                  "removal_fraction": removal, "sweep": "prune"}, {},
                  30 - 20 * removal * removal)
    result = collect([runs], tmp_path / "results", reference="study")
    assert sorted(p.name for p in result.figures) == ["ap_vs_real_share.png", "ap_vs_removal.png",
                                                      "ap_vs_synthetic.png", "lr_momentum_grid.png"]
    table = result.markdown.read_text()
    # each figure from its own experiment's runs (a ratio run at 40 % removal is no point of the removal sweep)
    assert "runs r0, r1, r2 (real_share: 0.0, 0.5, 1.0)" in table
    assert "runs p0.0, p0.3, p0.6, p0.9 (removal_fraction: 0.0, 0.3, 0.6, 0.9)" in table
    assert "(synthetic_frames: 0, 6000, 20000)" in table
    assert "lr_momentum_grid.png" in table and "(lr: (0.0005, 0.0), (0.0005, 0.9)" in table
    rows = list(csv.DictReader(result.csv.open()))
    assert len(rows) == 19 * 2 * 4 * 9  # runs × evaluation sets × metrics × (mean + 8 classes)
    row = next(r for r in rows if r["run"] == "g0.005_0.0" and r["eval_set"] == "cityscapes_val"
               and r["metric"] == "cityscapes_AP" and r["class"] == "mean")
    assert float(row["value"]) == pytest.approx(35.05) and row["init"] == "run" and row["init_run"] == "syn20k"
    assert collect([runs / "prune"], tmp_path / "only_prune").figures == [tmp_path / "only_prune" / "ap_vs_removal.png"]


@pytest.mark.parametrize("argv, message", [
    (["nowhere"], "run folder not found"),
    (["."], "no run here"),
    (["RUNS", "--reference", "other"], "the only reference is 'study'"),
    (["RUNS", "--metric", "iou"], "--metric iou: expected one of"),
])
def test_results_errors_are_one_line(tmp_path, argv, message):
    _fake_run(tmp_path / "runs", "x", {"name": "m", "real_frames": 1, "synthetic_frames": 0, "frames": 1,
                                       "real_share": 1.0}, {}, 1.0)
    (tmp_path / "empty").mkdir()
    argv = [str(tmp_path / "runs") if a == "RUNS" else str(tmp_path / "empty") if a == "." else
            str(tmp_path / a) if a == "nowhere" else a for a in argv]
    proc = subprocess.run([sys.executable, "-m", "curate", "results", *argv, "-o", str(tmp_path / "res")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
