"""Schedule arithmetic of ``python -m train``: epochs → iterations, LR steps, effective LR."""

from __future__ import annotations

import math

import pytest

from curate.schedule import (
    BASELINE_MAX_ITER,
    BASELINE_STEPS,
    effective_lr,
    epochs_for_iterations,
    iterations_for_epochs,
    schedule_hint,
)
from train.schedule import resolve_schedule, scaled_steps


def test_iterations_for_epochs_matches_the_papers_budget_examples():
    # Paper §4.2: 50 epochs on 2,975 frames at batch 8 ≈ the 20k-iteration budget (18,594),
    # and 80k iterations = 50 epochs on 12,800 frames.
    assert iterations_for_epochs(50, 2975, 8) == math.ceil(50 * 2975 / 8)
    assert iterations_for_epochs(50, 12_800, 8) == 80_000
    assert epochs_for_iterations(80_000, 12_800, 8) == 50


def test_iterations_round_up_so_every_frame_is_seen_e_times():
    assert iterations_for_epochs(1, 17, 8) == 3  # 2 iterations would show only 16 frames
    assert iterations_for_epochs(0.01, 10, 8) == 1


@pytest.mark.parametrize("bad", [(0, 10, 8), (1, 0, 8), (1, 10, 0), (-1, 10, 8)])
def test_iterations_for_epochs_rejects_non_positive_inputs(bad):
    with pytest.raises(ValueError):
        iterations_for_epochs(*bad)


def test_steps_keep_the_baselines_fractions():
    assert scaled_steps(BASELINE_MAX_ITER) == BASELINE_STEPS
    assert scaled_steps(48_000) == (36_000, 44_000)
    steps = scaled_steps(80_000)
    for step, ref in zip(steps, BASELINE_STEPS):
        assert abs(step / 80_000 - ref / BASELINE_MAX_ITER) < 1e-4


def test_steps_of_very_short_runs_stay_valid_for_detectron2():
    # Detectron2's multi-step scheduler needs strictly increasing milestones inside the run and
    # more iterations than LR values.
    for max_iter in range(1, 60):
        steps = scaled_steps(max_iter)
        assert list(steps) == sorted(set(steps))
        assert all(0 < s < max_iter for s in steps)
        assert len(steps) + 1 <= max_iter
    assert scaled_steps(1) == ()
    assert scaled_steps(100) == (75, 91)


def test_effective_lr_is_lr_over_one_minus_momentum():
    assert effective_lr(0.01, 0.9) == pytest.approx(0.1)  # the baseline
    assert effective_lr(0.005, 0.0) == pytest.approx(0.005)  # paper's best fine-tuning setting
    assert effective_lr(0.0005, 0.9) == pytest.approx(0.005)  # the same effective LR
    with pytest.raises(ValueError):
        effective_lr(0.01, 1.0)


def test_resolve_schedule_precedence():
    hint = {"batch": 8, "epochs": 50, "iterations": 1000, "steps": [700, 900], "base_lr": 0.02, "momentum": 0.5}
    # the manifest's hint, as written
    s = resolve_schedule(160, hint=hint)
    assert (s.max_iter, s.steps, s.batch, s.base_lr, s.momentum) == (1000, (700, 900), 8, 0.02, 0.5)
    # command-line iterations win; steps at the baseline's fractions
    s = resolve_schedule(160, iterations=240, hint=hint)
    assert (s.max_iter, s.steps) == (240, (180, 220))
    # another batch: the hint's epochs are converted for it
    s = resolve_schedule(160, batch=4, hint=hint)
    assert s.max_iter == iterations_for_epochs(50, 160, 4)
    # command-line epochs
    s = resolve_schedule(160, epochs=10, lr=0.001, momentum=0.0, hint=hint)
    assert (s.max_iter, s.base_lr, s.momentum, s.effective_lr) == (200, 0.001, 0.0, 0.001)
    # no hint: the baseline
    s = resolve_schedule(2975)
    assert (s.max_iter, s.steps, s.batch, s.base_lr, s.momentum) == (24_000, (18_000, 22_000), 8, 0.01, 0.9)
    assert s.effective_lr == pytest.approx(0.1)


def test_resolve_schedule_rejects_contradictions():
    with pytest.raises(ValueError):
        resolve_schedule(10, epochs=1, iterations=5)
    with pytest.raises(ValueError):
        resolve_schedule(10, iterations=0)
    with pytest.raises(ValueError):
        resolve_schedule(10, momentum=1.5)


def test_steps_agree_with_the_manifests_schedule_hint():
    for frames in (16, 100, 2975, 12_800, 22_975):
        hint = schedule_hint(frames, batch=8, epochs=50)
        assert resolve_schedule(frames, epochs=50, batch=8).max_iter == hint["iterations"]
        assert list(scaled_steps(hint["iterations"])) == hint["steps"]
