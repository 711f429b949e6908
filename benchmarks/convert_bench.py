"""Benchmark of ``curate convert`` against the bare PNG decode and Detectron2's per-instance loader.

Generates N full-size frames in both layouts (Cityscapes 2048x1024, Synscapes 1440x720) with the
procedural sample generators, then measures on the same files, interleaved frame by frame and
round by round (so caches and CPU frequency treat all three alike):

  (a) bare PNG decode of the label maps convert reads (the floor): Cityscapes instanceIds;
      Synscapes class + instance PNGs;
  (b) Detectron2's per-instance path, one process: ``_cityscapes_files_to_dict(from_json=False,
      to_polygons=False)`` — the per-frame body of ``load_cityscapes_instances`` — on Cityscapes;
      on Synscapes (no Detectron2 loader exists) the same algorithm: one full-frame comparison and
      ``mask.encode`` per instance, plus the rider split per two-wheeler. Without Detectron2 the
      Cityscapes column uses that same re-implementation;
  (c) synmix on one worker: ``curate.convert.driver.convert_frame`` (read + harmonize + encode).

Prints per-frame milliseconds and the ratios b/c and c/a; then where (c)'s time goes: its label
maps read and decoded by synmix's reader, the run sweep over them, the meta, each timed alone on
the same frames, and the rest (the frame minus those) — what a frame costs beyond its own decode,
and what 1.3x that decode would leave for it; then whole-command wall times of
``convert`` with --workers 1 and 2, and the peak RSS of a one-worker command run.

Then the codec limit (``--whole-frames``, default 1000; ``--whole-only`` skips everything above):
``curate convert`` run as a user runs it (a fresh process, --workers 2 by default, over hard links
to the generated frames), its CPU time (user + system of the command and its worker processes,
``getrusage(RUSAGE_CHILDREN)``), minor page faults and system-time share per frame, against the
bare decode of the same label maps by every decoder installed (OpenCV, imagecodecs' libpng and
libspng, Pillow, and synmix's own — zlib-ng's inflate and curate/_rle.c's unfiltering; CPU
time), each in a fresh process of its own, twice: "plain" (as any script: OpenCV's fresh output
arrays are page-faulted in again, ~3-4 ms of a Synscapes frame) and "fault-free" (glibc keeping
freed memory, as synmix's processes do: the decode work alone). The ratio to OpenCV is given
against both; the fastest decoder is the fastest of either, the fastest library decoder the
fastest but synmix's own. Per frame means start-up subtracted: the
command runs on N and on N/5 frames, best of ``--rounds`` interleaved runs each, and the cost of a
frame is the slope between the two (the start-up — imports, worker processes — is printed beside
it). Printed: the ratios to OpenCV's decode and to the fastest one (also round by round, the
command's slope over the floor of the same round: this shared machine's speed drifts by a few
per cent within minutes, as much as the gap measured), and the wall time of 25,000
frames (extrapolated, or measured with ``--full 25000``). ``--repo DIR`` also runs the command of
another checkout (e.g. an older commit from ``git archive``) on the same files, for before/after
figures. Not a test: run it by hand, e.g.
``.venv/bin/python benchmarks/convert_bench.py --frames 20``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate import fileio, sources  # noqa: E402
from curate.convert import convert  # noqa: E402
from curate.convert.driver import ConvertJob, convert_frame  # noqa: E402
from curate.harmonize import TWO_WHEELERS  # noqa: E402
from curate.labels import (  # noqa: E402
    FIRST_INSTANCE_LABEL_ID,
    ID_TO_LABEL,
    INSTANCE_ID_OFFSET,
    LABEL_ID,
)
from curate.records import content_digest  # noqa: E402
from curate.rle import column_runs  # noqa: E402
from curate.sample import write_cityscapes_sample, write_synscapes_sample  # noqa: E402
from curate.sources import ConvertSettings  # noqa: E402
from curate.sources import cityscapes as cs_source  # noqa: E402
from curate.sources import synscapes as syn_source  # noqa: E402

CITYSCAPES_SIZE = (2048, 1024)
SYNSCAPES_SIZE = (1440, 720)


def decode(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


# --- (b) the per-instance path -----------------------------------------------------------------


def per_instance_cityscapes(instance_path: Path) -> int:
    """Detectron2's algorithm (detectron2/data/datasets/cityscapes.py, from_json=False)."""
    inst = np.asarray(decode(instance_path), order="F")
    n = 0
    for instance_id in np.unique(inst[inst >= FIRST_INSTANCE_LABEL_ID]):
        label = ID_TO_LABEL[int(instance_id) // INSTANCE_ID_OFFSET if instance_id >= INSTANCE_ID_OFFSET
                            else int(instance_id)]
        if not label.hasInstances or label.ignoreInEval:
            continue
        mask = np.asarray(inst == instance_id, dtype=np.uint8, order="F")
        ys, xs = np.nonzero(mask)
        if xs.max() <= xs.min() or ys.max() <= ys.min():
            continue
        mask_util.encode(mask[:, :, None])
        n += 1
    return n


