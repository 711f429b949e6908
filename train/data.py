"""From a ``curate manifest`` file to Detectron2's DatasetCatalog / MetadataCatalog.

Reading the manifest (schema, version, sha256) is ``curate.manifest.load_manifest``; loading the COCO
files is Detectron2's ``load_coco_json``. This module checks what training needs on top (classes,
image files and their sizes, Cityscapes ground-truth pairing and label ids) and adds the metadata the evaluators need
(``json_file`` for COCOEvaluator, ``gt_dir`` for CityscapesInstanceEvaluator).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import sources
from curate.coco import _arrow_table, arrow_of, numpy_of, parse_coco_json, read_coco
from curate.errors import CurateError
from curate.fileio import image_size
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, INSTANCE_CLASSES
from curate.manifest import Manifest, ManifestEval, load_manifest
from curate.manifest.schema import GT_PATTERN
from curate.sources.cityscapes import IMAGE_SUFFIX, STEM, check_instance_ids, read_instance_ids, stem_of_file_name
from curate.sources.cityscapes import INSTANCE_SUFFIX as GT_INSTANCE_SUFFIX


def _resolve(base: Path, value) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(value)
    return path if path.is_absolute() else (base / path)


MISSING = "image file missing"


def _image_problem(path: str, image: dict) -> str | None:
    """What is wrong with one listed image, from its header alone (no pixel decoded); None: nothing."""
    if not os.path.isfile(path):
        return MISSING
    want = image.get("width"), image.get("height")
    if not all(isinstance(v, int) for v in want):
        return f"its COCO record has no integer width and height (width {want[0]!r}, height {want[1]!r})"
    try:
        got = image_size(Path(path))
    except CurateError as err:
        return err.problem
    if got != want:
        return f"image is {got[0]}x{got[1]}, its COCO record says {want[0]}x{want[1]}"
    return None


def check_images(paths: list[str], images: list[dict], source: Path) -> None:
    """Every image the data set lists must exist, be a PNG or JPEG and have the width and height of
    its COCO record (Detectron2 would stop at it mid-training): name the first bad one and the count."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(_image_problem, paths, images))
    bad = [(path, problem) for path, problem in zip(paths, problems) if problem is not None]
    if bad:
        first_path, first_problem = bad[0]
        what = "" if all(problem == MISSING for _, problem in bad) else ": missing, unreadable or of another size"
        more = f" (and {len(bad) - 1} more of {len(paths)}{what})" if len(bad) > 1 else ""
        raise CurateError(os.path.normpath(first_path), f"{first_problem}{more}, listed in {source}")


def _ground_truth_problem(path: Path, size: tuple[int, int]) -> CurateError | None:
    try:
        ids = read_instance_ids(path)
        # the values present: a histogram over the 8/16-bit range is linear time (np.unique sorts)
        check_instance_ids(path, np.flatnonzero(np.bincount(ids.ravel())))
    except CurateError as err:
        return err
    if size is not None and (ids.shape[1], ids.shape[0]) != size:
        return CurateError(path, f"ground truth is {ids.shape[1]}x{ids.shape[0]}, the image of this frame "
                                 f"is {size[0]}x{size[1]}")
    return None


def check_ground_truth(coco: dict, eval_set: ManifestEval) -> None:
    """Decode every instanceIds PNG of the set's gt_dir now, not at the end of training: each must be a
    readable 16-bit map of valid Cityscapes ids, of the size of its frame's image."""
    size_by_key = {cityscapes_key(image): (image.get("width"), image.get("height")) for image in coco["images"]}
    files = sorted(eval_set.gt_dir.glob(GT_PATTERN))
    keys = [f.name[: -len(GT_INSTANCE_SUFFIX)] for f in files]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = [p for p in pool.map(_ground_truth_problem, files, [size_by_key.get(k) for k in keys])
                    if p is not None]
    if problems:
        more = f" (and {len(problems) - 1} more bad ground-truth files of {len(files)})" if len(problems) > 1 else ""
        raise CurateError(problems[0].path, f"{problems[0].problem}{more}; ground truth of evaluation set {eval_set.name}")


def check_categories(coco: dict, source: Path) -> None:
    """The COCO categories must be synmix's 8 classes, ids 1..8 in CLASS_NAMES order."""
    got = sorted((c["id"], c["name"]) for c in coco.get("categories", []))
    want = [(COCO_ID_BY_LABEL_ID[label.id], label.name) for label in INSTANCE_CLASSES]
    if got != want:
        raise CurateError(source, f"categories {got} are not synmix's {want}")


