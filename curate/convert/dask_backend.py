"""The Dask backend of ``curate convert`` (``--backend dask --scheduler tcp://HOST:PORT``).

The same picklable shard tasks the joblib backend runs go to an existing ``dask.distributed``
cluster (``client.map`` + ``as_completed``). Each task writes its shard file itself, and the
client merges the shards, so the output is byte-identical to a local run — provided every worker
sees the input root and OUT at the same paths (a shared file system), which :meth:`open` checks.

``dask.distributed`` is optional (extra ``synmix[dask]``) and imported only here, lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from curate import __version__
from curate.errors import CurateError

INSTALL_HINT = "--backend dask needs dask.distributed: pip install 'synmix[dask]'"
NO_SCHEDULER = ("--backend dask needs --scheduler tcp://HOST:PORT (the address `dask scheduler` prints) "
                "or DASK_SCHEDULER_ADDRESS; on one machine use --backend joblib")
#: How long to wait for a first worker when the scheduler has none yet (workers still starting).
WAIT_FOR_WORKERS_S = 30


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def import_distributed():
    try:
        import distributed
    except ImportError:
        raise CurateError(None, INSTALL_HINT) from None
    return distributed


def scheduler_address(scheduler: str | None) -> str:
    """``--scheduler``, else Dask's own ``scheduler-address`` setting (env DASK_SCHEDULER_ADDRESS)."""
    if scheduler:
        return scheduler
    try:
        import dask.config
    except ImportError:
        raise CurateError(None, INSTALL_HINT) from None
    address = dask.config.get("scheduler-address", None)
    if not address:
        raise CurateError(None, NO_SCHEDULER)
    return address


def worker_problem(version: str, shared_dirs: list[str], writable_dirs: list[str]) -> str | None:
    """Runs on every worker: why this worker cannot take part, or None."""
    import curate

    if curate.__version__ != version:
        return f"runs synmix {curate.__version__}, the client synmix {version}: install the same version everywhere"
    for path in shared_dirs:
        if not os.path.isdir(path):
            return (f"does not see {path}: every Dask worker needs the input root and OUT at the same paths "
                    f"(a shared file system)")
    for path in writable_dirs:
        if not os.access(path, os.W_OK | os.X_OK):
            return f"cannot write to {path}"
    return None


class DaskBackend:
    """A connection to a Dask cluster for the duration of one conversion (a context manager)."""

    in_process = False
    name = "dask"

    def __init__(self, scheduler: str | None, shared_dirs=(), writable_dirs=()):
        self.scheduler = scheduler_address(scheduler)
        self.shared_dirs = [str(p) for p in shared_dirs]
        self.writable_dirs = [str(p) for p in writable_dirs]
        self.client = None
        self.workers = 0

    def __enter__(self) -> DaskBackend:
        distributed = import_distributed()
        try:
            self.client = distributed.Client(self.scheduler, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise CurateError(None, f"cannot reach the Dask scheduler at {self.scheduler}: {one_line(err)}") from None
        try:
            self._check_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _check_workers(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
        except (TimeoutError, OSError):
            raise CurateError(None, f"the Dask scheduler at {self.scheduler} has no workers "
                                    f"(start some with: dask worker {self.scheduler})") from None
        try:
            problems = self.client.run(worker_problem, __version__, self.shared_dirs, self.writable_dirs)
        except Exception as err:  # typically: the worker cannot unpickle (import) synmix's code
            raise CurateError(None, f"a Dask worker cannot run synmix's tasks (is synmix installed in the "
                                    f"workers' Python environment?): {one_line(err)}") from None
        for address, problem in sorted(problems.items()):
            if problem:
                raise CurateError(None, f"Dask worker {address} {problem}")
        # worker threads = tasks running at once (what --workers means for joblib)
        self.workers = sum(self.client.nthreads().values())

    def map_unordered(self, fn: Callable, tasks: list) -> Iterator:
        """Yield ``fn(task)`` for every task as it completes; a task's CurateError is re-raised as is."""
        from distributed import as_completed

        # pure=False: a rerun must run again (and rewrite its shard), never reuse a cached result
        futures = self.client.map(fn, tasks, pure=False, retries=0)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                try:
                    result = future.result()
                except CurateError:
                    raise
                except Exception as err:  # a dead worker (KilledWorker), an OSError writing a shard …
                    raise CurateError(None, f"a task failed on the Dask cluster: {one_line(err)}") from None
                yield result
        finally:
            # on an error (or an interrupt) the remaining tasks are cancelled; a task already
            # running finishes its shard, which is harmless: shard writes are atomic
            self.client.cancel(futures)