def per_instance_synscapes(root: Path, frame: int) -> int:
    """The same per-instance algorithm on a Synscapes frame, with the rider split per two-wheeler."""
    paths = syn_source.frame_paths(root, frame)
    meta = json.loads(paths["meta"].read_text())["instance"]["class"]
    cls = decode(paths["class"])
    inst = syn_source.decode_instance_png(decode(paths["instance"]))
    n = 0
    for instance_id in np.unique(inst[inst > 0]):
        mask = inst == instance_id
        if meta[str(instance_id)] in TWO_WHEELERS:
            rider = mask & (cls == LABEL_ID["rider"])
            masks = [rider, mask & ~rider]
        else:
            masks = [mask]
        for m in masks:
            rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
            mask_util.area(rle), mask_util.toBbox(rle)
            n += 1
    return n


def detectron2_cityscapes():
    try:
        from detectron2.data.datasets.cityscapes import _cityscapes_files_to_dict
    except ImportError:
        return None

    def run(instance_path: Path) -> int:
        record = _cityscapes_files_to_dict(("", str(instance_path), "", ""), from_json=False, to_polygons=False)
        return len(record["annotations"])

    return run


# --- measurement -------------------------------------------------------------------------------


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_layout(name: str, frames: list, a, b, c, rounds: int) -> dict:
    """Interleaved timings: each round runs a, b and c over all frames, one after the other in a
    rotating order, so every method sees the same files, caches and machine load; per-frame time
    = median over rounds of (round time / frames)."""
    fns = {"a": a, "b": b, "c": c}
    samples: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for r in range(rounds):
        for key in order[r % 3:] + order[:r % 3]:
            fn = fns[key]
            start = time.perf_counter()
            for frame in frames:
                fn(frame)
            samples[key].append((time.perf_counter() - start) / len(frames))
    per_frame = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {"layout": name, "frames": len(frames), "rounds": rounds,
            "a_decode_ms": per_frame["a"], "b_per_instance_ms": per_frame["b"], "c_synmix_ms": per_frame["c"],
            "b_over_c": per_frame["b"] / per_frame["c"], "c_over_a": per_frame["c"] / per_frame["a"]}


def synscapes_parts(root: Path):
    """One Synscapes frame's parts as convert_frame does them, each timed alone: reading and decoding
    the label maps (their bytes fed to the frame's digest, as convert does), the run sweep over
    them, the meta (read, parse, check). Returns seconds each."""
    def parts(frame) -> tuple[float, float, float]:
        paths = syn_source.frame_paths(root, frame.key)
        digest = content_digest()
        start = time.perf_counter()
        class_map = syn_source.read_class_map(paths["class"], digest)
        instances = syn_source.read_instance_map(paths["instance"], digest, packed=True)
        decoded = time.perf_counter()
        column_runs(instances, class_map)
        swept = time.perf_counter()
        syn_source.read_meta(paths["meta"])
        return decoded - start, swept - decoded, time.perf_counter() - swept
    return parts


