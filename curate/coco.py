"""The COCO instance files of synmix: the one reader (column-wise) and the one streaming writer.

Every COCO file synmix writes (``curate convert``'s ``OUT/{source}_{split}.json``, ``curate
manifest``'s ``<name>.coco.json``) goes through :class:`CocoWriter`: one JSON object on one line,
keys in the order info, licenses, categories, images, annotations, compact separators — the
bytes of ``json.dumps(document, separators=(",", ":")) + "\n"``.

Reading: one Arrow array per annotation field.

A Synscapes train file holds ~1 M annotations. ``json.load`` of it builds ~20 M Python objects
(~15 s); Arrow's C++ JSON reader parses the same bytes straight into columns (~3 s). Convert writes
each COCO file as one JSON object on one line, which Arrow reads as a one-row table whose
``annotations`` column is a list of structs; flattening that list gives every field as a column
without a Python loop per instance. Files Arrow cannot read that way (pretty-printed, > 2 GiB, or
with a field of an unexpected type) go through ``json.loads`` and ``pa.array(..., type=struct)``,
which still converts the dicts to columns in C, not in a Python loop.

The file's bytes are read once: the sha256 recorded by manifests and thresholds is the hash of
exactly what was parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from curate import sources
from curate.errors import CurateError
from curate.fileio import (
    atomic_path,
    make_temp,
    output_error,
    output_errors,
    remove_stale_temp_files,
    strict_json,
    writing,
)
from curate.labels import COCO_ID_BY_LABEL_ID, coco_categories

#: ``OUT/{source}_{split}.json``; ``*.report.json`` and ``mix.coco.json`` do not match.
COCO_NAME = re.compile(r"^(?P<source>[a-z0-9]+)_(?P<split>[A-Za-z0-9-]+)\.json$")

# Arrow's JSON block must hold the whole one-line file; block sizes are int32.
_MAX_ARROW_BLOCK = (1 << 31) - 1
_MIN_ARROW_BLOCK = 1 << 20

_ANNOTATION_TYPE = pa.struct(
    [
        ("id", pa.int64()),
        ("image_id", pa.int64()),
        ("category_id", pa.int64()),
        ("area", pa.int64()),
        ("bbox", pa.list_(pa.float64())),
        ("iscrowd", pa.int64()),
        ("source_instance_id", pa.int64()),
        ("rule", pa.string()),
        ("occluded", pa.float64()),
        ("truncated", pa.float64()),
        ("depth", pa.float64()),
    ]
)
# "frame" is an int for Synscapes and a name for Cityscapes: left to inference, then cast to str.
_IMAGE_TYPE = pa.struct(
    [("id", pa.int64()), ("width", pa.int64()), ("height", pa.int64()), ("file_name", pa.string())]
)
_INFO_TYPE = pa.struct([("source", pa.string()), ("split", pa.string()), ("image_root", pa.string())])


def frame_type(source: str | None) -> pa.DataType | None:
    """Arrow type of an image's "frame" for a registered source (None: unknown source). Knowing it
    lets Arrow skip every field not named in the schema (the RLE strings are most of the file)
    instead of inferring and copying them."""
    if source not in sources.NAMES:
        return None
    return pa.int64() if sources.get(source).frame_key_type is int else pa.string()


def _arrow_schema(frame_type: pa.DataType, fields: tuple[str, ...] | None = None) -> pa.Schema:
    image = pa.struct(list(_IMAGE_TYPE) + [("frame", frame_type)])
    annotation = _ANNOTATION_TYPE if fields is None else pa.struct([f for f in _ANNOTATION_TYPE if f.name in fields])
    return pa.schema([("info", _INFO_TYPE), ("images", pa.list_(image)), ("annotations", pa.list_(annotation))])
_REQUIRED_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "area", "bbox", "iscrowd")


@dataclass
class CocoColumns:
    """One COCO file as columns. Annotation arrays are aligned; image arrays are sorted by id."""

    path: Path
    source: str
    split: str
    sha256: str
    info: dict
    image_id: np.ndarray  # int64, ascending
    image_width: np.ndarray
    image_height: np.ndarray
    image_frame: pa.Array  # string
    annotations: pa.StructArray  # fields of _ANNOTATION_TYPE (missing optional fields → nulls)
    bbox: np.ndarray  # float64 (n, 4) XYWH
    ann_image_index: np.ndarray  # position of each annotation's image in image_id

    def __len__(self) -> int:
        return len(self.annotations)

    def column(self, name: str) -> pa.Array:
        return self.annotations.field(name)

    def numpy(self, name: str) -> np.ndarray:
        return numpy_of(self.annotations.field(name))


def coco_files(out: Path) -> list[tuple[str, str, Path]]:
    """``(source, split, path)`` of every convert COCO file in ``out``, sorted by source then split."""
    out = Path(out)
    if not out.is_dir():
        raise CurateError(out, "folder not found")
    found = []
    for path in sorted(out.glob("*.json")):
        match = COCO_NAME.match(path.name)
        if match and match["source"] in sources.NAMES:
            found.append((match["source"], match["split"], path))
    return found


def coco_path(out: Path, source: str, split: str) -> Path:
    return Path(out) / f"{source}_{split}.json"


def read_bytes_and_hash(path: Path) -> tuple[bytes, str]:
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found")
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


#: NumPy dtypes of the Arrow types whose buffer is the values as NumPy lays them out.
_PLAIN_NUMPY = {pa.int8(): "i1", pa.int16(): "<i2", pa.int32(): "<i4", pa.int64(): "<i8", pa.uint8(): "u1",
                pa.uint16(): "<u2", pa.uint32(): "<u4", pa.uint64(): "<u8", pa.float32(): "<f4",
                pa.float64(): "<f8"}


def numpy_of(array: pa.Array, null=None) -> np.ndarray:
    """``array.to_numpy(zero_copy_only=False)`` (read-only), without importing pandas for it:
    pyarrow's own conversion imports pandas on first use, ~0.2 s of a small command. ``null``:
    the value of null elements (``array.fill_null(null)``, which imports pandas too); without it,
    an array with nulls takes pyarrow's conversion."""
    dtype = _PLAIN_NUMPY.get(array.type)
    if dtype is None or (array.null_count and null is None):
        return array.to_numpy(zero_copy_only=False)
    data = array.buffers()[1]
    if data is None:  # every element null: no values buffer
        return np.full(len(array), null, dtype=dtype)
    values = np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * np.dtype(dtype).itemsize)
    if array.null_count:
        valid = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), count=array.offset + len(array),
                              bitorder="little")[array.offset:].astype(bool)
        values = np.where(valid, values, np.asarray(null, dtype=dtype))
    return values


