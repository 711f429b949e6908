"""Seeded, nested frame sampling, mix compositions and the training-schedule hint.

Sampling order: each frame of a source split gets the key ``blake2b("{seed}/{source}/{frame}")``;
frames sorted by that key form a fixed permutation, and a sample of k frames is its first k. So the
same OUT, seed and count give the same frames on any machine or numpy version, and growing k keeps
every earlier frame (nested samples: a sweep compares like with like).
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Sequence

from curate.errors import CurateError

#: The baseline schedule (Detectron2 Cityscapes config): 24k iterations, ×0.1 at 18k and 22k.
LR_STEP_FRACTIONS = (Fraction(18, 24), Fraction(22, 24))
BASE_LR = 0.01
MOMENTUM = 0.9
DEFAULT_BATCH = 8
DEFAULT_EPOCHS = 50
#: The study's ratio sweep: 0 %, 10 %, … 100 % real.
RATIO_SWEEP_STEPS = 10


def frame_order(frames: Sequence, seed: int, source: str) -> list[int]:
    """Indices into ``frames`` in sampling order (a seeded permutation that is stable per frame)."""
    def key(i: int) -> bytes:
        text = f"{seed}/{source}/{frames[i]}".encode()
        return hashlib.blake2b(text, digest_size=16).digest()

    return sorted(range(len(frames)), key=lambda i: (key(i), i))


def sample_frames(frames: Sequence, count: int, seed: int, source: str) -> list[int]:
    """Indices of the first ``count`` frames of the seeded order, returned ascending."""
    return sorted(frame_order(frames, seed, source)[:count])


def parse_count(value: str | int | None, option: str) -> int | str | None:
    """``--real``/``--synthetic``: a frame count ≥ 0 or ``all``."""
    if value is None:
        return None
    if isinstance(value, int):
        text = str(value)
    else:
        text = value.strip().lower()
    if text == "all":
        return "all"
    try:
        count = int(text)
    except ValueError:
        raise CurateError(None, f"{option} {value}: expected a frame count or 'all'") from None
    if count < 0:
        raise CurateError(None, f"{option} {value}: frame count must be ≥ 0")
    return count


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def real_count_from_fraction(total: int, real_fraction: float) -> int:
    """Real frames of a ``--total``/``--real-fraction`` mix: round(f·T), halves rounded up."""
    if not 0.0 <= real_fraction <= 1.0:
        raise CurateError(None, f"--real-fraction {real_fraction:g} is outside [0, 1]")
    return round_half_up(Fraction(str(real_fraction)) * total)


def ratio_sweep(total: int) -> list[tuple[float, int, int]]:
    """``(real share, real frames, synthetic frames)`` for 0 %, 10 %, … 100 % real of ``total``."""
    points = []
    for step in range(RATIO_SWEEP_STEPS + 1):
        share = Fraction(step, RATIO_SWEEP_STEPS)
        real = round_half_up(share * total)
        points.append((float(share), real, total - real))
    return points


def budget_frames(iterations: int, batch: int, epochs: int) -> int:
    """Frames an iteration budget trains for ``epochs`` epochs: ⌊iterations·batch / epochs⌋."""
    if iterations <= 0 or batch <= 0 or epochs <= 0:
        raise CurateError(None, "--budget, --batch and --epochs must be positive")
    return iterations * batch // epochs


def budget_synthetic(iterations: int, batch: int, epochs: int, real: int) -> int:
    """Synthetic frames under the study's budget rule: frames − real (80k, 8, 50, 2975 → 9825)."""
    frames = budget_frames(iterations, batch, epochs)
    if real > frames:
        raise CurateError(None, f"--budget {iterations} at batch {batch} for {epochs} epochs covers "
                                f"{frames} frames, fewer than the {real} real frames")
    return frames - real


def schedule_hint(frames: int, batch: int = DEFAULT_BATCH, epochs: int = DEFAULT_EPOCHS) -> dict:
    """Iterations for ``epochs`` epochs at ``batch``; LR ×0.1 at 75 % and 11/12 (baseline 18k, 22k of 24k)."""
    iterations = math.ceil(epochs * frames / batch)
    return {
        "batch": batch,
        "epochs": epochs,
        "iterations": iterations,
        "steps": [math.floor(iterations * f) for f in LR_STEP_FRACTIONS],
        "base_lr": BASE_LR,
        "momentum": MOMENTUM,
    }
