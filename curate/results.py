"""``curate results RUNS... -o RESULTS/``: every run's parameters and evaluations in one table, and the figures.

A run is a folder ``python -m train`` wrote: ``run.json`` (its manifest's study parameters, the
schedule it really ran, its initial weights; ``train/runs.py``) and ``eval/{dataset}.json`` (COCO mask
AP and official Cityscapes AP, mean and per class; ``train/evaluate.py``). This module reads them (it
imports nothing of ``train``) and writes

- ``results.csv``: tidy, one row per run × evaluation set × metric × class, the run's parameters as columns;
- ``results.md``: one row per run (parameters, mean AP per evaluation set), then per-class tables;
- PNG figures chosen from what varies across the runs: AP per class against the removal fraction
  (fig. 4), AP against the real share (fig. 5), AP against the synthetic frames added to the real
  ones (table 3), AP against LR per momentum (fig. 6); ``reference="study"`` draws the study's
  published numbers (``curate/study_reference.json``) beside ours.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import CurateError
from curate.fileio import atomic_path, check_output_folder, write_bytes_atomic
from curate.labels import CLASS_NAMES

RUN_RECORD = "run.json"
REFERENCE_FILE = Path(__file__).with_name("study_reference.json")
#: The metrics of an evaluation file, as ``metric`` values of the table: (family, statistic).
METRICS = (("coco", "AP"), ("coco", "AP50"), ("cityscapes", "AP"), ("cityscapes", "AP50"))
METRIC_LABELS = {"coco_AP": "COCO mask AP (.50:.95)", "coco_AP50": "COCO mask AP50",
                 "cityscapes_AP": "Cityscapes AP (official .50:.95)", "cityscapes_AP50": "Cityscapes AP50 (official)"}
CLASSES = ("mean", *CLASS_NAMES)
#: Parameter columns of results.csv, in order (the run's own, then its manifest's, then its schedule's).
PARAMETERS = (
    "run", "path", "status", "manifest", "real_source", "synthetic_source", "real_frames", "synthetic_frames",
    "frames", "frames_trained", "real_share", "removal_fraction", "removal_spec", "manifest_seed", "sweep",
    "sweep_variable", "sweep_value", "budget_iterations", "iterations", "epochs", "batch", "lr", "momentum",
    "effective_lr", "steps", "init", "init_run", "preset", "seed", "eval_iteration",
)
COLUMNS = (*PARAMETERS, "eval_set", "metric", "class", "value")
#: Evaluation files are named after the data set Detectron2 registered: ``{prefix}_{source}_{split}``.
DATASET_PREFIX = "synmix_"


# ---------------------------------------------------------------------------------------------
# a manifest's study parameters (also what train/runs.py records in run.json)


def manifest_parameters(data: dict, path: Path | None = None) -> dict:
    """What a manifest says about the study's variables: frames of each kind, the real share, the
    removal fraction of the synthetic source, the seed, the sweep point and the budget."""
    train = data["train"]
    by_kind = {entry.get("kind"): (name, entry) for name, entry in data.get("sources", {}).items()}
    real_name, _ = by_kind.get("real", (None, None))
    synthetic_name, synthetic = by_kind.get("synthetic", (None, None))
    removal, spec = None, None
    if synthetic is not None:
        pruning = synthetic.get("pruning", {})
        spec = pruning.get("spec", "none") if pruning.get("applied") else "none"
        values = set(pruning.get("fractions", {}).values()) if pruning.get("applied") else {0.0}
        removal = float(values.pop()) if len(values) == 1 else None  # per-class fractions: no single number
    frames = int(train["frames"])
    sweep = data.get("sweep") or {}
    budget = data.get("budget") or {}
    return {
        "manifest": Path(path).stem if path is not None else None,
        "real_source": real_name,
        "synthetic_source": synthetic_name,
        "real_frames": int(train.get("real_frames", 0)),
        "synthetic_frames": int(train.get("synthetic_frames", 0)),
        "frames": frames,
        "frames_trained": int(train.get("frames_trained", frames)),
        "real_share": round(train.get("real_frames", 0) / frames, 6) if frames else None,
        "removal_fraction": removal,
        "removal_spec": spec,
        "manifest_seed": data.get("seed"),
        "sweep": sweep.get("sweep"),
        "sweep_variable": sweep.get("variable"),
        "sweep_value": sweep.get("value"),
        "budget_iterations": budget.get("iterations"),
    }


# ---------------------------------------------------------------------------------------------
# reading runs


@dataclass
class RunResult:
    path: Path
    name: str
    params: dict
    #: evaluation set → the summary of its eval file (``{"coco": {...} | None, "cityscapes": ...}``)
    evals: dict[str, dict] = field(default_factory=dict)


def _is_run(folder: Path) -> bool:
    return (folder / RUN_RECORD).is_file() or any((folder / "eval").glob("*.json"))


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders: each path that is one, else the run folders below it (sorted, each once)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise CurateError(path, "run folder not found")
        if _is_run(path):
            found.append(path)
            continue
        below = []
        for root, dirs, _ in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("eval", "inference", "submitit") and not d.startswith("."))
            if _is_run(Path(root)):
                below.append(Path(root))
                dirs[:] = []
        if not below:
            raise CurateError(path, "no run here: a run folder holds run.json or eval/*.json (python -m train)")
        found += below
    unique = list(dict.fromkeys(os.path.abspath(p) for p in found))
    return [Path(p) for p in unique]


def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise CurateError(path, f"cannot read ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise CurateError(path, "not a JSON object")
    return data


def load_run(folder: Path, name: str | None = None) -> RunResult:
    record = _read_json(folder / RUN_RECORD) if (folder / RUN_RECORD).is_file() else {}
    if record and record.get("schema") != "synmix.run":
        raise CurateError(folder / RUN_RECORD, "not a synmix run record (schema synmix.run)")
    params: dict = dict.fromkeys(PARAMETERS)
    params.update(run=name or folder.name, path=str(folder), status=record.get("status", "unknown"))
    manifest = record.get("manifest") or {}
    for key in PARAMETERS:
        if key in manifest and key not in ("run", "path", "status"):
            params[key] = manifest[key]
    if manifest.get("path"):
        params["manifest"] = Path(manifest["path"]).stem
    schedule = record.get("schedule") or {}
    params.update(iterations=schedule.get("iterations"), epochs=schedule.get("epochs"), batch=schedule.get("batch"),
                  lr=schedule.get("base_lr"), momentum=schedule.get("momentum"),
                  effective_lr=schedule.get("effective_lr"),
                  steps=";".join(str(s) for s in schedule["steps"]) if schedule.get("steps") is not None else None)
    init = record.get("init") or {}
    params.update(init=init.get("kind"), init_run=Path(init["run"]).name if init.get("run") else None,
                  preset=record.get("preset"), seed=record.get("seed"))
    result = RunResult(folder, params["run"], params)
    for path in sorted((folder / "eval").glob("*.json")):
        data = _read_json(path)
        dataset = str(data.get("dataset", path.stem))
        eval_set = dataset[len(DATASET_PREFIX):] if dataset.startswith(DATASET_PREFIX) else dataset
        result.evals[eval_set] = data
        if data.get("iteration") is not None:
            params["eval_iteration"] = data["iteration"]
    return result


def load_runs(paths: list[Path]) -> list[RunResult]:
    folders = find_runs(paths)
    names = [f.name for f in folders]
    runs = []
    for folder in folders:
        # two runs of the same folder name (from different sweeps) are told apart by their parent
        name = folder.name if names.count(folder.name) == 1 else f"{folder.parent.name}/{folder.name}"
        runs.append(load_run(folder, name))
    return runs


def score(run: RunResult, eval_set: str, metric: str, cls: str = "mean"):
    """One number of a run's evaluation (None: not computed, or the class is absent)."""
    family, stat = metric.split("_")
    summary = (run.evals.get(eval_set) or {}).get(family)
    if not summary:
        return None
    return summary.get(stat) if cls == "mean" else (summary.get("per_class", {}).get(cls) or {}).get(stat)


