"""BDD100K instance segmentation: the real bitmasks, the decoder, the conversion, the sample set, errors.

Expected numbers for the two real bitmasks come from the official toolkit's own tests
(bdd100k/bdd100k ``tests/label/to_coco_test.py``: insseg_bitmask.png holds 4 cars, the first of
107995 pixels not occluded, the last of 2442 occluded; ``tests/label/to_rle_test.py``: 0.png
gives 22 labels). Everything else is recomputed here with plain numpy on PIL's decoding.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image

from curate.errors import CurateError
from curate.labels import COCO_ID_BY_LABEL_ID, ID_TO_LABEL, LABEL_ID, LABEL_ID_BY_COCO_ID
from curate.records import ANNOTATION_ID_STRIDE
from curate.sample.bdd100k import FIRST_INSTANCE_ID, frame_name, make_bdd100k_frame, write_bdd100k_sample
from curate.sources import bdd100k as bdd
from curate.sources import get
from curate.sources.base import ConvertSettings

FIXTURE_ROOT = "bdd100k"  # under the fixtures_dir fixture
SAMPLE_SIZE = (384, 216)
#: BDD100K category ids 1..8 as documented (format.rst, "Object Detection"; first 8 for ins_seg).
DOCUMENTED = {1: "pedestrian", 2: "rider", 3: "car", 4: "truck", 5: "bus", 6: "train", 7: "motorcycle", 8: "bicycle"}


def coco_id(cityscapes_name: str) -> int:
    return COCO_ID_BY_LABEL_ID[LABEL_ID[cityscapes_name]]


def class_of(ann: dict) -> str:
    return ID_TO_LABEL[LABEL_ID_BY_COCO_ID[ann["category_id"]]].name


def pil_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGBA", path
        return np.asarray(image).copy()


def numpy_instances(rgba: np.ndarray) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(instance id, category, mask, G values on the mask) for every (category, id) with category ≠ 0,
    sorted by (id, category) — straight from the documented channel meanings."""
    r, g, b, a = (rgba[..., i].astype(np.int64) for i in range(4))
    ids = (b << 8) + a
    out = []
    for c, i in sorted({(int(c), int(i)) for c, i in zip(r.ravel(), ids.ravel()) if c != 0}, key=lambda t: (t[1], t[0])):
        mask = (r == c) & (ids == i)
        out.append((i, c, mask, np.unique(g[mask])))
    return out


def numpy_bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def check_against_numpy(result, rgba: np.ndarray, image_id: int) -> list:
    """Every annotation equals what plain numpy computes from the channels; returns the numpy list."""
    expected = numpy_instances(rgba)
    assert len(result.annotations) == len(expected)
    for k, (ann, (iid, cat, mask, g_values)) in enumerate(zip(result.annotations, expected)):
        assert ann["id"] == image_id * ANNOTATION_ID_STRIDE + k
        assert ann["image_id"] == image_id
        assert ann["source_instance_id"] == iid
        name = DOCUMENTED[cat]
        assert class_of(ann) == ("person" if name == "pedestrian" else name)
        assert ann["rule"] == "original"
        rle = ann["segmentation"]
        assert rle["size"] == list(mask.shape)
        decoded = mask_util.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), mask)
        assert rle["counts"] == mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
        assert ann["area"] == int(mask.sum()) == int(mask_util.area({"size": rle["size"], "counts": rle["counts"].encode()}))
        assert ann["bbox"] == numpy_bbox(mask)
        assert ann["bbox"] == mask_util.toBbox({"size": rle["size"], "counts": rle["counts"].encode()}).tolist()
        g = int(np.bitwise_or.reduce(g_values))
        assert ann["iscrowd"] == int(bool(g & 0b0011))
        assert ann["occluded"] == (1.0 if g & 0b0100 else 0.0)
        assert ann["truncated"] == (1.0 if g & 0b1000 else 0.0)
    return expected


# --- the documented format ---------------------------------------------------------------------------