def arrow_of(values: np.ndarray) -> pa.Array:
    """``pa.array(values)`` of int64 values, without importing pandas (pa.array checks for pandas
    types first): the array shares the values' memory."""
    values = np.ascontiguousarray(values, dtype="<i8")
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _arrow_table(data: bytes, schema: pa.Schema) -> pa.Table | None:
    """Arrow's reader on a one-line COCO file with an explicit ``schema`` (fields not in it are
    skipped unread); None when the file does not fit that shape."""
    first_newline = data.find(b"\n")
    if len(data) + 1 > _MAX_ARROW_BLOCK or (first_newline >= 0 and data[first_newline:].strip()):
        return None
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = max(len(data) + 1, _MIN_ARROW_BLOCK)
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(block_size=block),
                             parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == 1 else None


def _parse_with_arrow(data: bytes, source: str | None, fields: tuple[str, ...] | None = None):
    """Columns of a one-line convert COCO file; None when Arrow cannot read it that way."""
    frame_type_of_source = frame_type(source)
    table = (_arrow_table(data, _arrow_schema(frame_type_of_source, fields))
             if frame_type_of_source is not None else None)
    if table is None or table.column("images").null_count or table.column("annotations").null_count:
        return None
    info = {k: v for k, v in (table.column("info")[0].as_py() or {}).items() if v is not None}
    images = pc.list_flatten(table.column("images")).combine_chunks()
    annotations = pc.list_flatten(table.column("annotations")).combine_chunks()
    return info, images, annotations, images.field("frame")


_MASK_SCHEMA = pa.schema([
    ("images", pa.list_(pa.struct([("id", pa.int64()), ("file_name", pa.string())]))),
    ("annotations", pa.list_(pa.struct([
        ("image_id", pa.int64()),
        ("segmentation", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])),
    ]))),
])


