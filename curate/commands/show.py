"""``curate show synscapes|prune``: pictures of what harmonization and pruning do to a frame."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from curate.sources import MODULES

OUT_HELP = "PNG file to write (written atomically; its folder is created)."
ALPHA_HELP = "Opacity of the class-coloured fills, 0 (outlines only) to 1 (solid); default 0.6."
QUIET_HELP = "Print nothing (the picture's path is printed otherwise)."
MAX_WIDTH_HELP = "Scale panels down so the whole figure is at most this many pixels wide."


#: The registered sources (curate.sources.NAMES), as a choice for --source.
Source = Enum("Source", {name: name for name in MODULES}, type=str)


def _check_alpha(alpha: float | None) -> float:
    from curate.errors import CurateError
    from curate.overlay import FILL_ALPHA

    if alpha is None:
        return FILL_ALPHA
    if not 0.0 <= alpha <= 1.0:
        raise CurateError(None, f"--alpha {alpha:g} is outside [0, 1]")
    return alpha


def _check_max_width(max_width: int) -> int:
    from curate.errors import CurateError

    if max_width < 200:
        raise CurateError(None, f"--max-width {max_width} is too small (at least 200 pixels)")
    return max_width


def register(app: typer.Typer) -> None:
    show_app = typer.Typer(
        help="Draw pictures of a frame: original vs. harmonized Synscapes instances, and the labels "
             "that survive each removal threshold.",
        no_args_is_help=True,
    )

    @show_app.command("synscapes")
    def synscapes(
        root: Path = typer.Argument(..., metavar="ROOT", help="Synscapes root (holding img/ and meta/)."),
        frame: str = typer.Argument(..., metavar="FRAME", help="Frame number N (img/rgb/N.png, meta/N.json)."),
        out: Path = typer.Option(..., "--out", help=OUT_HELP),
        rules: str | None = typer.Option(
            None, "--rules", help="Comma-separated harmonization rules for the right panel (default: all of "
                                  "rider-split, invisible, drop-ignored-classes), as for curate convert."),
        alpha: float | None = typer.Option(None, "--alpha", help=ALPHA_HELP),
        max_width: int = typer.Option(2000, "--max-width", help=MAX_WIDTH_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Original Synscapes instances (one per meta id: rider + bicycle is one instance) next to the
        harmonized ones (the rider split off), on the RGB frame, with a class legend."""
        from curate.show import check_png_path, synscapes_picture, write_picture

        check_png_path(out)
        picture = synscapes_picture(root, frame, rules=rules, alpha=_check_alpha(alpha),
                                    max_width=_check_max_width(max_width))
        written = write_picture(out, picture)
        if not quiet:
            typer.echo(written)

    @show_app.command("prune")
    def prune(
        out_dir: Path = typer.Argument(..., metavar="OUT", help="Output folder of curate convert (holding "
                                                                "{source}_{split}.json)."),
        frame: str = typer.Argument(..., metavar="FRAME", help="Frame to draw: its number for Synscapes, its city_seq_frame "
                                              "name for Cityscapes (the COCO image's \"frame\")."),
        out: Path = typer.Option(..., "--out", help=OUT_HELP),
        fractions: str = typer.Option(
            "0,0.4,0.6,0.7,0.8,0.9", "--fractions",
            help="Comma-separated removal fractions p in [0, 1), one panel each: p removes the p share of "
                 "smallest instances of every class over the whole split."),
        source: Source | None = typer.Option(
            None, "--source", help="Which converted source to read (default: the synthetic one)."),
        split: str = typer.Option("train", "--split", help="Which converted split to read "
                                                           "(OUT/{source}_{split}.json); cut-offs are per class "
                                                           "over this whole split."),
        columns: int = typer.Option(2, "--columns", help="Panels per row."),
        alpha: float | None = typer.Option(None, "--alpha", help=ALPHA_HELP),
        max_width: int = typer.Option(2000, "--max-width", help=MAX_WIDTH_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """The same frame once per removal fraction: surviving labels filled, removed ones outlined."""
        from curate.show import check_png_path, prune_picture, write_picture

        check_png_path(out)
        picture = prune_picture(out_dir, frame, fractions, source=source and source.value, split=split, columns=columns,
                                alpha=_check_alpha(alpha), max_width=_check_max_width(max_width))
        written = write_picture(out, picture)
        if not quiet:
            typer.echo(written)

    app.add_typer(show_app, name="show")
