"""``curate sample synscapes|cityscapes|bdd100k OUT``: procedural sample sets in the exact real layouts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

sample_app = typer.Typer(
    help="Write procedural street-scene sample sets in the exact on-disk layouts of Synscapes, Cityscapes and BDD100K.",
    no_args_is_help=True,
)


class SampleSplit(str, Enum):
    train = "train"
    val = "val"


# Options the sub-commands share, declared once (each sub-command gives its own default).
SPLIT_SEED_HELP = "Seed: the same seed, split and size give byte-identical files."
TRAFFIC_HELP = ("street: dense traffic with many tiny far-away instances; "
                "sparse: a few near objects per frame (short CPU training runs).")
WorkersOption = Annotated[int, typer.Option("--workers", min=1, help="Parallel worker processes (output does not depend on it).")]
TrafficOption = Annotated[str, typer.Option("--traffic", help=TRAFFIC_HELP)]
SplitFramesOption = Annotated[int, typer.Option("--frames", min=1, help="Number of frames of the split.")]
SplitOption = Annotated[SampleSplit, typer.Option("--split", help="Split folder to write (train or val).")]
SplitSeedOption = Annotated[int, typer.Option("--seed", min=0, help=SPLIT_SEED_HELP)]


def _size_option(default: str, native: str):
    return typer.Option(default, "--size", help=f"Frame size WIDTHxHEIGHT ({native}).")


def _truth_option(shows: str):
    return typer.Option(None, "--truth", help=f"Also write what each frame shows{shows} as JSON here.")


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary line.")]


def _progress(quiet: bool) -> bool | None:
    """curate.progress: a bar on a terminal, plain lines in a log, nothing with --quiet."""
    return False if quiet else None


def _finish(result, truth: Path | None, quiet: bool) -> None:
    """Write the truth file where asked and print the summary line."""
    if truth is not None:
        from curate.fileio import write_json_atomic

        write_json_atomic(truth, result.to_dict(), indent=1)
    if not quiet:
        typer.echo(result.summary())


@sample_app.command("synscapes")
def synscapes(
    out: Path = typer.Argument(..., help="Folder to write img/rgb, img/class, img/instance and meta/ into."),
    frames: int = typer.Option(20, "--frames", min=1, help="Number of frames (train and val together)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed and size give byte-identical files."),
    size: str = _size_option("1440x720", "Synscapes renders 1440x720"),
    val_fraction: float = typer.Option(
        0.2, "--val-fraction", min=0.0, max=1.0,
        help="Share of frames numbered 20001, 20002, … (synmix's default val split); the rest are 1, 2, ….",
    ),
    workers: WorkersOption = 1,
    truth: Path | None = _truth_option(" (riders, hidden ids, …)"),
    traffic: TrafficOption = "street",
    quiet: QuietOption = False,
) -> None:
    """Write a Synscapes-layout sample set: rider and two-wheeler as one instance, hidden instances in meta."""
    from curate.sample import parse_size, write_synscapes_sample

    _finish(write_synscapes_sample(out, frames, seed, parse_size(size), val_fraction, workers=workers,
                                   progress=_progress(quiet), traffic=traffic), truth, quiet)


# The sub-commands that write one split: name → (docstring, OUT help, --frames, --split, --size, the frame
# size the --size help names, what the --truth help lists).
SPLIT_SAMPLES = {
    "cityscapes": ("Write a Cityscapes-layout sample set: polygons, labelIds, 16-bit instanceIds, color, images.",
                   "Folder to write leftImg8bit/ and gtFine/ into.",
                   16, SampleSplit.train, "2048x1024", "Cityscapes is 2048x1024", " (riders, groups, …)"),
    "bdd100k": ("Write a BDD100K-layout sample set: JPEG images and RGBA instance bitmasks (riders separate).",
                "The bdd100k/ folder to write images/10k/ and labels/ins_seg/bitmasks/ into.",
                8, SampleSplit.val, "1280x720", "BDD100K is 1280x720", ""),
}


def _split_command(name: str, doc: str, out_help: str, frames_default: int, split_default: SampleSplit,
                   size_default: str, size_native: str, shows: str) -> None:
    """Register ``curate sample NAME``: one split of a source, written by ``curate.sample.write_NAME_sample``."""

    def command(
        out: Path = typer.Argument(..., help=out_help),
        frames: SplitFramesOption = frames_default,
        split: SplitOption = split_default,
        seed: SplitSeedOption = 0,
        size: str = _size_option(size_default, size_native),
        workers: WorkersOption = 1,
        truth: Path | None = _truth_option(shows),
        traffic: TrafficOption = "street",
        quiet: QuietOption = False,
    ) -> None:
        import curate.sample

        writer = getattr(curate.sample, f"write_{name}_sample")
        _finish(writer(out, frames, split.value, seed, curate.sample.parse_size(size), workers=workers,
                       progress=_progress(quiet), traffic=traffic), truth, quiet)

    command.__doc__ = doc
    sample_app.command(name)(command)


for _name, _spec in SPLIT_SAMPLES.items():
    _split_command(_name, *_spec)


def register(app: typer.Typer) -> None:
    app.add_typer(sample_app, name="sample")
