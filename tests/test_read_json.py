"""``curate.fileio.read_json(fast=True)`` (orjson, for Synscapes' meta) reads what the standard
library reads, and where orjson refuses a file the standard library decides: same values, same
one-line errors. Also the Cityscapes id table that replaced a per-value loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from curate import fileio
from curate.errors import CurateError
from curate.fileio import read_json
from curate.labels import ID_TO_LABEL, INSTANCE_ID_OFFSET, VALID_LABEL_IDS
from curate.sample import write_synscapes_sample
from curate.sources import cityscapes, synscapes

orjson = pytest.importorskip("orjson")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _both(path: Path):
    """(fast result or error, standard result or error)."""
    out = []
    for fast in (True, False):
        try:
            out.append(("ok", read_json(path, fast=fast)))
        except CurateError as err:
            out.append(("error", str(err), err.kind))
    return out


def test_fast_reads_synscapes_meta_exactly(tmp_path):
    root = tmp_path / "syn"
    write_synscapes_sample(root, frames=3, seed=5, size=(64, 32), val_fraction=0)
    for meta in sorted((root / "meta").glob("*.json")):
        fast, standard = _both(meta)
        assert fast == standard and fast[0] == "ok"
        assert synscapes.read_meta(meta) == synscapes.parse_meta(meta, json.loads(meta.read_bytes()))


@pytest.mark.parametrize("name, data", [
    ("duplicate_key.json", b'{"a": 1, "a": 2}'),
    ("bom.json", b'\xef\xbb\xbf{"a": 0.25}'),  # orjson refuses a BOM: the standard library reads it
    ("utf16.json", '{"a": [1, 2.5]}'.encode("utf-16")),
    ("lone_surrogate.json", b'{"a": "\\ud800"}'),
    ("huge_float.json", b'{"a": 1e400}'),  # inf, then refused by whoever checks the value
    ("nan.json", b'{"a": NaN}'),
    ("infinity.json", b'[Infinity]'),
    ("trailing_comma.json", b'[1, 2,]'),
    ("truncated.json", b'{"a": [1, 2'),
    ("empty.json", b""),
    ("not_utf8.json", b'{"a": "\xff"}'),
])
def test_fast_and_standard_agree_on_odd_files(tmp_path, name, data):
    fast, standard = _both(_write(tmp_path, name, data))
    assert fast == standard


def test_missing_file_and_folder_name_the_path(tmp_path):
    for fast in (True, False):
        with pytest.raises(CurateError, match="file not found") as err:
            read_json(tmp_path / "absent.json", fast=fast)
        assert err.value.path == str(tmp_path / "absent.json")
        with pytest.raises(CurateError, match="file not found"):
            read_json(tmp_path, fast=fast)


def test_integers_beyond_64_bits_are_the_documented_difference(tmp_path):
    path = _write(tmp_path, "big.json", b'{"class": 123456789012345678901234567890}')
    assert read_json(path)["class"] == 123456789012345678901234567890
    assert isinstance(read_json(path, fast=True)["class"], float)
    # the meta reader refuses it either way, naming the file
    meta = _write(tmp_path, "1.json", json.dumps({
        "camera": {}, "scene": {}, "instance": {"bbox2d": {}, "bbox3d": {}, "occluded": {}, "truncated": {},
                                               "class": {"1": 0}}}).replace('"1": 0', '"1": 123456789012345678901234567890')
        .encode())
    with pytest.raises(CurateError, match="unknown class id") as err:
        synscapes.read_meta(meta)
    assert err.value.path == str(meta)


def test_without_orjson_the_standard_library_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "_orjson_loads", lambda: None)
    path = _write(tmp_path, "a.json", b'{"a": [1, 0.5, "x"]}')
    assert read_json(path, fast=True) == {"a": [1, 0.5, "x"]}
    with pytest.raises(CurateError, match="NaN"):
        read_json(_write(tmp_path, "nan.json", b"[NaN]"), fast=True)


def _valid_by_rule(value: int) -> bool:
    if value < INSTANCE_ID_OFFSET:
        return value in VALID_LABEL_IDS
    label = ID_TO_LABEL.get(value // INSTANCE_ID_OFFSET)
    return label is not None and label.hasInstances


def test_cityscapes_id_table_is_the_rule_for_every_16_bit_value():
    table = cityscapes._valid_values()
    expected = np.fromiter((_valid_by_rule(v) for v in range(1 << 16)), dtype=bool, count=1 << 16)
    assert table.dtype == bool and np.array_equal(table, expected)
    assert expected.any() and not expected.all()


@pytest.mark.parametrize("ids, message", [
    ([0, 7, 26000, 26001], None),
    ([0, 7, 40], "unknown label id 40"),
    ([0, 7000], "instance id 7000 encodes label 7 (road), which has no instances"),
    ([0, 26000, 99000], "instance id 99000 encodes an unknown label"),
    ([0, 26000, 70000], "instance id 70000 encodes an unknown label"),  # beyond 16 bits: the slow path
])
def test_cityscapes_check_instance_ids(ids, message):
    if message is None:
        cityscapes.check_instance_ids(Path("x.png"), np.array(ids))
        return
    with pytest.raises(CurateError, match=re.escape(message)):
        cityscapes.check_instance_ids(Path("x.png"), np.array(ids))


def _clean_meta_instance() -> dict:
    return {
        "class": {"26001": 26, "33001": 33, "24001": 24},
        "bbox2d": {k: {"xmin": 0.1, "xmax": 0.2, "ymin": 0.3, "ymax": 0.4, "zmin": 5.5, "zmax": 6.5}
                   for k in ("26001", "33001")},  # 24001 without a box: allowed
        "occluded": {"26001": 0.25, "33001": 1.0},
        "truncated": {"26001": 0.0},
        "bbox3d": {"26001": {"x": 1.0}},
    }


@pytest.mark.parametrize("where, value", [
    (("class", "26001"), True), (("class", "26001"), 26.0), (("class", "26001"), 99),
    (("bbox2d", "26001"), [0.1]), (("bbox2d", "26001", "zmin"), 5), (("bbox2d", "26001", "xmin"), float("nan")),
    (("bbox2d", "33001", "zmax"), float("inf")), (("bbox2d", "33001", "ymax"), None), (("bbox2d", "33001", "ymin"), "0"),
    (("occluded", "26001"), 1.5), (("occluded", "33001"), -0.0 - 1e-9), (("truncated", "26001"), float("nan")),
    (("truncated", "26001"), 1), (("occluded", "33001"), False),
])
def test_meta_checked_in_bulk_or_one_by_one_alike(tmp_path, where, value):
    """parse_meta checks a clean meta in bulk; any odd value sends it to the one-by-one checks,
    which convert (an integer depth) or name the first bad value as before."""
    path = tmp_path / "meta.json"
    clean = _clean_meta_instance()
    assert synscapes._checked_in_bulk(clean) == synscapes._checked_one_by_one(path, clean)
    assert synscapes._checked_in_bulk(clean)[24001].bbox2d is None
    odd = _clean_meta_instance()
    target = odd
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert synscapes._checked_in_bulk(odd) is None
    raw = {"camera": {}, "scene": {}, "instance": odd}
    try:
        parsed = synscapes.parse_meta(path, raw).instances
    except CurateError as err:
        assert err.kind == "bad_meta_value" and str(path) in str(err)
    else:  # only an integer where a float is expected converts
        converted = parsed[26001].bbox2d[4] if where[0] == "bbox2d" else parsed[26001].truncated
        assert type(value) is int and converted == value and type(converted) is float


def test_an_integer_beyond_a_double_is_a_bad_meta_value(tmp_path):
    """JSON allows integers of any size; one where a meta float belongs is a one-line error, not
    an OverflowError."""
    meta = _clean_meta_instance()
    meta["bbox2d"]["26001"]["xmin"] = 10**400
    path = tmp_path / "1.json"
    with pytest.raises(CurateError, match=r"instance\.bbox2d\[26001\]\.xmin is 1" + "0" * 19 + r"… \(401 digits\)"):
        synscapes.parse_meta(path, {"camera": {}, "scene": {}, "instance": meta})
