"""The request side of ``curate manifest``: options → the list of manifests to write.

Checks the combination of options and turns it into :class:`MixSpec` s (output path, frames per
kind, pruning) without reading any file: the frame-count rules (``--real``/``--synthetic``,
``--total`` with ``--real-fraction``, the ``--budget`` rule, the ratio and prune sweeps), the
``--prune`` forms, output naming, and the effective command recorded in each manifest.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from curate import sources
from curate.errors import CurateError
from curate.labels import CLASS_NAMES
from curate.prune import PRUNE_SWEEP, STUDY_FRACTION, check_fraction, uniform_fractions
from curate.schedule import BASELINE_BATCH, DEFAULT_EPOCHS
from curate.thresholds import read_thresholds_fractions

KINDS = ("real", "synthetic")
SWEEPS = ("ratio", "prune")
#: The study's prune sweep trained on 2,975 frames (the size of Cityscapes train).
PRUNE_SWEEP_FRAMES = 2975
#: The study's ratio sweep: 0 %, 10 %, … 100 % real.
RATIO_SWEEP_STEPS = 10
DEFAULT_OUTPUT = Path("manifests/mix.json")


@dataclass
class ManifestRequest:
    """Every option of ``curate manifest`` (see its ``--help``)."""

    out: Path
    output: Path | None = None
    real: int | str | None = None
    synthetic: int | str | None = None
    total: int | None = None
    real_fraction: float | None = None
    sweep: str | None = None
    budget: int | None = None
    batch: int = BASELINE_BATCH
    epochs: int = DEFAULT_EPOCHS
    prune: str | None = None
    no_prune: bool = False
    prune_real: bool = False
    seed: int = 0
    real_split: str = "train"
    synthetic_split: str = "train"
    eval: str | None = None
    #: which registered source gives each kind (default: the first of that kind, curate.sources)
    real_source: str | None = None
    synthetic_source: str | None = None

    def split_of(self, kind: str) -> str:
        return self.real_split if kind == "real" else self.synthetic_split

    def source_of(self, kind: str) -> str:
        """The source that gives the ``kind`` frames, checked against the registry."""
        chosen = self.real_source if kind == "real" else self.synthetic_source
        if chosen is None:
            return sources.of_kind(kind)[0].name
        if sources.get(chosen).kind != kind:
            of_kind = ", ".join(s.name for s in sources.of_kind(kind))
            raise CurateError(None, f"--{kind}-source {chosen}: {chosen} is {sources.get(chosen).kind} data "
                                    f"(the {kind} sources are {of_kind})")
        return chosen


@dataclass
class MixSpec:
    """One manifest to write: where, how many frames of each kind, which pruning."""

    output: Path
    counts: dict[str, int | str]  # kind → count or "all" (synthetic may be "budget")
    fractions: dict[str, float]
    prune_spec: str


def command_line(request: ManifestRequest) -> str:
    """The effective command (defaults filled in), recorded in the manifest."""
    args = ["curate", "manifest", str(request.out)]
    options = [
        ("--sweep", request.sweep), ("--real", request.real), ("--synthetic", request.synthetic),
        ("--total", request.total), ("--real-fraction", request.real_fraction),
        ("--budget", request.budget), ("--batch", request.batch), ("--epochs", request.epochs),
        ("--prune", request.prune), ("--seed", request.seed), ("--real-split", request.real_split),
        ("--synthetic-split", request.synthetic_split), ("--real-source", request.real_source),
        ("--synthetic-source", request.synthetic_source), ("--eval", request.eval),
        ("-o", request.output),
    ]
    for flag, value in options:
        if value is not None:
            args += [flag, str(value)]
    args += [flag for flag, on in (("--no-prune", request.no_prune), ("--prune-real", request.prune_real)) if on]
    return shlex.join(args)


def _forbid(request: ManifestRequest, form: str, *names: str) -> None:
    for name in names:
        if getattr(request, name) not in (None, False):
            raise CurateError(None, f"{form} does not take --{name.replace('_', '-')}")


def plan_mixes(request: ManifestRequest) -> list[MixSpec]:
    """Check the combination of options and list the manifests it asks for (no file is read)."""
    if request.sweep is not None and request.sweep not in SWEEPS:
        raise CurateError(None, f"--sweep {request.sweep}: expected one of {', '.join(SWEEPS)}")
    if request.batch <= 0 or request.epochs <= 0:
        raise CurateError(None, "--batch and --epochs must be positive")
    real, synthetic = parse_count(request.real, "--real"), parse_count(request.synthetic, "--synthetic")
    if request.sweep == "prune":
        _forbid(request, "--sweep prune", "prune", "no_prune", "total", "real_fraction", "budget")
        directory = _sweep_dir(request)
        counts = {"real": real or 0, "synthetic": PRUNE_SWEEP_FRAMES if synthetic is None else synthetic}
        return [MixSpec(directory / f"prune_{round(p * 100):02d}.json", dict(counts), uniform_fractions(p), str(p))
                for p in PRUNE_SWEEP]
    fractions, prune_spec = parse_prune(request.prune, request.no_prune)
    if request.sweep == "ratio":
        _forbid(request, "--sweep ratio", "real", "synthetic", "real_fraction", "budget")
        if request.total is None or request.total <= 0:
            raise CurateError(None, "--sweep ratio needs --total (frames per mix, > 0)")
        directory = _sweep_dir(request)
        return [MixSpec(directory / f"ratio_real{round(share * 100):03d}.json",
                        {"real": n_real, "synthetic": n_synthetic}, fractions, prune_spec)
                for share, n_real, n_synthetic in ratio_sweep(request.total)]
    output = _single_output(request)
    if request.budget is not None:
        _forbid(request, "--budget", "synthetic", "total", "real_fraction")
        if real is None:
            raise CurateError(None, "--budget needs --real (a count or 'all'): synthetic = frames − real")
        budget_synthetic(request.budget, request.batch, request.epochs, 0)  # checks the numbers
        return [MixSpec(output, {"real": real, "synthetic": "budget"}, fractions, prune_spec)]
    if request.total is not None or request.real_fraction is not None:
        _forbid(request, "--total/--real-fraction", "real", "synthetic")
        if request.total is None or request.real_fraction is None:
            raise CurateError(None, "--total and --real-fraction go together")
        if request.total <= 0:
            raise CurateError(None, f"--total {request.total}: must be > 0")
        n_real = real_count_from_fraction(request.total, request.real_fraction)
        return [MixSpec(output, {"real": n_real, "synthetic": request.total - n_real}, fractions, prune_spec)]
    if real is None and synthetic is None:
        raise CurateError(None, "say how many frames: --real/--synthetic, --total with --real-fraction, "
                                "--budget, or --sweep")
    return [MixSpec(output, {"real": real or 0, "synthetic": synthetic or 0}, fractions, prune_spec)]


def _sweep_dir(request: ManifestRequest) -> Path:
    directory = Path(request.output) if request.output is not None else Path("manifests") / request.sweep
    if directory.suffix == ".json":
        raise CurateError(directory, "--sweep writes several manifests: -o must be a folder")
    return directory


def _single_output(request: ManifestRequest) -> Path:
    output = Path(request.output) if request.output is not None else DEFAULT_OUTPUT
    if output.suffix != ".json" or output.name.endswith(".coco.json"):
        raise CurateError(output, "-o must name the manifest file, e.g. manifests/mix.json")
    return output


# ---------------------------------------------------------------- frame counts


def parse_count(value: str | int | None, option: str) -> int | str | None:
    """``--real``/``--synthetic``: a frame count ≥ 0 or ``all``."""
    if value is None:
        return None
    if isinstance(value, int):
        text = str(value)
    else:
        text = value.strip().lower()
    if text == "all":
        return "all"
    try:
        count = int(text)
    except ValueError:
        raise CurateError(None, f"{option} {value}: expected a frame count or 'all'") from None
    if count < 0:
        raise CurateError(None, f"{option} {value}: frame count must be ≥ 0")
    return count


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def real_count_from_fraction(total: int, real_fraction: float) -> int:
    """Real frames of a ``--total``/``--real-fraction`` mix: round(f·T), halves rounded up."""
    if not 0.0 <= real_fraction <= 1.0:
        raise CurateError(None, f"--real-fraction {real_fraction:g} is outside [0, 1]")
    return round_half_up(Fraction(str(real_fraction)) * total)


def ratio_sweep(total: int) -> list[tuple[float, int, int]]:
    """``(real share, real frames, synthetic frames)`` for 0 %, 10 %, … 100 % real of ``total``."""
    points = []
    for step in range(RATIO_SWEEP_STEPS + 1):
        share = Fraction(step, RATIO_SWEEP_STEPS)
        real = round_half_up(share * total)
        points.append((float(share), real, total - real))
    return points


def budget_frames(iterations: int, batch: int, epochs: int) -> int:
    """Frames an iteration budget trains for ``epochs`` epochs: ⌊iterations·batch / epochs⌋."""
    if iterations <= 0 or batch <= 0 or epochs <= 0:
        raise CurateError(None, "--budget, --batch and --epochs must be positive")
    return iterations * batch // epochs


def budget_synthetic(iterations: int, batch: int, epochs: int, real: int) -> int:
    """Synthetic frames under the study's budget rule: frames − real (80k, 8, 50, 2975 → 9825)."""
    frames = budget_frames(iterations, batch, epochs)
    if real > frames:
        raise CurateError(None, f"--budget {iterations} at batch {batch} for {epochs} epochs covers "
                                f"{frames} frames, fewer than the {real} real frames")
    return frames - real


