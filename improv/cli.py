"""The ``improv`` command: one subcommand per module of :mod:`improv.commands`.

Errors a user can cause (:class:`~improv.errors.ImprovError`) are one line and status 1;
anything else is a bug and shows its traceback. Offline subcommands that need TensorFlow
(train, evaluate, export, plot) import it only when they run; the rest of improv never does.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from improv import __version__
from improv.commands import NAMES
from improv.errors import ImprovError

#: What each extra brings; a command that needs a missing one says which to install.
EXTRAS = {"tensorflow": "train", "keras": "train", "pandas": "train", "matplotlib": "train"}



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
    try:
        return _module(args.command).command(args)
    except KeyboardInterrupt as exc:  # TrainingInterrupted says where it saved
        print(f"improv: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
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