def read_image_masks(path: Path, image_id: int, rows) -> tuple[str | None, list]:
    """``file_name`` of image ``image_id`` and the segmentations of annotation ``rows`` (positions
    in the file's annotation list): only those two fields are parsed into columns."""
    path = Path(path)
    data = path.read_bytes()
    table = _arrow_table(data, _MASK_SCHEMA)
    if table is not None:
        images = pc.list_flatten(table.column("images")).combine_chunks()
        annotations = pc.list_flatten(table.column("annotations")).combine_chunks()
        names = images.filter(pc.equal(images.field("id"), image_id)).field("file_name").to_pylist()
        taken = annotations.field("segmentation").take(pa.array(rows, pa.int64())).to_pylist()
        return (names[0] if names else None), taken
    obj = parse_coco_json(path, data)
    del data
    names = [im.get("file_name") for im in obj["images"] if isinstance(im, dict) and im.get("id") == image_id]
    return (names[0] if names else None), [obj["annotations"][int(r)].get("segmentation") for r in rows]


def parse_coco_json(path: Path, data: bytes) -> dict:
    """``json.loads`` with one-line errors, checked to be a COCO instances object."""
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CurateError(path, f"not valid JSON ({getattr(err, 'msg', err)})") from None
    return checked_coco_object(path, obj)


def checked_coco_object(path: Path, obj) -> dict:
    """``obj`` (parsed JSON) if it is a COCO instances object, else a one-line error naming ``path``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list) \
            or not isinstance(obj.get("annotations"), list):
        raise CurateError(path, "not a COCO instances file (no \"images\" and \"annotations\" lists)")
    return obj


def image_root_of(coco_file: Path, info: dict) -> Path:
    """Where a COCO file's images are: its ``info.image_root``, relative to the file's folder."""
    root = info.get("image_root")
    if not isinstance(root, str) or not root:
        raise CurateError(coco_file, "info.image_root missing: cannot tell where the images are")
    root = Path(root)
    return root if root.is_absolute() else Path(os.path.abspath(Path(coco_file).parent / root))


def read_coco(path: Path) -> dict:
    """A whole COCO instances file as Python objects (for code that needs every field)."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found")
    return parse_coco_json(path, path.read_bytes())


