"""The key of what was just played: the commonest pitch classes of the last notes.

A key here is a set of :data:`KEY_CLASSES` pitch classes, the commonest among the last
:data:`KEY_CONTEXT` notes (ties go to the lower class), with no name and no mode: that is
what the evaluation measures answers against (``improv.musicstats.out_of_key``), and it
follows modulations by itself. The sampler and the phrase memory use it to lean towards
the key of the call (:attr:`improv.sampling.SamplingConfig.key_weight`,
:attr:`improv.memory.MemoryConfig.key_weight`); the model itself hears harmony through
its pitch embedding and is not changed by it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from improv.errors import InvalidValueError

#: Notes the key is taken from, and how many pitch classes make it (7: a diatonic scale).
KEY_CONTEXT = 64
KEY_CLASSES = 7


def key_mask(pitches, classes: int = KEY_CLASSES) -> np.ndarray:
    """Return a (12,) bool mask of the ``classes`` commonest pitch classes of ``pitches``
    (ties: the lower class)."""
    counts = np.bincount(np.asarray(pitches, np.int64) % 12, minlength=12)
    mask = np.zeros(12, dtype=bool)
    mask[np.argsort(-counts, kind="stable")[:classes]] = True
    return mask


class KeyTracker:
    """The key of the last ``context`` notes, kept up to date one note at a time.

    Feed it every note the model hears (the player's and improv's own) with
    :meth:`push`; :attr:`mask` is then the key (None before the first note).
    """

    def __init__(self, context: int = KEY_CONTEXT, classes: int = KEY_CLASSES):
        if context < 1:
            raise InvalidValueError(f"context must be >= 1, got {context}")
        if not 1 <= classes <= 12:
            raise InvalidValueError(f"classes must be in 1-12, got {classes}")
        self.context, self.classes = context, classes
        self._recent: deque[int] = deque(maxlen=context)
        self._counts = np.zeros(12, dtype=np.int64)
        self.mask: np.ndarray | None = None

    def push(self, pitch: int) -> None:
        """Take in one note's pitch (0-127)."""
        dropped = self._recent[0] if len(self._recent) == self.context else None
        if dropped is not None:
            self._counts[dropped] -= 1
        pitch_class = int(pitch) % 12
        self._recent.append(pitch_class)
        self._counts[pitch_class] += 1
        # A class of the key counted once more, or one outside it once less, leaves the key
        # as it was: no sort and no new array for most notes of tonal music.
        if (self.mask is not None and self.mask[pitch_class]
                and (dropped is None or dropped == pitch_class or not self.mask[dropped])):
            return
        mask = np.zeros(12, dtype=bool)
        mask[np.argsort(-self._counts, kind="stable")[:self.classes]] = True
        self.mask = mask

    def reset(self) -> None:
        """Forget every note."""
        self._recent.clear()
        self._counts[:] = 0
        self.mask = None

    def __len__(self) -> int:
        return len(self._recent)


def pitch_weights(mask: np.ndarray, weight: float, lo: int = 0, hi: int = 127) -> np.ndarray:
    """Return, for pitches ``lo``-``hi``, 1 for those in the key ``mask`` and
    ``1 - weight`` for the others: the factor a distribution over pitches is leaned
    towards the key by."""
    pitch_classes = np.arange(lo, hi + 1) % 12
    return np.where(mask[pitch_classes], 1.0, 1.0 - weight)
