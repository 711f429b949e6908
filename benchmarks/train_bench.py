"""``python -m train``'s registration of a study-sized mix: from the manifest to the training set's dicts.

    .venv/bin/python benchmarks/train_bench.py [--synthetic-annotations 1000000] [--repeat 2] [--keep DIR]

Writes converted-looking train files (``benchmarks/stats_bench.py``; a Synscapes train file of that
many annotations, ~20,800 frames at a million, and a Cityscapes one of 5.4 % as many, as
``benchmarks/manifest_bench.py`` does), a header-only PNG for every image (training checks read
image sizes from headers, never pixels) and the study's mix, every real frame + 11,700 synthetic
ones at a million (``curate manifest --real all --synthetic N --eval none``). Then, each time in a
fresh process (best of ``--repeat``), it times what ``python -m train`` does before it builds the
model: ``train.data.register_manifest`` (manifest checks, the training COCO parsed once, image
checks) and ``DatasetCatalog.get`` of the training set (Detectron2's dicts). Needs Detectron2
(``./install.sh``). ``--repo`` runs another checkout's code on the same files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from manifest_bench import REAL_SHARE  # noqa: E402
from stats_bench import INSTANCES_PER_FRAME, write_coco  # noqa: E402

#: 11,700 of the ~20,800 synthetic frames of a million annotations: 12.8 k frames with the real ones
SYNTHETIC_SHARE = 11_700 / 20_834

#: The smallest PNG whose header gives a size: signature + IHDR (width, height, 8-bit RGB) + IEND.
def header_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


_RUN = """
import sys, time
from pathlib import Path
start = time.perf_counter()
from detectron2.data import DatasetCatalog
from train.data import register_manifest
imported = time.perf_counter()
manifest, registered = register_manifest(Path(sys.argv[1]))
checked = time.perf_counter()
dicts = DatasetCatalog.get(registered.train)
done = time.perf_counter()
print("BENCH", imported - start, checked - imported, done - checked, len(dicts), sum(len(d["annotations"]) for d in dicts))
"""


def register_once(repo: Path, manifest: Path) -> tuple[float, float, int, int]:
    """(checks and parse s, dicts s, frames, annotations) of one registration in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", _RUN, str(manifest)], cwd=repo, env=env, capture_output=True,
                          text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
    if proc.returncode or not line:
        raise SystemExit(f"registration failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    _, _, checks, dicts, frames, annotations = line[-1].split()
    return float(checks), float(dicts), int(frames), int(annotations)


def write_set(out: Path, synthetic_annotations: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(synthetic_annotations)
    images = out / "img"
    write_coco(out / "synscapes_train.json", "synscapes", synthetic_annotations, rng,
               image_root=str(images / "synscapes"))
    write_coco(out / "cityscapes_train.json", "cityscapes", max(1, round(synthetic_annotations * REAL_SHARE)), rng,
               size=(2048, 1024), mean_log_area=7.5, image_root=str(images / "cityscapes"))
    png = {"synscapes": header_png(1440, 720), "cityscapes": header_png(2048, 1024)}
    synthetic_frames = -(-synthetic_annotations // INSTANCES_PER_FRAME)
    real_frames = -(-max(1, round(synthetic_annotations * REAL_SHARE)) // INSTANCES_PER_FRAME)
    for n in range(1, synthetic_frames + 1):
        path = images / "synscapes" / f"img/rgb/{n}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png["synscapes"])
    for n in range(1, real_frames + 1):
        path = images / "cityscapes" / f"leftImg8bit/train/aachen/aachen_{n:06d}_000019_leftImg8bit.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png["cityscapes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-annotations", type=int, default=1_000_000,
                        help="annotations of the Synscapes train file (default 1000000: a 12.8 k-frame mix)")
    parser.add_argument("--repeat", type=int, default=2, help="registrations, each in a fresh process (best shown)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose train/ is run (default: this one)")
    parser.add_argument("--keep", type=Path, default=None, help="write the set into this folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="synmix-train-bench-"))
    try:
        out = work / "OUT"
        if not (out / "synscapes_train.json").is_file():
            started = time.perf_counter()
            write_set(out, args.synthetic_annotations)
            print(f"generated the converted set in {time.perf_counter() - started:.1f} s", flush=True)
        manifest = work / "manifests" / "mix.json"
        synthetic = round(SYNTHETIC_SHARE * -(-args.synthetic_annotations // INSTANCES_PER_FRAME))
        if not manifest.is_file():
            subprocess.run([sys.executable, "-m", "curate", "manifest", str(out), "--real", "all", "--synthetic",
                            str(synthetic), "--eval", "none", "-o", str(manifest), "--quiet"], cwd=REPO, check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
        runs = [register_once(args.repo.resolve(), manifest) for _ in range(args.repeat)]
        checks, dicts, frames, annotations = min(runs, key=lambda r: r[0] + r[1])
        mix_mb = (manifest.parent / "mix.coco.json").stat().st_size / 1e6
        print(f"registration of a {frames:,}-frame mix ({annotations:,} annotations, {mix_mb:.0f} MB; "
              f"{args.repo.resolve()}), best of {args.repeat} fresh processes: {checks + dicts:.2f} s "
              f"(manifest, checks and the one COCO parse {checks:.2f} s; Detectron2 dicts {dicts:.2f} s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
