"""Steps and durations as classes: log-spaced bins of time.

A model with categorical timing heads predicts a distribution over ``n`` bins
for the next note's step and for its duration, so that timing can be sampled
like pitch instead of being a single guess near the mean. Bin 0 holds times
below :data:`FIRST_EDGE` (a chord's notes), the last bin times from
:data:`LAST_EDGE` up, and the bins between are equally wide in log time.
"""

from __future__ import annotations

import numpy as np

from improv.errors import InvalidValueError

#: Seconds. Notes closer than this are played together.
FIRST_EDGE = 0.01
#: Seconds. Longer steps and durations share the last bin.
LAST_EDGE = 4.0


def bin_edges(n: int) -> np.ndarray:
    """Return the ``n - 1`` edges (seconds) between ``n`` bins."""
    if n < 3:
        raise InvalidValueError(f"need at least 3 time bins, got {n}")
    return np.geomspace(FIRST_EDGE, LAST_EDGE, n - 1).astype(np.float32)


def bin_values(n: int) -> np.ndarray:
    """Return the time each of ``n`` bins stands for: 0 for the first, the
    geometric middle of the others, the last edge for the last."""
    e = bin_edges(n).astype(np.float64)
    return np.concatenate([[0.0], np.sqrt(e[:-1] * e[1:]), [e[-1]]]).astype(np.float32)


def to_bins(seconds: np.ndarray, n: int) -> np.ndarray:
    """Return the bin of each time in ``seconds``."""
    return np.searchsorted(bin_edges(n), seconds, side="right")