def test_category_table_and_mapping_are_the_documented_ones():
    assert {i + 1: n for i, n in enumerate(bdd.CATEGORY_NAMES)} == DOCUMENTED
    assert bdd.CITYSCAPES_NAME["pedestrian"] == "person"
    assert all(bdd.CITYSCAPES_NAME[n] == n for n in bdd.CATEGORY_NAMES if n != "pedestrian")
    # every BDD class lands on one of synmix's 8 COCO categories, in the same order
    assert [coco_id(bdd.CITYSCAPES_NAME[n]) for n in bdd.CATEGORY_NAMES] == list(range(1, 9))
    assert bdd.encode_attributes(truncated=True) == 8 and bdd.encode_attributes(occluded=True) == 4
    assert bdd.encode_attributes(crowd=True) == 2 and bdd.encode_attributes(ignore=True) == 1


def test_decode_bitmask_round_trip_with_ids_above_255():
    h, w = 3, 5
    category = np.array([[0, 3, 3, 1, 8], [2, 2, 4, 5, 6], [7, 0, 1, 1, 3]], np.uint8)
    attributes = np.array([[0, 4, 4, 8, 2], [1, 1, 0, 15, 3], [12, 0, 0, 0, 4]], np.uint8)
    ids = np.array([[0, 300, 300, 1, 65535], [256, 256, 511, 512, 255], [4097, 0, 2, 2, 300]], np.int64)
    rgba = np.zeros((h, w, 4), np.uint8)  # built by hand from the documented layout
    rgba[..., 0] = category
    rgba[..., 1] = attributes
    rgba[..., 2] = ids // 256
    rgba[..., 3] = ids % 256
    cat, attr, inst = bdd.decode_bitmask(rgba)
    assert cat.dtype == np.uint8 and attr.dtype == np.uint8 and inst.dtype == np.int32
    assert np.array_equal(cat, category) and np.array_equal(attr, attributes) and np.array_equal(inst, ids)
    assert np.array_equal(bdd.encode_bitmask(cat, attr, inst), rgba)
    with pytest.raises(ValueError):
        bdd.encode_bitmask(cat, attr, inst + 65536)


# --- the two real bitmasks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "split, stem, by_class, occluded_ids",
    [
        ("val", "0", {"car": 10, "truck": 9, "bus": 3}, []),
        ("train", "insseg_bitmask", {"car": 4}, [2, 4]),
    ],
)
def test_real_bitmasks_convert_to_the_pixels_numpy_finds(fixtures_dir, split, stem, by_class, occluded_ids):
    root = fixtures_dir / FIXTURE_ROOT
    path = root / bdd.BITMASK_DIR / split / f"{stem}.png"
    rgba = bdd.read_bitmask(path)
    assert np.array_equal(rgba, pil_rgba(path))  # OpenCV's BGRA comes back in R, G, B, A order
    result = bdd.convert_bitmask(rgba, 7, stem, split, path)
    expected = check_against_numpy(result, rgba, 7)

    counts = {}
    for ann in result.annotations:
        counts[class_of(ann)] = counts.get(class_of(ann), 0) + 1
    assert counts == by_class
    assert result.counts["instances"]["before"] == by_class
    assert result.counts["annotations"] == sum(by_class.values())
    assert result.counts["crowd_regions"] == {} and result.counts["attribute_conflicts"] == 0
    assert [a["source_instance_id"] for a in result.annotations if a["occluded"]] == occluded_ids
    assert not any(a["iscrowd"] or a["truncated"] for a in result.annotations)  # neither file sets those bits
    assert result.image == {"id": 7, "file_name": f"images/10k/{split}/{stem}.jpg", "width": 1280, "height": 720,
                            "frame": stem, "source": "bdd100k", "split": split}
    if stem == "0":  # 23 ann ids, id 22 without a pixel: a gap, as the official to_rle test's 22 labels
        assert [i for i, *_ in expected] == [i for i in range(1, 24) if i != 22]
    else:  # the official to_coco test's first and last instance
        first, last = result.annotations[0], result.annotations[-1]
        assert (first["area"], first["occluded"], last["area"], last["occluded"]) == (107995, 0.0, 2442, 1.0)


