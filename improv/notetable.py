"""Read and write MIDI files as note tables.

A note table is a :class:`pandas.DataFrame` with one row per note and the
columns of :data:`NOTE_COLUMNS`, sorted by start then pitch. ``step`` is the
time since the previous note's start (0 for the first note and inside chords)
and ``duration`` is ``end - start``, both in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi

from improv.errors import InvalidValueError
from improv.features import steps_to_times, times_to_steps
from improv.midifile import MidiReadError, read_midi, write_midi

__all__ = ["MidiReadError", "midi_to_notes", "notes_from_arrays", "notes_from_steps",
           "notes_to_midi", "NOTE_COLUMNS"]

NOTE_COLUMNS = ("pitch", "start", "end", "step", "duration", "velocity")


def midi_to_notes(path: str | Path) -> pd.DataFrame:
    """Return the notes of every non-drum instrument of ``path`` as one table.

    Raises
    ------
    MidiReadError
        If the file cannot be parsed or holds no non-drum notes.
    """
    return notes_from_arrays(**read_midi(path))


def notes_from_arrays(pitch, start, end, velocity=None) -> pd.DataFrame:
    """Build a sorted note table from per-note arrays; derive step and duration."""
    pitch = np.asarray(pitch, dtype=np.int64)
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if velocity is None:
        velocity = np.full(len(pitch), 100)
    velocity = np.asarray(velocity, dtype=np.int64)
    if np.any(end < start):
        raise InvalidValueError("a note ends before it starts")
    order = np.lexsort((pitch, start))
    pitch, start, end, velocity = pitch[order], start[order], end[order], velocity[order]
    step, duration = times_to_steps(start, end)
    return pd.DataFrame(
        {
            "pitch": pitch,
            "start": start,
            "end": end,
            "step": step,
            "duration": duration,
            "velocity": velocity,
        },
        columns=list(NOTE_COLUMNS),
    )


def notes_from_steps(pitch, step, duration, velocity=None, start: float = 0.0) -> pd.DataFrame:
    """Build a note table from (pitch, step, duration), as a model predicts them."""
    starts, ends = steps_to_times(step, duration, start)
    return notes_from_arrays(pitch, starts, ends, velocity)


def notes_to_midi(
    notes: pd.DataFrame,
    path: str | Path,
    program: int | str = 0,
    velocity: int | None = None,
) -> pretty_midi.PrettyMIDI:
    """Write ``notes`` to ``path`` as one instrument and return the MIDI object.

    Parameters
    ----------
    notes : DataFrame
        Needs ``pitch``, ``start`` and ``end``; ``velocity`` is used when present.
    program : int or str
        General MIDI program number or name (e.g. ``"Acoustic Grand Piano"``).
    velocity : int, optional
        Play every note at this velocity instead of the table's.
    """
    if isinstance(program, str):
        program = pretty_midi.instrument_name_to_program(program)
    if velocity is not None and not 1 <= velocity <= 127:
        raise InvalidValueError(f"velocity must be 1-127, got {velocity}")
    if velocity is not None:
        vel = np.full(len(notes), velocity)
    elif "velocity" in notes.columns:
        vel = notes["velocity"].to_numpy()
    else:
        vel = np.full(len(notes), 100)
    return write_midi(path, notes["pitch"], notes["start"], notes["end"], vel, program)