def cityscapes_parts(frame) -> tuple[float, float, float]:
    """The same for a Cityscapes frame: its instanceIds PNG, the run sweep over it; no meta."""
    digest = content_digest()
    start = time.perf_counter()
    ids = cs_source.read_instance_ids(frame.path, digest)
    decoded = time.perf_counter()
    column_runs(ids)
    return decoded - start, time.perf_counter() - decoded, 0.0


def frame_breakdown(name: str, frames: list, whole, parts, rounds: int) -> dict:
    """Where synmix's frame goes, in one process: ``whole`` (convert_frame) and its ``parts`` timed
    alone on the same frames, alternating which goes first round by round; per frame, the median
    over rounds. The rest — harmonizing, encoding, records, findings, paths — is the frame minus
    the parts."""
    whole_ms, part_ms = [], []

    def run_whole() -> None:
        whole_ms.append(timed(lambda: [whole(frame) for frame in frames]) / len(frames) * 1000)

    def run_parts() -> None:
        seconds = [parts(frame) for frame in frames]
        part_ms.append([sum(column) / len(frames) * 1000 for column in zip(*seconds)])

    for r in range(rounds):
        for run in ((run_whole, run_parts) if r % 2 == 0 else (run_parts, run_whole)):
            run()
    frame_ms = statistics.median(whole_ms)
    maps_ms, sweep_ms, meta_ms = (statistics.median(p[i] for p in part_ms) for i in range(3))
    return {"layout": name, "frame_ms": frame_ms, "label_maps_ms": maps_ms, "run_sweep_ms": sweep_ms,
            "meta_ms": meta_ms, "rest_ms": frame_ms - maps_ms - sweep_ms - meta_ms}


def _link(target: Path, link: Path) -> None:
    """A hard link (to the reader exactly a file of its own, as in a real data set), or a symbolic
    link where the file system has none."""
    try:
        os.link(target, link)
    except OSError:
        link.symlink_to(target)


def replicate(source: str, root: Path, into: Path, frames: int) -> Path:
    """A bigger set of ``frames`` frames made of links to the generated ones (for scaling/RSS)."""
    if into.is_dir():
        return into
    if source == "synscapes":
        originals = sorted(int(p.stem) for p in (root / "meta").glob("*.json"))
        for sub, ext in (("img/rgb", "png"), ("img/class", "png"), ("img/instance", "png"), ("meta", "json")):
            (into / sub).mkdir(parents=True)
            for n in range(1, frames + 1):
                _link((root / sub / f"{originals[(n - 1) % len(originals)]}.{ext}").resolve(), into / sub / f"{n}.{ext}")
        return into
    originals = sorted((root / "gtFine/train").glob("*/*_gtFine_instanceIds.png"))
    for n in range(frames):
        src = originals[n % len(originals)]
        stem = src.name[: -len("_gtFine_instanceIds.png")]
        name = f"bench_000000_{n:06}"
        for folder, suffix in (("gtFine", "_gtFine_instanceIds.png"), ("leftImg8bit", "_leftImg8bit.png")):
            target = (root / folder / "train" / src.parent.name / f"{stem}{suffix}").resolve()
            link = into / folder / "train" / "bench" / f"{name}{suffix}"
            link.parent.mkdir(parents=True, exist_ok=True)
            _link(target, link)
    return into


def whole_command(source: str, root: Path, out: Path, workers: int, shard_size: int) -> float:
    start = time.perf_counter()
    convert(source, root, out / f"w{workers}", split="train", workers=workers, shard_size=shard_size, progress=False)
    return time.perf_counter() - start


