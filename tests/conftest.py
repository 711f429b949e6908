"""Shared test fixtures: the read-only third-party fixtures and small generated sample sets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    # CI clones the repo with a copy of shared/ beside it; SYNMIX_SHARED overrides.
    return Path(os.environ.get("SYNMIX_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if not (path / "fixtures").is_dir():
        if os.environ.get("CI"):  # CI lays shared/ beside the clone: missing there is a failure
            pytest.fail(f"shared fixtures not found at {path} (set SYNMIX_SHARED)")
        pytest.skip(f"shared fixtures not found at {path}")
    return path


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


@pytest.fixture(scope="session")
def synscapes_sample(tmp_path_factory):
    """A small generated Synscapes set (12 frames, 10 train + 2 val, 384×192) and what was drawn."""
    from curate.sample import write_synscapes_sample

    root = tmp_path_factory.mktemp("synscapes")
    truth = write_synscapes_sample(root, frames=12, seed=7, size=(384, 192))
    return root, truth


@pytest.fixture(scope="session")
def cityscapes_sample(tmp_path_factory):
    """A small generated Cityscapes set: 6 train and 3 val frames at 512×256."""
    from curate.sample import write_cityscapes_sample

    root = tmp_path_factory.mktemp("cityscapes")
    truth_train = write_cityscapes_sample(root, frames=6, split="train", seed=3, size=(512, 256))
    truth_val = write_cityscapes_sample(root, frames=3, split="val", seed=4, size=(512, 256))
    return root, {"train": truth_train, "val": truth_val}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """COCO files shaped like curate convert output (tests/coco_factory.py, seed 21), one per test module."""
    from coco_factory import write_dataset

    root = tmp_path_factory.mktemp("dataset")
    out = root / "OUT"
    write_dataset(out, root, seed=21)
    return root, out


def every_frame_file(root: Path) -> Path:
    """A split file listing every frame of a Synscapes-layout folder (``--split-file``), beside it."""
    path = root.parent / f"{root.name}-every-frame.txt"
    numbers = sorted(int(p.stem) for p in (root / "meta").glob("*.json"))
    path.write_text("".join(f"{n}\n" for n in numbers))
    return path


def _detectron2_loggers() -> list[logging.Logger]:
    """The loggers Detectron2's setup_logger equips (pytest's own handlers sit on the root logger)."""
    return [g for name, g in logging.Logger.manager.loggerDict.items()
            if isinstance(g, logging.Logger) and name.split(".")[0] in ("detectron2", "d2", "fvcore")]


@pytest.fixture(autouse=True)
def _drop_log_handlers_added_by_the_test():
    """Detectron2's setup_logger binds console handlers to a test's captured stdout, which pytest
    closes afterwards: later tests in the same session would print a "Logging error" per record."""
    before = {id(g): set(g.handlers) for g in _detectron2_loggers()}
    yield
    for g in _detectron2_loggers():
        for handler in [h for h in g.handlers if h not in before.get(id(g), set())]:
            g.removeHandler(handler)
            handler.close()
