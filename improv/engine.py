"""Run an exported note model in NumPy, one note at a time.

Feed the notes as they happen with :meth:`NoteModel.feed`; each call returns
the model's :class:`Prediction` of the note after it. A streaming model keeps
its LSTM state between calls, so a call costs one LSTM step whatever the
history. A tutorial (window) model was trained on a fresh state per
25-note window, so it re-runs the last ``seq_length`` notes each call, as trained.

Inputs use the training scaling of :mod:`improv.features`: the pitch as
``pitch / vocab_size`` or, for a model with a pitch embedding, a row of a
table; step and duration in seconds; ``velocity / 127`` for a model with a
velocity head.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import NamedTuple

import numpy as np

from improv.errors import InvalidValueError
from improv.features import (
    CHORD_SECONDS,
    VOCAB_SIZE,
    interval_class,
    pitch_to_input,
    velocity_to_input,
)
from improv.weights import ModelWeights, load_weights

#: Most notes :attr:`NoteModel.struck` keeps (a model stuck on step 0 plays many at once).
MAX_STRUCK = VOCAB_SIZE


class Prediction(NamedTuple):
    """The model's guess at the next note: pitch logits, step and duration (seconds).

    A model with time bins also gives ``timing_logits``, logits over the bins
    for the step (row 0) and the duration (row 1), and ``timing_values``, the
    seconds each bin stands for; ``step`` and ``duration`` are then the
    likeliest bins' times. A model with a velocity head gives ``velocity_logits``
    over its bins and ``velocity_values``, the velocity each stands for.

    A named tuple, not a frozen dataclass: up to three are made a note as improv plays
    (the heads, the phrase memory's two mixes), and one costs 0.28 us to make against 0.91
    (measured).
    """

    logits: np.ndarray
    step: float
    duration: float
    timing_logits: np.ndarray | None = None
    timing_values: np.ndarray | None = None
    velocity_logits: np.ndarray | None = None
    velocity_values: np.ndarray | None = None


class NoteModel:
    """A note model ready to feed, built from a model folder's ``weights.npz``."""

    def __init__(self, weights: ModelWeights):
        self.weights = weights
        self.arch = weights.arch
        self.seq_length = weights.seq_length
        self.vocab_size = weights.vocab_size
        u = weights.units
        w = weights.arrays
        # One matrix for the whole step, [x, 1, h] @ W: input kernel, bias, recurrent
        # kernel stacked, so a note costs one matrix product. Gates are reordered from
        # Keras's (i, f, c, o) to (i, f, o, c) and the sigmoid gates' columns halved
        # (exact in binary floating point), so a single tanh computes all four:
        # sigmoid(z) = (1 + tanh(z / 2)) / 2.
        order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        scale = np.r_[np.full(3 * u, 0.5, np.float32), np.ones(u, np.float32)]

        def gates(m: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(m[:, order] * scale, np.float32)

        kernel = w["lstm_kernel"]
        # An embedded pitch (and interval) enters the LSTM as table row @ kernel rows: that
        # product is one 128-row table, computed here once, so a step adds one row to the
        # product of the remaining columns [step, duration, (velocity), 1, h].
        self._pitch_table = self._interval_table = None
        if weights.pitch_embedding:
            d, di = weights.pitch_embedding, weights.interval_embedding
            self._pitch_table = gates(w["pitch_embedding"] @ kernel[:d])
            if di:
                self._interval_table = gates(w["interval_embedding"] @ kernel[d:d + di])
            kernel = kernel[d + di:]
        self._previous_pitch: int | None = None
        n = len(kernel)  # float inputs per note
        self._step_kernel = gates(
            np.concatenate([kernel, w["lstm_bias"][None], w["lstm_recurrent_kernel"]]))
        # The heads as one matrix: pitch logits, step, duration (then velocity logits).
        heads = ["pitch", "step", "duration"] + (["velocity"] if weights.velocity_bins else [])
        self._head_kernel = np.ascontiguousarray(
            np.concatenate([w[f"{h}_kernel"] for h in heads], axis=1))
        self._head_bias = np.concatenate([w[f"{h}_bias"] for h in heads])
        self._timing_values = w.get("timing_values")
        self._velocity_values = w.get("velocity_values")
        self._xh = np.zeros(n + 1 + u, np.float32)  # [features, 1, h]; h is a view into it
        self._xh[n] = 1.0
        self._x = self._xh[:n]
        self.h = self._xh[n + 1:]
        self.c = np.zeros(u, np.float32)
        self._z = z = np.empty(4 * u, np.float32)
        # The gates as views of z, made once (six slices a step cost 0.5 us): i, f, o are
        # sigmoids (see above), the last quarter the cell's candidate.
        self._gates = z[:3 * u], z[:u], z[u:2 * u], z[2 * u:3 * u], z[3 * u:]
        self._kept = np.empty((2, u), np.float32)  # h and c while keep_warm runs a step
        self._tmp = np.empty(u, np.float32)
        self._window = np.zeros((self.seq_length, n), np.float32)
        self.reset()
        self._warm_up()

    @classmethod
    def load(cls, model_dir: str | Path) -> "NoteModel":
        """Load and check a model folder (see :func:`improv.weights.load_weights`)."""
        return cls(load_weights(model_dir))

    def reset(self) -> None:
        """Forget every note fed so far."""
        self.h[:] = 0.0
        self.c[:] = 0.0
        self.notes_fed = 0
        self._previous_pitch = None
        self._clock = 0.0  # the last onset, in seconds from the first note fed
        self._struck: deque[tuple[float, int]] = deque(maxlen=MAX_STRUCK)  # onset, pitch

    def _warm_up(self) -> None:
        # The first BLAS calls allocate; do them now, not on the first live note.
        for _ in range(3):
            self.feed(60, 0.25, 0.25)
        self.reset()

    def keep_warm(self) -> None:
        """Run a step of the LSTM and the heads on the last input and throw it away: the
        state is left as it was (see :meth:`improv.improviser.Improviser.keep_warm`)."""
        kept = self._kept
        kept[0] = self.h
        kept[1] = self.c
        try:
            self._lstm_step(self._previous_pitch or 0, 0)
            self._heads()
        finally:
            self.h[:] = kept[0]
            self.c[:] = kept[1]

    def _lstm_step(self, pitch: int = 0, interval: int = 0) -> None:
        """Advance the state (h, c) by the input row in ``self._x`` (and, for a model
        with embeddings, the pitch's and the interval's table rows)."""
        z, c, tmp = self._z, self.c, self._tmp
        sig, i, f, o, g = self._gates
        np.dot(self._xh, self._step_kernel, out=z)
        if self._pitch_table is not None:
            z += self._pitch_table[pitch]
            if self._interval_table is not None:
                z += self._interval_table[interval]
        np.tanh(z, out=z)
        sig *= 0.5  # i, f, o: from tanh of half the pre-activation to sigmoid
        sig += 0.5
        c *= f
        np.multiply(i, g, out=tmp)
        c += tmp
        np.tanh(c, out=tmp)
        np.multiply(o, tmp, out=self.h)

    def _heads(self) -> Prediction:
        out = self.h @ self._head_kernel  # a new array: a Prediction's logits never change
        out += self._head_bias
        v, bins = self.vocab_size, self.weights.timing_bins
        velocity = None
        if self.weights.velocity_bins:
            velocity = out[-self.weights.velocity_bins:]
            out = out[:-self.weights.velocity_bins]
        if not bins:
            return Prediction(out[:v], float(out[v]), float(out[v + 1]),
                              velocity_logits=velocity, velocity_values=self._velocity_values)
        timing = out[v:].reshape(2, bins)  # a view: step row, duration row
        step, duration = self._timing_values[timing.argmax(axis=1)].tolist()
        return Prediction(out[:v], step, duration, timing, self._timing_values, velocity,
                          self._velocity_values)

    @property
    def struck(self) -> tuple[tuple[int, float], ...]:
        """The notes struck less than :data:`~improv.features.CHORD_SECONDS` before the last
        onset, the last note included: (pitch, seconds before the last onset), oldest first.
        A note drawn that close after them would sound with them
        (:meth:`improv.sampling.Sampler.sample`)."""
        return tuple((pitch, self._clock - onset) for onset, pitch in self._struck)

    @property
    def takes_velocity(self) -> bool:
        """Whether the model hears velocities (and predicts the next one)."""
        return bool(self.weights.velocity_bins)

    def features(self, pitch: int, step: float, duration: float,
                 velocity: int = 64) -> np.ndarray:
        """Return one note's float inputs, scaled as in training (:mod:`improv.features`):
        the pitch among them only for a model without a pitch embedding."""
        x = self._x
        if self._pitch_table is None:
            x[0] = pitch_to_input(pitch, self.vocab_size)
            x = x[1:]
        x[0] = step
        x[1] = duration
        if len(x) == 3:
            x[2] = velocity_to_input(velocity)
        return self._x

    def feed(self, pitch: int, step: float, duration: float, velocity: int = 64) -> Prediction:
        """Take in one note (raw pitch 0-127, seconds, velocity 1-127) and predict the
        next. The velocity matters only to a model that :attr:`takes_velocity`."""
        if not (0 <= pitch < self.vocab_size and math.isfinite(step)
                and math.isfinite(duration) and 0 <= velocity <= 127):  # a NaN would stay
            raise InvalidValueError(  # in the state for good
                f"feed: need a pitch 0-{self.vocab_size - 1}, a finite step and duration and "
                f"a velocity 0-127, got {pitch!r}, {step!r}, {duration!r}, {velocity!r}")
        x = self.features(pitch, step, duration, velocity)
        self.notes_fed += 1
        self._clock += max(float(step), 0.0)
        struck = self._struck
        while struck and self._clock - struck[0][0] >= CHORD_SECONDS:
            struck.popleft()
        struck.append((self._clock, int(pitch)))
        if self.arch == "streaming":
            pitch = int(pitch)  # a table row: a NumPy float would not index
            interval = interval_class(self._previous_pitch, pitch)
            self._previous_pitch = pitch
            self._lstm_step(pitch, interval)
            return self._heads()
        # Window model: slide the window and re-run it from a zero state.
        self._window[:-1] = self._window[1:]
        self._window[-1] = x
        self.h[:] = 0.0
        self.c[:] = 0.0
        for row in self._window[-min(self.notes_fed, self.seq_length):]:
            self._x[:] = row
            self._lstm_step()
        return self._heads()

    def feed_many(self, notes: np.ndarray) -> Prediction:
        """Feed an ``(n, >=3)`` array of pitch, step, duration (, velocity) rows; return the
        last prediction."""
        notes = np.asarray(notes)
        if notes.ndim != 2 or notes.shape[1] < 3:
            raise InvalidValueError(f"feed_many takes rows of pitch, step, duration (, velocity):"
                                    f" an (n, 3) or (n, 4) array, got shape {notes.shape}")
        if not np.isfinite(notes[:, :4].astype(np.float64)).all():  # before any is fed
            raise InvalidValueError("feed_many: every pitch, step, duration and velocity must "
                                    "be finite")
        pred = None
        for row in notes:
            velocity = int(row[3]) if len(row) > 3 else 64
            pred = self.feed(int(row[0]), float(row[1]), float(row[2]), velocity)
        if pred is None:
            raise ValueError("no notes to feed")
        return pred
