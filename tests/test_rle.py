"""Single-pass RLE extraction must match pycocotools' per-instance path byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pycocotools.mask as mask_util
import pytest

from curate import rle as rle_module
from curate.fileio import read_png
from curate.labels import FIRST_INSTANCE_LABEL_ID, LABEL_ID
from curate.rle import (
    column_runs,
    empty_rle,
    encode_coco_counts,
    encode_instances,
    expand_runs,
    extract_instances,
    merge_runs,
)


def reference(id_map: np.ndarray, ids) -> dict[int, tuple[str, int, list[float]]]:
    """pycocotools, one full-frame comparison per id (what Detectron2 and MMDetection do)."""
    out = {}
    for i in ids:
        rle = mask_util.encode(np.asfortranarray((id_map == i).astype(np.uint8)))
        out[int(i)] = (rle["counts"].decode(), int(mask_util.area(rle)), mask_util.toBbox(rle).tolist())
    return out


def assert_matches_pycocotools(id_map: np.ndarray, keep=None) -> int:
    got = extract_instances(id_map, keep=keep)
    present = np.unique(id_map)
    expected_ids = present if keep is None else present[keep(present)]
    assert got.ids.tolist() == expected_ids.tolist()
    expected = reference(id_map, expected_ids)
    for row, i in enumerate(got.ids.tolist()):
        counts, area, bbox = expected[i]
        assert got.counts[row] == counts, f"id {i}"
        assert got.rle(row) == {"size": list(id_map.shape), "counts": counts}
        assert int(got.areas[row]) == area, f"id {i}"
        assert got.bboxes[row].tolist() == bbox, f"id {i}"
    return len(got)


def test_random_small_maps_match_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 13, 2))
        n_ids = int(rng.integers(1, 6))
        assert_matches_pycocotools(rng.integers(0, n_ids, (h, w)).astype(np.int32))


def test_random_blobs_with_large_ids_and_uint16():
    rng = np.random.default_rng(1)
    for dtype, top in ((np.int32, 1 << 24), (np.uint16, 1 << 16)):
        for _ in range(5):
            coarse = rng.integers(0, top, (12, 18)).astype(dtype)
            id_map = np.kron(coarse, np.ones((17, 11), dtype=dtype))[:200, :190]  # blocks: long runs
            id_map[rng.random(id_map.shape) < 0.02] = 0  # speckle: many short runs
            assert assert_matches_pycocotools(id_map) > 100


@pytest.mark.parametrize(
    "id_map",
    [
        np.array([[7, 0], [0, 0]]),  # instance on the first pixel
        np.array([[0, 0], [0, 7]]),  # instance on the last pixel
        np.array([[7, 7], [7, 7]]),  # instance covering the frame: counts start with a 0 run
        np.array([[0, 0, 0], [0, 7, 0], [0, 0, 0]]),  # 1-pixel instance
        np.array([[3], [3], [0], [5], [3]]),  # single column
        np.array([[3, 3, 0, 5, 3]]),  # single row: every run crosses a column boundary
        np.array([[1]]),
        np.array([[0, 1], [1, 0], [0, 1], [1, 0]]),  # checkerboard: every pixel its own run
        np.tile(np.array([[9], [0]]), (1, 40)),  # one id in every column, same row
    ],
)
def test_edge_cases_match_pycocotools(id_map):
    assert_matches_pycocotools(id_map.astype(np.int32))


def test_run_crossing_a_column_spans_all_rows():
    # id 4 covers the last row of column 0 and the first row of column 1: bbox is full height
    id_map = np.array([[0, 4, 0], [0, 0, 0], [4, 0, 0]], dtype=np.int32)
    masks = extract_instances(id_map, keep=[4])
    assert masks.bboxes[0].tolist() == [0.0, 0.0, 2.0, 3.0]
    assert_matches_pycocotools(id_map, keep=lambda v: v == 4)


def test_keep_selects_ids_and_empty_selection():
    id_map = np.array([[0, 2, 2], [5, 5, 0]], dtype=np.int32)
    assert extract_instances(id_map, keep=lambda v: v > 0).ids.tolist() == [2, 5]
    assert extract_instances(id_map, keep=[5]).ids.tolist() == [5]
    none = extract_instances(id_map, keep=lambda v: v > 100)
    assert len(none) == 0 and none.counts == [] and none.bboxes.shape == (0, 4)


def test_empty_maps():
    assert len(extract_instances(np.zeros((0, 0), dtype=np.int32))) == 0
    assert len(extract_instances(np.zeros((0, 5), dtype=np.int32))) == 0
    zeros = np.zeros((4, 6), dtype=np.uint8)
    assert len(extract_instances(zeros, keep=lambda v: v != 0)) == 0
    expected = mask_util.encode(np.asfortranarray(zeros))
    assert empty_rle(4, 6) == {"size": [4, 6], "counts": expected["counts"].decode()}


def test_counts_encoder_matches_pycocotools_on_wild_values():
    # large counts and large negative deltas (value two places back much bigger)
    rng = np.random.default_rng(2)
    lists = [[0, 1], [5], [3, 1_000_000, 2, 1, 7_000_000, 1], list(rng.integers(1, 1 << 22, 51))]
    for counts in lists:
        n = int(sum(counts))
        expected = mask_util.frPyObjects({"size": [n, 1], "counts": [int(c) for c in counts]}, n, 1)["counts"]
        encoded, offsets = encode_coco_counts(np.array(counts), np.array([0]))
        assert encoded[offsets[0]:offsets[1]] == expected


def test_counts_encoder_handles_many_lists_at_once():
    lists = [[4, 2, 9], [0, 16], [1, 1, 1, 1, 1, 11]]
    starts = np.cumsum([0] + [len(c) for c in lists[:-1]])
    encoded, offsets = encode_coco_counts(np.concatenate(lists), starts)
    for i, counts in enumerate(lists):
        expected = mask_util.frPyObjects({"size": [16, 1], "counts": counts}, 16, 1)["counts"]
        assert encoded[offsets[i]:offsets[i + 1]] == expected


def test_runs_round_trip_and_joint_runs():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, (9, 7)).astype(np.int32)
    b = rng.integers(0, 2, (9, 7)).astype(np.uint8)
    runs = column_runs(a, b)
    assert np.array_equal(expand_runs(runs, runs.values[0]), a)
    assert np.array_equal(expand_runs(runs, runs.values[1]), b)
    # runs are maximal for the pair: neighbouring runs differ in at least one map
    va, vb = runs.values
    assert np.all((va[1:] != va[:-1]) | (vb[1:] != vb[:-1]))
    merged = merge_runs(runs, va)
    assert np.array_equal(expand_runs(merged, merged.values[0]), a)
    assert len(merged) == len(column_runs(a))


def test_real_cityscapes_frames_match_pycocotools(fixtures_dir):
    paths = sorted((fixtures_dir / "cityscapes-real" / "gtFine").glob("*/*/*_gtFine_instanceIds.png"))
    assert len(paths) >= 20
    checked = 0
    for path in paths[::3]:  # a spread of train and val frames (the per-instance path is slow)
        id_map = read_png(path)
        assert id_map.dtype == np.uint16 and id_map.shape == (1024, 2048)
        checked += assert_matches_pycocotools(id_map, keep=lambda v: v >= FIRST_INSTANCE_LABEL_ID)
    assert checked > 100
    # the fixtures hold group regions (plain label ids): they are extracted like instances
    assert any((read_png(p) == LABEL_ID["car"]).any() for p in paths)


def _c_compiler() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    return bool(compiler) and shutil.which(compiler[0]) is not None


needs_compiled = pytest.mark.skipif(rle_module._rle is None, reason="curate/_rle.c is not built here (no C compiler)")


@pytest.mark.skipif(not _c_compiler(), reason="no C compiler: the install uses the NumPy code (same output)")
def test_compiled_run_sweep_is_built(monkeypatch):
    """install.sh compiles curate/_rle.c (setup.py); without it convert falls back to NumPy, same
    output but ~1 ms a frame slower, which only a benchmark would notice — so a test does, where
    a C compiler is there to build it."""
    monkeypatch.delenv(rle_module.RLE_ENV, raising=False)
    assert rle_module._rle is not None and rle_module.implementation() == "compiled"
    monkeypatch.setenv(rle_module.RLE_ENV, "numpy")  # what the pinned-output test's fallback run sets
    assert rle_module.implementation() == "numpy"


def _both_starts(*maps):
    """The runs' starts by the compiled sweep and by NumPy (their values are compared in _both_runs)."""
    maps = tuple(np.asarray(m) for m in maps)
    height, width = maps[0].shape[:2]
    return rle_module._swept_runs(maps, height, width).starts, rle_module._compared_starts(maps, height, width)


