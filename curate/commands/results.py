"""``curate results RUNS... -o RESULTS/``: every run's parameters and evaluations as a table and figures."""

from __future__ import annotations

from pathlib import Path

import typer

RUNS_HELP = ("Run folders of python -m train (each with run.json and eval/*.json), or folders holding them "
             "(searched below).")


def register(app: typer.Typer) -> None:
    @app.command()
    def results(
        runs: list[Path] = typer.Argument(..., help=RUNS_HELP),
        output: Path = typer.Option(Path("results"), "--output", "-o", help="Folder for results.csv, results.md and "
                                    "the figures (PNG)."),
        reference: str = typer.Option(None, "--reference", help="'study': draw the study's published numbers "
                                      "(curate/study_reference.json, docs/method.md §8) beside ours."),
        metric: str = typer.Option(None, "--metric", help="Metric of the figures: cityscapes_AP (default when "
                                   "computed), coco_AP, cityscapes_AP50 or coco_AP50."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing."),
    ) -> None:
        """Collect runs into results.csv (one row per run × evaluation set × metric × class), results.md and
        figures: AP against removal fraction, real share, synthetic frames added, LR × momentum — whichever vary."""
        from curate.results import collect

        result = collect(runs, output, reference=reference, metric=metric)
        if quiet:
            return
        typer.echo(result.table)
        typer.echo(f"\n{len(result.runs)} runs, {result.rows} rows → {result.csv}; table {result.markdown}")
        for path in result.figures:
            typer.echo(f"figure: {path}")
