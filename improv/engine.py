"""Run an exported note model in NumPy, one note at a time.

Feed the notes as they happen with :meth:`NoteModel.feed`; each call returns
the model's :class:`Prediction` of the note after it. A streaming model keeps
its LSTM state between calls, so a call costs one LSTM step whatever the
history. A tutorial (window) model was trained on a fresh state per
25-note window, so it re-runs the last ``seq_length`` notes each call, as trained.

Inputs use the training scaling: ``[pitch / vocab_size, step, duration]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from improv.weights import ModelWeights, load_weights


@dataclass(frozen=True)
class Prediction:
    """The model's guess at the next note: pitch logits, step and duration (seconds)."""

    logits: np.ndarray
    step: float
    duration: float


def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(x / 2)) is sigmoid without overflow for large |x|.
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


class NoteModel:
    """A note model ready to feed, built from a model folder's ``weights.npz``."""

    def __init__(self, weights: ModelWeights):
        self.weights = weights
        self.arch = weights.arch
        self.seq_length = weights.seq_length
        self.vocab_size = weights.vocab_size
        u = weights.units
        w = weights.arrays
        self._kernel = w["lstm_kernel"]
        self._recurrent = w["lstm_recurrent_kernel"]
        self._bias = w["lstm_bias"]
        # The three heads as one matrix: logits, then step, then duration.
        self._head_kernel = np.ascontiguousarray(np.concatenate(
            [w["pitch_kernel"], w["step_kernel"], w["duration_kernel"]], axis=1))
        self._head_bias = np.concatenate([w["pitch_bias"], w["step_bias"], w["duration_bias"]])
        self._z = np.empty(4 * u, np.float32)
        self._zh = np.empty(4 * u, np.float32)
        self._gates = np.empty(4 * u, np.float32)
        self._tmp = np.empty(u, np.float32)
        self._x = np.empty(weights.n_features, np.float32)
        self._window = np.zeros((self.seq_length, weights.n_features), np.float32)
        self.reset()
        self._warm_up()

    @classmethod
    def load(cls, model_dir: str | Path) -> "NoteModel":
        """Load and check a model folder (see :func:`improv.weights.load_weights`)."""
        return cls(load_weights(model_dir))

    def reset(self) -> None:
        """Forget every note fed so far."""
        u = self.weights.units
        self.h = np.zeros(u, np.float32)
        self.c = np.zeros(u, np.float32)
        self.notes_fed = 0

    def _warm_up(self) -> None:
        # The first BLAS calls allocate; do them now, not on the first live note.
        for _ in range(3):
            self.feed(60, 0.25, 0.25)
        self.reset()

    def _lstm_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> None:
        """Advance (h, c) in place by one input row ``x`` (Keras gate order i, f, c, o)."""
        u = self.weights.units
        z, g = self._z, self._gates
        np.dot(x, self._kernel, out=z)
        z += self._bias
        np.dot(h, self._recurrent, out=self._zh)  # preallocated: no garbage per note
        z += self._zh
        _sigmoid(z[:2 * u], g[:2 * u])
        np.tanh(z[2 * u:3 * u], out=g[2 * u:3 * u])
        _sigmoid(z[3 * u:], g[3 * u:])
        c *= g[u:2 * u]
        np.multiply(g[:u], g[2 * u:3 * u], out=self._tmp)
        c += self._tmp
        np.tanh(c, out=self._tmp)
        np.multiply(g[3 * u:], self._tmp, out=h)

    def _heads(self, h: np.ndarray) -> Prediction:
        out = h @ self._head_kernel
        out += self._head_bias
        v = self.vocab_size
        return Prediction(out[:v], float(out[v]), float(out[v + 1]))

    def features(self, pitch: int, step: float, duration: float) -> np.ndarray:
        """Return one note's model input, scaled as in training."""
        x = self._x
        x[0] = pitch / self.vocab_size
        x[1] = step
        x[2] = duration
        return x

    def feed(self, pitch: int, step: float, duration: float) -> Prediction:
        """Take in one note (raw pitch 0-127, seconds) and predict the next."""
        x = self.features(pitch, step, duration)
        self.notes_fed += 1
        if self.arch == "streaming":
            self._lstm_step(x, self.h, self.c)
            return self._heads(self.h)
        # Window model: slide the window and re-run it from a zero state.
        self._window[:-1] = self._window[1:]
        self._window[-1] = x
        h = np.zeros_like(self.h)
        c = np.zeros_like(self.c)
        for row in self._window[-min(self.notes_fed, self.seq_length):]:
            self._lstm_step(row, h, c)
        self.h, self.c = h, c
        return self._heads(h)

    def feed_many(self, notes: np.ndarray) -> Prediction:
        """Feed an ``(n, >=3)`` array of pitch, step, duration rows; return the last prediction."""
        pred = None
        for row in notes:
            pred = self.feed(int(row[0]), float(row[1]), float(row[2]))
        if pred is None:
            raise ValueError("no notes to feed")
        return pred
