"""What a note model reads for each note: its inputs, scaled as in training.

A note is ``(pitch, step, duration, velocity)``: raw MIDI pitch 0-127, seconds
since the previous note's onset, seconds held, MIDI velocity 1-127. A model reads:

- the pitch, either as one number ``pitch / vocab_size`` (the tutorial's input,
  kept for the ``tutorial-*`` baselines) or, with a pitch embedding, as the
  integer itself, looked up in a learned table;
- with an interval embedding, the interval to the previous note as a class:
  ``clip(pitch - previous, -INTERVAL_RANGE, INTERVAL_RANGE)`` shifted to
  ``0 .. 2 * INTERVAL_RANGE``, and :data:`NO_INTERVAL` for a first note;
- step and duration in seconds, and ``velocity / 127`` for a model with a
  velocity head.

Training (``training/datasets.py``, in TensorFlow), evaluation and the NumPy
engine all follow this module, so the scaling is defined once.
"""

from __future__ import annotations

import numpy as np

#: Intervals beyond this many semitones share the extreme class (97% of intervals in
#: maestro-asap lie within an octave; two octaves keep leaps distinct).
INTERVAL_RANGE = 24
#: The class of a note with no previous note.
NO_INTERVAL = 2 * INTERVAL_RANGE + 1
INTERVAL_CLASSES = NO_INTERVAL + 1


def interval_class(previous: int | None, pitch: int) -> int:
    """Return the interval class of ``pitch`` after ``previous`` (None: first note)."""
    if previous is None:
        return NO_INTERVAL
    return int(min(max(pitch - previous, -INTERVAL_RANGE), INTERVAL_RANGE)) + INTERVAL_RANGE


def interval_classes(pitches: np.ndarray) -> np.ndarray:
    """Return the interval class of every pitch of a sequence; the first has none."""
    pitches = np.asarray(pitches, np.int64)
    out = np.full(len(pitches), NO_INTERVAL, np.int32)
    if len(pitches) > 1:
        out[1:] = np.clip(np.diff(pitches), -INTERVAL_RANGE, INTERVAL_RANGE) + INTERVAL_RANGE
    return out


def model_inputs(notes: np.ndarray, *, vocab_size: int = 128, pitch_embedding: bool = False,
                 interval_embedding: bool = False, velocity: bool = False
                 ) -> np.ndarray | dict[str, np.ndarray]:
    """Return a model's inputs for ``(n, 4)`` notes (pitch, step, duration, velocity).

    A model that reads the pitch as a number takes one ``(n, 3|4)`` float array;
    one with embeddings takes a dict: ``pitches`` (int), ``intervals`` (int, with an
    interval embedding) and ``notes``, the float columns after the pitch.
    """
    notes = np.asarray(notes)
    columns = [notes[:, 1], notes[:, 2]]
    if velocity:
        columns.append(notes[:, 3] / 127.0)
    if not pitch_embedding:
        return np.stack([notes[:, 0] / vocab_size] + columns, axis=-1).astype(np.float32)
    out = {"pitches": notes[:, 0].astype(np.int32),
           "notes": np.stack(columns, axis=-1).astype(np.float32)}
    if interval_embedding:
        out["intervals"] = interval_classes(notes[:, 0])
    return out
