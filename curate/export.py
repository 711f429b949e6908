"""``curate export coco``: synmix output in the standard COCO layout that other tools open as it is.

::

    DIR/annotations/instances_<set>.json   the set's COCO file (only each image's file_name changed)
    DIR/images/<set>/…                     relative symlinks to the real image files (or copies)
    DIR/synmix-export.json                 provenance: each set's source COCO file, its sha256, counts

Sets: a ``curate convert`` folder gives one set per ``{source}_{split}.json`` (named
``{source}_{split}``); a manifest gives ``train`` (its ``<name>.coco.json``) and each evaluation set
under its own name.

Image names (:func:`target_names`): within a set, the images of one source keep their paths below
the deepest folder that holds all of them (``leftImg8bit/train/aachen/x.png`` → ``aachen/x.png``,
``img/rgb/7.png`` → ``7.png``); in a set mixing sources (a manifest's training mix) each source's
images go below a folder named after the source (``cityscapes/aachen/x.png``, ``synscapes/7.png``).
So no name contains ``..`` and two sources' files never collide.

Everything else in the COCO file is kept as it is: annotation ids and fields, RLE masks, image ids
and fields; categories are synmix's (ids 1..8) and ``info.image_root`` points at ``../images/<set>``.
Files are read twice, without building the whole file as Python objects: once to plan (images,
checks; every image must exist before anything is written) and once to stream the annotations
into :class:`curate.coco.CocoWriter`. Every output is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from curate import __version__
from curate.coco import CocoWriter, coco_files, image_root_of
from curate.errors import CurateError
from curate.fileio import _umask, write_bytes_atomic
from curate.labels import coco_categories

EXPORT_SCHEMA = "synmix.export"
EXPORT_SCHEMA_VERSION = 1
PROVENANCE_NAME = "synmix-export.json"
#: A set name is a folder name and part of a file name.
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SetSpec:
    """One set to export: its name and COCO file; ``image_root`` None: the file's own info.image_root."""

    name: str
    coco: Path
    image_root: Path | None = None


@dataclass
class PlannedSet:
    """A set read and checked: the source file's images, their real paths and their new names."""

    spec: SetSpec
    sha256: str
    info: dict
    image_root: Path
    images: list[dict]
    paths: list[str]  # the real image file of each image
    targets: list[str]  # file_name of each image below images/<set>/
    annotations: int


@dataclass
class ExportedSet:
    name: str
    annotation_file: Path
    image_dir: Path
    images: int
    annotations: int
    files: int  # image files linked or copied (images sharing one file count once)


@dataclass
class ExportResult:
    out: Path
    sets: list[ExportedSet] = field(default_factory=list)
    provenance: Path | None = None


# --- which sets ----------------------------------------------------------------------------------


def sets_of(source: Path) -> tuple[str, list[SetSpec]]:
    """``("convert" | "manifest", sets)`` of SOURCE: a curate convert folder or a manifest file."""
    source = Path(os.path.abspath(source))
    if source.is_dir():
        found = coco_files(source)
        if not found:
            raise CurateError(source, "no {source}_{split}.json COCO files of curate convert in this folder")
        return "convert", [SetSpec(f"{src}_{split}", path) for src, split, path in found]
    if not source.exists():
        raise CurateError(source, "not found (give a curate convert folder or a manifest file)")
    from curate.manifest import load_manifest

    manifest = load_manifest(source)
    specs = [SetSpec("train", manifest.train_coco, manifest.train_image_root)]
    for ev in manifest.eval_sets:
        specs.append(SetSpec(ev.name, ev.coco, ev.image_root if ev.image_root is not None else source.parent))
    return "manifest", specs


def _check_set_names(source: Path, specs: list[SetSpec]) -> None:
    seen = set()
    for spec in specs:
        if not SET_NAME.match(spec.name):
            raise CurateError(source, f"set name {spec.name!r} cannot be a folder name")
        if spec.name in seen:
            raise CurateError(source, f"two sets are named {spec.name}")
        seen.add(spec.name)


# --- target names (pure) -------------------------------------------------------------------------


def target_names(paths: list[str], groups: list[str]) -> list[str]:
    """The name below ``images/<set>/`` of each image file (absolute, normalized ``paths``).

    Images of one group (source) keep their path below the deepest folder holding all of them; with
    more than one group, each group's names go below a folder named after the group. Equal paths
    give equal names, different paths different names, and no name contains ``..``.
    """
    by_group: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        by_group.setdefault(group, []).append(i)
    names = [""] * len(paths)
    for group, members in by_group.items():
        common = os.path.commonpath([os.path.dirname(paths[i]) for i in members])
        for i in members:
            name = Path(os.path.relpath(paths[i], common)).as_posix()
            names[i] = f"{group}/{name}" if len(by_group) > 1 else name
    return names


def _group_of(image: dict) -> str:
    group = image.get("source")
    return group if isinstance(group, str) and SET_NAME.match(group) else "other"


