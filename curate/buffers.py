"""Scratch arrays reused from frame to frame, and the allocator setting of synmix's worker processes.

A full-size frame needs a dozen arrays of 1–4 MB (decoded maps, their 32-bit ids, run masks). Fresh
ones each frame cost page faults: glibc returns the freed memory to the kernel, which zero-fills
it again on the next touch (≈4,000 minor faults and a quarter of the CPU time per Synscapes frame).
Two remedies, both measured by ``benchmarks/convert_bench.py``:

* :func:`reusing` (the driver wraps each shard in it) keeps, per thread, one array per name:
  :func:`scratch` hands the same memory to the same role of every frame of the shard. Outside
  :func:`reusing` it is a plain ``np.empty`` (no caller can be handed memory that a later call
  overwrites unless it asked for it).
* :func:`keep_freed_memory` (worker processes of ``curate convert`` and the CLI process itself)
  tells glibc to keep freed memory in the process instead of unmapping it, so that every other
  temporary (NumPy's, OpenCV's) reuses pages too. Peak memory is unchanged; the process simply
  keeps its high-water mark until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_LOCAL = threading.local()


@contextmanager
def reusing() -> Iterator[None]:
    """Within the block, :func:`scratch` reuses this thread's arrays by name (nested: one pool)."""
    if getattr(_LOCAL, "pool", None) is not None:
        yield
        return
    _LOCAL.pool = {}
    try:
        yield
    finally:
        _LOCAL.pool = None


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array; inside :func:`reusing`, the one of the last call with this ``name``
    when shape and dtype match (its content is then the previous frame's: write before reading)."""
    pool = getattr(_LOCAL, "pool", None)
    if pool is None:
        return np.empty(shape, dtype)
    array = pool.get(name)
    if array is None or array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
        array = pool[name] = np.empty(shape, dtype)
    return array


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (above it: mmap, unmapped on free as usual).
_MMAP_THRESHOLD = 256 << 20
#: Free memory at the top of the heap is given back to the kernel only beyond this.
_TRIM_THRESHOLD = 1 << 30


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks up to 256 MB for reuse (no unmap, no trim), once per
    process. Returns False where the C library is not glibc (nothing is changed there)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
