"""Progress bars for long commands: on a terminal only, and never with ``--quiet``."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every later progress bar off (``--quiet``) or back on."""
    global _quiet
    _quiet = bool(quiet)


def shown() -> bool:
    """True when a bar would be drawn: not quiet, and stderr is a terminal."""
    return not _quiet and sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, total: float | None = None, desc: str = "",
             **kwargs):
    """Return a tqdm bar over ``iterable`` (or a manual one with ``total``), drawn on stderr
    only when :func:`shown`; it leaves no line behind."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not shown(), leave=False,
                file=sys.stderr, dynamic_ncols=True, **kwargs)