# --- reading a COCO file without building it whole --------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _scan_json(text: str, on_annotation: Callable[[object], None]) -> dict:
    """Top-level fields of a COCO object; each element of "annotations" goes to ``on_annotation``
    (one at a time, so the file is never held as Python objects). Raises ``ValueError``."""
    decode = json.JSONDecoder().raw_decode
    ws = _WS.match

    def expect(pos: int, char: str) -> int:
        if not text.startswith(char, pos):
            raise ValueError(f"expected '{char}' at char {pos}")
        return ws(text, pos + 1).end()

    head: dict = {}
    pos = expect(ws(text, 0).end(), "{")
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            key, pos = decode(text, pos)
            if not isinstance(key, str):
                raise ValueError(f"expected a key at char {pos}")
            pos = expect(ws(text, pos).end(), ":")
            if key == "annotations" and text.startswith("[", pos):
                head[key] = []  # marks the list as present; its elements went to on_annotation
                pos = ws(text, pos + 1).end()
                if text.startswith("]", pos):
                    pos += 1
                else:
                    while True:
                        value, pos = decode(text, pos)
                        on_annotation(value)
                        pos = ws(text, pos).end()
                        if text.startswith("]", pos):
                            pos += 1
                            break
                        pos = expect(pos, ",")
            else:
                head[key], pos = decode(text, pos)
            pos = ws(text, pos).end()
            if text.startswith("}", pos):
                pos += 1
                break
            pos = expect(pos, ",")
    if ws(text, pos).end() != len(text):
        raise ValueError(f"extra data at char {pos}")
    return head


