"""``curate demo``: the whole method on procedural sample sets, end to end, with a summary.

sample → convert (Synscapes with ``--gtfine``, Cityscapes, a BDD100K val set) → stats → manifest (pruned mix) →
a short CPU PointRend training (``python -m train --preset cpu-tiny``, a subprocess) → evaluation →
``curate results`` (the run's parameters and AP as the study's table, results.csv).
Every step calls the same library functions as the commands a user runs by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer

from curate.errors import CurateError

#: Sizes that keep the demo under 10 minutes on 2 cores while every step has real work to do.
SYNSCAPES_FRAMES, SYNSCAPES_SIZE = 30, (720, 360)
CITYSCAPES_TRAIN, CITYSCAPES_VAL, CITYSCAPES_SIZE = 16, 6, (768, 384)
BDD100K_VAL, BDD100K_SIZE = 4, (640, 360)
TRAIN_ITERATIONS = 150


@dataclass
class DemoSummary:
    out: Path
    frames: dict[str, int] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    removed_per_class: dict[str, int] = field(default_factory=dict)
    manifest: Path | None = None
    figures: list[Path] = field(default_factory=list)
    eval_files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: curate results over the demo's runs: its table and files
    results_table: str | None = None
    results_files: list[Path] = field(default_factory=list)


def _step(number: int, total: int, text: str) -> float:
    typer.secho(f"\n[{number}/{total}] {text}", bold=True)
    return time.perf_counter()


def detectron2_available() -> bool:
    try:
        import detectron2  # noqa: F401
        from detectron2.projects import point_rend  # noqa: F401
    except ImportError:
        return False
    return True


def train_command(manifest: Path, run_dir: Path, iterations: int) -> list[str]:
    """The documented ``python -m train`` call for a short CPU run from random init."""
    return [sys.executable, "-m", "train", str(manifest), "--out", str(run_dir), "--preset", "cpu-tiny",
            "--device", "cpu", "--iterations", str(iterations), "--weights", "none"]


def run_demo(out: Path, seed: int = 0, train: bool = True, iterations: int = TRAIN_ITERATIONS,
             quiet: bool = False) -> DemoSummary:
    """Every step in turn; ``quiet``: no step output and no progress, only the summary (training
    logs go to RUN/train.log)."""
    from curate.convert import convert
    from curate.manifest import ManifestRequest, make_manifests
    from curate.sample import write_bdd100k_sample, write_cityscapes_sample, write_synscapes_sample
    from curate.stats import format_table, run_stats

    say = (lambda *args, **kwargs: None) if quiet else typer.echo
    progress = False if quiet else None

    def step(number: int, total: int, text: str) -> float:
        return time.perf_counter() if quiet else _step(number, total, text)

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CurateError(out, "exists and is not a folder")
    summary = DemoSummary(out=out)
    syn_root, cs_root, bdd_root = out / "Synscapes", out / "cityscapes", out / "bdd100k"
    conv = out / "converted"
    steps = 6 if train else 5

    t = step(1, steps, f"procedural sample sets → {syn_root}, {cs_root}, {bdd_root}")
    syn_truth = write_synscapes_sample(syn_root, frames=SYNSCAPES_FRAMES, seed=seed, size=SYNSCAPES_SIZE, progress=progress)
    cs_truth = write_cityscapes_sample(cs_root, CITYSCAPES_TRAIN, "train", seed, size=CITYSCAPES_SIZE, progress=progress)
    write_cityscapes_sample(cs_root, CITYSCAPES_VAL, "val", seed + 1, size=CITYSCAPES_SIZE, progress=progress)
    bdd_truth = write_bdd100k_sample(bdd_root, BDD100K_VAL, "val", seed + 2, size=BDD100K_SIZE, progress=progress)
    summary.seconds["sample"] = time.perf_counter() - t

    t = step(2, steps, f"curate convert (Synscapes harmonized, with --gtfine; Cityscapes; BDD100K val) → {conv}")
    # the sample truths name the source whose layout they wrote
    for source, root, gtfine, splits in ((syn_truth.layout, syn_root, True, ("train", "val")),
                                         (cs_truth.layout, cs_root, False, ("train", "val")),
                                         (bdd_truth.layout, bdd_root, False, ("val",))):
        for split in splits:
            result = convert(source, root, conv, split=split, gtfine=gtfine, progress=progress)
            report = result.report
            summary.frames[f"{source}_{split}"] = report["frames"]["converted"]
            summary.instances[f"{source}_{split}"] = report["annotations"]
            rider = report.get("rule_counts", {}).get("rider-split")
            extra = f", {rider['riders_created']} riders split off" if rider else ""
            say(f"  {result.coco_path.name}: {report['frames']['converted']} frames, "
                       f"{report['annotations']} annotations{extra}")
    summary.seconds["convert"] = time.perf_counter() - t

    t = step(3, steps, f"curate stats {conv}")
    stats = run_stats(conv, progress=progress)
    say(format_table(stats.summary))
    summary.figures = list(stats.figures)
    summary.seconds["stats"] = time.perf_counter() - t

    t = step(4, steps, "curate manifest: all real + all synthetic frames, synthetic pruned 40 % per class; "
                        "every *_val set evaluates (BDD100K: another city and camera, never trained on)")
    manifest_path = make_manifests(
        ManifestRequest(out=conv, output=out / "manifests" / "mix.json", real="all", synthetic="all", seed=seed),
        command=f"curate manifest {conv} --real all --synthetic all --seed {seed} -o {out / 'manifests' / 'mix.json'}",
    )[0]
    summary.manifest = manifest_path
    manifest = json.loads(manifest_path.read_text())
    syn = next(entry for entry in manifest["sources"].values() if entry["kind"] == "synthetic")
    before, after = syn["instances_before"], syn["instances_after"]
    summary.removed_per_class = {name: before[name] - after.get(name, 0) for name in before}
    summary.seconds["manifest"] = time.perf_counter() - t

    t = step(5, steps, "curate show: the rider split and the pruning, as pictures")
    summary.figures += write_pictures(syn_root, conv, out / "show", syn_truth)
    for path in summary.figures[-2:]:
        say(f"  {path}")
    summary.seconds["show"] = time.perf_counter() - t

    if train:
        t = step(6, steps, f"python -m train: {iterations} CPU iterations of PointRend (small backbone), then evaluation")
        if not detectron2_available():
            say("  Detectron2 is not installed (./install.sh installs it): training skipped.")
        else:
            run_dir = out / "runs" / "demo"
            command = train_command(manifest_path, run_dir, iterations)
            say("  $ " + " ".join(command))
            env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
            if quiet:
                run_dir.mkdir(parents=True, exist_ok=True)
                with open(run_dir / "train.log", "w") as log:
                    subprocess.run(command, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
            else:
                subprocess.run(command, check=True, env=env)
            summary.eval_files = sorted((run_dir / "eval").glob("*.json"))
            collect_results(out / "runs", out / "results", summary, say)
        summary.seconds["train"] = time.perf_counter() - t

    print_summary(summary)
    return summary


def collect_results(runs: Path, folder: Path, summary: DemoSummary, say=typer.echo) -> None:
    """``curate results RUNS -o RESULTS``: every run's parameters and AP in one table (results.csv, results.md)."""
    from curate.results import collect

    say(f"  $ curate results {runs} -o {folder}")
    result = collect([runs], folder)
    summary.results_table = result.table
    summary.results_files = [result.csv, result.markdown, *result.figures]