def peak_rss_mb(source: str, root: Path, out: Path) -> float:
    """Peak RSS (VmHWM) of a one-worker ``curate convert`` in a fresh process. (``ru_maxrss`` would
    report this benchmark's own size: Linux carries the parent's high-water mark across exec.)"""
    code = ("import sys\nfrom curate.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    proc = subprocess.run([sys.executable, "-c", code, "convert", source, str(root), "--out", str(out / "rss"),
                           "-j", "1", "-q"], cwd=REPO, check=True, capture_output=True, text=True)
    return int(proc.stdout.split()[-1]) / 1024


# --- the codec limit: the whole command against the bare decode ----------------------------------


def decoders() -> dict:
    """Every PNG decoder installed, as bytes → array (label maps: 8/16-bit grey, 8-bit RGB)."""
    found = {"opencv": lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)}
    found["synmix"] = fileio.decode_plain_png  # synmix's own (zlib-ng + curate/_rle.c); None where not built
    try:
        import imagecodecs

        found["imagecodecs-png"] = imagecodecs.png_decode
        found["imagecodecs-spng"] = imagecodecs.spng_decode  # no 16-bit grey: not for Cityscapes
    except ImportError:
        pass
    try:
        from PIL import Image

        found["pillow"] = lambda data: np.asarray(Image.open(io.BytesIO(data)))
    except ImportError:
        pass
    return found


def label_maps(source: str, root: Path, frames: list) -> list[list[bytes]]:
    """The bytes of the label maps ``curate convert`` decodes, per frame."""
    if source == "synscapes":
        return [[syn_source.frame_paths(root, f.key)[role].read_bytes() for role in ("class", "instance")]
                for f in frames]
    return [[f.path.read_bytes()] for f in frames]


def decode_cpu_ms(decode, maps: list[list[bytes]], rounds: int, passes: int = 1) -> float | None:
    """CPU milliseconds per frame to decode its maps (best of ``rounds`` of ``passes`` over them);
    None if it cannot."""
    try:
        for data in maps[0]:
            if decode(data) is None:
                return None
    except Exception:  # e.g. libspng has no 16-bit grey
        return None
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(passes):
            for frame in maps:
                for data in frame:
                    decode(data)
        best = min(best, (time.process_time() - start) / len(maps) / passes)
    return best * 1000


#: One decoder's floor in a fresh process: (bench dir, repo, source, root, decoder, mode, passes).
_FLOOR_CODE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import cv2
import convert_bench as bench
from curate import sources
cv2.setNumThreads(1)
if sys.argv[6] == "fault-free":
    from curate.buffers import keep_freed_memory
    keep_freed_memory()
root = bench.Path(sys.argv[4])
maps = bench.label_maps(sys.argv[3], root, sources.get(sys.argv[3]).list_frames(root, "train", None).frames)
print(json.dumps(bench.decode_cpu_ms(bench.decoders()[sys.argv[5]], maps, 1, passes=int(sys.argv[7]))))
"""
#: How a floor's process allocates: "plain" as any script (each fresh output array of a decoder
#: may be page-faulted in again), "fault-free" with the glibc setting synmix's own processes use
#: (curate.buffers.keep_freed_memory): the decode work alone.
FLOOR_MODES = ("plain", "fault-free")


def decode_floor_ms(source: str, root: Path, decoder: str, mode: str, passes: int) -> float | None:
    """CPU ms per frame of ``decoder`` on the frames' label maps, in a fresh process of ``mode``."""
    proc = subprocess.run([sys.executable, "-c", _FLOOR_CODE, str(Path(__file__).parent), str(REPO), source, str(root),
                           decoder, mode, str(passes)], cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout)


