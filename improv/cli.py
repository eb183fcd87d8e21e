"""The ``improv`` command: one subcommand per module of :mod:`improv.commands`.

Errors a user can cause (:class:`~improv.errors.ImprovError`) are one line and status 1;
anything else is a bug and shows its traceback. Offline subcommands that need TensorFlow
(train, evaluate, export, plot) import it only when they run; the rest of improv never does.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from improv import __version__
from improv.commands import NAMES
from improv.errors import ImprovError

#: What each extra brings; a command that needs a missing one says which to install.
EXTRAS = {"tensorflow": "train", "keras": "train", "pandas": "train", "matplotlib": "train"}


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP ended a command: raised in it as Ctrl-C is, so that it ends the
    same way (a memory file's lock given back, training's weights saved) instead of dying
    where it stands. ``improv run`` sets its own handlers: it stops as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _end_like_ctrl_c() -> dict:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` where they would kill improv (not
    where ignored: ``nohup``), in the main thread (the only one signals reach); return the
    handlers replaced, to put back."""
    replaced = {}
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)  # no SIGHUP on Windows
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            replaced[sig] = signal.signal(sig, _terminate)
    return replaced


def _terminate(signum, frame) -> None:
    raise Terminated(signum)


def _module(name: str):
    return importlib.import_module(f"improv.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``improv`` command."""
    parser = argparse.ArgumentParser(prog="improv", description="A real-time MIDI improviser.")
    parser.add_argument("--version", action="version", version=f"improv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in NAMES:
        _module(name).add_parser(sub)
    return parser


def _tolerant_output() -> None:
    """Let stdout write what its encoding cannot (a file name with an accent under
    ``PYTHONIOENCODING=ascii``) as backslash escapes, as stderr already does, instead of
    failing a command after its work (a traceback and status 1 once the file was written)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    """Run the ``improv`` command; return its exit status."""
    _tolerant_output()
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # its imports take a moment: Ctrl-C may come then too
        print("improv: interrupted", file=sys.stderr)
        return 130
    replaced = _end_like_ctrl_c()
    try:
        return _module(args.command).command(args)
    except KeyboardInterrupt as exc:  # TrainingInterrupted says where it saved
        print(f"improv: {str(exc) or 'interrupted'}", file=sys.stderr)
        # 128 + the signal's number, as a shell gives a command a signal ended
        cause = exc if isinstance(exc, Terminated) else exc.__context__
        return 128 + (cause.signum if isinstance(cause, Terminated) else signal.SIGINT)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        extra = EXTRAS[top]
        print(f"improv: error: `improv {args.command}` needs {top}, which the runtime install "
              f"leaves out; install the {extra} extra: bash install.sh --{extra} (or pip install "
              f"'improv[{extra}]')", file=sys.stderr)
        return 1
    # Every error a user can cause is an ImprovError (improv.errors); anything else is a
    # bug and shows its traceback.
    except ImprovError as exc:
        print(f"improv: error: {exc}", file=sys.stderr)
        return 1
    finally:  # (a caller in this process, a test, gets its own back)
        for sig, handler in replaced.items():
            signal.signal(sig, handler)
