"""Evaluation: Detectron2's COCOEvaluator (pycocotools COCOeval) and its CityscapesInstanceEvaluator
(the official cityscapesScripts instance evaluator), results files and a table naming each metric.

The two subclasses below change no scoring: they only keep numbers Detectron2 computes and drops
(per-class AP50 of COCOeval; per-class AP/AP50 of cityscapesScripts), give the Cityscapes result
its own key so both evaluators can run in one ``DatasetEvaluators``, and make the Cityscapes script
run inside its temporary folder (it writes ``matches.json`` into the working directory) and fail
with a one-line error instead of ``sys.exit``.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.evaluation import CityscapesInstanceEvaluator, COCOEvaluator, DatasetEvaluators
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from curate.errors import CurateError
from curate.fileio import write_json_atomic
from curate.labels import CLASS_NAMES

COCO_KEY = "segm"  # COCOEvaluator's key for mask results
CITYSCAPES_KEY = "cityscapes"

METRIC_DESCRIPTIONS = {
    "coco": "COCO mask AP (pycocotools COCOeval: IoU 0.50:0.95, 101-point interpolation, "
            "all instance sizes, crowd regions ignored)",
    "cityscapes": "Cityscapes instance AP (official cityscapesScripts evalInstanceLevelSemanticLabeling: "
                  "IoU 0.50:0.95 strictly greater, GT instances < 100 px and groups ignored)",
}


class MaskCOCOEvaluator(COCOEvaluator):
    """COCOEvaluator on masks that also keeps the per-class AP50 (``AP50-{class}``)."""

    def __init__(self, dataset_name: str, output_dir: str, distributed: bool = True):
        super().__init__(dataset_name, tasks=("segm",), distributed=distributed, output_dir=output_dir)

    def _derive_coco_results(self, coco_eval, iou_type, class_names=None):
        results = super()._derive_coco_results(coco_eval, iou_type, class_names)
        if coco_eval is None or not class_names:
            return results
        # precision dims: (IoU threshold, recall, class, area range, max detections); IoU 0.50 is first
        precisions = coco_eval.eval["precision"]
        for idx, name in enumerate(class_names):
            precision = precisions[0, :, idx, 0, -1]
            precision = precision[precision > -1]
            results[f"AP50-{name}"] = float(np.mean(precision) * 100) if precision.size else float("nan")
        return results


class OfficialCityscapesEvaluator(CityscapesInstanceEvaluator):
    """Detectron2's CityscapesInstanceEvaluator returning per-class AP and AP50 under ``"cityscapes"``."""

    def evaluate(self):
        comm.synchronize()
        if comm.get_rank() > 0:
            return None
        import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cityscapes_eval

        # Same global settings as Detectron2's evaluator.
        cityscapes_eval.args.predictionPath = os.path.abspath(self._temp_dir)
        cityscapes_eval.args.predictionWalk = None
        cityscapes_eval.args.JSONOutput = False
        cityscapes_eval.args.colorized = False
        cityscapes_eval.args.quiet = True
        cityscapes_eval.args.gtInstancesFile = os.path.join(self._temp_dir, "gtInstances.json")

        gt_dir = PathManager.get_local_path(self._metadata.gt_dir)
        gt_list = sorted(glob.glob(os.path.join(gt_dir, "*", "*_gtFine_instanceIds.png")))
        if not gt_list:
            raise CurateError(gt_dir, "no *_gtFine_instanceIds.png ground truth for the Cityscapes evaluator")
        log = io.StringIO()
        try:
            # The script writes matches.json into the working directory and prints progress.
            with contextlib.chdir(self._temp_dir), contextlib.redirect_stdout(log):
                predictions = [cityscapes_eval.getPrediction(gt, cityscapes_eval.args) for gt in gt_list]
                averages = cityscapes_eval.evaluateImgLists(predictions, gt_list, cityscapes_eval.args)[
                    "averages"]
        except SystemExit:  # cityscapesScripts' printError
            message = [line for line in log.getvalue().splitlines() if line.strip()]
            raise CurateError(gt_dir, f"Cityscapes evaluator failed: {message[-1] if message else 'unknown'}") from None
        finally:
            self._working_dir.cleanup()

        result = OrderedDict(AP=float(averages["allAp"]) * 100, AP50=float(averages["allAp50%"]) * 100)
        for name, scores in averages["classes"].items():
            result[f"AP-{name}"] = float(scores["ap"]) * 100
            result[f"AP50-{name}"] = float(scores["ap50%"]) * 100
        return OrderedDict({CITYSCAPES_KEY: result})