def test_real_fixture_root_through_the_registry(fixtures_dir):
    source = get("bdd100k")
    assert source is bdd.SOURCE
    assert (source.name, source.kind, source.splits, source.frame_key_type) == ("bdd100k", "real", ("train", "val"), str)
    root = fixtures_dir / FIXTURE_ROOT
    assert source.check_root(root) == root
    refs = source.list_frames(root, "val", None).frames
    assert [(r.key, r.image_id, r.path) for r in refs] == [("0", 1, root / bdd.BITMASK_DIR / "val" / "0.png")]
    result = source.convert_frame(ConvertSettings(root=root, split="val", out=Path("unused")), refs[0])
    assert result.counts["images_missing"] == 1  # the fixtures hold no images
    assert len(result.annotations) == 22


# --- the conversion on hand-made bitmasks ------------------------------------------------------------


def test_conversion_rules_on_a_hand_made_bitmask(tmp_path):
    h, w = 8, 10
    category = np.zeros((h, w), np.uint8)
    attributes = np.zeros((h, w), np.uint8)
    ids = np.zeros((h, w), np.int64)
    category[0:4, 0:3], ids[0:4, 0:3] = 3, 300  # car 300 ...
    attributes[0:2, 0:3] = 4  # ... half of it flagged occluded: a conflict, OR taken
    category[5:8, 0:2], ids[5:8, 0:2], attributes[5:8, 0:2] = 1, 2, 1  # ignore → crowd
    category[0:3, 5:9], ids[0:3, 5:9], attributes[0:3, 5:9] = 1, 1000, 2 | 8  # crowd + truncated
    category[4:8, 6:9], ids[4:8, 6:9] = 2, 256  # a rider ...
    category[6:8, 4:6], ids[6:8, 4:6] = 8, 256  # ... and a bicycle reusing its id: two annotations
    category[3, 9], ids[3, 9] = 0, 77  # background with an id: not an instance
    rgba = bdd.encode_bitmask(category, attributes, ids)
    path = tmp_path / "hand-made.png"
    Image.fromarray(rgba, "RGBA").save(path)  # PIL writes, OpenCV reads
    assert np.array_equal(bdd.read_bitmask(path), rgba)

    result = bdd.convert_bitmask(bdd.read_bitmask(path), 3, "hand-made", "train", path, image_present=False)
    check_against_numpy(result, rgba, 3)
    got = [(a["source_instance_id"], class_of(a), a["iscrowd"], a["occluded"], a["truncated"]) for a in result.annotations]
    assert got == [(2, "person", 1, 0.0, 0.0), (256, "rider", 0, 0.0, 0.0), (256, "bicycle", 0, 0.0, 0.0),
                   (300, "car", 0, 1.0, 0.0), (1000, "person", 1, 0.0, 1.0)]
    c = result.counts
    assert c["attribute_conflicts"] == 1 and c["category_conflicts"] == 1 and c["images_missing"] == 1
    assert c["instances"]["before"] == {"rider": 1, "bicycle": 1, "car": 1}
    assert c["crowd_regions"] == {"person": 2} and c["annotations"] == 5


def test_empty_bitmask_and_unknown_category(tmp_path):
    empty = np.zeros((4, 6, 4), np.uint8)
    result = bdd.convert_bitmask(empty, 1, "e", "val")
    assert result.annotations == [] and result.counts["annotations"] == 0 and result.image["width"] == 6
    bad = empty.copy()
    bad[1, 1] = (9, 0, 0, 1)
    with pytest.raises(CurateError) as err:
        bdd.convert_bitmask(bad, 1, "e", "val", tmp_path / "e.png")
    assert err.value.path == str(tmp_path / "e.png") and err.value.problem == "unknown category id 9"


def test_read_bitmask_rejects_non_rgba(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), "RGB").save(path)
    with pytest.raises(CurateError) as err:
        bdd.read_bitmask(path)
    assert err.value.path == str(path) and "RGBA" in err.value.problem and "\n" not in str(err.value)
    with pytest.raises(CurateError) as err:
        bdd.read_bitmask(tmp_path / "missing.png")
    assert err.value.path == str(tmp_path / "missing.png")


