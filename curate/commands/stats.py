"""``curate stats OUT``: instance table, size statistics, histograms and suggested removal fractions."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def stats(
        out: Path = typer.Argument(..., help="Folder holding the {source}_{split}.json COCO files of curate convert."),
        figures: bool = typer.Option(True, "--figures/--no-figures", help="Write the size histograms (PNG)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table and no progress bars."),
    ) -> None:
        """Write OUT/instances.parquet and OUT/stats/ (summary.csv, size histograms, thresholds.json)."""
        from curate.stats import format_table, format_thresholds, run_stats

        result = run_stats(out, figures=figures, progress=False if quiet else None)
        if quiet:
            return
        typer.echo(format_table(result.summary))
        typer.echo("")
        if result.thresholds:
            typer.echo(format_thresholds(result.thresholds))
        else:
            typer.echo("no suggested thresholds: they need both cityscapes and synscapes COCO files")
        typer.echo(f"\n{result.instances} annotations → {result.parquet}; statistics in {result.summary_csv.parent}")