def _assert_both_runs(monkeypatch, *maps):
    monkeypatch.delenv(rle_module.RLE_ENV, raising=False)
    swept = column_runs(*maps)
    monkeypatch.setenv(rle_module.RLE_ENV, "numpy")
    compared = column_runs(*maps)
    monkeypatch.delenv(rle_module.RLE_ENV)
    assert np.array_equal(swept.starts, compared.starts)
    for a, b in zip(swept.values, compared.values, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), (a.dtype, b.dtype)


@needs_compiled
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (3, 17), (33, 9), (64, 130)])
def test_compiled_sweep_finds_the_runs_numpy_finds(shape):
    """Every dtype, one and two maps, packed RGB maps, few and many distinct values (runs of every
    length, words of 8 bytes with one or several differing bytes, rows shorter than a word)."""
    rng = np.random.default_rng(sum(shape))
    for dtype in (np.uint8, bool, np.int16, np.uint16, np.int32, np.uint32, np.int64):
        for distinct in (1, 2, 5, 300):
            a = rng.integers(0, distinct, shape).astype(dtype)
            b = rng.integers(0, 2, shape).astype(np.uint8)
            packed = rng.integers(0, distinct, (*shape, 3)).astype(np.uint8)
            for maps in ((a,), (a, b), (packed,), (packed, b), (b, packed)):
                swept, compared = _both_starts(*maps)
                assert swept.dtype == compared.dtype == np.int64
                assert np.array_equal(swept, compared), (dtype, distinct, [m.shape for m in maps])


