"""CLI conventions: --version, -h everywhere, shell completion, --quiet, progress only on a terminal
(plain lines in logs), and a --help that imports neither OpenCV nor matplotlib."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate import __version__

REPO = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["sample", "synscapes"], ["sample", "cityscapes"], ["sample", "bdd100k"],
    ["check", "synscapes"], ["check", "cityscapes"], ["check", "bdd100k"],
    ["convert", "synscapes"], ["convert", "cityscapes"], ["convert", "bdd100k"],
    ["stats"], ["manifest"], ["export", "coco"], ["show", "synscapes"], ["show", "prune"], ["results"], ["demo"],
]


def curate(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_version_option_and_command():
    assert curate("--version").stdout.strip() == __version__
    assert curate("version").stdout.strip() == __version__


@pytest.mark.parametrize("command", [" ".join(c) for c in COMMANDS])
def test_short_help_and_quiet_on_every_command(command):
    result = curate(*command.split(), "-h")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--quiet" in result.stdout


def test_help_imports_neither_opencv_nor_matplotlib():
    probe = ("import sys\nfrom curate.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('imported:' + ','.join(m for m in ('cv2', 'matplotlib', 'torch', 'joblib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "imported:"  # none of them was imported


def test_shell_completion_script():
    result = curate("--show-completion", "bash", env={**os.environ, "SHELL": "/bin/bash"})
    assert result.returncode == 0, result.stderr
    assert "_CURATE_COMPLETE" in result.stdout or "complete" in result.stdout


def test_progress_in_a_log_is_plain_lines(tmp_path):
    """stderr is a pipe here (as in a batch job's log): no carriage-return frames, whole lines."""
    result = curate("sample", "synscapes", str(tmp_path / "syn"), "--frames", "24", "--size", "1440x720")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("synscapes frames: ")]
    assert lines, result.stderr  # the loop ran for more than 2 s: periodic lines
    assert lines[-1].startswith("synscapes frames: 24/24 frames (100 %)")
    quiet = curate("sample", "synscapes", str(tmp_path / "q"), "--frames", "2", "--size", "320x160", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