# --- check_root / list_frames errors -----------------------------------------------------------------


def raises(fn, *args) -> CurateError:
    with pytest.raises(CurateError) as err:
        fn(*args)
    assert "\n" not in str(err.value)
    return err.value


def make_root(tmp: Path, splits=("train",), names=("b", "a")) -> Path:
    root = tmp / "bdd100k"
    for split in splits:
        d = root / bdd.BITMASK_DIR / split
        d.mkdir(parents=True)
        for n in names:
            Image.fromarray(np.zeros((2, 2, 4), np.uint8), "RGBA").save(d / f"{n}.png")
    return root


def test_check_root_errors_name_the_right_path(tmp_path):
    err = raises(bdd.check_root, tmp_path / "nowhere")
    assert (err.path, err.problem) == (str(tmp_path / "nowhere"), "BDD100K root not found")

    cityscapes = tmp_path / "cityscapes"
    (cityscapes / "gtFine").mkdir(parents=True)
    err = raises(bdd.check_root, cityscapes)
    assert err.path == str(cityscapes / "labels/ins_seg/bitmasks")
    assert err.problem == "missing folder: not a BDD100K root (this looks like a Cityscapes folder)"

    synscapes = tmp_path / "Synscapes"
    (synscapes / "img").mkdir(parents=True)
    (synscapes / "meta").mkdir()
    err = raises(bdd.check_root, synscapes)
    assert err.problem == "missing folder: not a BDD100K root (this looks like a Synscapes folder)"

    root = make_root(tmp_path / "parent")
    err = raises(bdd.check_root, root.parent)
    assert err.path == str(root.parent / "labels/ins_seg/bitmasks") and str(root) in err.problem
    assert bdd.check_root(root) == root


def test_list_frames_sorted_and_its_errors(tmp_path):
    root = make_root(tmp_path, names=("b-2", "a_1", "0a"))
    notes = root / bdd.BITMASK_DIR / "train" / "notes.txt"
    notes.write_text("not a bitmask")
    listing = bdd.list_frames(root, "train")
    assert [(r.key, r.image_id, r.path.name) for r in listing.frames] == [("0a", 1, "0a.png"), ("a_1", 2, "a_1.png"),
                                                                         ("b-2", 3, "b-2.png")]
    assert [p.path for p in listing.problems] == [notes]  # reported: convert stops or skips, check lists it
    err = raises(bdd.list_frames, root, "val")
    assert (err.path, err.problem) == (str(root / bdd.BITMASK_DIR / "val"), "missing folder: no such split")
    err = raises(bdd.list_frames, root, "test")
    assert err.path is None and "unknown split 'test'" in err.problem
    err = raises(bdd.list_frames, root, "train", tmp_path / "split.txt")
    assert err.path is None and err.problem == "--split-file applies to Synscapes only"
    odd = root / bdd.BITMASK_DIR / "train" / "bad name.png"
    shutil.copy(root / bdd.BITMASK_DIR / "train" / "0a.png", odd)
    assert odd in [p.path for p in bdd.list_frames(root, "train").problems]
    err = raises(bdd.list_frames, tmp_path / "nowhere", "train")
    assert err.problem == "BDD100K root not found"


# --- the procedural sample set -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bdd_sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("bdd") / "bdd100k"
    truth = write_bdd100k_sample(root, frames=4, split="train", seed=21, size=SAMPLE_SIZE)
    return root, truth


def digest_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_sample_layout_is_exact(bdd_sample):
    root, truth = bdd_sample
    names = sorted(truth.frames)
    assert len(names) == 4 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}", n) for n in names)
    assert names == sorted(frame_name(21, "train", i) for i in range(4))
    expected = {f"images/10k/train/{n}.jpg" for n in names} | {f"labels/ins_seg/bitmasks/train/{n}.png" for n in names}
    assert set(digest_files(root)) == expected  # nothing else, no temporary files
    width, height = SAMPLE_SIZE
    for n in names:
        with Image.open(root / f"images/10k/train/{n}.jpg") as jpg:
            assert (jpg.format, jpg.mode, jpg.size) == ("JPEG", "RGB", (width, height))
        assert pil_rgba(root / f"labels/ins_seg/bitmasks/train/{n}.png").shape == (height, width, 4)


