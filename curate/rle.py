"""Every instance of an id map in one pass: COCO RLE, area and bbox for all ids at once.

pycocotools encodes one binary mask at a time (``mask.encode(id_map == id)``), so a frame with
k instances costs k full-frame comparisons. Here the frame is swept once:

1. flatten the map(s) in column-major (Fortran) order, the order COCO RLE counts pixels in;
2. find the runs of equal values (``np.flatnonzero`` on the neighbour difference);
3. keep the runs of the wanted ids and group them by id with a stable sort, so each id's runs
   stay in pixel order;
4. an id's uncompressed COCO counts are then ``[gap, run, gap, run, ..., trailing gap]``, its area
   the sum of its runs, its bbox the extreme columns and rows its runs touch;
5. all counts of all ids are compressed to COCO's string form in one call of pycocotools' C
   encoder (:func:`encode_coco_counts`, vectorised numpy, for frames too big for its uint32).

Everything after step 1 is O(number of runs), which on real label maps is about 1 % of the
pixels. Steps 1-2 and 4-5 are compiled (``curate/_rle.c``, built at install: one sweep over the
maps' bytes, one encoding pass), and so are :func:`encode_run_groups` (runs grouped by a label
per run, merged and encoded in one pass) and :func:`value_pairs` (the distinct value pairs of
two-map runs); the NumPy code here does the same where it is not built or
``SYNMIX_RLE=numpy`` (same bytes, tests assert it).
The result is byte-identical to pycocotools (tests assert it): ``counts`` equals
``mask.encode(np.asfortranarray(id_map == id))["counts"].decode()`` and ``bbox`` equals
``mask.toBbox`` of it.

Harmonization (``curate.harmonize``) works on the same runs: it relabels runs, never pixels, and
:func:`merge_runs` re-joins neighbours that ended up with the same id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import pycocotools.mask as mask_util

from curate.buffers import scratch

#: The curate/_rle.c this code calls (its VERSION): an older build left in the tree is not used.
COMPILED_VERSION = 5
try:  # the run sweep and the RLE encoder compiled (curate/_rle.c); optional: NumPy does the same
    from curate import _rle
except ImportError:  # pragma: no cover - only where the install could not compile it
    _rle = None
if getattr(_rle, "VERSION", None) != COMPILED_VERSION:
    _rle = None

#: ``SYNMIX_RLE=numpy`` forces the NumPy code of :func:`column_runs`, :func:`encode_instances`,
#: :func:`encode_run_groups` and :func:`value_pairs`.
RLE_ENV = "SYNMIX_RLE"


def compiled_module():
    """curate/_rle.c as built for this code (its VERSION), or None where it is not."""
    return _rle


def implementation() -> str:
    """What runs the per-frame passes (:func:`column_runs`, :func:`encode_instances`,
    :func:`encode_run_groups`, :func:`value_pairs`): "compiled"
    (``curate/_rle.c``, built at install) or "numpy" (where it is not built, or ``SYNMIX_RLE=numpy``);
    the results are the same."""
    if _rle is None or os.environ.get(RLE_ENV, "").lower() == "numpy":
        return "numpy"
    return "compiled"

# cv2.transpose is ~10x faster than numpy's strided copy but only knows signed/8-bit element
# types; unsigned wider types are transposed through a same-size view.
_CV2_TRANSPOSE_VIEW = {
    np.dtype(np.bool_): np.uint8,
    np.dtype(np.int8): np.uint8,
    np.dtype(np.uint32): np.int32,
    np.dtype(np.uint64): np.int64,
}
_CV2_TRANSPOSE_OK = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.int32, np.int64,
                                           np.float32, np.float64)}
# COCO's string encoding: 5 payload bits per character; a value of at most 64 bits needs 13.
_MAX_CHARS_PER_VALUE = 13


def column_major(values: np.ndarray) -> np.ndarray:
    """The pixels of a 2-D array in column-major order, as a 1-D contiguous array."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {values.shape}")
    if 0 in values.shape:
        return values.reshape(-1).copy()
    view = _CV2_TRANSPOSE_VIEW.get(values.dtype)
    if view is not None:
        return cv2.transpose(np.ascontiguousarray(values).view(view)).view(values.dtype).reshape(-1)
    if values.dtype in _CV2_TRANSPOSE_OK:
        return cv2.transpose(np.ascontiguousarray(values)).reshape(-1)
    return np.ravel(values, order="F")