def busiest_rider_frame(truth) -> int:
    """The train frame with the most riders split off (ties: the lowest number)."""
    from curate.sources.synscapes import DEFAULT_SPLITS

    train = [n for n in truth.frames if n in DEFAULT_SPLITS["train"]]
    return min(train, key=lambda n: (-len(truth.frames[n].riders), n))


def write_pictures(syn_root: Path, conv: Path, folder: Path, truth) -> list[Path]:
    from curate.show import prune_picture, synscapes_picture, write_picture

    frame = busiest_rider_frame(truth)
    return [
        write_picture(folder / "rider-split.png", synscapes_picture(syn_root, frame)),
        write_picture(folder / "prune.png", prune_picture(conv, frame, split="train")),
    ]


def print_summary(summary: DemoSummary) -> None:
    typer.secho("\nsynmix demo summary", bold=True)
    for key in sorted(summary.frames):
        typer.echo(f"  {key:<18} {summary.frames[key]:>4} frames  {summary.instances[key]:>6} annotations")
    removed = ", ".join(f"{name} {n}" for name, n in summary.removed_per_class.items() if n)
    typer.echo(f"  removed by pruning (synthetic, 40 % per class): {removed or 'none'}")
    typer.echo(f"  manifest: {summary.manifest}")
    for path in summary.figures:
        if path.name == "sizes.png":
            typer.echo(f"  size histograms: {path} (+ size_<class>.png beside it)")
        elif path.parent.name == "show":
            typer.echo(f"  picture: {path}")
    for path in summary.eval_files:
        typer.echo(f"  evaluation: {path}")
    for path in summary.results_files:
        typer.echo(f"  results: {path}")
    for path in summary.eval_files:
        _print_eval(path)
    if summary.results_table:
        typer.echo("\ncurate results (Cityscapes AP: official evaluator; COCO mask AP: pycocotools; %)")
        typer.echo(summary.results_table)
    total = sum(summary.seconds.values())
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items())
    typer.echo(f"  wall time: {total:.0f} s ({steps})")


def _print_eval(path: Path) -> None:
    try:
        from train.evaluate import format_table as format_ap_table
        from train.evaluate import load_results
    except ImportError:
        return
    result = load_results(path)
    typer.echo(format_ap_table(path.stem, result.get("summary", result)))


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for everything the demo writes."),
        seed: int = typer.Option(0, "--seed", help="Seed of the procedural sample sets and the manifest."),
        train: bool = typer.Option(True, "--train/--no-train",
                                   help="Run the short CPU PointRend training + evaluation (needs Detectron2)."),
        iterations: int = typer.Option(TRAIN_ITERATIONS, "--iterations", min=1,
                                       help="Training iterations of the CPU run."),
        quiet: bool = typer.Option(False, "--quiet", "-q",
                                   help="Print only the final summary (no step output, no progress; training "
                                        "logs go to RUN/train.log)."),
    ) -> None:
        """Run the whole method on generated sample sets (sample → convert → stats → manifest → train →
        evaluate) and print a summary."""
        run_demo(out, seed=seed, train=train, iterations=iterations, quiet=quiet)
