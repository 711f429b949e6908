"""The parallel, resumable driver of ``curate convert``.

Frames are cut into shards of ``shard_size`` consecutive frames (in sorted frame order). A shard
is one task: a picklable :class:`ShardSpec` in, the shard's records written atomically to
``OUT/.shards/{source}_{split}/NNNNN.json`` out (workers return only a small summary, so memory
stays bounded). :func:`open_backend` runs the tasks on a backend: joblib processes on this machine,
or an existing Dask cluster (:mod:`curate.convert.dask_backend`).
Once every shard is on disk they are streamed, in shard order, into ``OUT/{source}_{split}.json``
and the report; then the shard folder is removed. Ids come from frame numbers, so the output is
byte-identical for any worker count or completion order.

``--resume`` keeps every shard whose fingerprint (tool version, source, input root, split,
rules, options, frame list, and the size and modification time of every input file of its
frames) matches the current run and recomputes the rest: a frame whose files changed is redone.

Only one run writes a given ``OUT/{source}_{split}`` at a time: a lock file
``OUT/.{source}_{split}.lock`` holds the pid and host of the run (a lock left by a killed run on
this host is taken over; runs of other sources or splits into the same OUT go side by side).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2

from curate import __version__, sources
from curate.buffers import keep_freed_memory, reusing
from curate.coco import CocoWriter
from curate.convert.defaults import DEFAULT_SHARD_SIZE
from curate.errors import CurateError, OutputError
from curate.fileio import (
    check_output_folder,
    output_error,
    process_alive,
    remove_stale_temp_files,
    strict_json,
    write_bytes_atomic,
    write_json_atomic,
)
from curate.findings import add_duplicate_frames, add_findings, merge_findings, sorted_findings
from curate.progress import progress_bar
from curate.records import FrameResult, add_counts, sort_counts
from curate.sources import ConvertSettings, FrameRef, Listing

ON_ERROR = ("fail", "skip")
BACKENDS = ("joblib", "dask")
SHARD_SCHEMA = "synmix.convert-shard"
REPORT_SCHEMA = "synmix.convert-report"
SCHEMA_VERSION = 1
#: Layout of the shard files (2: annotations as COCO text, see ``_SHARD_ANNOTATIONS``; 3: frame
#: digests by SHA-256, ``curate.records.content_digest``).
SHARD_VERSION = 3


@dataclass(frozen=True)
class ConvertJob:
    """What every task of one conversion shares (picklable)."""

    source: str
    settings: ConvertSettings
    on_error: str = "fail"

    @property
    def name(self) -> str:
        return f"{self.source}_{self.settings.split}"

    @property
    def shard_dir(self) -> Path:
        return Path(self.settings.out) / ".shards" / self.name


@dataclass(frozen=True)
class ShardSpec:
    """One task: a run of consecutive frames of the sorted split. ``parent_pid``: the converting
    process, when the shard runs in a worker process of this machine (the worker exits if it dies)."""

    job: ConvertJob
    index: int
    frames: tuple[FrameRef, ...]
    parent_pid: int | None = None

    @property
    def path(self) -> Path:
        return self.job.shard_dir / f"{self.index:05}.json"

    def frame_keys(self) -> list:
        return [f.key for f in self.frames]

    def fingerprint(self, with_inputs: bool = True) -> dict:
        # on_error is left out: a shard made under "fail" holds no skipped frame and is valid for
        # "skip" too; the reverse is refused by read_complete_shard.
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.job.settings).items()}
        found = {"tool_version": __version__, "source": self.job.source, **settings,
                 "rules": list(self.job.settings.rules), "index": self.index, "frames": self.frame_keys()}
        if with_inputs:
            found["files"] = [[_file_state(path) for path in frame.files] for frame in self.frames]
        return found


def _file_state(path: Path) -> list:
    """(path, size, mtime in ns) of an input file, or (path, None, None) when it is gone."""
    try:
        stat = os.stat(path)
    except OSError:
        return [str(path), None, None]
    return [str(path), stat.st_size, stat.st_mtime_ns]


@dataclass
class ConvertResult:
    coco_path: Path
    report_path: Path
    report: dict = field(repr=False)


# --- one frame, one shard ----------------------------------------------------------------------


def convert_frame(job: ConvertJob, frame: FrameRef) -> FrameResult:
    """The source's conversion of one frame; anything but a CurateError still becomes one line,
    naming the file an OSError names (an output file when writing failed) or else the frame's file."""
    try:
        return sources.get(job.source).convert_frame(job.settings, frame)
    except CurateError:
        raise
    except OSError as err:
        if err.filename is not None:
            raise CurateError(err.filename, err.strerror or str(err)) from err
        raise CurateError(frame.path, f"unexpected {type(err).__name__}: {err}") from err
    except Exception as err:  # a bug or a file no check foresaw
        raise CurateError(frame.path, f"unexpected {type(err).__name__}: {err}") from err


