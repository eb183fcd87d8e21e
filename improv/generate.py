"""Continue a seed of notes with a model: the offline form of what the daemon plays."""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from improv.engine import NoteModel
from improv.errors import InvalidValueError
from improv.features import steps_to_times, times_to_steps
from improv.key import KeyTracker
from improv.memory import PhraseMemory
from improv.midifile import read_midi
from improv.sampling import Sampler

#: The seed used when none is given: 64 notes of a real performance (see seeds/SOURCE.md).
BUILTIN_SEED = Path(__file__).parent / "seeds" / "bach_prelude_846.mid"


def seed_notes(path: str | Path | None = None) -> np.ndarray:
    """Return a MIDI file's notes as ``(n, 4)`` pitch, step, duration, velocity rows."""
    cols = read_midi(path or BUILTIN_SEED)
    step, duration = times_to_steps(cols["start"], cols["end"])
    return np.stack([cols["pitch"], step, duration, cols["velocity"]], axis=1).astype(np.float64)


def generate(model: NoteModel, sampler: Sampler, seed: np.ndarray, count: int,
             memory: PhraseMemory | None = None, strength: float = 0.0) -> np.ndarray:
    """Feed ``seed`` (rows of pitch, step, duration, velocity) and return ``count`` new
    notes as rows of the same.

    The sampler (and the memory) lean towards the key of the last notes
    (:class:`improv.key.KeyTracker`, fed the seed and every drawn note).

    With a ``memory``, the seed is what the player played: the memory learns it, each
    note's pitch is drawn from the prediction mixed with the memory's guess for the step
    drawn, at ``strength`` (:meth:`PhraseMemory.mix`), and the memory learns every drawn
    note as improv's own, as the live daemon does.

    Each drawn note is fed back exactly as a played note would be (raw pitch;
    the engine applies the training scaling), so the model never sees its own
    notes differently from the seed's. A model without a velocity head plays
    at the seed's median velocity.
    """
    if not (isinstance(count, numbers.Integral) and not isinstance(count, bool) and count >= 0):
        raise InvalidValueError(f"count must be a whole number >= 0, got {count!r}")
    count = int(count)
    seed = np.asarray(seed)  # rows as lists too, as feed_many takes them
    if seed.ndim != 2 or len(seed) == 0:
        raise InvalidValueError(f"the seed must be rows of notes, got shape {seed.shape}")
    if seed.shape[1] < 4:
        raise InvalidValueError("the seed needs rows of pitch, step, duration and velocity")
    model.reset()
    prediction = model.feed_many(seed)
    key = KeyTracker()
    for row in seed:
        key.push(int(row[0]))
        if memory is not None:
            memory.learn(int(row[0]), float(row[1]), float(row[2]))
    fallback = int(np.median(seed[:, 3]))
    out = np.empty((count, 4))
    # the pitch is drawn from the memory's guess for the step drawn (a chord tone or not)
    mix = None if memory is None else (lambda p, step: memory.mix(p, strength, key.mask, step))
    for i in range(count):
        timed = prediction if memory is None else memory.mix_rhythm(prediction, strength)
        pitch, step, duration = sampler.sample(timed, key.mask, model.struck, mix)
        velocity = sampler.velocity(prediction) or fallback
        out[i] = pitch, step, duration, velocity
        prediction = model.feed(pitch, step, duration, velocity)
        key.push(pitch)
        if memory is not None:
            memory.learn(pitch, step, duration, own=True)
    return out


def to_absolute(notes: np.ndarray, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end times of (pitch, step, duration) rows."""
    return steps_to_times(notes[:, 1], notes[:, 2], start)


def timeline(seed: np.ndarray, new: np.ndarray, include_seed: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the pitch, start, end and velocity of the generated notes (after the seed's,
    with it if ``include_seed``, else from time 0), a re-struck key ending its old note."""
    seed_start, seed_end = to_absolute(seed)
    start, end = to_absolute(new, start=seed_start[-1])
    velocity = new[:, 3]
    if include_seed:
        pitch = np.concatenate([seed[:, 0], new[:, 0]])
        start, end = np.concatenate([seed_start, start]), np.concatenate([seed_end, end])
        velocity = np.concatenate([seed[:, 3], velocity])
    else:
        pitch = new[:, 0]
        start, end = start - start[0], end - start[0]
    return pitch, start, restrike(pitch, start, end), velocity


def restrike(pitch: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Return ends where a note struck again before it ended stops at the new strike.

    A piano (and the live scheduler) can sound a key once at a time; without this, a
    MIDI file would hold overlapping notes of one pitch that players read differently.
    """
    end = end.copy()
    last: dict[int, int] = {}
    for i in np.argsort(start, kind="stable"):
        j = last.get(int(pitch[i]))
        if j is not None and end[j] > start[i]:
            end[j] = start[i]
        last[int(pitch[i])] = i
    return end
