"""``curate manifest`` against ``curate stats`` on the same converted set, at 100 k and 1 M annotations.

    .venv/bin/python benchmarks/manifest_bench.py [--sizes 100000 1000000] [--repeat 2] [--repo DIR]

For each size, writes a Synscapes train file of that many annotations (~48 per 1440×720 frame, RLE
strings as long as real ones; generated like ``benchmarks/stats_bench.py``) and a Cityscapes train
file of 5.4 % as many, then runs, each in a fresh process and alternately (best of ``--repeat``):

- ``curate stats OUT --no-figures`` (reads every COCO file of OUT into columns: the reference);
- ``curate manifest OUT --real all --synthetic S`` with S = 47 % of the synthetic frames (the
  study's 2,975 + 9,800 mix at 1 M annotations): reads both files, prunes, writes the mix.

Prints wall time and peak RSS (VmHWM of the command's process) of each, their ratios, and time and
memory per annotation (linear scaling shows as equal figures at both sizes). ``--repo`` runs the
``curate`` of another checkout (e.g. an older commit exported with ``git archive``) on the same files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from stats_bench import INSTANCES_PER_FRAME, write_coco  # noqa: E402

REAL_SHARE = 54_060 / 1_000_000  # Cityscapes train's annotations per Synscapes-sized million
SYNTHETIC_SHARE = 0.47  # 9,800 of ~20,800 frames

_RUN = ("import sys, time\nfrom curate.cli import main\nstart = time.perf_counter()\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('BENCH', code, time.perf_counter() - start, hwm)\n")


def bench_fields(repo: Path, cwd: Path, code: str, *args: str, succeeded=lambda fields: True) -> list[str]:
    """Run ``code`` (with ``ARGS``) in a fresh Python process whose ``curate`` and ``train`` are those
    of ``repo``; the fields of its last ``BENCH ...`` line. Without one, or when ``succeeded(fields)``
    is false, the benchmark stops with the process's output."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
    if proc.returncode or not line or not succeeded(line[-1].split()[1:]):
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return line[-1].split()[1:]


def run_command(repo: Path, cwd: Path, *args: str) -> tuple[float, float]:
    """(wall seconds inside the command, peak RSS in MB) of ``curate ARGS`` in a fresh process."""
    _, seconds, hwm_kb = bench_fields(repo, cwd, _RUN, *args, succeeded=lambda fields: fields[0] in ("0", "None"))
    return float(seconds), int(hwm_kb) / 1024


def write_converted_set(out: Path, synthetic_annotations: int, image_roots: dict[str, str] | None = None) -> float:
    """``OUT/synscapes_train.json`` of that many annotations and ``OUT/cityscapes_train.json`` of
    ``REAL_SHARE`` as many, like convert's (seeded by the size); ``image_roots``: their
    ``info.image_root`` by source. Returns the Synscapes file's size in MB."""
    out.mkdir(parents=True, exist_ok=True)
    roots = image_roots or {}
    rng = np.random.default_rng(synthetic_annotations)
    mb = write_coco(out / "synscapes_train.json", "synscapes", synthetic_annotations, rng,
                    image_root=roots.get("synscapes")) / 1e6
    write_coco(out / "cityscapes_train.json", "cityscapes", real_annotations(synthetic_annotations), rng,
               size=(2048, 1024), mean_log_area=7.5, image_root=roots.get("cityscapes"))
    return mb


def real_annotations(synthetic_annotations: int) -> int:
    return max(1, round(synthetic_annotations * REAL_SHARE))


@contextmanager
def work_folder(keep: Path | None, prefix: str) -> Iterator[Path]:
    """``keep`` (made if needed, left in place), else a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="Synscapes annotations of each measured set (default 100000 1000000).")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each command per size (best is shown)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose curate is run (default: this one)")
    parser.add_argument("--keep", type=Path, default=None, help="write the sets into this folder and keep them")
    args = parser.parse_args()

    rows = []
    with work_folder(args.keep, "synmix-manifest-bench-") as work:
        for size in args.sizes:
            out = work / f"set-{size}"
            real = real_annotations(size)
            if not (out / "synscapes_train.json").is_file():
                started = time.perf_counter()
                mb = write_converted_set(out, size)
                print(f"generated {size:,} + {real:,} annotations ({mb:.0f} MB) in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
            synthetic = round(SYNTHETIC_SHARE * -(-size // INSTANCES_PER_FRAME))
            commands = {
                "stats": ("stats", str(out), "--no-figures", "--quiet"),
                "manifest": ("manifest", str(out), "--real", "all", "--synthetic", str(synthetic),
                             "-o", str(work / f"manifests-{size}" / "mix.json"), "--quiet"),
            }
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeat):
                for name, command in commands.items():
                    seconds, rss = run_command(args.repo.resolve(), work, *command)
                    old = best.get(name)
                    best[name] = (min(seconds, old[0]), min(rss, old[1])) if old else (seconds, rss)
            total = size + real
            rows.append((size, total, synthetic, best))
            (stats_s, stats_mb), (man_s, man_mb) = best["stats"], best["manifest"]
            print(f"{total:>9,} annotations: stats {stats_s:6.2f} s {stats_mb:6.0f} MB | manifest "
                  f"({synthetic:,} synthetic frames + all real) {man_s:6.2f} s {man_mb:6.0f} MB | "
                  f"manifest/stats: time {man_s / stats_s:.2f}x, RSS {man_mb / stats_mb:.2f}x", flush=True)
        print(f"\ncurate manifest vs curate stats ({args.repo.resolve()}), best of {args.repeat} fresh processes each:")
        print(f"{'annotations':>12} {'stats s':>8} {'stats MB':>9} {'manifest s':>11} {'manifest MB':>12} "
              f"{'time x':>7} {'RSS x':>6} {'manifest µs/ann':>16} {'manifest B/ann':>15}")
        for _, total, _, best in rows:
            (stats_s, stats_mb), (man_s, man_mb) = best["stats"], best["manifest"]
            print(f"{total:>12,} {stats_s:>8.2f} {stats_mb:>9.0f} {man_s:>11.2f} {man_mb:>12.0f} "
                  f"{man_s / stats_s:>7.2f} {man_mb / stats_mb:>6.2f} {man_s / total * 1e6:>16.2f} "
                  f"{man_mb * 2**20 / total:>15.0f}")


if __name__ == "__main__":
    main()