@contextmanager
def frame_loop(parent_pid: int | None) -> Iterator[None]:
    """What a loop over frames runs under (``convert``'s shards, ``check``'s tasks): scratch arrays
    reused from frame to frame (:func:`curate.buffers.reusing`), one OpenCV thread, and — in a worker
    process of ``parent_pid`` — freed memory kept (no page faults for each frame's arrays) and an
    exit when that process dies; the cyclic garbage collector paused."""
    _exit_with_parent(parent_pid)
    if parent_pid is not None and parent_pid != os.getpid():
        keep_freed_memory()
    # Parallelism comes from worker processes: OpenCV's own thread pool only adds hand-offs.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    # A frame's work makes no reference cycles (tests/test_convert.py checks it): the
    # collector would only re-scan the records the loop accumulates, ~1 % of a Synscapes frame.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with reusing():
            yield
    finally:
        cv2.setNumThreads(threads)
        if collecting:
            gc.enable()


def run_shard(spec: ShardSpec, on_frame: Callable[[int], Any] | None = None) -> dict:
    """Convert a shard's frames and write the shard file. Returns a small summary; with
    ``on_error="fail"`` a bad frame ends the shard with ``{"error": [path, problem]}``."""
    with frame_loop(spec.parent_pid):
        return _run_shard(spec, on_frame)


_watched_parent: int | None = None


def _exit_with_parent(parent_pid: int | None) -> None:
    """In a worker process: exit within half a second of the converting process's death (a killed
    ``curate convert`` leaves no worker behind to finish its shard for nobody)."""
    global _watched_parent
    if parent_pid is None or parent_pid == os.getpid() or _watched_parent == parent_pid:
        return
    _watched_parent = parent_pid

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)  # reparented: the parent is gone

    threading.Thread(target=watch, name="synmix-parent-watch", daemon=True).start()


def _run_shard(spec: ShardSpec, on_frame: Callable[[int], Any] | None) -> dict:
    job = spec.job
    started = time.perf_counter()
    images, annotations, skipped, counts, findings, digests = [], [], [], {}, {}, []
    for frame in spec.frames:
        try:
            result = convert_frame(job, frame)
        except CurateError as err:
            if job.on_error == "fail" or isinstance(err, OutputError):  # a full disk is no bad frame
                return {"index": spec.index, "error": [err.path, err.problem, err.kind]}
            skipped.append({"frame": frame.key, "path": err.path, "problem": err.problem,
                            "kind": err.kind or "unreadable_file"})
        else:
            images.append(result.image)
            annotations.extend(result.annotations)
            add_counts(counts, result.counts)
            add_findings(findings, frame.key, frame.path, result.findings)
            digests.append([frame.key, str(frame.path), result.digest])
        if on_frame is not None:
            on_frame(1)
    seconds = time.perf_counter() - started
    coco_path = Path(job.settings.out) / f"{job.name}.json"
    header = strict_json({
        "schema": SHARD_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "shard_version": SHARD_VERSION,
        "fingerprint": spec.fingerprint(),
        "images": images,
        "counts": counts,
        "findings": findings,
        "digests": digests,
        "skipped": skipped,
        "seconds": seconds,
        "annotation_count": len(annotations),
    }, coco_path, separators=(",", ":"))
    # The annotations as the COCO file will hold them (one C-encoder call for the shard; NaN is an
    # error naming the COCO file): the merge copies this text instead of parsing and re-encoding it.
    text = strict_json(annotations, coco_path, separators=(",", ":"))[1:-1]
    write_bytes_atomic(spec.path, f"{header[:-1]}{_SHARD_ANNOTATIONS}{text}\n]}}\n".encode())
    return {"index": spec.index, "error": None, "frames": len(spec.frames)}


#: A shard file is one JSON object in three lines: the header fields and the start of its
#: "annotations" list; the annotations' own text (exactly the COCO file's); the closing brackets.
_SHARD_ANNOTATIONS = ',"annotations":[\n'