def tidy_rows(runs: list[RunResult]) -> list[dict]:
    """results.csv: one row per run × evaluation set × metric × class."""
    rows = []
    for run in runs:
        for eval_set in sorted(run.evals):
            for family, stat in METRICS:
                if not (run.evals[eval_set] or {}).get(family):
                    continue  # not computed for this set (no Cityscapes-style ground truth, no detection)
                for cls in CLASSES:
                    rows.append({**run.params, "eval_set": eval_set, "metric": f"{family}_{stat}", "class": cls,
                                 "value": score(run, eval_set, f"{family}_{stat}", cls)})
    return rows


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in COLUMNS])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# which figures: what varies across the runs


@dataclass
class FigureSpec:
    kind: str  # removal, ratio, additive, grid
    file: str
    x: str
    title: str
    runs: list[RunResult]
    #: what stays the same across these runs
    fixed: tuple[str, ...] = ()


#: For each figure: the variable on its x axis and the parameters that must agree across its runs.
FIGURES = {
    "removal": ("removal_fraction", ("real_frames", "synthetic_frames", "manifest_seed", "lr", "momentum", "init",
                                     "preset", "batch", "real_source", "synthetic_source"),
                "ap_vs_removal.png", "AP per class against the removal fraction (study fig. 4)"),
    "ratio": ("real_share", ("frames", "removal_fraction", "manifest_seed", "lr", "momentum", "init", "preset",
                             "batch", "real_source", "synthetic_source"),
              "ap_vs_real_share.png", "AP against the share of real frames (study fig. 5)"),
    "additive": ("synthetic_frames", ("real_frames", "removal_fraction", "manifest_seed", "lr", "momentum", "init",
                                      "preset", "batch", "real_source", "synthetic_source"),
                 "ap_vs_synthetic.png", "AP against synthetic frames added to the real ones (study table 3)"),
    "grid": ("lr", ("manifest", "iterations", "init", "init_run", "preset", "batch", "seed"),
             "lr_momentum_grid.png", "AP against learning rate, per momentum (study fig. 6)"),
}


