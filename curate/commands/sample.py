"""``curate sample synscapes|cityscapes|bdd100k OUT``: procedural sample sets in the exact real layouts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

sample_app = typer.Typer(
    help="Write procedural street-scene sample sets in the exact on-disk layouts of Synscapes, Cityscapes and BDD100K.",
    no_args_is_help=True,
)


class SampleSplit(str, Enum):
    train = "train"
    val = "val"


def _write_truth(path: Path | None, truth) -> None:
    if path is not None:
        from curate.fileio import write_json_atomic

        write_json_atomic(path, truth.to_dict(), indent=1)


@sample_app.command("synscapes")
def synscapes(
    out: Path = typer.Argument(..., help="Folder to write img/rgb, img/class, img/instance and meta/ into."),
    frames: int = typer.Option(20, "--frames", min=1, help="Number of frames (train and val together)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed and size give byte-identical files."),
    size: str = typer.Option("1440x720", "--size", help="Frame size WIDTHxHEIGHT (Synscapes renders 1440x720)."),
    val_fraction: float = typer.Option(
        0.2, "--val-fraction", min=0.0, max=1.0,
        help="Share of frames numbered 20001, 20002, … (synmix's default val split); the rest are 1, 2, ….",
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel worker processes (output does not depend on it)."),
    truth: Path = typer.Option(None, "--truth", help="Also write what each frame shows (riders, hidden ids, …) as JSON here."),
    traffic: str = typer.Option("street", "--traffic",
                                help="street: dense traffic with many tiny far-away instances; "
                                     "sparse: a few near objects per frame (short CPU training runs)."),
) -> None:
    """Write a Synscapes-layout sample set: rider and two-wheeler as one instance, hidden instances in meta."""
    from curate.sample import parse_size, write_synscapes_sample

    result = write_synscapes_sample(out, frames, seed, parse_size(size), val_fraction, workers=workers, progress=True,
                                    traffic=traffic)
    _write_truth(truth, result)
    typer.echo(result.summary())


@sample_app.command("cityscapes")
def cityscapes(
    out: Path = typer.Argument(..., help="Folder to write leftImg8bit/ and gtFine/ into."),
    frames: int = typer.Option(16, "--frames", min=1, help="Number of frames of the split."),
    split: SampleSplit = typer.Option(SampleSplit.train, "--split", help="Split folder to write (train or val)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed, split and size give byte-identical files."),
    size: str = typer.Option("2048x1024", "--size", help="Frame size WIDTHxHEIGHT (Cityscapes is 2048x1024)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel worker processes (output does not depend on it)."),
    truth: Path = typer.Option(None, "--truth", help="Also write what each frame shows (riders, groups, …) as JSON here."),
    traffic: str = typer.Option("street", "--traffic",
                                help="street: dense traffic with many tiny far-away instances; "
                                     "sparse: a few near objects per frame (short CPU training runs)."),
) -> None:
    """Write a Cityscapes-layout sample set: polygons, labelIds, 16-bit instanceIds, color, images."""
    from curate.sample import parse_size, write_cityscapes_sample

    result = write_cityscapes_sample(
        out, frames, split.value, seed, parse_size(size), workers=workers, progress=True, traffic=traffic
    )
    _write_truth(truth, result)
    typer.echo(result.summary())


@sample_app.command("bdd100k")
def bdd100k(
    out: Path = typer.Argument(..., help="The bdd100k/ folder to write images/10k/ and labels/ins_seg/bitmasks/ into."),
    frames: int = typer.Option(8, "--frames", min=1, help="Number of frames of the split."),
    split: SampleSplit = typer.Option(SampleSplit.val, "--split", help="Split folder to write (train or val)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed, split and size give byte-identical files."),
    size: str = typer.Option("1280x720", "--size", help="Frame size WIDTHxHEIGHT (BDD100K is 1280x720)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel worker processes (output does not depend on it)."),
    truth: Path = typer.Option(None, "--truth", help="Also write what each frame shows as JSON here."),
    traffic: str = typer.Option("street", "--traffic",
                                help="street: dense traffic with many tiny far-away instances; "
                                     "sparse: a few near objects per frame (short CPU training runs)."),
) -> None:
    """Write a BDD100K-layout sample set: JPEG images and RGBA instance bitmasks (riders separate)."""
    from curate.sample import parse_size, write_bdd100k_sample

    result = write_bdd100k_sample(
        out, frames, split.value, seed, parse_size(size), workers=workers, progress=True, traffic=traffic
    )
    _write_truth(truth, result)
    typer.echo(result.summary())


def register(app: typer.Typer) -> None:
    app.add_typer(sample_app, name="sample")