def test_sample_is_deterministic_whatever_the_workers(bdd_sample, tmp_path):
    root, truth = bdd_sample
    again = write_bdd100k_sample(tmp_path / "one", frames=4, split="train", seed=21, size=SAMPLE_SIZE, workers=1)
    parallel = write_bdd100k_sample(tmp_path / "two", frames=4, split="train", seed=21, size=SAMPLE_SIZE, workers=2)
    assert digest_files(tmp_path / "one") == digest_files(tmp_path / "two") == digest_files(root)
    assert again.to_dict()["frames"] == parallel.to_dict()["frames"] == truth.to_dict()["frames"]
    other = write_bdd100k_sample(tmp_path / "seed", frames=1, split="train", seed=22, size=SAMPLE_SIZE)
    assert set(other.frames).isdisjoint(truth.frames)
    val = write_bdd100k_sample(tmp_path / "val", frames=1, split="val", seed=21, size=SAMPLE_SIZE)
    assert set(val.frames).isdisjoint(truth.frames)
    assert (tmp_path / "val" / "labels/ins_seg/bitmasks/val").is_dir()


def test_sample_converts_to_its_truth(bdd_sample):
    root, truth = bdd_sample
    settings = ConvertSettings(root=root, split="train", out=root / "unused")
    refs = bdd.list_frames(root, "train").frames
    assert [r.key for r in refs] == sorted(truth.frames)
    seen = {"crowd": 0, "occluded": 0, "truncated": 0, "riders": 0, "above_255": 0, "up_to_255": 0}
    for ref in refs:
        ft = truth.frames[ref.key]
        result = bdd.convert_frame(settings, ref)
        check_against_numpy(result, bdd.read_bitmask(ref.path), ref.image_id)
        assert result.counts["images_missing"] == 0 and result.counts["attribute_conflicts"] == 0
        instances = [a for a in result.annotations if not a["iscrowd"]]
        crowds = [a for a in result.annotations if a["iscrowd"]]
        by_class: dict[str, list[int]] = {}
        for a in instances:
            by_class.setdefault(class_of(a), []).append(a["source_instance_id"])
        assert {k: sorted(v) for k, v in by_class.items()} == ft.visible
        assert {a["source_instance_id"]: a["area"] for a in instances} == ft.pixels
        # riders are their own instances, never merged into a two-wheeler
        assert sorted((a["source_instance_id"], a["area"]) for a in instances if class_of(a) == "rider") == ft.riders
        assert sorted((f"{class_of(a)}group", a["area"]) for a in crowds) == sorted(ft.groups)
        ids = [a["source_instance_id"] for a in result.annotations]
        assert len(ids) == len(set(ids)) and min(ids) >= FIRST_INSTANCE_ID
        assert not set(ids) & set(ft.invisible)
        seen["crowd"] += len(crowds)
        seen["occluded"] += sum(a["occluded"] == 1.0 for a in result.annotations)
        seen["truncated"] += sum(a["truncated"] == 1.0 for a in result.annotations)
        seen["riders"] += len(ft.riders)
        seen["above_255"] += sum(i > 255 for i in ids)
        seen["up_to_255"] += sum(i <= 255 for i in ids)
    assert all(v > 0 for v in seen.values()), seen


def test_sample_frame_is_pure_and_rejects_bad_arguments(tmp_path):
    a = make_bdd100k_frame(2, "val", 5, size=(128, 72), traffic="sparse")
    b = make_bdd100k_frame(2, "val", 5, size=(128, 72), traffic="sparse")
    assert a.name == b.name and np.array_equal(a.bitmask, b.bitmask) and np.array_equal(a.rgb, b.rgb)
    for kwargs in ({"split": "test"}, {"seed": -1}, {"frames": 0}, {"traffic": "jam"}, {"size": (8, 8)}):
        args = {"out": tmp_path / "x", "frames": 1, "split": "train", "seed": 1, **kwargs}
        with pytest.raises(CurateError):
            write_bdd100k_sample(**args)
