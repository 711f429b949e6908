"""The mistakes a new user makes: each command answers with one `error:` line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_convert_wrong_path_and_wrong_kind_of_folder(tmp_path, fixtures_dir):
    assert_one_line_error(run("-m", "curate", "convert", "synscapes", str(tmp_path / "nope"), "--out", str(tmp_path / "o")),
                          str(tmp_path / "nope"), "not found")
    cityscapes_root = fixtures_dir / "cityscapes-real"
    assert_one_line_error(run("-m", "curate", "convert", "synscapes", str(cityscapes_root), "--out", str(tmp_path / "o")),
                          "looks like a Cityscapes folder")
    assert not (tmp_path / "o" / "synscapes_train.json").exists()


def test_convert_cityscapes_on_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("-m", "curate", "convert", "cityscapes", str(empty), "--out", str(tmp_path / "o")),
                          str(empty / "gtFine"), "not a Cityscapes root")


def test_stats_and_manifest_on_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("-m", "curate", "stats", str(empty)), str(empty))
    assert_one_line_error(run("-m", "curate", "manifest", str(empty), "--real", "all", "--synthetic", "all",
                              "-o", str(tmp_path / "m" / "mix.json")), str(empty))
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_sample_bad_size(tmp_path):
    assert_one_line_error(run("-m", "curate", "sample", "synscapes", str(tmp_path / "s"), "--size", "big"), "--size")


def test_train_manifest_of_another_version(tmp_path):
    pytest.importorskip("detectron2")
    manifest = tmp_path / "old.json"
    manifest.write_text(json.dumps({"schema": "synmix.manifest", "schema_version": 999}))
    assert_one_line_error(run("-m", "train", str(manifest), "--device", "cpu"), str(manifest), "999")
    assert_one_line_error(run("-m", "train", str(tmp_path / "missing.json"), "--device", "cpu"), "missing.json")
