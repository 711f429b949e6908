"""What a data source is to synmix: one :class:`Source` record per source module.

A source module (``curate/sources/<name>.py``) owns everything about one data set: its layout
constants, root check, frame listing, reading, the per-frame conversion to COCO records, its
Cityscapes-style naming and its kind and splits. It ends with ``SOURCE = Source(...)``; the
registry (:mod:`curate.sources`) maps names to those modules. Nothing else in synmix branches on
a source name: the CLI, the convert driver, stats, manifest, show and ``train/`` read these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from curate.errors import CurateError

if TYPE_CHECKING:  # the CLI reads sources without numpy; records imports it
    from curate.records import FrameResult

#: A frame as its source names it: Synscapes frame numbers, Cityscapes/BDD100K file stems.
FrameKey = int | str
KINDS = ("real", "synthetic")


@dataclass(frozen=True)
class FrameRef:
    """One frame of a split: its key, its COCO image id, the file an error about it names, and
    every input file it is made of (``--resume`` fingerprints their sizes and times)."""

    key: FrameKey
    image_id: int
    path: Path
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A file of the tree that is no usable frame (a stray name, a frame missing one of its files)."""

    path: Path
    problem: str
    frame: FrameKey | None = None
    kind: str = "stray_file"  # curate.findings.KINDS


@dataclass
class Listing:
    """The frames of a split, and the problems met while listing them. ``curate convert`` stops at
    the first problem (or, with ``--on-error skip``, records it); ``curate check`` reports them all."""

    frames: list[FrameRef]
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ConvertSettings:
    """What the per-frame conversion needs besides the frame (picklable; the same for every frame)."""

    root: Path
    split: str
    out: Path
    rules: tuple[str, ...] = ()
    gtfine: bool = False
    copy_images: bool = False


@dataclass(frozen=True)
class Source:
    name: str  # CLI word and COCO file prefix: OUT/{name}_{split}.json
    title: str  # how people write it
    root_help: str  # what ROOT is, for --help ("Synscapes root (holding img/ and meta/)")
    summary: str  # one line for ``curate convert NAME --help``
    kind: str  # "real" or "synthetic" (manifests mix the two kinds)
    splits: tuple[str, ...]  # labelled splits, in order; ``--split all`` converts each
    frame_key_type: type  # int or str: the type of COCO ``images[].frame``
    colour: str  # matplotlib colour of this source in every figure
    check_root: Callable[[Path], Path]
    #: (root, split, split_file or None) → frames sorted by key (image ids assigned) and problems
    list_frames: Callable[[Path, str, Path | None], Listing]
    convert_frame: Callable[[ConvertSettings, FrameRef], FrameResult]
    #: rules the conversion applies; ``rules_switchable``: the user may pick a subset (``--rules``)
    rules: tuple[str, ...] = ()
    rules_switchable: bool = False
    #: ``--gtfine``: the source can write Cityscapes-style ground truth into OUT
    writes_gtfine: bool = False
    #: where Cityscapes-style ground truth (gtFine/{split}) of a converted split lives for the
    #: official evaluator: "input" (the source root), "output" (OUT, from --gtfine) or None
    cityscapes_gt: str | None = None
    #: frame key → "{city}_{seq:06}_{frame:06}" stem of its Cityscapes-style files (None: has none)
    cityscapes_stem: Callable[[FrameKey], str] | None = None

    def select_rules(self, text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        """The rules ``--rules`` asks for ("a,b" or a list), in this source's order (None: all)."""
        if text is None or not self.rules_switchable:
            if text is not None:
                raise CurateError(None, f"--rules: {self.title} has no switchable rules")
            return self.rules
        names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
        unknown = [n for n in names if n and n not in self.rules]
        if unknown:
            raise CurateError(None, f"--rules: unknown rule {unknown[0]!r} (known: {', '.join(self.rules)})")
        return tuple(n for n in self.rules if n in names)
