"""Time ``curate stats`` on a Synscapes-sized COCO file (1.2 M instances, all 25k frames' worth).

    .venv/bin/python benchmarks/stats_bench.py [--instances 1200000] [--real 54060] [--keep DIR]

Writes ``synscapes_train.json`` (the given number of annotations, ~48 per 1440×720 frame, RLE
strings as long as real ones of that size) and a Cityscapes-sized ``cityscapes_train.json`` in the
layout of ``curate convert``, then times, in the same run:

- ``run_stats`` (Parquet, summary, thresholds, figures) — the figure the issue asks for (< 10 s);
- the parse alone (``json.load``) and a naive per-instance Python loop over the parsed dicts
  building the same rows (the baseline a straightforward implementation would be).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, LABEL_ID, coco_categories  # noqa: E402

INSTANCES_PER_FRAME = 48
RLE_ALPHABET = "".join(chr(c) for c in range(48, 112))  # pycocotools' compressed-RLE characters


def _rle_pool(rng, size: int = 1 << 20) -> str:
    return "".join(rng.choice(list(RLE_ALPHABET), size))


def write_coco(path: Path, source: str, n: int, rng, size=(1440, 720), mean_log_area=6.0, image_root: str | None = None) -> int:
    """A one-line COCO file like convert's, ``n`` annotations; returns the file size. ``image_root``:
    its ``info.image_root`` (default ``/data/SOURCE``, a folder that need not exist)."""
    width, height = size
    frames = max(1, math.ceil(n / INSTANCES_PER_FRAME))
    image_of = np.sort(rng.integers(0, frames, n)) + 1
    category = rng.choice([COCO_ID_BY_LABEL_ID[LABEL_ID[c]] for c in CLASS_NAMES], n)
    area = np.minimum(np.exp(rng.normal(mean_log_area, 2.0, n)).astype(np.int64) + 1, width * height // 4)
    side = np.maximum(np.sqrt(area).astype(np.int64), 1)
    x = rng.integers(0, width, n) % np.maximum(width - side, 1)
    y = rng.integers(0, height, n) % np.maximum(height - side, 1)
    rle_length = np.clip(4 * side, 4, 4000)
    starts = np.cumsum(rle_length) % ((1 << 20) - 4001)
    pool = _rle_pool(rng)
    k = np.arange(n) - np.searchsorted(image_of, image_of)  # index within the frame
    synthetic = source == "synscapes"
    frame_of = (lambda i: str(i)) if synthetic else (lambda i: f'"aachen_{i:06d}_000019"')
    file_of = (lambda i: f"img/rgb/{i}.png") if synthetic else \
        (lambda i: f"leftImg8bit/train/aachen/aachen_{i:06d}_000019_leftImg8bit.png")
    head = {"info": {"description": f"{source} train converted by synmix", "version": "bench", "source": source,
                     "split": "train",
                     "image_root": image_root or "/data/" + source, "rules": []},
            "licenses": [], "categories": coco_categories()}
    extra = ',"occluded":0.25,"truncated":0.0,"depth":12.5' if synthetic else ""
    with open(path, "w") as f:
        f.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"images":[')
        f.write(",".join(f'{{"id":{i},"file_name":"{file_of(i)}","width":{width},"height":{height},'
                         f'"frame":{frame_of(i)},"source":"{source}","split":"train"}}' for i in range(1, frames + 1)))
        f.write('],"annotations":[')
        chunk = 100_000
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            f.write(("," if lo else "") + ",".join(
                f'{{"id":{image_of[i] * 10000 + k[i]},"image_id":{image_of[i]},"category_id":{category[i]},'
                f'"segmentation":{{"size":[{height},{width}],"counts":'
                f'{json.dumps(pool[starts[i]:starts[i] + rle_length[i]])}}},"area":{area[i]},'
                f'"bbox":[{x[i]}.0,{y[i]}.0,{side[i]}.0,{side[i]}.0],"iscrowd":0,'
                f'"source_instance_id":{2400000 + k[i]},"rule":"original"{extra}}}'
                for i in range(lo, hi)))
        f.write("]}\n")
    return path.stat().st_size


def naive_rows(path: Path) -> int:
    """The baseline: json.load, then one Python dict per instance, then the same Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(path, "rb") as f:
        coco = json.load(f)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    images = {im["id"]: im for im in coco["images"]}
    rows = []
    for ann in coco["annotations"]:
        image = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        rows.append({"annotation_id": ann["id"], "image_id": ann["image_id"], "frame": str(image["frame"]),
                     "class": names[ann["category_id"]], "area_px": ann["area"], "bbox_x": x, "bbox_y": y,
                     "bbox_w": w, "bbox_h": h, "iscrowd": bool(ann["iscrowd"]),
                     "touches_border": x <= 0 or y <= 0 or x + w >= image["width"] or y + h >= image["height"]})
    pq.write_table(pa.Table.from_pylist(rows), path.with_suffix(".naive.parquet"))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1_200_000, help="Synscapes annotations to generate.")
    parser.add_argument("--real", type=int, default=54_060, help="Cityscapes annotations (2,975 frames hold 54,060).")
    parser.add_argument("--keep", type=Path, default=None, help="Write into this folder and keep it.")
    parser.add_argument("--no-baseline", action="store_true", help="Skip the naive per-instance baseline.")
    args = parser.parse_args()

    from curate.coco import read_coco_columns
    from curate.stats import run_stats

    work = args.keep or Path(tempfile.mkdtemp(prefix="synmix-stats-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        syn_size = write_coco(work / "synscapes_train.json", "synscapes", args.instances, rng)
        write_coco(work / "cityscapes_train.json", "cityscapes", args.real, rng, size=(2048, 1024), mean_log_area=7.5)
        print(f"generated {args.instances:,} + {args.real:,} annotations ({syn_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")

        timings = {}  # name → (wall s, CPU s of this process, all threads)

        def timed(name, fn):
            wall, cpu = time.perf_counter(), time.process_time()
            value = fn()
            timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
            return value

        result = timed("curate stats (all outputs)", lambda: run_stats(work, progress=False))
        assert result.instances == args.instances + args.real
        timed("  of which: parse synscapes to columns", lambda: read_coco_columns(work / "synscapes_train.json"))

        def json_load():
            with open(work / "synscapes_train.json", "rb") as f:
                json.load(f)

        timed("baseline: json.load alone", json_load)
        if not args.no_baseline:
            timed("baseline: json.load + per-instance loop + Parquet",
                  lambda: naive_rows(work / "synscapes_train.json"))
        reference = timings["curate stats (all outputs)"][0]
        print(f"{'':<52} {'wall':>8} {'CPU':>8}")
        for name, (wall, cpu) in timings.items():
            print(f"{name:<52} {wall:7.2f}s {cpu:7.2f}s   {wall / reference:5.2f}× curate stats")
        verdict = "under" if reference < 10 else "OVER"
        print(f"curate stats on {result.instances:,} instances: {reference:.2f} s wall ({verdict} the 10 s target)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
