"""``python -m train`` on broken input: one ``error: <path>: <problem>`` line, exit status 2, nothing trained.

Each case breaks one thing in a private copy of a real pipeline tree (curate sample → convert → manifest)
and runs ``python -m train`` for real, as a subprocess of this checkout, on the small CPU preset. The
run must stop before its first iteration with exactly one stderr line that names the path at fault
(130 for Ctrl-C), no traceback, and no checkpoint in the run folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")
torch = pytest.importorskip("torch")

import cv2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, synscapes_sample, cityscapes_sample) -> Path:
    """The real pipeline in one self-contained tree (manifest paths are relative, so a copy works):
    Synscapes converted with --gtfine, Cityscapes with its own gtFine, a manifest of every frame."""
    from curate.convert import convert

    root = tmp_path_factory.mktemp("faults")
    shutil.copytree(synscapes_sample[0], root / "Synscapes")
    shutil.copytree(cityscapes_sample[0], root / "cityscapes")
    for split in ("train", "val"):
        convert("synscapes", root / "Synscapes", root / "converted", split=split, gtfine=True, workers=1,
                progress=False)
        convert("cityscapes", root / "cityscapes", root / "converted", split=split, workers=1, progress=False)
    from curate.manifest import ManifestRequest, make_manifests

    make_manifests(ManifestRequest(out=root / "converted", output=root / "manifests" / "mix.json", real="all",
                                   synthetic="all", no_prune=True), progress=False)
    return root


# ---------------------------------------------------------------------------------------------
# one run of python -m train on a copy of the tree


@dataclass
class Run:
    root: Path  # the private copy of the pipeline tree
    tmp: Path
    options: dict = field(default_factory=dict)  # option → value (None: drop it)
    extra: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    pythonpath: list = field(default_factory=list)  # prepended to this checkout

    @property
    def manifest(self) -> Path:
        return self.root / "manifests" / "mix.json"

    @property
    def out(self) -> Path:
        return self.tmp / "run"

    def argv(self) -> list[str]:
        options = {"--preset": "cpu-tiny", "--device": "cpu", "--iterations": "1", "--weights": "none",
                   "--out": self.out, "--threads": "1", **self.options}
        argv = [self.manifest]
        for option, value in options.items():
            if value is not None:
                argv += [option, value]
        return [str(a) for a in argv + self.extra]

    def environment(self) -> dict:
        paths = [*map(str, self.pythonpath), str(REPO), os.environ.get("PYTHONPATH", "")]
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            # no network, whatever the machine has: downloads fail at once on a closed local port
            "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "",
            "FVCORE_CACHE": str(self.tmp / "download-cache"),  # nothing cached from an earlier download
            "OMP_NUM_THREADS": "1",
            **self.env,
        }

    def command(self) -> list[str]:
        return [sys.executable, "-m", "train", *self.argv()]


def _png(path: Path, width: int, height: int, dtype=np.uint8, channels: int = 3) -> None:
    shape = (height, width, channels) if channels > 1 else (height, width)
    assert cv2.imwrite(str(path), np.full(shape, 7, dtype=dtype))


def _first(root: Path, pattern: str) -> Path:
    return sorted(root.glob(pattern))[0]


def _fake_package(run: Run, name: str) -> str:
    """A package ``name`` that shadows the installed one and fails to import, as an absent install does."""
    fake = run.tmp / "fake-site" / name
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f'raise ImportError("No module named {name!r} (test: not installed)")\n')
    run.pythonpath.insert(0, fake.parent)
    return name


def _record_ground_truth_as_it_is(run: Run) -> None:
    """As if the ground truth had broken before ``curate manifest`` ran: its fingerprint agrees.

    (Rebuilding the manifest in the copy would not do: the Cityscapes COCO file records the absolute
    image_root of the original tree, so its gt_dir would be the original's.)"""
    try:
        from curate.manifest.schema import gt_fingerprint
    except ImportError:  # a synmix without ground-truth fingerprints: nothing to agree with
        return
    data = json.loads(run.manifest.read_text())
    for entry in data["eval"]:
        if entry["gt_dir"] is not None:
            entry["gt_files"] = gt_fingerprint(run.manifest.parent / entry["gt_dir"])
    run.manifest.write_text(json.dumps(data, indent=1))


# ---------------------------------------------------------------------------------------------
# the faults: each breaks one thing and returns the strings the error line must contain


def default_weights_cannot_be_downloaded(run: Run):
    run.options.update({"--preset": "cityscapes", "--weights": None})  # the study's preset, ImageNet R-50
    return [DEFAULT_WEIGHTS, "--weights PATH", "--weights none"]


def weights_file_empty(run: Run):
    weights = run.tmp / "empty.pth"
    weights.write_bytes(b"")
    run.options["--weights"] = weights
    return [str(weights), "empty"]


def weights_file_corrupt_pkl(run: Run):
    weights = run.tmp / "R-50.pkl"
    weights.write_bytes(bytes(range(256)) * 64)
    run.options["--weights"] = weights
    return [str(weights), "not a readable checkpoint"]


def weights_file_truncated_pth(run: Run):
    weights = run.tmp / "model_final.pth"
    torch.save({"model": {"w": torch.zeros(1000)}}, weights)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    run.options["--weights"] = weights
    return [str(weights), "not a readable checkpoint"]


def resume_from_a_corrupt_last_checkpoint(run: Run):
    run.out.mkdir()
    (run.out / "checkpoint.pth").write_bytes(b"PK\x03\x04" + bytes(100))  # a zip header, then nothing
    (run.out / "last_checkpoint").write_text("checkpoint.pth")
    run.extra.append("--resume")
    return [str(run.out / "checkpoint.pth"), "not a readable checkpoint"]


def opts_unknown_key(run: Run):
    run.extra += ["--opts", "SOLVER.BASE_LR", "0.01", "MODEL.NO_SUCH_KEY", "1"]
    return ["--opts MODEL.NO_SUCH_KEY", "no such Detectron2 config key"]


def opts_value_of_wrong_type(run: Run):
    run.extra += ["--opts", "SOLVER.MAX_ITER", "many"]
    return ["--opts SOLVER.MAX_ITER", "'many'"]


def out_is_an_existing_file(run: Run):
    run.out.write_text("not a folder\n")
    return [str(run.out), "not a folder"]


def detectron2_not_installed(run: Run):
    return [_fake_package(run, "detectron2"), "./install.sh"]


def torch_not_installed(run: Run):
    return [_fake_package(run, "torch"), "./install.sh"]


def train_image_of_another_size(run: Run):
    image = _first(run.root, "cityscapes/leftImg8bit/train/*/*_leftImg8bit.png")
    _png(image, 256, 128)
    return [str(image), "256x128", "512x256"]


def train_images_not_images(run: Run):
    images = sorted((run.root / "Synscapes/img/rgb").glob("*.png"), key=lambda p: int(p.stem))[:3]
    for image in images:
        image.write_bytes(b"this is no PNG" * 10)
    return [str(images[0]), "not a PNG or JPEG", "and 2 more"]


def eval_image_of_another_size(run: Run):
    image = _first(run.root, "cityscapes/leftImg8bit/val/*/*_leftImg8bit.png")
    _png(image, 512, 200)
    return [str(image), "512x200"]


def ground_truth_changed_after_manifest(run: Run):
    gt = _first(run.root, "cityscapes/gtFine/val/*/*_gtFine_instanceIds.png")
    ids = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    ids[0, 0] = 26000  # a valid car instance: only the fingerprint can tell
    assert cv2.imwrite(str(gt), ids)
    return [str(gt), "changed since"]


def ground_truth_removed_after_manifest(run: Run):
    gt = _first(run.root, "converted/gtFine/val/synscapes/*_gtFine_instanceIds.png")
    gt.unlink()
    return [str(gt), "file missing"]


def ground_truth_invalid_label_id(run: Run):
    gt = _first(run.root, "cityscapes/gtFine/val/*/*_gtFine_instanceIds.png")
    ids = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    ids[5, 5] = 7001  # label 7 (road) has no instances
    assert cv2.imwrite(str(gt), ids)
    _record_ground_truth_as_it_is(run)
    return [str(gt), "instance id 7001"]


def ground_truth_undecodable(run: Run):
    gt = _first(run.root, "converted/gtFine/val/synscapes/*_gtFine_instanceIds.png")
    gt.write_bytes(gt.read_bytes()[:60])
    _record_ground_truth_as_it_is(run)
    return [str(gt), "not a readable PNG"]


def manifest_of_schema_version_1(run: Run):
    data = json.loads(run.manifest.read_text())
    data["schema_version"] = 1  # written before evaluation sets recorded their ground truth
    for entry in data["eval"]:
        entry.pop("gt_files", None)
    run.manifest.write_text(json.dumps(data))
    return [str(run.manifest), "schema version 1", "curate manifest"]


def bad_command_line_value(run: Run):
    run.options["--iterations"] = "many"
    return ["--iterations", "'many'"]


FAULTS: list[Callable[[Run], list[str]]] = [
    default_weights_cannot_be_downloaded, weights_file_empty, weights_file_corrupt_pkl, weights_file_truncated_pth,
    resume_from_a_corrupt_last_checkpoint,
    opts_unknown_key, opts_value_of_wrong_type, out_is_an_existing_file, detectron2_not_installed,
    torch_not_installed, train_image_of_another_size, train_images_not_images, eval_image_of_another_size,
    ground_truth_changed_after_manifest, ground_truth_removed_after_manifest, ground_truth_invalid_label_id,
    ground_truth_undecodable, manifest_of_schema_version_1, bad_command_line_value,
]


@pytest.fixture
def run(pipeline, tmp_path) -> Run:
    shutil.copytree(pipeline, tmp_path / "tree", symlinks=True)
    return Run(root=tmp_path / "tree", tmp=tmp_path)


def _verdict(returncode: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    tail = lines[-1] if lines else ""
    return f"exit {returncode}, {len(lines)} stderr line(s), traceback: {'Traceback' in stderr}, last: {tail[:300]}"


def assert_one_error_line(returncode: int, stdout: str, stderr: str, names: list[str], out: Path, code: int = 2):
    verdict = _verdict(returncode, stderr)
    assert returncode == code, verdict
    assert "Traceback" not in stderr and "Traceback" not in stdout, verdict
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), verdict
    for name in names:
        assert name in lines[0], f"{name!r} not in: {lines[0]}"
    assert not list(out.glob("model_*.pth")), "a model was trained"


@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_fault_gives_one_error_line_before_training(fault, run):
    names = fault(run)
    result = subprocess.run(run.command(), capture_output=True, text=True, env=run.environment(), cwd=run.tmp,
                            timeout=600)
    assert_one_error_line(result.returncode, result.stdout, result.stderr, names, run.out)


def test_ctrl_c_during_training_gives_one_line_and_exit_130(run):
    run.options.update({"--iterations": "500", "--checkpoint-period": "400"})
    # As in a terminal: SIGINT at its default. A test run started in the background by a shell
    # without job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt.
    proc = subprocess.Popen(run.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=run.environment(), cwd=run.tmp,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        seen = []
        for line in proc.stdout:  # Detectron2 logs to stdout; interrupt once the loop runs
            seen.append(line)
            if "Starting training from iteration" in line:
                break
        assert proc.poll() is None, "".join(seen[-20:]) + proc.stderr.read()
        time.sleep(3)  # a few iterations in
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        proc.kill()
    assert_one_error_line(proc.returncode, "".join(seen) + stdout, stderr, [str(run.out), "interrupted"], run.out,
                          code=130)


def test_a_copy_of_the_data_with_new_modification_times_still_verifies(pipeline, tmp_path):
    """The ground-truth fingerprint is content, not mtimes: ``cp -r`` to another disk is no change."""
    from curate.manifest import load_manifest
    from train.data import check_manifest

    shutil.copytree(pipeline, tmp_path / "tree", symlinks=True, copy_function=shutil.copy)
    for gt in (tmp_path / "tree").rglob("*_gtFine_instanceIds.png"):
        os.utime(gt, ns=(1, 1))
    manifest = load_manifest(tmp_path / "tree" / "manifests" / "mix.json")
    _, evals = check_manifest(manifest)
    assert [e.name for e in evals] == ["cityscapes_val", "synscapes_val"]
