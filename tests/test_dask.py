"""``curate convert --backend dask``: the same shards on a real Dask cluster (two worker processes on
loopback) give the same bytes, the same report and the same one-line errors as a local run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import every_frame_file

from curate.convert import convert
from curate.errors import CurateError

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
# fields that say how and how fast a run went, not what it produced
RUN_FIELDS = ("backend", "scheduler", "workers")


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def without_run_fields(report: dict) -> dict:
    report = dict(report)
    del report["timings"]
    report["options"] = {k: v for k, v in report["options"].items() if k not in RUN_FIELDS}
    return report


def assert_same_outputs(local, dask) -> None:
    assert dask.coco_path.read_bytes() == local.coco_path.read_bytes()
    assert without_run_fields(dask.report) == without_run_fields(local.report)
    assert without_run_fields(load(dask.report_path)) == without_run_fields(load(local.report_path))


def tree(folder: Path) -> dict:
    """Every file below ``folder``: link target for links, bytes otherwise."""
    return {str(p.relative_to(folder)): (os.readlink(p) if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


def test_synscapes_sample_with_gtfine_identical_to_local_run(synscapes_sample, scheduler, tmp_path):
    root, _ = synscapes_sample
    options = dict(split="all", split_file=every_frame_file(root), shard_size=2, gtfine=True)
    local = convert("synscapes", root, tmp_path / "local", workers=1, **options)
    dask = convert("synscapes", root, tmp_path / "dask", backend="dask", scheduler=scheduler, **options)
    assert_same_outputs(local, dask)
    assert dask.report["options"] | {"scheduler": None} == {
        **local.report["options"], "backend": "dask", "scheduler": None, "workers": 2}
    assert dask.report["shards"] == {"total": 6, "reused": 0}  # several tasks ran on the cluster
    assert load(dask.coco_path)["annotations"]
    local_files, dask_files = tree(tmp_path / "local"), tree(tmp_path / "dask")
    assert sum(name.endswith("_gtFine_instanceIds.png") for name in local_files) == 12
    del local_files["synscapes_all.report.json"], dask_files["synscapes_all.report.json"]  # compared above
    assert dask_files == local_files  # COCO, label PNGs, image links, and nothing left behind


def test_cityscapes_sample_through_the_cli_identical_to_local_run(cityscapes_sample, scheduler, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    root, _ = cityscapes_sample
    _mount()
    result = CliRunner().invoke(app, ["convert", "cityscapes", str(root), "--out", str(tmp_path / "dask"),
                                      "--split", "all", "--shard-size", "2", "--scheduler", scheduler, "-q"])
    assert result.exit_code == 0, result.output
    for split in ("train", "val"):
        local = convert("cityscapes", root, tmp_path / "local", split=split, workers=1, shard_size=2)
        name = f"cityscapes_{split}"
        assert (tmp_path / "dask" / f"{name}.json").read_bytes() == local.coco_path.read_bytes()
        dask_report = load(tmp_path / "dask" / f"{name}.report.json")
        assert dask_report["options"]["backend"] == "dask" and dask_report["options"]["scheduler"] == scheduler
        assert without_run_fields(dask_report) == without_run_fields(load(local.report_path))


def test_bad_frame_gives_the_same_one_line_error_and_skip_report(synscapes_sample, scheduler, tmp_path):
    root = tmp_path / "syn"
    shutil.copytree(synscapes_sample[0], root)
    (root / "img/instance/5.png").write_bytes(b"\x89PNG broken")
    options = dict(split="all", split_file=every_frame_file(root), shard_size=2)
    with pytest.raises(CurateError) as local_err:
        convert("synscapes", root, tmp_path / "local", workers=1, **options)
    with pytest.raises(CurateError) as dask_err:
        convert("synscapes", root, tmp_path / "dask", backend="dask", scheduler=scheduler, **options)
    assert "img/instance/5.png" in local_err.value.path
    assert str(dask_err.value) == str(local_err.value)
    assert not (tmp_path / "dask/synscapes_all.json").exists()  # nothing half-written

    proc = subprocess.run([sys.executable, "-m", "curate", "convert", "synscapes", str(root), "--out",
                           str(tmp_path / "cli"), "--split", "all", "--shard-size", "2", "--backend", "dask",
                           "--scheduler", scheduler], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {local_err.value}"
    assert proc.stderr.count("error") == 1

    local = convert("synscapes", root, tmp_path / "local", workers=1, on_error="skip", **options)
    dask = convert("synscapes", root, tmp_path / "dask", backend="dask", scheduler=scheduler, on_error="skip",
                   **options)
    assert_same_outputs(local, dask)
    assert dask.report["skipped_frames"] == [{"frame": 5, "path": local_err.value.path,
                                              "problem": local_err.value.problem, "kind": "unreadable_file"}]


def test_dask_needs_a_scheduler_and_scheduler_needs_dask(synscapes_sample, monkeypatch, tmp_path):
    import dask

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    root, _ = synscapes_sample
    with dask.config.set({"scheduler-address": None}):
        with pytest.raises(CurateError, match="--backend dask needs --scheduler tcp://HOST:PORT"):
            convert("synscapes", root, tmp_path / "out", backend="dask")
    with pytest.raises(CurateError, match="--scheduler applies to --backend dask only"):
        convert("synscapes", root, tmp_path / "out", backend="joblib", scheduler="tcp://127.0.0.1:8786")


def test_dask_scheduler_from_dask_config(synscapes_sample, scheduler, tmp_path):
    import dask

    root, _ = synscapes_sample
    with dask.config.set({"scheduler-address": scheduler}):
        result = convert("synscapes", root, tmp_path / "out", split="val", backend="dask")
    assert result.report["options"]["scheduler"] == scheduler


def test_unreachable_scheduler_is_one_line_error(synscapes_sample, tmp_path):
    import dask

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(CurateError) as err:
            convert("synscapes", synscapes_sample[0], tmp_path / "out", scheduler=address)
    assert str(err.value).startswith(f"cannot reach the Dask scheduler at {address}: ")
    assert "\n" not in str(err.value)


def test_missing_distributed_says_what_to_install(synscapes_sample, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` meets when not installed
    with pytest.raises(CurateError, match=r"pip install 'synmix\[dask\]'"):
        convert("synscapes", synscapes_sample[0], tmp_path / "out", scheduler="tcp://127.0.0.1:8786")


def test_worker_without_the_shared_folder_is_refused(scheduler, tmp_path):
    from curate.convert.dask_backend import DaskBackend

    absent = tmp_path / "not-shared"
    with pytest.raises(CurateError, match=rf"Dask worker tcp://127.0.0.1:\d+ does not see {absent}: "):
        with DaskBackend(scheduler, shared_dirs=[tmp_path, absent]):
            pass
