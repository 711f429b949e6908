"""The request side of ``curate manifest``: options → the list of manifests to write.

Checks the combination of options and turns it into :class:`MixSpec` s (output path, frames per
kind, pruning) without reading any file: the frame-count rules (``--real``/``--synthetic``,
``--total`` with ``--real-fraction``, the ``--budget`` rule, the ratio and prune sweeps), the
``--prune`` forms, output naming, and the effective command recorded in each manifest.

Sweeps (the study's experiments, docs/method.md §4.3 and §5): ``prune`` (the same frames at removal
fractions 0 %…90 %, fig. 4), ``ratio`` (--total frames at real shares 0 %…100 %, fig. 5) and
``additive`` (all real frames plus a growing number of synthetic ones, table 3). Each manifest of a
sweep records the swept variable and its value (:func:`sweep_record`).
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
SWEEPS = ("ratio", "prune", "additive")
#: The variable each sweep varies, as recorded in its manifests (``sweep.variable``) and read by ``curate results``.
SWEEP_VARIABLES = {"prune": "removal_fraction", "ratio": "real_share", "additive": "synthetic_frames"}
#: The study's prune sweep trained on 2,975 frames (the size of Cityscapes train).
PRUNE_SWEEP_FRAMES = 2975
#: The study's ratio sweep: 0 %, 10 %, … 100 % real.
RATIO_SWEEP_STEPS = 10
#: The study's additive mixing (table 3): all real frames plus 0, 3k, 6k, 9k, 12k or 20k synthetic ones.
ADDITIVE_SWEEP_STEPS = (0, 3000, 6000, 9000, 12000, 20000)
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
    #: the points of a sweep (default: the study's): --fractions, --ratios, --synthetic-steps
    fractions: str | None = None
    ratios: str | None = None
    synthetic_steps: str | None = None

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
    #: the manifest's ``sweep`` record (None: not part of a sweep), see :func:`sweep_record`
    sweep: dict | None = None


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
        ("--fractions", request.fractions), ("--ratios", request.ratios), ("--synthetic-steps", request.synthetic_steps),
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
    for option, sweep in (("fractions", "prune"), ("ratios", "ratio"), ("synthetic_steps", "additive")):
        if getattr(request, option) is not None and request.sweep != sweep:
            raise CurateError(None, f"--{option.replace('_', '-')} sets the points of --sweep {sweep}")
    real, synthetic = parse_count(request.real, "--real"), parse_count(request.synthetic, "--synthetic")
    if request.sweep == "prune":
        _forbid(request, "--sweep prune", "prune", "no_prune", "total", "real_fraction", "budget")
        directory = _sweep_dir(request)
        counts = {"real": real or 0, "synthetic": PRUNE_SWEEP_FRAMES if synthetic is None else synthetic}
        points = parse_points(request.fractions, "--fractions", PRUNE_SWEEP, check=lambda p: check_fraction(p, "--fractions"))
        return _named([MixSpec(directory / f"prune_{round(p * 100):02d}.json", dict(counts), uniform_fractions(p), str(p),
                               sweep_record("prune", p, points)) for p in points])
    fractions, prune_spec = parse_prune(request.prune, request.no_prune)
    if request.sweep == "ratio":
        _forbid(request, "--sweep ratio", "real", "synthetic", "real_fraction", "budget")
        if request.total is None or request.total <= 0:
            raise CurateError(None, "--sweep ratio needs --total (frames per mix, > 0)")
        directory = _sweep_dir(request)
        shares = parse_points(request.ratios, "--ratios", None, check=_check_share)
        points = ratio_sweep(request.total, shares)
        return _named([MixSpec(directory / f"ratio_real{round(share * 100):03d}.json",
                               {"real": n_real, "synthetic": n_synthetic}, fractions, prune_spec,
                               sweep_record("ratio", share, [p[0] for p in points]))
                       for share, n_real, n_synthetic in points])
    if request.sweep == "additive":
        _forbid(request, "--sweep additive", "synthetic", "total", "real_fraction", "budget")
        directory = _sweep_dir(request)
        steps = parse_points(request.synthetic_steps, "--synthetic-steps", ADDITIVE_SWEEP_STEPS, cast=_frame_count)
        return _named([MixSpec(directory / f"additive_syn{n:06d}.json", {"real": "all" if real is None else real,
                                                                        "synthetic": n},
                               fractions, prune_spec, sweep_record("additive", n, steps)) for n in steps])
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


def sweep_record(sweep: str, value, values) -> dict:
    """The manifest's ``sweep`` field: which sweep, the variable it varies, this manifest's value, all values."""
    return {"sweep": sweep, "variable": SWEEP_VARIABLES[sweep], "value": value, "values": list(values)}


def _named(specs: list[MixSpec]) -> list[MixSpec]:
    """Two points of a sweep that would write the same file (0.101 and 0.1 both → prune_10) are an error."""
    seen: dict[Path, object] = {}
    for spec in specs:
        value = spec.sweep["value"]
        if spec.output in seen:
            raise CurateError(spec.output, f"sweep points {seen[spec.output]} and {value} would write the same "
                                           "manifest: choose points further apart")
        seen[spec.output] = value
    return specs


def _frame_count(text: str) -> int:
    count = int(text)
    if count < 0:
        raise ValueError("negative")
    return count


def _check_share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise CurateError(None, f"--ratios: real share {value:g} is outside [0, 1]")
    return value


def parse_points(text: str | None, option: str, default, cast=float, check=None) -> list:
    """A sweep's points, ``0,0.1,0.5``: ascending, distinct, each checked; ``None`` → ``default``."""
    if text is None:
        return None if default is None else list(default)
    points = []
    for item in filter(None, (p.strip() for p in str(text).split(","))):
        try:
            value = cast(item)
        except ValueError:
            raise CurateError(None, f"{option} {text}: '{item}' is not a valid point") from None
        points.append(check(value) if check else value)
    if not points:
        raise CurateError(None, f"{option}: no points given")
    if sorted(set(points)) != points:
        raise CurateError(None, f"{option} {text}: points must be distinct and ascending")
    return points


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


def ratio_sweep(total: int, shares: list[float] | None = None) -> list[tuple[float, int, int]]:
    """``(real share, real frames, synthetic frames)`` for 0 %, 10 %, … 100 % real of ``total``
    (or for the given ``shares``)."""
    exact = ([Fraction(step, RATIO_SWEEP_STEPS) for step in range(RATIO_SWEEP_STEPS + 1)] if shares is None
             else [Fraction(str(share)) for share in shares])
    points = []
    for share in exact:
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