def cityscapes_key(image: dict) -> str | None:
    """``{city}_{seq}_{frame}`` of a COCO image, the name the official evaluator pairs files by:
    the source's own Cityscapes-style name for its frame key (``Source.cityscapes_stem``; e.g. a
    Synscapes frame N is ``synscapes_000000_{N:06}``, docs/formats/cityscapes.md §9), else the
    stem of a Cityscapes-style image file name."""
    source, frame = image.get("source"), image.get("frame")
    if source in sources.NAMES and frame is not None:
        to_stem = sources.get(source).cityscapes_stem
        if to_stem is not None:
            stem = to_stem(frame)
            return stem if STEM.match(stem) else None
    return stem_of_file_name(image["file_name"])


def gt_keys(gt_dir: Path) -> set[str]:
    return {f.name[: -len(GT_INSTANCE_SUFFIX)] for f in Path(gt_dir).glob(GT_PATTERN)}


def cityscapes_file_names(coco: dict, eval_set: ManifestEval) -> dict[int, str]:
    """Image path per image id under the name the Cityscapes evaluator expects.

    The evaluator pairs a prediction with its ground truth by the ``{city}_{seq}_{frame}`` prefix of
    the image's file name. Cityscapes images already have it; Synscapes images (``img/rgb/N.png``) are
    read through their ``leftImg8bit/{split}/synscapes/…_leftImg8bit.png`` link in ``image_dir``.
    """
    source = eval_set.coco
    out: dict[int, str] = {}
    for image in coco.get("images", []):
        key = cityscapes_key(image)
        if key is None:
            raise CurateError(source, f"image {image['file_name']} has no Cityscapes frame name; "
                              "the Cityscapes evaluator cannot pair it with ground truth")
        own = str(_resolve(eval_set.image_root, image["file_name"]))
        if os.path.basename(own).startswith(key):
            out[image["id"]] = own
        elif eval_set.image_dir is not None:
            city = STEM.match(key).group("city")
            out[image["id"]] = str(eval_set.image_dir / city / f"{key}{IMAGE_SUFFIX}")
        else:
            raise CurateError(source, f"image {image['file_name']} is not named like {key}{IMAGE_SUFFIX} "
                              "and the manifest gives no image_dir for the Cityscapes evaluator")
    keys = {cityscapes_key(image) for image in coco.get("images", [])}
    gt = gt_keys(eval_set.gt_dir)
    if not gt:
        raise CurateError(eval_set.gt_dir, f"no *{GT_INSTANCE_SUFFIX} files (gt_dir of {eval_set.name})")
    if gt != keys:
        only_gt, only_coco = sorted(gt - keys), sorted(keys - gt)
        raise CurateError(
            eval_set.gt_dir,
            f"ground truth and evaluation set {eval_set.name} differ ({len(only_gt)} frames only in "
            f"gt_dir, e.g. {only_gt[:1]}; {len(only_coco)} only in {source.name}, e.g. {only_coco[:1]}): "
            "the official evaluator needs a prediction for every ground-truth frame",
        )
    return out


@dataclasses.dataclass
class CheckedSet:
    """What registration needs of one data set, after its checks."""

    name: str
    json_file: Path
    image_root: Path
    frames: int
    gt_dir: Path | None = None
    #: image id → path to read (and to name Cityscapes predictions by); None: image_root/file_name
    file_names: dict[int, str] | None = None


#: COCO category id → Detectron2's contiguous class index, as ``load_coco_json`` derives it (the
#: registered ``thing_dataset_id_to_contiguous_id``, and what the dicts carry as ``category_id``).
CONTIGUOUS_ID: dict[int, int] = {COCO_ID_BY_LABEL_ID[label.id]: i for i, label in enumerate(INSTANCE_CLASSES)}


#: Detectron2 dataset dicts made by :func:`check_manifest` from the COCO objects it parsed anyway (the
#: training set and every evaluation set), by (COCO file, image root): registration in this process
#: uses them instead of parsing a file again.
_DICTS: dict[tuple[str, str], list[dict]] = {}


