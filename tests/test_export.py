"""`curate export coco`: synmix output opened by other tools as it is (pycocotools, torchvision,
Detectron2, Datumaro; pandas and DuckDB for instances.parquet).

The sets come from the real pipeline (sample → curate convert → curate manifest) and are exported
by the real CLI; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from curate.export import export_coco, target_names
from curate.labels import coco_categories

REPO = Path(__file__).resolve().parents[1]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, synscapes_sample, cityscapes_sample) -> dict:
    """Three sources (train + val) converted into one folder, a pruned manifest over them, and both
    exported with the CLI: ``convert`` (one set per COCO file) and ``manifest`` (train + 3 eval sets)."""
    from curate.convert import convert
    from curate.manifest import ManifestRequest, make_manifests
    from curate.sample import write_bdd100k_sample

    root = tmp_path_factory.mktemp("export")
    bdd = root / "bdd100k"
    for split, n in (("train", 3), ("val", 2)):
        write_bdd100k_sample(bdd, frames=n, split=split, seed=11, size=(320, 180))
    out = root / "converted"
    for split in ("train", "val"):
        convert("synscapes", synscapes_sample[0], out, split=split, gtfine=True, workers=1, progress=False)
        convert("cityscapes", cityscapes_sample[0], out, split=split, workers=1, progress=False)
        convert("bdd100k", bdd, out, split=split, workers=1, progress=False)
    [manifest] = make_manifests(ManifestRequest(out=out, output=root / "manifests" / "mix.json", real="all",
                                                synthetic="all"), progress=False)
    dirs = {"convert": root / "coco-convert", "manifest": root / "coco-manifest"}
    for kind, source in (("convert", out), ("manifest", manifest)):
        result = _cli("export", "coco", source, "--to", dirs[kind])
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "%|" not in result.stderr  # no bar off a terminal
    return {"root": root, "out": out, "manifest": manifest, "dirs": dirs}


def _sets(directory: Path) -> dict[str, dict]:
    """name → provenance entry (source COCO file, image root) of every set in an export."""
    return json.loads((directory / "synmix-export.json").read_text())["sets"]


def _every_set(exported):
    for kind, directory in exported["dirs"].items():
        for name, entry in _sets(directory).items():
            yield kind, directory, name, entry


def _snapshot(directory: Path) -> dict[str, tuple[str, bytes | str]]:
    files = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            files[rel] = ("link", os.readlink(path))
        elif path.is_file():
            files[rel] = ("file", path.read_bytes())
        else:
            files[rel] = ("dir", "")
    return files


# ---------------------------------------------------------------------------------------------
# layout, names, provenance


def test_layout_and_set_names(exported):
    convert_dir, manifest_dir = exported["dirs"]["convert"], exported["dirs"]["manifest"]
    want = {f"{s}_{split}" for s in ("synscapes", "cityscapes", "bdd100k") for split in ("train", "val")}
    assert set(_sets(convert_dir)) == want
    assert set(_sets(manifest_dir)) == {"train", "synscapes_val", "cityscapes_val", "bdd100k_val"}
    for directory in exported["dirs"].values():
        assert sorted(p.name for p in directory.iterdir()) == ["annotations", "images", "synmix-export.json"]
        names = set(_sets(directory))
        assert {p.name for p in (directory / "annotations").iterdir()} == {f"instances_{n}.json" for n in names}
        assert {p.name for p in (directory / "images").iterdir()} == names  # no temporary leftovers
    # the training mix keeps each source below its own folder; Cityscapes keeps its city folders
    assert {p.name for p in (manifest_dir / "images" / "train").iterdir()} == {"synscapes", "cityscapes"}
    cities = {p.parent.name for p in (convert_dir / "images" / "cityscapes_train").rglob("*.png")}
    assert cities and all(c.isalpha() for c in cities)


def test_file_names_are_relative_without_dots_and_point_at_the_same_image_bytes(exported):
    for _, directory, name, entry in _every_set(exported):
        source = json.loads(Path(entry["coco"]).read_text())
        assert hashlib.sha256(Path(entry["coco"]).read_bytes()).hexdigest() == entry["coco_sha256"]
        original = {im["id"]: im for im in source["images"]}
        coco = json.loads((directory / "annotations" / f"instances_{name}.json").read_text())
        assert len(coco["images"]) == len(original) > 0
        for image in coco["images"]:
            file_name = image["file_name"]
            assert ".." not in file_name and not file_name.startswith("/") and "\\" not in file_name
            exported_file = directory / "images" / name / file_name
            assert exported_file.is_symlink() and not os.path.isabs(os.readlink(exported_file))
            real = Path(os.path.normpath(Path(entry["image_root"]) / original[image["id"]]["file_name"]))
            assert exported_file.read_bytes() == real.read_bytes()
            assert {k: v for k, v in image.items() if k != "file_name"} == \
                {k: v for k, v in original[image["id"]].items() if k != "file_name"}
        # annotations: every field and id as in the source file, categories synmix's 1..8
        assert coco["annotations"] == source["annotations"]
        assert coco["categories"] == coco_categories()
        assert coco["info"]["image_root"] == f"../images/{name}"


def test_target_names_never_collide_nor_climb():
    paths = ["/d/cs/leftImg8bit/train/aachen/a.png", "/d/cs/leftImg8bit/train/bochum/b.png",
             "/d/syn/img/rgb/1.png", "/d/syn/img/rgb/2.png", "/d/syn/img/rgb/1.png"]
    groups = ["cityscapes", "cityscapes", "synscapes", "synscapes", "synscapes"]
    assert target_names(paths, groups) == ["cityscapes/aachen/a.png", "cityscapes/bochum/b.png",
                                           "synscapes/1.png", "synscapes/2.png", "synscapes/1.png"]
    assert target_names(paths[:2], groups[:2]) == ["aachen/a.png", "bochum/b.png"]
    assert target_names(["/x/a/1.png"], ["s"]) == ["1.png"]
    # the same file name in two sources' trees: two names
    assert target_names(["/a/img/1.png", "/b/img/1.png"], ["s", "t"]) == ["s/1.png", "t/1.png"]


# ---------------------------------------------------------------------------------------------
# the tools


def test_pycocotools_decodes_every_mask_as_in_the_source_file(exported):
    for _, directory, name, entry in _every_set(exported):
        source = COCO(entry["coco"])
        coco = COCO(str(directory / "annotations" / f"instances_{name}.json"))
        assert sorted(coco.getAnnIds()) == sorted(source.getAnnIds()) and coco.getAnnIds()
        assert coco.getCatIds() == list(range(1, 9))
        for ann_id in coco.getAnnIds():
            ann, original = coco.anns[ann_id], source.anns[ann_id]
            mask = coco.annToMask(ann)
            assert mask.shape == (coco.imgs[ann["image_id"]]["height"], coco.imgs[ann["image_id"]]["width"])
            assert np.array_equal(mask, source.annToMask(original))
            assert int(mask.sum()) == ann["area"] == int(mask_util.area(original["segmentation"]))


def test_torchvision_coco_detection_loads_every_image_target_and_mask(exported):
    datasets = pytest.importorskip("torchvision.datasets")
    for _, directory, name, _entry in _every_set(exported):
        ann_file = directory / "annotations" / f"instances_{name}.json"
        dataset = datasets.CocoDetection(root=str(directory / "images" / name), annFile=str(ann_file))
        coco = dataset.coco
        assert len(dataset) == len(coco.imgs)
        for i in range(len(dataset)):
            image, target = dataset[i]
            record = coco.imgs[dataset.ids[i]]
            assert image.size == (record["width"], record["height"])
            assert [t["id"] for t in target] == coco.getAnnIds(imgIds=record["id"])
        # the transforms-v2 wrapper decodes the RLE masks into tensors
        wrapped = datasets.wrap_dataset_for_transforms_v2(dataset, target_keys=("image_id", "labels", "masks"))
        for i in range(len(wrapped)):
            _, target = wrapped[i]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=target["image_id"]))
            if anns:
                assert np.array_equal(target["masks"].numpy(), np.stack([coco.annToMask(a) for a in anns]))
                assert target["labels"].tolist() == [a["category_id"] for a in anns]


@pytest.mark.detectron2
def test_detectron2_register_coco_instances_with_bitmask_masks(exported):
    pytest.importorskip("detectron2")
    import torch
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    for kind, directory, name, _entry in _every_set(exported):
        dataset = f"export_{kind}_{name}"
        ann_file = directory / "annotations" / f"instances_{name}.json"
        register_coco_instances(dataset, {}, str(ann_file), str(directory / "images" / name))
        try:
            records = DatasetCatalog.get(dataset)
            coco = COCO(str(ann_file))
            assert len(records) == len(coco.imgs)
            assert MetadataCatalog.get(dataset).thing_classes == [c["name"] for c in coco_categories()]
            for record in records:
                assert os.path.isfile(record["file_name"])
                assert len(record["annotations"]) == len(coco.getAnnIds(imgIds=record["image_id"]))
            # the README's configuration: RLE masks reach the model as bitmasks, pixel for pixel
            # (crowd regions are left out by the mapper; resizing to the image's own size is a no-op)
            record = max(records, key=lambda r: len(r["annotations"]))
            cfg = get_cfg()
            cfg.MODEL.MASK_ON = True  # as in every instance-segmentation config
            cfg.INPUT.MASK_FORMAT = "bitmask"
            cfg.INPUT.RANDOM_FLIP = "none"
            cfg.INPUT.MIN_SIZE_TRAIN = (record["height"],)
            instances = DatasetMapper(cfg, is_train=True)(record)["instances"]
            want = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=record["image_id"]))
                    if not a["iscrowd"]]
            assert instances.gt_masks.tensor.shape[0] == len(want) > 0
            assert torch.equal(instances.gt_masks.tensor, torch.from_numpy(np.stack(want)).bool())
        finally:
            DatasetCatalog.remove(dataset)
            MetadataCatalog.remove(dataset)


def test_datumaro_imports_every_set_with_its_images_and_masks(exported):
    if os.environ.get("CI"):  # install.sh installs it: under CI a missing Datumaro is a failure
        import datumaro  # noqa: F401
    pytest.importorskip("datumaro")
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset

    for directory in exported["dirs"].values():
        dataset = Dataset.import_from(str(directory), "coco_instances")
        sets = _sets(directory)
        assert set(dataset.subsets()) == set(sets)
        for name in sets:
            coco = COCO(str(directory / "annotations" / f"instances_{name}.json"))
            items = list(dataset.get_subset(name))
            assert len(items) == len(coco.imgs)
            for item in items:
                assert os.path.isfile(item.media.path)
                assert Path(item.media.path).resolve() == \
                    (directory / "images" / name / coco.imgs[item.attributes["id"]]["file_name"]).resolve()
                masks = [a for a in item.annotations if a.type == AnnotationType.mask]
                assert len(masks) == len(coco.getAnnIds(imgIds=item.attributes["id"]))


def test_instances_parquet_opens_in_pandas_and_duckdb(exported):
    pd = pytest.importorskip("pandas")
    duckdb = pytest.importorskip("duckdb")
    from curate.stats import run_stats

    out = exported["out"]
    run_stats(out, figures=False, progress=False)
    parquet = out / "instances.parquet"
    total = sum(len(json.loads(p.read_text())["annotations"]) for p in out.glob("*_*.json")
                if not p.name.endswith(".report.json"))
    frame = pd.read_parquet(parquet)
    assert len(frame) == total and {"source", "class_name", "area_px"} <= set(frame.columns)
    rows = duckdb.sql(f"SELECT source, class_name, count(*) AS n FROM '{parquet}' GROUP BY ALL").fetchall()
    counts = frame.groupby(["source", "class_name"], observed=True).size().to_dict()
    assert {(source, cls): n for source, cls, n in rows} == counts


# ---------------------------------------------------------------------------------------------
# options, errors, re-runs


def test_copy_writes_real_files(exported, tmp_path):
    result = _cli("export", "coco", exported["manifest"], "--to", tmp_path / "c", "--copy", "--quiet")
    assert result.returncode == 0 and result.stdout == "", result.stderr
    links = _snapshot(exported["dirs"]["manifest"])
    copies = _snapshot(tmp_path / "c")
    assert links.keys() == copies.keys()
    for rel, (kind, value) in copies.items():
        if rel.startswith("images/") and links[rel][0] == "link":
            assert kind == "file" and value == (exported["dirs"]["manifest"] / rel).read_bytes()
    for name in _sets(tmp_path / "c"):  # annotation files identical whichever way images are placed
        rel = f"annotations/instances_{name}.json"
        assert copies[rel] == links[rel]


def test_reexport_is_byte_identical_and_replaces_only_its_sets(exported, tmp_path):
    directory = tmp_path / "d"
    export_coco(exported["out"], directory, progress=False)
    before = _snapshot(directory)
    # the same bytes as the CLI's export elsewhere (links aside: they are relative to where they lie)
    assert {k: v for k, v in before.items() if v[0] != "link"} == \
        {k: v for k, v in _snapshot(exported["dirs"]["convert"]).items() if v[0] != "link"}
    (directory / "images" / "synscapes_train" / "stale.png").write_bytes(b"old")
    (directory / "images" / "mine").mkdir()  # a set of another export stays
    (directory / "images" / "mine" / "x.png").write_bytes(b"x")
    export_coco(exported["out"], directory, progress=False)
    after = _snapshot(directory)
    assert after.pop("images/mine") == ("dir", "") and after.pop("images/mine/x.png") == ("file", b"x")
    assert after == before
    # the manifest's sets join the folder; its provenance lists both exports
    export_coco(exported["manifest"], directory, progress=False)
    assert set(_sets(directory)) == set(_sets(exported["dirs"]["convert"])) | {"train"}


def test_missing_image_is_one_error_line_and_writes_nothing(synscapes_sample, tmp_path):
    from curate.convert import convert

    syn = tmp_path / "Synscapes"
    shutil.copytree(synscapes_sample[0], syn)
    out = tmp_path / "converted"
    convert("synscapes", syn, out, split="train", workers=1, progress=False)
    files = [syn / im["file_name"] for im in json.loads((out / "synscapes_train.json").read_text())["images"]]
    assert len(files) >= 5
    saved = {f: f.read_bytes() for f in (files[2], files[4])}
    for f in saved:
        f.unlink()

    result = _cli("export", "coco", out, "--to", tmp_path / "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line == f"error: {files[2]}: image not found (listed in {out / 'synscapes_train.json'})"
    assert not (tmp_path / "x").exists()

    # into an earlier export: it is left as it was
    for f, data in saved.items():
        f.write_bytes(data)
    assert _cli("export", "coco", out, "--to", tmp_path / "x", "-q").returncode == 0
    before = _snapshot(tmp_path / "x")
    files[4].unlink()
    result = _cli("export", "coco", out, "--to", tmp_path / "x")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {files[4]}: image not found")
    assert _snapshot(tmp_path / "x") == before


def test_bad_sources_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for source, needle in ((tmp_path / "nope", "not found"), (empty, "no {source}_{split}.json"),
                           (Path(__file__), "not valid JSON")):
        result = _cli("export", "coco", source, "--to", tmp_path / "x")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith(f"error: {source}: ") and needle in line, line
    assert not (tmp_path / "x").exists()
