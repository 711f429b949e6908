"""The source registry: name → the module that owns that data set (see :mod:`curate.sources.base`).

Adding a data set is one module under ``curate/sources/`` and one line here.
"""

from __future__ import annotations

import importlib
from functools import cache

from curate.errors import CurateError
from curate.sources.base import KINDS, ConvertSettings, FrameKey, FrameRef, Listing, Problem, Source

#: name → module holding ``SOURCE``; imported on first use (the CLI starts without OpenCV).
MODULES: dict[str, str] = {
    "synscapes": "curate.sources.synscapes",
    "cityscapes": "curate.sources.cityscapes",
    "bdd100k": "curate.sources.bdd100k",
}
NAMES: tuple[str, ...] = tuple(MODULES)


@cache
def get(name: str) -> Source:
    """The registered source ``name``; a one-line error names the known ones otherwise."""
    if name not in MODULES:
        raise CurateError(None, f"unknown source {name!r} (known: {', '.join(NAMES)})")
    return importlib.import_module(MODULES[name]).SOURCE


def all_sources() -> list[Source]:
    return [get(name) for name in NAMES]


def of_kind(kind: str) -> list[Source]:
    return [s for s in all_sources() if s.kind == kind]


__all__ = ["KINDS", "MODULES", "NAMES", "ConvertSettings", "FrameKey", "FrameRef", "Listing", "Problem", "Source",
           "all_sources", "get", "of_kind"]
