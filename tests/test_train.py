"""``python -m train``: registration, both evaluators, a real PointRend run, and errors.

CPU only, nothing downloaded (random init). Data: the real pipeline on the project's own sample
sets (curate sample → convert → manifest), in both on-disk layouts.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")
torch = pytest.importorskip("torch")

from pycocotools import mask as mask_util  # noqa: E402

from curate.labels import CLASS_NAMES, LABEL_ID  # noqa: E402

torch.set_num_threads(1)


def _train_frames(out: Path) -> int:
    return sum(len(json.loads((out / f"{source}_train.json").read_text())["images"])
               for source in ("synscapes", "cityscapes"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, synscapes_sample, cityscapes_sample) -> dict:
    """The real pipeline on private copies of the shared sample sets, in one self-contained tree:
    curate convert (Synscapes with --gtfine) and curate manifest (all real + all synthetic frames,
    evaluation on both val splits); manifest paths are relative, so a copy of ``root`` is a working
    copy that a test may break. ``plain``: Synscapes converted without --gtfine (COCO ground truth only)."""
    from curate.convert import convert
    from curate.manifest import ManifestRequest, make_manifests

    root = tmp_path_factory.mktemp("pipeline")
    syn, cs = root / "Synscapes", root / "cityscapes"
    shutil.copytree(synscapes_sample[0], syn)
    shutil.copytree(cityscapes_sample[0], cs)
    out, plain = root / "converted", root / "converted_plain"
    for split in ("train", "val"):
        convert("synscapes", syn, out, split=split, gtfine=True, workers=1, progress=False)
        convert("cityscapes", cs, out, split=split, workers=1, progress=False)
        convert("synscapes", syn, plain, split=split, workers=1, progress=False)
    [manifest] = make_manifests(ManifestRequest(out=out, output=root / "manifests" / "mix.json", real="all",
                                                synthetic="all", no_prune=True), progress=False)
    [plain_manifest] = make_manifests(ManifestRequest(out=plain, output=root / "manifests" / "plain.json",
                                                      synthetic="all", no_prune=True), progress=False)
    return {"root": root, "out": out, "manifest": manifest, "plain_manifest": plain_manifest,
            "train_frames": _train_frames(out)}


def _copy_manifest_tree(pipeline, tmp_path) -> Path:
    """A private copy to break (manifest paths are relative, so the copy is self-contained)."""
    shutil.copytree(pipeline["root"], tmp_path / "copy", symlinks=True)
    return tmp_path / "copy" / "manifests" / "mix.json"


def _main(argv) -> int:
    from train.__main__ import main

    return main([str(a) for a in argv])


# ---------------------------------------------------------------------------------------------
# registration


def test_registration_resolves_paths_classes_and_cityscapes_names(pipeline, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from train.data import register_manifest

    manifest, reg = register_manifest(pipeline["manifest"], prefix="t_reg")
    assert reg.train == "t_reg_train" and reg.frames == pipeline["train_frames"]
    assert reg.tests == ("t_reg_cityscapes_val", "t_reg_synscapes_val")

    train = DatasetCatalog.get(reg.train)
    assert len(train) == pipeline["train_frames"]
    for record in train:
        assert os.path.isfile(record["file_name"])
        for ann in record["annotations"]:
            assert 0 <= ann["category_id"] < len(CLASS_NAMES)  # contiguous ids
            assert "counts" in ann["segmentation"]
    # the same masks as the converted COCO files of both sources, category by category
    sources = [json.loads((pipeline["out"] / f"{s}_train.json").read_text()) for s in ("synscapes", "cityscapes")]
    n_by_class = np.bincount([a["category_id"] for r in train for a in r["annotations"]], minlength=8)
    want = np.bincount([a["category_id"] - 1 for coco in sources for a in coco["annotations"]], minlength=8)
    assert n_by_class.tolist() == want.tolist()
    assert sum(a.get("iscrowd", 0) for r in train for a in r["annotations"]) == sum(
        a["iscrowd"] for coco in sources for a in coco["annotations"]) > 0  # crowd regions kept as such

    # a manifest over Synscapes converted without --gtfine: its val set has COCO ground truth only
    _, plain_reg = register_manifest(pipeline["plain_manifest"], prefix="t_reg_plain")
    assert plain_reg.tests == ("t_reg_plain_synscapes_val",)

    for name in reg.tests + (reg.train,) + plain_reg.tests:
        meta = MetadataCatalog.get(name)
        assert list(meta.thing_classes) == list(CLASS_NAMES)
        assert meta.cityscapes_ids == [LABEL_ID[n] for n in CLASS_NAMES]
        assert os.path.isfile(meta.json_file)

    # Synscapes frames are read through their Cityscapes-named links so the official evaluator can
    # pair them with gtFine/val/synscapes/synscapes_000000_{N:06}_gtFine_instanceIds.png
    syn = DatasetCatalog.get("t_reg_synscapes_val")
    assert sorted(os.path.basename(r["file_name"]) for r in syn) == [
        "synscapes_000000_020001_leftImg8bit.png", "synscapes_000000_020002_leftImg8bit.png"]
    assert all(os.path.isfile(r["file_name"]) for r in syn)
    assert MetadataCatalog.get("t_reg_synscapes_val").gt_dir.endswith(os.path.join("gtFine", "val"))
    assert MetadataCatalog.get("t_reg_synscapes_val").evaluator_type == "cityscapes_instance"
    # without gt_dir: the COCO file names stay, only COCOEvaluator applies
    plain = DatasetCatalog.get("t_reg_plain_synscapes_val")
    assert sorted(os.path.basename(r["file_name"]) for r in plain) == ["20001.png", "20002.png"]
    assert not hasattr(MetadataCatalog.get("t_reg_plain_synscapes_val"), "gt_dir")

    from detectron2.evaluation import CityscapesInstanceEvaluator, COCOEvaluator

    from train.evaluate import build_evaluator

    kinds = lambda name: [type(e).__mro__[1] for e in build_evaluator(name, str(tmp_path))._evaluators]  # noqa: E731
    assert kinds("t_reg_synscapes_val") == [COCOEvaluator, CityscapesInstanceEvaluator]
    assert kinds("t_reg_plain_synscapes_val") == [COCOEvaluator]


# ---------------------------------------------------------------------------------------------
# evaluator parity


def _ground_truth_predictions(records: list[dict], drop_class: str | None = None):
    """Predictions equal to the ground truth (non-crowd instances), optionally minus one class."""
    from detectron2.structures import Boxes, Instances

    outputs = []
    for record in records:
        anns = [a for a in record["annotations"] if not a.get("iscrowd")]
        if drop_class is not None:
            anns = [a for a in anns if CLASS_NAMES[a["category_id"]] != drop_class]
        h, w = record["height"], record["width"]
        inst = Instances((h, w))
        masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in anns]
        inst.pred_masks = torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, h, w), dtype=torch.bool)
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                 for a in anns]
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        # distinct confidences, so ranking matters and both evaluators sort the same way
        inst.scores = torch.linspace(0.99, 0.5, len(anns)) if anns else torch.zeros(0)
        outputs.append({"instances": inst})
    return outputs


def _score(dataset: str, outputs, records, out_dir) -> dict:
    from train.evaluate import build_evaluator, summarize

    evaluator = build_evaluator(dataset, str(out_dir))
    evaluator.reset()
    for record, output in zip(records, outputs):
        evaluator.process([{"file_name": record["file_name"], "image_id": record["image_id"]}], [output])
    return summarize(evaluator.evaluate())


@pytest.mark.parametrize("eval_set", ["cityscapes_val", "synscapes_val"])
def test_perfect_predictions_score_100_in_coco_and_official_cityscapes_ap(eval_set, pipeline, tmp_path):
    """The COCO file and the Cityscapes-style ground truth describe the same instances: predictions
    made from the COCO masks score 100 under pycocotools and under cityscapesScripts.

    curate convert's COCO against the sample's own gtFine (Cityscapes layout) and against convert
    --gtfine's files (Synscapes layout), so this also checks that the converter agrees with both.
    """
    from detectron2.data import DatasetCatalog

    from train.data import register_manifest

    register_manifest(pipeline["manifest"], prefix="t_par")
    name = f"t_par_{eval_set}"
    records = DatasetCatalog.get(name)
    instances = [(CLASS_NAMES[a["category_id"]], int(mask_util.area(a["segmentation"])))
                 for r in records for a in r["annotations"]
                 if not a["iscrowd"]]
    # classes each metric scores: COCO every instance, Cityscapes only instances of >= 100 pixels
    present = {"coco": {c for c, _ in instances}, "cityscapes": {c for c, area in instances if area >= 100}}
    assert any(area < 100 for _, area in instances)  # the sets hold instances only COCO scores

    perfect = _score(name, _ground_truth_predictions(records), records, tmp_path / "a")
    for metric in ("coco", "cityscapes"):
        assert perfect[metric]["AP"] == pytest.approx(100.0)
        assert perfect[metric]["AP50"] == pytest.approx(100.0)
        for cls in CLASS_NAMES:
            expected = pytest.approx(100.0) if cls in present[metric] else None
            assert perfect[metric]["per_class"][cls]["AP"] == expected
            assert perfect[metric]["per_class"][cls]["AP50"] == expected

    # one class missing: it scores 0 in both, the others stay at 100; each mean is over the classes
    # that metric scores (docs/formats/cityscapes.md §10: Cityscapes ignores ground truth under 100 pixels)
    dropped = sorted(present["cityscapes"])[0]
    partial = _score(name, _ground_truth_predictions(records, drop_class=dropped), records, tmp_path / "b")
    for metric in ("coco", "cityscapes"):
        per_class = partial[metric]["per_class"]
        for cls in present[metric] - {dropped}:
            assert per_class[cls]["AP"] == pytest.approx(100.0)
        assert per_class[dropped]["AP"] == 0.0
        n = len(present[metric])
        assert partial[metric]["AP"] == pytest.approx(100.0 * (n - 1) / n)
    assert not (Path.cwd() / "matches.json").exists()  # cityscapesScripts' side file stays in its temp dir


def test_summary_and_table_say_which_metric_and_when_none_was_computed():
    from train.evaluate import format_table, summarize

    nan = float("nan")
    no_detections = summarize({"segm": {"AP": nan, "AP50": nan, "AP-person": nan}})
    assert no_detections == {"coco": None, "cityscapes": None}
    table = format_table("x", no_detections)
    assert "no detection above the score threshold" in table and "no Cityscapes-style ground truth" in table

    scored = summarize({"segm": {"AP": 40.0, "AP50": 60.0, "AP-car": 40.0, "AP50-car": 60.0, "AP-bus": nan},
                        "cityscapes": {"AP": 41.0, "AP50": 61.0, "AP-car": 41.0, "AP50-car": 61.0}})
    assert scored["coco"]["per_class"]["car"] == {"AP": 40.0, "AP50": 60.0}
    assert scored["coco"]["per_class"]["bus"] == {"AP": None, "AP50": None}
    assert scored["cityscapes"]["AP50"] == 61.0
    rows = {line.split("(")[0].strip(): line for line in format_table("x", scored).splitlines()}
    assert rows["COCO AP50"].split(")")[1].split()[:1] == ["60.0"]
    assert rows["Cityscapes AP"].split(")")[1].split()[:1] == ["41.0"]


# ---------------------------------------------------------------------------------------------
# a real PointRend run


def test_cli_trains_pointrend_two_iterations_evaluates_and_resumes(pipeline, tmp_path, capsys):
    """sample → convert → manifest → python -m train: the real PointRend model, both evaluators."""
    out = tmp_path / "run"
    common = [pipeline["manifest"], "--preset", "cpu-tiny", "--device", "cpu", "--out", out, "--threads", "1",
              # an untrained model scores below the preset's 0.05: keep every detection so that the
              # COCO path has predictions to score
              "--opts", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.DETECTIONS_PER_IMAGE", "10"]
    assert _main(common + ["--iterations", "2", "--checkpoint-period", "1"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads(pipeline["manifest"].read_text())
    assert f"{manifest['train']['frames']} training frames" in printed
    assert "effective LR lr/(1-m) = 0.2" in printed  # cpu-tiny: 0.02 / (1 - 0.9)
    assert "COCO AP      (COCOeval .50:.95)" in printed and "Cityscapes AP   (official .50:.95)" in printed

    assert (out / "model_final.pth").is_file() and (out / "model_0000000.pth").is_file()
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [m["iteration"] for m in metrics if "total_loss" in m][-1] == 1
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out))
    for name in ("cityscapes_val", "synscapes_val"):
        result = json.loads((out / "eval" / f"synmix_{name}.json").read_text())
        assert result["iteration"] == 2
        assert result["coco"]["AP"] is not None and result["cityscapes"]["AP"] is not None
        assert 0 <= result["cityscapes"]["AP"] <= 100 and 0 <= result["coco"]["AP"] <= 100

    # resume: continues at iteration 2 up to the new end
    assert _main(common + ["--iterations", "3", "--resume"]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [m["iteration"] for m in metrics if "total_loss" in m][-1] == 2
    assert json.loads((out / "eval" / "synmix_synscapes_val.json").read_text())["iteration"] == 3

    # evaluation only, from a checkpoint, into another folder
    eval_out = tmp_path / "eval_only"
    argv = [a if a != out else eval_out for a in common]
    assert _main(argv + ["--eval-only", "--weights", out / "model_final.pth"]) == 0
    result = json.loads((eval_out / "eval" / "synmix_cityscapes_val.json").read_text())
    assert result["weights"] == str(out / "model_final.pth") and result["iteration"] is None
    assert not (eval_out / "model_final.pth").exists()


# ---------------------------------------------------------------------------------------------
# errors: one line, exit status 2


def _error(capsys, argv) -> str:
    assert _main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_error_manifest_missing(tmp_path, capsys):
    line = _error(capsys, [tmp_path / "nope.json", "--device", "cpu"])
    assert "nope.json" in line and "not found" in line


def test_error_other_schema_version(pipeline, tmp_path, capsys):
    manifest = _copy_manifest_tree(pipeline, tmp_path)
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    assert "schema version 99" in _error(capsys, [manifest, "--device", "cpu"])
    manifest.write_text(json.dumps({"hello": 1}))
    assert "not a synmix manifest" in _error(capsys, [manifest, "--device", "cpu"])


def test_error_coco_file_changed_since_manifest(pipeline, tmp_path, capsys):
    manifest = _copy_manifest_tree(pipeline, tmp_path)
    mix = manifest.parent / "mix.coco.json"
    data = json.loads(mix.read_text())
    data["annotations"] = data["annotations"][1:]
    mix.write_text(json.dumps(data))
    line = _error(capsys, [manifest, "--device", "cpu"])
    assert "mix.coco.json" in line and "sha256" in line
    # --no-verify skips the hash check: the changed file is then accepted
    from curate.manifest import load_manifest
    from train.data import check_manifest

    train_set, _ = check_manifest(load_manifest(manifest, verify=False))
    assert train_set.frames == pipeline["train_frames"]


def test_error_image_files_missing(pipeline, tmp_path, capsys):
    manifest = _copy_manifest_tree(pipeline, tmp_path)
    images = sorted((manifest.parent.parent / "cityscapes/leftImg8bit/train").rglob("*.png"))
    for image in images[:2]:
        image.unlink()
    line = _error(capsys, [manifest, "--device", "cpu"])
    assert images[0].name in line
    assert f"image file missing (and 1 more of {pipeline['train_frames']})" in line


def test_error_ground_truth_without_matching_frames(pipeline, tmp_path, capsys):
    manifest = _copy_manifest_tree(pipeline, tmp_path)
    gt = sorted((manifest.parent.parent / "converted/gtFine/val/synscapes").rglob("*_gtFine_instanceIds.png"))[0]
    shutil.copy(gt, gt.with_name("synscapes_000000_029999_gtFine_instanceIds.png"))
    # the manifest's fingerprint of the ground truth names the file added since
    line = _error(capsys, [manifest, "--device", "cpu"])
    assert "synscapes_000000_029999" in line and "not recorded in the manifest" in line
    # without it (--no-verify), the pairing check still stops the run
    line = _error(capsys, [manifest, "--device", "cpu", "--no-verify"])
    assert "synscapes_000000_029999" in line and "prediction for every ground-truth frame" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_error_cuda_asked_for_but_absent(pipeline, capsys):
    assert "CUDA is not available" in _error(capsys, [pipeline["manifest"], "--device", "cuda"])


def test_error_bad_options(pipeline, tmp_path, capsys):
    assert "--eval-only needs --weights" in _error(capsys, [pipeline["manifest"], "--device", "cpu", "--eval-only"])
    assert "weights file not found" in _error(
        capsys, [pipeline["manifest"], "--device", "cpu", "--weights", tmp_path / "w.pth"])
    assert "need --device cuda" in _error(capsys, [pipeline["manifest"], "--device", "cpu", "--num-gpus", "2"])
    assert "--dist-url" in _error(capsys, [pipeline["manifest"], "--device", "cpu", "--num-machines", "2"])
    assert "momentum must be in [0, 1)" in _error(capsys, [pipeline["manifest"], "--device", "cpu", "--momentum", "1"])
