"""Progress of every long loop: a tqdm bar on a terminal, plain periodic lines in a log, or nothing.

``progress=None`` (the default of every library function) chooses by stderr: a bar when it is a
terminal; otherwise, once a loop has run for 2 seconds, one plain line at most every 10 % of the
work or 30 seconds and one at the end, so logs of batch jobs (SLURM, CI) show progress without
carriage-return frames (and quick commands stay silent). ``False`` (``--quiet``) shows nothing,
``True`` always a bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

#: A plain line at most this often: every 10 % of the work, or this many seconds; none before QUIET_SECONDS.
LINE_STEP, LINE_SECONDS, QUIET_SECONDS = 0.1, 30.0, 2.0


class PlainProgress:
    """The part of tqdm's interface synmix uses, writing whole lines to stderr."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n = desc, unit, initial
        self.started = self.last_time = time.monotonic()
        self.last_n = initial
        self.closed = self.printed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.started < QUIET_SECONDS:
            return
        step = (self.total or 0) * LINE_STEP
        if (step and self.n - self.last_n >= step) or now - self.last_time >= LINE_SECONDS or not self.printed:
            self._line(now)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.printed and self.n != self.last_n:
                self._line(time.monotonic())

    def _line(self, now: float) -> None:
        self.last_time, self.last_n, self.printed = now, self.n, True
        elapsed = max(now - self.started, 1e-9)
        of = f"/{self.total}" if self.total else ""
        share = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        rate = self.n / elapsed
        print(f"{self.desc}: {self.n}{of} {self.unit}s{share}, {rate:.1f} {self.unit}s/s, {elapsed:.0f} s",
              file=sys.stderr, flush=True)


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 progress: bool | None = None, initial: int = 0, leave: bool = True):
    """A tqdm bar, a :class:`PlainProgress`, or a silent one (``progress=False``)."""
    from tqdm import tqdm

    if progress is False:
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=True)
    if progress is None and not sys.stderr.isatty():
        return PlainProgress(iterable, total, desc, unit, initial)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True)
