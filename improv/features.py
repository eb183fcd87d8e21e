"""The note format, defined once: a note's row, its times, and a model's inputs.

A note is ``(pitch, step, duration, velocity)`` (:data:`NOTE_ROW`): raw MIDI pitch
0-127, seconds since the previous note's onset, seconds held, MIDI velocity 1-127.
:func:`times_to_steps` and :func:`steps_to_times` convert to and from absolute start
and end times (a MIDI file's, a player's). A model reads:

- the pitch, either as one number ``pitch / vocab_size`` (the tutorial's input,
  kept for the ``tutorial-*`` baselines) or, with a pitch embedding, as the
  integer itself, looked up in a learned table;
- with an interval embedding, the interval to the previous note as a class:
  ``clip(pitch - previous, -INTERVAL_RANGE, INTERVAL_RANGE)`` shifted to
  ``0 .. 2 * INTERVAL_RANGE``, and :data:`NO_INTERVAL` for a first note;
- step and duration in seconds, and ``velocity / 127`` for a model with a
  velocity head.

Training (``training/datasets.py``, in TensorFlow), evaluation, the benchmarks and
the NumPy engine all follow this module, so the scaling is defined once. (The tests
keep an independent copy in ``tests/model_inputs.py`` on purpose: a change here must
be made there too, knowingly.)
"""

from __future__ import annotations

import numpy as np

#: The columns of a note row, in order.
NOTE_ROW = ("pitch", "step", "duration", "velocity")
#: The tutorial's pitch input is ``pitch / VOCAB_SIZE`` (MIDI's 128 pitches).
VOCAB_SIZE = 128
#: A model with a velocity input reads ``velocity / VELOCITY_SCALE`` (MIDI's top velocity).
VELOCITY_SCALE = 127.0
#: Intervals beyond this many semitones share the extreme class (97% of intervals in
#: maestro-asap lie within an octave; two octaves keep leaps distinct).
INTERVAL_RANGE = 24
#: Notes whose onsets are closer than this (seconds) sound as one chord, and a chord does
#: not hold the same pitch twice, nor does a hand strike a key again that fast: in the
#: validation split's pieces 121 of 430,499 notes (0.03%; the training split's 0.02%) repeat
#: a pitch struck less than 50 ms before. In 200-note continuations of those pieces the
#: model alone drew 5.1% of its notes so, 6.2% with the phrase memory at its default
#: strength and 7.4% at 0.8 (134 pieces, 26,800 notes each).
CHORD_SECONDS = 0.05
#: The class of a note with no previous note.
NO_INTERVAL = 2 * INTERVAL_RANGE + 1
INTERVAL_CLASSES = NO_INTERVAL + 1


def pitch_to_input(pitch, vocab_size: int = VOCAB_SIZE):
    """Return the tutorial's pitch input, ``pitch / vocab_size`` (a number or an array)."""
    return pitch / vocab_size


def velocity_to_input(velocity):
    """Return a model's velocity input, ``velocity / 127`` (a number or an array)."""
    return velocity / VELOCITY_SCALE


def times_to_steps(start, end) -> tuple[np.ndarray, np.ndarray]:
    """Return the steps (time since the previous onset; 0 for the first note and inside a
    chord) and durations of notes given by sorted start and end times."""
    start = np.asarray(start, dtype=np.float64)
    step = np.diff(start, prepend=start[:1]) if len(start) else start
    return step, np.asarray(end, dtype=np.float64) - start


def steps_to_times(step, duration, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end times of notes given by steps and durations, the first
    onset ``start`` plus its step."""
    starts = start + np.cumsum(np.asarray(step, dtype=np.float64))
    return starts, starts + np.asarray(duration, dtype=np.float64)


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


def model_inputs(notes: np.ndarray, *, vocab_size: int = VOCAB_SIZE, pitch_embedding: bool = False,
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
        columns.append(velocity_to_input(notes[:, 3]))
    if not pitch_embedding:
        pitch = pitch_to_input(notes[:, 0], vocab_size)
        return np.stack([pitch] + columns, axis=-1).astype(np.float32)
    out = {"pitches": notes[:, 0].astype(np.int32),
           "notes": np.stack(columns, axis=-1).astype(np.float32)}
    if interval_embedding:
        out["intervals"] = interval_classes(notes[:, 0])
    return out
