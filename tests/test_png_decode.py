"""The PNG decoders of ``curate.fileio.read_png``: synmix's own (zlib-ng + curate/_rle.c's
unfiltering) and imagecodecs' libpng (when installed) give OpenCV's very arrays on every format the
label maps come in, and OpenCV (forced by SYNMIX_PNG_DECODER=opencv, the path taken when
imagecodecs is missing) still reads everything."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.buffers import reusing, scratch
from curate.errors import CurateError
from curate.fileio import PNG_DECODER_ENV, _fast_layout, decode_plain_png, png_decoder, read_png
from curate.rle import compiled_module

imagecodecs = pytest.importorskip("imagecodecs")


needs_own_decoder = pytest.mark.skipif(compiled_module() is None, reason="curate/_rle.c not built")


def _decoded(path: Path, monkeypatch, decoder: str, **options) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setenv(PNG_DECODER_ENV, decoder)
        assert png_decoder() == decoder
        return read_png(path, **options)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _own_decoder_takes(data: bytes) -> bool:
    """Whether synmix's own decoder decodes these bytes (rather than leaving them to libpng)."""
    return decode_plain_png(data) is not None


def _assert_decoders_agree(path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PNG_DECODER_ENV, raising=False)
    decoders = ["imagecodecs", "opencv"]
    if compiled_module() is not None:
        assert png_decoder() == "synmix" and _own_decoder_takes(path.read_bytes())
        decoders.insert(0, "synmix")
    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    for rgb in (False, True):
        arrays = [_decoded(path, monkeypatch, d, rgb=rgb) for d in decoders]
        assert all(_same(a, arrays[-1]) for a in arrays), (path, rgb)
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


def _png(width: int, height: int, depth: int, colour: int, rows: bytes, interlace: int = 0, extra=(),
         stream: bytes | None = None) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, colour, 0, 0, interlace])
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(_chunk(k, v) for k, v in extra)
            + _chunk(b"IDAT", zlib.compress(rows) if stream is None else stream) + _chunk(b"IEND", b""))


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


# --- synmix's own decoder: every filter type, every odd file left to libpng -------------------------

_LAYOUTS = {"grey8": (8, 0, 1, np.uint8), "grey16": (16, 0, 1, np.uint16), "rgb": (8, 2, 3, np.uint8),
            "rgba": (8, 6, 4, np.uint8)}


