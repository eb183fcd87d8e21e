"""Quantize onsets kept in beats: a grid (``1/8``, ``1/16``, ``1/12`` ...), a strength, swing.

An answer's note times are kept in beats (:mod:`improv.beatclock`), so quantizing is
arithmetic on beats: each onset moves ``strength`` of the way to its nearest grid point.
``swing`` (0-1) delays every second grid point of a pair: 0 is straight, 1 is the triplet
shuffle (the off-step at 2/3 of the pair instead of 1/2), in between is linear. Triplet grids
take no swing (they already are one).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A note value ``1/denominator`` of a whole note; the beat is a quarter note."""

    denominator: int

    def __post_init__(self) -> None:
        if isinstance(self.denominator, bool) or not isinstance(self.denominator, int) or \
                not 1 <= self.denominator <= 64:
            raise ValueError(f"grid must be 1/N with N an int 1-64, got 1/{self.denominator!r}")

    @classmethod
    def parse(cls, text: str) -> Grid:
        """``"1/16"`` -> ``Grid(16)``; ``"16"`` is taken as ``1/16`` too."""
        raw = text.strip()
        num, _, den = raw.partition("/") if "/" in raw else ("1", "", raw)
        try:
            if int(num) != 1:
                raise ValueError
            return cls(int(den))
        except ValueError:
            raise ValueError(f"grid {text!r}: expected 1/N such as 1/8, 1/16 or 1/12 "
                             "(triplets)") from None

    @property
    def step(self) -> Fraction:
        """The grid step in beats (quarter notes): 1/16 -> 1/4."""
        return Fraction(4, self.denominator)

    @property
    def triplet(self) -> bool:
        """A grid of triplets (its steps are not a power-of-two share of a whole note)."""
        return self.denominator % 3 == 0

    def __str__(self) -> str:
        return f"1/{self.denominator}"


@dataclass(frozen=True)
class Quantizer:
    """Move onsets (in beats) toward a grid; see the module docstring."""

    grid: Grid
    strength: float = 1.0
    swing: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise ValueError(f"Quantizer.grid must be a Grid, got {self.grid!r}")
        for name in ("strength", "swing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not 0 <= value <= 1:
                raise ValueError(f"quantize {name} must be 0-1, got {value!r}")
        if self.swing and self.grid.triplet:
            raise ValueError(f"swing needs a straight grid; {self.grid} is already triplets")

    def target(self, beats: np.ndarray | float) -> np.ndarray:
        """The grid point (swung) nearest each onset."""
        x = np.asarray(beats, np.float64)
        step = float(self.grid.step)
        if not self.swing:
            return np.round(x / step) * step
        pair = 2 * step
        off = step * (1 + self.swing / 3)  # where the pair's second point lands
        base = np.floor(x / pair) * pair
        candidates = np.stack([base, base + off, base + pair])
        best = np.abs(candidates - x[None]).argmin(axis=0)
        return np.take_along_axis(candidates, best[None], axis=0)[0]

    def apply(self, beats: np.ndarray | float) -> np.ndarray:
        """Onsets moved ``strength`` of the way to their grid points."""
        x = np.asarray(beats, np.float64)
        return x + self.strength * (self.target(x) - x)
