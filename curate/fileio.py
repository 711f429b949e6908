"""Small file helpers: checked PNG reading and atomic writes (temp name, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from curate.errors import CurateError


def read_png(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Read a PNG with OpenCV, turning "missing" and "undecodable" into one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found", "missing_file")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise CurateError(path, "not a readable PNG (empty or corrupt)", "unreadable_file")
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, …): not DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG from its header alone (no pixel is decoded)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
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
    except FileNotFoundError:
        raise CurateError(path, "file not found") from None
    except OSError as err:
        raise CurateError(path, f"cannot read ({err.strerror})") from None
    raise CurateError(path, "not a PNG or JPEG image (no readable header)")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def read_json(path: Path):
    """Strict JSON (RFC 8259: NaN and Infinity are errors), with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found", "missing_file")
    try:
        with open(path, "rb") as f:
            return json.load(f, parse_constant=_reject_constant)
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
    if data.get("schema_version") != version:
        raise CurateError(path, f"{what} schema version {data.get('schema_version')!r}; this synmix reads "
                                f"{version} ({remedy})")
    return data


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would have.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, obj, indent: int | None = None) -> None:
    """Deterministic JSON (sorted keys are *not* forced: callers build ordered dicts)."""
    text = json.dumps(obj, indent=indent, separators=(",", ": ") if indent else (",", ":"))
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
