"""The ``curate`` command line: a thin Typer layer over the library functions.

Each command group lives in ``curate/commands/<name>.py`` and is mounted here. Bad input raises
:class:`curate.errors.CurateError`; ``main`` prints its one line and exits with status 2.
"""

from __future__ import annotations

import sys

import typer

from curate import __version__
from curate.errors import CurateError

app = typer.Typer(
    help="synmix: convert Synscapes to Cityscapes conventions, measure and prune instances, "
    "mix real and synthetic frames for Detectron2 PointRend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the synmix version."""
    typer.echo(__version__)


def _mount() -> None:
    from curate.commands import register_all

    register_all(app)


def main(argv: list[str] | None = None) -> None:
    _mount()
    try:
        app(args=argv, standalone_mode=True)
    except CurateError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
