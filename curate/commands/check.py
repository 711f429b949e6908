"""``curate check SOURCE ROOT``: audit a data set (one sub-command per registered source)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

EXIT_HELP = "Exit status: 0 clean, 1 findings (errors or notes), 2 the input cannot be read at all."


def _command_for(source):
    Split = Enum(f"{source.name.capitalize()}CheckSplit", {n: n for n in (*source.splits, "all")}, type=str)

    def command(
        root: Path = typer.Argument(..., help=source.root_help),
        split: Split = typer.Option("all", "--split", help=f"Split to check ({' or '.join(source.splits)}); "
                                                           "all = every labelled split."),
        split_file: Path | None = typer.Option(
            None, "--split-file", hidden=source.frame_key_type is not int,
            help="Text file of frame numbers (one per line) to check instead of the default split rule."),
        json_path: Path | None = typer.Option(None, "--json", help="Also write every finding to this JSON file."),
        workers: int | None = typer.Option(None, "--workers", "-j",
                                              help="Parallel worker processes (default: all cores)."),
        examples: int = typer.Option(5, "--examples", min=0, help="Examples listed per kind of finding."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the verdict line."),
    ) -> None:
        from curate.check import format_report, run_check
        from curate.convert.driver import default_workers
        from curate.errors import CurateError
        from curate.fileio import write_json_atomic

        if json_path is not None:
            from curate.fileio import check_output_file

            check_output_file(json_path, "--json file")  # before the audit, not after it
        splits = list(source.splits) if split.value == "all" and split_file is None else [split.value]
        n_workers = default_workers() if workers is None else workers
        if n_workers < 1:
            raise CurateError(None, f"--workers must be at least 1, not {n_workers}")
        result = run_check(source.name, root, splits, split_file, n_workers, examples,
                           progress=False if quiet else None)
        if json_path is not None:
            write_json_atomic(json_path, result.to_json(), indent=1)
        report = format_report(result)
        typer.echo(report.splitlines()[-1] if quiet else report)
        if not result.clean:
            sys.exit(1)

    command.__doc__ = (f"Audit a {source.title} tree without converting it: every finding with a count and "
                       f"examples. {EXIT_HELP}")
    command.__annotations__["split"] = Split  # a local class: the string annotation cannot be evaluated
    return command


PER_SOURCE = True


def register(app: typer.Typer, full: bool = True) -> None:
    from curate import sources

    check_app = typer.Typer(
        help="Audit a data set before converting it: missing or stray files, size and bit-depth mismatches, "
             "unknown ids, meta vs pixel classes, duplicate frames … " + EXIT_HELP,
        no_args_is_help=True,
    )
    for source in sources.all_sources() if full else ():
        check_app.command(source.name)(_command_for(source))
    app.add_typer(check_app, name="check")
