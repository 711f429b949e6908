"""The per-process part of a run: register the data sets, build the config, train or evaluate.

``run(job)`` is what ``detectron2.engine.launch`` starts in every process; ``Job`` carries everything
it needs (checked data sets, schedule, options) and is picklable for spawned workers.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, get_event_storage

from train.config import build_cfg
from train.data import CheckedSet, register_checked
from train.evaluate import build_evaluator, format_table, summarize, write_results
from train.schedule import Schedule

# a child of Detectron2's logger, so messages reach the handlers default_setup installs
logger = logging.getLogger("detectron2.synmix")


@dataclass
class Job:
    manifest: str
    train_set: CheckedSet
    eval_sets: list[CheckedSet]
    schedule: Schedule
    output_dir: str
    preset: str = "cityscapes"
    weights: str | None = None
    device: str = "cuda"
    eval_only: bool = False
    resume: bool = False
    eval_period: int = 0
    checkpoint_period: int | None = None
    num_workers: int | None = None
    seed: int = 0
    threads: int | None = None
    opts: list[str] = field(default_factory=list)
    dataset_prefix: str = "synmix"
    argv: list[str] = field(default_factory=list)
    #: --predict IMAGE_DIR and its zip (-o): predictions in the Cityscapes test server's format
    predict_dir: str | None = None
    predictions: str | None = None


def _current_iteration() -> int | None:
    try:
        return int(get_event_storage().iter)
    except (AssertionError, AttributeError):  # no EventStorage outside training
        return None


class Trainer(DefaultTrainer):
    """Detectron2's DefaultTrainer; only the evaluators, the result files and the writers are chosen here."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        return build_evaluator(dataset_name, os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name))

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        results = super().test(cfg, model, evaluators)
        if len(cfg.DATASETS.TEST) == 1:  # DefaultTrainer.test unwraps a single data set's results
            results = OrderedDict({cfg.DATASETS.TEST[0]: results})
        if comm.is_main_process():
            report(cfg, results)
        return results

    def build_writers(self):
        writers = [CommonMetricPrinter(self.max_iter),
                   JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"))]
        try:
            from detectron2.utils.events import TensorboardXWriter

            writers.append(TensorboardXWriter(self.cfg.OUTPUT_DIR))
        except ImportError:  # torch.utils.tensorboard needs the tensorboard package
            logger.warning("tensorboard is not installed: no TensorBoard events (metrics.json is written)")
        return writers


def report(cfg, results: dict) -> dict:
    """Write ``OUTPUT_DIR/eval/{dataset}.json`` and print the metric table of every evaluated set."""
    iteration = _current_iteration()
    summaries = {}
    for dataset_name, dataset_results in results.items():
        summary = summarize(dataset_results or {})
        path = write_results(cfg.OUTPUT_DIR, dataset_name, summary, weights=cfg.MODEL.WEIGHTS,
                             iteration=iteration)
        print("\n" + format_table(dataset_name, summary) + f"\n(results: {path})", flush=True)
        summaries[dataset_name] = summary
    return summaries


#: The Job fields ``build_cfg`` takes under the same names.
CFG_FIELDS = ("preset", "weights", "device", "eval_period", "checkpoint_period", "num_workers", "seed", "opts")


def job_cfg(job: Job, train_dataset: str | None = None, test_datasets: tuple[str, ...] | None = None):
    """The run's frozen config; the data-set names default to those ``register_checked`` gives."""
    prefix = job.dataset_prefix
    return build_cfg(
        schedule=job.schedule,
        train_dataset=train_dataset or f"{prefix}_train",
        test_datasets=test_datasets if test_datasets is not None else tuple(f"{prefix}_{e.name}" for e in job.eval_sets),
        output_dir=job.output_dir,
        **{name: getattr(job, name) for name in CFG_FIELDS},
    )


def setup(job: Job):
    import torch

    if job.threads:
        torch.set_num_threads(job.threads)
    registered = register_checked(job.train_set, job.eval_sets, job.dataset_prefix)
    cfg = job_cfg(job, registered.train, registered.tests)
    # default_setup logs its args and reads eval_only from them
    default_setup(cfg, SimpleNamespace(argv=job.argv, manifest=job.manifest, eval_only=job.eval_only))
    return cfg


def run(job: Job):
    """Train (then evaluate) or only evaluate; returns the evaluation results on the main process."""
    cfg = setup(job)
    if job.predict_dir:
        from train.predict import predict_to_zip

        return predict_to_zip(cfg, job.predict_dir, job.predictions, f"{job.dataset_prefix}_train")
    if job.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS,
                                                                             resume=job.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=job.resume)
    trainer.train()
    return getattr(trainer, "_last_eval_results", None)