def read_complete_shard(spec: ShardSpec, check_inputs: bool = True) -> dict | None:
    """The shard's content if its file is complete and was made by this very job, else None; its
    annotations come as ``annotations_text`` (the COCO file's bytes of them) and ``annotation_count``.
    ``check_inputs=False`` (at the merge, after this run wrote or checked the shard) skips comparing
    its input files' sizes and times again."""
    try:
        with open(spec.path, "rb") as f:
            raw = f.read()
        head, separator, rest = raw.partition(_SHARD_ANNOTATIONS.encode())
        if not separator or not rest.endswith(b"\n]}\n"):
            return None
        data = json.loads(head + b"}")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SHARD_SCHEMA or data.get("shard_version") != SHARD_VERSION:
        return None
    expected = json.loads(json.dumps(spec.fingerprint(with_inputs=check_inputs)))
    found = data.get("fingerprint")
    if not check_inputs and isinstance(found, dict):
        found = {k: v for k, v in found.items() if k != "files"}
    if found != expected:
        return None
    if spec.job.on_error == "fail" and data.get("skipped"):
        return None  # made under --on-error skip: redo, so that the bad frame fails this run
    data["annotations_text"] = rest[:-len(b"\n]}\n")]
    return data


# --- backends ----------------------------------------------------------------------------------


class JoblibBackend:
    """Processes on this machine (loky); ``workers == 1`` runs the tasks in this process."""

    name = "joblib"
    scheduler = None

    def __init__(self, workers: int):
        self.workers = workers
        self.in_process = workers <= 1

    def __enter__(self) -> JoblibBackend:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def map_unordered(self, fn: Callable, tasks: list) -> Iterator:
        if self.in_process or len(tasks) <= 1:
            yield from map(fn, tasks)
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=self.workers, return_as="generator_unordered")(delayed(fn)(t) for t in tasks)


