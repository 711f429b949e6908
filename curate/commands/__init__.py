"""Command groups of the ``curate`` CLI; each module exposes ``register(app)``.

A module with ``PER_SOURCE = True`` makes one sub-command per registered source, which means
importing the source modules (numpy, OpenCV): it builds them only when its group is the command
being run (or for shell completion), so ``curate --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

# Order is the order of ``curate --help``.
COMMAND_MODULES = ("sample", "check", "convert", "stats", "manifest", "export", "show", "results", "demo")


def register_all(app: typer.Typer, invoked: str | None = None, everything: bool = True) -> None:
    """Mount every command group; ``invoked``: the group on the command line (builds its
    per-source sub-commands), ``everything``: build all of them."""
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"curate.commands.{name}")
        if getattr(module, "PER_SOURCE", False):
            module.register(app, full=everything or name == invoked)
        else:
            module.register(app)
