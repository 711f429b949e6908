"""The PointRend instance-segmentation config, built in code.

Detectron2's PointRend yaml files are not in the installed wheel, so their values are set here, each
with its source:

* ``[base-fpn]``   model zoo ``Base-RCNN-FPN.yaml`` (merged from the wheel, not copied);
* ``[pr-base]``    ``projects/PointRend/configs/InstanceSegmentation/Base-PointRend-RCNN-FPN.yaml``;
* ``[pr-cs]``      ``projects/PointRend/configs/InstanceSegmentation/pointrend_rcnn_R_50_FPN_1x_cityscapes.yaml``;
* ``[paper]``      the study, docs/method.md §6 (baseline: LR ×0.1 after 18k *and* 22k iterations; the
                   Detectron2 yaml has a single step at 18k);
* ``[synmix]``     decisions of this project.
"""

from __future__ import annotations

from detectron2 import model_zoo
from detectron2.config import CfgNode, get_cfg
from detectron2.projects.point_rend import add_pointrend_config

from curate.errors import CurateError
from curate.labels import CLASS_NAMES
from curate.schedule import BASELINE_BATCH, BASELINE_LR, BASELINE_MAX_ITER, BASELINE_MOMENTUM, BASELINE_STEPS
from train.schedule import PRESET_SCHEDULE_DEFAULTS, Schedule  # noqa: F401 (re-exported)

NUM_CLASSES = len(CLASS_NAMES)
#: Detectron2's ImageNet-pretrained ResNet-50 (MSRA weights) — [pr-cs] MODEL.WEIGHTS.
IMAGENET_R50 = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
#: cityscapes: the study's configuration; finetune: the same model, LR 0.005 and momentum 0 (the study's best
#: fine-tuning point, train/schedule.py), from pre-trained weights; cpu-tiny: a small model for CPU runs.
PRESETS = ("cityscapes", "finetune", "cpu-tiny")


def _assign(node: CfgNode, **values) -> None:
    """``node.KEY = value`` for each keyword: several keys of one config node, set in one line."""
    for key, value in values.items():
        setattr(node, key, value)


def pointrend_cityscapes_cfg() -> CfgNode:
    """PointRend R50-FPN with the values of Detectron2's Cityscapes PointRend config (unfrozen)."""
    cfg = get_cfg()
    add_pointrend_config(cfg)
    cfg.merge_from_file(model_zoo.get_config_file("Base-RCNN-FPN.yaml"))  # [base-fpn]

    # [pr-base] Base-PointRend-RCNN-FPN.yaml
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.ROI_HEADS.NAME = "PointRendROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = True
    # Newer name of the head; PointRendROIHeads converts the legacy "CoarseMaskHead" to it.
    cfg.MODEL.ROI_MASK_HEAD.NAME = "PointRendMaskHead"
    cfg.MODEL.ROI_MASK_HEAD.POOLER_TYPE = ""  # the head samples image features itself
    cfg.MODEL.ROI_MASK_HEAD.FC_DIM = 1024
    cfg.MODEL.ROI_MASK_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_MASK_HEAD.OUTPUT_SIDE_RESOLUTION = 7
    cfg.MODEL.ROI_MASK_HEAD.IN_FEATURES = ["p2"]
    cfg.MODEL.ROI_MASK_HEAD.POINT_HEAD_ON = True
    cfg.MODEL.POINT_HEAD.FC_DIM = 256
    cfg.MODEL.POINT_HEAD.NUM_FC = 3
    cfg.MODEL.POINT_HEAD.IN_FEATURES = ["p2"]
    cfg.INPUT.MASK_FORMAT = "bitmask"  # PointRend does not work with polygon masks

    # [pr-cs] pointrend_rcnn_R_50_FPN_1x_cityscapes.yaml
    cfg.MODEL.WEIGHTS = IMAGENET_R50
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = NUM_CLASSES  # 8
    cfg.MODEL.POINT_HEAD.NUM_CLASSES = NUM_CLASSES  # 8
    # the study's baseline schedule (curate.schedule), the yaml's values but for the second step
    cfg.SOLVER.BASE_LR = BASELINE_LR
    cfg.SOLVER.IMS_PER_BATCH = BASELINE_BATCH
    cfg.SOLVER.MAX_ITER = BASELINE_MAX_ITER
    cfg.SOLVER.STEPS = BASELINE_STEPS  # [paper]; the yaml has (18000,)
    cfg.SOLVER.MOMENTUM = BASELINE_MOMENTUM  # Detectron2 default, stated by the paper
    cfg.INPUT.MIN_SIZE_TRAIN = (800, 832, 864, 896, 928, 960, 992, 1024)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.MIN_SIZE_TEST = 1024
    cfg.INPUT.MAX_SIZE_TRAIN = 2048
    cfg.INPUT.MAX_SIZE_TEST = 2048
    # [synmix] the datasets are registered from the manifest (train/data.py)
    cfg.DATASETS.TRAIN = ()
    cfg.DATASETS.TEST = ()
    return cfg


