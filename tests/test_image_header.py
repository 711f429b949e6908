"""A frame's image is checked by its header alone (``curate.fileio.image_size``,
``check_image_size``): PNG and JPEG sizes as OpenCV decodes them, and every kind of "no image
there" counted as missing, never a hang or a traceback."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest

from curate.errors import CurateError
from curate.fileio import check_image_size, image_size


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    paths = {}
    for name, options in (("a.png", []), ("b.jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
                          ("c.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])):
        paths[name] = tmp_path / name
        assert cv2.imwrite(str(paths[name]), pixels, options)
    return paths


@pytest.mark.parametrize("name", ["a.png", "b.jpg", "c.jpg"])
def test_header_size_is_the_decoded_size(images, name):
    decoded = cv2.imread(str(images[name]), cv2.IMREAD_UNCHANGED)
    assert image_size(images[name]) == (decoded.shape[1], decoded.shape[0]) == (53, 37)
    assert check_image_size(images[name], 53, 37, "its label map") is True


def test_real_cityscapes_image_header(fixtures_dir):
    image = next((fixtures_dir / "cityscapes-small" / "leftImg8bit").rglob("*.png"))
    decoded = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    assert check_image_size(image, decoded.shape[1], decoded.shape[0], "its label map") is True


def test_a_size_mismatch_names_the_image(images):
    with pytest.raises(CurateError) as err:
        check_image_size(images["b.jpg"], 54, 37, "its label map")
    assert err.value.path == str(images["b.jpg"]) and err.value.kind == "size_mismatch"
    assert "image size 53x37 differs from its label map 54x37" in err.value.problem


def test_no_image_there_is_counted_missing(tmp_path, images):
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    absent = ["gone.png", "fifo.png", "folder.png", "dangling.png", "loop.png", "a.png/below.png"]
    answers = {}
    # a FIFO must not block: run the checks in a thread that has to finish
    worker = threading.Thread(target=lambda: answers.update(
        {name: check_image_size(tmp_path / name, 53, 37, "x") for name in absent}), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "check_image_size blocked"
    assert answers == {name: False for name in absent}


def test_not_an_image_is_one_error(tmp_path):
    for name, data in (("empty.png", b""), ("text.png", b"hello"), ("cut.jpg", b"\xff\xd8\xff\xe0\x00")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CurateError, match="not a PNG or JPEG image"):
            check_image_size(tmp_path / name, 1, 1, "x")
        with pytest.raises(CurateError, match="not a PNG or JPEG image"):
            image_size(tmp_path / name)
    with pytest.raises(CurateError, match="file not found"):
        image_size(tmp_path / "missing.png")