def _x_points(kind: str, runs: list[RunResult]) -> set:
    if kind == "grid":
        return {(r.params["lr"], r.params["momentum"]) for r in runs}
    return {r.params[FIGURES[kind][0]] for r in runs}


#: The sweep of ``curate manifest --sweep`` whose manifests make each figure (recorded in them).
SWEEP_OF = {"removal": "prune", "ratio": "ratio", "additive": "additive"}


def _epochs_key(run: RunResult) -> str:
    epochs = run.params.get("epochs")
    return f"{epochs:.0f}" if isinstance(epochs, (int, float)) else ""


def choose_figures(runs: list[RunResult]) -> list[FigureSpec]:
    """Per figure kind, the largest group of runs that agree on everything but its variable and have
    at least two values of it (none: no figure of that kind). Runs of the matching ``--sweep`` are
    taken alone when they are enough for the figure; epochs must agree too, except in the additive
    figure, where each epoch count is its own line (table 3)."""
    figures = []
    evaluated = [r for r in runs if r.evals]
    for kind, (x, fixed, file, title) in FIGURES.items():
        candidates = [r for r in evaluated if r.params.get(x) is not None]
        swept = [r for r in candidates if r.params.get("sweep") == SWEEP_OF.get(kind)]
        if len(_x_points(kind, swept)) >= 2:
            candidates = swept
        groups: dict[tuple, list[RunResult]] = {}
        for run in candidates:
            key = tuple(_cell(run.params.get(k)) for k in fixed) + ((_epochs_key(run),) if kind != "additive" else ())
            groups.setdefault(key, []).append(run)
        best = max(sorted(groups.items()), key=lambda item: len(_x_points(kind, item[1])), default=None)
        if best is not None and len(_x_points(kind, best[1])) >= 2:
            figures.append(FigureSpec(kind, file, x, title, sorted(best[1], key=lambda r: _sort_key(kind, r)), fixed))
    return figures


def _sort_key(kind: str, run: RunResult):
    if kind == "grid":
        return (run.params["momentum"], run.params["lr"], run.name)
    return (run.params[FIGURES[kind][0]], run.params.get("epochs") or 0, run.name)


# ---------------------------------------------------------------------------------------------
# the study's published numbers


def load_reference(name: str | None) -> dict | None:
    if name is None:
        return None
    if name != "study":
        raise CurateError(None, f"--reference {name}: the only reference is 'study' (the paper's published numbers)")
    data = _read_json(REFERENCE_FILE)
    if data.get("schema") != "synmix.study_reference":
        raise CurateError(REFERENCE_FILE, "not synmix's study reference")
    return data


def _reference_points(reference: dict | None, kind: str, eval_set: str, metric: str) -> list[tuple[float, dict]]:
    if not reference or metric != reference.get("metric"):
        return []
    return [(entry["figures"][kind], entry) for entry in reference["values"]
            if kind in entry.get("figures", {}) and entry["eval_set"] == eval_set]


# ---------------------------------------------------------------------------------------------
# drawing


def figure_metric(runs: list[RunResult], wanted: str | None) -> str:
    """The metric the figures plot: ``wanted``, else the official Cityscapes AP when any run has it, else COCO AP."""
    if wanted is not None:
        if wanted not in METRIC_LABELS:
            raise CurateError(None, f"--metric {wanted}: expected one of {', '.join(METRIC_LABELS)}")
        return wanted
    has_cityscapes = any((e or {}).get("cityscapes") for r in runs for e in r.evals.values())
    return "cityscapes_AP" if has_cityscapes else "coco_AP"


