"""``curate convert SOURCE ROOT --out OUT``: one sub-command per registered source (:mod:`curate.sources`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from curate.convert.defaults import DEFAULT_SHARD_SIZE

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
WorkersOption = Annotated[int | None, typer.Option("--workers", "-j", help=WORKERS_HELP)]
OnErrorOption = Annotated[OnError, typer.Option(
    "--on-error", help="fail: stop at the first bad frame with a one-line error; skip: record it in the report "
                       "and go on.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help=RESUME_HELP)]
ShardSizeOption = Annotated[int, typer.Option("--shard-size", help=SHARD_HELP)]
BackendOption = Annotated[Backend | None, typer.Option("--backend", help=BACKEND_HELP)]
SchedulerOption = Annotated[str | None, typer.Option("--scheduler", help=SCHEDULER_HELP)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")]


def _split_enum(source) -> type[Enum]:
    return Enum(f"{source.name.capitalize()}Split", {name: name for name in (*source.splits, "all")}, type=str)


def _print_result(result) -> None:
    report = result.report
    frames = report["frames"]
    line = (f"{frames['converted']} frames, {report['annotations']} annotations → {result.coco_path}"
            f" ({report['timings']['frames_per_s']} frames/s)")
    skipped = frames["skipped"] + len(report["skipped_files"])
    if skipped:
        line += f"; {skipped} frames or files skipped (see {result.report_path.name})"
    typer.echo(line)


def _print_warnings(result) -> None:
    from curate.findings import INFO, KINDS

    report = result.report
    # what curate check would call a finding: one warning line per kind, naming its first file
    for kind, slot in report["findings"].items():
        if KINDS[kind].severity != INFO:
            first = slot["examples"][0] if slot["examples"] else {}
            where = first.get("file", result.report_path)
            typer.echo(f"warning: {where}: {kind} in {slot['count']} cases ({KINDS[kind].meaning}; "
                       f"see {result.report_path.name}, or run curate check)", err=True)


def _convert_splits(source: str, root: Path, out: Path, splits: tuple[str, ...], quiet: bool, **options) -> None:
    """Convert each split in turn (one COCO file each) and print its summary line."""
    from curate.buffers import keep_freed_memory
    from curate.convert import convert
    from curate.fileio import writing

    keep_freed_memory()  # this process converts the frames itself with --workers 1 (curate.buffers)
    for name in splits:
        with writing(Path(out) / f"{source}_{name}.json"):  # what Ctrl-C leaves unwritten
            result = convert(source, root, out, split=name, progress=False if quiet else None, **options)
        if not quiet:
            _print_result(result)
        _print_warnings(result)  # on stderr, also with --quiet


def _command_for(source):
    """``curate convert NAME``: the same options for every source; those a source does not take
    are hidden from its --help (and refused with one line if given)."""
    Split = _split_enum(source)
    splits = " or ".join(source.splits)
    split_help = f"Split to convert ({splits}); all = each of them, one file each."
    rules_help = (f"{RULES_HELP[:-1]} Known: {', '.join(source.rules)}." if source.rules_switchable else RULES_HELP)

    def command(
        root: Path = typer.Argument(..., help=source.root_help),
        out: Path = typer.Option(..., "--out", help=f"Output folder for {source.name}_{{split}}.json and its report."),
        split: Split = typer.Option(source.splits[0], "--split", help=split_help),
        split_file: Path | None = typer.Option(
            None, "--split-file", hidden=source.frame_key_type is not int,
            help="Text file of frame numbers (one per line) to convert instead of the default split rule; "
                 "--split then only names the output."),
        workers: WorkersOption = None,
        gtfine: bool = typer.Option(
            False, "--gtfine", hidden=not source.writes_gtfine,
            help="Also write harmonized Cityscapes-style gtFine/{split}/ label PNGs and leftImg8bit/{split}/ image "
                 "links into OUT, readable by Detectron2's Cityscapes loader and the official evaluator."),
        copy_images: bool = typer.Option(
            False, "--copy-images", hidden=not source.writes_gtfine,
            help="With --gtfine: copy the RGB frames instead of linking them."),
        rules: str | None = typer.Option(None, "--rules", hidden=not source.rules_switchable, help=rules_help),
        on_error: OnErrorOption = OnError.fail,
        resume: ResumeOption = False,
        shard_size: ShardSizeOption = DEFAULT_SHARD_SIZE,
        backend: BackendOption = None,
        scheduler: SchedulerOption = None,
        quiet: QuietOption = False,
    ) -> None:
        chosen = source.splits if split.value == "all" and split_file is None else (split.value,)
        _convert_splits(source.name, root, out, chosen, quiet, split_file=split_file, rules=rules, workers=workers,
                        gtfine=gtfine, copy_images=copy_images, on_error=on_error.value, resume=resume,
                        shard_size=shard_size, backend=backend and backend.value, scheduler=scheduler)

    command.__doc__ = source.summary
    command.__annotations__["split"] = Split  # a local class: the string annotation cannot be evaluated
    return command


PER_SOURCE = True


def register(app: typer.Typer, full: bool = True) -> None:
    from curate import sources

    convert_app = typer.Typer(
        help=f"Convert the label maps of a data set ({', '.join(sources.NAMES)}) to COCO instance JSON (+ a "
             "report of every decision), in parallel, deterministically and resumably.",
        no_args_is_help=True,
    )
    for source in sources.all_sources() if full else ():
        convert_app.command(source.name)(_command_for(source))
    app.add_typer(convert_app, name="convert")