# ---------------------------------------------------------------- --prune


def parse_prune(spec: str | None, no_prune: bool = False) -> tuple[dict[str, float], str]:
    """``--prune`` → (fraction per class, the spec as recorded in the manifest).

    Forms: ``0.4`` (every class), ``person=0.6,default=0.3`` (named classes; the rest take
    ``default``, or 0 when no default is given), or a ``thresholds.json`` written by
    ``curate stats`` (its ``prune`` map). ``None`` means the study's 0.4.
    """
    if no_prune:
        if spec is not None:
            raise CurateError(None, "--prune and --no-prune exclude each other")
        return uniform_fractions(0.0), "none"
    if spec is None:
        return uniform_fractions(STUDY_FRACTION), str(STUDY_FRACTION)
    spec = spec.strip()
    if spec.endswith(".json"):
        return read_thresholds_fractions(Path(spec)), spec
    if "=" not in spec:
        return uniform_fractions(check_fraction(_to_float(spec, spec), "--prune")), spec
    return _parse_pairs(spec), spec


def _to_float(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CurateError(None, f"--prune {spec}: '{text}' is not a number") from None


def _parse_pairs(spec: str) -> dict[str, float]:
    named: dict[str, float] = {}
    default = 0.0
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise CurateError(None, f"--prune {spec}: '{part}' is not class=fraction")
        fraction = check_fraction(_to_float(value.strip(), spec), f"--prune {name}")
        if name == "default":
            default = fraction
        elif name in CLASS_NAMES:
            named[name] = fraction
        else:
            raise CurateError(None, f"--prune: unknown class '{name}' (classes: {', '.join(CLASS_NAMES)}, default)")
    return {name: named.get(name, default) for name in CLASS_NAMES}