def dataset_dicts(coco: dict, json_file: Path, image_root: Path) -> list[dict]:
    """What Detectron2's ``load_coco_json(json_file, image_root, name)`` returns for this parsed COCO
    object (images by id, each with its annotations in file order, categories 1..8 → 0..7, bbox
    XYWH_ABS; RLE and polygon segmentations as it keeps them), without a second parse; what it would
    assert is a one-line error naming the file."""
    from pycocotools import mask as mask_util

    by_image: dict = {}
    seen_ids: set = set()
    for anno in coco.get("annotations", []):
        by_image.setdefault(anno["image_id"], []).append(anno)
        seen_ids.add(anno.get("id"))
    if len(seen_ids) != len(coco.get("annotations", [])):
        raise CurateError(json_file, "annotation ids repeat")
    xywh_abs = 1  # detectron2.structures.BoxMode.XYWH_ABS (no torch import here)
    records = []
    for image in sorted(coco.get("images", []), key=lambda im: im["id"]):
        objs = []
        for anno in by_image.get(image["id"], ()):
            if anno.get("ignore", 0) != 0:
                raise CurateError(json_file, f"annotation {anno.get('id')} has \"ignore\" (Detectron2 does not support it)")
            obj = {key: anno[key] for key in ("iscrowd", "bbox", "keypoints", "category_id") if key in anno}
            if "bbox" in obj and len(obj["bbox"]) == 0:
                raise CurateError(json_file, f"annotation {anno.get('id')} has an empty bbox")
            segm = anno.get("segmentation")
            if segm:
                if isinstance(segm, dict):
                    if isinstance(segm["counts"], list):
                        segm = mask_util.frPyObjects(segm, *segm["size"])
                else:
                    segm = [poly for poly in segm if len(poly) % 2 == 0 and len(poly) >= 6]
                    if not segm:
                        continue  # as Detectron2: an instance without a valid polygon is left out
                obj["segmentation"] = segm
            keypoints = anno.get("keypoints")
            if keypoints:
                obj["keypoints"] = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(keypoints)]
            obj["bbox_mode"] = xywh_abs
            if obj.get("category_id") not in CONTIGUOUS_ID:
                raise CurateError(json_file, f"category_id {obj.get('category_id')} is not one of synmix's")
            obj["category_id"] = CONTIGUOUS_ID[obj["category_id"]]
            objs.append(obj)
        records.append({"file_name": os.path.join(str(image_root), image["file_name"]), "height": image["height"],
                        "width": image["width"], "image_id": image["id"], "annotations": objs})
    return records


_D2_SCHEMA = pa.schema([
    ("categories", pa.list_(pa.struct([("id", pa.int64()), ("name", pa.string())]))),
    ("images", pa.list_(pa.struct([("id", pa.int64()), ("file_name", pa.string()), ("width", pa.int64()),
                                   ("height", pa.int64())]))),
    ("annotations", pa.list_(pa.struct([
        ("id", pa.int64()), ("image_id", pa.int64()), ("category_id", pa.int64()), ("bbox", pa.list_(pa.float64())),
        ("iscrowd", pa.int64()), ("ignore", pa.int64()), ("keypoints", pa.list_(pa.float64())),
        ("segmentation", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())]))]))),
])


def read_training_coco(path: Path, image_root: Path) -> tuple[dict, list[dict]]:
    """``(COCO object with its categories and images, Detectron2 dicts)`` of a COCO file, parsed once.

    A one-line file with compressed-RLE masks (what ``curate manifest`` writes) is parsed by Arrow into
    the columns Detectron2 keeps (the others are skipped unread: ~3x faster than ``json.loads``, which
    builds every field of every annotation); any other file goes through ``json.loads`` and
    :func:`dataset_dicts`. Either way the dicts are what ``load_coco_json`` would return."""
    data = Path(path).read_bytes()
    table = _arrow_table(data, _D2_SCHEMA)
    if table is not None:
        categories, images, annotations = (pc.list_flatten(table.column(name)).combine_chunks()
                                           for name in ("categories", "images", "annotations"))
        complete = all(annotations.field(f).null_count == 0 for f in ("id", "image_id", "category_id", "bbox",
                                                                      "iscrowd", "segmentation"))
        if complete and annotations.field("keypoints").null_count == len(annotations) and images.null_count == 0:
            del data
            coco = {"categories": categories.to_pylist(), "images": images.to_pylist()}
            return coco, _dicts_of_columns(coco, annotations, path, image_root)
    coco = parse_coco_json(Path(path), data)
    del data
    return coco, dataset_dicts(coco, path, image_root)


