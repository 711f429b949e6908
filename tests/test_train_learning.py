"""The learning test: a small PointRend learns the project's own sample frames through the whole pipeline.

``curate sample`` (both layouts, ``--traffic sparse``) → ``curate convert`` (Synscapes with
``--gtfine``) → ``curate manifest --real all --synthetic all --no-prune`` → ``python -m train``
with the ``cpu-tiny`` preset from random init, evaluated on its own training frames with both
evaluators. Evidence that frames, masks and classes reach the model correctly: if images and masks
were misaligned, classes permuted or masks empty, mask AP50 would stay near 0.

Measured with one torch thread on the shared 2-core box (1.2–1.3 s per iteration, 3–3.3 minutes
in all; the same command gives the same numbers run to run): after 150 iterations COCO / Cityscapes
mask AP50 69 / 83 on the Cityscapes-layout frames and 86 / 89 on the Synscapes-layout frames. Other
runs on the same frames (training seed 1, or with --eval-period 25) ended between 68 and 98. The
issue's bound is AP50 > 50 within 150 iterations. It runs in CI (not marked slow).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("detectron2")
torch = pytest.importorskip("torch")

ITERATIONS = 150  # the bound
SIZE = "384x192"  # the cpu-tiny preset's input size: frames are used as they are
FRAMES = 4  # per source: 8 training frames, ~9 instances each (75 epochs at batch 4 in 150 iterations)
SYNSCAPES_SEED, CITYSCAPES_SEED = 2, 3  # sample seeds the AP above was measured with


def _curate(*args) -> None:
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def test_tiny_pointrend_learns_its_training_frames(tmp_path):
    from train.__main__ import main

    torch.set_num_threads(1)
    syn, cs, out = tmp_path / "Synscapes", tmp_path / "cityscapes", tmp_path / "converted"
    _curate("sample", "synscapes", syn, "--frames", FRAMES, "--val-fraction", 0, "--seed", SYNSCAPES_SEED,
            "--size", SIZE, "--traffic", "sparse")
    _curate("sample", "cityscapes", cs, "--frames", FRAMES, "--split", "train", "--seed", CITYSCAPES_SEED,
            "--size", SIZE, "--traffic", "sparse")
    _curate("convert", "synscapes", syn, "--out", out, "--split", "train", "--gtfine", "--workers", 1, "--quiet")
    _curate("convert", "cityscapes", cs, "--out", out, "--split", "train", "--workers", 1, "--quiet")
    manifest = tmp_path / "manifests" / "learn.json"
    _curate("manifest", out, "--real", "all", "--synthetic", "all", "--no-prune",
            "--eval", "cityscapes:train,synscapes:train", "--output", manifest)

    # the evaluation sets are exactly the training frames, with Cityscapes-style ground truth
    written = json.loads(manifest.read_text())
    assert written["train"]["frames"] == 2 * FRAMES
    assert {e["name"]: e["sha256"] for e in written["eval"]} == {
        f"{source}_train": entry["sha256"] for source, entry in written["sources"].items()}
    assert all(e["gt_dir"] for e in written["eval"])

    run = tmp_path / "run"
    assert main([str(manifest), "--preset", "cpu-tiny", "--device", "cpu", "--iterations", str(ITERATIONS),
                 "--threads", "1", "--seed", "0", "--out", str(run)]) == 0

    for name in ("cityscapes_train", "synscapes_train"):
        result = json.loads((run / "eval" / f"synmix_{name}.json").read_text())
        print(f"\n{name} after {ITERATIONS} iterations: COCO mask AP {result['coco']['AP']:.1f} "
              f"AP50 {result['coco']['AP50']:.1f}; Cityscapes AP {result['cityscapes']['AP']:.1f} "
              f"AP50 {result['cityscapes']['AP50']:.1f}")
        assert result["iteration"] == ITERATIONS
        assert result["coco"]["AP50"] > 50
        assert result["cityscapes"]["AP50"] > 50