def tiny_cpu_overrides(cfg: CfgNode) -> CfgNode:
    """A small PointRend that learns from random init on a CPU in minutes (measured; README "Installing").

    Same architecture (FPN Mask R-CNN + PointRend head), smaller everywhere: ResNet-18, 64-channel
    FPN, few ROIs and points, trainable BatchNorm (frozen BN from random init explodes the loss),
    gradient clipping (LR 0.02 diverges without it), small inputs.
    """
    m = cfg.MODEL
    _assign(m.RESNETS, DEPTH=18, RES2_OUT_CHANNELS=64, NORM="BN")  # RES2_OUT_CHANNELS=64 is required by depth 18/34
    m.BACKBONE.FREEZE_AT = 0
    m.FPN.OUT_CHANNELS = 64
    m.ANCHOR_GENERATOR.SIZES = [[16], [32], [64], [128], [256]]
    _assign(m.RPN, PRE_NMS_TOPK_TRAIN=1000, POST_NMS_TOPK_TRAIN=200, PRE_NMS_TOPK_TEST=500, POST_NMS_TOPK_TEST=100)
    _assign(m.ROI_HEADS, BATCH_SIZE_PER_IMAGE=64, SCORE_THRESH_TEST=0.05)
    m.ROI_BOX_HEAD.FC_DIM = 256
    _assign(m.ROI_MASK_HEAD, FC_DIM=256, CONV_DIM=64)  # CONV_DIM must not exceed FPN.OUT_CHANNELS
    _assign(m.POINT_HEAD, FC_DIM=128, TRAIN_NUM_POINTS=49, SUBDIVISION_STEPS=3)
    # Evaluation costs ~10 ms per detection on a CPU: cap them.
    cfg.TEST.DETECTIONS_PER_IMAGE = 30
    _assign(cfg.INPUT, MIN_SIZE_TRAIN=(192,), MIN_SIZE_TEST=192, MAX_SIZE_TRAIN=384, MAX_SIZE_TEST=384)
    _assign(cfg.SOLVER, IMS_PER_BATCH=4, BASE_LR=0.02, WARMUP_ITERS=50)
    _assign(cfg.SOLVER.CLIP_GRADIENTS, ENABLED=True, CLIP_TYPE="norm", CLIP_VALUE=1.0)
    cfg.MODEL.WEIGHTS = ""  # random init
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def build_cfg(
    *,
    schedule: Schedule,
    train_dataset: str,
    test_datasets: tuple[str, ...],
    output_dir: str,
    preset: str = "cityscapes",
    weights: str | None = None,
    device: str = "cuda",
    eval_period: int = 0,
    checkpoint_period: int | None = None,
    num_workers: int | None = None,
    seed: int = 0,
    opts: list[str] | None = None,
) -> CfgNode:
    """The full frozen config of a run: preset, then the schedule, paths and command-line values, then ``opts``.

    ``weights``: a path or Detectron2 URL, ``""``/``"none"`` for random init, None for the preset's default.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    cfg = pointrend_cityscapes_cfg()
    if preset == "cpu-tiny":
        tiny_cpu_overrides(cfg)
    cfg.SOLVER.IMS_PER_BATCH = schedule.batch
    cfg.SOLVER.BASE_LR = schedule.base_lr
    cfg.SOLVER.MOMENTUM = schedule.momentum
    cfg.SOLVER.MAX_ITER = schedule.max_iter
    cfg.SOLVER.STEPS = tuple(schedule.steps)
    # Warm-up may not outlast the run (Detectron2 would clip it silently to the whole run).
    cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, max(schedule.max_iter // 2, 1))
    if checkpoint_period is not None:
        cfg.SOLVER.CHECKPOINT_PERIOD = checkpoint_period
    if weights is not None:
        cfg.MODEL.WEIGHTS = "" if weights.lower() in ("", "none") else weights
    cfg.MODEL.DEVICE = device
    cfg.DATASETS.TRAIN = (train_dataset,)
    cfg.DATASETS.TEST = tuple(test_datasets)
    cfg.TEST.EVAL_PERIOD = eval_period
    if num_workers is not None:
        cfg.DATALOADER.NUM_WORKERS = num_workers
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = seed
    if opts:
        merge_opts(cfg, list(opts))
    cfg.freeze()
    return cfg


def _has_key(cfg: CfgNode, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return False
        node = node[part]
    return True


def merge_opts(cfg: CfgNode, opts: list[str]) -> None:
    """``--opts KEY VALUE ...`` merged pair by pair: a key this config does not have, or a value of
    another type than the key's, is a one-line error naming the key (yacs would assert)."""
    if len(opts) % 2:
        raise CurateError(None, "--opts takes KEY VALUE pairs")
    for key, value in zip(opts[0::2], opts[1::2]):
        if not _has_key(cfg, key):
            raise CurateError(f"--opts {key}", "no such Detectron2 config key (keys are like SOLVER.BASE_LR; "
                                               "see detectron2/config/defaults.py and train/config.py)")
        try:
            cfg.merge_from_list([key, value])
        except (AssertionError, KeyError, ValueError, TypeError, SyntaxError) as err:
            raise CurateError(f"--opts {key}", f"value {value!r} does not fit this key ({_one_line(err)})") from None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__
