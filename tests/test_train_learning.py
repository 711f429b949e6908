"""The learning test: a small PointRend learns 16 procedural frames through convert → manifest → train.

Evidence that frames, masks and classes reach the model correctly: if images and masks were
misaligned, classes permuted or masks empty, mask AP50 on the training frames would stay near 0.
From random init on a CPU, the ``cpu-tiny`` preset (install-notes.md) on 16 frames of 192×384;
about 2 minutes with one torch thread. It runs in CI (not marked slow).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("detectron2")
torch = pytest.importorskip("torch")

from test_train_scenes import write_scene_set  # noqa: E402

ITERATIONS = 100  # the bound is 150


def test_tiny_pointrend_learns_its_training_frames(tmp_path):
    from curate.convert import convert
    from curate.manifest import ManifestRequest, make_manifests
    from train.__main__ import main

    torch.set_num_threads(1)
    write_scene_set(tmp_path / "cityscapes", "train", frames=16, seed=5, size=(192, 384))
    out = tmp_path / "converted"
    convert("cityscapes", tmp_path / "cityscapes", out, split="train", workers=1, progress=False)
    [manifest] = make_manifests(ManifestRequest(out=out, output=out / "learn.json", real="all", synthetic=0,
                                                no_prune=True, eval="cityscapes:train"), progress=False)
    run = tmp_path / "run"
    assert main([str(manifest), "--preset", "cpu-tiny", "--device", "cpu", "--iterations", str(ITERATIONS),
                 "--threads", "1", "--seed", "0", "--out", str(run)]) == 0

    result = json.loads((run / "eval" / "synmix_cityscapes_train.json").read_text())
    print(f"\nlearning test after {ITERATIONS} iterations: COCO mask AP {result['coco']['AP']:.1f} "
          f"AP50 {result['coco']['AP50']:.1f}; Cityscapes AP {result['cityscapes']['AP']:.1f} "
          f"AP50 {result['cityscapes']['AP50']:.1f}")
    assert result["coco"]["AP50"] > 50
    assert result["cityscapes"]["AP50"] > 50
