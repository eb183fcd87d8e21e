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
        self._counts = [0] * 12  # per pitch class, of the notes in _recent
        self._key: tuple[int, ...] = ()  # the classes of mask
        self._outside: tuple[int, ...] = ()  # the other classes
        self.mask: np.ndarray | None = None

    def push(self, pitch: int) -> None:
        """Take in one note's pitch (0-127)."""
        recent, counts, key = self._recent, self._counts, self._key
        dropped = recent[0] if len(recent) == self.context else None
        if dropped is not None:
            counts[dropped] -= 1
        pitch_class = int(pitch) % 12
        recent.append(pitch_class)
        counts[pitch_class] += 1
        if self.mask is not None:
            # Only the class pushed (one more) and the one dropped (one fewer) moved, so the
            # key changes only if the first, outside it, now outranks one of it, or the
            # second, in it, is outranked by one outside. In the bench's improvised notes the
            # earlier, coarser test re-sorted on 78% of pushes; 3.7% changed the key. (Ranks
            # as _rank's, written out: a call per class doubled the push's time.)
            enters = (pitch_class not in key
                      and counts[pitch_class] * 16 - pitch_class
                      > min([counts[c] * 16 - c for c in key]))
            leaves = (dropped is not None and dropped != pitch_class and dropped in key
                      and self._outside
                      and counts[dropped] * 16 - dropped
                      < max([counts[c] * 16 - c for c in self._outside]))
            if not (enters or leaves):
                return
        ranks = [_rank(counts, c) for c in range(12)]
        order = sorted(range(12), key=ranks.__getitem__, reverse=True)
        self._key = key = tuple(order[:self.classes])
        self._outside = tuple(order[self.classes:])
        mask = np.zeros(12, dtype=bool)
        mask[list(key)] = True
        self.mask = mask  # a new array: a mask handed out before never changes

    def reset(self) -> None:
        """Forget every note."""
        self._recent.clear()
        self._counts = [0] * 12
        self._key = self._outside = ()
        self.mask = None

    def __len__(self) -> int:
        return len(self._recent)


def _rank(counts: list[int], pitch_class: int) -> int:
    """A class's place in the key's order as one int, higher first: more notes, then the
    lower class (as :func:`key_mask`'s stable sort)."""
    return counts[pitch_class] * 16 + 15 - pitch_class


def pitch_weights(mask: np.ndarray, weight: float, lo: int = 0, hi: int = 127) -> np.ndarray:
    """Return, for pitches ``lo``-``hi``, 1 for those in the key ``mask`` and
    ``1 - weight`` for the others: the factor a distribution over pitches is leaned
    towards the key by."""
    pitch_classes = np.arange(lo, hi + 1) % 12
    return np.where(mask[pitch_classes], 1.0, 1.0 - weight)
