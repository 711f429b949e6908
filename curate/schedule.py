"""The study's training schedule and its arithmetic: one place for both ``curate`` and ``train``.

Baseline (docs/method.md §6; Detectron2's Cityscapes PointRend config): 24k iterations at batch 8,
base LR 0.01 ×0.1 after 18k and 22k iterations, SGD momentum 0.9. Mixed sets train for a number of
epochs instead (default 50): iterations = ceil(epochs × frames / batch), the LR stepping at the
baseline's fractions 18/24 and 22/24 of the run. ``curate manifest`` records that as the manifest's
schedule hint (:func:`schedule_hint`); ``train.schedule`` resolves a run's schedule from it.

Pure arithmetic, no torch or Detectron2 import.
"""

from __future__ import annotations

import math

BASELINE_MAX_ITER = 24_000
BASELINE_STEPS = (18_000, 22_000)
BASELINE_BATCH = 8
BASELINE_LR = 0.01
BASELINE_MOMENTUM = 0.9
#: Epochs of a mixed set when none are given (the study's mixing runs).
DEFAULT_EPOCHS = 50


def iterations_for_epochs(epochs: float, frames: int, batch: int) -> int:
    """Iterations that show every frame ``epochs`` times: ceil(E × frames / batch)."""
    if epochs <= 0 or frames <= 0 or batch <= 0:
        raise ValueError(f"epochs, frames and batch must be positive (got {epochs}, {frames}, {batch})")
    return max(1, math.ceil(epochs * frames / batch))


def epochs_for_iterations(iterations: int, frames: int, batch: int) -> float:
    return iterations * batch / frames


def baseline_steps(max_iter: int) -> tuple[int, ...]:
    """LR-decay iterations at the baseline's fractions of ``max_iter``: floor(max_iter × 18k / 24k), …"""
    return tuple(max_iter * step // BASELINE_MAX_ITER for step in BASELINE_STEPS)


def effective_lr(lr: float, momentum: float) -> float:
    """The effective learning rate η/(1−m) of SGD with momentum (docs/method.md §7)."""
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1) (got {momentum})")
    return lr / (1.0 - momentum)


def schedule_hint(frames: int, batch: int = BASELINE_BATCH, epochs: int = DEFAULT_EPOCHS) -> dict:
    """A manifest's ``schedule``: iterations for ``epochs`` epochs at ``batch``, LR steps as the baseline's.

    ``frames``: the frames training sees (a manifest passes those with an instance: Detectron2 drops the rest)."""
    iterations = iterations_for_epochs(epochs, frames, batch)
    return {
        "frames": frames,
        "batch": batch,
        "epochs": epochs,
        "iterations": iterations,
        "steps": list(baseline_steps(iterations)),
        "base_lr": BASELINE_LR,
        "momentum": BASELINE_MOMENTUM,
    }