def open_backend(backend: str | None, workers: int = 1, scheduler: str | None = None, shared_dirs=(),
                 writable_dirs=()):
    """The task runner for ``--backend``/``--scheduler`` (a context manager with ``map_unordered``,
    ``workers``, ``in_process``, ``name`` and ``scheduler``).

    ``backend=None`` means dask when a scheduler is given, else joblib. For Dask, ``shared_dirs``
    must exist and ``writable_dirs`` be writable on every worker (checked on connecting).
    """
    if backend is None:
        backend = "dask" if scheduler else "joblib"
    if backend == "joblib":
        if scheduler:
            raise CurateError(None, "--scheduler applies to --backend dask only")
        return JoblibBackend(workers)
    if backend == "dask":
        from curate.convert.dask_backend import DaskBackend

        return DaskBackend(scheduler, shared_dirs, writable_dirs)
    raise CurateError(None, f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")


def default_workers() -> int:
    from joblib import cpu_count

    return max(1, cpu_count())


# --- the whole conversion ----------------------------------------------------------------------


def make_shards(job: ConvertJob, frames: list, shard_size: int) -> list[ShardSpec]:
    return [ShardSpec(job, i, tuple(frames[start:start + shard_size]))
            for i, start in enumerate(range(0, len(frames), shard_size))]


def _clear_shards(shard_dir: Path) -> None:
    if shard_dir.is_dir():
        shutil.rmtree(shard_dir)


def coco_info(job: ConvertJob) -> dict:
    settings = job.settings
    return {
        "description": f"{job.source} {settings.split} converted by synmix",
        "version": __version__,
        "source": job.source,
        "split": settings.split,
        "image_root": str(settings.root),
        "rules": list(settings.rules),
    }


def merge_shards(specs: list[ShardSpec], coco_path: Path) -> dict:
    """Stream the shards, in order, into the COCO file and return the summed counters etc."""
    job = specs[0].job
    counts: dict = {}
    findings: dict = {}
    skipped: list[dict] = []
    seconds = 0.0
    digests: list = []
    with CocoWriter(coco_path, coco_info(job)) as coco:
        for spec in specs:
            data = read_complete_shard(spec, check_inputs=False)
            if data is None:
                raise CurateError(spec.path, "shard missing or incomplete at merge time")
            coco.add_images(data["images"])
            coco.add_annotation_text(data["annotations_text"], data["annotation_count"])
            add_counts(counts, data["counts"])
            merge_findings(findings, data["findings"])
            digests.extend(data["digests"])
            skipped.extend(data["skipped"])
            seconds += data["seconds"]
        if not coco.images:
            coco.cancel()  # every frame skipped: the run fails, and leaves no COCO file
    add_duplicate_frames(findings, digests)
    return {"counts": counts, "findings": sorted_findings(findings), "skipped": skipped, "images": len(coco.images),
            "annotations": coco.annotations, "frame_seconds": seconds}


def convert(
    source: str,
    root: Path,
    out: Path,
    split: str = "train",
    split_file: Path | None = None,
    rules: tuple[str, ...] | str | None = None,
    workers: int | None = None,
    gtfine: bool = False,
    copy_images: bool = False,
    on_error: str = "fail",
    resume: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    backend: str | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> ConvertResult:
    """Convert one split of a source to ``OUT/{source}_{split}.json`` + ``.report.json``.

    ``progress``: see :mod:`curate.progress` (None: a bar on a terminal, plain lines in a log). ``backend``/``scheduler``: see
    :func:`open_backend` (with Dask, ``workers`` is ignored: the cluster's worker threads run the
    shards). See the module doc for shards and resume; :func:`report_for` for the report's fields.
    """

    started = time.perf_counter()
    spec = sources.get(source)
    if on_error not in ON_ERROR:
        raise CurateError(None, f"--on-error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
    if shard_size < 1:
        raise CurateError(None, f"--shard-size must be at least 1, not {shard_size}")
    if gtfine and not spec.writes_gtfine:
        writers = ", ".join(s.title for s in sources.all_sources() if s.writes_gtfine)
        raise CurateError(None, f"--gtfine applies to {writers} only ({spec.title} is not converted to gtFine)")
    rules = spec.select_rules(rules)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise CurateError(None, f"--workers must be at least 1, not {workers}")

    root = Path(root).resolve()
    out = Path(out).resolve()
    check_output_folder(out, "--out folder")
    if gtfine:  # temp files of --gtfine writes of a killed run, in the folders this run writes
        for folder in ("gtFine", "leftImg8bit"):
            remove_stale_temp_files(out / folder / split, recursive=True)
    spec.check_root(root)
    listing = spec.list_frames(root, split, split_file)
    if listing.problems and on_error == "fail":
        first = listing.problems[0]
        more = f" (and {len(listing.problems) - 1} more problems; curate check lists them)" if len(listing.problems) > 1 else ""
        raise CurateError(first.path, first.problem + more, first.kind)
    frames = listing.frames
    if not frames:
        raise CurateError(root, f"no {source} frames in split {split!r}")
    job = ConvertJob(source, ConvertSettings(root, split, out, rules, gtfine, copy_images), on_error)
    with output_lock(out, job.name):
        return _convert_locked(job, listing, split_file, workers, resume, shard_size, backend, scheduler, progress,
                               started)


def _convert_locked(job: ConvertJob, listing: Listing, split_file, workers: int, resume: bool, shard_size: int,
                    backend, scheduler, progress, started: float) -> ConvertResult:
    frames, root, out = listing.frames, job.settings.root, job.settings.out
    specs = make_shards(job, frames, shard_size)
    if not resume:
        _clear_shards(job.shard_dir)
    job.shard_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(job.shard_dir)
    todo = [s for s in specs if not (resume and read_complete_shard(s) is not None)]
    reused = len(specs) - len(todo)

    workers = min(workers, max(1, len(todo)))
    done_frames = sum(len(s.frames) for s in specs) - sum(len(s.frames) for s in todo)
    runner = open_backend(backend, workers, scheduler, shared_dirs=(root, job.shard_dir),
                          writable_dirs=(out, job.shard_dir))
    if runner.name == "joblib" and not runner.in_process:
        todo = [replace(s, parent_pid=os.getpid()) for s in todo]
    with runner, progress_bar(total=len(frames), initial=done_frames, unit="frame", desc=f"convert {job.name}",
                              progress=progress) as bar:
        # in this process the bar moves per frame; from other processes, per finished shard
        fn = partial(run_shard, on_frame=bar.update) if runner.in_process else run_shard
        results = runner.map_unordered(fn, todo)
        try:
            for summary in results:
                if summary["error"]:
                    raise CurateError(*summary["error"])
                if not runner.in_process:
                    bar.update(summary["frames"])
        finally:
            with warnings.catch_warnings():  # joblib warns that it cancels the tasks still running
                warnings.simplefilter("ignore")
                results.close()
    convert_seconds = time.perf_counter() - started

    coco_path = out / f"{job.name}.json"
    merged = merge_shards(specs, coco_path)
    merged["skipped_files"] = [{"path": str(p.path), "problem": p.problem, "frame": p.frame, "kind": p.kind}
                               for p in listing.problems]
    report = report_for(job, frames, merged, split_file=split_file, workers=runner.workers,
                        backend={"backend": runner.name, "scheduler": runner.scheduler}, shard_size=shard_size,
                        shards=len(specs), reused=reused,
                        timings={"convert_s": convert_seconds, "total_s": time.perf_counter() - started})
    report_path = out / f"{job.name}.report.json"
    write_json_atomic(report_path, report, indent=2)
    _clear_shards(job.shard_dir)
    shards_root = job.shard_dir.parent
    if shards_root.is_dir() and not any(shards_root.iterdir()):
        shards_root.rmdir()
    if merged["images"] == 0:
        raise CurateError(root, f"every frame of {job.name} was skipped ({len(merged['skipped'])}); "
                                f"see {report_path}")
    return ConvertResult(coco_path, report_path, report)


@contextmanager
def output_lock(out: Path, name: str) -> Iterator[Path]:
    """Hold ``OUT/.{name}.lock`` for the block: a second run writing the same outputs stops at once
    with one line; a lock whose process is gone (a killed run on this host) is taken over."""
    out.mkdir(parents=True, exist_ok=True)
    lock = out / f".{name}.lock"
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and holder.get("host") == me["host"] and not process_alive(holder["pid"]):
                lock.unlink(missing_ok=True)  # stale: its run was killed
                continue
            who = f"pid {holder['pid']} on {holder['host']}" if holder else "another run"
            raise CurateError(lock, f"another curate convert ({who}) is writing {name} into {out}; wait for it, "
                                    "or delete this file if no such run is alive") from None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
        except OSError as err:  # a lock that names no run would refuse every later run
            lock.unlink(missing_ok=True)
            raise output_error(lock, err) from None
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _lock_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


_REPORTED_COUNTS = ("instances", "rules", "crowd_regions", "thin_instances_kept", "images_missing", "annotations",
                    "class_disagreements")


def _stages_in_rule_order(stages: dict, rules) -> dict:
    order = ["before"] + [f"after {rule}" for rule in rules]
    keys = [k for k in order if k in stages] + sorted(k for k in stages if k not in order)
    return {k: sort_counts(stages[k]) for k in keys}


def report_for(job: ConvertJob, frames: list, merged: dict, split_file, workers: int, shard_size: int,
               shards: int, reused: int, timings: dict, backend: dict | None = None) -> dict:
    """The ``{source}_{split}.report.json`` document (schema ``synmix.convert-report`` v1)."""
    counts = merged["counts"]
    settings = job.settings
    total_s = timings["total_s"]
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "source": job.source,
        "split": settings.split,
        "input_root": str(settings.root),
        "split_file": str(Path(split_file).resolve()) if split_file else None,
        "output": {
            "coco": f"{job.name}.json",
            "gtfine": f"gtFine/{settings.split}" if settings.gtfine else None,
            "image_links": f"leftImg8bit/{settings.split}" if settings.gtfine else None,
        },
        "rules": list(settings.rules),
        "options": {**(backend or {"backend": "joblib", "scheduler": None}),
                    "workers": workers, "shard_size": shard_size, "on_error": job.on_error,
                    "gtfine": settings.gtfine, "copy_images": settings.copy_images},
        "frames": {"listed": len(frames), "converted": merged["images"], "skipped": len(merged["skipped"])},
        "skipped_frames": merged["skipped"],
        "skipped_files": merged.get("skipped_files", []),
        "findings": merged.get("findings", {}),
        "class_disagreements": sort_counts(counts.get("class_disagreements", {})),
        "annotations": merged["annotations"],
        "instances": _stages_in_rule_order(counts.get("instances", {}), settings.rules),
        "rule_counts": {rule: sort_counts(c) for rule, c in
                        sorted(counts.get("rules", {}).items(), key=lambda kv: list(settings.rules).index(kv[0]))},
        "crowd_regions": sort_counts(counts.get("crowd_regions", {})),
        "thin_instances_kept": counts.get("thin_instances_kept", 0),
        "images_missing": counts.get("images_missing", 0),
        # counters only one source keeps (e.g. BDD100K's attribute_conflicts)
        "source_counts": sort_counts({k: v for k, v in counts.items() if k not in _REPORTED_COUNTS}),
        "shards": {"total": shards, "reused": reused},
        "timings": {
            "total_s": round(total_s, 3),
            "convert_s": round(timings["convert_s"], 3),
            "frame_work_s": round(merged["frame_seconds"], 3),
            "frames_per_s": round(merged["images"] / total_s, 2) if total_s > 0 else None,
        },
        "notes": [
            "instances: per class before harmonization and after each rule (exported instances; "
            "crowd regions not included)",
            "thin_instances_kept: masks one pixel wide or tall; Detectron2's Cityscapes loader drops "
            "them, synmix keeps them (they are real labels)",
        ],
    }
