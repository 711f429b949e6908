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
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from manifest_bench import bench_fields, real_annotations, work_folder, write_converted_set  # noqa: E402
from stats_bench import INSTANCES_PER_FRAME  # noqa: E402

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
    _, checks, dicts, frames, annotations = bench_fields(repo, repo, _RUN, str(manifest))
    return float(checks), float(dicts), int(frames), int(annotations)


def write_set(out: Path, synthetic_annotations: int) -> None:
    """The converted set (:func:`manifest_bench.write_converted_set`) and a header-only PNG per image."""
    images = out / "img"
    write_converted_set(out, synthetic_annotations, {source: str(images / source) for source in ("synscapes",
                                                                                                 "cityscapes")})
    png = {"synscapes": header_png(1440, 720), "cityscapes": header_png(2048, 1024)}
    synthetic_frames = -(-synthetic_annotations // INSTANCES_PER_FRAME)
    real_frames = -(-real_annotations(synthetic_annotations) // INSTANCES_PER_FRAME)
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

    with work_folder(args.keep, "synmix-train-bench-") as work:
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


if __name__ == "__main__":
    main()
