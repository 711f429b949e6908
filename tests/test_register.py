"""train.register: synmix data in your own Detectron2 code, and the README's example run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.detectron2


@pytest.fixture(scope="module")
def converted(tmp_path_factory, synscapes_sample, cityscapes_sample):
    pytest.importorskip("detectron2")
    from curate.convert import convert
    from curate.manifest import ManifestRequest, make_manifests

    base = tmp_path_factory.mktemp("register")
    out = base / "out"
    for split in ("train", "val"):
        convert("synscapes", synscapes_sample[0], out, split=split, gtfine=True, workers=1, progress=False)
        convert("cityscapes", cityscapes_sample[0], out, split=split, workers=1, progress=False)
    make_manifests(ManifestRequest(out=out, output=base / "manifests" / "mix.json", real="all", synthetic=4),
                   progress=False)
    return base


def _readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    return re.search(r"<!-- detectron2-example -->\n```python\n(.*?)```", readme, re.S).group(1)


def test_readme_example_runs_as_written(converted):
    code = _readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 11
    result = subprocess.run([sys.executable, "-c", code], cwd=converted, capture_output=True, text=True, timeout=600,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(converted)})
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert "'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle'" in line
    assert line.startswith("10 ")  # 6 Cityscapes + 4 Synscapes training frames


def test_register_a_convert_file_and_an_exported_set(converted, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from curate.export import export_coco
    from train.register import register_synmix

    [name] = register_synmix(converted / "out/cityscapes_val.json")
    meta = MetadataCatalog.get(name)
    assert name == "synmix_cityscapes_val" and meta.evaluator_type == "cityscapes_instance"
    assert Path(meta.gt_dir).is_dir() and meta.cityscapes_ids == [24, 25, 26, 27, 28, 31, 32, 33]
    records = DatasetCatalog.get(name)
    assert len(records) == 3 and all(Path(r["file_name"]).is_file() for r in records)

    export_coco(converted / "out", tmp_path / "coco", progress=False)
    [exported] = register_synmix(tmp_path / "coco/annotations/instances_synscapes_val.json")
    assert exported == "synmix_synscapes_val" and MetadataCatalog.get(exported).evaluator_type == "coco"
    assert len(MetadataCatalog.get(exported).thing_colors) == 8
    assert all(Path(r["file_name"]).is_file() for r in DatasetCatalog.get(exported))


def test_every_coco_file_of_a_manifest_is_parsed_once(converted, monkeypatch):
    """``python -m train``'s registration: the training mix and every evaluation set come from the
    one parse its checks make; Detectron2's loader (a second parse) is never called, and the dicts
    are what it would return (evaluation images under the names the Cityscapes evaluator pairs)."""
    import detectron2.data.datasets as d2_datasets
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from train import data as train_data
    from train.register import register_synmix

    original = d2_datasets.load_coco_json
    parsed: list[str] = []
    for name in ("read_coco", "read_training_coco"):
        real = getattr(train_data, name)
        monkeypatch.setattr(train_data, name, lambda path, *a, _real=real, **k: parsed.append(str(path)) or _real(path, *a, **k))

    def no_second_parse(*args, **kwargs):
        raise AssertionError(f"load_coco_json{args}: a COCO file parsed a second time")

    monkeypatch.setattr(d2_datasets, "load_coco_json", no_second_parse)
    train_data._DICTS.clear()
    names = register_synmix(converted / "manifests" / "mix.json", prefix="once")
    assert len(names) >= 3 and len(parsed) == len(set(parsed)) == len(names)  # train + each evaluation set
    for name in names:
        records = DatasetCatalog.get(name)
        meta = MetadataCatalog.get(name)
        expected = original(meta.json_file, meta.image_root, name)
        assert len(records) == len(expected) > 0
        for got, want in zip(records, expected):
            assert {k: v for k, v in got.items() if k != "file_name"} == {k: v for k, v in want.items() if k != "file_name"}
            assert Path(got["file_name"]).is_file()
    assert len(parsed) == len(names)  # loading the sets parsed nothing more
