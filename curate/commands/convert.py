"""``curate convert synscapes|cityscapes ROOT --out OUT``: label maps → harmonized COCO + report."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from curate.convert.driver import DEFAULT_SHARD_SIZE

RULES_HELP = ("Comma-separated harmonization rules to apply (default: all of rider-split, invisible, "
              "drop-ignored-classes). They always run in that order; each is counted in the report.")
WORKERS_HELP = ("Parallel worker processes on this machine (default: all cores; ignored with --backend dask, "
                "where the cluster's workers run the shards). Output is byte-identical for any number.")
BACKEND_HELP = ("Where the shards run: joblib = processes on this machine; dask = an existing Dask cluster "
                "(needs --scheduler or DASK_SCHEDULER_ADDRESS, and the dask extra of synmix). Default: dask when "
                "--scheduler is given, else joblib. Output is byte-identical either way.")
SCHEDULER_HELP = ("Address of a running Dask scheduler, e.g. tcp://HOST:8786 (implies --backend dask). Every "
                  "worker must see ROOT and OUT at the same paths (shared file system).")
RESUME_HELP = ("Reuse the shards a previous, interrupted run of the same command left in OUT/.shards "
               "(checked: same input root, split, rules, options and frames).")
SHARD_HELP = "Frames per shard: the unit of parallel work and of --resume."


class Backend(str, Enum):
    joblib = "joblib"
    dask = "dask"


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


# Options both sub-commands take, declared once.
WorkersOption = Annotated[Optional[int], typer.Option("--workers", "-j", help=WORKERS_HELP)]
OnErrorOption = Annotated[OnError, typer.Option(
    "--on-error", help="fail: stop at the first bad frame with a one-line error; skip: record it in the report "
                       "and go on.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help=RESUME_HELP)]
ShardSizeOption = Annotated[int, typer.Option("--shard-size", help=SHARD_HELP)]
BackendOption = Annotated[Optional[Backend], typer.Option("--backend", help=BACKEND_HELP)]
SchedulerOption = Annotated[Optional[str], typer.Option("--scheduler", help=SCHEDULER_HELP)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")]


class SynscapesSplit(str, Enum):
    train = "train"
    val = "val"
    all = "all"


class CityscapesSplit(str, Enum):
    train = "train"
    val = "val"
    all = "all"


def _print_result(result) -> None:
    report = result.report
    frames = report["frames"]
    line = (f"{frames['converted']} frames, {report['annotations']} annotations → {result.coco_path}"
            f" ({report['timings']['frames_per_s']} frames/s)")
    if frames["skipped"]:
        line += f"; {frames['skipped']} frames skipped (see {result.report_path.name})"
    typer.echo(line)


def _convert_splits(source: str, root: Path, out: Path, splits: tuple[str, ...], quiet: bool, **options) -> None:
    """Convert each split in turn (one COCO file each) and print its summary line."""
    from curate.convert import convert

    for name in splits:
        result = convert(source, root, out, split=name, progress=False if quiet else None, **options)
        if not quiet:
            _print_result(result)


def register(app: typer.Typer) -> None:
    convert_app = typer.Typer(
        help="Convert Synscapes or Cityscapes label maps to COCO instance JSON (+ a report of every "
             "decision), in parallel, deterministically and resumably.",
        no_args_is_help=True,
    )

    @convert_app.command("synscapes")
    def synscapes(
        root: Path = typer.Argument(..., help="Synscapes root (holding img/ and meta/)."),
        out: Path = typer.Option(..., "--out", help="Output folder for synscapes_{split}.json and its report."),
        split: SynscapesSplit = typer.Option(
            SynscapesSplit.train, "--split",
            help="Frames 1..20000 = train, 20001..25000 = val (synmix's default split); all = train and val, "
                 "one file each. With --split-file it only names the output."),
        split_file: Optional[Path] = typer.Option(
            None, "--split-file", help="Text file of frame numbers (one per line) to convert instead of the "
                                       "default split rule."),
        workers: WorkersOption = None,
        gtfine: bool = typer.Option(
            False, "--gtfine", help="Also write harmonized Cityscapes-style gtFine/{split}/synscapes/ label PNGs "
                                    "and leftImg8bit/{split}/synscapes/ image links, readable by Detectron2's "
                                    "Cityscapes loader and the official evaluator."),
        copy_images: bool = typer.Option(
            False, "--copy-images", help="With --gtfine: copy the RGB frames instead of linking them."),
        rules: Optional[str] = typer.Option(None, "--rules", help=RULES_HELP),
        on_error: OnErrorOption = OnError.fail,
        resume: ResumeOption = False,
        shard_size: ShardSizeOption = DEFAULT_SHARD_SIZE,
        backend: BackendOption = None,
        scheduler: SchedulerOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Harmonize Synscapes to Cityscapes conventions and write OUT/synscapes_{split}.json."""
        splits = ("train", "val") if split is SynscapesSplit.all and split_file is None else (split.value,)
        _convert_splits("synscapes", root, out, splits, quiet, split_file=split_file, rules=rules, workers=workers,
                        gtfine=gtfine, copy_images=copy_images, on_error=on_error.value, resume=resume,
                        shard_size=shard_size, backend=backend and backend.value, scheduler=scheduler)

    @convert_app.command("cityscapes")
    def cityscapes(
        root: Path = typer.Argument(..., help="Cityscapes root (holding gtFine/ and optionally leftImg8bit/)."),
        out: Path = typer.Option(..., "--out", help="Output folder for cityscapes_{split}.json and its report."),
        split: CityscapesSplit = typer.Option(
            CityscapesSplit.train, "--split", help="Split to convert; all = train and val, one file each."),
        workers: WorkersOption = None,
        on_error: OnErrorOption = OnError.fail,
        resume: ResumeOption = False,
        shard_size: ShardSizeOption = DEFAULT_SHARD_SIZE,
        backend: BackendOption = None,
        scheduler: SchedulerOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Export Cityscapes gtFine instances to OUT/cityscapes_{split}.json (groups as iscrowd,
        caravan/trailer skipped — Detectron2's decisions)."""
        splits = ("train", "val") if split is CityscapesSplit.all else (split.value,)
        _convert_splits("cityscapes", root, out, splits, quiet, workers=workers, on_error=on_error.value,
                        resume=resume, shard_size=shard_size, backend=backend and backend.value,
                        scheduler=scheduler)

    app.add_typer(convert_app, name="convert")