@needs_compiled
@pytest.mark.parametrize("dtype", [np.uint8, bool, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                   np.uint64])
def test_compiled_sweep_reads_the_values_numpy_reads(monkeypatch, dtype):
    """Negative values, values past 2**63, and a non-contiguous map (its values are those of its copy)."""
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype) if dtype is not bool else None
    pool = np.array([0, 1] if info is None else [info.min, info.min + 1, 0, 1, info.max - 1, info.max], dtype=dtype)
    a = rng.choice(pool, (23, 19))
    b = rng.integers(0, 3, (23, 19)).astype(np.uint8)
    packed = rng.integers(0, 256, (23, 19, 3)).astype(np.uint8)
    for maps in ((a,), (a, b), (b, a), (packed, a), (a[:, ::2],), (packed[::2], a[::2])):
        _assert_both_runs(monkeypatch, *maps)


def test_packed_maps_give_the_runs_and_values_of_their_ids():
    rng = np.random.default_rng(5)
    ids = rng.choice(np.array([0, 1, 255, 256, 65535, 65536, (1 << 24) - 1], np.int32), (40, 30))
    ids[10:30, 5:20] = 7  # long runs too
    packed = np.stack([ids & 255, (ids >> 8) & 255, ids >> 16], axis=-1).astype(np.uint8)  # byte 0 lowest
    cls = rng.integers(0, 3, ids.shape).astype(np.uint8)
    from_ids, from_packed = column_runs(ids, cls), column_runs(packed, cls)
    assert np.array_equal(from_ids.starts, from_packed.starts)
    assert from_packed.values[0].dtype == np.int32
    assert np.array_equal(from_ids.values[0], from_packed.values[0])
    assert np.array_equal(from_ids.values[1], from_packed.values[1])


