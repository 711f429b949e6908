"""Helpers of the fault-injection tests: run the real CLI, check its one error line, make real faults.

Real faults, no mocks: a full disk or a read-only file system is a small tmpfs mounted for the test
(tests run as root here and in CI; where ``mount`` is not permitted the test is skipped). Root
ignores permission bits, so "not writable" is a read-only mount too. Import with
``from faults import ...`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

#: tmpfs counts whole pages.
PAGE = 4096


def curate_command(*args) -> list[str]:
    return [sys.executable, "-m", "curate", *map(str, args)]


def run_curate(*args, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m curate ARGS`` in a subprocess (PYTHONPATH inherited). ``cwd`` should not be the
    repository: ``-m`` puts the working folder first on ``sys.path``."""
    return subprocess.run(curate_command(*args), cwd=cwd or Path.home(), env=dict(os.environ), capture_output=True,
                          text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_error(proc, path, *needles: str, status: int = 2, prefix: bool = False) -> str:
    """Exit ``status``, stderr exactly one line ``error: PATH: …`` (each needle in it), no traceback.
    With ``prefix``, the path named need only start with ``path`` (e.g. one of a frame's files)."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-4000:]
    line = lines[0]
    expected = f"error: {path}" if prefix else f"error: {path}: "
    assert line.startswith(expected), f"expected the line to name {path}{'…' if prefix else ''}: {line}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in: {line}"
    return line


def temp_files(root: Path) -> list[Path]:
    """Every ``*.tmp`` under ``root`` (hidden ones included)."""
    return sorted(Path(root).rglob("*.tmp"))


def assert_no_temp_files(*roots: Path) -> None:
    for root in roots:
        left = temp_files(root)
        assert not left, f"temp files left under {root}: {[str(p) for p in left]}"


def pages(*sizes: int) -> int:
    """Pages a tmpfs spends on files of these sizes."""
    return sum(-(-size // PAGE) for size in sizes)


def file_pages(*paths: Path) -> int:
    return pages(*(Path(p).stat().st_size for p in paths))


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


class Mounts:
    """tmpfs mounts of one test, unmounted at its end (the ``tmpfs`` fixture)."""

    def __init__(self):
        self.points: list[Path] = []

    def __call__(self, point: Path, size_bytes: int = 1 << 20) -> Path:
        """Mount a tmpfs of ``size_bytes`` (whole pages) at ``point``; skip the test where not permitted."""
        point = Path(point)
        point.mkdir(parents=True, exist_ok=True)
        proc = _mount("-t", "tmpfs", "-o", f"size={max(PAGE, size_bytes)},mode=0755", "tmpfs", str(point))
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
        self.points.append(point)
        return point

    def read_only(self, point: Path) -> Path:
        """Remount ``point`` read-only (after filling it with what the test needs)."""
        proc = _mount("-o", "remount,ro", str(point))
        if proc.returncode != 0:
            pytest.skip(f"cannot remount a tmpfs read-only here ({proc.stderr.strip()})")
        return point

    def unmount_all(self) -> None:
        for point in reversed(self.points):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                time.sleep(0.5)  # a worker process may still hold a file open
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
        self.points.clear()


@pytest.fixture(name="tmpfs")
def tmpfs_fixture():
    """``tmpfs(point, size_bytes)`` mounts; ``tmpfs.read_only(point)``; all unmounted afterwards.
    A test module gets it with ``from faults import tmpfs_fixture  # noqa: F401``."""
    mounts = Mounts()
    try:
        yield mounts
    finally:
        mounts.unmount_all()


def dead_pid() -> int:
    """The process id of a process that has ended (for temp files a killed run left)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def interrupt_when(args, ready, whole_group: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``curate ARGS``; once ``ready()`` is true send SIGINT, as Ctrl-C does (to the whole process
    group, workers included, or to the main process only). Fails if the run ends first."""
    proc = subprocess.Popen(curate_command(*args), cwd=Path.home(), env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the run ended before the interrupt (status {proc.returncode}): {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run never reached the point of the interrupt")
            time.sleep(0.002)
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
