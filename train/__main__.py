"""``python -m train MANIFEST``: Detectron2 PointRend on a ``curate manifest`` file.

Reads and checks the manifest in the launching process (so a bad manifest fails in one line before
any worker starts), resolves the schedule, then runs ``train.engine.run`` through
``detectron2.engine.launch`` (one process per GPU, optionally across machines).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import logging
import os
import pickle
import signal
import socket
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

# Deprecation notices from torch and Detectron2's own imports say nothing a user can act on, and
# would bury the one-line errors below.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated", category=UserWarning)
# and the notices Detectron2's own calls into torch raise on every run
warnings.filterwarnings("ignore", message=r"The given NumPy array is not writable", category=UserWarning)
warnings.filterwarnings("ignore", message=r"torch\.meshgrid: in an upcoming release", category=UserWarning)
# Likewise torch's notices through logging (on every CPU run: "No CUDA runtime is found, using CUDA_HOME";
# "is_fx_tracing will return true for both ..."): stderr is for the one line that says what failed.
for _name in ("torch.utils.cpp_extension", "torch.fx._symbolic_trace"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from curate.errors import CurateError  # noqa: E402
from curate.schedule import BASELINE_BATCH, BASELINE_LR, BASELINE_MOMENTUM  # noqa: E402

EPILOG = """\
examples:
  # the study's baseline (24k iterations, batch 8 on 4 GPUs x 2 frames, LR 0.01, momentum 0.9):
  python -m train manifests/cityscapes.json --out runs/baseline --iterations 24000 --num-gpus 4
  # a mixed set for 50 epochs (iterations = 50 x frames / batch, LR steps at 75 % and 92 %):
  python -m train manifests/mix.json --out runs/mix --epochs 50 --num-gpus 4
  # fine-tune from synthetic pre-training with effective LR 0.005 (LR 0.005, momentum 0):
  python -m train manifests/cityscapes.json --weights runs/syn/model_final.pth --lr 0.005 --momentum 0
  # evaluate a model:
  python -m train manifests/mix.json --eval-only --weights runs/mix/model_final.pth
  # a sweep: every manifest of a folder, each into runs/prune/<manifest name>/ (finished runs are skipped)
  python -m train manifests/prune/ --out runs/prune --epochs 50 --num-gpus 4
  # the fine-tuning grid of the study (fig. 6), one SLURM job per point, LR steps 60k and 20k before the end:
  python -m train manifests/baseline.json --init runs/syn20k --preset finetune --iterations 100000 \
      --steps-from-end 60000,20000 --grid lr=0.0005,0.005,0.01 momentum=0,0.9 --out runs/finetune \
      --submit slurm --partition gpu --gpus-per-node 4 --timeout 2880
  # predictions for the Cityscapes test server (one txt per image + instance mask PNGs, zipped):
  python -m train manifests/mix.json --eval-only --weights runs/mix/model_final.pth \
      --predict /data/cityscapes/leftImg8bit/test -o preds.zip
  # a small CPU model that learns in minutes (tests, demo):
  python -m train manifests/mix.json --preset cpu-tiny --device cpu --iterations 100
