"""``curate stats``: an instance table, size statistics, size histograms and suggested removal fractions.

Everything after the JSON parse is columnar (numpy / Arrow), so 1.2 M instances take seconds
(``benchmarks/stats_bench.py``). Writes into OUT:

- ``instances.parquet``: one row per annotation of every ``{source}_{split}.json``;
- ``stats/summary.csv``: per source × split × class counts, instances per frame, area deciles and
  the share under 100 px (the Cityscapes evaluation floor);
- ``stats/size_{class}.png`` and ``stats/sizes.png``: log-area histograms, one curve per source;
- ``stats/thresholds.json`` (both sources present): per class the removal fraction whose pruned
  synthetic size distribution is closest (two-sample KS distance) to the real one.

Reference set of a source for histograms and thresholds: its ``train`` split when converted, else
all its splits together.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__, sources
from curate.coco import (
    CocoColumns,
    coco_files,
    read_coco_columns,
)
from curate.errors import CurateError
from curate.fileio import atomic_path, check_output_folder, remove_stale_temp_files, write_bytes_atomic, write_png_atomic
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID
from curate.progress import progress_bar
from curate.prune import STUDY_FRACTION, removal_count
from curate.thresholds import files_entry, thresholds_document, write_thresholds

#: Cityscapes evaluation ignores ground truth under 100 pixels.
EVAL_MIN_AREA = 100
DECILES = tuple(range(10, 100, 10))
#: Removal fractions searched for the suggested thresholds: 0, 0.05, … 0.9.
THRESHOLD_GRID = tuple(round(i * 0.05, 2) for i in range(19))
REFERENCE_SPLIT = "train"
#: Histogram bins: log10(area) in steps of 0.1 from 1 px.
LOG_BIN_WIDTH = 0.1
FIGURE_DPI = 110

_COCO_IDS = np.array([COCO_ID_BY_LABEL_ID[LABEL_ID[name]] for name in CLASS_NAMES])
_CLASS_INDEX_BY_COCO = np.full(_COCO_IDS.max() + 1, -1, dtype=np.int32)
_CLASS_INDEX_BY_COCO[_COCO_IDS] = np.arange(len(CLASS_NAMES), dtype=np.int32)
_CITYSCAPES_ID_BY_COCO = np.zeros(_COCO_IDS.max() + 1, dtype=np.int8)
_CITYSCAPES_ID_BY_COCO[_COCO_IDS] = [LABEL_ID[name] for name in CLASS_NAMES]

_LABELS = pa.dictionary(pa.int32(), pa.string())  # pandas reads these columns as categoricals
#: ``instances.parquet``, one row per annotation (README "curate stats" lists the columns): name:type
#: pairs in file order. Integer columns are written in the narrowest type their values allow
#: (:func:`narrow_integers`).
INSTANCE_COLUMNS = """
    source:label split:label image_id:int64 frame:label annotation_id:int64 category_id:int8 class_name:label
    cityscapes_id:int8 area_px:int64 bbox_x:float bbox_y:float bbox_w:float bbox_h:float image_width:int32
    image_height:int32 iscrowd:bool touches_border:bool source_instance_id:int64 rule:label occluded:float
    truncated:float depth:float"""
_COLUMN_TYPES = {"label": _LABELS, "int8": pa.int8(), "int32": pa.int32(), "int64": pa.int64(), "float": pa.float64(),
                 "bool": pa.bool_()}
INSTANCE_SCHEMA = pa.schema([(name, _COLUMN_TYPES[kind]) for name, kind in
                             (column.split(":") for column in INSTANCE_COLUMNS.split())])
INSTANCES_SCHEMA_NAME = "synmix.instances"
INSTANCES_SCHEMA_VERSION = 2
_INTEGER_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64())


def narrow_integers(table: pa.Table) -> pa.Table:
    """Every integer column in the narrowest signed type that holds its values (deterministic for
    the same data)."""
    columns, fields = [], []
    for column_field, column in zip(table.schema, table.columns):
        if pa.types.is_integer(column_field.type) and len(column):
            low, high = pc.min_max(column).values()
            low, high = low.as_py() or 0, high.as_py() or 0
            for candidate in _INTEGER_TYPES:
                info = np.iinfo(candidate.to_pandas_dtype())
                if info.min <= low and high <= info.max:
                    break
            column = column.cast(candidate)
            column_field = column_field.with_type(candidate)
        columns.append(column)
        fields.append(column_field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def instances_metadata(sizes: list[SplitSizes]) -> dict[bytes, bytes]:
    """Schema metadata of instances.parquet: what wrote it and from which COCO files."""
    return {b"synmix": json.dumps({
        "schema": INSTANCES_SCHEMA_NAME,
        "schema_version": INSTANCES_SCHEMA_VERSION,
        "tool_version": __version__,
        "sources": [{"coco": s.path.name, "source": s.source, "split": s.split, "sha256": s.sha256} for s in sizes],
    }, separators=(",", ":")).encode()}


def _repeat_string(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def touches_border(bbox: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Whether each XYWH box reaches an image edge (toBbox gives whole-pixel boxes)."""
    x, y, w, h = bbox.T
    return (x <= 0) | (y <= 0) | (x + w >= width) | (y + h >= height)


