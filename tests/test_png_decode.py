"""The PNG decoders of ``curate.fileio.read_png``: imagecodecs (when installed) gives OpenCV's very
arrays on every format the label maps come in, and OpenCV (forced by SYNMIX_PNG_DECODER=opencv,
the path taken when imagecodecs is missing) still reads everything."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.buffers import reusing, scratch
from curate.errors import CurateError
from curate.fileio import PNG_DECODER_ENV, _fast_layout, png_decoder, read_png

imagecodecs = pytest.importorskip("imagecodecs")


def _opencv(path: Path, monkeypatch, **options) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setenv(PNG_DECODER_ENV, "opencv")
        assert png_decoder() == "opencv"
        return read_png(path, **options)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _assert_decoders_agree(path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PNG_DECODER_ENV, raising=False)
    assert png_decoder() == "imagecodecs"
    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    for rgb in (False, True):
        ours, theirs = read_png(path, rgb=rgb), _opencv(path, monkeypatch, rgb=rgb)
        assert _same(ours, theirs), (path, rgb)
    assert _same(read_png(path), raw)  # BGR order unless asked: OpenCV's own array


def _pngs(fixtures_dir: Path) -> list[Path]:
    return sorted(fixtures_dir.rglob("*.png"))


def test_every_fixture_png_decodes_to_opencvs_array(fixtures_dir, monkeypatch):
    paths = _pngs(fixtures_dir)
    kinds = {(_fast_layout(p.read_bytes()) or (None, None))[1] for p in paths}
    # real 8-bit grey, 16-bit grey, RGB and RGBA files are among them, all on the fast path
    assert {np.uint8, np.uint16} <= kinds and None not in kinds
    assert {cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[2:] for p in paths} == {(), (3,), (4,)}
    for path in paths:
        _assert_decoders_agree(path, monkeypatch)


def _write(tmp_path: Path, name: str, array: np.ndarray, writer: str) -> Path:
    path = tmp_path / f"{name}-{writer}.png"
    if writer == "opencv":  # what synmix's sample sets and --gtfine write (libpng, Sub filter)
        path.write_bytes(cv2.imencode(".png", array)[1].tobytes())
    else:  # Pillow: adaptive filters (Up, Paeth, ...), as many real data sets are written
        from PIL import Image

        rgb = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_BGR2RGB if array.shape[2] == 3
                                                         else cv2.COLOR_BGRA2RGBA)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
        path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("writer", ["opencv", "pillow"])
@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgb", "rgba"])
def test_generated_pngs_decode_to_opencvs_array(tmp_path, monkeypatch, writer, kind):
    rng = np.random.default_rng(5)
    shape = {"grey8": (37, 53), "grey16": (37, 53), "rgb": (37, 53, 3), "rgba": (37, 53, 4)}[kind]
    dtype = np.uint16 if kind == "grey16" else np.uint8
    # label-map-like blocks plus noise: every filter type and the full value range (16-bit byte order)
    array = np.repeat(np.repeat(rng.integers(0, np.iinfo(dtype).max, (5, 7, *shape[2:]), dtype=dtype,
                                             endpoint=True), 8, 0), 8, 1)[:shape[0], :shape[1]].copy()
    array[::3, ::5] = rng.integers(0, np.iinfo(dtype).max, array[::3, ::5].shape, dtype=dtype, endpoint=True)
    if kind == "grey16":
        array[0, :4] = [0, 1, 256, 65535]
    path = _write(tmp_path, kind, array, writer)
    assert _fast_layout(path.read_bytes()) is not None
    _assert_decoders_agree(path, monkeypatch)
    assert _same(read_png(path), array)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def _png(width: int, height: int, depth: int, colour: int, rows: bytes, interlace: int = 0, extra=()) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, colour, 0, 0, interlace])
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(_chunk(k, v) for k, v in extra)
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("name", ["palette", "grey-alpha", "rgb16", "grey-trns", "grey4"])
def test_other_formats_go_to_opencv(tmp_path, monkeypatch, name):
    """Formats OpenCV expands its own way (palette → BGR, tRNS → alpha, …) skip imagecodecs."""
    rows = {  # 2x2 images, filter byte 0 per row
        "palette": (1, 8, 3, b"\x00\x00\x01" * 2, [(b"PLTE", bytes([255, 0, 0, 0, 0, 255]))]),
        "grey-alpha": (2, 8, 4, b"\x00" + bytes([10, 255, 20, 128]) + b"\x00" + bytes([30, 0, 40, 255]), []),
        "rgb16": (2, 16, 2, (b"\x00" + bytes(range(12))) * 2, []),
        "grey-trns": (2, 8, 0, b"\x00\x05\x06" * 2, [(b"tRNS", b"\x00\x05")]),
        "grey4": (2, 4, 0, b"\x00\x1f" * 2, []),
    }[name]
    width, depth, colour, data, extra = rows
    path = tmp_path / f"{name}.png"
    path.write_bytes(_png(width, 2, depth, colour, data, extra=extra))
    assert _fast_layout(path.read_bytes()) is None
    expected = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert expected is not None
    monkeypatch.delenv(PNG_DECODER_ENV, raising=False)
    assert _same(read_png(path), expected)


@pytest.mark.parametrize("decoder", ["auto", "opencv"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "bad-filter", "not-png"])
def test_damaged_pngs_are_one_line_errors_with_either_decoder(tmp_path, monkeypatch, decoder, damage):
    good = cv2.imencode(".png", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))[1].tobytes()
    data = {"empty": b"", "truncated": good[:len(good) // 2], "not-png": b"GIF89a" + good[6:],
            "bad-filter": _png(4, 2, 8, 0, b"\x09" + bytes(4) + b"\x00" + bytes(4))}[damage]
    path = tmp_path / "damaged.png"
    path.write_bytes(data)
    monkeypatch.setenv(PNG_DECODER_ENV, decoder)
    with pytest.raises(CurateError) as err:
        read_png(path)
    assert err.value.problem == "not a readable PNG (empty or corrupt)" and err.value.kind == "unreadable_file"
    with pytest.raises(CurateError, match="file not found"):
        read_png(tmp_path / "missing.png")


def test_decoding_into_a_reused_buffer(tmp_path, monkeypatch):
    monkeypatch.delenv(PNG_DECODER_ENV, raising=False)
    a = _write(tmp_path, "a", np.full((6, 9), 3, np.uint8), "opencv")
    b = _write(tmp_path, "b", np.full((6, 9), 4, np.uint8), "opencv")
    with reusing():
        first = read_png(a, buffer="test")
        assert int(first[0, 0]) == 3
        second = read_png(b, buffer="test")
        assert second is scratch("test", (6, 9), np.uint8)  # the same memory, frame after frame
        assert int(first[0, 0]) == 4  # (so a frame's arrays are valid until the next frame only)
    outside = read_png(a, buffer="test")  # outside reusing(): fresh memory every call
    assert outside is not read_png(a, buffer="test")
