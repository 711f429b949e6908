"""BDD100K works everywhere a source works: convert (CLI, real bitmasks), stats, manifest, train.

The third source proves the registry: nothing below names BDD100K but the tests themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from curate import sources
from curate.errors import CurateError
from curate.labels import CLASS_NAMES

REPO = Path(__file__).resolve().parents[1]
FIXTURE_ROOT = "bdd100k"  # under shared/fixtures: labels/ins_seg/bitmasks/{train,val}


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ})


def test_cli_converts_the_real_bitmasks_of_both_splits(fixtures_dir, tmp_path):
    result = _cli("convert", "bdd100k", str(fixtures_dir / FIXTURE_ROOT), "--out", str(tmp_path), "--split", "all",
                  "-j", "1")
    assert result.returncode == 0, result.stderr
    counts = {}
    for split in ("train", "val"):
        coco = COCO(str(tmp_path / f"bdd100k_{split}.json"))
        counts[split] = len(coco.getAnnIds())
        for ann in coco.dataset["annotations"]:  # every RLE opens in pycocotools with its recorded area
            assert int(mask_util.area(coco.annToRLE(ann))) == ann["area"] > 0
        report = json.loads((tmp_path / f"bdd100k_{split}.report.json").read_text())
        assert report["images_missing"] == 1  # annotations only: no JPEGs in the fixture
    assert counts == {"train": 4, "val": 22}  # the toolkit's own tests count the same instances


def test_cli_errors_name_the_path_at_fault(fixtures_dir, tmp_path):
    cityscapes_root = fixtures_dir / "cityscapes-real"
    result = _cli("convert", "bdd100k", str(cityscapes_root), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {cityscapes_root}") and "not a BDD100K root" in line and "Cityscapes" in line
    result = _cli("convert", "bdd100k", str(fixtures_dir / FIXTURE_ROOT), "--out", str(tmp_path / "o"), "--gtfine")
    assert result.returncode == 2 and "--gtfine applies to Synscapes only" in result.stderr


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory, synscapes_sample, cityscapes_sample):
    """Synscapes, Cityscapes and a procedural BDD100K set (train + val) converted into one folder."""
    from curate.convert import convert
    from curate.sample import write_bdd100k_sample

    root = tmp_path_factory.mktemp("three")
    bdd = root / "bdd100k"
    truth = {split: write_bdd100k_sample(bdd, frames=n, split=split, seed=5, size=(320, 180))
             for split, n in (("train", 4), ("val", 3))}
    out = root / "converted"
    for split in ("train", "val"):
        convert("synscapes", synscapes_sample[0], out, split=split, workers=1, progress=False)
        convert("cityscapes", cityscapes_sample[0], out, split=split, workers=1, progress=False)
        convert("bdd100k", bdd, out, split=split, workers=1, progress=False)
    return {"root": root, "out": out, "bdd": bdd, "truth": truth}


def test_sample_instances_survive_conversion(three_sources):
    for split, truth in three_sources["truth"].items():
        coco = json.loads((three_sources["out"] / f"bdd100k_{split}.json").read_text())
        for image in coco["images"]:
            drawn = {name: len(ids) for name, ids in truth.frames[image["frame"]].visible.items() if ids}
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
            got: dict[str, int] = {}
            for a in anns:
                got[CLASS_NAMES[a["category_id"] - 1]] = got.get(CLASS_NAMES[a["category_id"] - 1], 0) + 1
            assert got == drawn
            assert (three_sources["bdd"] / image["file_name"]).is_file()


def test_stats_reads_three_sources_and_draws_the_third_colour(three_sources):
    import pyarrow.parquet as pq
    from PIL import Image

    from curate.stats import run_stats

    result = run_stats(three_sources["out"], figures=True, progress=False)
    table = pq.read_table(three_sources["out"] / "instances.parquet")
    assert set(table.column("source").to_pylist()) == {"synscapes", "cityscapes", "bdd100k"}
    # thresholds compare the synthetic source with the first real one (the study's pair)
    assert result.thresholds["real"]["source"] == "cityscapes"
    assert result.thresholds["synthetic"]["source"] == "synscapes"
    colours = {s.colour for s in sources.all_sources()}
    assert len(colours) == len(sources.NAMES)
    import matplotlib.colors as mcolors

    purple = np.array(mcolors.to_rgb(sources.get("bdd100k").colour)) * 255
    pixels = np.asarray(Image.open(three_sources["out"] / "stats" / "sizes.png").convert("RGB")).reshape(-1, 3)
    assert (np.abs(pixels - purple).max(axis=1) < 8).sum() > 50  # BDD100K's curves are drawn


def _manifest(out: Path, output: Path, **options) -> Path:
    from curate.manifest import ManifestRequest, make_manifests

    [path] = make_manifests(ManifestRequest(out=out, output=output, **options), progress=False)
    return path


def test_manifest_takes_bdd100k_as_the_real_source_and_as_an_evaluation_set(three_sources, tmp_path):
    out = three_sources["out"]
    path = _manifest(out, tmp_path / "m" / "mix.json", real="all", synthetic=3, real_source="bdd100k",
                     eval="bdd100k:val,cityscapes:val")
    manifest = json.loads(path.read_text())
    assert manifest["sources"]["bdd100k"]["kind"] == "real"
    assert manifest["sources"]["bdd100k"]["frames_count"] == 4
    assert manifest["train"]["real_frames"] == 4 and manifest["train"]["synthetic_frames"] == 3
    assert "--real-source bdd100k" in manifest["command"]
    evals = {e["name"]: e for e in manifest["eval"]}
    assert evals["bdd100k_val"]["gt_dir"] is None  # COCO AP only: BDD100K has no Cityscapes-style ground truth
    assert evals["cityscapes_val"]["gt_dir"] is not None
    mix = json.loads((path.parent / "mix.coco.json").read_text())
    bdd_images = [im for im in mix["images"] if im["source"] == "bdd100k"]
    assert len(bdd_images) == 4 and all((path.parent / im["file_name"]).is_file() for im in bdd_images)

    with pytest.raises(CurateError, match="synscapes is synthetic data"):
        _manifest(out, tmp_path / "bad.json", real="all", real_source="synscapes")


@pytest.mark.detectron2
def test_train_registers_bdd100k_and_scores_it_with_coco_ap_only(three_sources, tmp_path):
    pytest.importorskip("detectron2")
    import torch
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.structures import Boxes, Instances

    from train.data import register_manifest
    from train.evaluate import build_evaluator, summarize

    path = _manifest(three_sources["out"], tmp_path / "m" / "mix.json", real="all", synthetic=2,
                     real_source="bdd100k", eval="bdd100k:val", no_prune=True)
    _, registered = register_manifest(path, prefix="t_bdd")
    assert registered.tests == ("t_bdd_bdd100k_val",)
    records = DatasetCatalog.get("t_bdd_bdd100k_val")
    assert len(records) == 3 and all(Path(r["file_name"]).is_file() for r in records)
    assert not hasattr(MetadataCatalog.get("t_bdd_bdd100k_val"), "gt_dir")

    evaluator = build_evaluator("t_bdd_bdd100k_val", str(tmp_path / "eval"))
    evaluator.reset()
    for record in records:  # predictions equal to the ground truth
        anns = [a for a in record["annotations"] if not a.get("iscrowd")]
        h, w = record["height"], record["width"]
        inst = Instances((h, w))
        inst.pred_masks = torch.from_numpy(np.stack([mask_util.decode(a["segmentation"]).astype(bool)
                                                     for a in anns]))
        inst.pred_boxes = Boxes(torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                               a["bbox"][1] + a["bbox"][3]] for a in anns], dtype=torch.float32))
        inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        inst.scores = torch.linspace(0.99, 0.5, len(anns))
        evaluator.process([{"file_name": record["file_name"], "image_id": record["image_id"]}],
                          [{"instances": inst}])
    summary = summarize(evaluator.evaluate())
    assert summary["coco"]["AP"] == pytest.approx(100.0)
    assert summary["cityscapes"] is None
