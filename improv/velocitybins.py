"""Velocities as classes: ``n`` equal bins over MIDI velocity 0-127.

A model with a velocity head predicts a distribution over these bins for the
next note's velocity; the runtime draws a bin and plays its middle.
"""

from __future__ import annotations

import numpy as np

from improv.errors import InvalidValueError


def velocity_edges(n: int) -> np.ndarray:
    """Return the ``n - 1`` velocities where a new bin starts."""
    return (np.arange(1, n) * 128 / n).astype(np.float32)


def to_velocity_bins(velocity: np.ndarray, n: int) -> np.ndarray:
    """Return the bin of each MIDI velocity (0-127)."""
    return np.searchsorted(velocity_edges(n), velocity, side="right")


def velocity_values(n: int) -> np.ndarray:
    """Return the velocity each of ``n`` bins stands for: its middle, 1-127 (at most
    64 bins, so that even the first holds a velocity that sounds)."""
    if not 2 <= n <= 64:
        raise InvalidValueError(f"need 2-64 velocity bins, got {n}")
    return np.floor((np.arange(n) + 0.5) * 128 / n).astype(np.float32)
