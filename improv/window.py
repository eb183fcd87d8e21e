"""The rolling window of recent notes that feeds the model, in onset order.

When does a note enter the model? At its **release**, because the model reads
(pitch, step, duration) and the duration is only known then. To keep onset
order (which the model was trained on, and which makes chords step 0), a
released note waits until every note that started before it has entered too;
:meth:`NoteWindow.add` takes notes in any order and :meth:`NoteWindow.ready`
hands them out in onset order once nothing earlier is still sounding.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from improv.note import Note

#: Longest step fed to the model: a pause of minutes means "a new phrase", not 300 s.
MAX_INPUT_STEP = 4.0
#: Most notes kept waiting behind a held one; beyond this (a stuck key, a missing
#: note-off) the oldest go in anyway, so the wait can never grow without bound.
MAX_PENDING = 64


class NoteWindow:
    """The last ``size`` notes as (pitch, step, duration, velocity) rows, plus the
    notes that have ended but still wait for an earlier one."""

    def __init__(self, size: int = 256, max_step: float = MAX_INPUT_STEP):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.rows: deque[tuple[int, float, float, int]] = deque(maxlen=size)
        self.max_step = max_step
        self._pending: list[tuple[float, int, Note]] = []  # sorted by (start, pitch)
        self._last_start: float | None = None

    def add(self, note: Note) -> None:
        """Take an ended note (in any order)."""
        bisect.insort(self._pending, (note.start, note.pitch, note), key=lambda e: e[:2])

    def ready(self, earliest_sounding: float | None) -> list[tuple[int, float, float, int]]:
        """Move pending notes that start before ``earliest_sounding`` (the start of the
        oldest note still sounding; None if none) into the window; return their rows."""
        out = []
        while self._pending and (earliest_sounding is None
                                 or self._pending[0][0] <= earliest_sounding
                                 or len(self._pending) > MAX_PENDING):
            _, _, note = self._pending.pop(0)
            out.append(self.push(pitch=note.pitch, start=note.start, duration=note.duration,
                                 velocity=note.velocity))
        return out

    def push(self, pitch: int, start: float, duration: float, velocity: int) -> tuple:
        """Append a note that starts at ``start``; return its row."""
        if not (math.isfinite(start) and math.isfinite(duration)):
            raise ValueError(f"a note's start and duration must be finite, got {start!r}, "
                             f"{duration!r}")
        step = 0.0 if self._last_start is None else min(max(start - self._last_start, 0.0),
                                                         self.max_step)
        self._last_start = start if self._last_start is None else max(start, self._last_start)
        row = (int(pitch), float(step), float(duration), int(velocity))
        self.rows.append(row)
        return row

    @property
    def pending(self) -> int:
        return len(self._pending)
