"""synmix data in your own Detectron2 code: one call registers it with the right metadata.

    from train.register import register_synmix, use_synmix_masks
    names = register_synmix("manifests/mix.json")      # or out/cityscapes_val.json, or an exported set
    use_synmix_masks(cfg)                                # MODEL.MASK_ON, INPUT.MASK_FORMAT = "bitmask" (RLE)

``register_synmix`` takes what synmix writes: a manifest (its training mix and every evaluation
set, checked as ``python -m train`` checks them), a ``curate convert`` COCO file
(``OUT/{source}_{split}.json``), or a set of ``curate export coco`` (``DIR/annotations/
instances_<set>.json``). Every set gets synmix's metadata: ``thing_classes`` (the 8 Cityscapes
classes in COCO id order), ``thing_dataset_id_to_contiguous_id``, ``cityscapes_ids``,
``thing_colors`` (the label table's colours), ``json_file``, and ``evaluator_type``
(``cityscapes_instance`` with ``gt_dir`` for real Cityscapes files, which carry their own ground
truth, else ``coco``; a manifest registers Synscapes ``--gtfine`` ground truth too).
"""

from __future__ import annotations

from pathlib import Path

from curate import sources
from curate.coco import COCO_NAME, checked_coco_object, image_root_of
from curate.fileio import read_json
from curate.manifest.schema import MANIFEST_SCHEMA
from train.data import CheckedSet, check_categories, register, register_manifest


def use_synmix_masks(cfg) -> None:
    """Instance masks on, in the format Detectron2 reads synmix's RLE masks with: bitmask (its
    default, "polygon", fails on RLE)."""
    cfg.MODEL.MASK_ON = True
    cfg.INPUT.MASK_FORMAT = "bitmask"


def register_synmix(path: Path | str, name: str | None = None, prefix: str = "synmix") -> list[str]:
    """Register a synmix manifest, convert COCO file or exported set; return the dataset names.

    Names: a manifest gives ``{prefix}_train`` and ``{prefix}_{eval set}``; a COCO file gives
    ``name`` or ``{prefix}_{source}_{split}`` (convert) / ``{prefix}_{set}`` (export).
    """
    path = Path(path)
    data = read_json(path)  # parsed once here; Detectron2 parses a COCO file again when it loads the set
    if isinstance(data, dict) and data.get("schema") == MANIFEST_SCHEMA:
        _, registered = register_manifest(path, prefix=prefix)
        return [registered.train, *registered.tests]
    coco = checked_coco_object(path, data)
    check_categories(coco, path)
    info = coco.get("info") or {}
    image_root = image_root_of(path, info)
    source, split = info.get("source"), info.get("split")
    gt_dir = None
    if source in sources.NAMES and split and sources.get(source).cityscapes_gt == "input":
        candidate = image_root / "gtFine" / split  # real Cityscapes: its own ground truth
        gt_dir = candidate if candidate.is_dir() else None
    if name is None:
        match = COCO_NAME.match(path.name)
        stem = path.stem.removeprefix("instances_") if match is None else f"{match['source']}_{match['split']}"
        name = f"{prefix}_{stem}"
    register(CheckedSet(name, path, image_root, len(coco.get("images", [])), gt_dir), name)
    return [name]