def _eval_sets(runs: list[RunResult]) -> list[str]:
    return sorted({name for run in runs for name in run.evals})


def draw_figure(spec: FigureSpec, metric: str, path: Path, reference: dict | None = None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    eval_sets = _eval_sets(spec.runs)
    panels = eval_sets if spec.kind in ("removal", "grid") else ["all"]
    fig = Figure(figsize=(5.2 * len(panels) + (1.6 if spec.kind == "removal" else 0), 4.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if spec.kind == "removal":
            _draw_removal(ax, spec, panel, metric, reference)
        elif spec.kind == "grid":
            _draw_grid(ax, spec, panel, metric, reference)
        else:
            _draw_lines(ax, spec, eval_sets, metric, reference)
        ax.set_ylabel(f"{METRIC_LABELS[metric]}, %")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(spec.title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _draw_removal(ax, spec: FigureSpec, eval_set: str, metric: str, reference) -> None:
    xs = [100 * r.params["removal_fraction"] for r in spec.runs]
    for cls in CLASS_NAMES:
        ys = [score(r, eval_set, metric, cls) for r in spec.runs]
        if any(y is not None for y in ys):
            ax.plot(xs, [math.nan if y is None else y for y in ys], marker="o", ms=3, lw=1, label=cls)
    ys = [score(r, eval_set, metric) for r in spec.runs]
    ax.plot(xs, [math.nan if y is None else y for y in ys], marker="o", color="black", lw=2.2, label="mean")
    for x, entry in _reference_points(reference, "removal", eval_set, metric):
        ax.plot([100 * x], [entry["value"]], marker="*", ms=12, color="black", ls="none",
                label=f"study, mean ({entry['where']})")
    ax.set_xlabel("removal fraction per class, % (smallest instances first)")
    ax.set_title(eval_set, fontsize=9)


def _draw_lines(ax, spec: FigureSpec, eval_sets: list[str], metric: str, reference) -> None:
    """One colour per evaluation set; in the additive figure one line style per epoch count."""
    percent = spec.kind == "ratio"
    scale = 100 if percent else 1
    epochs = sorted({_epochs_label(run) for run in spec.runs})
    styles = dict(zip(epochs, ("-", "--", ":", "-.") * len(epochs)))
    for index, eval_set in enumerate(eval_sets):
        colour = f"C{index}"
        series: dict[str, list] = {}
        for run in spec.runs:
            series.setdefault(_epochs_label(run), []).append(run)
        for label, runs in series.items():
            xs = [run.params[spec.x] * scale for run in runs]
            ys = [score(run, eval_set, metric) for run in runs]
            ax.plot(xs, [math.nan if y is None else y for y in ys], marker="o", color=colour,
                    ls="-" if percent else styles[label], label=eval_set if percent else f"{eval_set}, {label}")
        points = _reference_points(reference, spec.kind, eval_set, metric)
        for i, (x, entry) in enumerate(points):
            ax.plot([x * scale], [entry["value"]], marker="*", ms=12, ls="none", color=colour,
                    markeredgecolor="black", label=f"study, {eval_set}" if i == 0 else "_nolegend_")
    ax.set_xlabel("real frames, % of the training set" if percent else "synthetic frames added to the real ones")
    fixed = spec.runs[0].params
    ax.set_title(f"{fixed['frames']} frames per run" if percent else f"{fixed['real_frames']} real frames", fontsize=9)


def _epochs_label(run: RunResult) -> str:
    epochs = run.params.get("epochs")
    return f"{epochs:.0f} epochs" if isinstance(epochs, (int, float)) else "epochs ?"


def _draw_grid(ax, spec: FigureSpec, eval_set: str, metric: str, reference) -> None:
    by_momentum: dict[float, list[RunResult]] = {}
    for run in spec.runs:
        by_momentum.setdefault(run.params["momentum"], []).append(run)
    for momentum, runs in sorted(by_momentum.items()):
        xs = [r.params["lr"] for r in runs]
        ys = [score(r, eval_set, metric) for r in runs]
        ax.plot(xs, [math.nan if y is None else y for y in ys], marker="o", label=f"momentum {momentum:g}")
    for x, entry in _reference_points(reference, "grid", eval_set, metric):
        momentum = entry.get("momentum", 0.0)
        ax.plot([x], [entry["value"]], marker="*" if momentum else "X", ms=12, ls="none", color="black",
                label=f"study: LR {x:g}, momentum {momentum:g} ({entry['where']})")
    ax.set_xscale("log")
    ticks = sorted({r.params["lr"] for r in spec.runs} | {x for x, _ in _reference_points(reference, "grid", eval_set,
                                                                                            metric)})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("learning rate (log); effective LR = lr / (1 - momentum)")
    ax.set_title(f"{eval_set}, fine-tuned on {spec.runs[0].params.get('manifest')}", fontsize=9)


# ---------------------------------------------------------------------------------------------
# the markdown table


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if digits is not None else f"{value:g}"
    return str(value)


def runs_table(runs: list[RunResult], metric_order: tuple[str, ...] = ("cityscapes_AP", "coco_AP")) -> str:
    """One row per run: its parameters and the mean AP of every evaluation set."""
    eval_sets = _eval_sets(runs)
    head = ["run", "real", "synthetic", "removal", "iterations", "epochs", "LR", "momentum", "init"]
    metrics = [m for m in metric_order if any(score(r, e, m) is not None for r in runs for e in eval_sets)]
    head += [f"{e} {METRIC_LABELS[m].split(' (')[0]}" for e in eval_sets for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        p = run.params
        init = p["init"] if not p.get("init_run") else f"run {p['init_run']}"
        cells = [run.name, _num(p["real_frames"]), _num(p["synthetic_frames"]),
                 "–" if p["removal_fraction"] is None else f"{100 * p['removal_fraction']:g} %",
                 _num(p["iterations"]), _num(p["epochs"]), _num(p["lr"], None), _num(p["momentum"], None), init or "–"]
        cells += [_num(score(run, e, m)) for e in eval_sets for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(runs: list[RunResult], eval_set: str, metric: str) -> str:
    head = ["run", *CLASSES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        if eval_set in run.evals:
            lines.append("| " + " | ".join([run.name, *(_num(score(run, eval_set, metric, c)) for c in CLASSES)]) + " |")
    return "\n".join(lines)


def markdown(runs: list[RunResult], figures: list[tuple[FigureSpec, Path]], metric: str, sources: list[Path],
             reference: dict | None) -> str:
    parts = [
        "# Results",
        "",
        f"{len(runs)} runs from {', '.join(str(s) for s in sources)}. Mask AP in %: Cityscapes AP is the official "
        "cityscapesScripts instance evaluator (IoU .50:.95, ground truth < 100 px and groups ignored), COCO AP is "
        "pycocotools COCOeval; 'mean' over the classes each scores, '–' not computed or class absent. Every number "
        "with its parameters: results.csv.",
        "",
        "## Runs",
        "",
        runs_table(runs),
    ]
    for eval_set in _eval_sets(runs):
        parts += ["", f"## {eval_set}: {METRIC_LABELS[metric]} per class", "", per_class_table(runs, eval_set, metric)]
    if figures:
        parts += ["", "## Figures", ""]
        for spec, path in figures:
            values = ", ".join(_cell(v) for v in sorted(_x_points(spec.kind, spec.runs)))
            parts.append(f"- [{path.name}]({path.name}): {spec.title}; {METRIC_LABELS[metric]}; runs "
                         f"{', '.join(r.name for r in spec.runs)} ({spec.x}: {values})")
    if reference:
        parts += ["", "## The study's published numbers", "", f"Source: {reference['source']}.", "",
                  "| approach | where | evaluation set | Cityscapes AP |", "|---|---|---|---|"]
        parts += [f"| {e['approach']} | {e['where']} | {e['eval_set']} | {e['value']:.1f} |" for e in reference["values"]]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# the command


@dataclass
class Results:
    runs: list[RunResult]
    csv: Path
    markdown: Path
    figures: list[Path]
    rows: int
    table: str


def collect(paths: list[Path], out: Path, reference: str | None = None, metric: str | None = None) -> Results:
    """Read every run below ``paths``; write results.csv, results.md and the figures into ``out``."""
    runs = load_runs(paths)
    ref = load_reference(reference)
    chosen = figure_metric(runs, metric)
    out = check_output_folder(Path(out), "results folder")
    rows = tidy_rows(runs)
    csv_path = out / "results.csv"
    write_bytes_atomic(csv_path, csv_text(rows).encode())
    figures = [(spec, draw_figure(spec, chosen, out / spec.file, ref)) for spec in choose_figures(runs)]
    md_path = out / "results.md"
    write_bytes_atomic(md_path, markdown(runs, figures, chosen, list(paths), ref).encode())
    return Results(runs, csv_path, md_path, [p for _, p in figures], len(rows), runs_table(runs))