def _filtered_rows(array: np.ndarray, filters: list[int]) -> bytes:
    """The PNG scanlines of ``array`` (H×W or H×W×C; 16-bit stored big-endian), row r filtered with
    ``filters[r]`` (PNG specification section 9, computed from the unfiltered bytes)."""
    height = array.shape[0]
    lines = array.astype(array.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8).astype(np.int16)
    pixel = (array.shape[2] if array.ndim == 3 else 1) * array.itemsize
    out = []
    for r in range(height):
        x = lines[r]
        up = lines[r - 1] if r else np.zeros_like(x)
        left = np.concatenate([np.zeros(pixel, np.int16), x[:-pixel]])
        up_left = np.concatenate([np.zeros(pixel, np.int16), up[:-pixel]])
        p = left + up - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        predictor = [0, left, up, (left + up) // 2, paeth][filters[r]]
        out.append(bytes([filters[r]]) + ((x - predictor) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def _label_like(rng, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Flat blocks (long zero stretches in every filter) with a few noisy pixels and full-range values."""
    top = np.iinfo(dtype).max
    blocks = rng.integers(0, top, (4, 5, *shape[2:]), dtype=dtype, endpoint=True)
    array = np.repeat(np.repeat(blocks, -(-shape[0] // 4), 0), -(-shape[1] // 5), 1)[:shape[0], :shape[1]].copy()
    noisy = rng.random(shape[:2]) < 0.02
    array[noisy] = rng.integers(0, top, array[noisy].shape, dtype=dtype, endpoint=True)
    return array


@needs_own_decoder
@pytest.mark.parametrize("kind", list(_LAYOUTS))
@pytest.mark.parametrize("width", [1, 2, 16, 17, 47, 48, 49, 161])
def test_own_decoder_undoes_every_filter_as_libpng_does(tmp_path, monkeypatch, kind, width):
    depth, colour, channels, dtype = _LAYOUTS[kind]
    rng = np.random.default_rng(width)
    shape = (23, width) if channels == 1 else (23, width, channels)
    array = _label_like(rng, shape, dtype)
    # each type on whole images, then mixed row by row (a row's filter meets every other's row above)
    for name, filters in [*((f"all{f}", [f] * 23) for f in range(5)), ("mixed", rng.integers(0, 5, 23).tolist())]:
        data = _png(width, 23, depth, colour, _filtered_rows(array, filters))
        assert _same(decode_plain_png(data), array), name
        path = tmp_path / f"{kind}-{width}-{name}.png"
        path.write_bytes(data)
        _assert_decoders_agree(path, monkeypatch)


def _odd_pngs() -> dict[str, bytes]:
    """Files the own decoder leaves to libpng: each breaks one rule of ``curate.fileio._plain_png``."""
    array = np.arange(6 * 40, dtype=np.uint8).reshape(6, 40) // 7
    rows = _filtered_rows(array, [1] * 6)
    ihdr = _chunk(b"IHDR", (40).to_bytes(4, "big") + (6).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0]))
    idat, iend, text = _chunk(b"IDAT", zlib.compress(rows)), _chunk(b"IEND", b""), _chunk(b"tEXt", b"k\x00v")
    sig = b"\x89PNG\r\n\x1a\n"
    half = len(zlib.compress(rows)) // 2
    return {
        "no IEND": sig + ihdr + idat,
        "bytes after IEND": sig + ihdr + idat + iend + b"x",
        "IDAT split by a chunk": sig + ihdr + _chunk(b"IDAT", zlib.compress(rows)[:half]) + text
        + _chunk(b"IDAT", zlib.compress(rows)[half:]) + iend,
        "bad ancillary CRC": sig + ihdr + text[:-1] + bytes([text[-1] ^ 1]) + idat + iend,
        "bad IDAT CRC": sig + ihdr + idat[:-1] + bytes([idat[-1] ^ 1]) + iend,
        "PLTE in grey": sig + ihdr + _chunk(b"PLTE", bytes(6)) + idat + iend,
        "unknown critical chunk": sig + ihdr + _chunk(b"ABCD", b"") + idat + iend,
        "too much image data": sig + ihdr + _chunk(b"IDAT", zlib.compress(rows + b"\x00" + bytes(40))) + iend,
        "too little image data": sig + ihdr + _chunk(b"IDAT", zlib.compress(rows[:-3])) + iend,
        "bad Adler-32": sig + ihdr + _chunk(b"IDAT", zlib.compress(rows)[:-1] + b"\x00") + iend,
        "bad filter type": sig + ihdr + _chunk(b"IDAT", zlib.compress(b"\x05" + rows[1:])) + iend,
        "filter method 1": sig + _chunk(b"IHDR", ihdr[8:18] + b"\x00\x01\x00") + idat + iend,
        "IEND with data": sig + ihdr + idat + _chunk(b"IEND", b"x"),
        "IHDR of 14 bytes": sig + _chunk(b"IHDR", ihdr[8:21] + b"\x00") + idat + iend,
        "chunk type with a digit": sig + ihdr + _chunk(b"tE5t", b"k\x00v") + idat + iend,
        "chunk type, third letter lower-case": sig + ihdr + _chunk(b"tExt", b"k\x00v") + idat + iend,
        "zlib window smaller than its distances": _far_back_png(),
        "APNG frame control, damaged": sig + ihdr + _chunk(b"fcTL", b"\x00\x01") + idat + iend,
        "an unknown ancillary chunk": sig + ihdr + _chunk(b"prVt", b"x") + idat + iend,
    }


def _far_back_png() -> bytes:
    """A 2,406-byte image whose zlib header declares a 512-byte window but whose stream copies from
    1,000 bytes back (zlib refuses it, reading row by row; one inflate into a whole buffer would not notice)."""
    pattern = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    rows = b"".join(b"\x00" + (pattern * 3)[r * 400:(r + 1) * 400] for r in range(6))
    stream = bytearray(zlib.compress(rows))
    stream[0] = 0x18  # CINFO 1: a 2**9-byte window
    stream[1] = (stream[1] & 0xE0) + (31 - ((0x18 * 256 + (stream[1] & 0xE0)) % 31)) % 31  # FCHECK
    return _png(400, 6, 8, 0, b"", extra=(), stream=bytes(stream))


@needs_own_decoder
@pytest.mark.parametrize("name", list(_odd_pngs()))
def test_own_decoder_leaves_every_odd_png_to_libpng(tmp_path, monkeypatch, name):
    """Damaged or unusual files decode (or fail, as one line) exactly as they did with libpng alone."""
    data = _odd_pngs()[name]
    assert not _own_decoder_takes(data)
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    results = []
    for decoder in ("synmix", "imagecodecs"):
        try:
            results.append(_decoded(path, monkeypatch, decoder))
        except CurateError as err:
            results.append(err.problem)
    assert type(results[0]) is type(results[1])
    assert _same(*results) if isinstance(results[0], np.ndarray) else results[0] == results[1]


@needs_own_decoder
def test_unfilter_checks_its_input():
    unfilter = compiled_module().unfilter_png
    out = np.empty((2, 4), np.uint8)
    assert unfilter(bytes(10), out, 2, 4, 1, False) is True and not out.any()
    assert unfilter(b"\x05" + bytes(9), out, 2, 4, 1, False) is False  # filter type 5
    for args in [(bytes(9), out, 2, 4, 1, False), (bytes(10), out, 2, 4, 5, False), (bytes(10), out, 2, 4, 3, False),
                 (bytes(10), np.empty(9, np.uint8), 2, 4, 1, False), (bytes(10), out, 0, 4, 1, False),
                 (bytes(8), np.empty(6, np.uint8), 2, 3, 2, True),
                 (bytes(14), np.empty(12, np.uint8), 2, 6, 6, False),  # 16-bit RGB is libpng's
                 (bytes(10), out, 2, 2**63 - 1, 1, False)]:  # rows too long to hold (no overflow)
        with pytest.raises(ValueError):
            unfilter(*args)
    with pytest.raises(TypeError):
        unfilter(bytes(10), bytes(8), 2, 4, 1, False)  # a read-only output


@needs_own_decoder
@pytest.mark.parametrize("kind", list(_LAYOUTS))
def test_own_decoder_matches_libpng_on_random_scanlines(kind):
    """Arbitrary filtered bytes (mostly zero, so every copy shortcut meets every neighbour) and
    random filter types: the own decoder gives libpng's array byte for byte."""
    depth, colour, channels, _ = _LAYOUTS[kind]
    rng = np.random.default_rng(len(kind))
    for trial in range(40):
        width, height = int(rng.integers(1, 130)), int(rng.integers(1, 12))
        row = width * channels * depth // 8
        lines = rng.integers(0, 256, (height, row), dtype=np.uint8) * (rng.random((height, row)) < 0.1)
        filters = rng.integers(0, 5, (height, 1), dtype=np.uint8)
        data = _png(width, height, depth, colour, np.hstack([filters, lines]).tobytes())
        ours = decode_plain_png(data)
        assert ours is not None and _same(ours, imagecodecs.png_decode(data)), (trial, width, height)


@needs_own_decoder
def test_own_decoder_takes_a_small_zlib_window_that_covers_the_image():
    """Encoders declare a small window for small images (libpng does): no distance can exceed it."""
    array = _label_like(np.random.default_rng(3), (8, 50), np.uint8)
    compressor = zlib.compressobj(wbits=9)
    rows = _filtered_rows(array, [1] * 8)
    stream = compressor.compress(rows) + compressor.flush()
    assert stream[0] >> 4 == 1 and len(rows) <= 512
    data = _png(50, 8, 8, 0, b"", stream=stream)
    assert _same(decode_plain_png(data), array) and _same(imagecodecs.png_decode(data), array)


class _Bits:
    """A DEFLATE bit writer (RFC 1951 3.1.1: fields LSB first, Huffman codes MSB first)."""

    def __init__(self):
        self.acc, self.count, self.out = 0, 0, bytearray()

    def put(self, value: int, bits: int) -> None:
        self.acc |= value << self.count
        self.count += bits
        while self.count >= 8:
            self.out.append(self.acc & 255)
            self.acc >>= 8
            self.count -= 8

    def code(self, code: int, bits: int) -> None:
        self.put(int(format(code, f"0{bits}b")[::-1], 2), bits)

    def fixed(self, symbol: int) -> None:  # a literal/length symbol of the fixed Huffman code
        if symbol < 144:
            self.code(0x30 + symbol, 8)
        elif symbol < 256:
            self.code(0x190 + symbol - 144, 9)
        elif symbol < 280:
            self.code(symbol - 256, 7)
        else:
            self.code(0xC0 + symbol - 280, 8)

    def zlib(self, raw: bytes) -> bytes:
        return b"\x78\x9c" + bytes(self.out) + (bytes([self.acc]) if self.count else b"") + \
            zlib.adler32(raw).to_bytes(4, "big")


def _invalid_deflate_pngs() -> dict[str, bytes]:
    """Streams with a right Adler-32 that RFC 1951 forbids (zlib refuses them; a laxer inflater,
    e.g. libdeflate, decodes them to some image)."""
    found = {}
    bits = _Bits()  # fixed block: 0, 0, then length symbol 286 (reserved) at distance 1
    bits.put(1, 1), bits.put(1, 2), bits.fixed(0), bits.fixed(0), bits.fixed(286), bits.code(0, 5), bits.fixed(256)
    found["length symbol 286"] = _png(259, 1, 8, 0, b"", stream=bits.zlib(bytes(260)))
    bits = _Bits()  # fixed block: a literal, then copies; one at distance symbol 30 (reserved)
    bits.put(1, 1), bits.put(1, 2), bits.fixed(0)
    left = 29999
    for k in range(left // 258):
        bits.fixed(285)
        bits.code(30 if k == 100 else 0, 5)
        if k == 100:
            bits.put(0, 13)
        left -= 258
    for _ in range(left):
        bits.fixed(0)
    bits.fixed(256)
    found["distance symbol 30"] = _png(29999, 1, 8, 0, b"", stream=bits.zlib(bytes(30000)))
    bits = _Bits()  # dynamic block declaring 288 length and 32 distance codes (at most 286 and 30)
    bits.put(1, 1), bits.put(2, 2), bits.put(31, 5), bits.put(31, 5), bits.put(14, 4)
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]:
        bits.put(1 if symbol in (1, 18) else 0, 3)  # code lengths: "1" = 0, "18" = 1

    def zeros(count):
        while count:
            run = min(count, 138)
            bits.code(1, 1), bits.put(run - 11, 7)
            count -= run
    bits.code(0, 1), zeros(255), bits.code(0, 1), zeros(31)  # literal 0 and end-of-block: 1 bit each
    bits.code(0, 1), bits.code(0, 1), zeros(30)
    for _ in range(85):
        bits.code(0, 1)
    bits.code(1, 1)
    found["288 length codes"] = _png(16, 5, 8, 0, b"", stream=bits.zlib(bytes(85)))
    return found


@needs_own_decoder
@pytest.mark.parametrize("name", list(_invalid_deflate_pngs()))
def test_own_decoder_refuses_the_deflate_streams_zlib_refuses(tmp_path, monkeypatch, name):
    data = _invalid_deflate_pngs()[name]
    with pytest.raises(Exception, match="invalid|too many"):  # imagecodecs' PngError, zlib's message
        imagecodecs.png_decode(data)
    assert not _own_decoder_takes(data)
    path = tmp_path / "invalid.png"
    path.write_bytes(data)
    for decoder in ("synmix", "imagecodecs"):
        with pytest.raises(CurateError, match="not a readable PNG"):
            _decoded(path, monkeypatch, decoder)
