"""Readers on hand-made Synscapes frames, the real Cityscapes fixtures, and every bad-input case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from curate.errors import CurateError
from curate.labels import INSTANCE_ID_OFFSET, LABEL_ID
from curate.sources import cityscapes, synscapes

H, W = 6, 8


def _meta(ids_to_class: dict[int, int]) -> dict:
    keys = {str(i): c for i, c in ids_to_class.items()}
    box = {"xmin": 0.0, "xmax": 0.5, "ymin": 0.0, "ymax": 0.5, "zmin": 3.0, "zmax": 4.0}
    return {
        "camera": {
            "extrinsic": {"x": 0, "y": 0, "z": 1.5, "roll": 0, "pitch": 0, "yaw": 0},
            "intrinsic": {"fx": 1000, "fy": 1000, "u0": W / 2, "v0": H / 2, "resx": W, "resy": H},
        },
        "instance": {
            "bbox2d": {k: box for k in keys},
            "bbox3d": {k: {"origin": [1, 2, 0], "x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]} for k in keys},
            "class": keys,
            "occluded": {k: 0.25 for k in keys},
            "truncated": {k: 0.0 for k in keys},
        },
        "scene": {"num_cars": 1.0},
    }


def _write_synscapes_frame(root: Path, n: int, instance_rgb: np.ndarray, class_map: np.ndarray, meta: dict) -> None:
    for sub in ("img/rgb", "img/class", "img/instance", "meta"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # PIL writes the RGB triple as given: an independent encoder from the reader's cv2 path.
    Image.fromarray(instance_rgb, "RGB").save(root / "img/instance" / f"{n}.png")
    Image.fromarray(class_map, "L").save(root / "img/class" / f"{n}.png")
    Image.fromarray(np.zeros((*class_map.shape, 3), np.uint8), "RGB").save(root / "img/rgb" / f"{n}.png")
    (root / "meta" / f"{n}.json").write_text(json.dumps(meta))


@pytest.fixture
def tiny_synscapes(tmp_path: Path) -> tuple[Path, dict[int, int]]:
    """One 8×6 frame with two instances whose ids use all three colour channels."""
    car_id = 2 + 256 * 3 + 65536 * 40  # R=2, G=3, B=40
    bike_id = 7 + 65536 * 50
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[1:3, 1:4] = (2, 3, 40)
    rgb[4:6, 5:8] = (7, 0, 50)
    classes = np.full((H, W), LABEL_ID["road"], np.uint8)
    classes[1:3, 1:4] = LABEL_ID["car"]
    classes[4:6, 5:8] = LABEL_ID["bicycle"]
    classes[4, 5:8] = LABEL_ID["rider"]
    ids = {car_id: LABEL_ID["car"], bike_id: LABEL_ID["bicycle"], 99: LABEL_ID["person"]}  # 99: invisible
    _write_synscapes_frame(tmp_path, 3, rgb, classes, _meta(ids))
    return tmp_path, ids


def test_synscapes_decodes_24bit_ids_from_rgb(tiny_synscapes):
    root, ids = tiny_synscapes
    frame = synscapes.load_frame(root, 3)
    car_id = 2 + 256 * 3 + 65536 * 40
    assert frame.instance_map.dtype == np.int32
    assert frame.instance_map[1, 1] == car_id
    assert frame.instance_map[5, 7] == 7 + 65536 * 50
    assert frame.instance_map[0, 0] == 0
    assert set(np.unique(frame.instance_map)) == {0, car_id, 7 + 65536 * 50}
    assert frame.class_map[4, 6] == LABEL_ID["rider"]
    assert set(frame.meta.instances) == set(ids)
    car = frame.meta.instances[car_id]
    assert car.class_id == LABEL_ID["car"] and car.occluded == 0.25
    assert car.bbox2d == (0.0, 0.5, 0.0, 0.5, 3.0, 4.0)
    assert frame.rgb_path == root / "img/rgb/3.png"


def test_synscapes_packed_ids_convert_like_unpacked_ones(tiny_synscapes):
    """convert keeps the instance map as the RGB bytes the ids are packed in (no unpacking pass):
    the conversion (COCO records and --gtfine maps) is the same as from the unpacked ids."""
    root, _ = tiny_synscapes
    ids = synscapes.load_frame(root, 3)
    packed = synscapes.load_frame(root, 3, check_ids=False, packed=True)
    assert packed.instance_map.shape == (*ids.instance_map.shape, 3) and packed.instance_map.dtype == np.uint8
    assert np.array_equal(synscapes.decode_instance_rgb(packed.instance_map), ids.instance_map)
    a = synscapes.convert_frame_data(ids, "train", with_gtfine=True)
    b = synscapes.convert_frame_data(packed, "train", with_gtfine=True)
    assert a.annotations == b.annotations and a.counts == b.counts and a.findings == b.findings
    assert np.array_equal(a.gtfine.instance_ids, b.gtfine.instance_ids)
    assert np.array_equal(a.gtfine.label_ids, b.gtfine.label_ids) and a.gtfine.polygons == b.gtfine.polygons


def test_instance_png_round_trip():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1 << 24, size=(5, 7), dtype=np.int32)
    assert np.array_equal(synscapes.decode_instance_png(synscapes.encode_instance_png(ids)), ids)


def test_synscapes_default_split_and_split_file(tmp_path, tiny_synscapes):
    root, _ = tiny_synscapes
    for n in (1, 20000, 20001, 25000):
        for folder, suffix in (("meta", ".json"), ("img/class", ".png"), ("img/instance", ".png")):
            shutil.copy(root / f"{folder}/3{suffix}", root / f"{folder}/{n}{suffix}")
    assert synscapes.frame_numbers(root, "train") == [1, 3, 20000]
    assert synscapes.frame_numbers(root, "val") == [20001, 25000]
    assert [ref.key for ref in synscapes.scan_split(root, "val").frames] == [20001, 25000]
    with pytest.raises(CurateError, match="unknown split 'all'"):
        synscapes.frame_numbers(root, "all")  # "all" is the CLI's word for every split, one file each
    split_file = tmp_path / "mine.txt"
    split_file.write_text("25000\n# comment\n3\n")
    assert synscapes.frame_numbers(root, "train", split_file) == [3, 25000]
    split_file.write_text("3\n7\n")
    with pytest.raises(CurateError, match="mine.txt: frame 7 is listed"):
        synscapes.frame_numbers(root, "train", split_file)
    split_file.write_text("3\nseven\n")
    with pytest.raises(CurateError, match="line 2"):
        synscapes.frame_numbers(root, "train", split_file)
    for text in ("3\n²\n", "3\n１\n"):  # Unicode digits are no frame numbers
        split_file.write_text(text, encoding="utf-8")
        with pytest.raises(CurateError, match="line 2: .* is not a frame number"):
            synscapes.frame_numbers(root, "train", split_file)
    split_file.write_bytes(b"3\n\xff\xfe7\n")
    with pytest.raises(CurateError, match="mine.txt: not UTF-8 text"):
        synscapes.frame_numbers(root, "train", split_file)


def test_synscapes_listing_reports_incomplete_frames_and_stray_names(tiny_synscapes):
    root, _ = tiny_synscapes
    shutil.copy(root / "meta/3.json", root / "meta/03.json")  # names frame 3 a second time
    shutil.copy(root / "meta/3.json", root / "meta/３.json")  # full-width digit
    shutil.copy(root / "img/class/3.png", root / "img/class/9.png")  # PNGs without meta
    shutil.copy(root / "img/instance/3.png", root / "img/instance/9.png")
    (root / "meta/notes.txt").write_text("hi")
    listing = synscapes.scan_split(root, "train")
    assert [ref.key for ref in listing.frames] == [3]
    problems = {p.path.name: p.problem for p in listing.problems}
    assert set(problems) == {"03.json", "３.json", "notes.txt", "9.json"}
    assert "names frame 3 like 3.json" in problems["03.json"] and "names frame 3" in problems["３.json"]
    assert "missing: frame 9 has img/class/9.png and img/instance/9.png" in problems["9.json"]


def _one_line(err: CurateError) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_synscapes_bad_inputs(tmp_path, tiny_synscapes, fixtures_dir):
    root, ids = tiny_synscapes
    with pytest.raises(CurateError, match="Synscapes root not found"):
        synscapes.frame_numbers(tmp_path / "nope")
    with pytest.raises(CurateError, match="looks like a Cityscapes folder"):
        synscapes.frame_numbers(fixtures_dir / "cityscapes-real")

    # corrupt PNG
    (root / "img/class/3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CurateError) as err:
        synscapes.load_frame(root, 3)
    assert _one_line(err.value).startswith(str(root / "img/class/3.png"))

    # size mismatch between class and instance maps
    Image.fromarray(np.zeros((H + 1, W), np.uint8), "L").save(root / "img/class/3.png")
    with pytest.raises(CurateError, match=r"3\.png: size 8x6 differs from class map 8x7"):
        synscapes.load_frame(root, 3)

    # unknown class id in the class map
    Image.fromarray(np.full((H, W), 200, np.uint8), "L").save(root / "img/class/3.png")
    with pytest.raises(CurateError, match="unknown class id 200 in class map"):
        synscapes.load_frame(root, 3)
    Image.fromarray(np.zeros((H, W), np.uint8), "L").save(root / "img/class/3.png")

    # an id in the PNG that meta does not know
    meta = json.loads((root / "meta/3.json").read_text())
    car_key = str(2 + 256 * 3 + 65536 * 40)
    for table in meta["instance"].values():
        del table[car_key]
    (root / "meta/3.json").write_text(json.dumps(meta))
    with pytest.raises(CurateError, match=f"meta/3.json: instance id {car_key} of 3.png has no entry in meta"):
        synscapes.load_frame(root, 3)

    # unknown class id in meta
    meta["instance"]["class"]["99"] = 77
    (root / "meta/3.json").write_text(json.dumps(meta))
    with pytest.raises(CurateError, match="instance 99 has unknown class id 77"):
        synscapes.load_frame(root, 3)

    # meta that is not JSON / lacks a key
    (root / "meta/3.json").write_text("{not json")
    with pytest.raises(CurateError, match="not valid JSON"):
        synscapes.load_frame(root, 3)
    (root / "meta/3.json").write_text(json.dumps({"camera": {}, "scene": {}}))
    with pytest.raises(CurateError, match="meta has no 'instance' key"):
        synscapes.load_frame(root, 3)

    # missing file
    (root / "img/instance/3.png").unlink()
    (root / "meta/3.json").write_text(json.dumps(_meta(ids)))
    with pytest.raises(CurateError, match="instance/3.png: file not found"):
        synscapes.load_frame(root, 3)


def _pil_read(path: Path) -> np.ndarray:
    return np.array(Image.open(path)).astype(np.int64)


def test_real_cityscapes_fixtures_decode_their_ids(fixtures_dir):
    root = fixtures_dir / "cityscapes-real"
    train = cityscapes.list_frames(root, "train")
    val = cityscapes.list_frames(root, "val")
    assert len(train) == 8 and len(val) == 15
    assert all(r.image_path is not None for r in train)  # images present for aachen
    assert all(r.image_path is None for r in val)  # annotations only for frankfurt
    seen_groups, seen_gaps = set(), False
    for ref in train + val:
        frame = cityscapes.load_frame(ref)
        independent = _pil_read(ref.instance_path)
        assert frame.instance_ids.shape == (1024, 2048)
        assert np.array_equal(frame.instance_ids, independent)
        assert np.array_equal(frame.label_ids, _pil_read(ref.label_path))
        values = np.unique(frame.instance_ids)
        seen_groups |= {v for v in values.tolist() if LABEL_ID["person"] <= v < INSTANCE_ID_OFFSET}
        for label in {v // INSTANCE_ID_OFFSET for v in values.tolist() if v >= INSTANCE_ID_OFFSET}:
            ks = sorted(v % INSTANCE_ID_OFFSET for v in values.tolist() if v // INSTANCE_ID_OFFSET == label)
            seen_gaps |= ks != list(range(ks[0], ks[0] + len(ks))) or ks[0] != 0
        # label map agrees with the instance map's class part wherever an instance is
        inst = frame.instance_ids >= INSTANCE_ID_OFFSET
        assert np.array_equal(frame.label_ids[inst], frame.instance_ids[inst] // INSTANCE_ID_OFFSET)
    assert {LABEL_ID["person"], LABEL_ID["car"], LABEL_ID["bicycle"]} <= seen_groups
    assert seen_gaps


def test_cityscapes_small_fixture_and_polygons(fixtures_dir, tmp_path):
    refs = cityscapes.list_frames(fixtures_dir / "cityscapes-small", "val")
    assert [r.name for r in refs] == ["frankfurt_000000_000294"]
    frame = cityscapes.load_frame(refs[0])
    assert frame.instance_ids.shape == (128, 256)
    # polygons are read when present
    poly_src = next((fixtures_dir / "polygons").glob("*_gtFine_polygons.json"))
    city_dir = tmp_path / "gtFine/train/city"
    city_dir.mkdir(parents=True)
    shutil.copy(refs[0].instance_path, city_dir / "city_000001_000002_gtFine_instanceIds.png")
    shutil.copy(poly_src, city_dir / "city_000001_000002_gtFine_polygons.json")
    ref = cityscapes.list_frames(tmp_path, "train")[0]
    assert ref.label_path is None and ref.image_path is None
    polys = cityscapes.load_frame(ref, with_polygons=True).polygons
    assert {o["label"] for o in polys["objects"]} == {"sidewalk", "car"}


def test_cityscapes_bad_inputs(fixtures_dir, tmp_path, tiny_synscapes):
    edge = fixtures_dir / "edge-cases/train_dataset"
    bad = cityscapes.list_frames(edge, "val")[0]
    with pytest.raises(CurateError, match="instance id 1024 encodes label 1 \\(ego vehicle\\), which has no instances"):
        cityscapes.load_frame(bad)
    with pytest.raises(CurateError, match="looks like a Synscapes folder"):
        cityscapes.list_frames(tiny_synscapes[0], "train")
    with pytest.raises(CurateError, match="Cityscapes root not found"):
        cityscapes.list_frames(tmp_path / "missing", "train")
    with pytest.raises(CurateError, match="no such split"):
        cityscapes.list_frames(fixtures_dir / "cityscapes-small", "train")
    # size mismatch between instanceIds and labelIds; corrupt file
    city_dir = tmp_path / "cs/gtFine/train/x"
    city_dir.mkdir(parents=True)
    cv2.imwrite(str(city_dir / "x_000000_000001_gtFine_instanceIds.png"), np.zeros((4, 4), np.uint16))
    cv2.imwrite(str(city_dir / "x_000000_000001_gtFine_labelIds.png"), np.zeros((4, 5), np.uint8))
    ref = cityscapes.list_frames(tmp_path / "cs", "train")[0]
    with pytest.raises(CurateError, match="labelIds.png: size 5x4 differs from instanceIds 4x4"):
        cityscapes.load_frame(ref)
    (city_dir / "x_000000_000001_gtFine_instanceIds.png").write_bytes(b"")
    with pytest.raises(CurateError, match="instanceIds.png: not a readable PNG"):
        cityscapes.load_frame(ref)
