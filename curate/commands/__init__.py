"""Command groups of the ``curate`` CLI; each module exposes ``register(app)``."""

from __future__ import annotations

import importlib

import typer

# Order is the order of ``curate --help``.
COMMAND_MODULES = ("sample", "check", "convert", "stats", "manifest", "export", "show", "results", "demo")


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"curate.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"curate.commands.{name}":
                continue  # command group not built yet
            raise
        module.register(app)
