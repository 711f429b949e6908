"""curate stats: instance Parquet, summary, suggested thresholds and figures on small COCO files."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from coco_factory import make_coco, write_coco, write_dataset
from pycocotools import mask as mask_util

from curate.coco import _parse_with_arrow, read_coco_columns
from curate.errors import CurateError
from curate.labels import CLASS_NAMES, LABEL_ID, coco_categories
from curate.stats import THRESHOLD_GRID, ks_after_removal, run_stats

CATEGORY_NAME = {c["id"]: c["name"] for c in coco_categories()}


@pytest.fixture(scope="module")
def stats_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    out = root / "OUT"
    write_dataset(out, root, seed=11)
    # Files stats must ignore.
    (out / "synscapes_train.report.json").write_text("{}")
    (out / "mix.coco.json").write_text("{}")
    result = run_stats(out, progress=False)
    return out, result


def _coco(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def test_parquet_has_one_row_per_annotation_with_the_coco_values(stats_out):
    out, result = stats_out
    table = pq.read_table(out / "instances.parquet")
    rows = {(r["source"], r["split"], r["annotation_id"]): r for r in table.to_pylist()}
    expected = 0
    for name in ("synscapes_train", "synscapes_val", "cityscapes_train", "cityscapes_val"):
        coco = _coco(out, name)
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            row = rows[(coco["info"]["source"], coco["info"]["split"], ann["id"])]
            image = images[ann["image_id"]]
            mask = mask_util.decode(ann["segmentation"])
            on_edge = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
            assert row["area_px"] == ann["area"] == int(mask.sum())
            assert [row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]] == ann["bbox"]
            assert row["class_name"] == CATEGORY_NAME[ann["category_id"]]
            assert row["cityscapes_id"] == LABEL_ID[row["class_name"]]
            assert row["iscrowd"] == bool(ann["iscrowd"])
            assert row["touches_border"] == on_edge
            assert row["frame"] == str(image["frame"])
            assert (row["image_width"], row["image_height"]) == (image["width"], image["height"])
            assert row["occluded"] == ann.get("occluded")
            assert row["rule"] == ann["rule"]
            expected += 1
    assert table.num_rows == expected == result.instances


def test_parquet_is_typed_documented_and_says_where_it_comes_from(stats_out):
    import json

    out, _ = stats_out
    schema = pq.read_schema(out / "instances.parquet")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    documented = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 5 and cells[1].startswith("`") and cells[2] in ("category", "integer", "float", "bool"):
            documented[cells[1].strip("`")] = cells[2]
    kinds = {}
    for field in schema:
        t = field.type
        kinds[field.name] = ("category" if pa.types.is_dictionary(t) else "integer" if pa.types.is_integer(t)
                             else "float" if pa.types.is_floating(t) else "bool" if pa.types.is_boolean(t) else str(t))
    assert documented == kinds  # the README's column table is the file's schema
    assert not any(name in ("class", "def", "lambda", "from", "import") for name in schema.names)
    assert schema.field("image_id").type == pa.int16() and schema.field("category_id").type == pa.int8()
    meta = json.loads(schema.metadata[b"synmix"])
    assert meta["schema"] == "synmix.instances" and meta["schema_version"] == 2
    files = {entry["coco"]: entry["sha256"] for entry in meta["sources"]}
    assert set(files) == {"synscapes_train.json", "synscapes_val.json", "cityscapes_train.json", "cityscapes_val.json"}
    assert all(files[name] == hashlib.sha256((out / name).read_bytes()).hexdigest() for name in files)
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(out / "instances.parquet")
    assert str(frame["class_name"].dtype) == "category" and str(frame["source"].dtype) == "category"
    assert len(frame.query("class_name == 'car'")) == int((frame["category_id"] == 3).sum()) > 0


def test_parquet_opens_in_dataframe_libraries(stats_out):
    out, _ = stats_out
    path = out / "instances.parquet"
    n = pq.read_metadata(path).num_rows
    readers = []
    for module, read in (
        ("pandas", lambda m: len(m.read_parquet(path))),
        ("polars", lambda m: m.read_parquet(path).height),
        ("duckdb", lambda m: m.sql(f"select count(*) from '{path}'").fetchone()[0]),
    ):
        try:
            lib = __import__(module)
        except ImportError:
            continue
        assert read(lib) == n
        readers.append(module)
    if not readers:
        pytest.skip("none of pandas, polars, duckdb installed (pyarrow read checked above)")


def test_summary_counts_and_quantiles_match_an_independent_computation(stats_out):
    out, result = stats_out
    with open(out / "stats" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(CLASS_NAMES)
    for name in ("synscapes_train", "cityscapes_val"):
        coco = _coco(out, name)
        source, split = coco["info"]["source"], coco["info"]["split"]
        for row in (r for r in rows if r["source"] == source and r["split"] == split):
            areas = np.array([a["area"] for a in coco["annotations"]
                              if CATEGORY_NAME[a["category_id"]] == row["class"] and not a["iscrowd"]])
            assert int(row["instances"]) == len(areas)
            assert int(row["frames"]) == len(coco["images"])
            if len(areas):
                assert float(row["p50"]) == pytest.approx(np.median(areas), abs=0.051)
                assert float(row["share_under_100px"]) == pytest.approx((areas < 100).mean(), abs=1e-4)
                assert float(row["instances_per_frame"]) == pytest.approx(len(areas) / len(coco["images"]), abs=1e-3)


def _ks_brute_force(a: np.ndarray, b: np.ndarray) -> float:
    points = np.concatenate([a, b])
    return max(abs((a <= x).mean() - (b <= x).mean()) for x in points)


def test_thresholds_pick_the_fraction_with_the_smallest_ks_distance(stats_out):
    out, _ = stats_out
    thresholds = json.loads((out / "stats" / "thresholds.json").read_text())
    assert thresholds["schema"] == "synmix.thresholds" and thresholds["grid"] == list(THRESHOLD_GRID)
    assert set(thresholds["classes"]) == set(CLASS_NAMES) == set(thresholds["prune"])
    synthetic, real = _coco(out, "synscapes_train"), _coco(out, "cityscapes_train")
    for name in CLASS_NAMES:
        entry = thresholds["classes"][name]
        syn = np.sort([a["area"] for a in synthetic["annotations"] if CATEGORY_NAME[a["category_id"]] == name])
        rea = np.array([a["area"] for a in real["annotations"]
                        if CATEGORY_NAME[a["category_id"]] == name and not a["iscrowd"]])
        assert entry["synthetic_instances"] == len(syn) and entry["real_instances"] == len(rea)
        distances = [_ks_brute_force(syn[math.floor(Fraction(str(p)) * len(syn)):], rea) for p in THRESHOLD_GRID]
        assert entry["ks_by_fraction"] == pytest.approx(distances, abs=1e-6)
        assert entry["fraction"] == THRESHOLD_GRID[int(np.argmin(np.round(distances, 6)))]
        assert thresholds["prune"][name] == entry["fraction"]
    # Synthetic instances are drawn smaller than real ones: removing some must bring them closer.
    assert any(entry["fraction"] > 0 for entry in thresholds["classes"].values())
    assert thresholds["synthetic"]["files"][0]["coco"] == "synscapes_train.json"


def test_ks_after_removal_matches_brute_force_with_ties():
    rng = np.random.default_rng(5)
    synthetic, real = rng.integers(1, 30, 200), rng.integers(5, 60, 80)
    fast = ks_after_removal(synthetic, real, fractions=(0.0, 0.25, 0.5, 0.75))
    slow = [_ks_brute_force(np.sort(synthetic)[math.floor(p * 200):], real) for p in (0.0, 0.25, 0.5, 0.75)]
    assert fast == pytest.approx(slow)


def test_figures_are_valid_pngs(stats_out):
    out, result = stats_out
    expected = {out / "stats" / f"size_{name}.png" for name in CLASS_NAMES} | {out / "stats" / "sizes.png"}
    assert set(result.figures) == expected
    for path in expected:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0  # something was drawn


def test_one_source_gives_no_thresholds_and_removes_a_stale_file(tmp_path):
    out = tmp_path / "OUT"
    write_coco(out, "synscapes", "train", 6, 1, tmp_path / "syn", write_images=False)
    (out / "stats").mkdir()
    (out / "stats" / "thresholds.json").write_text("{}")
    result = run_stats(out, figures=False, progress=False)
    assert result.thresholds is None and not (out / "stats" / "thresholds.json").exists()
    assert pq.read_metadata(out / "instances.parquet").num_rows == len(_coco(out, "synscapes_train")["annotations"])


def test_pretty_printed_file_reads_like_the_one_line_file(tmp_path):
    one_line = write_coco(tmp_path / "a", "cityscapes", "train", 5, 3, tmp_path / "cs", write_images=False)
    pretty = write_coco(tmp_path / "b", "cityscapes", "train", 5, 3, tmp_path / "cs", write_images=False, indent=2)
    # convert's one-line layout takes Arrow's reader; the pretty-printed file the json fallback
    assert _parse_with_arrow(one_line.read_bytes(), "cityscapes") is not None
    assert _parse_with_arrow(pretty.read_bytes(), "cityscapes") is None
    a, b = read_coco_columns(one_line), read_coco_columns(pretty)
    assert a.annotations.equals(b.annotations) and a.image_frame.equals(b.image_frame)
    assert a.info["image_root"] == b.info["image_root"]
    assert (a.bbox == b.bbox).all() and (a.image_width == b.image_width).all()


def _bad_category(coco):
    coco["annotations"][0]["category_id"] = 99


def _missing_image(coco):
    coco["annotations"][0]["image_id"] = 424242


def _bad_bbox(coco):
    coco["annotations"][0]["bbox"] = [1.0, 2.0]


@pytest.mark.parametrize("damage, message", [
    (_bad_category, "category_id 99"),
    (_missing_image, "image ids not in"),
    (_bad_bbox, "bbox"),
])
def test_bad_coco_fails_with_one_line_and_writes_nothing(tmp_path, damage, message):
    out = tmp_path / "OUT"
    out.mkdir()
    coco = make_coco("synscapes", "train", 4, 2, tmp_path, max_instances=4)
    coco["annotations"] = coco["annotations"] or [{}]
    damage(coco)
    (out / "synscapes_train.json").write_text(json.dumps(coco))
    with pytest.raises(CurateError, match=message) as err:
        run_stats(out, progress=False)
    assert "synscapes_train.json" in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["synscapes_train.json"]


def test_cli_prints_table_and_fails_cleanly_without_coco_files(stats_out, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import _mount, app

    _mount()
    out, _ = stats_out
    result = CliRunner().invoke(app, ["stats", str(out), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert "share_under_100px" in result.output and "study: ~40%" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "curate", "stats", str(empty)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