def command_usage(repo: Path, source: str, root: Path, out: Path, workers: int, split: str = "train") -> dict:
    """CPU, faults and wall time of one ``curate convert`` in a fresh process (and its workers)."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curate", "convert", source, str(root), "--out", str(out), "--split",
                    split, "-j", str(workers), "-q"], cwd=repo, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": wall, "user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime,
            "minflt": after.ru_minflt - before.ru_minflt}


def codec_limit(layouts: dict, tmp: Path, frames: int, workers: int, rounds: int, repos: list[Path],
                full: int = 0) -> dict:
    """Per frame, start-up subtracted: each command runs on ``frames`` and on a fifth of them,
    ``rounds`` times each, interleaved with the other checkouts and with the bare decode; the
    per-frame cost is the difference of the best runs divided by the difference in frames (the
    slope), start-up the rest of the small run. ``full``: also one run over that many frames
    (e.g. 25,000) for a measured wall time."""
    results = {}
    found = decoders()
    small = max(min(200, frames // 2), frames // 5)
    print(f"\ncodec limit: `curate convert -j {workers}` (fresh process; CPU of the command and its workers) "
          f"on {frames} and {small} frames (links), best of {rounds} interleaved runs each; per frame = the "
          f"slope (start-up subtracted); against the bare decode of the same label maps (CPU, best of "
          f"{rounds} rounds between the runs); repos: {', '.join(str(r) for r in repos)}")
    for source, (root, refs) in layouts.items():
        maps = label_maps(source, root, refs)
        sets = {n: replicate(source, root, tmp / f"{source}-whole-{n}", n) for n in (small, frames)}
        floor_samples: dict[tuple[str, str], list[float]] = {}
        runs: dict[tuple[str, int], list[dict]] = {}
        passes = max(1, 100 // len(maps))
        for r in range(rounds):
            for name in found:
                for mode in FLOOR_MODES:
                    ms = decode_floor_ms(source, root, name, mode, passes)
                    if ms is not None:
                        floor_samples.setdefault((name, mode), []).append(ms)
            for repo in (repos if r % 2 == 0 else repos[::-1]):
                for n in (small, frames):
                    runs.setdefault((str(repo), n), []).append(
                        command_usage(repo, source, sets[n], tmp / "whole-out", workers))
        floors_by_mode = {mode: {name: min(v) for (name, m), v in floor_samples.items() if m == mode}
                          for mode in FLOOR_MODES}
        floors = {name: min(floors_by_mode[m][name] for m in FLOOR_MODES) for name in floors_by_mode["fault-free"]}
        fastest = min(floors, key=floors.get)
        # synmix's own decoder is one of the candidates; the fastest library one is the yardstick from outside
        library = min((n for n in floors if n != "synmix"), key=floors.get)
        for mode in FLOOR_MODES:
            print(f"  {source}: decode ms/frame ({mode} process) "
                  + ", ".join(f"{k} {v:.2f}" for k, v in floors_by_mode[mode].items()))
        print(f"  {source}: fastest {fastest} {floors[fastest]:.2f} ms (of the libraries: {library} "
              f"{floors[library]:.2f} ms); OpenCV {floors_by_mode['plain']['opencv']:.2f} "
              f"ms in a plain process, {floors_by_mode['fault-free']['opencv']:.2f} ms fault-free")
        # the same ratio within each round (floor and command measured minutes apart, not across
        # the whole run): a shared machine's speed drifts by more than the gap being measured
        round_floors = [min(floor_samples[(fastest, m)][r] for m in FLOOR_MODES
                            if len(floor_samples.get((fastest, m), [])) > r) for r in range(rounds)]
        for repo in repos:
            best = {n: min(runs[(str(repo), n)], key=lambda u: u["user_s"] + u["sys_s"]) for n in (small, frames)}
            cpu = {n: u["user_s"] + u["sys_s"] for n, u in best.items()}
            cpu_ms = (cpu[frames] - cpu[small]) / (frames - small) * 1000
            round_ratios = sorted(
                (sum(runs[(str(repo), frames)][r][k] - runs[(str(repo), small)][r][k] for k in ("user_s", "sys_s"))
                 / (frames - small) * 1000) / round_floors[r] for r in range(rounds))
            startup_s = cpu[small] - cpu_ms * small / 1000
            walls = {n: min(u["wall_s"] for u in runs[(str(repo), n)]) for n in (small, frames)}
            wall_per_frame = (walls[frames] - walls[small]) / (frames - small)
            big = best[frames]
            row = {"cpu_ms_per_frame": cpu_ms, "startup_cpu_s": startup_s,
                   "whole_cpu_ms_per_frame": cpu[frames] / frames * 1000,
                   "x_opencv_decode": cpu_ms / floors_by_mode["plain"]["opencv"],
                   "x_opencv_decode_fault_free": cpu_ms / floors_by_mode["fault-free"]["opencv"],
                   "x_fastest_decode": cpu_ms / floors[fastest],
                   "x_fastest_decode_per_round": round_ratios,
                   "fastest_decoder": fastest,
                   "x_fastest_library_decode": cpu_ms / floors[library], "fastest_library_decoder": library,
                   "minflt_per_frame": (big["minflt"] - best[small]["minflt"]) / (frames - small),
                   "sys_share": big["sys_s"] / max(cpu[frames], 1e-9),
                   # of the per-frame slope alone: the start-up (imports, ~1 s) has a larger share
                   "sys_share_per_frame": (big["sys_s"] - best[small]["sys_s"]) / max(cpu[frames] - cpu[small], 1e-9),
                   "wall_s": walls[frames],
                   "wall_25k_min": (walls[small] + wall_per_frame * (25000 - small)) / 60,
                   "decode_ms": floors_by_mode, "runs": {str(n): runs[(str(repo), n)] for n in (small, frames)}}
            if full and repo == repos[0]:
                # every frame: beyond Synscapes' default train range (1..20000) the rest is its val split
                beyond_train = source == "synscapes" and full > syn_source.DEFAULT_SPLITS["train"][-1]
                usage = command_usage(repo, source, replicate(source, root, tmp / f"{source}-whole-{full}", full),
                                      tmp / "whole-out", workers, split="all" if beyond_train else "train")
                row["full"] = {"frames": full, "split": "all" if beyond_train else "train", **usage}
            results.setdefault(source, {})[str(repo)] = row
            print(f"    {repo.name or repo}: {cpu_ms:.2f} ms CPU/frame = {row['x_opencv_decode']:.2f}x OpenCV decode "
                  f"({row['x_opencv_decode_fault_free']:.2f}x fault-free), "
                  f"{row['x_fastest_decode']:.2f}x {fastest} (per round: median "
                  f"{statistics.median(round_ratios):.2f}x, {round_ratios[0]:.2f}-{round_ratios[-1]:.2f}x), "
                  f"{row['x_fastest_library_decode']:.2f}x {library} "
                  f"(start-up {startup_s:.2f} s CPU; whole run "
                  f"{row['whole_cpu_ms_per_frame']:.2f} ms/frame); {row['minflt_per_frame']:.0f} minor faults/frame; "
                  f"system {row['sys_share']:.1%} of CPU ({row['sys_share_per_frame']:.1%} of the per-frame "
                  f"slope); wall {walls[frames]:.1f} s for {frames} "
                  f"(25,000 frames: {row['wall_25k_min']:.1f} min)", flush=True)
            if "full" in row:
                u = row["full"]
                print(f"      {full} frames measured (--split {u['split']}): wall {u['wall_s']:.1f} s = "
                      f"{u['wall_s'] / 60:.2f} min, "
                      f"CPU {u['user_s'] + u['sys_s']:.1f} s ({(u['user_s'] + u['sys_s']) / full * 1000:.2f} ms/frame), "
                      f"{u['minflt'] / full:.0f} minor faults/frame, system {u['sys_s'] / (u['user_s'] + u['sys_s']):.1%}",
                      flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per layout (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all frames (default 3)")
    parser.add_argument("--scaling-frames", type=int, default=200,
                        help="frames (links to the generated ones) for the --workers 1/2 and RSS runs (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="reuse/keep generated frames here (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--whole-frames", type=int, default=1000,
                        help="frames (links) of the codec-limit command runs (default 1000; 0 skips them)")
    parser.add_argument("--workers", type=int, default=2, help="--workers of the codec-limit runs (default 2)")
    parser.add_argument("--whole-only", action="store_true", help="only the codec-limit section")
    parser.add_argument("--full", type=int, default=0,
                        help="also one codec-limit run of this checkout over this many frames, e.g. 25000 "
                             "(default 0: none)")
    parser.add_argument("--only", choices=("synscapes", "cityscapes"),
                        help="the codec-limit section for this source only (default: both)")
    parser.add_argument("--repo", type=Path, action="append", default=[],
                        help="also run the command of this checkout (repeatable; default: this one only)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # as convert's workers run: one thread each, parallel by processes

    with tempfile.TemporaryDirectory(prefix="synmix-bench-") as tmp:
        data = args.data or Path(tmp)
        cs_root, syn_root = data / "cityscapes", data / "synscapes"
        if not (cs_root / "gtFine").is_dir():
            print(f"generating {args.frames} Cityscapes frames {CITYSCAPES_SIZE} ...", flush=True)
            write_cityscapes_sample(cs_root, frames=args.frames, split="train", seed=args.seed, size=CITYSCAPES_SIZE)
        if not (syn_root / "meta").is_dir():
            print(f"generating {args.frames} Synscapes frames {SYNSCAPES_SIZE} ...", flush=True)
            write_synscapes_sample(syn_root, frames=args.frames, seed=args.seed, size=SYNSCAPES_SIZE, val_fraction=0)

        cityscapes, synscapes = sources.get("cityscapes"), sources.get("synscapes")
        cs_frames = cityscapes.list_frames(cs_root, "train", None).frames
        syn_frames = synscapes.list_frames(syn_root, "train", None).frames
        out = Path(tmp) / "out"
        cs_job = ConvertJob("cityscapes", ConvertSettings(cs_root.resolve(), "train", out, cityscapes.rules))
        syn_job = ConvertJob("synscapes", ConvertSettings(syn_root.resolve(), "train", out, synscapes.rules))

        layouts = {"synscapes": (syn_root, syn_frames), "cityscapes": (cs_root, cs_frames)}
        if args.only:
            layouts = {args.only: layouts[args.only]}
        limit = (codec_limit(layouts, Path(tmp), args.whole_frames, args.workers, args.rounds,
                             [REPO, *[r.resolve() for r in args.repo]], args.full) if args.whole_frames else {})
        if args.whole_only:
            if args.json:
                args.json.write_text(json.dumps({"codec_limit": limit}, indent=2))
            return
        d2 = detectron2_cityscapes()
        results = [
            measure_layout(
                "cityscapes", cs_frames,
                a=lambda f: decode(f.path),
                b=(lambda f: d2(f.path)) if d2 else (lambda f: per_instance_cityscapes(f.path)),
                c=lambda f: convert_frame(cs_job, f),
                rounds=args.rounds),
            measure_layout(
                "synscapes", syn_frames,
                a=lambda f: (decode(syn_source.frame_paths(syn_root, f.key)["class"]),
                             decode(syn_source.frame_paths(syn_root, f.key)["instance"])),
                b=lambda f: per_instance_synscapes(syn_root, f.key),
                c=lambda f: convert_frame(syn_job, f),
                rounds=args.rounds),
        ]
        instances = {
            "cityscapes": statistics.mean(len(convert_frame(cs_job, f).annotations) for f in cs_frames),
            "synscapes": statistics.mean(len(convert_frame(syn_job, f).annotations) for f in syn_frames),
        }
        print(f"\nper frame: median over {args.rounds} interleaved rounds "
              f"(b = {'Detectron2 _cityscapes_files_to_dict' if d2 else 'per-instance re-implementation'} "
              "on Cityscapes, the same per-instance algorithm on Synscapes)")
        print(f"{'layout':<11} {'frames':>6} {'anns':>6} {'(a) decode':>11} {'(b) per-inst':>13} "
              f"{'(c) synmix':>11} {'b/c':>7} {'c/a':>6}")
        for r in results:
            r["annotations_per_frame"] = instances[r["layout"]]
            print(f"{r['layout']:<11} {r['frames']:>6} {r['annotations_per_frame']:>6.1f} {r['a_decode_ms']:>9.1f}ms "
                  f"{r['b_per_instance_ms']:>11.1f}ms {r['c_synmix_ms']:>9.1f}ms {r['b_over_c']:>6.1f}x "
                  f"{r['c_over_a']:>5.2f}x")

        breakdown = [
            frame_breakdown("synscapes", syn_frames, lambda f: convert_frame(syn_job, f),
                            synscapes_parts(syn_root.resolve()), max(args.rounds, 5)),
            frame_breakdown("cityscapes", cs_frames, lambda f: convert_frame(cs_job, f), cityscapes_parts,
                            max(args.rounds, 5)),
        ]
        print("\nwhere synmix's frame goes (one process; label maps = reading and decoding them with synmix's "
              f"reader, decoder {fileio.png_decoder()!r}; rest = the frame minus the parts timed alone):")
        print(f"{'layout':<11} {'frame':>7} {'label maps':>16} {'run sweep':>15} {'meta':>15} {'rest':>15}")
        for b in breakdown:
            cells = "".join(f"{b[k]:>8.2f} ms {b[k] / b['frame_ms']:>4.0%}"
                            for k in ("label_maps_ms", "run_sweep_ms", "meta_ms", "rest_ms"))
            print(f"{b['layout']:<11} {b['frame_ms']:>5.2f}ms {cells}")
        for b in breakdown:
            print(f"  {b['layout']}: at 1.3x its label maps the frame would leave {0.3 * b['label_maps_ms']:.2f} ms "
                  f"for all but them; it takes {b['frame_ms'] - b['label_maps_ms']:.2f} ms "
                  f"({b['frame_ms'] / b['label_maps_ms']:.2f}x)")

        m = args.scaling_frames
        print(f"\nwhole command on {m} frames (links to the generated ones; listing, shards, merge, report), "
              "best of two interleaved runs:")
        scaling = {}
        for source, root in (("cityscapes", cs_root), ("synscapes", syn_root)):
            big = replicate(source, root, Path(tmp) / f"{source}-x{m}", m)
            shard_size = max(1, m // 16)
            runs: dict[int, list[float]] = {1: [], 2: []}
            for w in (1, 2, 1, 2):
                runs[w].append(whole_command(source, big, out / source, w, shard_size))
            times = {w: min(v) for w, v in runs.items()}
            decode_ms = next(r["a_decode_ms"] for r in results if r["layout"] == source)
            scaling[source] = {"frames": m, **{f"workers_{w}_s": t for w, t in times.items()},
                               "workers_1_ms_per_frame": times[1] / m * 1000}
            print(f"  {source:<11} --workers 1: {times[1]:.2f}s ({m / times[1]:.1f} frames/s, "
                  f"{times[1] / m * 1000:.1f} ms/frame = {times[1] / m * 1000 / decode_ms:.2f}x decode)   "
                  f"--workers 2: {times[2]:.2f}s ({m / times[2]:.1f} frames/s)   speed-up {times[1] / times[2]:.2f}x")
        rss = {n: peak_rss_mb("synscapes", r, out / f"rss{n}")
               for n, r in ((args.frames, syn_root), (m, Path(tmp) / f"synscapes-x{m}"))}
        print("\npeak RSS of `curate convert synscapes -j 1`: "
              + ", ".join(f"{n} frames {v:.0f} MB" for n, v in rss.items()))
        if args.json:
            args.json.write_text(json.dumps({"per_frame": results, "breakdown": breakdown, "whole_command": scaling,
                                             "peak_rss_mb": {str(k): v for k, v in rss.items()},
                                             "codec_limit": limit}, indent=2))


if __name__ == "__main__":
    main()
