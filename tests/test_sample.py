"""Procedural sample sets: exact layouts, consistent maps and meta, honest truth records, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from curate.errors import CurateError
from curate.labels import ID_TO_LABEL, INSTANCE_ID_OFFSET, LABEL_ID, LABELS, label_of_polygon
from curate.sample import frame_numbers, make_synscapes_frame, write_cityscapes_sample, write_synscapes_sample
from curate.sources import cityscapes as cs_source
from curate.sources import synscapes as syn_source

RIDER = LABEL_ID["rider"]
TWO_WHEELERS = {LABEL_ID["bicycle"], LABEL_ID["motorcycle"]}
INSTANCE_LABELS = {label.id for label in LABELS if label.hasInstances}
SYN_SIZE = (384, 192)  # conftest's synscapes_sample
CS_SIZE = (512, 256)  # conftest's cityscapes_sample


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def syn_frame(root: Path, n: int):
    meta = json.loads((root / "meta" / f"{n}.json").read_text())
    classes = read(root / "img" / "class" / f"{n}.png")
    ids = syn_source.decode_instance_png(read(root / "img" / "instance" / f"{n}.png"))
    return meta, classes, ids


# --- Synscapes layout -----------------------------------------------------------------------------


def test_synscapes_layout_is_exact(synscapes_sample):
    root, truth = synscapes_sample
    numbers = list(range(1, 11)) + [20001, 20002]  # 12 frames, val fraction 0.2 → 10 train + 2 val
    assert sorted(truth.frames) == numbers
    expected = {f"img/{kind}/{n}.png" for kind in ("rgb", "class", "instance") for n in numbers}
    expected |= {f"meta/{n}.json" for n in numbers}
    assert files_under(root) == expected  # nothing else, no temporary files left behind
    width, height = SYN_SIZE
    for n in (1, 20002):
        rgb = read(root / "img" / "rgb" / f"{n}.png")
        classes = read(root / "img" / "class" / f"{n}.png")
        instance = read(root / "img" / "instance" / f"{n}.png")
        assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)
        assert classes.dtype == np.uint8 and classes.shape == (height, width)
        assert instance.dtype == np.uint8 and instance.shape == (height, width, 3)


def test_synscapes_meta_has_every_key(synscapes_sample):
    root, truth = synscapes_sample
    for n in truth.frames:
        meta = json.loads((root / "meta" / f"{n}.json").read_text())
        assert list(meta) == ["camera", "instance", "scene"]
        assert set(meta["camera"]["extrinsic"]) == {"x", "y", "z", "roll", "pitch", "yaw"}
        intrinsic = meta["camera"]["intrinsic"]
        assert set(intrinsic) == {"fx", "fy", "u0", "v0", "resx", "resy"}
        assert (intrinsic["resx"], intrinsic["resy"]) == SYN_SIZE
        inst = meta["instance"]
        assert list(inst) == ["bbox2d", "bbox3d", "class", "occluded", "truncated"]
        keys = set(inst["class"])
        assert keys and all(set(inst[k]) == keys for k in inst)
        assert all(k.isdigit() for k in keys)
        for key in keys:
            assert set(inst["bbox2d"][key]) == {"xmin", "xmax", "ymin", "ymax", "zmin", "zmax"}
            box = inst["bbox2d"][key]
            assert 0 <= box["xmin"] <= box["xmax"] <= 1 and 0 <= box["ymin"] <= box["ymax"] <= 1
            assert 0 < box["zmin"] < box["zmax"]
            assert set(inst["bbox3d"][key]) == {"origin", "x", "y", "z"}
            assert all(len(inst["bbox3d"][key][k]) == 3 for k in ("origin", "x", "y", "z"))
            assert inst["class"][key] in INSTANCE_LABELS and inst["class"][key] != RIDER
            assert 0.0 <= inst["occluded"][key] <= 1.0 and 0.0 <= inst["truncated"][key] <= 1.0
        assert len(meta["scene"]) >= 30 and all(isinstance(v, float) for v in meta["scene"].values())
        assert {"num_cars", "num_pedestrians", "ego_speed", "sun_height"} <= set(meta["scene"])


def test_synscapes_frame_numbers_follow_the_default_split():
    assert frame_numbers(12, 0.2) == list(range(1, 11)) + [20001, 20002]
    assert frame_numbers(10, 0.3) == list(range(1, 8)) + [20001, 20002, 20003]  # no float round-up
    assert frame_numbers(3, 0.0) == [1, 2, 3]
    assert frame_numbers(2, 1.0) == [20001, 20002]
    for frames, fraction in ((0, 0.2), (5, 1.5), (25001, 0.2)):
        with pytest.raises(CurateError):
            frame_numbers(frames, fraction)


# --- Synscapes content ----------------------------------------------------------------------------


def test_synscapes_class_map_agrees_with_meta(synscapes_sample):
    """Every instance pixel carries its meta class, or rider inside a two-wheeler instance."""
    root, truth = synscapes_sample
    for n in truth.frames:
        meta, classes, ids = syn_frame(root, n)
        meta_class = {int(k): v for k, v in meta["instance"]["class"].items()}
        present = np.unique(ids)
        assert set(present[present > 0].tolist()) <= set(meta_class)
        expected = np.zeros(int(ids.max()) + 1, dtype=np.int64)
        for iid, cls in meta_class.items():
            if iid <= ids.max():
                expected[iid] = cls
        inside = ids > 0
        wanted = expected[ids[inside]]
        got = classes[inside]
        rider_ok = (got == RIDER) & np.isin(wanted, list(TWO_WHEELERS))
        assert np.all((got == wanted) | rider_ok)
        # no instance-class pixel outside an instance, and no rider outside a two-wheeler
        assert not np.isin(classes[~inside], list(INSTANCE_LABELS)).any()


def test_synscapes_truth_matches_the_written_maps(synscapes_sample):
    root, truth = synscapes_sample
    totals = {"riders": 0, "unridden": 0, "invisible": 0}
    for n, frame in truth.frames.items():
        meta, classes, ids = syn_frame(root, n)
        counts = np.bincount(ids.ravel())
        in_png = {int(i): int(counts[i]) for i in np.flatnonzero(counts) if i > 0}
        assert frame.pixels == in_png
        visible = {i for group in frame.visible.values() for i in group}
        assert visible == set(in_png)
        for name, group in frame.visible.items():
            assert all(meta["instance"]["class"][str(i)] == LABEL_ID[name] for i in group)
        # fully hidden instances: in meta, absent from the PNG
        assert set(frame.invisible) <= {int(k) for k in meta["instance"]["class"]}
        assert not set(frame.invisible) & set(in_png)
        for iid in frame.invisible:
            occluded, truncated = meta["instance"]["occluded"][str(iid)], meta["instance"]["truncated"][str(iid)]
            assert occluded == 1.0 or truncated == 1.0
        rider_pixels = np.bincount(ids[classes == RIDER], minlength=int(ids.max()) + 1)
        assert sorted(frame.riders) == [(int(i), int(rider_pixels[i])) for i in np.flatnonzero(rider_pixels)]
        two_wheelers = {int(k) for k, v in meta["instance"]["class"].items() if v in TWO_WHEELERS}
        assert set(frame.unridden) == (two_wheelers & set(in_png)) - {i for i, _ in frame.riders}
        totals["riders"] += len(frame.riders)
        totals["unridden"] += len(frame.unridden)
        totals["invisible"] += len(frame.invisible)
    assert all(totals.values()), totals  # every case occurs in the 12 frames


def test_synscapes_occlusion_and_truncation_are_measured(synscapes_sample):
    """An instance neither occluded nor truncated shows its whole silhouette: its PNG box is bbox2d."""
    root, truth = synscapes_sample
    width, height = SYN_SIZE
    whole = cut = 0
    for n in truth.frames:
        meta, _, ids = syn_frame(root, n)
        inst = meta["instance"]
        for key, box in inst["bbox2d"].items():
            ys, xs = np.nonzero(ids == int(key))
            if inst["truncated"][key] > 0:
                cut += 1
                touches = box["xmin"] == 0 or box["ymin"] == 0 or box["xmax"] == 1 or box["ymax"] == 1
                assert touches, key
            if inst["occluded"][key] == 0 and inst["truncated"][key] == 0:
                whole += 1
                assert (xs.min(), xs.max() + 1) == (round(box["xmin"] * width), round(box["xmax"] * width))
                assert (ys.min(), ys.max() + 1) == (round(box["ymin"] * height), round(box["ymax"] * height))
            if xs.size and inst["occluded"][key] == 0:
                assert xs.min() >= round(box["xmin"] * width) and xs.max() < round(box["xmax"] * width)
    assert whole > 20 and cut > 5


def test_synscapes_sample_has_tiny_large_and_border_instances(synscapes_sample):
    root, truth = synscapes_sample
    sizes = [n for frame in truth.frames.values() for n in frame.pixels.values()]
    width, height = SYN_SIZE
    assert sum(n < 100 for n in sizes) >= 10
    assert sum(n < 20 for n in sizes) >= 1
    assert max(sizes) > 0.03 * width * height
    border = 0
    for n in truth.frames:
        _, _, ids = syn_frame(root, n)
        edge = np.concatenate([ids[0], ids[-1], ids[:, 0], ids[:, -1]])
        border += len(set(edge[edge > 0].tolist()))
    assert border >= 5


def test_synscapes_instance_ids_follow_the_observed_scheme(synscapes_sample):
    root, truth = synscapes_sample
    meta, _, _ = syn_frame(root, 1)
    for key, cls in meta["instance"]["class"].items():
        assert int(key) // 100_000 == cls


def test_class_looks_are_consistent(synscapes_sample):
    """Each class keeps its colour family (what lets a small detector learn it quickly)."""
    root, truth = synscapes_sample
    pixels: dict[int, list[np.ndarray]] = {}
    for n in truth.frames:
        rgb = read(root / "img" / "rgb" / f"{n}.png")[..., ::-1]
        classes = read(root / "img" / "class" / f"{n}.png")
        for name in ("car", "person", "bus", "rider"):
            pixels.setdefault(LABEL_ID[name], []).append(rgb[classes == LABEL_ID[name]])
    median = {k: np.median(np.concatenate(v), axis=0) for k, v in pixels.items() if sum(map(len, v))}
    r, g, b = median[LABEL_ID["car"]]
    assert b > r + 30 and b > g + 30  # blue cars
    r, g, b = median[LABEL_ID["person"]]
    assert r > g + 60 and r > b + 40  # red persons
    r, g, b = median[LABEL_ID["rider"]]
    assert r > b + 60  # orange riders
    if LABEL_ID["bus"] in median:
        r, g, b = median[LABEL_ID["bus"]]
        assert r > b + 60 and g > b + 40  # yellow buses


def test_synscapes_is_deterministic_and_seeded(tmp_path):
    one = write_synscapes_sample(tmp_path / "a", frames=2, seed=11, size=(256, 128), val_fraction=0.5)
    two = write_synscapes_sample(tmp_path / "b", frames=2, seed=11, size=(256, 128), val_fraction=0.5, workers=2)
    other = write_synscapes_sample(tmp_path / "c", frames=2, seed=12, size=(256, 128), val_fraction=0.5)
    names = sorted(files_under(tmp_path / "a"))
    assert names == sorted(files_under(tmp_path / "b")) and len(names) == 8
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    assert one.to_dict()["frames"] == two.to_dict()["frames"] != other.to_dict()["frames"]
    # frames are independent of each other: frame 20001 alone is the same frame
    alone = make_synscapes_frame(20001, 11, (256, 128))
    assert np.array_equal(syn_source.decode_instance_png(read(tmp_path / "a/img/instance/20001.png")), alone.instance_ids)


def test_synscapes_sample_reads_back_with_the_reader(synscapes_sample):
    root, truth = synscapes_sample
    assert syn_source.frame_numbers(root, "train") == list(range(1, 11))
    assert syn_source.frame_numbers(root, "val") == [20001, 20002]
    for n, frame_truth in truth.frames.items():
        frame = syn_source.load_frame(root, n)
        assert frame.class_map.shape == (SYN_SIZE[1], SYN_SIZE[0])
        assert set(frame_truth.invisible) <= set(frame.meta.instances)
        assert all(m.bbox2d is not None and m.bbox3d for m in frame.meta.instances.values())


def test_truth_is_json_serialisable(synscapes_sample, cityscapes_sample):
    _, syn_truth = synscapes_sample
    _, cs_truths = cityscapes_sample
    for truth in (syn_truth, cs_truths["train"]):
        data = json.loads(json.dumps(truth.to_dict()))
        assert len(data["frames"]) == len(truth.frames)
        assert data["layout"] == truth.layout and data["size"] == list(truth.size)


# --- Cityscapes -----------------------------------------------------------------------------------


def cs_paths(root: Path, split: str, name: str) -> dict[str, Path]:
    city = name.rsplit("_", 2)[0]
    gt = root / "gtFine" / split / city / name
    return {
        "image": root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
        "polygons": Path(f"{gt}_gtFine_polygons.json"),
        "labelIds": Path(f"{gt}_gtFine_labelIds.png"),
        "instanceIds": Path(f"{gt}_gtFine_instanceIds.png"),
        "color": Path(f"{gt}_gtFine_color.png"),
    }


def test_cityscapes_layout_is_exact(cityscapes_sample):
    root, truths = cityscapes_sample
    expected = set()
    for split, truth in truths.items():
        assert len(truth.frames) == {"train": 6, "val": 3}[split]
        for name in truth.frames:
            assert cs_source.STEM.match(name) and name.endswith("_000019")
            expected |= {str(p.relative_to(root)) for p in cs_paths(root, split, name).values()}
    assert files_under(root) == expected
    width, height = CS_SIZE
    for split, truth in truths.items():
        for name in truth.frames:
            paths = cs_paths(root, split, name)
            image, labels = read(paths["image"]), read(paths["labelIds"])
            instances, colour = read(paths["instanceIds"]), read(paths["color"])
            assert image.dtype == np.uint8 and image.shape == (height, width, 3)
            assert labels.dtype == np.uint8 and labels.shape == (height, width)
            assert instances.dtype == np.uint16 and instances.shape == (height, width)
            assert colour.dtype == np.uint8 and colour.shape == (height, width, 4)
            polygons = json.loads(paths["polygons"].read_text())
            assert (polygons["imgHeight"], polygons["imgWidth"]) == (height, width)
            assert all(set(o) == {"label", "polygon"} for o in polygons["objects"])


def test_cityscapes_maps_are_the_rasterised_polygons(cityscapes_sample):
    """Redraw polygons.json in file order (json2instanceImg numbering): labelIds/instanceIds/color agree."""
    root, truths = cityscapes_sample
    colours = {label.id: label.color for label in LABELS}
    for split, truth in truths.items():
        for name in truth.frames:
            paths = cs_paths(root, split, name)
            polygons = json.loads(paths["polygons"].read_text())
            labels = np.zeros((polygons["imgHeight"], polygons["imgWidth"]), np.uint8)
            instances = np.zeros(labels.shape, np.int32)
            next_k: dict[str, int] = {}
            for obj in polygons["objects"]:
                label, is_group = label_of_polygon(obj["label"])
                points = np.array(obj["polygon"], dtype=np.int32)
                assert points.min() >= 0 and points[:, 0].max() < labels.shape[1] and points[:, 1].max() < labels.shape[0]
                value = label.id
                if label.hasInstances and not is_group:
                    value = label.id * INSTANCE_ID_OFFSET + next_k.get(label.name, 0)
                    next_k[label.name] = next_k.get(label.name, 0) + 1
                cv2.fillPoly(labels, [points], label.id, cv2.LINE_8)
                cv2.fillPoly(instances, [points], value, cv2.LINE_8)
            assert np.array_equal(labels, read(paths["labelIds"]))
            assert np.array_equal(instances, read(paths["instanceIds"]).astype(np.int32))
            colour = read(paths["color"])
            for label_id in np.unique(labels):
                r, g, b = colours[int(label_id)]
                assert (colour[labels == label_id] == (b, g, r, 255)).all()


def test_cityscapes_has_groups_riders_and_numbering_gaps(cityscapes_sample):
    root, truths = cityscapes_sample
    groups = gaps = riders = unridden = 0
    for split, truth in truths.items():
        for name, frame in truth.frames.items():
            ids = read(cs_paths(root, split, name)["instanceIds"]).astype(np.int64)
            counts = np.bincount(ids.ravel())
            present = {int(i): int(counts[i]) for i in np.flatnonzero(counts)}
            instance_ids = {i: n for i, n in present.items() if i >= INSTANCE_ID_OFFSET}
            assert frame.pixels == instance_ids
            assert {i for group in frame.visible.values() for i in group} == set(instance_ids)
            for class_name, group in frame.visible.items():
                assert all(i // INSTANCE_ID_OFFSET == LABEL_ID[class_name] for i in group)
            assert not set(frame.invisible) & set(instance_ids)
            # a group region's pixels hold the plain id of its class
            for label, n in frame.groups:
                base, is_group = label_of_polygon(label)
                assert is_group
                if n:
                    assert present.get(base.id, 0) >= n
                    groups += 1
            # numbering gaps: fully overdrawn polygons leave holes, exactly the invisible ids
            for label_id in {i // INSTANCE_ID_OFFSET for i in instance_ids}:
                ks = sorted(i % INSTANCE_ID_OFFSET for i in instance_ids if i // INSTANCE_ID_OFFSET == label_id)
                holes = set(range(ks[-1] + 1)) - set(ks)
                assert holes <= {i % INSTANCE_ID_OFFSET for i in frame.invisible if i // INSTANCE_ID_OFFSET == label_id}
                gaps += len(holes)
            assert [i for i, _ in frame.riders] == sorted(i for i in instance_ids if i // INSTANCE_ID_OFFSET == RIDER)
            assert all(instance_ids[i] == n for i, n in frame.riders)
            assert all(i // INSTANCE_ID_OFFSET in TWO_WHEELERS for i in frame.unridden)
            riders += len(frame.riders)
            unridden += len(frame.unridden)
    assert groups and gaps and riders and unridden


def test_cityscapes_is_deterministic_per_seed_and_split(tmp_path):
    size = (256, 128)
    write_cityscapes_sample(tmp_path / "a", frames=2, split="train", seed=5, size=size)
    write_cityscapes_sample(tmp_path / "b", frames=2, split="train", seed=5, size=size)
    write_cityscapes_sample(tmp_path / "c", frames=2, split="train", seed=6, size=size)
    names = sorted(files_under(tmp_path / "a"))
    assert names == sorted(files_under(tmp_path / "b")) == sorted(files_under(tmp_path / "c")) and len(names) == 10
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert any((tmp_path / "a" / n).read_bytes() != (tmp_path / "c" / n).read_bytes() for n in names if n.endswith("json"))


def test_cityscapes_sample_reads_back_with_the_reader(cityscapes_sample):
    root, truths = cityscapes_sample
    for split, truth in truths.items():
        refs = cs_source.list_frames(root, split)
        assert [r.name for r in refs] == sorted(truth.frames)
        for ref in refs:
            assert ref.image_path is not None and ref.label_path is not None and ref.polygons_path is not None
            frame = cs_source.load_frame(ref, with_polygons=True)
            values = np.unique(frame.instance_ids)
            assert {int(v) for v in values if v >= INSTANCE_ID_OFFSET} == set(truth.frames[ref.name].pixels)
            assert all(ID_TO_LABEL[int(v) // INSTANCE_ID_OFFSET].hasInstances for v in values if v >= INSTANCE_ID_OFFSET)
            assert frame.polygons["objects"]


def test_writers_reject_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CurateError, match="not a folder"):
        write_synscapes_sample(tmp_path / "file", frames=1, seed=0, size=(64, 32))
    with pytest.raises(CurateError, match="split"):
        write_cityscapes_sample(tmp_path / "cs", frames=1, split="test", seed=0, size=(64, 32))
    with pytest.raises(CurateError, match="size"):
        write_cityscapes_sample(tmp_path / "cs", frames=1, split="train", seed=0, size=(8, 8))


# --- CLI ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli():
    from curate.cli import _mount, app

    _mount()
    return app


def test_cli_help_texts(cli):
    runner = CliRunner()
    for args in (["sample", "--help"], ["sample", "synscapes", "--help"], ["sample", "cityscapes", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "--help" in result.output
    synscapes_help = runner.invoke(cli, ["sample", "synscapes", "--help"]).output
    assert all(option in synscapes_help for option in ("--frames", "--seed", "--size", "--val-fraction"))
    assert "--split" in runner.invoke(cli, ["sample", "cityscapes", "--help"]).output


def test_cli_writes_sample_sets(cli, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["sample", "synscapes", str(tmp_path / "syn"), "--frames", "2", "--seed", "1",
                                 "--size", "128x64", "--val-fraction", "0.5", "--truth", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    assert "synscapes: 2 frames of 128x64" in result.output
    assert syn_source.frame_numbers(tmp_path / "syn", "train") + syn_source.frame_numbers(tmp_path / "syn", "val") \
        == [1, 20001]
    assert set(json.loads((tmp_path / "t.json").read_text())["frames"]) == {"1", "20001"}
    result = runner.invoke(cli, ["sample", "cityscapes", str(tmp_path / "cs"), "--frames", "2", "--split", "val",
                                 "--size", "128x64"])
    assert result.exit_code == 0, result.output
    assert len(cs_source.list_frames(tmp_path / "cs", "val")) == 2


def test_cli_bad_size_is_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "curate", "sample", "synscapes", str(tmp_path / "x"), "--size", "big"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--size" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()