@needs_compiled
def test_real_cityscapes_runs_by_both_passes(fixtures_dir):
    paths = sorted((fixtures_dir / "cityscapes-real" / "gtFine").glob("*/*/*_gtFine_*Ids.png"))
    assert len(paths) >= 20
    for path in paths:
        swept, compared = _both_starts(read_png(path))
        assert np.array_equal(swept, compared), path


def test_float_maps_are_compared_by_value():
    """-0.0 == 0.0 although their bytes differ: float maps never take the byte sweep."""
    m = np.array([[0.0, -0.0], [-0.0, 0.0]])
    assert len(column_runs(m)) == 1


def _encoded_both_ways(monkeypatch, runs, ids=None, keep=None):
    monkeypatch.delenv(rle_module.RLE_ENV, raising=False)
    compiled = encode_instances(runs, ids, keep)
    monkeypatch.setenv(rle_module.RLE_ENV, "numpy")
    reference = encode_instances(runs, ids, keep)
    monkeypatch.delenv(rle_module.RLE_ENV)
    return compiled, reference


def _assert_same_masks(a, b):
    assert a.ids.tolist() == b.ids.tolist() and a.counts == b.counts
    assert a.areas.dtype == b.areas.dtype == np.int64 and a.areas.tolist() == b.areas.tolist()
    assert a.bboxes.dtype == b.bboxes.dtype == np.float64 and np.array_equal(a.bboxes, b.bboxes)


