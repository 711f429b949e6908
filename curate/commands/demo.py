"""``curate demo``: the whole method on bundled procedural sample sets, end to end."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for everything the demo writes."),
        seed: int = typer.Option(0, "--seed", help="Seed of the procedural sample sets and the manifest."),
        train: bool = typer.Option(True, "--train/--no-train",
                                   help="Run the short CPU PointRend training + evaluation (needs Detectron2)."),
        iterations: int = typer.Option(150, "--iterations", min=1, help="Training iterations of the CPU run."),
    ) -> None:
        """Run the whole method on generated sample sets (sample → convert → stats → manifest → train →
        evaluate) and print a summary."""
        from curate.demo import run_demo

        run_demo(out, seed=seed, train=train, iterations=iterations)
