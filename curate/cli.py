"""The ``curate`` command line: a thin Typer layer over the library functions.

Each command group lives in ``curate/commands/<name>.py`` and is mounted here. Bad input raises
:class:`curate.errors.CurateError`; ``main`` prints its one line and exits with status 2. Whatever
else goes wrong is still one ``error:`` line and status 2 (an ``OSError`` names its file); Ctrl-C
is one line naming what was being written and status 130 (the atomic writes remove their temp
files on the way out).
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from curate import __version__
from curate.errors import CurateError

app = typer.Typer(
    help="synmix: convert Synscapes to Cityscapes conventions, measure and prune instances, "
    "mix real and synthetic frames for Detectron2 PointRend.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every sub-command
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the synmix version and exit."),
) -> None:
    """synmix: convert Synscapes to Cityscapes conventions, measure and prune instances, mix real and
    synthetic frames for Detectron2 PointRend."""


@app.command()
def version() -> None:
    """Print the synmix version (also: curate --version)."""
    typer.echo(__version__)


#: Command groups whose work runs in joblib worker processes.
_PARALLEL_COMMANDS = ("convert", "check", "sample", "demo")


def _invoked(argv: list[str]) -> str | None:
    """The command group named on the command line (the first word that is no option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _mount(invoked: str | None = None, everything: bool = True) -> None:
    """Mount the command groups; ``everything=False``: build per-source sub-commands only for the
    ``invoked`` group (what ``main`` does; tests mount all)."""
    from curate.commands import register_all

    register_all(app, invoked, everything=everything)


#: Exit status of a command ended by Ctrl-C (SIGINT), as shells report it.
INTERRUPTED_STATUS = 130


class _Interrupt:
    """SIGINT handler: note what this process was writing, then raise KeyboardInterrupt as usual."""

    def __init__(self):
        self.seen = False
        self.writing = None

    def __call__(self, signum, frame):
        from curate.fileio import current_output

        if not self.seen:
            self.seen, self.writing = True, current_output()
        raise KeyboardInterrupt


def _error(line: str, status: int = 2):
    # One line, whatever the text holds (an OSError message may span lines).
    typer.echo("error: " + " ".join(line.split()), err=True)
    sys.exit(status)


def _interrupted(interrupt: _Interrupt):
    where = interrupt.writing
    _error(f"{where}: interrupted (not written)" if where else "interrupted", INTERRUPTED_STATUS)


def ignore_interrupts() -> None:
    """Initializer of joblib's worker processes: Ctrl-C reaches the whole process group, but only
    this process answers it (it cancels the workers); a worker would print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: Workers killed by a Ctrl-C leave semaphores that loky's resource tracker (a child process on the
#: same stderr) would report in warnings after the one error line.
_QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def main(argv: list[str] | None = None) -> None:
    interrupt = _Interrupt()
    try:
        previous_handler = signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread of the main interpreter
        previous_handler = None
    warnings_env = os.environ.get("PYTHONWARNINGS", "")
    if _QUIET_TRACKER not in warnings_env.split(","):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (warnings_env, _QUIET_TRACKER)))
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        invoked = _invoked(args)
        # shell completion asks about every command; otherwise only the invoked group is built in full
        _mount(invoked, everything=any(key.endswith("_COMPLETE") for key in os.environ))
        if invoked in _PARALLEL_COMMANDS:
            from joblib import parallel_config  # joblib takes 0.2 s to import: only where it is used

            with parallel_config(backend="loky", initializer=ignore_interrupts):
                app(args=args, standalone_mode=True)
        else:
            app(args=args, standalone_mode=True)
    except CurateError as err:
        _error(str(err))
    except KeyboardInterrupt:  # before Typer runs the command (it turns one during it into exit status 130)
        _interrupted(interrupt)
    except SystemExit as done:
        if done.code == INTERRUPTED_STATUS and interrupt.seen:
            _interrupted(interrupt)
        raise
    except OSError as err:
        # Last line of defence: an OSError no write helper turned into a CurateError.
        from curate.fileio import os_problem, output_error

        if err.filename is not None:
            _error(str(output_error(err.filename, err)))  # names a file in the way of a folder, if one is
        _error(f"{os_problem(err)} ({type(err).__name__})")
    except Exception as err:  # a bug: still one line, never a traceback
        where = f" at {_where(err)}" if _where(err) else ""
        _error(f"internal error{where}: {type(err).__name__}: {err} (please report it)")
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)


def _where(err: BaseException) -> str | None:
    """``file.py:line`` of the innermost frame of synmix's own code that raised ``err``."""
    tb, found = err.__traceback__, None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "/curate/" in filename or "/train/" in filename:
            found = f"{filename.rsplit('/', 2)[-2]}/{filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found
