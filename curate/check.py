"""``curate check``: audit a data set before converting it — every finding, nothing written.

The check runs each frame through its source's own conversion (``Source.convert_frame`` without
``--gtfine``, so nothing is written) and collects what a conversion would stop at or count: the
listing's problems (stray names, incomplete frames, …), each frame's errors (unreadable files, size
and bit-depth mismatches, unknown ids, …) and notes (class disagreements, …), and frames whose label
files are byte-identical. The kinds are those of :mod:`curate.findings`; ``curate convert`` counts
the same ones in its report. Frames run in parallel (joblib processes), in shards.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from curate import sources
from curate.errors import CurateError
from curate.findings import ERROR, KINDS, NOTE, add_duplicate_frames, add_findings, finding, merge_findings, sorted_findings
from curate.records import add_counts
from curate.sources import ConvertSettings, FrameRef

CHECK_SCHEMA = "synmix.check"
CHECK_SCHEMA_VERSION = 1
SHARD_FRAMES = 32


@dataclass
class CheckResult:
    source: str
    root: Path
    splits: list[str]
    frames: int = 0
    findings: dict = field(default_factory=dict)  # kind → {"count", "examples"}
    class_disagreements: dict = field(default_factory=dict)  # "meta/pixel" → instances
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """No error and no note (info alone, such as fully occluded meta instances, is clean)."""
        return not any(KINDS[k].severity in (ERROR, NOTE) for k in self.findings)

    def to_json(self) -> dict:
        return {
            "schema": CHECK_SCHEMA,
            "schema_version": CHECK_SCHEMA_VERSION,
            "source": self.source,
            "root": str(self.root),
            "splits": self.splits,
            "frames": self.frames,
            "clean": self.clean,
            "findings": {kind: {"severity": KINDS[kind].severity, "meaning": KINDS[kind].meaning, **slot}
                         for kind, slot in self.findings.items()},
            "class_disagreements": self.class_disagreements,
        }


def check_frames(source: str, settings: ConvertSettings, frames: list[FrameRef], examples: int,
                 parent_pid: int | None = None) -> dict:
    """Run the source's conversion on ``frames`` (nothing written) and summarise what it met;
    ``parent_pid``: the checking process, when this runs in a worker process of it."""
    from curate.convert.driver import frame_loop

    with frame_loop(parent_pid):
        return _check_frames(source, settings, frames, examples)


def _check_frames(source: str, settings: ConvertSettings, frames: list[FrameRef], examples: int) -> dict:
    from curate.convert.driver import ConvertJob, convert_frame  # one line per frame, whatever failed

    job = ConvertJob(source, settings)
    findings, counts, digests = {}, {}, []
    for ref in frames:
        try:
            result = convert_frame(job, ref)
        except CurateError as err:
            path = err.path if err.path is not None else ref.path
            add_findings(findings, ref.key, path, [finding(err.kind or "unreadable_file", detail=err.problem)],
                         examples)
        else:
            add_findings(findings, ref.key, ref.path, result.findings, examples)
            add_counts(counts, {"class_disagreements": result.counts.get("class_disagreements", {})})
            digests.append([ref.key, str(ref.path), result.digest])
    return {"frames": len(frames), "findings": findings, "counts": counts, "digests": digests}


def run_check(source: str, root: Path, splits: list[str], split_file: Path | None = None, workers: int = 1,
              examples: int = 5, progress: bool | None = None) -> CheckResult:
    """Audit ``splits`` of ``root`` as ``source``. Raises CurateError only when the input cannot be
    read at all (no such root, not this source's layout, an unknown split)."""
    from curate.convert.driver import open_backend
    from curate.progress import progress_bar

    started = time.perf_counter()
    spec = sources.get(source)
    root = spec.check_root(Path(root).resolve())
    result = CheckResult(source, root, list(splits))
    problems, tasks = [], []
    for split in splits:
        listing = spec.list_frames(root, split, split_file)
        problems += listing.problems
        settings = ConvertSettings(root, split, root, spec.rules)  # no --gtfine: nothing is written
        frames = listing.frames
        tasks += [(settings, frames[i:i + SHARD_FRAMES]) for i in range(0, len(frames), SHARD_FRAMES)]
        result.frames += len(frames)
    seen_problems: set[tuple] = set()
    for p in problems:  # stray names are met once per split listed: report each file once
        if (p.path, p.problem) not in seen_problems:
            seen_problems.add((p.path, p.problem))
            add_findings(result.findings, p.frame, p.path, [finding(p.kind, detail=p.problem)], examples)

    workers = max(1, min(workers, len(tasks)))
    summaries = []
    with open_backend("joblib", workers) as runner, \
            progress_bar(total=result.frames, unit="frame", desc=f"check {source}", progress=progress) as bar:
        for summary in runner.map_unordered(partial(_check_task, source, examples, os.getpid()), tasks):
            summaries.append(summary)
            bar.update(summary["frames"])
    digests = []
    for summary in sorted(summaries, key=lambda s: s["order"]):  # the same examples whatever the workers
        merge_findings(result.findings, summary["findings"], examples)
        add_counts(result.class_disagreements, summary["counts"].get("class_disagreements", {}))
        digests += summary["digests"]
    add_duplicate_frames(result.findings, digests, examples)
    result.findings = sorted_findings(result.findings)
    result.class_disagreements = dict(sorted(result.class_disagreements.items()))
    result.seconds = time.perf_counter() - started
    return result


def _check_task(source: str, examples: int, parent_pid: int, task) -> dict:
    settings, frames = task
    summary = check_frames(source, settings, frames, examples, parent_pid)
    summary["order"] = (settings.split, frames[0].image_id if frames else 0)
    return summary


def format_report(result: CheckResult) -> str:
    """The human-readable report: one block per kind of finding, then the class matrix."""
    lines = [f"{result.source} {', '.join(result.splits)} in {result.root}: {result.frames} frames checked "
             f"in {result.seconds:.1f} s"]
    if not result.findings:
        lines.append("clean: nothing to report")
    for kind, slot in result.findings.items():
        meaning = KINDS[kind]
        lines.append(f"{meaning.severity:<5} {kind}: {slot['count']} — {meaning.meaning}")
        for example in slot["examples"]:
            where = example.get("file", "")
            extra = ", ".join(f"{k} {example[k]}" for k in ("instance", "detail") if k in example)
            frame = f"frame {example['frame']}: " if example.get("frame") is not None else ""
            lines.append(f"        {frame}{where}{': ' + extra if extra else ''}")
    if result.class_disagreements:
        lines.append("instances per (meta class / pixel class) disagreement:")
        for pair, n in result.class_disagreements.items():
            lines.append(f"        {pair:<28} {n}")
    verdict = "clean" if result.clean else "findings: exit status 1"
    lines.append(verdict if result.findings else "")
    return "\n".join(line for line in lines if line)
