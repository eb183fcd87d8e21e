"""Diagnostics go through :mod:`logging` (``logging.getLogger(__name__)`` in each module).

improv's and training's loggers write each record's message, as it is, to the standard
error stream of the moment (``sys.stderr`` looked up when written, so a test's capture
sees it; a broken stream is ignored, as a dead parent must not abort a shutdown), at
INFO and above: what a user sees is unchanged from the ``print(..., file=sys.stderr)``
it replaced. The status line and the one-line errors of the ``improv`` command stay
prints to their streams. A program that embeds improv can take the loggers over:
``logging.getLogger("improv").handlers.clear()`` and set ``propagate = True``.
"""

from __future__ import annotations

import logging
import sys


class StderrHandler(logging.Handler):
    """Write a record's message to the current ``sys.stderr``; never raise."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def install(name: str) -> logging.Logger:
    """Give the logger ``name`` (a package's) its stderr handler, once; return it."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        logger.addHandler(StderrHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