def _scan_file(path: Path, on_annotation: Callable[[object], None]) -> tuple[dict, str]:
    """``(top-level fields, sha256)`` of a COCO instances file; annotations go to ``on_annotation``."""
    if not path.is_file():
        raise CurateError(path, "file not found")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        head = _scan_json(data.decode("utf-8"), on_annotation)
    except UnicodeDecodeError as err:
        raise CurateError(path, f"not valid JSON ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise CurateError(path, f"not valid JSON ({err.msg} at char {err.pos})") from None
    except ValueError as err:
        raise CurateError(path, f"not valid JSON ({err})") from None
    if not isinstance(head.get("images"), list) or not isinstance(head.get("annotations"), list):
        raise CurateError(path, "not a COCO instances file (no \"images\" and \"annotations\" lists)")
    return head, sha


def _category_key(categories) -> list:
    return sorted((c.get("id"), c.get("name")) if isinstance(c, dict) else (None, None) for c in categories)


def _image_root(spec: SetSpec, info: dict) -> Path:
    return Path(spec.image_root) if spec.image_root is not None else image_root_of(spec.coco, info)


def plan_set(spec: SetSpec) -> PlannedSet:
    """Read and check one set's COCO file; every image must exist (the first missing one is named)."""
    path = spec.coco
    category_ids = {c["id"] for c in coco_categories()}
    checks = {"count": 0, "image_ids": []}

    def check(annotation) -> None:
        if not isinstance(annotation, dict):
            raise CurateError(path, f"annotation {checks['count'] + 1} is not an object")
        if annotation.get("category_id") not in category_ids:
            raise CurateError(path, f"category_id {annotation.get('category_id')!r} (annotation "
                                    f"{annotation.get('id')}) is not one of synmix's categories (1..8)")
        checks["image_ids"].append(annotation.get("image_id"))
        checks["count"] += 1

    head, sha = _scan_file(path, check)
    categories = head.get("categories")
    if categories is not None and (not isinstance(categories, list)
                                   or _category_key(categories) != _category_key(coco_categories())):
        raise CurateError(path, "categories differ from synmix's (ids 1..8 person … bicycle)")
    info = head.get("info") if isinstance(head.get("info"), dict) else {}
    images = head["images"]
    ids = set()
    for image in images:
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or not image["file_name"] \
                or not isinstance(image.get("id"), int):
            raise CurateError(path, f"an image record lacks an integer \"id\" or a \"file_name\": {image!r:.120}")
        if image["id"] in ids:
            raise CurateError(path, f"image id {image['id']} repeats")
        ids.add(image["id"])
    unknown = [i for i in checks["image_ids"] if i not in ids]
    if unknown:
        raise CurateError(path, f"{len(unknown)} annotations refer to image ids not in \"images\" (first: {unknown[0]})")
    root = _image_root(spec, info)
    paths = [os.path.normpath(os.path.join(root, image["file_name"])) for image in images]
    for file in paths:
        if not os.path.isfile(file):
            raise CurateError(file, f"image not found (listed in {path})")
    targets = target_names(paths, [_group_of(image) for image in images])
    return PlannedSet(spec, sha, info, root, images, paths, targets, checks["count"])


def plan_export(source: Path) -> tuple[str, list[PlannedSet]]:
    kind, specs = sets_of(source)
    _check_set_names(Path(source), specs)
    return kind, [plan_set(spec) for spec in specs]


# --- writing -------------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _remove_leftovers(out: Path, name: str) -> None:
    """Temporary files of an export of set ``name`` that a hard kill interrupted."""
    for pattern, folder in ((f".{name}.*.tmp", out / "images"), (f".{name}.*.old", out / "images"),
                            (f".instances_{name}.json.*.tmp", out / "annotations")):
        for leftover in folder.glob(pattern):
            _remove(leftover)


def _place_images(planned: PlannedSet, out: Path, copy: bool, bar) -> int:
    """Build ``images/<set>/`` beside its final place, then swap it in; returns the files placed."""
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    name = planned.spec.name
    final = images_dir / name
    final_real = Path(os.path.realpath(images_dir)) / name
    tmp = Path(tempfile.mkdtemp(dir=images_dir, prefix=f".{name}.", suffix=".tmp"))
    placed: dict[str, str] = {}
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for target, source in zip(planned.targets, planned.paths):
            bar.update(1)
            if target in placed:
                continue
            placed[target] = source
            dest = tmp / target
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                if copy:
                    shutil.copyfile(source, dest)
                else:
                    link_dir = (final_real / target).parent
                    os.symlink(os.path.relpath(os.path.realpath(source), link_dir), dest)
            except FileNotFoundError:
                raise CurateError(source, "image not found (it disappeared during the export)") from None
            except OSError as err:
                what = "copy" if copy else "link (use --copy where symlinks are not supported)"
                raise CurateError(final / target, f"cannot {what} {source} ({err.strerror})") from None
        old = None
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.exists():
            old = Path(tempfile.mkdtemp(dir=images_dir, prefix=f".{name}.", suffix=".old"))
            os.rename(final, old / name)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return len(placed)


def _write_set(planned: PlannedSet, out: Path, copy: bool, bar) -> tuple[ExportedSet, str]:
    name = planned.spec.name
    annotation_file = out / "annotations" / f"instances_{name}.json"
    info = dict(planned.info)
    info["image_root"] = f"../images/{name}"
    images = []
    for image, target in zip(planned.images, planned.targets):
        image = dict(image)
        image["file_name"] = target
        images.append(image)
    try:
        with CocoWriter(annotation_file, info) as coco:
            coco.add_images(images)
            _, sha = _scan_file(planned.spec.coco, lambda annotation: coco.add_annotations((annotation,)))
            if sha != planned.sha256:
                raise CurateError(planned.spec.coco, "the file changed during the export (run it again)")
            files = _place_images(planned, out, copy, bar)
    except OSError as err:  # an output that cannot be written: named, not the input
        raise CurateError(err.filename or annotation_file, f"cannot write ({err.strerror})") from None
    exported = ExportedSet(name, annotation_file, out / "images" / name, len(images), coco.annotations, files)
    return exported, coco.sha256


def _provenance(out: Path, source: Path, kind: str, copy: bool, written: list[tuple[PlannedSet, str]]) -> dict:
    """The provenance object: earlier entries of sets not written now are kept."""
    sets = {}
    path = out / PROVENANCE_NAME
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("schema") == EXPORT_SCHEMA and isinstance(old.get("sets"), dict):
                sets.update(old["sets"])
        except (ValueError, OSError, AttributeError):
            pass  # not ours or damaged: replaced
    for planned, annotation_sha in written:
        name = planned.spec.name
        sets[name] = {
            "from": str(source),
            "from_kind": kind,
            "coco": str(planned.spec.coco),
            "coco_sha256": planned.sha256,
            "image_root": str(planned.image_root),
            "images": len(planned.images),
            "annotations": planned.annotations,
            "image_files": "copies" if copy else "symlinks",
            "annotation_file": f"annotations/instances_{name}.json",
            "annotation_file_sha256": annotation_sha,
            "image_dir": f"images/{name}",
        }
    return {"schema": EXPORT_SCHEMA, "schema_version": EXPORT_SCHEMA_VERSION, "tool_version": __version__,
            "sets": dict(sorted(sets.items()))}


def export_coco(source: Path, out: Path, copy: bool = False, progress: bool | None = None) -> ExportResult:
    """Export every set of SOURCE (a curate convert folder or a manifest) into the COCO layout in
    ``out``. Sets already in ``out`` under the same names are replaced; others are left as they are.
    ``progress``: None shows a bar on a terminal only."""
    from curate.progress import progress_bar

    source = Path(os.path.abspath(source))
    out = Path(os.path.abspath(out))
    kind, planned = plan_export(source)  # reads and checks everything before anything is written
    if out.exists() and not out.is_dir():
        raise CurateError(out, "exists and is not a folder")
    for sub in ("annotations", "images"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise CurateError(out / sub, "exists and is not a folder")
    result = ExportResult(out)
    written = []
    total = sum(len(p.images) for p in planned)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CurateError(out, f"cannot create the folder ({err.strerror})") from None
    with progress_bar(total=total, unit="image", desc="export", progress=progress) as bar:
        for p in planned:
            _remove_leftovers(out, p.spec.name)
            exported, annotation_sha = _write_set(p, out, copy, bar)
            result.sets.append(exported)
            written.append((p, annotation_sha))
    provenance = _provenance(out, source, kind, copy, written)
    result.provenance = out / PROVENANCE_NAME
    write_bytes_atomic(result.provenance, (json.dumps(provenance, indent=2) + "\n").encode("utf-8"))
    return result
