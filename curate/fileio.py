"""Small file helpers: checked PNG reading and atomic writes (temp name, then rename).

Every write goes to a temp file beside its target (``.{name}.{pid}.{random}.tmp``) and is renamed
onto it only when complete; the temp file is removed on any failure, Ctrl-C included. An ``OSError``
of a write (full disk, read-only file system, a folder where the file goes, …) becomes a one-line
:class:`CurateError` naming the output path (:func:`output_error`), never the temp name.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import cv2
import numpy as np

from curate.buffers import scratch
from curate.errors import CurateError, OutputError
from curate.rle import compiled_module

# OpenCV's own warnings ("PNG input buffer is incomplete", …) would print beside synmix's one-line
# errors, which say the same with the file's name: keep only OpenCV's errors (level 2).
cv2.setLogLevel(2)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ``SYNMIX_PNG_DECODER=opencv`` forces OpenCV's decoder (the fallback when imagecodecs is missing).
PNG_DECODER_ENV = "SYNMIX_PNG_DECODER"
#: (bit depth, colour type) that imagecodecs decodes to the very array OpenCV gives (channels RGB(A)
#: instead of BGR(A)): 8-bit grey, 16-bit grey, 8-bit RGB, 8-bit RGBA; anything else goes to OpenCV.
_FAST_PNG = {(8, 0): (1, np.uint8), (16, 0): (1, np.uint16), (8, 2): (3, np.uint8), (8, 6): (4, np.uint8)}


@functools.cache
def _imagecodecs_png():
    try:
        from imagecodecs import png_decode
    except ImportError:  # optional: OpenCV decodes every PNG too, ~1.7x slower
        return None
    return png_decode


@functools.cache
def _zlib_ng():
    """imagecodecs' zlib-ng (zlib stream → bytes, Adler-32 checked), or None. zlib-ng, not the faster
    libdeflate (0.42 vs 0.53 ms a Synscapes frame): libdeflate takes streams that zlib, inside libpng,
    refuses (too many code lengths, length symbol 286, distance symbol 30), zlib-ng refuses them too."""
    try:
        from imagecodecs import zlibng_decode
    except ImportError:
        return None
    return zlibng_decode


def png_decoder() -> str:
    """The decoder :func:`read_png` uses for the label maps: "synmix" (zlib-ng's inflate and
    curate/_rle.c's unfiltering, ~5x faster than libpng; needs imagecodecs and the compiled module),
    else "imagecodecs" (libpng 1.6, ~1.7x faster than OpenCV's), else "opencv".
    ``SYNMIX_PNG_DECODER=imagecodecs`` or ``=opencv`` forces one of the latter."""
    forced = os.environ.get(PNG_DECODER_ENV, "").lower()
    if forced == "opencv" or _imagecodecs_png() is None:
        return "opencv"
    if forced == "imagecodecs" or not _own_decoder_built():
        return "imagecodecs"
    return "synmix"


def _unfilter():
    return getattr(compiled_module(), "unfilter_png", None)


def _own_decoder_built() -> bool:
    """Whether synmix's own decoder has its parts: zlib-ng (imagecodecs) and curate/_rle.c."""
    return _zlib_ng() is not None and _unfilter() is not None


#: Byte offset of the chunk after IHDR: signature (8) + IHDR length, type, 13 data bytes, CRC (25).
_FIRST_CHUNK = 8 + 25


def _fast_layout(data: bytes) -> tuple[tuple[int, ...], type] | None:
    """(shape, dtype) of a PNG that imagecodecs decodes exactly as OpenCV does, else None:
    non-interlaced, a format of ``_FAST_PNG``, and no tRNS chunk (OpenCV turns it into alpha)."""
    if len(data) < _FIRST_CHUNK or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    layout = _FAST_PNG.get((data[24], data[25]))
    if layout is None or data[28] != 0:
        return None
    pos = _FIRST_CHUNK
    while pos + 8 <= len(data):  # the few chunks before the first IDAT
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            channels, dtype = layout
            return ((height, width) if channels == 1 else (height, width, channels)), dtype
        if kind == b"tRNS":
            return None
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return None


#: The largest image the own decoder takes (libpng's default user limits are 1,000,000 pixels a
#: side; beyond 2**28 filtered bytes the library decoders decide).
_PLAIN_MAX_SIDE = 1_000_000
_PLAIN_MAX_BYTES = 1 << 28
_IHDR, _IDAT, _IEND = b"IHDR", b"IDAT", b"IEND"
#: The ancillary chunks a plain PNG may have besides IHDR, IDAT and IEND: those of the PNG
#: specification that the decoding of these formats ignores (libpng's and OpenCV's; a damaged
#: one is a warning there). Not tRNS (OpenCV makes it alpha), not APNG's acTL/fcTL/fdAT (the
#: libpng that imagecodecs builds checks them and refuses bad ones), nothing unknown.
_IGNORED_CHUNKS = frozenset({b"bKGD", b"cHRM", b"eXIf", b"gAMA", b"hIST", b"iCCP", b"iTXt", b"pHYs", b"sBIT",
                             b"sPLT", b"sRGB", b"tEXt", b"tIME", b"zTXt"})


def _chunk_type_ok(kind: bytes) -> bool:
    """Four letters, the third upper-case (PNG specification 5.4; libpng refuses any other)."""
    return all(65 <= (c & 0xDF) <= 90 for c in kind) and 65 <= kind[2] <= 90


def _window_ok(stream: bytes, size: int) -> bool:
    """Whether the zlib header's window (CINFO) holds every distance the stream may use: inflating
    into one buffer looks back as far as the output goes, libpng (row by row) only as far as the
    window the header declares."""
    return len(stream) >= 2 and (stream[0] >> 4 == 7 or size <= 1 << ((stream[0] >> 4) + 8))


def _plain_png(data: bytes, shape: tuple[int, ...], dtype) -> tuple[bytes, int, int] | None:
    """(zlib stream, bytes per filtered row, bytes per pixel) of a PNG that synmix decodes itself,
    else None: one whose every chunk has a valid type and its CRC, IHDR (13 bytes, compression and
    filter method 0) first, the IDAT chunks in one sequence whose zlib window covers the image,
    IEND last with nothing after it, and no other chunk but those of ``_IGNORED_CHUNKS`` (PNG
    specification, sections 5 and 11). Anything else — damaged, unusual or merely surprising —
    goes to the library decoder, which decides as it always did."""
    height, width = shape[:2]
    if (data[8:12] != b"\0\0\0\x0d" or data[26] or data[27]
            or not (0 < width <= _PLAIN_MAX_SIDE and 0 < height <= _PLAIN_MAX_SIDE)):
        return None
    pixel = (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    row = width * pixel
    if height * (row + 1) > _PLAIN_MAX_BYTES:
        return None
    idat, pos, end, after_idat = [], 8, len(data), False
    while pos + 12 <= end:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, stop = data[pos + 4:pos + 8], pos + 8 + length
        if (stop + 4 > end or not _chunk_type_ok(kind)
                or zlib.crc32(data[pos + 4:stop]) != int.from_bytes(data[stop:stop + 4], "big")):
            return None
        if kind == _IDAT:
            if after_idat:
                return None
            idat.append(data[pos + 8:stop])
        elif idat:
            after_idat = True
        if kind == _IEND:
            stream = b"".join(idat)
            plain = stop + 4 == end and idat and not length and _window_ok(stream, height * (row + 1))
            return (stream, row, pixel) if plain else None
        if kind not in _IGNORED_CHUNKS and kind != _IDAT and (kind != _IHDR or pos != 8):
            return None
        pos = stop + 4
    return None


def _decode_plain(data: bytes, shape: tuple[int, ...], dtype, buffer: str | None) -> np.ndarray | None:
    """The image of a plain PNG (:func:`_plain_png`) — libpng's very array, PNG specification
    section 9's filters undone by curate/_rle.c — or None for the library decoder."""
    plain = _plain_png(data, shape, dtype)
    if plain is None:
        return None
    stream, row, pixel = plain
    height, size = shape[0], shape[0] * (row + 1)
    # one byte more than the rows take: a stream that inflates to more is not plain either
    room = scratch(f"{buffer}.filtered", (size + 1,), np.uint8) if buffer else np.empty(size + 1, np.uint8)
    try:
        filtered = _zlib_ng()(stream, out=room)
    except Exception:  # imagecodecs' ZlibngError: a damaged stream, for the library to name
        return None
    if len(filtered) != size:
        return None
    image = scratch(buffer, shape, dtype) if buffer else np.empty(shape, dtype)
    swap16 = np.dtype(dtype).itemsize == 2  # 16-bit grey: a pixel is its one big-endian sample
    return image if _unfilter()(filtered, image, height, row, pixel, swap16) else None


def decode_plain_png(data: bytes) -> np.ndarray | None:
    """synmix's own decoder alone: the image of a plain 8/16-bit grey, RGB or RGBA PNG (the
    array imagecodecs gives), or None for any other file (:func:`read_png` then asks libpng)."""
    layout = _fast_layout(data)
    return _decode_plain(data, *layout, None) if layout is not None and _own_decoder_built() else None


def _input_bytes(path: Path) -> bytes:
    """The bytes of an input file; a missing one (or a folder in its place) is "file not found"."""
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: 7 system calls a file instead of 9
            return f.readall()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise CurateError(path, "file not found", "missing_file") from None


def read_png(path: Path, flags: int = cv2.IMREAD_UNCHANGED, rgb: bool = False, buffer: str | None = None,
             digest=None) -> np.ndarray:
    """Read a PNG, turning "missing" and "undecodable" into one-line errors.

    The array is OpenCV's (``flags``); channels in B, G, R(, A) order, or R, G, B(, A) with ``rgb``.
    With ``flags`` IMREAD_UNCHANGED, grey, RGB and RGBA PNGs are decoded by imagecodecs when
    :func:`png_decoder` says so (same values, fewer milliseconds); ``buffer`` names a scratch array
    of :func:`curate.buffers.scratch` to decode into (valid until the next frame of the shard);
    ``digest`` (a hashlib object) is updated with the file's bytes.
    """
    path = Path(path)
    data = _input_bytes(path)
    if digest is not None:
        digest.update(data)
    decoder = png_decoder() if flags == cv2.IMREAD_UNCHANGED else "opencv"
    layout = _fast_layout(data) if decoder != "opencv" else None
    if layout is not None:
        image = _decode_plain(data, *layout, buffer) if decoder == "synmix" else None
        if image is None:
            try:
                image = _imagecodecs_png()(data, out=scratch(buffer, *layout) if buffer else None)
            except Exception:  # imagecodecs' PngError, ValueError, …: all mean a bad file here
                image = None
        if image is not None and not rgb and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    else:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
        if image is not None and rgb and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if image is None:
        raise CurateError(path, "not a readable PNG (empty or corrupt)", "unreadable_file")
    return image


#: JPEG start-of-frame markers (baseline, progressive, lossless, …): not DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG from its header alone (no pixel is decoded)."""
    path = Path(path)
    try:
        with open(path, "rb", buffering=0) as f:
            return _header_size(f, path)
    except FileNotFoundError:
        raise CurateError(path, "file not found") from None
    except OSError as err:
        raise CurateError(path, f"cannot read ({err.strerror})") from None


def _header_size(f, path: Path) -> tuple[int, int]:
    """:func:`image_size` of the open file ``f`` (at its start)."""
    head = f.read(26)
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:2] == b"\xff\xd8":
        f.seek(2)
        while True:
            marker = f.read(4)
            if len(marker) < 4 or marker[0] != 0xFF:
                break
            length = int.from_bytes(marker[2:4], "big")
            if marker[1] in _JPEG_SOF:
                sof = f.read(5)
                if len(sof) == 5:
                    return int.from_bytes(sof[3:5], "big"), int.from_bytes(sof[1:3], "big")
                break
            f.seek(length - 2, os.SEEK_CUR)
    raise CurateError(path, "not a PNG or JPEG image (no readable header)")


#: What Path.is_file() takes for "no file there" rather than an error.
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def check_image_size(image: Path, width: int, height: int, labels: str) -> bool:
    """Whether a frame's image exists; one that does must be ``width``x``height`` by its header, the
    size of ``labels`` (what the message names: "its label map", …). A missing image is the caller's
    to count, not an error. (One open, no separate existence check: a system call less per frame.)"""
    image = Path(image)
    try:  # non-blocking: a FIFO in the image's place is no image, not a wait
        fd = os.open(image, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in _ABSENT:
            return False
        raise CurateError(image, f"cannot read ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a FIFO, a device
        os.close(fd)
        return False
    with open(fd, "rb", buffering=0) as f:
        try:
            w, h = _header_size(f, image)
        except OSError as err:
            raise CurateError(image, f"cannot read ({err.strerror})") from None
    if (w, h) != (width, height):
        raise CurateError(image, f"image size {w}x{h} differs from {labels} {width}x{height}", "size_mismatch")
    return True


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


@functools.cache
def _orjson_loads():
    try:
        from orjson import loads
    except ImportError:  # optional: the standard library reads the same files ~3x slower
        return None
    return loads


def read_json(path: Path, fast: bool = False):
    """Strict JSON (RFC 8259: NaN and Infinity are errors), with one-line errors naming the file.

    ``fast``: parse with orjson when installed (~3x faster; Synscapes' meta, once per frame) and
    fall back to the standard library on anything orjson refuses (a UTF-8 BOM, UTF-16, a lone
    surrogate, a number beyond 64 bits or doubles, …), so that the result and the error message are
    the standard library's. orjson reads an integer beyond 64 bits as a float: only for files whose
    integers are checked afterwards.
    """
    path = Path(path)
    data = _input_bytes(path)
    loads = _orjson_loads() if fast else None
    if loads is not None:
        try:
            return loads(data)
        except ValueError:
            pass
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CurateError(path, f"not valid JSON ({err.msg if hasattr(err, 'msg') else err})",
                          "unreadable_file") from None
    except ValueError as err:
        raise CurateError(path, str(err), "bad_meta_value") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_versioned_json(path: Path, schema: str, version: int, what: str, remedy: str) -> dict:
    """A JSON object of synmix's own making: its ``schema`` name and ``schema_version`` must match."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise CurateError(path, f"not a synmix {what} (no \"schema\": \"{schema}\")")
    if data.get("schema_version") != version or isinstance(data.get("schema_version"), bool):
        raise CurateError(path, f"{what} schema version {data.get('schema_version')!r}; this synmix reads "
                                f"{version} ({remedy})")
    return data


# --- errors of the output side ------------------------------------------------------------------

#: errno → the plain problem a user reads.
_PROBLEMS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied (not writable)",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file",
    errno.EFBIG: "file too large for the file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (device failure)",
    errno.EMFILE: "too many open files",
    errno.ENOENT: "file or folder not found",
}
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def _errno_of(err: OSError) -> int | None:
    if err.errno is not None:
        return err.errno
    match = _ERRNO_IN_TEXT.search(str(err))  # pyarrow: "... Detail: [errno 28] No space left on device"
    return int(match[1]) if match else None


def _first_non_folder(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path`` itself) that is not a folder."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
        if not part.exists():
            return None
    return None


def _read_only(path: Path) -> bool:
    for part in [path, *path.parents]:
        if part.exists():
            try:
                return bool(os.statvfs(part).f_flag & os.ST_RDONLY)
            except OSError:
                return False
    return False


def os_problem(err: OSError) -> str:
    """The plain problem of an ``OSError`` ("no space left on the device", "read-only file system", …)."""
    code = _errno_of(err)
    if code in _PROBLEMS:
        return _PROBLEMS[code]
    text = err.strerror or str(err) or type(err).__name__
    return text[0].lower() + text[1:] if text else "input/output error"


def _is_own(name, path: Path) -> bool:
    """``name`` is ``path`` itself or one of its temp files (or no name at all)."""
    if name is None:
        return True
    name = Path(os.fsdecode(name))
    return name == path or (name.parent == path.parent and name.name.startswith(f".{path.name}.")
                            and name.name.endswith(".tmp"))


def output_error(path: Path, err: OSError) -> CurateError:
    """The one-line error of a failed write of ``path``, naming the path really at fault: ``path``
    (not its temp file), a file standing where a folder of it goes, or another file the write read."""
    path = Path(path)
    code = _errno_of(err)
    if code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        blocker = _first_non_folder(path.parent)
        if blocker is not None:
            return OutputError(blocker, "exists and is not a folder")
        if code == errno.EISDIR and path.is_dir():
            return OutputError(path, "is a folder, not a file")
    if code in (errno.EACCES, errno.EPERM) and _read_only(path):
        return OutputError(path, "read-only file system")
    others = [name for name in (err.filename, getattr(err, "filename2", None)) if not _is_own(name, path)]
    if others:  # another file failed inside the write (e.g. the frame copied by --copy-images)
        return CurateError(os.fsdecode(others[0]), "file not found" if code == errno.ENOENT else os_problem(err))
    return OutputError(path, os_problem(err))


@contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` of the block into :func:`output_error` for ``path``."""
    try:
        yield
    except OSError as err:
        raise output_error(path, err) from None


def check_output_folder(folder: Path, what: str = "output folder") -> Path:
    """Refuse, before any work, an output folder that cannot be one: a file stands there or on its
    way, or the nearest existing folder is not writable (read-only file system, permissions)."""
    folder = Path(folder)
    blocker = _first_non_folder(folder)
    if blocker is not None:
        raise OutputError(blocker, f"exists and is not a folder (needed as the {what})" if blocker == folder
                          else f"exists and is not a folder (on the way to the {what} {folder})")
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(existing, "read-only file system" if _read_only(existing)
                          else "permission denied (not writable)")
    return folder


def check_output_file(path: Path, what: str = "output file") -> Path:
    """Refuse, before any work, an output file that cannot be written: a folder stands there, or its
    folder cannot be one (:func:`check_output_folder`)."""
    path = Path(path)
    check_output_folder(path.parent, f"folder of the {what}")
    if path.is_dir():
        raise OutputError(path, f"is a folder, not a file (needed as the {what})")
    return path


# --- what is being written (named by the Ctrl-C line) ----------------------------------------------

_WRITING = threading.local()


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Mark ``path`` as being written by this thread for the block (see :func:`current_output`)."""
    stack = _WRITING.__dict__.setdefault("stack", [])
    stack.append(Path(path))
    try:
        yield
    finally:
        stack.pop()


def current_output() -> Path | None:
    """The outermost path this thread is writing, if any: what an interruption leaves unwritten (for
    ``curate convert`` the COCO file, not the shard or PNG of the moment)."""
    stack = _WRITING.__dict__.get("stack")
    return stack[0] if stack else None


# --- atomic writes -------------------------------------------------------------------------------


@functools.cache
def _host_tag() -> str:
    """Six hex digits of this machine's name: a pid means something on its own machine only (Dask
    workers on other machines may write into the same shared folder)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temp_prefix(path: Path, pid: int | None = None) -> str:
    """Prefix of the temp files of ``path`` written by process ``pid`` (default: this one) of this
    machine: ``.{name}.{pid}-{host}.`` (what tells a stale one)."""
    return f".{Path(path).name}.{os.getpid() if pid is None else pid}-{_host_tag()}."


_TEMP_NAME = re.compile(r"^\..+\.(\d+)-([0-9a-f]{6})\.[^.]+(\.annotations)?\.tmp$")


def remove_stale_temp_files(folder: Path, recursive: bool = False) -> int:
    """Remove the temp files that a killed process of this machine left in ``folder`` (those of a
    live process, or of another machine, are kept). Returns how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    host = _host_tag()
    removed = 0
    for tmp in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        match = _TEMP_NAME.match(tmp.name)
        if match is None or match[2] != host or process_alive(int(match[1])):
            continue
        with suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def make_temp(path: Path, suffix: str = ".tmp") -> Path:
    """An empty temp file beside ``path`` (its folder is created); OSError → :func:`output_error`."""
    path = Path(path)
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=suffix)
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    An ``OSError`` of the block or the rename is a :class:`CurateError` naming ``path``; the temp
    file is removed whatever happens (Ctrl-C included)."""
    path = Path(path)
    with writing(path):
        tmp_path = make_temp(path)
        try:
            with output_errors(path):
                yield tmp_path
                # mkstemp creates 0600; give the result the permissions a plain open() would have.
                os.chmod(tmp_path, 0o666 & ~_umask())
                os.replace(tmp_path, path)
        finally:
            with suppress(OSError):
                tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def strict_json(obj, path: Path, **options) -> str:
    """``json.dumps`` as RFC 8259 has it: a NaN or an infinity is a :class:`CurateError` naming ``path``."""
    try:  # check_circular=False: synmix writes no cyclic data, and the id bookkeeping costs ~15 %
        return json.dumps(obj, allow_nan=False, check_circular=False, **options)
    except ValueError as err:
        if "JSON compliant" not in str(err):
            raise
        raise CurateError(path, f"would hold {_non_finite(obj) or 'a NaN or infinite number'}, which JSON has "
                                "no number for (not written)") from None


def _non_finite(obj, where: str = "") -> str | None:
    """Where the first NaN or infinity in ``obj`` is, e.g. ``NaN at annotations[3].depth``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        name = "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
        return f"{name} at {where.lstrip('.') or 'the top level'}"
    if isinstance(obj, dict):
        items = ((f"{where}.{k}", v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for key, value in items:
        found = _non_finite(value, key)
        if found:
            return found
    return None


def write_json_atomic(path: Path, obj, indent: int | None = None) -> None:
    """Deterministic, strict JSON (sorted keys are *not* forced: callers build ordered dicts)."""
    text = strict_json(obj, path, indent=indent, separators=(",", ": ") if indent else (",", ":"))
    write_bytes_atomic(path, (text + "\n").encode())


def link_or_copy(target: Path, link: Path, copy: bool) -> None:
    """Atomically make ``link`` a relative symlink to ``target`` (or a copy of it)."""
    with atomic_path(link) as tmp:
        if copy:
            shutil.copyfile(target, tmp)
        else:
            tmp.unlink()
            os.symlink(os.path.relpath(Path(target).resolve(), Path(link).parent.resolve()), tmp)


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise CurateError(path, "PNG encoding failed")
    write_bytes_atomic(path, buf.tobytes())