def instance_table(coco: CocoColumns) -> pa.Table:
    """One row per annotation of one COCO file (schema ``INSTANCE_SCHEMA``), built column-wise."""
    n = len(coco)
    category = coco.numpy("category_id")
    class_names = pa.DictionaryArray.from_arrays(pa.array(_CLASS_INDEX_BY_COCO[category]), pa.array(list(CLASS_NAMES)))
    width = coco.image_width[coco.ann_image_index]
    height = coco.image_height[coco.ann_image_index]
    columns = {
        "source": _repeat_string(coco.source, n),
        "split": _repeat_string(coco.split, n),
        "image_id": coco.column("image_id"),
        "frame": coco.image_frame.dictionary_encode().take(pa.array(coco.ann_image_index)),
        "annotation_id": coco.column("id"),
        "category_id": pa.array(category.astype(np.int8)),
        "class_name": class_names,
        "cityscapes_id": pa.array(_CITYSCAPES_ID_BY_COCO[category]),
        "area_px": coco.column("area"),
        "bbox_x": pa.array(coco.bbox[:, 0]),
        "bbox_y": pa.array(coco.bbox[:, 1]),
        "bbox_w": pa.array(coco.bbox[:, 2]),
        "bbox_h": pa.array(coco.bbox[:, 3]),
        "image_width": pa.array(width.astype(np.int32)),
        "image_height": pa.array(height.astype(np.int32)),
        "iscrowd": pa.array(coco.numpy("iscrowd") != 0),
        "touches_border": pa.array(touches_border(coco.bbox, width, height)),
        "source_instance_id": coco.column("source_instance_id"),
        "rule": coco.column("rule").dictionary_encode(),
        "occluded": coco.column("occluded"),
        "truncated": coco.column("truncated"),
        "depth": coco.column("depth"),
    }
    return pa.Table.from_arrays([columns[f.name] for f in INSTANCE_SCHEMA], schema=INSTANCE_SCHEMA)


@dataclass
class SplitSizes:
    """Instance areas (crowd regions excluded) of one source split, grouped by class."""

    source: str
    split: str
    path: Path
    sha256: str
    frames: int
    crowd: dict[str, int]
    areas: dict[str, np.ndarray]  # class → int64 areas


def split_sizes(coco: CocoColumns) -> SplitSizes:
    category = coco.numpy("category_id")
    area = coco.numpy("area")
    crowd = coco.numpy("iscrowd") != 0
    class_index = _CLASS_INDEX_BY_COCO[category]
    # One stable sort by class instead of one full mask per class.
    order = np.argsort(class_index, kind="stable")
    bounds = np.searchsorted(class_index[order], np.arange(len(CLASS_NAMES) + 1))
    areas, crowds = {}, {}
    for i, name in enumerate(CLASS_NAMES):
        rows = order[bounds[i]:bounds[i + 1]]
        areas[name] = area[rows][~crowd[rows]]
        crowds[name] = int(crowd[rows].sum())
    return SplitSizes(coco.source, coco.split, coco.path, coco.sha256, len(coco.image_id), crowds, areas)