def _shared_rows(rows: np.ndarray) -> list[list]:
    """``rows.tolist()`` with one list object per distinct row (mask sizes: one per image size)."""
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    lists = distinct.tolist()
    return [lists[i] for i in inverse.reshape(-1).tolist()]


def _dicts_of_columns(coco: dict, annotations: pa.StructArray, json_file: Path, image_root: Path) -> list[dict]:
    """:func:`dataset_dicts` of Arrow columns (every annotation with a bbox, iscrowd and an RLE mask)."""
    ignore = numpy_of(annotations.field("ignore"), null=0)
    ids = numpy_of(annotations.field("id"))
    if ignore.any():
        raise CurateError(json_file, f"annotation {int(ids[ignore != 0][0])} has \"ignore\" (Detectron2 does not "
                                     "support it)")
    if len(np.unique(ids)) != len(ids):
        raise CurateError(json_file, "annotation ids repeat")
    bbox_lists = annotations.field("bbox")
    bbox_lengths = numpy_of(pc.list_value_length(bbox_lists))  # read_training_coco: no null bbox
    if len(bbox_lists) and bbox_lengths.min() == 0:
        raise CurateError(json_file, "an annotation has an empty bbox")
    contiguous = np.full(max(CONTIGUOUS_ID) + 1, -1, np.int64)
    contiguous[list(CONTIGUOUS_ID)] = list(CONTIGUOUS_ID.values())
    category = numpy_of(annotations.field("category_id"))
    known = (category >= 0) & (category < len(contiguous))
    if not known.all() or (contiguous[category] < 0).any():
        bad = category[~known] if not known.all() else category[contiguous[category] < 0]
        raise CurateError(json_file, f"category_id {int(bad[0])} is not one of synmix's")
    segmentation = annotations.field("segmentation")
    sizes = segmentation.field("size")
    if len(sizes) and (pc.min(pc.list_value_length(sizes)).as_py() != 2 or sizes.null_count):
        raise CurateError(json_file, "a segmentation size is not [height, width]")
    image_of = numpy_of(annotations.field("image_id"))
    order = np.argsort(image_of, kind="stable")  # by image, file order within each (as pycocotools)
    rows = zip(numpy_of(annotations.field("iscrowd"))[order].tolist(),
               numpy_of(pc.list_flatten(bbox_lists)).reshape(-1, 4)[order].tolist()
               if (bbox_lengths == 4).all() else
               [bbox_lists[int(i)].as_py() for i in order],
               contiguous[category][order].tolist(),
               _shared_rows(numpy_of(pc.list_flatten(sizes)).reshape(-1, 2)[order]),
               segmentation.field("counts").take(arrow_of(order)).to_pylist())
    objs = [{"iscrowd": crowd, "bbox": box, "category_id": cat, "segmentation": {"size": size, "counts": counts},
             "bbox_mode": 1} for crowd, box, cat, size, counts in rows]  # 1: BoxMode.XYWH_ABS
    sorted_images = image_of[order]
    records = []
    root = str(image_root)
    for image in sorted(coco["images"], key=lambda im: im["id"]):
        lo, hi = np.searchsorted(sorted_images, image["id"], "left"), np.searchsorted(sorted_images, image["id"], "right")
        records.append({"file_name": os.path.join(root, image["file_name"]), "height": image["height"],
                        "width": image["width"], "image_id": image["id"], "annotations": objs[lo:hi]})
    return records


