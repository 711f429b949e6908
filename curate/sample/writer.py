"""Shared plumbing of the sample writers: argument checks and the (optionally parallel) frame loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from joblib import Parallel, delayed

from curate.errors import CurateError
from curate.progress import progress_bar

MIN_SIDE = 32
MAX_SIDE = 8192


def check_size(size) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise CurateError(None, f"size must be (width, height), got {size!r}") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise CurateError(None, f"size {width}x{height} out of range ({MIN_SIDE}..{MAX_SIDE} per side)")
    return width, height


def parse_size(text: str) -> tuple[int, int]:
    """``"1440x720"`` → ``(1440, 720)``; anything else is a one-line :class:`CurateError`."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise CurateError(None, f"--size: expected WIDTHxHEIGHT such as 1440x720, got {text!r}")
    try:
        return check_size((int(parts[0]), int(parts[1])))
    except CurateError as err:
        raise CurateError(None, f"--size: {err}") from None


def check_traffic(traffic: str) -> str:
    from curate.sample.scene import TRAFFIC

    if traffic not in TRAFFIC:
        raise CurateError(None, f"unknown traffic profile {traffic!r} (expected {' or '.join(TRAFFIC)})")
    return traffic


def check_out(out: Path) -> Path:
    from curate.fileio import check_output_folder

    return check_output_folder(Path(out))


def check_frames(frames: int) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise CurateError(None, f"frames must be a positive integer, got {frames!r}")
    return frames


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CurateError(None, f"seed must be a non-negative integer, got {seed!r}")
    return seed


def check_sample_options(out: Path, size, traffic: str, seed: int, frames: int) -> tuple[Path, tuple[int, int]]:
    """The checks every sample writer starts with, in this order; returns the output folder and ``(width, height)``."""
    out = check_out(out)
    size = check_size(size)
    check_traffic(traffic)
    check_seed(seed)
    check_frames(frames)
    return out, size


def generate_and_write(make: Callable, write: Callable, root: Path, *args) -> tuple:
    """``make(*args)`` one frame, ``write(root, frame)`` it; return its name and truth (a :func:`run_frames` task)."""
    frame = make(*args)
    write(root, frame)
    return frame.name, frame.truth


def run_frames(task: Callable, arguments: Sequence[tuple], workers: int, progress: bool, desc: str) -> list:
    """``[task(*a) for a in arguments]`` with a progress bar; in order, whatever the worker count."""
    bar = dict(total=len(arguments), progress=progress, desc=desc, unit="frame")
    if workers <= 1 or len(arguments) <= 1:
        return [task(*a) for a in progress_bar(arguments, **bar)]
    results = Parallel(n_jobs=workers, return_as="generator")(delayed(task)(*a) for a in arguments)
    return list(progress_bar(results, **bar))
