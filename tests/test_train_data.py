"""train/data.py parses each COCO file once: the Detectron2 dicts it makes from that parse are the
ones Detectron2's own ``load_coco_json`` makes from the file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from coco_factory import write_dataset

import train.data
from curate.errors import CurateError
from train.data import dataset_dicts, read_training_coco


def test_arrow_read_dicts_equal_detectron2s_load_coco_json(tmp_path, monkeypatch):
    datasets = pytest.importorskip("detectron2.data.datasets")
    path = write_dataset(tmp_path / "OUT", tmp_path, seed=5)["cityscapes_train"]
    coco = json.loads(path.read_text())
    coco["images"].reverse()
    path.write_text(json.dumps(coco, separators=(",", ":")))  # one line, as curate manifest writes

    def no_json(*_):
        raise AssertionError("parsed by json.loads: the Arrow path was not taken")

    monkeypatch.setattr(train.data, "parse_coco_json", no_json)
    head, ours = read_training_coco(path, tmp_path / "images")
    assert ours == datasets.load_coco_json(str(path), str(tmp_path / "images"), "synmix_test_arrow")
    assert [(c["id"], c["name"]) for c in head["categories"]] == [(c["id"], c["name"]) for c in coco["categories"]]
    assert len(head["images"]) == len(coco["images"])


def test_dataset_dicts_equal_detectron2s_load_coco_json(tmp_path):
    datasets = pytest.importorskip("detectron2.data.datasets")
    paths = write_dataset(tmp_path / "OUT", tmp_path, seed=4)
    path = paths["synscapes_train"]
    coco = json.loads(path.read_text())
    # the other segmentation forms Detectron2 takes: uncompressed RLE, polygons (one too short)
    image = coco["images"][-1]["id"]
    extra = [{"segmentation": {"size": [4, 5], "counts": [3, 2, 15]}, "bbox": [0.0, 0.0, 1.0, 2.0]},
             {"segmentation": [[1, 1, 4, 1, 4, 3], [2, 2]], "bbox": [1.0, 1.0, 3.0, 2.0]},
             {"segmentation": [[1, 1, 2]], "bbox": [1.0, 1.0, 1.0, 1.0]}]
    for k, annotation in enumerate(extra):
        coco["annotations"].append({"id": 10**9 + k, "image_id": image, "category_id": 3, "area": 2,
                                    "iscrowd": 0, **annotation})
    coco["images"].reverse()  # image order in the file does not matter: both sort by id
    path.write_text(json.dumps(coco))
    ours = dataset_dicts(coco, path, tmp_path / "images")
    assert read_training_coco(path, tmp_path / "images")[1] == ours  # a file Arrow cannot take: json.loads
    theirs = datasets.load_coco_json(str(path), str(tmp_path / "images"), "synmix_test_dicts")
    assert ours == theirs
    assert sum(len(r["annotations"]) for r in ours) == len(coco["annotations"]) - 1


def test_what_detectron2_would_assert_is_a_one_line_error(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0},
                            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0}]}
    with pytest.raises(CurateError, match="annotation ids repeat"):
        dataset_dicts(coco, tmp_path / "x.json", tmp_path)
    coco["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [], "iscrowd": 0}]
    with pytest.raises(CurateError, match="empty bbox"):
        dataset_dicts(coco, tmp_path / "x.json", tmp_path)


def test_registration_reads_columns_without_pandas(tmp_path):
    """pyarrow's to_numpy, fill_null, pa.array and scalar comparisons import pandas on first use
    (~0.2 s of a registration); train/data.py reads the Arrow buffers itself (issue 12)."""
    path = write_dataset(tmp_path / "OUT", tmp_path, seed=6)["synscapes_train"]
    coco = json.loads(path.read_text())
    coco["annotations"][0]["ignore"] = 0  # a column with nulls (fill_null's case)
    path.write_text(json.dumps(coco, separators=(",", ":")))  # one line: the Arrow path
    code = ("import sys\nfrom pathlib import Path\nimport train.data as d\n"
            "def no_json(*_):\n    raise AssertionError('json.loads path taken')\n"
            "d.parse_coco_json = no_json\n"
            f"coco, dicts = d.read_training_coco(Path({str(path)!r}), Path({str(tmp_path)!r}))\n"
            "print(sum(len(r['annotations']) for r in dicts), 'pandas' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(len(coco["annotations"])), "False"]