@needs_compiled
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (5, 7), (40, 30), (257, 3)])
def test_compiled_encoder_gives_the_bytes_numpy_gives(monkeypatch, shape):
    """Ids touching pixel 0 and the last pixel, runs crossing columns, long and single-pixel runs,
    a selection of runs (keep), and ids given apart from the runs' values."""
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    for distinct in (1, 3, 50):
        id_map = rng.integers(0, distinct, shape).astype(np.int32)
        id_map[: shape[0] // 2, : shape[1] // 2] = distinct + 1  # a large block
        runs = column_runs(id_map)
        _assert_same_masks(*_encoded_both_ways(monkeypatch, runs))
        _assert_same_masks(*_encoded_both_ways(monkeypatch, runs, keep=runs.values[0] % 2 == 1))
        _assert_same_masks(*_encoded_both_ways(monkeypatch, runs, ids=runs.values[0] // 2))


@needs_compiled
def test_compiled_encoder_on_frames_beyond_32_bit_counts(monkeypatch):
    """Counts above 2**32 (pycocotools' uint32 cannot hold them; the NumPy code then encodes
    itself): the runs of a 70,000 x 70,000 frame, built without its pixels."""
    height = width = 70_000
    pixels = height * width
    starts = np.array([0, 5, 2**32 + 7, 2**32 + 7 + 3 * height, pixels - 2], dtype=np.int64)
    runs = rle_module.Runs(starts, (np.array([0, 4, 0, 4, 9], np.int64),), height, width)
    compiled, reference = _encoded_both_ways(monkeypatch, runs, keep=runs.values[0] != 0)
    _assert_same_masks(compiled, reference)
    assert compiled.ids.tolist() == [4, 9] and compiled.areas.tolist() == [pixels - 7 - 3 * height, 2]


@needs_compiled
def test_real_cityscapes_masks_by_both_encoders(monkeypatch, fixtures_dir):
    paths = sorted((fixtures_dir / "cityscapes-real" / "gtFine").glob("*/*/*_gtFine_instanceIds.png"))
    assert len(paths) >= 20
    for path in paths:
        runs = column_runs(read_png(path))
        _assert_same_masks(*_encoded_both_ways(monkeypatch, runs, keep=runs.values[0] >= FIRST_INSTANCE_LABEL_ID))


def test_maps_in_the_other_byte_order_keep_their_values():
    """The sweep reads pixels in this machine's byte order: other orders go to NumPy."""
    for dtype in (">i4", "<i4", ">u2", "<u2"):
        m = np.array([[1, 1], [2, 3]], dtype=dtype)
        assert column_runs(m).values[0].tolist() == [1, 2, 1, 3], dtype


@needs_compiled
def test_compiled_module_checks_its_inputs():
    """Sizes that would overflow, and int32 where int64 is expected, are errors, not reads past a buffer."""
    with pytest.raises(ValueError):
        rle_module._rle.column_starts(np.zeros(4, np.int64), 8, None, 0, 1263665316, 1824726041)
    with pytest.raises(ValueError):
        rle_module._rle.column_starts(np.zeros(6, np.uint8), 1, None, 0, 2, 2)  # 6 bytes for 4 pixels
    with pytest.raises(ValueError, match="int64"):
        rle_module._rle.encode_groups(np.zeros(2, np.int32), np.ones(2, np.int32), np.zeros(2, np.int32), 2, 2)
    ok = rle_module._rle.encode_groups(np.array([0], np.int64), np.array([4], np.int64), np.array([0], np.int64), 2, 2)
    assert bytes(ok[0]) == b"04"  # pycocotools' string of a full 2x2 mask: counts [0, 4]


def test_runs_are_writable_arrays_either_way(monkeypatch):
    m = np.array([[1, 1], [2, 3]], dtype=np.int32)
    for implementation in ("", "numpy"):
        monkeypatch.setenv(rle_module.RLE_ENV, implementation)
        runs = column_runs(m)
        assert runs.starts.flags.writeable and runs.values[0].flags.writeable


@needs_compiled
def test_a_build_of_another_version_is_not_used():
    """An older curate/_rle.c build left in the tree (its functions may differ) leaves NumPy in charge."""
    code = ("import curate._rle as c\nc.VERSION = -1\nimport curate.rle as r\nprint(r.implementation())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["numpy"], proc.stderr


def _grouped_both_ways(monkeypatch, runs, group, groups):
    monkeypatch.delenv(rle_module.RLE_ENV, raising=False)
    compiled = rle_module.encode_run_groups(runs, group, groups)
    monkeypatch.setenv(rle_module.RLE_ENV, "numpy")
    reference = rle_module.encode_run_groups(runs, group, groups)
    monkeypatch.delenv(rle_module.RLE_ENV)
    return compiled, reference


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (5, 7), (40, 30), (257, 3)])
def test_run_groups_are_the_masks_of_their_pixels(monkeypatch, shape):
    """encode_run_groups: each group's mask is pycocotools' of the pixels of its runs (neighbouring
    runs of one group joined, runs of group -1 left out), by the compiled pass and by NumPy."""
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    for distinct in (1, 4, 40):
        id_map = rng.integers(0, distinct, shape).astype(np.int32)
        runs = column_runs(id_map, rng.integers(0, 2, shape).astype(np.uint8))
        for groups in (1, 3, 7):
            group = rng.integers(-1, groups, len(runs))
            group[1::4] = group[::4][: len(group[1::4])]  # neighbours of one group, to be joined
            compiled, reference = _grouped_both_ways(monkeypatch, runs, group, groups)
            _assert_same_masks(compiled, reference)
            pixel_groups = expand_runs(runs, group)
            assert compiled.ids.tolist() == sorted(set(group.tolist()) - {-1})
            for row, g in enumerate(compiled.ids.tolist()):
                expected = mask_util.encode(np.asfortranarray((pixel_groups == g).astype(np.uint8)))
                assert compiled.counts[row] == expected["counts"].decode()
                assert compiled.areas[row] == (pixel_groups == g).sum()
                assert compiled.bboxes[row].tolist() == mask_util.toBbox(expected).tolist()


def test_value_pairs_count_the_pixels_of_each_pair(monkeypatch):
    rng = np.random.default_rng(5)
    for shape in [(1, 1), (3, 4), (50, 70)]:
        a = rng.choice(np.array([0, 7, 1 << 24, (1 << 24) + 7], np.int32), shape)
        b = rng.integers(0, 3, shape).astype(np.uint8)
        runs = column_runs(a, b)
        found = []
        for implementation in ("", "numpy"):
            monkeypatch.setenv(rle_module.RLE_ENV, implementation)
            found.append(rle_module.value_pairs(runs))
        for pairs in found:
            expected = sorted(set(zip(a.ravel().tolist(), b.ravel().tolist())))
            assert list(zip(pairs.first, pairs.second)) == expected
            assert pairs.pixels == [int(((a == x) & (b == y)).sum()) for x, y in expected]
            run_pairs = np.array(expected)[pairs.of_run]
            assert np.array_equal(run_pairs[:, 0], runs.values[0]) and np.array_equal(run_pairs[:, 1], runs.values[1])
        assert found[0].of_run.tolist() == found[1].of_run.tolist()


def test_value_pairs_beyond_the_first_hash_table():
    """More distinct pairs than the compiled pass's first table holds (it grows)."""
    a = np.arange(40 * 30, dtype=np.int32).reshape(40, 30) % 997
    b = (np.arange(40 * 30).reshape(40, 30) % 3).astype(np.uint8)
    pairs = rle_module.value_pairs(column_runs(a, b))
    assert len(pairs) == len(set(zip(a.ravel().tolist(), b.ravel().tolist()))) > 900
    assert sum(pairs.pixels) == a.size


@needs_compiled
def test_compiled_grouping_checks_its_inputs():
    c = rle_module._rle
    with pytest.raises(ValueError, match="groups"):
        c.encode_run_groups(np.array([0, 2], np.int64), np.array([0, 5], np.int64), 2, 2, 2)  # group 5 of 2
    with pytest.raises(ValueError, match="rise"):
        c.encode_run_groups(np.array([0, 9], np.int64), np.array([0, 1], np.int64), 2, 2, 2)  # start beyond 4 pixels
    with pytest.raises(ValueError, match="rise"):
        c.value_pairs(np.zeros(2, np.int64), np.zeros(2, np.int64), np.array([1, 0], np.int64), 4)
    with pytest.raises(ValueError, match="int64"):
        c.value_pairs(np.zeros(2, np.int32), np.zeros(2, np.int64), np.array([0, 1], np.int64), 4)


def test_run_groups_of_empty_frames_and_bad_groups(monkeypatch):
    """Both implementations: a frame without pixels has no groups; a group outside -1..groups-1 is
    an error; a strided group array is read as its values."""
    for implementation in ("", "numpy"):
        monkeypatch.setenv(rle_module.RLE_ENV, implementation)
        for shape in [(0, 4), (3, 0)]:
            empty = column_runs(np.zeros(shape, np.int32), np.zeros(shape, np.uint8))
            assert len(rle_module.encode_run_groups(empty, np.zeros(0, np.int64), 3)) == 0
            assert len(rle_module.value_pairs(empty)) == 0
        runs = column_runs(np.array([[1, 2], [3, 4]], np.int32))
        for bad in ([0, 1, 2, 3], [-2, 0, 0, 0]):
            with pytest.raises(ValueError):
                rle_module.encode_run_groups(runs, np.array(bad), 3)
        strided = np.array([0, 9, 0, 9, 1, 9, 1, 9])[::2]
        masks = rle_module.encode_run_groups(runs, strided, 2)
        assert masks.ids.tolist() == [0, 1] and masks.areas.tolist() == [2, 2]