"""


#: How to get what training needs (README "Installing").
INSTALL_HINT = 'install torch and Detectron2 with ./install.sh (README "Installing")'
#: What training and both evaluators import: checked before anything is trained.
TRAINING_STACK = ("torch", "detectron2", "detectron2.projects.point_rend", "pycocotools.mask",
                  "cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd command


WEIGHTS_HELP = ("initial weights: a checkpoint path, a detectron2:// or https:// address, or 'none' for random init "
                "(default: ImageNet R-50 detectron2://ImageNetPretrained/MSRA/R-50.pkl; preset cpu-tiny: none). "
                "With --eval-only: the model to evaluate")
INIT_HELP = ("start from a previous run's weights (its folder: RUN/model_final.pth) or a checkpoint file; the "
             "iteration count starts at 0 (fine-tuning). Excludes --weights")
PRESET_HELP = ("cityscapes: Detectron2's PointRend R50-FPN Cityscapes config (the study's); finetune: the same from "
               "pre-trained weights (--init) at LR 0.005, momentum 0 (the study's best fine-tuning point); cpu-tiny: a "
               "small ResNet-18 PointRend at 192 px that learns on a CPU in minutes")
STEPS_FROM_END_HELP = ("LR x0.1 when N and when M iterations remain (the study's fine-tuning: 60000,20000) instead of "
                       "at 3/4 and 11/12 of the run")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` line like every other failure."""

    def error(self, message: str):
        raise CurateError(None, f"{message} (see python -m train --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m train",
        description="Train Detectron2 PointRend (Mask R-CNN R50-FPN + PointRend mask head) on the training\n"
        "set of a `curate manifest` file, then evaluate it on the manifest's evaluation sets with COCO\n"
        "mask AP (pycocotools) and, where Cityscapes-style ground truth exists, the official Cityscapes AP.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("manifests", type=Path, nargs="+", metavar="MANIFEST",
                   help="manifest JSON written by `curate manifest`, or a folder of them (a sweep); several "
                   "manifests, a folder or --grid make several runs, each into OUT/<manifest name>[__grid point]/")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder for checkpoints, metrics.json, TensorBoard events, eval/*.json, run.json "
                   "(default: runs/<manifest name>); with several runs their parent folder (default: runs)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=None,
                        help="train E epochs: iterations = ceil(E x frames / batch), LR steps at the "
                        "baseline's fractions 18k/24k and 22k/24k (default: the manifest's schedule, "
                        "else the baseline's 24k iterations)")
    length.add_argument("--iterations", type=int, default=None,
                        help="train exactly N iterations (LR steps at the same fractions)")
    p.add_argument("--batch", type=int, default=None,
                   help="total images per iteration over all GPUs (default: manifest schedule, "
                   f"else {BASELINE_BATCH}; preset cpu-tiny: 4)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"base learning rate (default: manifest schedule, else {BASELINE_LR:g}; "
                   "preset cpu-tiny: 0.02)")
    p.add_argument("--momentum", type=float, default=None,
                   help=f"SGD momentum (default: manifest schedule, else {BASELINE_MOMENTUM:g}); "
                   "effective LR = lr/(1-momentum)")
    p.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    p.add_argument("--init", default=None, metavar="RUN_OR_WEIGHTS", help=INIT_HELP)
    p.add_argument("--preset", choices=("cityscapes", "finetune", "cpu-tiny"), default="cityscapes", help=PRESET_HELP)
    p.add_argument("--steps-from-end", default=None, metavar="N,M", help=STEPS_FROM_END_HELP)
    p.add_argument("--device", choices=("cuda", "cpu"), default=None,
                   help="device to train on (default: cuda when available, else cpu)")
    p.add_argument("--num-gpus", type=int, default=1, help="processes (GPUs) per machine (default 1)")
    p.add_argument("--num-machines", type=int, default=1, help="machines in the job (default 1)")
    p.add_argument("--machine-rank", type=int, default=0, help="rank of this machine, 0..M-1 (default 0)")
    p.add_argument("--dist-url", default="auto",
                   help="rendezvous address of rank 0, e.g. tcp://10.0.0.1:29500 (default: a free local "
                   "port; required with several machines)")
    p.add_argument("--eval-only", action="store_true",
                   help="do not train: evaluate --weights (or the run folder's last checkpoint with --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the run folder's last checkpoint (iteration, optimizer, scheduler)")
    p.add_argument("--eval-period", type=int, default=0,
                   help="evaluate every N iterations as well as at the end (default 0: only at the end)")
    p.add_argument("--checkpoint-period", type=int, default=None,
                   help="save a checkpoint every N iterations (default: Detectron2's 5000)")
    p.add_argument("--workers", type=int, default=None,
                   help="data-loader worker processes per GPU (default: Detectron2's 4; cpu-tiny: 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per process (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0; -1: a random one)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the sha256 check of the manifest's COCO files and the fingerprint check of "
                   "its evaluation ground truth (every image and ground-truth file is still checked)")
    p.add_argument("--predict", type=Path, default=None, metavar="IMAGE_DIR",
                   help="with --eval-only: predict every image under IMAGE_DIR (e.g. leftImg8bit/test) and write "
                   "the Cityscapes test server's format (one txt per image + instance mask PNGs) to -o ZIP")
    p.add_argument("-o", "--predictions", type=Path, default=None, metavar="ZIP",
                   help="the zip file --predict writes (default: RUN/predictions.zip)")
    p.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                   help="further Detectron2 config overrides, e.g. --opts SOLVER.CHECKPOINT_PERIOD 2000")

    many = p.add_argument_group("several runs (a folder of manifests, several manifests, --grid) and cluster jobs")
    many.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2",
                      help="one run per point of the grid, e.g. --grid lr=0.0005,0.005,0.01 momentum=0,0.9 "
                      "(keys: lr, momentum, epochs, iterations, batch, seed)")
    many.add_argument("--submit", choices=("slurm", "local"), default=None,
                      help="send each run as a job through submitit: slurm (a SLURM cluster; run on its login "
                      "node) or local (submitit's local executor: subprocesses on this machine)")
    many.add_argument("--wait", action="store_true",
                      help="with --submit: block until every job ended and report failures with their log paths")
    many.add_argument("--rerun", action="store_true", help="train runs again whose run.json says finished")
    many.add_argument("--partition", default=None, help="SLURM partition")
    many.add_argument("--account", default=None, help="SLURM account")
    many.add_argument("--qos", default=None, help="SLURM quality of service")
    many.add_argument("--constraint", default=None, help="SLURM node constraint")
    many.add_argument("--nodes", type=int, default=1,
                      help="SLURM nodes per run (one run spans them with Detectron2's launch; default 1)")
    many.add_argument("--gpus-per-node", type=int, default=None, help="GPUs per node (and processes per node)")
    many.add_argument("--cpus-per-task", type=int, default=None, help="CPU cores per node for the job")
    many.add_argument("--mem-gb", type=int, default=None, help="SLURM memory per node (GB)")
    many.add_argument("--timeout", type=int, default=None,
                      help="job time limit in minutes (default: 4320, i.e. 3 days)")
    many.add_argument("--slurm", nargs="+", default=None, metavar="KEY=VALUE",
                      help="further sbatch options, e.g. --slurm mail-type=END exclusive=")
    return p


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _first_line(err: BaseException) -> str:
    """The line of an exception's message a user can act on (a child's traceback ends with it)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    line = lines[-1] if lines[0].startswith(("Traceback", "-- Process")) else lines[0]
    if len(line) > 160 and ". " in line[40:]:  # a library's paragraph: its first sentence says it
        line = line[: line.index(". ", 40) + 1]
    return line if len(line) <= 300 else line[:297] + "..."


def _fail_unexpected(err: BaseException) -> int:
    """An exception nobody foresaw (a bug, a library's own failure): one line that names a file with
    its traceback, instead of the traceback itself."""
    fd, name = tempfile.mkstemp(prefix="synmix-train-", suffix=".traceback.txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exception(err, file=f)
    return _fail(f"{name}: unexpected {type(err).__name__}: {_first_line(err)} (its traceback is in this file)")


@contextlib.contextmanager
def _sigint_ignored():
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_installed() -> None:
    """torch, Detectron2 (with PointRend) and both evaluators' packages must import."""
    for module in TRAINING_STACK:
        try:
            importlib.import_module(module)
        except Exception as err:  # ImportError, or a broken build (numpy 2, CUDA libraries, ...)
            raise CurateError(module, f"cannot be imported ({type(err).__name__}: {_first_line(err)}): "
                                      f"{INSTALL_HINT}") from None


def check_out(out: Path) -> None:
    """The run folder must be a folder, or creatable in a writable one."""
    if out.exists() and not out.is_dir():
        raise CurateError(out, "exists and is not a folder (--out names the run folder)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CurateError(parent, f"is not a folder, so the run folder {out} cannot be made in it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CurateError(parent, "folder not writable (the run folder --out is written there)")


def _check_device(args) -> str:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise CurateError(None, "--device cuda: CUDA is not available on this machine (use --device cpu)")
        if args.num_gpus > torch.cuda.device_count():
            raise CurateError(None, f"--num-gpus {args.num_gpus}: only {torch.cuda.device_count()} "
                              "CUDA device(s) visible")
    return device


def _check_weights(weights: str | None, eval_only: bool, resume: bool) -> None:
    if eval_only and not resume and (weights is None or weights.lower() in ("", "none")):
        raise CurateError(None, "--eval-only needs --weights MODEL (or --resume to use the run's last checkpoint)")
    if weights and "://" not in weights and weights.lower() != "none" and not Path(weights).is_file():
        raise CurateError(weights, "weights file not found")


def _download(url: str) -> str:
    """The local copy of a detectron2:// or https:// checkpoint (Detectron2's cache; downloaded once)."""
    from detectron2.utils.file_io import Detectron2Handler, PathManager

    https = url.replace(Detectron2Handler.PREFIX, Detectron2Handler.S3_DETECTRON2_PREFIX, 1)
    # iopath logs "Failed to download" through Python's last-resort handler and draws a progress bar
    # on stderr: both would stand beside the one error line, so this line on stdout replaces them.
    print(f"weights {url}: from Detectron2's download cache, or downloaded once from {https}", flush=True)
    quiet = logging.NullHandler()
    logging.getLogger("iopath").addHandler(quiet)
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return PathManager.get_local_path(url)
    except Exception as err:
        raise CurateError(url, f"cannot download the weights ({type(err).__name__}: {_first_line(err)}): fetch "
                               f"{https} where there is a network and pass the file with --weights PATH, "
                               "or train from random init with --weights none") from None
    finally:
        socket.setdefaulttimeout(timeout)
        logging.getLogger("iopath").removeHandler(quiet)


def check_checkpoint(weights: str) -> None:
    """Download (if a URL) and read the checkpoint now, as Detectron2's DetectionCheckpointer will
    (``.pkl``: pickle, else ``torch.load``): an empty or corrupt file fails before any training."""
    import torch

    local = _download(weights) if "://" in weights else weights
    if not os.path.isfile(local):
        raise CurateError(weights, "weights file not found")
    if os.path.getsize(local) == 0:
        raise CurateError(weights, "weights file is empty")
    try:
        if local.endswith(".pkl"):
            with open(local, "rb") as f:
                data = pickle.load(f, encoding="latin1")
        else:
            data = torch.load(local, map_location="cpu")
    except Exception as err:
        raise CurateError(weights, f"not a readable checkpoint ({type(err).__name__}: {_first_line(err)}); "
                                   "pass another file with --weights, or --weights none") from None
    if not isinstance(data, dict):
        raise CurateError(weights, f"not a checkpoint: holds a {type(data).__name__}, not a dict of weights")


def _checkpoint_to_load(cfg, out: Path, resume: bool) -> str:
    """What ``DetectionCheckpointer.resume_or_load`` will read: the run's last checkpoint with
    --resume when there is one, else MODEL.WEIGHTS (after --weights and --opts)."""
    last = out / "last_checkpoint"
    if resume and last.is_file():
        name = last.read_text().strip()
        if not name:
            raise CurateError(last, "empty: it should name the run's last checkpoint")
        return str(out / name)
    return cfg.MODEL.WEIGHTS


def resolve_init(args) -> dict:
    """``--init RUN_OR_WEIGHTS`` → ``args.weights`` (a run folder gives its model_final.pth), and the
    record of the initial weights kept in run.json."""
    if args.init is not None:
        if args.weights is not None:
            raise CurateError(None, "--init and --weights both give the initial weights: give one")
        init = Path(args.init)
        if init.is_dir():
            weights = init / "model_final.pth"
            if not weights.is_file():
                raise CurateError(init, "no model_final.pth in this run folder (has the run finished?)")
            args.weights = str(weights)
            return {"kind": "run", "run": str(init.absolute()), "weights": str(weights.absolute())}
        if not init.is_file():
            raise CurateError(init, "--init: no such run folder or weights file")
        args.weights = str(init)
        return {"kind": "checkpoint", "run": None, "weights": str(init.absolute())}
    if args.preset == "finetune" and not args.eval_only and args.weights is None:
        raise CurateError(None, "--preset finetune starts from pre-trained weights: give --init RUN (or --weights)")
    weights = args.weights
    if weights is None:
        from train.config import IMAGENET_R50

        weights = "" if args.preset == "cpu-tiny" else IMAGENET_R50
    if weights.lower() in ("", "none"):
        return {"kind": "random", "run": None, "weights": None}
    kind = "imagenet" if weights.startswith("detectron2://ImageNetPretrained") else "checkpoint"
    return {"kind": kind, "run": None, "weights": weights if "://" in weights else str(Path(weights).absolute())}


def _steps_from_end(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        steps = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CurateError(None, f"--steps-from-end {text}: expected iteration counts, e.g. 60000,20000") from None
    if not steps:
        raise CurateError(None, "--steps-from-end: no iteration count given")
    return steps


def _check_predict(args) -> None:
    if args.predictions is not None and args.predict is None:
        raise CurateError(None, "-o/--predictions names the zip of --predict IMAGE_DIR")
    if args.predict is None:
        return
    if not args.eval_only:
        raise CurateError(None, "--predict needs --eval-only (and the model, --weights W)")
    if not args.predict.is_dir():
        raise CurateError(args.predict, "--predict: image folder not found")
    from train.predict import image_files

    image_files(args.predict)  # at least one image, names unique
    if args.predictions is not None and args.predictions.suffix != ".zip":
        raise CurateError(args.predictions, "-o: the predictions file must end in .zip")


def prepare(args, argv: list[str]):
    """Everything checked before launching: manifest, data sets, schedule, device, weights."""
    from curate.manifest import load_manifest
    from train.data import check_manifest
    from train.schedule import PRESET_SCHEDULE_DEFAULTS, applied_schedule, resolve_schedule

    if args.num_gpus < 1 or args.num_machines < 1 or not 0 <= args.machine_rank < args.num_machines:
        raise CurateError(None, "--num-gpus and --num-machines must be >= 1 and 0 <= --machine-rank < --num-machines")
    if args.num_machines > 1 and args.dist_url == "auto":
        raise CurateError(None, "--dist-url tcp://HOST:PORT is required with --num-machines > 1")
    if len(args.opts) % 2:
        raise CurateError(None, "--opts takes KEY VALUE pairs")
    [manifest_path] = args.manifests
    out = Path(args.out or Path("runs") / manifest_path.stem)
    check_out(out)
    init = resolve_init(args)
    _check_weights(args.weights, args.eval_only, args.resume)
    _check_predict(args)
    steps_from_end = _steps_from_end(args.steps_from_end)

    # the data first (no torch needed), then what training needs installed, then the model's config
    manifest = load_manifest(manifest_path, verify=not args.no_verify)
    train_set, eval_sets = check_manifest(manifest)
    # Detectron2 trains on the frames with an instance (it drops the others): epochs count those
    trained = int(manifest.data["train"].get("frames_trained", train_set.frames))
    train_set = dataclasses.replace(train_set, frames=trained)
    preset_defaults = PRESET_SCHEDULE_DEFAULTS[args.preset] if args.preset != "cityscapes" else {}
    try:
        schedule = resolve_schedule(
            train_set.frames,
            epochs=args.epochs,
            iterations=args.iterations,
            batch=args.batch if args.batch is not None else preset_defaults.get("batch"),
            lr=args.lr if args.lr is not None else preset_defaults.get("base_lr"),
            momentum=args.momentum if args.momentum is not None else preset_defaults.get("momentum"),
            hint=manifest.schedule,
            steps_from_end=steps_from_end,
        )
    except ValueError as err:
        raise CurateError(None, str(err)) from None
    world = args.num_gpus * args.num_machines
    if schedule.batch % world:
        raise CurateError(None, f"batch {schedule.batch} is not divisible by {world} processes")

    check_installed()
    from train.engine import Job, job_cfg

    device = _check_device(args)
    if device == "cpu" and world > 1:
        # Detectron2 wraps the model in DistributedDataParallel with GPU device ids
        raise CurateError(None, "several processes (--num-gpus/--num-machines) need --device cuda")
    job = Job(
        manifest=str(manifest.path),
        train_set=train_set,
        eval_sets=eval_sets,
        schedule=schedule,
        output_dir=str(out.absolute()),
        preset=args.preset,
        weights=args.weights,
        device=device,
        eval_only=args.eval_only,
        resume=args.resume,
        eval_period=args.eval_period,
        checkpoint_period=args.checkpoint_period,
        num_workers=args.workers,
        seed=args.seed,
        threads=args.threads,
        opts=list(args.opts),
        argv=list(argv),
        predict_dir=str(args.predict.absolute()) if args.predict else None,
        predictions=str((args.predictions or out / "predictions.zip").absolute()) if args.predict else None,
    )
    # The config the run will build (--opts keys and values checked), and the weights it will load.
    cfg = job_cfg(job)
    # the schedule the config really holds (--opts SOLVER.* may have changed it): the banner and run.json say it
    try:
        job.schedule = applied_schedule(schedule, max_iter=cfg.SOLVER.MAX_ITER, steps=cfg.SOLVER.STEPS,
                                        batch=cfg.SOLVER.IMS_PER_BATCH, base_lr=cfg.SOLVER.BASE_LR,
                                        momentum=cfg.SOLVER.MOMENTUM)
    except ValueError as err:
        raise CurateError("--opts", str(err)) from None
    weights = _checkpoint_to_load(cfg, out, args.resume)
    if weights:
        check_checkpoint(weights)
    return job, manifest, init


def describe(job, frames: int) -> str:
    from curate.schedule import epochs_for_iterations

    s = job.schedule
    epochs = epochs_for_iterations(s.max_iter, frames, s.batch)
    dropped = f" (not applied, outside the run: {list(s.dropped_steps)})" if s.dropped_steps else ""
    lines = [
        f"manifest {job.manifest}: {frames} training frames, evaluation sets: "
        f"{', '.join(e.name for e in job.eval_sets) or 'none'}",
        f"schedule ({s.origin}): {s.max_iter} iterations x batch {s.batch} = {epochs:.1f} epochs, "
        f"LR x0.1 at {list(s.steps) or 'none'}{dropped}",
        f"learning rate {s.base_lr:g}, momentum {s.momentum:g}: effective LR lr/(1-m) = {s.effective_lr:g}",
        f"preset {job.preset}, device {job.device}, run folder {job.output_dir}",
    ]
    if job.predict_dir:
        lines[1:3] = [f"predict: every image under {job.predict_dir} → {job.predictions} (Cityscapes test server format)"]
    random_init = (job.weights or "x").lower() in ("", "none")
    if job.preset == "cityscapes" and random_init and not job.eval_only and "MODEL.RESNETS.NORM" not in job.opts:
        lines.append("note: random init with the cityscapes preset's frozen BatchNorm tends to diverge; "
                     "use ImageNet weights, or --opts MODEL.RESNETS.NORM BN MODEL.BACKBONE.FREEZE_AT 0")
    return "\n".join(lines)


def run_many(args, parser) -> int:
    """Several runs (manifests × grid points), in turn or as submitit jobs (train/runs.py)."""
    from train import runs

    if args.submit and any(getattr(args, d) != parser.get_default(d) for d in runs.DISTRIBUTED_DESTS):
        raise CurateError(None, "--submit sets --num-gpus/--num-machines/--machine-rank/--dist-url itself "
                                "(from --gpus-per-node and --nodes)")
    if args.wait and not args.submit:
        raise CurateError(None, "--wait is for --submit (runs without it run one after the other anyway)")
    if args.predict is not None:
        raise CurateError(None, "--predict writes one zip: give one manifest, no --grid")
    if args.submit == "local" and args.nodes != 1:
        raise CurateError(None, "--submit local runs on this machine: --nodes must be 1")
    planned = runs.plan_runs(args, parser)
    print(f"{len(planned)} run(s):", flush=True)
    for run in planned:
        print(f"  {run.out}", flush=True)
    if args.submit:
        outcomes = runs.submit_runs(planned, args, wait=args.wait)
    else:
        outcomes = runs.run_in_turn(planned, rerun=args.rerun)
    return runs.report(outcomes)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # OpenCV warns on stderr about a PNG it then fails to decode; the error line says it
    import cv2

    cv2.setLogLevel(2)  # errors only (cv2.utils.logging.LOG_LEVEL_ERROR)
    out = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        from train.runs import is_many, write_run_record

        if args.submit or is_many(args):
            return run_many(args, parser)
        for option in ("grid", "wait", "rerun"):
            if getattr(args, option):
                raise CurateError(None, f"--{option} is for several runs or --submit")
        out = Path(args.out or Path("runs") / args.manifests[0].stem)
        job, manifest, init = prepare(args, argv)
        print(describe(job, job.train_set.frames), flush=True)
        from train.engine import run

        record = args.machine_rank == 0
        if record:
            write_run_record(job, manifest, "running", init)
        if args.num_gpus * args.num_machines == 1:
            run(job)
        else:
            from detectron2.engine import launch

            launch(run, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                   dist_url=args.dist_url, args=(job,))
        if record:
            write_run_record(job, manifest, "finished", init,
                             {"predictions": job.predictions} if job.predict_dir else None)
    except CurateError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        with _sigint_ignored():  # a second Ctrl-C must not cut this line short
            where = f"{out}: " if out is not None else ""
            print(f"error: {where}interrupted (SIGINT): stopped; checkpoints already written to the run folder "
                  "stay (continue with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the one place that turns the unforeseen into one line
        return _fail_unexpected(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
