"""From a ``curate manifest`` file to Detectron2's DatasetCatalog / MetadataCatalog.

Reading the manifest (schema, version, sha256) is ``curate.manifest.load_manifest``; loading the COCO
files is Detectron2's ``load_coco_json``. This module checks what training needs on top (classes,
image files, Cityscapes ground-truth pairing) and adds the metadata the evaluators need
(``json_file`` for COCOEvaluator, ``gt_dir`` for CityscapesInstanceEvaluator).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

from curate import sources
from curate.coco import read_coco
from curate.errors import CurateError
from curate.labels import CLASS_NAMES, COCO_ID_BY_LABEL_ID, INSTANCE_CLASSES
from curate.manifest import Manifest, ManifestEval, load_manifest
from curate.sources.cityscapes import IMAGE_SUFFIX, STEM, stem_of_file_name
from curate.sources.cityscapes import INSTANCE_SUFFIX as GT_INSTANCE_SUFFIX


def _resolve(base: Path, value) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(value)
    return path if path.is_absolute() else (base / path)


def _image_file_names(coco: dict) -> list[str]:
    return [img["file_name"] for img in coco.get("images", [])]


def check_images(paths: list[str], source: Path) -> None:
    """Every image the data set lists must exist: name the first missing one and the count."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        more = f" (and {len(missing) - 1} more of {len(paths)})" if len(missing) > 1 else ""
        raise CurateError(missing[0], f"image file missing{more}, listed in {source}")


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
    files = glob.glob(os.path.join(gt_dir, "*", "*" + GT_INSTANCE_SUFFIX))
    return {os.path.basename(f)[: -len(GT_INSTANCE_SUFFIX)] for f in files}


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


def check_manifest(manifest: Manifest) -> tuple[CheckedSet, list[CheckedSet]]:
    """Check what training needs beyond the manifest's own checks (``curate.manifest.load_manifest``:
    schema, version, sha256): categories, image files, Cityscapes ground-truth pairing."""
    train_coco = read_coco(manifest.train_coco)
    check_categories(train_coco, manifest.train_coco)
    check_images([str(_resolve(manifest.train_image_root, f)) for f in _image_file_names(train_coco)],
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
        gt_dir = eval_set.gt_dir
        if gt_dir is not None and not gt_dir.is_dir():
            raise CurateError(gt_dir, f"gt_dir of evaluation set {eval_set.name} not found")
        file_names = cityscapes_file_names(coco, eval_set) if gt_dir is not None else None
        paths = list(file_names.values()) if file_names else [
            str(_resolve(eval_set.image_root, f)) for f in _image_file_names(coco)]
        check_images(paths, eval_set.coco)
        evals.append(CheckedSet(eval_set.name, eval_set.coco, eval_set.image_root,
                                len(coco.get("images", [])), gt_dir, file_names))
    return train, evals


# ---------------------------------------------------------------------------------------------
# Detectron2 registration


def _load(checked: CheckedSet, dataset_name: str) -> list[dict]:
    from detectron2.data.datasets import load_coco_json

    dicts = load_coco_json(str(checked.json_file), str(checked.image_root), dataset_name)
    if checked.file_names:
        for record in dicts:
            record["file_name"] = checked.file_names[record["image_id"]]
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
        thing_dataset_id_to_contiguous_id={
            COCO_ID_BY_LABEL_ID[label.id]: i for i, label in enumerate(INSTANCE_CLASSES)},
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
