"""``curate manifest OUT``: a seeded, pruned real + synthetic training mix (or a sweep of them)."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.schedule import BASELINE_BATCH, DEFAULT_EPOCHS

OUT_HELP = "Folder holding the {source}_{split}.json COCO files of curate convert."
SWEEP_HELP = ("'prune': 10 mixes of the same frames (default 2975 synthetic), removal 0 %…90 % (fig. 4). "
              "'ratio': 11 mixes of --total frames, 0 %…100 % real (fig. 5). 'additive': all real frames "
              "(or --real) + 0, 3k, 6k, 9k, 12k, 20k synthetic (table 3).")
PRUNE_HELP = ("Removal fraction per class, applied over the whole synthetic split: 0.4 (default, the "
              "study's), person=0.6,default=0.3, or OUT/stats/thresholds.json from curate stats.")
EVAL_HELP = ("Evaluation sets as source:split, e.g. cityscapes:val,synscapes:val,bdd100k:val "
             "(default: every *_val.json in OUT; 'none' for none).")
SOURCE_HELP = ("Which converted source gives the {kind} frames (OUT/{{source}}_{{split}}.json), e.g. bdd100k; "
               "default: the first {kind} source synmix knows (cityscapes for real, synscapes for synthetic).")
OUTPUT_HELP = ("Manifest file (default manifests/mix.json; the COCO file goes beside it as <name>.coco.json). "
               "With --sweep: a folder (default manifests/<sweep>/).")


def register(app: typer.Typer) -> None:
    @app.command()
    def manifest(
        out: Path = typer.Argument(..., help=OUT_HELP),
        real: str = typer.Option(None, "--real", help="Real frames (of --real-source): a count or 'all'."),
        synthetic: str = typer.Option(None, "--synthetic",
                                      help="Synthetic frames (of --synthetic-source): a count or 'all'."),
        total: int = typer.Option(None, "--total", help="Frames per mix, with --real-fraction or --sweep ratio."),
        real_fraction: float = typer.Option(None, "--real-fraction", help="Share of real frames in --total, 0..1."),
        sweep: str = typer.Option(None, "--sweep", help=SWEEP_HELP),
        budget: int = typer.Option(None, "--budget",
                                   help="Iteration budget: synthetic = budget × batch / epochs − real."),
        batch: int = typer.Option(BASELINE_BATCH, "--batch",
                                  help="Images per iteration (budget rule, schedule hint)."),
        epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", help="Epochs (budget rule, schedule hint)."),
        prune: str = typer.Option(None, "--prune", help=PRUNE_HELP),
        no_prune: bool = typer.Option(False, "--no-prune", help="Keep every instance."),
        prune_real: bool = typer.Option(False, "--prune-real", help="Prune the real source too (default: only synthetic)."),
        seed: int = typer.Option(0, "--seed", help="Sampling seed. Samples are nested: more frames keep the earlier ones."),
        real_split: str = typer.Option("train", "--real-split", help="Split of the real source to sample from."),
        synthetic_split: str = typer.Option("train", "--synthetic-split",
                                            help="Split of the synthetic source to sample from."),
        real_source: str = typer.Option(None, "--real-source", help=SOURCE_HELP.format(kind="real")),
        synthetic_source: str = typer.Option(None, "--synthetic-source", help=SOURCE_HELP.format(kind="synthetic")),
        eval_sets: str = typer.Option(None, "--eval", help=EVAL_HELP),
        fractions: str = typer.Option(None, "--fractions",
                                      help="--sweep prune: the removal fractions, e.g. 0,0.1,0.4 (default 0,0.1,…,0.9)."),
        ratios: str = typer.Option(None, "--ratios",
                                   help="--sweep ratio: the real shares, e.g. 0,0.1,1 (default 0,0.1,…,1)."),
        synthetic_steps: str = typer.Option(None, "--synthetic-steps",
                                            help="--sweep additive: synthetic frames added to the real ones "
                                                 "(default 0,3000,6000,9000,12000,20000)."),
        output: Path = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no summary."),
    ) -> None:
        """Write a training manifest and its mixed, pruned COCO file (<name>.coco.json beside it)."""
        from curate.fileio import check_output_file
        from curate.manifest import ManifestRequest, load_manifest, make_manifests, mix_coco_path
        from curate.manifest.plan import plan_mixes

        request = ManifestRequest(
            out=out, output=output, real=real, synthetic=synthetic, total=total, real_fraction=real_fraction,
            sweep=sweep, budget=budget, batch=batch, epochs=epochs, prune=prune, no_prune=no_prune,
            prune_real=prune_real, seed=seed, real_split=real_split, synthetic_split=synthetic_split,
            eval=eval_sets, real_source=real_source, synthetic_source=synthetic_source,
            fractions=fractions, ratios=ratios, synthetic_steps=synthetic_steps,
        )
        for spec in plan_mixes(request):  # an output that cannot be written is told before any reading
            check_output_file(mix_coco_path(spec.output), "mix COCO file")
            check_output_file(spec.output, "manifest")
        written = make_manifests(request, progress=False if quiet else None)
        if quiet:
            return
        for path in written:
            typer.echo(describe_manifest(load_manifest(path, verify=False).data, path))


def describe_manifest(data: dict, path: Path) -> str:
    """One line per manifest (two when a budget asked for more synthetic frames than there are)."""
    train = data["train"]
    sweep = data.get("sweep")
    point = f" [{sweep['variable']} {sweep['value']:g}]" if sweep else ""
    empty = train.get("frames_without_instances", 0)
    dropped = f" ({empty} without an instance, which Detectron2 drops)" if empty else ""
    line = (f"{path}{point}: {train['real_frames']} real + {train['synthetic_frames']} synthetic frames{dropped}, "
            f"{train['instances']} instances; hint: {data['schedule']['iterations']} iterations")
    budget = data.get("budget")
    if budget and budget["capped"]:
        line += (f"\n  budget {budget['iterations']} iterations covers {budget['frames']} frames at {budget['epochs']} "
                 f"epochs: {budget['synthetic_asked']} synthetic asked, the split has {budget['synthetic_available']}; "
                 "all of them taken")
    return line