def build_evaluator(dataset_name: str, output_dir: str) -> DatasetEvaluators:
    """COCOEvaluator always; the official Cityscapes evaluator when the set has Cityscapes-style GT."""
    metadata = MetadataCatalog.get(dataset_name)
    evaluators = [MaskCOCOEvaluator(dataset_name, output_dir=output_dir)]
    if getattr(metadata, "gt_dir", None):
        if comm.get_local_size() != comm.get_world_size():
            logging.getLogger(__name__).warning(
                "%s: the Cityscapes evaluator does not run across machines; only COCO AP is computed",
                dataset_name)
        else:
            evaluators.append(OfficialCityscapesEvaluator(dataset_name))
    return DatasetEvaluators(evaluators)


NOT_COMPUTED = {
    "coco": "not computed: the model made no detection above the score threshold",
    "cityscapes": "not computed: no Cityscapes-style ground truth (gt_dir) for this set",
}


def _finite_or_none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def summarize(results: dict) -> dict:
    """Evaluator output → ``{"coco": {"AP", "AP50", "per_class": {...}}, "cityscapes": ... | None}``."""
    summary: dict = {}
    for metric, key in (("coco", COCO_KEY), (CITYSCAPES_KEY, CITYSCAPES_KEY)):
        scores = results.get(key)
        # COCOEvaluator returns {} or all-NaN numbers when the model made no detection
        if not scores or all(isinstance(v, float) and math.isnan(v) for v in scores.values()):
            summary[metric] = None
            continue
        summary[metric] = {
            "AP": _finite_or_none(scores.get("AP")),
            "AP50": _finite_or_none(scores.get("AP50")),
            "per_class": {
                name: {"AP": _finite_or_none(scores.get(f"AP-{name}")),
                       "AP50": _finite_or_none(scores.get(f"AP50-{name}"))}
                for name in CLASS_NAMES
            },
            "description": METRIC_DESCRIPTIONS[metric],
        }
    return summary


def _cell(value) -> str:
    return "   -  " if value is None else f"{value:6.1f}"


def format_table(dataset_name: str, summary: dict) -> str:
    """A plain-text table: one row per metric, mean over the 8 classes, then each class."""
    names = [name[:6] for name in CLASS_NAMES]
    header = f"{'metric (mask, %)':<34} {'mean':>6} " + " ".join(f"{n:>6}" for n in names)
    lines = [f"evaluation set {dataset_name}", header, "-" * len(header)]
    rows = (("coco", "AP", "COCO AP      (COCOeval .50:.95)"),
            ("coco", "AP50", "COCO AP50    (COCOeval IoU .50)"),
            ("cityscapes", "AP", "Cityscapes AP   (official .50:.95)"),
            ("cityscapes", "AP50", "Cityscapes AP50 (official IoU .50)"))
    for metric, stat, label in rows:
        scores = summary.get(metric)
        if scores is None:
            if stat == "AP":
                lines.append(f"{label.split('(')[0].strip():<34} " + NOT_COMPUTED[metric])
            continue
        per_class = [_cell(scores["per_class"][name][stat]) for name in CLASS_NAMES]
        lines.append(f"{label:<34} {_cell(scores[stat])} " + " ".join(per_class))
    lines += [
        "COCO: pycocotools COCOeval on masks (every ground-truth instance, 101-point interpolation).",
        "Cityscapes: official cityscapesScripts instance evaluator (ground truth < 100 px and groups ignored).",
        "mean: over the classes the metric scores; '-': class absent from the ground truth (not scored).",
    ]
    return "\n".join(lines)


def write_results(out_dir: Path, dataset_name: str, summary: dict, **extra) -> Path:
    path = Path(out_dir) / "eval" / f"{dataset_name}.json"
    write_json_atomic(path, {"dataset": dataset_name, **extra, **summary}, indent=1)
    return path


def load_results(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)
