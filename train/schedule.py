"""Training-schedule arithmetic: epochs → iterations, LR steps at the baseline's fractions, effective LR.

Pure functions, no Detectron2 import, so the arithmetic is testable without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The study's baseline (seed paper §4.1, Detectron2's Cityscapes PointRend config): 24k iterations,
# batch 8, base LR 0.01, ×0.1 after 18k and 22k iterations, momentum 0.9.
BASELINE_MAX_ITER = 24_000
BASELINE_STEPS = (18_000, 22_000)
BASELINE_BATCH = 8
BASELINE_LR = 0.01
BASELINE_MOMENTUM = 0.9


@dataclass(frozen=True)
class Schedule:
    max_iter: int
    steps: tuple[int, ...]
    batch: int
    base_lr: float
    momentum: float
    #: where the iteration count came from ("--iterations", "--epochs 50", "manifest", "baseline")
    origin: str = ""

    @property
    def effective_lr(self) -> float:
        return effective_lr(self.base_lr, self.momentum)


def iterations_for_epochs(epochs: float, frames: int, batch: int) -> int:
    """Iterations that show every frame ``epochs`` times: ceil(E × frames / batch)."""
    if epochs <= 0 or frames <= 0 or batch <= 0:
        raise ValueError(f"epochs, frames and batch must be positive (got {epochs}, {frames}, {batch})")
    return max(1, math.ceil(epochs * frames / batch))


def epochs_for_iterations(iterations: int, frames: int, batch: int) -> float:
    return iterations * batch / frames


def scaled_steps(
    max_iter: int,
    reference_steps: tuple[int, ...] = BASELINE_STEPS,
    reference_max_iter: int = BASELINE_MAX_ITER,
) -> tuple[int, ...]:
    """LR-decay iterations at the same fractions of ``max_iter`` as ``reference_steps`` of the reference.

    24k → (18k, 22k); 100 → (75, 91). Steps that would fall on 0, on ``max_iter`` or on an earlier
    step are dropped (very short runs), because Detectron2's multi-step scheduler needs strictly
    increasing milestones inside the run and more iterations than LR values.
    """
    if max_iter <= 0:
        raise ValueError(f"max_iter must be positive (got {max_iter})")
    steps: list[int] = []
    for step in reference_steps:
        scaled = max_iter * step // reference_max_iter  # floor, as curate manifest's schedule hint
        if 0 < scaled < max_iter and (not steps or scaled > steps[-1]) and len(steps) + 2 <= max_iter:
            steps.append(scaled)
    return tuple(steps)


def effective_lr(lr: float, momentum: float) -> float:
    """The effective learning rate η/(1−m) of SGD with momentum (seed paper §4.3, its ref. [14])."""
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1) (got {momentum})")
    return lr / (1.0 - momentum)


def resolve_schedule(
    frames: int,
    *,
    epochs: float | None = None,
    iterations: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    hint: dict | None = None,
) -> Schedule:
    """The run's schedule: command-line values first, then the manifest's ``schedule`` hint, then the baseline.

    ``--iterations`` wins over ``--epochs``; without either, the hint's iteration count (and its steps)
    is used when it was made for the same batch, else the hint's epochs are converted, else the
    baseline's 24k iterations apply.
    """
    hint = hint or {}
    if epochs is not None and iterations is not None:
        raise ValueError("give either epochs or iterations, not both")
    batch = int(batch if batch is not None else hint.get("batch", BASELINE_BATCH))
    base_lr = float(lr if lr is not None else hint.get("base_lr", BASELINE_LR))
    momentum = float(momentum if momentum is not None else hint.get("momentum", BASELINE_MOMENTUM))
    effective_lr(base_lr, momentum)  # validates the momentum range
    if batch <= 0:
        raise ValueError(f"batch must be positive (got {batch})")

    steps: tuple[int, ...] | None = None
    if iterations is not None:
        if iterations <= 0:
            raise ValueError(f"iterations must be positive (got {iterations})")
        max_iter, origin = int(iterations), f"--iterations {iterations}"
    elif epochs is not None:
        max_iter, origin = iterations_for_epochs(epochs, frames, batch), f"--epochs {epochs:g}"
    elif hint.get("iterations") and int(hint.get("batch", batch)) == batch:
        max_iter, origin = int(hint["iterations"]), "manifest schedule"
        if hint.get("steps") is not None:
            steps = tuple(int(s) for s in hint["steps"] if 0 < int(s) < max_iter)
    elif hint.get("epochs"):
        epochs = float(hint["epochs"])
        max_iter, origin = iterations_for_epochs(epochs, frames, batch), f"manifest epochs {epochs:g}"
    else:
        max_iter, origin = BASELINE_MAX_ITER, "baseline"
    if steps is None:
        steps = scaled_steps(max_iter)
    return Schedule(max_iter, steps, batch, base_lr, momentum, origin)
