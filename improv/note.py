"""A played note: pitch, velocity, start and end time (monotonic seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """One note as played; refuses an end before its start, like pretty_midi's Note."""

    pitch: int
    velocity: int
    start: float
    end: float
    channel: int = 0

    def __post_init__(self):
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"pitch must be 0-127, got {self.pitch}")
        if not 0 <= self.velocity <= 127:
            raise ValueError(f"velocity must be 0-127, got {self.velocity}")
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"a note's start and end must be finite, got {self.start}, "
                             f"{self.end}")
        if self.end < self.start:
            raise ValueError(f"note ends ({self.end}) before it starts ({self.start})")

    @property
    def duration(self) -> float:
        return self.end - self.start