def _columns_of_object(path: Path, obj: dict) -> tuple[dict, pa.StructArray, pa.StructArray, pa.Array]:
    try:
        # pa.array converts the dicts in C (keys not in the struct type are skipped).
        images = pa.array(obj["images"], type=_IMAGE_TYPE)
        annotations = pa.array(obj["annotations"], type=_ANNOTATION_TYPE)
        # One value per image (not per instance): frame keys are ints or names.
        frames = pa.array([None if not isinstance(im, dict) or im.get("frame") is None
                           else str(im["frame"]) for im in obj["images"]], type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
        raise CurateError(path, f"COCO field of unexpected type ({err})") from None
    raw_info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
    info = {k: raw_info[k] for k in _INFO_TYPE.names if raw_info.get(k) is not None}
    return info, images, annotations, frames


def columns_of_object(path: Path, obj: dict, sha256: str, source: str | None = None,
                      split: str | None = None) -> CocoColumns:
    """Columns of an already parsed COCO object (annotation order kept: column i is obj's i-th)."""
    return _finish(Path(path), sha256, source, split, _columns_of_object(path, obj))


def read_coco_columns(path: Path, source: str | None = None, split: str | None = None) -> CocoColumns:
    """Parse one convert COCO file into columns and check what stats and manifests rely on."""
    return read_coco_columns_and_bytes(path, source, split)[0]


def read_coco_columns_and_bytes(path: Path, source: str | None = None, split: str | None = None,
                                fields: tuple[str, ...] | None = None) -> tuple[CocoColumns, bytes]:
    """:func:`read_coco_columns`, and the file's bytes it parsed (for :class:`CocoRecords`).

    ``fields``: the annotation fields to parse (default: all of them); Arrow skips the others (a
    manifest needs no bbox: half the parse time); the others are then absent, and ``bbox`` is empty."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(path, "file not found")
    match = COCO_NAME.match(path.name)
    source = source or (match["source"] if match else None)
    split = split or (match["split"] if match else None)
    data = path.read_bytes()
    # Hashing releases the GIL: it runs beside Arrow's parse.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(hashlib.sha256, data)
        parsed = _parse_with_arrow(data, source, fields)
        if parsed is None:
            parsed = _columns_of_object(path, parse_coco_json(path, data))
        sha = digest.result().hexdigest()
    return _finish(path, sha, source, split, parsed), data


def _finish(path: Path, sha: str, source, split, parsed) -> CocoColumns:
    info, images, annotations, frames = parsed
    match = COCO_NAME.match(path.name)
    source = source or (match["source"] if match else None) or info.get("source")
    split = split or (match["split"] if match else None) or info.get("split")
    if source is None or split is None:
        raise CurateError(path, "cannot tell source and split (no info.source/info.split, "
                                "name not {source}_{split}.json)")
    if info.get("source") not in (None, source) or info.get("split") not in (None, split):
        raise CurateError(path, f"info says {info.get('source')}/{info.get('split')} "
                                f"but the file is named for {source}/{split}")
    return _check_and_index(path, source, split, sha, info, images, annotations, frames)


def _check_and_index(path, source, split, sha, info, images, annotations, frames) -> CocoColumns:
    parsed = {f.name for f in annotations.type}
    for name in _REQUIRED_ANNOTATION_FIELDS:
        if name in parsed and annotations.field(name).null_count:
            raise CurateError(path, f"{annotations.field(name).null_count} annotations lack \"{name}\"")
    for name in ("id", "width", "height"):
        if images.field(name).null_count:
            raise CurateError(path, f"{images.field(name).null_count} images lack \"{name}\"")
    if "bbox" in parsed:
        bbox_list = annotations.field("bbox")
        if len(bbox_list) and not (numpy_of(pc.list_value_length(bbox_list)) == 4).all():
            raise CurateError(path, "an annotation bbox is not [x, y, w, h]")
        bbox = numpy_of(pc.list_flatten(bbox_list)).reshape(-1, 4)
    else:
        bbox = np.zeros((0, 4))

    image_id = numpy_of(images.field("id"))
    order = np.argsort(image_id, kind="stable")
    image_id = image_id[order]
    if len(image_id) > 1 and not (np.diff(image_id) > 0).all():
        raise CurateError(path, "image ids repeat")
    ann_image = numpy_of(annotations.field("image_id"))
    index = np.minimum(np.searchsorted(image_id, ann_image), max(len(image_id) - 1, 0))
    missing = image_id[index] != ann_image if len(image_id) else np.ones(len(ann_image), bool)
    if missing.any():
        raise CurateError(path, f"{int(missing.sum())} annotations refer to image ids not in \"images\" "
                                f"(first: {int(ann_image[missing][0])})")
    category = numpy_of(annotations.field("category_id"))
    known = np.isin(category, np.array(sorted(COCO_ID_BY_LABEL_ID.values())))
    if not known.all():
        raise CurateError(path, f"category_id {int(category[~known][0])} is not one of synmix's categories")
    if (numpy_of(annotations.field("area")) < 0).any():
        raise CurateError(path, "negative annotation area")
    ann_ids = numpy_of(annotations.field("id"))
    if len(np.unique(ann_ids)) != len(ann_ids):
        raise CurateError(path, "annotation ids repeat")
    frame_str = frames if frames.type == pa.string() else pc.cast(frames, pa.string())
    return CocoColumns(
        path=path, source=source, split=split, sha256=sha, info=info,
        image_id=image_id,
        image_width=numpy_of(images.field("width"))[order],
        image_height=numpy_of(images.field("height"))[order],
        image_frame=frame_str.take(arrow_of(order)),
        annotations=annotations, bbox=bbox, ann_image_index=index,
    )


# --- whole records of a few annotations, without parsing them all ----------------------------------

_ANNOTATIONS_KEY = b'"annotations":['
_NEXT_ANNOTATION = b'},{"id":'


class CocoRecords:
    """The images (as dicts) and the text of every annotation of a COCO file, from its bytes.

    ``curate manifest`` needs the whole records of the annotations it picks, but only those: the
    columns come from Arrow (:func:`read_coco_columns`), and here the one-line files CocoWriter
    writes are cut at the annotation boundaries (``},{"id":``) in one regex sweep, checked against
    the column of ids, so that a picked annotation is a slice of the file. Any other layout
    (pretty-printed, other key order, ...) is parsed whole with ``json.loads``, as before.
    """

    def __init__(self, path: Path, data: bytes, columns: CocoColumns):
        self.path = path
        self._data = data
        self._ids = columns.numpy("id")
        self._image_ids = columns.numpy("image_id")
        self._starts: np.ndarray | None = None
        self._objects: list | None = None
        self._canonical = False
        head = self._cut(data) if len(self._ids) else None
        if head is None:
            obj = parse_coco_json(path, data)
            self._data = None
            self.images: list = obj["images"]
            self._objects = obj["annotations"]
        else:
            self._data = None  # picked spans are read back from the file: memory holds no copy of it
            self.images = head["images"]
            info = head.get("info")
            # convert's files are json.dumps output: a slice is already what _dumps would write
            self._canonical = isinstance(info, dict) and str(info.get("description", "")).endswith(
                "converted by synmix")
        if len(self.images) != len(columns.image_id) or (self._objects is not None
                                                         and len(self._objects) != len(self._ids)):
            raise CurateError(path, "images or annotations differ between two reads of the file")

    def _cut(self, data: bytes) -> dict | None:
        """The head fields (info … images) parsed, annotation starts found; None: not CocoWriter's layout."""
        at = data.find(_ANNOTATIONS_KEY)
        end = len(data)
        while end and data[end - 1] == 0x0A:  # not rstrip(): that copies the whole file
            end -= 1
        if at < 0 or data[end - 2:end] != b"]}":
            return None
        first = at + len(_ANNOTATIONS_KEY)
        try:
            head = json.loads(data[:first] + b"]}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(head, dict) or not isinstance(head.get("images"), list) or list(head)[-1] != "annotations":
            return None
        starts = _find_all(data, _NEXT_ANNOTATION, first, end - 2) + 2
        if len(starts) + 1 != len(self._ids):
            return None
        # annotation i: starts[i] up to the comma (or final "]") at starts[i + 1] - 1
        self._starts = np.concatenate([[first], starts, [end - 1]])
        return head

    def annotation_texts(self, indices: np.ndarray, image_ids: np.ndarray, first_id: int,
                         batch: int = 4096) -> Iterator[tuple[bytes, int]]:
        """Annotations ``indices`` as :class:`CocoWriter` writes them after ``id`` → ``first_id``, ``first_id``
        + 1, …, ``image_id`` → ``image_ids`` and ``source_annotation_id`` (the old id) added last — what
        ``dict(a)`` so changed dumps to — in batches of (comma-joined UTF-8 text, count)."""
        indices = np.asarray(indices, dtype=np.int64)
        image_ids = np.asarray(image_ids, dtype=np.int64)
        file = open(self.path, "rb") if self._starts is not None else None
        try:
            for lo in range(0, len(indices), batch):
                chunk = indices[lo:lo + batch]
                texts = self._texts(file, chunk, image_ids[lo:lo + batch], first_id + lo)
                yield b",".join(texts), len(chunk)
        finally:
            if file is not None:
                file.close()

    def _texts(self, file, indices: np.ndarray, image_ids: np.ndarray, first_id: int) -> list[bytes]:
        new_ids = range(first_id, first_id + len(indices))
        old_ids, old_images = self._ids[indices].tolist(), self._image_ids[indices].tolist()
        if file is None:
            return [self._changed(self._objects[i], n, m) for i, n, m in zip(indices.tolist(), new_ids,
                                                                             image_ids.tolist())]
        begins, stops = self._starts[indices], self._starts[indices + 1] - 1
        base, end = int(begins.min()), int(stops.max())
        if end - base > (64 << 20):  # far apart (a file not in image order): one read each
            spans = [os.pread(file.fileno(), e - b, b) for b, e in zip(begins.tolist(), stops.tolist())]
        else:  # picked annotations come image by image, in file order: one read for the batch
            region = os.pread(file.fileno(), end - base, base)
            spans = [region[b:e] for b, e in zip((begins - base).tolist(), (stops - base).tolist())]
        out = []
        for text, new_id, image_id, old_id, old_image in zip(spans, new_ids, image_ids.tolist(), old_ids, old_images):
            head = b'{"id":%d,"image_id":%d,' % (old_id, old_image)
            if self._canonical and text.startswith(head) and text.endswith(b"}"):
                out.append(b'{"id":%d,"image_id":%d,%b,"source_annotation_id":%d}'
                           % (new_id, image_id, text[len(head):-1], old_id))
                continue
            try:
                original = json.loads(text)
                if original["id"] != old_id:
                    raise ValueError
            except (ValueError, TypeError, KeyError):
                raise CurateError(self.path, "changed while being read (annotation ids moved)") from None
            out.append(self._changed(original, new_id, image_id))
        return out

    def _changed(self, original: dict, new_id: int, image_id: int) -> bytes:
        annotation = dict(original)
        annotation["id"] = new_id
        annotation["image_id"] = image_id
        annotation["source_annotation_id"] = original["id"]
        return _dumps(annotation, self.path).encode("utf-8")


def _find_all(data: bytes, pattern: bytes, first: int, last: int, step: int = 1 << 24) -> np.ndarray:
    """Every start of ``pattern`` in ``data[first:last]``, ascending (NumPy over 16 MB windows: no
    match objects, no copy of the file)."""
    code = np.frombuffer(pattern, np.uint8)
    found = [np.zeros(0, np.int64)]
    for lo in range(first, last, step):
        width = min(step, last - lo)  # matches starting in [lo, lo + width)
        window = np.frombuffer(data, np.uint8, count=min(width + len(code) - 1, len(data) - lo), offset=lo)
        at = np.flatnonzero(window[:width] == code[0])
        at = at[at + len(code) <= len(window)]
        for k in range(1, len(code)):
            at = at[window[at + k] == code[k]]
        found.append(at + lo)
    return np.concatenate(found)


# --- the writer ----------------------------------------------------------------------------------


def _dumps(obj, path: Path) -> str:
    # Strict RFC 8259: a NaN or an infinity is a one-line error naming the file being written.
    return strict_json(obj, path, separators=(",", ":"))


class CocoWriter:
    """Stream one COCO instances file, atomically (temp file + rename on success).

    Images are kept (as JSON text) until the end; annotations go through a spool file beside the
    output, so memory holds only the image records. ``sha256`` is set once the file is written::

        with CocoWriter(path, info) as coco:
            coco.add_images(images)
            coco.add_annotations(annotations)

    Any ``OSError`` (full disk, read-only file system, …) is a :class:`CurateError` naming ``path``;
    no temp or spool file is left behind, whatever ends the block (Ctrl-C included).
    """

    def __init__(self, path: Path, info: dict, categories: list[dict] | None = None):
        self.path = Path(path)
        self.info = info
        self.categories = coco_categories() if categories is None else categories
        self.images: list[str] = []
        self.annotations = 0
        self.sha256: str | None = None
        self._spool = None
        self._spool_path: Path | None = None
        self._writing = None

    def __enter__(self) -> CocoWriter:
        self._writing = writing(self.path)
        self._writing.__enter__()
        try:
            remove_stale_temp_files(self.path.parent)  # of writes a killed run left here
            self._spool_path = make_temp(self.path, suffix=".annotations.tmp")
            with output_errors(self.path):
                self._spool = open(self._spool_path, "wb")  # bytes: text the callers encoded goes as is
        except BaseException:
            self._discard_spool()
            self._writing.__exit__(None, None, None)
            raise
        return self

    def add_images(self, images: Iterable[dict]) -> None:
        self.images.extend(_dumps(image, self.path) for image in images)

    def add_annotations(self, annotations: Iterable[dict]) -> None:
        write = self._spool.write
        with output_errors(self.path):
            for annotation in annotations:
                text = _dumps(annotation, self.path).encode("utf-8")
                write(b"," if self.annotations else b"")
                write(text)
                self.annotations += 1

    def add_annotation_text(self, text: str | bytes, count: int) -> None:
        """``count`` annotations already encoded as this writer would (``_dumps`` of each, joined by
        commas; str or UTF-8): the convert driver's shards hold them so, and are copied without a parse."""
        if not count:
            return
        data = text.encode("utf-8") if isinstance(text, str) else text
        with output_errors(self.path):
            if self.annotations:
                self._spool.write(b",")
            self._spool.write(data)
        self.annotations += count

    def cancel(self) -> None:
        """Write nothing after all (e.g. every frame was skipped: no empty file that looks done)."""
        self.cancelled = True

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and not getattr(self, "cancelled", False):
                with output_errors(self.path):
                    self._spool.close()  # flushes: a full disk may show here
                self._write()
            elif isinstance(exc, OSError):
                raise output_error(self.path, exc) from None
        finally:
            self._discard_spool()
            self._writing.__exit__(None, None, None)

    def _discard_spool(self) -> None:
        if self._spool is not None:
            try:
                self._spool.close()
            except OSError:
                pass  # the block failed already; its error is the one to show
        if self._spool_path is not None:
            try:
                self._spool_path.unlink(missing_ok=True)
            except OSError:
                pass

    def _write(self) -> None:
        digest = hashlib.sha256()
        with atomic_path(self.path) as tmp, open(tmp, "wb") as out:
            def emit(text: str) -> None:
                data = text.encode("utf-8")
                digest.update(data)
                out.write(data)

            head = {"info": self.info, "licenses": [], "categories": self.categories}
            emit(_dumps(head, self.path)[:-1])
            emit(',"images":[' + ",".join(self.images) + '],"annotations":[')
            with open(self._spool_path, "rb") as spool:
                for block in iter(lambda: spool.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            emit("]}\n")
        self.sha256 = digest.hexdigest()