def summary_rows(sizes: list[SplitSizes]) -> list[dict]:
    rows = []
    for part in sizes:
        for name in CLASS_NAMES:
            area = part.areas[name]
            quantiles = np.percentile(area, DECILES) if len(area) else [math.nan] * len(DECILES)
            rows.append({
                "source": part.source,
                "split": part.split,
                "class": name,
                "cityscapes_id": LABEL_ID[name],
                "frames": part.frames,
                "instances": int(len(area)),
                "crowd": part.crowd[name],
                "instances_per_frame": round(len(area) / part.frames, 3) if part.frames else math.nan,
                **{f"p{q}": round(float(v), 1) for q, v in zip(DECILES, quantiles)},
                "share_under_100px": round(float((area < EVAL_MIN_AREA).mean()), 4) if len(area) else math.nan,
            })
    return rows


def summary_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def format_table(rows: list[dict]) -> str:
    """The summary as an aligned text table for the terminal."""
    header = [k for k in rows[0] if k != "cityscapes_id"]
    cells = [[_cell(row[k]) for k in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:g}"
    return str(value)


def reference_sizes(sizes: list[SplitSizes], source: str) -> list[SplitSizes]:
    """A source's train split if converted, else all its splits."""
    own = [s for s in sizes if s.source == source]
    train = [s for s in own if s.split == REFERENCE_SPLIT]
    return train or own


def pooled_areas(splits: list[SplitSizes], name: str) -> np.ndarray:
    parts = [s.areas[name] for s in splits]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def ks_after_removal(synthetic: np.ndarray, real: np.ndarray, fractions=THRESHOLD_GRID) -> np.ndarray:
    """Two-sample KS distance between real areas and synthetic areas with the ⌊p·n⌋ smallest removed.

    Removing the k smallest leaves ``sorted(synthetic)[k:]``, whose CDF at x is
    ``max(count(synthetic ≤ x) − k, 0) / (n − k)``: one count per distinct area serves every p.
    """
    synthetic = np.sort(np.asarray(synthetic))
    real = np.sort(np.asarray(real))
    n = len(synthetic)
    points = np.union1d(synthetic, real)
    synthetic_le = np.searchsorted(synthetic, points, side="right")
    real_cdf = np.searchsorted(real, points, side="right") / len(real)
    distances = []
    for fraction in fractions:
        k = removal_count(fraction, n)
        pruned_cdf = np.maximum(synthetic_le - k, 0) / (n - k)
        distances.append(float(np.abs(pruned_cdf - real_cdf).max()))
    return np.array(distances)


def first_of_kind(sizes: list[SplitSizes], kind: str) -> str | None:
    """The first source of ``kind``, in registry order, that ``sizes`` holds (the study's pair:
    Synscapes against Cityscapes)."""
    present = {s.source for s in sizes}
    return next((s.name for s in sources.of_kind(kind) if s.name in present), None)


def suggest_thresholds(sizes: list[SplitSizes]) -> dict | None:
    real = reference_sizes(sizes, first_of_kind(sizes, "real"))
    synthetic = reference_sizes(sizes, first_of_kind(sizes, "synthetic"))
    if not real or not synthetic:
        return None
    classes, prune = {}, {}
    for name in CLASS_NAMES:
        real_areas, synthetic_areas = pooled_areas(real, name), pooled_areas(synthetic, name)
        entry = {"real_instances": int(len(real_areas)), "synthetic_instances": int(len(synthetic_areas))}
        if len(real_areas) and len(synthetic_areas):
            distances = np.round(ks_after_removal(synthetic_areas, real_areas), 6)
            best = int(np.argmin(distances))  # first minimum: the smallest such fraction
            entry.update(fraction=THRESHOLD_GRID[best], ks=float(distances[best]),
                         ks_unpruned=float(distances[0]), ks_by_fraction=[float(d) for d in distances])
            prune[name] = THRESHOLD_GRID[best]
        else:
            entry.update(fraction=None, ks=None, ks_unpruned=None, ks_by_fraction=None,
                         note=f"no instances in one source: prune uses the study's {STUDY_FRACTION}")
            prune[name] = STUDY_FRACTION
        classes[name] = entry
    return thresholds_document(
        method="per class, the removal fraction p (remove the floor(p*n) smallest synthetic instances "
               "of the class) minimising the two-sample Kolmogorov-Smirnov distance between pruned "
               "synthetic and real instance areas; crowd regions excluded",
        grid=THRESHOLD_GRID,
        study_fraction=STUDY_FRACTION,
        real=_files_entry(real),
        synthetic=_files_entry(synthetic),
        classes=classes,
        prune=prune,
    )


def _files_entry(splits: list[SplitSizes]) -> dict:
    return files_entry(splits[0].source, [(s.path.name, s.split, s.sha256) for s in splits])


def histogram_edges(sizes: list[SplitSizes]) -> np.ndarray:
    largest = max((int(a.max()) for s in sizes for a in s.areas.values() if len(a)), default=10)
    top = math.ceil(math.log10(max(largest, 10)) / LOG_BIN_WIDTH) * LOG_BIN_WIDTH
    return 10 ** np.arange(0.0, top + LOG_BIN_WIDTH / 2, LOG_BIN_WIDTH)


#: Each source has its colour (``Source.colour``); the pruned synthetic curve is green.
PRUNED_COLOUR = "tab:green"


def _curves(sizes: list[SplitSizes], name: str, edges: np.ndarray, thresholds: dict | None):
    """(label, share per bin, style) for each source, plus the suggested pruning of the synthetic one."""
    curves = []
    pruned_source = first_of_kind(sizes, "synthetic")
    for source in sorted({s.source for s in sizes}):
        areas = pooled_areas(reference_sizes(sizes, source), name)
        if not len(areas):
            continue
        counts, _ = np.histogram(np.maximum(areas, 1), bins=edges)
        curves.append((f"{source} (n={len(areas)})", counts / len(areas), "-", sources.get(source).colour))
        suggested = thresholds and thresholds["classes"][name]["fraction"]
        if source == pruned_source and suggested:
            kept = np.sort(areas)[removal_count(suggested, len(areas)):]
            counts, _ = np.histogram(np.maximum(kept, 1), bins=edges)
            curves.append((f"{source} pruned {suggested:.0%}", counts / len(kept), ":", PRUNED_COLOUR))
    return curves


def _draw(ax, name: str, curves, edges) -> None:
    from matplotlib.ticker import NullLocator

    for label, share, style, colour in curves:
        ax.stairs(share, edges, label=label, linestyle=style, linewidth=1.4, color=colour)
    ax.axvline(EVAL_MIN_AREA, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    # Minor ticks of a log axis over 6 decades cost more to lay out than everything else.
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_title(name)
    ax.set_xlabel("instance area (px, log)")
    ax.set_ylabel("share of instances")
    if curves:
        ax.legend(fontsize="x-small", loc="upper right")


def write_figures(sizes: list[SplitSizes], stats_dir: Path, thresholds: dict | None,
                  progress: bool | None = None) -> list[Path]:
    """``sizes.png`` (all classes) and ``size_{class}.png`` for each class.

    The overview is drawn once; each class figure is the crop of its panel (tight box incl. title,
    labels and legend). Nine separate matplotlib renders would cost more than the whole table.
    """
    # Figure + Agg canvas without pyplot: no global backend state.
    import cv2
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    edges = histogram_edges(sizes)
    fig = Figure(figsize=(16, 8), dpi=FIGURE_DPI)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(2, 4)
    for ax, name in zip(axes.flat, CLASS_NAMES):
        _draw(ax, name, _curves(sizes, name, edges, thresholds), edges)
    fig.suptitle("instance sizes per class (dashed: 100 px Cityscapes evaluation floor)")
    # Fixed margins: tight_layout would draw the figure twice.
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=0.9, wspace=0.3, hspace=0.45)
    canvas.draw()
    bgr = cv2.cvtColor(np.asarray(canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)
    renderer = canvas.get_renderer()
    written = []
    for ax, name in progress_bar(list(zip(axes.flat, CLASS_NAMES)), desc="figures", progress=progress, leave=False):
        path = stats_dir / f"size_{name}.png"
        write_png_atomic(path, _crop(bgr, ax.get_tightbbox(renderer)))
        written.append(path)
    write_png_atomic(stats_dir / "sizes.png", bgr)
    written.append(stats_dir / "sizes.png")
    return written


def _crop(image: np.ndarray, box, pad: int = 4) -> np.ndarray:
    """Pixels of a display-space box (origin bottom left) from an image (origin top left)."""
    height, width = image.shape[:2]
    x0, x1 = max(int(box.x0) - pad, 0), min(math.ceil(box.x1) + pad, width)
    y0, y1 = max(height - math.ceil(box.y1) - pad, 0), min(height - int(box.y0) + pad, height)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def format_thresholds(thresholds: dict) -> str:
    lines = [f"suggested removal fractions (min KS distance to {thresholds['real']['source']}); "
             f"study: ~{STUDY_FRACTION:.0%} for all classes"]
    for name, entry in thresholds["classes"].items():
        if entry["fraction"] is None:
            lines.append(f"  {name:<11} -     ({entry['note']})")
        else:
            lines.append(f"  {name:<11} {entry['fraction']:.0%}   KS {entry['ks']:.3f} "
                         f"(unpruned {entry['ks_unpruned']:.3f})")
    return "\n".join(lines)


@dataclass
class StatsResult:
    parquet: Path
    summary_csv: Path
    summary: list[dict]
    thresholds_path: Path | None
    thresholds: dict | None
    figures: list[Path] = field(default_factory=list)
    instances: int = 0


def run_stats(out: Path, figures: bool = True, progress: bool | None = None) -> StatsResult:
    """Read every COCO file convert wrote to ``out`` and write the statistics beside them."""
    out = Path(out)
    files = coco_files(out)
    if not files:
        raise CurateError(out, f"no {{source}}_{{split}}.json COCO files of {'/'.join(sources.NAMES)} "
                               "(run curate convert first)")
    # Before the reading: an output that cannot be written is told at once.
    check_output_folder(out, "folder of instances.parquet")
    check_output_folder(out / "stats", "stats folder")
    for folder in (out, out / "stats"):
        remove_stale_temp_files(folder)  # of writes a killed run left
    tables, sizes = [], []
    for source, split, path in progress_bar(files, desc="reading COCO", progress=progress, leave=False):
        coco = read_coco_columns(path, source, split)
        tables.append(instance_table(coco))
        sizes.append(split_sizes(coco))
        del coco
    # one dictionary per column over all files, integers narrowed, provenance in the schema metadata
    table = narrow_integers(pa.concat_tables(tables).unify_dictionaries().combine_chunks())
    table = table.replace_schema_metadata(instances_metadata(sizes))
    parquet = out / "instances.parquet"
    with atomic_path(parquet) as tmp:
        pq.write_table(table, tmp)
    stats_dir = out / "stats"
    rows = summary_rows(sizes)
    write_bytes_atomic(stats_dir / "summary.csv", summary_csv(rows).encode())
    thresholds = suggest_thresholds(sizes)
    thresholds_path = write_thresholds(stats_dir, thresholds)
    written = write_figures(sizes, stats_dir, thresholds, progress) if figures else []
    return StatsResult(parquet, stats_dir / "summary.csv", rows,
                       thresholds_path, thresholds, written, table.num_rows)
