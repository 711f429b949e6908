"""A run's schedule: which of the command line, the manifest's hint and the baseline decides.

The constants and the epoch ↔ iteration arithmetic are ``curate.schedule``'s; what is particular to
training is here: the precedence (:func:`resolve_schedule`) and Detectron2's constraints on LR steps
(:func:`scaled_steps`). No Detectron2 import, so it is testable without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.schedule import (
    BASELINE_BATCH,
    BASELINE_LR,
    BASELINE_MAX_ITER,
    BASELINE_MOMENTUM,
    baseline_steps,
    effective_lr,
    iterations_for_epochs,
)

#: The study's best fine-tuning point (docs/method.md §7, fig. 6): LR 0.005 with momentum 0, an
#: effective LR of 0.005.
FINETUNE_LR, FINETUNE_MOMENTUM = 0.005, 0.0

#: Schedule defaults of each preset (batch, LR, momentum), used when the command line does not give them.
PRESET_SCHEDULE_DEFAULTS = {
    "cityscapes": {"batch": BASELINE_BATCH, "base_lr": BASELINE_LR},
    "finetune": {"batch": BASELINE_BATCH, "base_lr": FINETUNE_LR, "momentum": FINETUNE_MOMENTUM},
    "cpu-tiny": {"batch": 4, "base_lr": 0.02},
}


@dataclass(frozen=True)
class Schedule:
    max_iter: int
    steps: tuple[int, ...]
    batch: int
    base_lr: float
    momentum: float
    #: where the iteration count came from ("--iterations", "--epochs 50", "manifest", "baseline")
    origin: str = ""
    #: LR steps asked for that cannot apply in this run (at or before 0, at or past the last iteration)
    dropped_steps: tuple[int, ...] = ()

    @property
    def effective_lr(self) -> float:
        return effective_lr(self.base_lr, self.momentum)


def scaled_steps(max_iter: int) -> tuple[int, ...]:
    """LR-decay iterations at the baseline's fractions of ``max_iter``, as Detectron2 can take them.

    24k → (18k, 22k); 100 → (75, 91). Steps that would fall on 0, on ``max_iter`` or on an earlier
    step are dropped (very short runs), because Detectron2's multi-step scheduler needs strictly
    increasing milestones inside the run and more iterations than LR values.
    """
    if max_iter <= 0:
        raise ValueError(f"max_iter must be positive (got {max_iter})")
    steps: list[int] = []
    for scaled in baseline_steps(max_iter):  # the floors of the manifest's schedule hint
        if 0 < scaled < max_iter and (not steps or scaled > steps[-1]) and len(steps) + 2 <= max_iter:
            steps.append(scaled)
    return tuple(steps)


def resolve_schedule(
    frames: int,
    *,
    epochs: float | None = None,
    iterations: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    hint: dict | None = None,
    steps_from_end: tuple[int, ...] | None = None,
) -> Schedule:
    """The run's schedule: command-line values first, then the manifest's ``schedule`` hint, then the baseline.

    ``--iterations`` wins over ``--epochs``; without either, the hint's iteration count (and its steps)
    is used when it was made for the same batch, else the hint's epochs are converted, else the
    baseline's 24k iterations apply. ``steps_from_end`` (the study's fine-tuning: ×0.1 when 60k and
    when 20k iterations remain) places the LR steps that many iterations before the end instead.
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
    dropped: tuple[int, ...] = ()
    if steps_from_end is not None:
        if any(int(s) <= 0 for s in steps_from_end):
            raise ValueError(f"steps from the end must be positive (got {list(steps_from_end)})")
        wanted = sorted({max_iter - int(s) for s in steps_from_end})
        steps = tuple(s for s in wanted if 0 < s < max_iter)
        dropped = tuple(s for s in wanted if not 0 < s < max_iter)
        origin += f", LR steps {','.join(str(int(s)) for s in steps_from_end)} iterations before the end"
    if steps is None:
        steps = scaled_steps(max_iter)
    return Schedule(max_iter, steps, batch, base_lr, momentum, origin, dropped)


def applied_schedule(planned: Schedule, *, max_iter: int, steps, batch: int, base_lr: float, momentum: float) -> Schedule:
    """The schedule a run's final config really holds (``--opts SOLVER.…`` may have changed ``planned``).

    Detectron2 ignores LR steps past ``MAX_ITER`` (with a warning): they are listed as dropped. Steps
    must be strictly increasing; momentum in [0, 1).
    """
    steps = [int(s) for s in steps]
    if any(b <= a for a, b in zip(steps, steps[1:])) or any(s <= 0 for s in steps):
        raise ValueError(f"SOLVER.STEPS {tuple(steps)}: LR steps must be positive and strictly increasing")
    effective_lr(base_lr, momentum)
    values = (int(max_iter), tuple(s for s in steps if s < max_iter), int(batch), float(base_lr), float(momentum))
    dropped = tuple(sorted(set(planned.dropped_steps) | {s for s in steps if s >= max_iter}))
    if values == (planned.max_iter, planned.steps, planned.batch, planned.base_lr, planned.momentum):
        return Schedule(*values, planned.origin, dropped)
    return Schedule(*values, f"{planned.origin}, changed by --opts", dropped)