def from_column_major(flat: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`column_major`: a C-contiguous HxW map."""
    cm = np.asarray(flat).reshape(width, height)
    if 0 in cm.shape:
        return cm.T.copy()
    view = _CV2_TRANSPOSE_VIEW.get(cm.dtype)
    if view is not None:
        return cv2.transpose(cm.view(view)).view(cm.dtype)
    if cm.dtype in _CV2_TRANSPOSE_OK:
        return cv2.transpose(cm)
    return np.ascontiguousarray(cm.T)


@dataclass(frozen=True)
class Runs:
    """Maximal column-major runs of a frame: where every given map is constant.

    ``values[i][r]`` is the value of map ``i`` on run ``r``; runs cover the frame without gaps.
    """

    starts: np.ndarray  # int64, first pixel (column-major index) of each run, ascending
    values: tuple[np.ndarray, ...]
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def lengths(self) -> np.ndarray:
        return _diff_to(self.starts, self.pixels)

    def __len__(self) -> int:
        return len(self.starts)


def _diff_to(values: np.ndarray, end: int) -> np.ndarray:
    """``np.diff(values, append=end)`` without its concatenation overhead."""
    out = np.empty(len(values), dtype=np.result_type(values, np.int64))
    if len(values):
        np.subtract(values[1:], values[:-1], out=out[:-1])
        out[-1] = end - values[-1]
    return out


def column_runs(*maps: np.ndarray) -> Runs:
    """Runs over which all ``maps`` (same HxW shape) are constant, in one pass over the pixels.

    A map is 2-D (any dtype), or an (H, W, 3) uint8 array holding one 24-bit value per pixel,
    byte 0 the lowest — how Synscapes packs instance ids into RGB; its run values are those
    int32 numbers, so the map need not be unpacked first.

    The comparisons run on the maps as they lie in memory (row-major): a pixel starts a
    column-major run when it differs from the pixel above it, or — in the top row — from the
    bottom pixel of the previous column. With the compiled sweep (``curate/_rle.c``, built at
    install) that is one pass over the maps' bytes; without it, NumPy comparisons whose boolean
    mask (1 byte a pixel) is transposed, never the maps themselves. Both give the same runs.
    """
    if not maps:
        raise ValueError("column_runs needs at least one map")
    maps = tuple(np.asarray(m) for m in maps)
    shape = maps[0].shape[:2]
    for m in maps:
        if m.ndim != 2 and not _is_packed(m):
            raise ValueError(f"expected 2-D maps (or H×W×3 uint8), got shape {m.shape} {m.dtype}")
        if m.shape[:2] != shape:
            raise ValueError(f"maps differ in shape: {shape} vs {m.shape[:2]}")
    height, width = shape
    if height * width == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, tuple(np.zeros(0, dtype=np.int32 if _is_packed(m) else m.dtype) for m in maps),
                    height, width)
    # bytes equal <=> values equal, and values read in this machine's byte order: native integers
    # (not bool: any non-zero byte is True; not floats: -0.0 == 0.0)
    if len(maps) <= 2 and all(m.dtype.kind in "iu" and m.dtype.isnative for m in maps) and implementation() == "compiled":
        return _swept_runs(maps, height, width)
    starts = _compared_starts(maps, height, width)
    cols, rows = np.divmod(starts, height)
    return Runs(starts, tuple(_values_at(m, rows, cols) for m in maps), height, width)


def _is_packed(m: np.ndarray) -> bool:
    return m.ndim == 3 and m.shape[2] == 3 and m.dtype == np.uint8


def _swept_runs(maps: tuple[np.ndarray, ...], height: int, width: int) -> Runs:
    """The runs by the compiled sweep: each map's pixel compared as its bytes, its values read there."""
    first, *rest = (np.ascontiguousarray(m) for m in maps)
    second = rest[0] if rest else None
    starts, *values = _rle.column_starts(first, _pixel_bytes(first), second,
                                         _pixel_bytes(second) if second is not None else 0, height, width)
    return Runs(np.frombuffer(starts, dtype=np.int64),
                tuple(np.frombuffer(v, dtype=np.int64).astype(np.int32 if _is_packed(m) else m.dtype)
                      for m, v in zip(maps, values)), height, width)


def _pixel_bytes(m: np.ndarray) -> int:
    return 3 if _is_packed(m) else m.itemsize


def _compared_starts(maps: tuple[np.ndarray, ...], height: int, width: int) -> np.ndarray:
    """Run starts by NumPy comparisons on the maps as they lie in memory (row-major)."""
    # np.empty, not zeros: every element is written below.
    starts_run = scratch("rle.starts", (height, width), bool)
    other = scratch("rle.other", (height, width), bool) if len(maps) > 1 else None
    for i, m in enumerate(maps):
        if _is_packed(m):
            m = unpack(m, buffer="rle.packed")
        target = starts_run if i == 0 else other
        np.not_equal(m[1:], m[:-1], out=target[1:])
        np.not_equal(m[0, 1:], m[-1, :-1], out=target[0, 1:])
        if i > 0:
            starts_run |= other
    starts_run[0, 0] = True
    transposed = scratch("rle.transposed", (width, height), np.uint8)
    return np.flatnonzero(cv2.transpose(starts_run.view(np.uint8), dst=transposed).view(bool).reshape(-1))


def unpack(m: np.ndarray, buffer: str | None = None) -> np.ndarray:
    """The values of a packed (..., 3) uint8 map (byte 0 lowest: Synscapes' R + 256·G + 65536·B) as
    int32, in a :func:`curate.buffers.scratch` array named ``buffer`` if given. One colour conversion
    to 4 bytes a pixel read as little-endian uint32, then a mask: ~10x cheaper than three channel casts."""
    m = np.ascontiguousarray(m)
    rgba = scratch(buffer, (*m.shape[:-1], 4), np.uint8) if buffer else None
    values = cv2.cvtColor(m, cv2.COLOR_RGB2RGBA, dst=rgba).view("<u4")[..., 0]  # little-endian on any host
    np.bitwise_and(values, 0xFFFFFF, out=values)
    return values.view("<i4")


def _values_at(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if _is_packed(values):
        picked = np.ascontiguousarray(values).reshape(-1, 3).take(rows * values.shape[1] + cols, axis=0)
        return unpack(picked.reshape(-1, 1, 3)).reshape(-1)
    if values.flags.c_contiguous:  # a flat take is ~2x cheaper than 2-D fancy indexing
        return values.reshape(-1).take(rows * values.shape[1] + cols)
    return values[rows, cols]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)``, through a stable sort: radix or timsort, several times faster than
    np.unique's quicksort on run values (long stretches of few distinct values)."""
    ordered = np.sort(np.asarray(values).reshape(-1), kind="stable")
    if len(ordered) == 0:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def is_in(values: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    """``np.isin(values, wanted)``; for 8- and 16-bit values one table lookup per element."""
    values = np.asarray(values)
    wanted = np.fromiter(wanted, dtype=np.int64)
    if values.dtype in (np.dtype(np.uint8), np.dtype(np.uint16)):
        table = np.zeros(np.iinfo(values.dtype).max + 1, dtype=bool)
        table[wanted[(wanted >= 0) & (wanted < len(table))]] = True
        return table[values]
    return np.isin(values, wanted)


def merge_runs(runs: Runs, ids: np.ndarray) -> Runs:
    """Runs of a relabelling ``ids`` (one id per run of ``runs``), neighbours with equal ids joined."""
    ids = np.asarray(ids)
    if len(ids) != len(runs):
        raise ValueError("one id per run expected")
    if len(ids) == 0:
        return Runs(runs.starts, (ids,), runs.height, runs.width)
    keep = np.empty(len(ids), dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return Runs(runs.starts[keep], (ids[keep],), runs.height, runs.width)


def expand_runs(runs: Runs, values: np.ndarray, dtype=None) -> np.ndarray:
    """An HxW map holding ``values[r]`` on the pixels of run ``r`` (the inverse of the sweep)."""
    values = np.asarray(values if dtype is None else np.asarray(values).astype(dtype, copy=False))
    flat = np.repeat(values, runs.lengths)
    return from_column_major(flat, runs.height, runs.width)


@dataclass(frozen=True)
class InstanceMasks:
    """COCO masks of many ids of one frame, row ``i`` describing ``ids[i]`` (ascending)."""

    ids: np.ndarray  # the ids, ascending, unique
    counts: list[str]  # COCO compressed RLE strings
    areas: np.ndarray  # int64 pixel counts
    bboxes: np.ndarray  # float64 (n, 4) XYWH exactly as pycocotools.mask.toBbox
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.ids)

    def rle(self, i: int) -> dict:
        return {"size": [self.height, self.width], "counts": self.counts[i]}

    def index(self) -> dict[int, int]:
        """Row of each id."""
        return {int(v): i for i, v in enumerate(self.ids.tolist())}


def encode_coco_counts(values: np.ndarray, group_starts: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Compress many uncompressed COCO count lists at once (pycocotools ``rleToString``).

    ``values`` holds the lists back to back, list ``g`` starting at ``group_starts[g]``. COCO
    stores each count minus the count two places back (from the 4th count of a list on) in a
    LEB128-like code: 5 bits per character, bit 0x20 = "more follows", offset by 48.
    Returns all characters and each list's start offset in them (plus the end offset).
    """
    values = np.asarray(values, dtype=np.int64)
    total = len(values)
    group_starts = np.asarray(group_starts, dtype=np.int64)
    if total == 0:
        return b"", np.zeros(len(group_starts) + 1, dtype=np.int64)
    group_lengths = np.diff(group_starts, append=total)
    local = np.arange(total, dtype=np.int64) - np.repeat(group_starts, group_lengths)
    delta = values.copy()
    later = np.flatnonzero(local > 2)
    delta[later] -= values[later - 2]

    chars = np.empty((total, _MAX_CHARS_PER_VALUE), dtype=np.uint8)
    n_chars = np.zeros(total, dtype=np.int64)
    active = np.ones(total, dtype=bool)
    x = delta
    for k in range(_MAX_CHARS_PER_VALUE):
        chunk = x & 0x1F
        x = x >> 5  # arithmetic shift, as the C code's signed long
        more = np.where(chunk & 0x10, x != -1, x != 0)
        chars[:, k] = chunk + 48 + (more * 0x20)
        n_chars += active
        active &= more
        if not active.any():
            break
    used = np.arange(_MAX_CHARS_PER_VALUE)[None, :] < n_chars[:, None]
    encoded = chars[used].tobytes()
    char_starts = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(n_chars, out=char_starts[1:])
    offsets = np.empty(len(group_starts) + 1, dtype=np.int64)
    offsets[:-1] = char_starts[group_starts]
    offsets[-1] = char_starts[-1]
    return encoded, offsets


def compress_counts(values: np.ndarray, group_starts: np.ndarray, height: int, width: int) -> list[str]:
    """COCO strings of many uncompressed count lists (laid out as for :func:`encode_coco_counts`).

    pycocotools' own C encoder (``frPyObjects`` of uncompressed RLEs) is ~2x faster than the
    vectorised one on a frame's few dozen lists; it stores counts as uint32, so frames of 2**32
    pixels or more take :func:`encode_coco_counts`.
    """
    if len(group_starts) == 0:
        return []
    if height * width < 2**32:
        counts = np.asarray(values).astype(np.uint32)
        bounds = np.asarray(group_starts).tolist() + [len(counts)]
        size = [height, width]
        rles = mask_util.frPyObjects([{"size": size, "counts": counts[a:b]} for a, b in zip(bounds, bounds[1:])],
                                     height, width)
        return [rle["counts"].decode("ascii") for rle in rles]
    encoded, offsets = encode_coco_counts(values, group_starts)
    text = encoded.decode("ascii")
    return [text[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def encode_instances(runs: Runs, ids: np.ndarray | None = None, keep: np.ndarray | None = None) -> InstanceMasks:
    """COCO RLE, area and bbox of every id whose runs are selected.

    ``ids``: one id per run (default ``runs.values[0]``); ``keep``: boolean per run (default:
    every run). Ids are reported ascending; an id appears only if it has a selected run.
    """
    ids = runs.values[0] if ids is None else np.asarray(ids)
    h, w = runs.height, runs.width
    n_pixels = h * w
    starts = runs.starts
    lengths = runs.lengths
    if keep is not None:
        starts, lengths, ids = starts[keep], lengths[keep], ids[keep]
    if len(ids) == 0:
        return InstanceMasks(np.zeros(0, dtype=np.asarray(ids).dtype), [], np.zeros(0, dtype=np.int64),
                             np.zeros((0, 4), dtype=np.float64), h, w)
    order = np.argsort(ids, kind="stable")  # stable: each id's runs stay in pixel order
    starts, lengths, ids = starts[order], lengths[order], ids[order]
    n_runs = len(ids)
    first = np.empty(n_runs, dtype=bool)
    first[0] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    group_first = np.flatnonzero(first)  # index of each id's first run
    if implementation() == "compiled":
        as_int64 = [np.ascontiguousarray(a, dtype=np.int64) for a in (starts, lengths, group_first)]
        return _compiled_masks(ids[group_first], *_rle.encode_groups(*as_int64, h, w), h, w)
    group_sizes = _diff_to(group_first, n_runs)
    group_last = group_first + group_sizes - 1
    group_of_run = np.repeat(np.arange(len(group_first)), group_sizes)

    ends = starts + lengths
    previous_end = np.empty(n_runs, dtype=np.int64)
    previous_end[0] = 0
    previous_end[1:] = ends[:-1]
    previous_end[group_first] = 0
    gaps = starts - previous_end
    trailing = n_pixels - ends[group_last]  # zeros after the id's last run (omitted when 0)
    has_trailing = (trailing > 0).astype(np.int64)
    trailing_before = np.cumsum(has_trailing) - has_trailing

    # counts of id g: [gap, run] per run, then the trailing gap if any
    pair_pos = 2 * np.arange(n_runs, dtype=np.int64) + trailing_before[group_of_run]
    total = 2 * n_runs + int(has_trailing.sum())
    counts = np.empty(total, dtype=np.int64)
    counts[pair_pos] = gaps
    counts[pair_pos + 1] = lengths
    trailing_pos = 2 * (group_last + 1) + trailing_before
    with_trailing = has_trailing.astype(bool)
    counts[trailing_pos[with_trailing]] = trailing[with_trailing]
    group_count_starts = 2 * group_first + trailing_before

    strings = compress_counts(counts, group_count_starts, h, w)

    areas = np.add.reduceat(lengths, group_first)
    bboxes = _group_boxes(starts, ends, group_first, group_last, h)
    return InstanceMasks(ids[group_first], strings, areas.astype(np.int64), bboxes, h, w)


def encode_run_groups(runs: Runs, group: np.ndarray, groups: int) -> InstanceMasks:
    """COCO RLE, area and bbox of each group of runs: ``group[r]`` is run ``r``'s group, 0..groups-1,
    or -1 for none; neighbouring runs of one group join. Rows (``ids``) are the groups that have a
    run, ascending: :func:`encode_instances` of the merged runs, in one compiled pass."""
    group = np.ascontiguousarray(group, dtype=np.int64)
    if len(group) != len(runs):
        raise ValueError("one group per run expected")
    if len(group) == 0:
        return InstanceMasks(np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64),
                             np.zeros((0, 4), dtype=np.float64), runs.height, runs.width)
    if implementation() != "compiled":
        if group.min() < -1 or group.max() >= groups:  # what the compiled pass refuses
            raise ValueError(f"groups must be -1..{groups - 1}")
        merged = merge_runs(runs, group)
        return encode_instances(merged, keep=merged.values[0] >= 0)
    present, *encoded = _rle.encode_run_groups(np.ascontiguousarray(runs.starts, dtype=np.int64), group, groups,
                                               runs.height, runs.width)
    return _compiled_masks(np.frombuffer(present, dtype=np.int64), *encoded, runs.height, runs.width)


def _compiled_masks(ids: np.ndarray, text: bytes, offsets, areas, boxes, height: int, width: int) -> InstanceMasks:
    """InstanceMasks of what the compiled encoders return (_rle.c: text, offsets, areas, boxes)."""
    text, bounds = text.decode("ascii"), np.frombuffer(offsets, dtype=np.int64).tolist()
    return InstanceMasks(ids, [text[a:b] for a, b in zip(bounds, bounds[1:])], np.frombuffer(areas, dtype=np.int64),
                         np.frombuffer(boxes, dtype=np.float64).reshape(-1, 4), height, width)


@dataclass(frozen=True)
class ValuePairs:
    """The distinct (first, second) values of two-map runs, ascending, with the pixels of each pair,
    and each run's pair: what per-pair tables (a few dozen entries) need to become per-run arrays."""

    first: list[int]
    second: list[int]
    pixels: list[int]
    of_run: np.ndarray  # int64 index into the pairs, one per run

    def __len__(self) -> int:
        return len(self.first)

    def per_run(self, per_pair) -> np.ndarray:
        """A per-pair table (one int per pair) as an int64 array of one value per run."""
        return np.asarray(per_pair, dtype=np.int64)[self.of_run]


def value_pairs(runs: Runs) -> ValuePairs:
    """The distinct (values[0], values[1]) pairs of ``runs`` (one hash pass where compiled)."""
    if len(runs.values) != 2:
        raise ValueError(f"value_pairs needs runs of two maps, got {len(runs.values)}")
    first, second = (np.asarray(v).astype(np.int64) for v in runs.values)
    if implementation() == "compiled":
        of_run, a, b, pixels = _rle.value_pairs(first, second, np.ascontiguousarray(runs.starts, dtype=np.int64),
                                                runs.pixels)
        return ValuePairs(np.frombuffer(a, dtype=np.int64).tolist(), np.frombuffer(b, dtype=np.int64).tolist(),
                          np.frombuffer(pixels, dtype=np.int64).tolist(), np.frombuffer(of_run, dtype=np.int64))
    pairs, of_run = np.unique(np.column_stack([first, second]), axis=0, return_inverse=True)
    of_run = of_run.reshape(-1).astype(np.int64)
    pixels = np.bincount(of_run, weights=runs.lengths, minlength=len(pairs)).astype(np.int64)
    return ValuePairs(pairs[:, 0].tolist(), pairs[:, 1].tolist(), pixels.tolist(), of_run)


def _group_boxes(starts: np.ndarray, ends: np.ndarray, group_first: np.ndarray, group_last: np.ndarray,
                 h: int) -> np.ndarray:
    """XYWH box of each group of runs (runs sorted by group, each group's runs in pixel order)."""
    # the extreme columns and rows the runs touch; a run crossing a column boundary covers the
    # bottom of one column and the top of the next, so every row.
    last = ends - 1
    col_start, row_start = np.divmod(starts, h)
    col_end, row_end = np.divmod(last, h)
    crosses = col_end > col_start
    row_min = np.where(crosses, 0, row_start)
    row_max = np.where(crosses, h - 1, row_end)
    x0 = col_start[group_first]  # runs are in pixel order: first run has the smallest column
    x1 = col_end[group_last]
    y0 = np.minimum.reduceat(row_min, group_first)
    y1 = np.maximum.reduceat(row_max, group_first)
    bboxes = np.empty((len(group_first), 4), dtype=np.float64)
    bboxes[:, 0] = x0
    bboxes[:, 1] = y0
    bboxes[:, 2] = x1 - x0 + 1
    bboxes[:, 3] = y1 - y0 + 1
    return bboxes


def value_boxes(runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct value of ``runs.values[0]`` (ascending) and its XYWH box (no RLE)."""
    ids = runs.values[0]
    order = np.argsort(ids, kind="stable")
    starts, ids = runs.starts[order], ids[order]
    ends = starts + runs.lengths[order]
    first = np.empty(len(ids), dtype=bool)
    first[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    group_first = np.flatnonzero(first)
    group_last = np.append(group_first[1:], len(ids)) - 1
    return ids[group_first], _group_boxes(starts, ends, group_first, group_last, runs.height)


def empty_rle(height: int, width: int) -> dict:
    """COCO RLE of an all-zero mask (what pycocotools gives for ``np.zeros``)."""
    encoded, _ = encode_coco_counts(np.array([height * width]), np.array([0]))
    return {"size": [height, width], "counts": encoded.decode("ascii")}


def _keep_mask(run_ids: np.ndarray, keep) -> np.ndarray | None:
    if keep is None:
        return None
    if callable(keep):
        return np.asarray(keep(run_ids), dtype=bool)
    return np.isin(run_ids, np.fromiter(keep, dtype=np.int64) if not isinstance(keep, np.ndarray) else keep)


def extract_instances(
    id_map: np.ndarray,
    keep: Callable[[np.ndarray], np.ndarray] | Iterable[int] | np.ndarray | None = None,
) -> InstanceMasks:
    """COCO RLE, area and bbox of every id of ``id_map`` in one pass.

    ``keep``: which ids to report — a vectorised predicate (array of ids → boolean array), a
    collection of ids, or None for every value present (including 0).
    """
    runs = column_runs(id_map)
    return encode_instances(runs, keep=_keep_mask(runs.values[0], keep))