def check_manifest(manifest: Manifest) -> tuple[CheckedSet, list[CheckedSet]]:
    """Check what training needs beyond the manifest's own checks (``curate.manifest.load_manifest``:
    schema, version, sha256, ground-truth fingerprint): categories, image files and their sizes,
    Cityscapes ground-truth pairing and every label id of that ground truth. Each COCO file is parsed
    once: the Detectron2 dicts of the training set are made from that parse (:data:`_DICTS`)."""
    train_coco, dicts = read_training_coco(manifest.train_coco, manifest.train_image_root)
    check_categories(train_coco, manifest.train_coco)
    _DICTS[(str(manifest.train_coco), str(manifest.train_image_root))] = dicts
    images = train_coco.get("images", [])
    check_images([str(_resolve(manifest.train_image_root, image["file_name"])) for image in images], images,
                 manifest.train_coco)
    frames = len(train_coco.get("images", []))
    if frames == 0:
        raise CurateError(manifest.train_coco, "training set has no images")
    train = CheckedSet("train", manifest.train_coco, manifest.train_image_root, frames)

    evals = []
    for eval_set in manifest.eval_sets:
        if eval_set.image_root is None:  # images relative to the manifest's folder
            eval_set = dataclasses.replace(eval_set, image_root=manifest.path.parent)
        coco = read_coco(eval_set.coco)
        check_categories(coco, eval_set.coco)
        # the dicts of this parse are the set's registration: its file is not parsed a second time
        _DICTS[(str(eval_set.coco), str(eval_set.image_root))] = dataset_dicts(coco, eval_set.coco, eval_set.image_root)
        gt_dir = eval_set.gt_dir
        if gt_dir is not None and not gt_dir.is_dir():
            raise CurateError(gt_dir, f"gt_dir of evaluation set {eval_set.name} not found")
        file_names = cityscapes_file_names(coco, eval_set) if gt_dir is not None else None
        images = coco.get("images", [])
        paths = [file_names[image["id"]] if file_names else str(_resolve(eval_set.image_root, image["file_name"]))
                 for image in images]
        check_images(paths, images, eval_set.coco)
        if gt_dir is not None:
            check_ground_truth(coco, eval_set)
        evals.append(CheckedSet(eval_set.name, eval_set.coco, eval_set.image_root,
                                len(coco.get("images", [])), gt_dir, file_names))
    return train, evals


# ---------------------------------------------------------------------------------------------
# Detectron2 registration


def _load(checked: CheckedSet, dataset_name: str) -> list[dict]:
    cached = _DICTS.get((str(checked.json_file), str(checked.image_root)))
    if cached is not None:  # parsed by check_manifest in this process: the file is not read again
        dicts = list(cached)
    else:
        from detectron2.data.datasets import load_coco_json

        dicts = load_coco_json(str(checked.json_file), str(checked.image_root), dataset_name)
    if checked.file_names:  # new records: the cached ones keep their own file names
        dicts = [{**record, "file_name": checked.file_names[record["image_id"]]} for record in dicts]
    return dicts


def register(checked: CheckedSet, dataset_name: str) -> None:
    """Register one checked set under ``dataset_name`` (replacing an earlier registration of that name)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if dataset_name in DatasetCatalog.list():
        DatasetCatalog.remove(dataset_name)
        MetadataCatalog.remove(dataset_name)
    DatasetCatalog.register(dataset_name, lambda c=checked, n=dataset_name: _load(c, n))
    meta = dict(
        json_file=str(checked.json_file),  # COCOEvaluator scores against this file
        image_root=str(checked.image_root),
        thing_classes=list(CLASS_NAMES),
        # COCO category id → contiguous id, as load_coco_json derives it; Cityscapes ids alongside
        thing_dataset_id_to_contiguous_id=dict(CONTIGUOUS_ID),
        cityscapes_ids=[label.id for label in INSTANCE_CLASSES],
        thing_colors=[label.color for label in INSTANCE_CLASSES],
        frames=checked.frames,
        evaluator_type="coco",
    )
    if checked.gt_dir is not None:
        # CityscapesInstanceEvaluator needs thing_classes named as cityscapesscripts' labels and gt_dir
        meta.update(gt_dir=str(checked.gt_dir), evaluator_type="cityscapes_instance")
    MetadataCatalog.get(dataset_name).set(**meta)


@dataclasses.dataclass
class Registered:
    train: str
    tests: tuple[str, ...]
    frames: int


def register_checked(train: CheckedSet, evals: list[CheckedSet], prefix: str = "synmix") -> Registered:
    train_name = f"{prefix}_train"
    register(train, train_name)
    tests = {}
    for checked in evals:
        name = f"{prefix}_{checked.name}"
        register(checked, name)
        tests[name] = checked
    return Registered(train_name, tuple(tests), train.frames)


def register_manifest(path: Path, prefix: str = "synmix", verify_sha256: bool = True) -> tuple[Manifest, Registered]:
    """Read, check and register a manifest's training set and evaluation sets."""
    manifest = load_manifest(path, verify=verify_sha256)
    train, evals = check_manifest(manifest)
    return manifest, register_checked(train, evals, prefix)
