"""``curate export coco SOURCE --to DIR``: synmix output in the standard COCO layout other tools open."""

from __future__ import annotations

from pathlib import Path

import typer

SOURCE_HELP = ("A curate convert folder (each {source}_{split}.json becomes set {source}_{split}) or a manifest "
               "(its training mix becomes set 'train', each evaluation set keeps its name).")
TO_HELP = ("Output folder: annotations/instances_<set>.json and images/<set>/. Sets already there under the "
           "same names are replaced.")


def register(app: typer.Typer) -> None:
    export_app = typer.Typer(
        help="Write synmix output in a layout other tools open without glue code.",
        no_args_is_help=True,
    )

    @export_app.command("coco")
    def coco(
        source: Path = typer.Argument(..., metavar="SOURCE", help=SOURCE_HELP),
        to: Path = typer.Option(..., "--to", help=TO_HELP),
        copy: bool = typer.Option(False, "--copy", help="Copy the image files (default: relative symlinks)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    ) -> None:
        """Standard COCO layout: DIR/annotations/instances_<set>.json and DIR/images/<set>/ (symlinks or
        copies of the real images), plus DIR/synmix-export.json (what came from where, sha256s)."""
        from curate.export import export_coco

        result = export_coco(source, to, copy=copy, progress=False if quiet else None)
        if quiet:
            return
        kind = "copies" if copy else "symlinks"
        for s in result.sets:
            typer.echo(f"{s.name}: {s.images} images, {s.annotations} annotations → {s.annotation_file} "
                       f"(images: {s.image_dir}, {s.files} {kind})")

    app.add_typer(export_app, name="export")
