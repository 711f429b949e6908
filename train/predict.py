"""``--predict IMAGE_DIR -o preds.zip``: a model's predictions in the Cityscapes test server's format.

The official instance format is what Detectron2's ``CityscapesInstanceEvaluator.process`` writes for
the official evaluator: per image ``<image stem>_pred.txt`` with one line per instance,
``<mask PNG> <Cityscapes label id> <confidence>``, and each mask as a binary PNG beside it (0/255).
This module only runs Detectron2's ``DefaultPredictor`` over the images, lets that evaluator write
the files and zips them flat (the paths in the txt files are relative to them), ready to upload.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from curate.errors import CurateError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder`` (recursively, sorted); their file names must be unique (the zip is flat)."""
    images = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise CurateError(folder, "--predict: no PNG or JPEG image under this folder")
    seen: dict[str, Path] = {}
    for image in images:
        if image.stem in seen:
            raise CurateError(image, f"--predict: same file name as {seen[image.stem]} (the predictions are named "
                                     "after the image file)")
        seen[image.stem] = image
    return images


def predict_to_zip(cfg, image_dir: str, zip_path: str, dataset_name: str) -> dict:
    """Predict every image under ``image_dir`` with the model of ``cfg.MODEL.WEIGHTS``; write ``zip_path``."""
    from detectron2.data.detection_utils import read_image
    from detectron2.engine import DefaultPredictor
    from detectron2.evaluation import CityscapesInstanceEvaluator

    from curate.fileio import atomic_path

    images = image_files(Path(image_dir))
    predictor = DefaultPredictor(cfg)
    writer = CityscapesInstanceEvaluator(dataset_name)  # its process() writes the official files
    writer.reset()
    instances = 0
    try:
        for index, path in enumerate(images):
            outputs = predictor(read_image(str(path), format="BGR"))
            instances += len(outputs["instances"])
            writer.process([{"file_name": str(path), "image_id": index}], [outputs])
        files = sorted(os.listdir(writer._temp_dir))
        with atomic_path(Path(zip_path)) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in files:  # fixed dates: the same predictions give the same bytes
                entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, Path(writer._temp_dir, name).read_bytes())
    finally:
        writer._working_dir.cleanup()
    txt = sum(name.endswith("_pred.txt") for name in files)
    print(f"predictions: {len(images)} images, {instances} instances → {zip_path} ({txt} txt files, "
          f"{len(files) - txt} mask PNGs; Cityscapes test server format)", flush=True)
    return {"images": len(images), "instances": instances, "zip": zip_path}
