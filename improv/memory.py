"""A memory of what the player played: a variable-order model mixed with the LSTM.

The LSTM knows music in general; it does not remember the motif the player
played a minute ago. :class:`PhraseMemory` does: a PPM-style variable-order
Markov model (Cleary & Witten 1984; the short-term model of IDyOM, Pearce 2005;
the Continuator, Pachet 2003) of this session's notes, and :meth:`PhraseMemory.mix`
mixes its prediction of the next note into the LSTM's, so answers echo and vary
the call.

Symbols are transposition-free: a note's symbol is its interval to the previous
note (:func:`improv.features.interval_class`, clipped to +-24), so a motif heard
once is predicted again when it comes back transposed. Notes with onsets closer
than ``chord_seconds`` form a group that enters the context in pitch order, so the
random order in which a chord's keys arrive does not break matches for the notes
after it (each note is still counted as what followed the context before it, in the
order it came). The memory also predicts rhythm relative to the typical gap between
onsets (a running mean of log steps): each learned note is stored with its step
and duration as classes of half-octaves of that gap (step class 0: a chord tone);
mixing it in did not help on the validation split, so by default it is not.

Counts: ``weight`` per note the player plays, ``own_weight`` per note improv plays.
The prediction blends every context order from ``max_order`` down to none, with
PPM escape method C (interpolated, no exclusion), and a uniform floor.

Mixing: ``p = (1 - lam) * p_lstm + lam * p_memory`` with ``p_memory`` the blend of the
counts alone (the uniform floor's share is left to the LSTM) and
``lam = (1 - floor) * min(MAX_WEIGHT, 2 * strength * confidence)``,
``confidence = scale * k / max_order * n / (n + count_half)`` for the longest context of
``k`` symbols the memory has seen before, ``n`` times (counts). ``strength`` is the
user's ``--memory``: 0 the LSTM alone, :data:`TUNED_STRENGTH` (0.5) the weighting the
validation split picked for predicting the next note (``scale``, ``count_half`` and the
other constants were chosen there by ``training/memory_eval.py --tune``), 1 twice the
memory's weight; improv plays at :data:`DEFAULT_STRENGTH`, the same.

Playing, the next note's step is drawn first, from the LSTM's step distribution with the
chance of a chord tone (a step under ``chord_seconds``) mixed with the memory's
(:meth:`PhraseMemory.mix_rhythm`, at ``rhythm_gain`` times the weight); then the memory's
guess of its pitch comes from the counts of that kind of note alone: chord tones (step
class 0) if the step is under ``chord_seconds``, the other notes if not (the same blend
of orders, with those counts and escapes), at ``play_gain`` times the weight. So a
motif's chord comes back as a chord and its line as a line. Each pitch it offers is
weighted by the LSTM's probability of it to the power ``agreement`` (the memory's share
of the mass unchanged), so the motif comes back in the register the model hears.

Size: at most ``max_entries`` (context, next note) counts in all, and at most
:data:`MAX_CODES` different next notes after one context (beyond that the rarer half
goes); beyond ``max_entries`` the least recently seen contexts go, a few with each note
learned, so a session of any length stays within a bounded size.

Memory files (``--memory-file``) are UTF-8 JSON (never pickle), written
atomically (a temporary file in the same folder, fsync, rename)::

    {"format": "improv-memory", "version": 1,
     "symbols": {"intervals": 24, "step_classes": 14, "duration_classes": 15,
                 "chord_seconds": 0.05},
     "max_order": 5, "typical_gap": 0.21,
     "notes": {"player": 1234, "own": 567},
     "contexts": [[[interval classes...], [[code, count], ...]], ...]}

A context is its symbols, oldest first; ``code`` packs the next note's
interval class ``i`` (0-48; 49: no previous note), step class ``s`` (0-13) and
duration class ``d`` (0-14) as ``(i * 14 + s) * 15 + d``; counts are positive
numbers. Contexts are listed least recently seen first.
"""

from __future__ import annotations

import functools
import json
import math
import mmap
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from improv.checks import check_types, is_number
from improv.engine import Prediction
from improv.errors import ImprovError, InvalidValueError
from improv.features import INTERVAL_RANGE, NO_INTERVAL, VOCAB_SIZE
from improv.key import pitch_weights
from improv.outfile import check_outputs, write_atomically
from improv.timebins import bin_edges

#: The middle of the knob, where the weighting is the one the validation split picked for
#: predicting the next note (the constants of MemoryConfig; training/memory_eval.py --tune).
TUNED_STRENGTH = 0.5
#: ``--memory``'s default in run, demo and generate, and the strength ``improv evaluate``
#: scores: the tuned one. Stronger takes up more of the call's motifs but plays a rhythm
#: further from the real one, and none of 0.5, 0.75 and 0.8 met both of issue 15's aims on
#: the validation split (134 files; 5 draws each of 200 notes after a 50-note seed, T 0.9,
#: no pitch struck again within 50 ms; measured 2026-11-30, one guess for every note):
#: motif reuse 0.062 at 0.5, 0.101 at 0.75, 0.107 at 0.8 (real continuation 0.110, 0.020
#: without the memory), step-histogram overlap with the real notes 0.852, 0.844, 0.839
#: (0.854 without). Before that rule (improv.features.CHORD_SECONDS) 0.8 met both (reuse
#: 0.119, step overlap 0.861 against 0.858), but 7.4% of its notes then repeated a pitch
#: struck less than 50 ms before, and those made much of the reuse. Playing, the memory now
#: guesses for the step drawn (MemoryConfig.play_gain): reuse 0.092 at 0.5, rhythm as before.
DEFAULT_STRENGTH = TUNED_STRENGTH
FORMAT = "improv-memory"
#: How every memory file begins (PhraseMemory._head, the format first).
_HEAD = re.compile(rb'\s*\{\s*"format"\s*:\s*"' + FORMAT.encode() + rb'"')
VERSION = 1
#: Interval classes a note can have (0-48, and NO_INTERVAL for a first note).
INTERVALS = NO_INTERVAL + 1
#: Step classes: 0 a chord tone; 1-13 half-octaves of the typical gap from 1/8 to 8 times it.
STEP_CLASSES = 14
STEP_LOW = -6
#: Duration classes: half-octaves of the typical gap from 1/16 to 8 times it.
DURATION_CLASSES = 15
DURATION_LOW = -8
#: Largest file ``load`` reads (a 200 000-context memory is about 20 MB of JSON).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Most notes a file may say were learned (a century of 16 notes a second is 5e10).
MAX_NOTES = 10**12
#: Starting typical gap (seconds) before any step has been heard.
START_GAP = 0.25
#: Most weight the memory ever gets: it gives nothing to a pitch more than two octaves from
#: the last, so at weight 1 such a leap would be impossible (validation cross-entropy
#: went to infinity); the LSTM always keeps this share.
MAX_WEIGHT = 0.95
#: A 1-d array's sum: ``arr.sum()`` goes through NumPy's Python wrapper (0.82 against 0.70 us
#: for 49 floats, measured), and the memory sums a few arrays a note.
_sum = np.add.reduce
#: Most different next notes kept after one context (of the 10 500 codes there are).
MAX_CODES = 256
#: Largest group of notes taken as one chord (more than ten fingers is not a chord).
MAX_GROUP = 10

_CODES = INTERVALS * STEP_CLASSES * DURATION_CLASSES
#: Each code's three places in a vector of the marginals: its interval class among those
#: of chord tones (step class 0) or among those of the other notes, then its step and
#: duration classes. The two interval blocks added up are the interval marginal.
_MARGINALS = 2 * INTERVALS + STEP_CLASSES + DURATION_CLASSES
_CODE_STEP = np.arange(_CODES) // DURATION_CLASSES % STEP_CLASSES
_CODE_INDEX = np.stack([np.arange(_CODES) // (STEP_CLASSES * DURATION_CLASSES)
                        + np.where(_CODE_STEP == 0, 0, INTERVALS),
                        2 * INTERVALS + _CODE_STEP,
                        2 * INTERVALS + STEP_CLASSES + np.arange(_CODES) % DURATION_CLASSES],
                       axis=1)
#: Where the step and duration marginals start in a vector of the marginals.
_TIMING = 2 * INTERVALS
#: Whether each code is a chord tone's (a list: faster to index with an int than an array).
_CODE_CHORD = (_CODE_STEP == 0).tolist()
#: The same as tuples of ints, for scalar updates.
_CODE_PLACES = [tuple(int(i) for i in places) for places in _CODE_INDEX]
#: The uniform floor of each marginal (none on "no interval", which a next note never has),
#: in a vector of one interval block, the steps and the durations.
_UNIFORM = np.concatenate([np.full(NO_INTERVAL, 1 / NO_INTERVAL), [0.0],
                           np.full(STEP_CLASSES, 1 / STEP_CLASSES),
                           np.full(DURATION_CLASSES, 1 / DURATION_CLASSES)])
#: Bits of one symbol in a context's int (symbol + 1 < 64).
_BITS = 6
_DIGIT = (1 << _BITS) - 1
#: Largest count a memory file may hold (a billion notes after one context): far beyond a
#: lifetime of playing, and far from overflowing the float32 marginals.
MAX_COUNT = 1e9
#: Half-octaves of the typical gap each step / duration class stands for.
_STEP_RATIO = 2.0 ** ((np.arange(STEP_CLASSES) - 1 + STEP_LOW) / 2)
_DURATION_RATIO = 2.0 ** ((np.arange(DURATION_CLASSES) + DURATION_LOW) / 2)


class MemoryFileError(ImprovError, ValueError):
    """A memory file that cannot be read: missing, damaged, or of another format."""


class NotMemoryFileError(MemoryFileError):
    """A file that is no memory file at all (a MIDI file, a text): never set aside or
    replaced, for it may be something of the user's named by mistake."""


@dataclass(frozen=True)
class MemoryConfig:
    """How the memory learns and how much it says.

    Parameters
    ----------
    max_order : int
        Longest context, in notes (symbols), the memory matches.
    chord_seconds : float
        Notes whose onsets are closer than this are one chord (put in pitch order).
    own_weight : float
        Count of a note improv plays; a note of the player's counts 1 (0: improv's notes
        are not learned, 0.001-1 otherwise).
    count_half : float
        Counts at which the longest context's confidence is half its order's share.
    scale : float
        Confidence of a context of ``max_order`` symbols seen very often.
    timing_share : float
        The share of the pitch mixing weight used for step and duration, where the step is
        not drawn before the pitch (:meth:`PhraseMemory.mix` without ``step``).
    max_entries : int
        Most (context, next note) counts kept; the least recently seen contexts go
        when there are more. At 100 000, 3 hours of random notes at 16 a second (the
        worst case: nothing repeats; 172 800 notes learned in-process) raised RSS by 47 MB
        within the first hour and not at all in the next two (measured; 34 MB when only
        contexts with more than 8 next notes kept their marginals as an array: the table
        of them all, 312 bytes a context then, is what makes a guess one product). With
        two interval blocks a context (516 bytes; chord tones apart, 2026-11-30) the same
        3 hours raised it by 69.1 MB against 55.4 MB with one, measured in one run.
    gap_rate : float
        How fast the typical gap follows new steps (weight of each new log step).
    key_weight : float
        0-1: how much less the memory offers a pitch outside the key of the last notes
        (:mod:`improv.key`), when :meth:`PhraseMemory.mix` is given the key: a motif then
        comes back on the scale, as a tonal sequence does, instead of transposed off it.
    play_gain : float
        How many times its weight the memory gets when improv plays (the step drawn
        first, the memory's guess for that kind of note) against predicting a note
        whose step is not known (``improv evaluate``'s cross-entropy).
    rhythm_gain : float
        How many times the pitch's weight the memory's chance of a chord tone gets in
        the step improv draws (:meth:`PhraseMemory.mix_rhythm`; 0: the model's alone).
    agreement : float
        Playing, each pitch the memory offers is weighted by the LSTM's probability of it
        to this power before the memory's share is shared out among them (0: by the
        counts alone): of the motif's continuations, those the model finds likely in
        this register and harmony come back first.
    """

    # Chosen on 16 files of the validation split (52 605 scored notes, models/default of
    # 2026-11-29; training/memory_eval.py --tune and the grid noted there). Pitch
    # cross-entropy 3.586 nats without the memory; with it, at strength 0.5: 2.781 here;
    # 2.984 with no chord grouping, 2.789 at 0.03 s, 2.888 at 0.08 s; order 8: 2.788.
    max_order: int = 5
    # (The sampler's chord, improv.features.CHORD_SECONDS, is the same 50 ms by another
    # measure: in real pieces 0.03% of notes repeat a pitch struck within it.)
    chord_seconds: float = 0.05
    # Teacher-forced cross-entropy never hears improv's own notes; what improv plays does.
    # Validation --music at strength 0.5, key_weight 1 (5 draws, before the sampler's rule
    # against pitches struck again within 50 ms, improv.features.CHORD_SECONDS):
    # at 0.25, notes out of key 0.163 (0.178 with 0.5 and key_weight 0.9, the default
    # until 2026-11-30; 0.180 without the memory), repeated pitches 0.041 (0.054; real
    # 0.027), longest run of a pitch 3.0 (3.8; real 2.9), motif reuse 0.065 (0.069).
    # At 0, reuse fell (0.054, one draw, key_weight 0.9); the more, the longer answers
    # circle their own notes (runs 5.7 at 0.5 and strength 0.75).
    own_weight: float = 0.25
    count_half: float = 0.5
    scale: float = 1.0
    # Mixing step and duration did not help: at 0.25 the step cross-entropy fell by 0.002
    # nats and the duration's rose by 0.013; at 1, both rose by 0.23 and 0.31.
    timing_share: float = 0.0
    max_entries: int = 100_000
    gap_rate: float = 0.1
    # With memory strength 0.5 and the sampler's key_weight 0.15, on validation (53 files,
    # 3 draws): notes out of key 1.07 x the real continuation's share at 0.7 (motif reuse
    # 0.071), 0.92 x at 0.9 (0.069), 0.92 x at 1 (0.060); without it 1.32 x (0.070). At 1
    # the memory offers only the key's pitches (unless it knows none there). At 0.95 / 0.9
    # (own_weight 0.25, strength 0.8, 134 files, 5 draws): out of key 0.177 / 0.182 against
    # 0.158 at 1 and 0.180 without the memory. So a motif's notes off the key come back on
    # it, as its neighbours.
    key_weight: float = 1.0
    # Playing, the memory offers a chord tone what followed its context as a chord tone,
    # and another note what followed as another note (mix(step=...)): a motif's interval
    # then comes back with its place in the rhythm. On validation (134 files, 8 draws of
    # 200 notes after a 50-note seed each, strength 0.5, 2026-11-30), against one guess for
    # both at gain 1: motif reuse 0.092 (0.060), step-histogram overlap with the real notes
    # 0.848 (0.850; 0.851 without the memory; per draw +-0.005), durations 0.944 (0.939),
    # notes out of key 0.86 x the real share (0.91 x); real reuse 0.110. Gain 1 with the
    # two guesses: reuse 0.046 (3 draws); 1.25 x that gain, or a shorter max_order, took
    # the reuse higher and the step overlap lower (0.835-0.838).
    play_gain: float = 2.0
    # Before the step is drawn, the memory's chance of a chord tone after this context is
    # mixed into the model's (mix_rhythm). The model alone drew 36% of its steps under 10
    # ms on validation, 39% with the memory guessing pitches as above; the real notes 24%.
    # Validation, 8 draws (as above): rhythm_gain 0 / 0.5 / 1: step-histogram overlap 0.848
    # / 0.857 / 0.868 (0.851 without the memory), durations 0.944 / 0.945 / 0.943 (0.933),
    # motif reuse 0.092 / 0.118 / 0.175 (real 0.110), interval overlap 0.855 / 0.850 /
    # 0.839 (0.860), notes out of key 0.87 / 0.85 / 0.81 x the real share (1.02 x). 1: the
    # best rhythm, with reuse well above the real continuation's. It also predicts the real
    # steps best: teacher-forced (the memory learning each real note, strength 0.5), step
    # cross-entropy 2.407 nats without the mix, 2.352 / 2.338 / 2.375 at 0.5 / 1 / 2
    # (validation, 427 149 notes); on the test split 2.257 -> 2.205 at 1.
    rhythm_gain: float = 1.0
    # The memory's intervals know nothing of register: alone they let an answer wander
    # (validation, 2 draws: the mean pitch of an answer's last 50 notes lay 11.2 semitones
    # from its seed's, 8.9 without the memory, 5.1 in the real continuations; its pitches
    # spread 2.1 semitones (std) wider than the real ones, 0.4 without). Validation, 8
    # draws (as above), agreement 0 / 0.25 / 0.35: pitch-histogram overlap 0.791 / 0.811 /
    # 0.821 (0.811 without the memory), KL 0.175 / 0.147 / 0.136 (0.147), step overlap
    # 0.868 / 0.878 / 0.877 (0.851), durations 0.943 / 0.942 / 0.936 (0.933), motif reuse
    # 0.175 / 0.184 / 0.179, distinct pitches 33.1 / 29.8 / 29.0 (29.8), notes out of key
    # 0.81 / 0.78 / 0.82 x the real share, pitch-class overlap 0.886 / 0.876 / 0.884
    # (0.867), interval overlap 0.839 / 0.836 / 0.836 (0.860). At 0.5 the durations'
    # overlap fell to 0.936 and the intervals' to 0.822 (4 draws); at 1, 0.917 and 0.796.
    agreement: float = 0.25

    def __post_init__(self):
        check_types(self, "memory ")
        if not 1 <= self.max_order <= 32:
            raise InvalidValueError(f"memory max_order must be 1-32, got {self.max_order}")
        if not 0 <= self.chord_seconds <= 0.2:
            raise InvalidValueError(f"memory chord_seconds must be 0-0.2, got {self.chord_seconds}")
        if not (self.own_weight == 0 or 1e-3 <= self.own_weight <= 1):
            # (a file keeps counts to 6 decimals: a smaller one would be written as 0)
            raise InvalidValueError(f"memory own_weight must be 0 or 0.001-1, got "
                                    f"{self.own_weight}")
        if not 0 <= self.scale <= 10:
            raise InvalidValueError(f"memory scale must be 0-10, got {self.scale}")
        if self.count_half < 0:
            raise InvalidValueError(f"memory count_half must be >= 0, got {self.count_half}")
        if not 0 <= self.timing_share <= 1:
            raise InvalidValueError(f"memory timing_share must be 0-1, got {self.timing_share}")
        if self.max_entries < 1000:
            raise InvalidValueError(f"memory max_entries must be >= 1000, got {self.max_entries}")
        if not 0 < self.gap_rate <= 1:
            raise InvalidValueError(f"memory gap_rate must be in (0, 1], got {self.gap_rate}")
        if not 0 <= self.key_weight <= 1:
            raise InvalidValueError(f"memory key_weight must be 0-1, got {self.key_weight}")
        if not 0 <= self.play_gain <= 10:
            raise InvalidValueError(f"memory play_gain must be 0-10, got {self.play_gain}")
        if not 0 <= self.rhythm_gain <= 10:
            raise InvalidValueError(f"memory rhythm_gain must be 0-10, got {self.rhythm_gain}")
        if not 0 <= self.agreement <= 4:
            raise InvalidValueError(f"memory agreement must be 0-4, got {self.agreement}")


@dataclass(frozen=True)
class MemoryGuess:
    """The memory's prediction of the next note.

    ``intervals``: probabilities of the 49 interval classes (0-48) from ``reference``,
    the pitch the next interval is counted from; ``steps`` and ``durations``: of the
    step and duration classes; ``order``: the longest context seen before (symbols),
    ``count``: how often; ``typical_gap``: seconds a class's ratio multiplies;
    ``floor``: the share of the uniform floor in them (the escapes to no context at
    all); ``heard``: the interval probabilities without it.
    """

    intervals: np.ndarray
    steps: np.ndarray
    durations: np.ndarray
    reference: int
    order: int
    count: float
    typical_gap: float
    floor: float = 0.0
    heard: np.ndarray | None = None

    def pitch_probabilities(self, vocab: int = VOCAB_SIZE, heard: bool = False) -> np.ndarray:
        """Return the guess as probabilities of the ``vocab`` pitches (sums to 1); with
        ``heard``, of the counts alone, without the uniform ``floor``."""
        out = np.zeros(vocab)
        lo = self.reference - INTERVAL_RANGE
        a, b = max(lo, 0), min(lo + 2 * INTERVAL_RANGE + 1, vocab)
        out[a:b] = (self.heard if heard else self.intervals)[a - lo:b - lo]
        total = out.sum()
        return out / total if total > 0 else np.full(vocab, 1.0 / vocab)


class PhraseMemory:
    """The session's notes as counts of what followed each context; see the module doc."""

    def __init__(self, config: MemoryConfig | None = None):
        self.config = config or MemoryConfig()
        # A context is an int, its symbols as base-64 digits (symbol + 1, the newest
        # lowest), so its suffixes are masks of it and no tuple is made a note. The table
        # gives each context's row: its counts, their total and its marginals. Ints and
        # dicts of numbers are not tracked by Python's garbage collector; lists of counts
        # per context made a collection every ~80 notes (bench engine), in the memory's p99.
        # Its order is recency (least recently seen first): an OrderedDict moves a context
        # to the end and gives up the oldest in constant time.
        self._table: OrderedDict[int, int] = OrderedDict()
        self._masks = [(1 << _BITS * m) - 1 for m in range(self.config.max_order + 1)]
        self._entries = 0  # (context, code) counts in the table
        self._new_rows()
        self.notes = {"player": 0, "own": 0}
        self.typical_gap = START_GAP
        self._key_cache: dict[bytes, np.ndarray] = {}
        self._chord_bins_cache: tuple = (None, 0)  # time-bin values, bins under chord_seconds
        #: Moves whenever what a memory file holds may have changed (a note learned, a clear).
        self.changes = 0
        self.reset_context()

    # -- learning ---------------------------------------------------------------------
    def reset_context(self) -> None:
        """Start a new piece or session: forget the notes just before, keep the counts."""
        self._context = 0  # interval classes of the last learned notes (see __init__)
        self._bins_cache: tuple = (None, None, None)  # gap, bins -> step and duration bins
        self._last_pitch: int | None = None
        self._group: list[tuple[int, float, float]] = []  # open chord: pitch, step, duration
        self._group_weight = 1.0
        self._log_gap = math.log(self.typical_gap)
        self._found_cache: tuple | None = None  # see _found

    def clear(self) -> None:
        """Forget everything."""
        self._table.clear()
        self._entries = 0
        self._new_rows()
        self.notes = {"player": 0, "own": 0}
        self.typical_gap = START_GAP
        self.changes += 1
        self.reset_context()

    def __len__(self) -> int:
        """How many contexts the memory holds."""
        return len(self._table)

    @property
    def entries(self) -> int:
        """(context, next note) counts held: at most ``max_entries``."""
        return self._entries

    def learn(self, pitch: int, step: float, duration: float, own: bool = False) -> None:
        """Take in one note (pitch 0-127, seconds since the previous onset, seconds held);
        ``own``: improv played it (counted ``own_weight``).

        The note is counted at once, after the context a guess would have used: the notes
        before it, with the chord it joins (if any) in pitch order. So a chord's notes
        leave the same context for the notes after it whatever order they came in."""
        cfg = self.config
        if not (0 <= pitch <= 127 and math.isfinite(step) and math.isfinite(duration)):
            raise InvalidValueError(f"memory learn: need a pitch 0-127 and a finite step and "
                                    f"duration, got {pitch!r}, {step!r}, {duration!r}")
        pitch = int(pitch)
        weight = cfg.own_weight if own else 1.0
        self.notes["own" if own else "player"] += 1
        self.changes += 1
        joins = (self._group and step < cfg.chord_seconds and len(self._group) < MAX_GROUP
                 and weight == self._group_weight)
        if not joins:
            self._close_group()
        context, reference = self._prediction_context()
        interval = NO_INTERVAL if reference is None else (
            min(max(pitch - reference, -INTERVAL_RANGE), INTERVAL_RANGE) + INTERVAL_RANGE)
        step_class = 0 if joins else self._step_class(step)
        code = ((interval * STEP_CLASSES + step_class) * DURATION_CLASSES
                + self._duration_class(duration))
        if weight > 0:  # own_weight 0: improv's notes set the context, never a count
            self._count(context, code, weight)
        if joins:
            self._group.append((pitch, 0.0, float(duration)))
        else:
            self._group = [(pitch, float(step), float(duration))]
            self._group_weight = weight
        self._found_cache = None

    def _close_group(self) -> None:
        """Fold the open group, in pitch order, into the context; the typical gap follows
        its step."""
        if not self._group:
            return
        found = self._found_cache  # the context a guess since the last note used, if any
        self._context, self._last_pitch = (found[:2] if found is not None
                                           else self._prediction_context())
        step = self._group[0][1]
        cfg = self.config
        if step >= max(cfg.chord_seconds, 1e-3):  # the typical gap follows the onsets
            self._log_gap += cfg.gap_rate * (math.log(min(step, 8.0)) - self._log_gap)
            self.typical_gap = math.exp(self._log_gap)
        self._group = []

    def _step_class(self, step: float) -> int:
        if step < self.config.chord_seconds:
            return 0
        c = round(2 * math.log2(max(step, 1e-3) / self.typical_gap)) - STEP_LOW + 1
        return min(max(c, 1), STEP_CLASSES - 1)

    def _duration_class(self, duration: float) -> int:
        c = round(2 * math.log2(max(duration, 1e-3) / self.typical_gap)) - DURATION_LOW
        return min(max(c, 0), DURATION_CLASSES - 1)

    def _new_rows(self, rows: int = 0) -> None:
        """Start an empty table of contexts with room for ``rows`` of them (at least as
        many as there can be: one a count, ``max_entries``, and those one note adds)."""
        # Each context's marginals (interval, step and duration classes of its counts) are
        # a row of one float32 array, so a guess adds up all its orders in one product.
        # (Whole and half counts are exact in float32 up to 2**23; beyond that, and for
        # other weights, a marginal is off by float32's 1e-7, as a probability nothing.)
        # Allocated once (_lazy_zeros): a row costs memory when first used, and the table
        # never grows on the note path (doubling it took 107 ms at 65 536 rows).
        rows = max(rows, self.config.max_entries + self.config.max_order + 1)
        self._marginals = _lazy_zeros(rows, _MARGINALS)
        self._counts: list[dict[int, float] | None] = []  # per row used: code -> count
        self._totals: list[float] = []  # per row used: the counts' sum
        # per row used: the sum and the number of its counts of chord tones (step class 0)
        self._chord_totals: list[float] = []
        self._chord_codes: list[int] = []
        self._free: list[int] = []  # rows used and given back

    def _take_row(self) -> int:
        if self._free:
            row = self._free.pop()
            self._counts[row] = {}
        else:  # a row never used
            row = len(self._counts)
            self._counts.append({})
            self._totals.append(0.0)
            self._chord_totals.append(0.0)
            self._chord_codes.append(0)
        return row

    def _count(self, context: int, code: int, weight: float) -> None:
        """Count ``code`` after each suffix of ``context``."""
        table, all_counts, totals = self._table, self._counts, self._totals
        chord = _CODE_CHORD[code]
        chord_totals, chord_codes = self._chord_totals, self._chord_codes
        move = table.move_to_end
        rows = []
        for mask in self._masks[_length(context)::-1]:  # longest first: () is the most recent
            key = context & mask
            row = table.get(key)
            if row is None:
                row = table[key] = self._take_row()
            else:
                move(key)  # the order is recency
            totals[row] += weight
            if chord:
                chord_totals[row] += weight
            counts = all_counts[row]
            old = counts.get(code)
            if old is None:
                self._entries += 1
                counts[code] = weight
                if chord:
                    chord_codes[row] += 1
                if len(counts) > MAX_CODES:
                    self._prune(row)
                    continue
            else:
                counts[code] = old + weight
            rows.append(row)
        i, j, k = _CODE_PLACES[code]
        marginals = self._marginals
        for row in rows:  # three scalar adds a row: 30% less than one fancy-indexed add
            place = marginals[row]
            place[i] += weight
            place[j] += weight
            place[k] += weight
        if self._entries > self.config.max_entries:
            # Only as many as this note went over: forgetting a tenth at once (the rule
            # until 2026-11-30) held the live loop 4-18 ms every ~2,800 notes once a
            # session of new material had filled the memory (random notes, max_entries
            # 100 000; mostly freeing ~6,700 contexts' dicts). Now a note forgets one or
            # two contexts.
            self._forget(self.config.max_entries)

    def _prune(self, row: int) -> None:
        """Keep the commoner half of a context's next notes."""
        counts = self._counts[row]
        keep = sorted(counts.items(), key=lambda item: -item[1])[:MAX_CODES // 2]
        self._entries -= len(counts) - len(keep)
        self._counts[row] = counts = dict(keep)
        self._set_totals(row)
        self._marginals[row] = _dense(counts)

    def _set_totals(self, row: int) -> None:
        """Set a row's sums and number of counts (all, and chord tones') from its counts."""
        counts = self._counts[row]
        chord = [c for code, c in counts.items() if _CODE_CHORD[code]]
        self._totals[row] = sum(counts.values())
        self._chord_totals[row] = sum(chord)
        self._chord_codes[row] = len(chord)

    def _forget(self, entries: int) -> None:
        """Drop the least recently seen contexts (the table's first) until at most
        ``entries`` counts are left: as a note is learned, one or two."""
        table, all_counts, marginals = self._table, self._counts, self._marginals
        self._found_cache = None  # it may name a row given back here
        while self._entries > entries:
            row = table.popitem(last=False)[1]
            self._entries -= len(all_counts[row])
            all_counts[row] = None
            self._totals[row] = self._chord_totals[row] = 0.0
            self._chord_codes[row] = 0
            marginals[row] = 0.0
            self._free.append(row)

    # -- predicting -------------------------------------------------------------------
    def _prediction_context(self) -> tuple[int, int | None]:
        """The symbols before the next note (the open group in pitch order) and the pitch
        its interval counts from."""
        context, last = self._context, self._last_pitch
        if self._group:
            for pitch, _, _ in sorted(self._group):
                symbol = NO_INTERVAL if last is None else (
                    min(max(pitch - last, -INTERVAL_RANGE), INTERVAL_RANGE) + INTERVAL_RANGE)
                context = (context << _BITS | symbol + 1) & self._masks[-1]
                last = pitch
        return context, last

    def _found(self) -> tuple[int, int | None, list[tuple[int, int]]]:
        """The prediction context, the pitch its interval counts from, and the rows of the
        context's suffixes that the table holds, longest first, as (order, row): kept until
        a note is learned or the context starts anew, as a note's rhythm mix, pitch mix and
        learning all start from them (p50 2.0 us a note less in the memory's bench row)."""
        found = self._found_cache
        if found is None:
            context, reference = self._prediction_context()
            table, masks = self._table, self._masks
            rows = []
            for m in range(_length(context), -1, -1):  # longest context first
                row = table.get(context & masks[m])
                if row is not None:
                    rows.append((m, row))
            found = self._found_cache = context, reference, rows
        return found

    def _accumulate(self, chord: bool | None = None) -> tuple | None:
        """Blend every order's counts: return the marginals (see ``_MARGINALS``: without
        the uniform floor), the longest order seen, its count, the reference pitch and the
        floor's share; None before any note. ``chord``: of the next notes that were chord
        tones (True) or not (False) alone, as if the others had never been counted; only
        that interval block is then such a blend (the other blocks hold every count of the
        rows, at those shares: not a distribution)."""
        _, reference, found = self._found()
        if reference is None:
            return None
        all_counts, totals = self._counts, self._totals
        chord_totals, chord_codes = self._chord_totals, self._chord_codes
        rows: list[int] = []
        shares: list[float] = []
        remaining = 1.0  # probability mass not yet given to a longer context
        order, count = 0, 0.0
        for m, row in found:  # longest context first
            # PPM method C: the escape counts as many as the symbols
            if chord is None:
                total, escape = totals[row], len(all_counts[row])
            elif chord:
                total, escape = chord_totals[row], chord_codes[row]
            else:
                total = totals[row] - chord_totals[row]
                escape = len(all_counts[row]) - chord_codes[row]
            if not escape:  # nothing of the kind asked for after this context
                continue
            if not order and m:
                order, count = m, total
            rows.append(row)
            shares.append(remaining / (total + escape))
            remaining *= escape / (total + escape)
        # take: 0.7 us for these few rows, against 1.7 to index with the list (measured)
        acc = np.dot(shares, self._marginals.take(rows, 0)) if rows else np.zeros(_MARGINALS)
        return acc, order, count, reference, remaining

    def keep_warm(self) -> None:
        """Read what a guess after the notes so far reads, changing nothing the memory knows
        (it keeps the rows it found, as a guess does): see
        :meth:`improv.improviser.Improviser.keep_warm`: as improv plays, the guess for
        a note that is not a chord tone (the commoner kind), which reads every row list."""
        self._accumulate(False)

    def guess(self) -> MemoryGuess | None:
        """Return the memory's prediction of the next note (None: no note heard yet)."""
        blend = self._accumulate()
        if blend is None:
            return None
        acc, order, count, reference, floor = blend
        acc = np.concatenate([_intervals(acc, None), acc[_TIMING:]])  # as _UNIFORM
        heard = acc[:NO_INTERVAL].copy()
        acc += floor * _UNIFORM
        iv = acc[:NO_INTERVAL]  # a next note's interval is never "none": that mass goes
        steps = acc[INTERVALS:INTERVALS + STEP_CLASSES]
        durs = acc[INTERVALS + STEP_CLASSES:]
        return MemoryGuess(iv / iv.sum(), steps / steps.sum(), durs / durs.sum(), reference,
                           order, count, self.typical_gap, floor,
                           heard / heard.sum() if heard.sum() > 0 else iv / iv.sum())

    def confidence(self, guess: MemoryGuess) -> float:
        """How much the guess is to be trusted: ``scale`` times the longest context's share
        of the longest possible, times ``count / (count + count_half)``."""
        n = guess.count
        if n <= 0:
            return 0.0
        cfg = self.config
        return cfg.scale * guess.order / cfg.max_order * n / (n + cfg.count_half)

    def mix(self, prediction: Prediction, strength: float, key: np.ndarray | None = None,
            step: float | None = None) -> Prediction:
        """Return ``prediction`` with the memory's guess mixed in at
        ``min(1, 2 * strength * confidence)``: pitch, and step and duration (times
        ``timing_share``) for a model with time bins. Logits come back as log
        probabilities (new arrays; ``prediction`` is left as it is). With ``key`` (a (12,)
        bool mask, :class:`improv.key.KeyTracker`) the memory's pitches outside it are
        weighted by ``1 - key_weight`` before its guess is normalised.

        ``step``: the next note's step, drawn already (as improv plays,
        :meth:`improv.sampling.Sampler.sample`): then only the pitch is mixed, with the
        memory's guess of a chord tone (a step under ``chord_seconds``) or of a note that
        is not, from those counts alone, at ``play_gain`` times the weight, its pitches
        weighted by the LSTM's probability to the power ``agreement``."""
        if strength <= 0:
            return prediction
        chord = None if step is None else step < self.config.chord_seconds
        blend = self._accumulate(chord)
        if blend is None:
            return prediction
        acc, order, count, reference, floor = blend
        if count <= 0:
            return prediction
        cfg = self.config
        lam = self._weight(strength, 1.0 if step is None else cfg.play_gain, order, count, floor)
        logits = prediction.logits
        vocab = len(logits)
        lo = reference - INTERVAL_RANGE
        a, b = max(lo, 0), min(lo + NO_INTERVAL, vocab)
        # the pitches it can guess: within two octaves of the last
        q = _intervals(acc, chord)[a - lo:b - lo]
        # The model's probabilities, unnormalised, in float64 (in float32 a pitch 88 nats
        # below the likeliest is 0: where the memory offers nothing either, its log would be
        # -inf); ``window``, those the memory can guess, is a view: the mix is made in it
        # and its log written into ``out``.
        out = logits - logits[logits.argmax()]  # the max: an argmax costs a third of .max()
        model = np.exp(out, dtype=np.float64)
        window = model[a:b]
        guess = q
        if key is not None and cfg.key_weight > 0:
            guess = q * self._key_weights(key, vocab)[a:b]
        if step is not None and cfg.agreement > 0:
            # where the LSTM agrees: its probability ** agreement (the scale goes with heard)
            agree = window ** cfg.agreement
            guess *= agree  # (a new array already, or q: a slice of acc, made for this call)
        heard = float(_sum(guess))
        if not heard > 0 and guess is not q and cfg.key_weight >= 1:
            # a memory that knows only notes off the key keeps its guess rather than none
            guess = q if step is None or cfg.agreement <= 0 else q * agree
            heard = float(_sum(guess))
        if not heard > 0:  # all it heard lies beyond the model's pitches (or where the
            return prediction  # model gives them nothing)
        # log((1 - lam) * softmax + lam * guess / heard): outside the window the log-softmax
        # plus log(1 - lam), with no exp and log to go through; inside, in float64.
        total = float(_sum(model))
        out -= math.log(total) - math.log1p(-lam)
        window *= (1.0 - lam) / total
        guess *= lam / heard
        window += guess
        np.log(window, out=out[a:b])
        timing = prediction.timing_logits
        lam_t = lam * cfg.timing_share
        if timing is not None and lam_t > 0 and step is None:
            bins = timing.shape[1]
            q = np.bincount(self._time_bins(self.typical_gap, bins), acc[_TIMING:], 2 * bins)
            scale = lam_t / (1.0 - floor)  # the heard counts' step (duration) marginal sums
            timing = np.stack([_mix_row(timing[0], q[:bins], 0, scale, lam_t),  # to 1 - floor
                               _mix_row(timing[1], q[bins:], 0, scale, lam_t)])
        # the constructor, not Prediction._replace (measured as dataclasses.replace: 3 us
        # more a note)
        return Prediction(out, prediction.step, prediction.duration, timing,
                          prediction.timing_values, prediction.velocity_logits,
                          prediction.velocity_values)

    def _weight(self, strength: float, gain: float, order: int, count: float,
                floor: float) -> float:
        """The mixing weight ``lam`` (module doc) of a guess from a longest context of
        ``order`` symbols seen ``count`` times, ``gain`` times the tuned one."""
        cfg = self.config
        # The memory's uniform floor (what it does not know) is left to the LSTM, which
        # knows better than uniform: on validation, pitch cross-entropy fell from 2.781
        # to 2.779 (16 files); in --music answers (test split, temperature 0.8) pitch
        # overlap with the real continuation rose from 0.704 to 0.733.
        return (1.0 - floor) * min(MAX_WEIGHT, 2 * min(strength, 1.0) * gain * cfg.scale
                                   * order / cfg.max_order * count / (count + cfg.count_half))

    def _chord_share(self) -> tuple[float, int, float, float] | None:
        """The blend of every order's counts (as :meth:`guess`) of the chance that the next
        note is a chord tone: (that chance, the longest order seen, its count, the floor's
        share); None before any note. Sums over the rows: no array is made."""
        _, reference, found = self._found()
        if reference is None:
            return None
        all_counts, totals, chord_totals = self._counts, self._totals, self._chord_totals
        remaining, chord, heard = 1.0, 0.0, 0.0
        order, count = 0, 0.0
        for m, row in found:  # longest context first
            total, escape = totals[row], len(all_counts[row])
            if not order and m:
                order, count = m, total
            share = remaining / (total + escape)
            chord += share * chord_totals[row]
            heard += share * total
            remaining *= escape / (total + escape)
        return (chord / heard if heard > 0 else 0.0), order, count, remaining

    def mix_rhythm(self, prediction: Prediction, strength: float) -> Prediction:
        """Return ``prediction`` with the chance that its next step is a chord tone's (under
        ``chord_seconds``) mixed with the memory's, at ``rhythm_gain`` times the weight a
        pitch gets: the step bins on each side keep their shares within it (new timing
        logits; ``prediction`` is left as it is). For a model with time bins, before the
        step is drawn (then :meth:`mix` with that step, for the pitch)."""
        timing, cfg = prediction.timing_logits, self.config
        if strength <= 0 or timing is None or cfg.rhythm_gain <= 0:
            return prediction
        share = self._chord_share()
        if share is None or share[2] <= 0:
            return prediction
        memory, order, count, floor = share
        lam = self._weight(strength, cfg.rhythm_gain, order, count, floor)
        k = self._chord_bins(prediction.timing_values)  # the first k bins: chord tones
        steps = timing[0]
        p = np.exp(steps - steps[steps.argmax()])
        chord, other = float(_sum(p[:k])), float(_sum(p[k:]))
        model = chord / (chord + other)
        if not 0 < model < 1:  # the model allows only one kind: left to it
            return prediction
        want = min(max((1 - lam) * model + lam * memory, 1e-6), 1 - 1e-6)
        timing = timing.copy()
        # the chord tones' bins move against the others (a row's softmax is the same when
        # all its logits move together: one add, not two)
        timing[0, :k] += math.log(want / model) - math.log((1 - want) / (1 - model))
        return Prediction(prediction.logits, prediction.step, prediction.duration, timing,
                          prediction.timing_values, prediction.velocity_logits,
                          prediction.velocity_values)

    def _chord_bins(self, values: np.ndarray) -> int:
        """How many of a model's time bins (``values``, seconds, ascending) are chord tones'
        steps (under ``chord_seconds``), cached for the last model's values."""
        cached = self._chord_bins_cache
        if cached[0] is not values:
            cached = self._chord_bins_cache = (
                values, int(np.searchsorted(values, self.config.chord_seconds)))
        return cached[1]

    def _key_weights(self, key: np.ndarray, vocab: int) -> np.ndarray:
        """Return :func:`improv.key.pitch_weights` of ``key``, cached per key."""
        code = key.tobytes()
        weights = self._key_cache.get(code)
        if weights is None:
            weights = pitch_weights(key, self.config.key_weight, 0, vocab - 1)
            self._key_cache[code] = weights  # at most 12-choose-7 = 792 keys
        return weights

    def _time_bins(self, gap: float, bins: int) -> np.ndarray:
        """Return where each step class and each duration class goes among a model's time
        bins, as :func:`improv.timebins.to_bins` puts their times at ``gap`` (the chord
        class to bin 0); durations offset by ``bins``."""
        cached_gap, cached_bins, result = self._bins_cache
        if cached_gap == gap and cached_bins == bins:
            return result
        edges = _bin_edges(bins)
        steps = np.searchsorted(edges, _STEP_RATIO * gap, side="right")
        steps[0] = 0
        result = np.concatenate([steps, bins + np.searchsorted(edges, _DURATION_RATIO * gap,
                                                               side="right")])
        self._bins_cache = gap, bins, result
        return result

    # -- files ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Return the memory as the JSON object a memory file holds (module doc)."""
        return {**self._head(),
                "contexts": [self._entry(key, row) for key, row in self._table.items()]}

    def _head(self) -> dict:
        """A memory file's fields but its contexts."""
        return {"format": FORMAT, "version": VERSION, "symbols": _symbols(self.config),
                "max_order": self.config.max_order, "typical_gap": self.typical_gap,
                "notes": dict(self.notes)}

    def _entry(self, key: int, row: int) -> list:
        """One context of a memory file: its symbols and its [code, count] pairs."""
        return [_decode(key), [[code, round(c, 6)] for code, c in self._counts[row].items()]]

    def file_text(self, chunk: int = 0):
        """Generate the text of a memory file (``json.dumps(self.to_dict())`` without
        spaces): a generator that yields after every ``chunk`` contexts (0: never) and
        returns the text, so that a live loop can spread the work over its idle turns
        (:mod:`improv.autosave`). The memory must not learn meanwhile (see :attr:`changes`;
        the table's iterator raises RuntimeError if it did)."""
        head = json.dumps(self._head(), separators=(",", ":"))
        # Joined a chunk at a time: a copy of the table's 44 000 items, or one join of all
        # their texts, held a turn for 10-17 ms (a full memory, 2026-11-30); a chunk of 100
        # contexts takes 0.5 ms (4 ms at most).
        done, part = [], []
        for i, (key, row) in enumerate(self._table.items(), 1):
            part.append(json.dumps(self._entry(key, row), separators=(",", ":")))
            if chunk and i % chunk == 0:
                done.append(",".join(part))
                part = []
                yield
        done.append(",".join(part))
        return f'{head[:-1]},"contexts":[{",".join(text for text in done if text)}]}}'

    def save(self, path: str | Path) -> None:
        """Write the memory to ``path`` atomically (readers never see half a file); OSError
        if ``path`` is no longer a file (:func:`write_memory_file`)."""
        write_memory_file(path, _finish(self.file_text()))

    @classmethod
    def from_dict(cls, data, config: MemoryConfig | None = None) -> "PhraseMemory":
        """Build a memory from a memory file's JSON object; MemoryFileError if it is not one."""
        config = config or MemoryConfig()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MemoryFileError("not an improv memory file")
        if data.get("version") != VERSION:
            raise MemoryFileError(f"memory file version {data.get('version')!r}; "
                                  f"this improv reads version {VERSION}")
        if data.get("symbols") != _symbols(config):
            raise MemoryFileError("the memory file's symbols differ from this improv's")
        order = data.get("max_order")
        if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= 32:
            raise MemoryFileError(f"bad max_order {order!r}")
        memory = cls(replace(config, max_order=order))
        gap = data.get("typical_gap")
        if not is_number(gap) or not 1e-3 <= gap <= 8.0:
            raise MemoryFileError(f"bad typical_gap {gap!r}")
        notes = data.get("notes")
        if (not isinstance(notes, dict) or set(notes) != {"player", "own"}
                or not all(isinstance(v, int) and not isinstance(v, bool)
                           and 0 <= v <= MAX_NOTES for v in notes.values())):
            raise MemoryFileError("bad note counts")
        contexts = data.get("contexts")
        if not isinstance(contexts, list):
            raise MemoryFileError("no list of contexts")
        memory._new_rows()
        table, all_counts = memory._table, memory._counts
        # Contexts come least recently seen first, each with a count at least: those before
        # the last max_entries would be forgotten at once, so they are only checked.
        skip = len(contexts) - memory.config.max_entries
        for i, item in enumerate(contexts):
            try:
                symbols, pairs = item
                counts = {}
                for code, c in pairs:
                    if (not isinstance(code, int) or isinstance(code, bool)
                            or not 0 <= code < _CODES or not is_number(c)
                            or not 0 < c <= MAX_COUNT):
                        raise ValueError
                    counts[code] = float(c)
                if (len(symbols) > order or not counts or len(counts) > MAX_CODES
                        or not all(isinstance(s, int) and not isinstance(s, bool)
                                   and 0 <= s < INTERVALS for s in symbols)):
                    raise ValueError
            except (TypeError, ValueError):
                raise MemoryFileError(f"context {i} is damaged") from None
            if i < skip:
                continue
            key = _encode(symbols)
            if key in table:
                raise MemoryFileError(f"context {i} is damaged")
            row = table[key] = memory._take_row()
            all_counts[row] = counts
            memory._set_totals(row)
            memory._entries += len(counts)
        memory.notes = dict(notes)
        memory.typical_gap = float(gap)
        memory.reset_context()
        if table:
            rows = np.concatenate([np.full(len(all_counts[row]), row) for row in table.values()])
            codes = np.concatenate([list(all_counts[row]) for row in table.values()])
            counts = np.concatenate([list(all_counts[row].values()) for row in table.values()])
            np.add.at(memory._marginals, (rows[:, None], _CODE_INDEX[codes]), counts[:, None])
        if memory._entries > memory.config.max_entries:
            memory._forget(memory.config.max_entries)
        return memory

    @classmethod
    def load(cls, path: str | Path, config: MemoryConfig | None = None) -> "PhraseMemory":
        """Read a memory file; MemoryFileError (one line) if it is missing or damaged,
        NotMemoryFileError if it is no memory file at all. An empty file is an empty
        memory (``touch FILE`` makes one)."""
        path = Path(path)
        if path.exists() and not path.is_file():  # a folder; a FIFO, whose read would hang
            raise MemoryFileError(f"{path}: not a file")
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise MemoryFileError(f"{path}: {size} bytes, more than a memory file holds")
            raw = path.read_bytes()
        except FileNotFoundError:
            raise MemoryFileError(f"{path}: no such file") from None
        except OSError as e:
            raise MemoryFileError(f"{path}: cannot be read ({e.strerror or e})") from None
        if not raw.strip():
            return cls(config)
        not_memory = NotMemoryFileError(f"{path}: not an improv memory file (it does not "
                                        f"begin {{\"format\": \"{FORMAT}\"); left as it is")
        try:
            # (ValueError: JSONDecodeError, and an integer of over 4300 digits)
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            # Damaged, or not a memory file at all (a MIDI file, a text that names the
            # format): a memory file begins with its format, written first and atomically.
            if not _HEAD.match(raw):
                raise not_memory from None
            raise MemoryFileError(f"{path}: damaged memory file ({_first_line(e)})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise not_memory
        try:
            return cls.from_dict(data, config)
        except MemoryFileError as e:
            raise MemoryFileError(f"{path}: {e}") from None

    def describe(self) -> dict:
        """Return a summary: notes learned, contexts, longest context, typical gap."""
        orders = [_length(key) for key in self._table]
        return {"notes_player": self.notes["player"], "notes_own": self.notes["own"],
                "contexts": len(self._table), "counts": self._entries,
                "longest_context": max(orders, default=0),
                "typical_gap_s": round(self.typical_gap, 4),
                "max_order": self.config.max_order}


def _finish(generator):
    """Run a generator to its end; return what it returns."""
    while True:
        try:
            next(generator)
        except StopIteration as done:
            return done.value


def write_memory_file(path: str | Path, text: str) -> None:
    """Write a memory file's text atomically. A path that has become a folder, a device or
    a pipe since :func:`check_memory_file` is refused (OSError), never written into."""
    write_atomically(path, text, devices=False)


def check_memory_file(path: str | Path) -> None:
    """Refuse a memory file that could not be written: a folder, a device or a pipe, a file
    in a folder that does not exist, or one this user may not write (one line each: found
    only when the memory is written, at the end, it lost the session's learning)."""
    path = Path(path)
    if path.is_dir():
        raise MemoryFileError(f"{path}: a folder, not a memory file")
    if path.exists() and not path.is_file():
        raise MemoryFileError(f"{path}: not a file (a device, a pipe...)")
    check_outputs(path)


def open_memory(path: str | Path | None, log=print) -> PhraseMemory:
    """Return the memory kept in ``path`` (an empty one if there is no such file or no
    path). A damaged file is renamed to ``<path>.damaged`` (``.damaged.1``... if that is
    taken), one ``log`` line says so, and the memory starts empty, so the next save does not
    overwrite what could be rescued. A path that cannot be written is refused at once
    (:func:`check_memory_file`), and so is a file that is no memory file at all
    (NotMemoryFileError: a MIDI file named by mistake is left as it is)."""
    if path is None:
        return PhraseMemory()
    check_memory_file(path)
    if not Path(path).exists():
        return PhraseMemory()
    try:
        return PhraseMemory.load(path)
    except NotMemoryFileError:
        raise
    except MemoryFileError as exc:
        aside = Path(f"{path}.damaged")
        n = 1
        while aside.exists():  # one set aside before is kept too
            aside, n = Path(f"{path}.damaged.{n}"), n + 1
        try:
            os.replace(path, aside)
            kept = f"moved to {aside}"
        except OSError:
            kept = "left as it is"
        log(f"{exc}; {kept}; starting with an empty memory")
        return PhraseMemory()


def _lazy_zeros(rows: int, cols: int) -> np.ndarray:
    """A zeroed float32 array whose memory is taken a small page at a time, as rows are first
    written. NumPy's calloc'd arrays take it in the kernel's 2 MB transparent huge pages when
    those are on ("always" here): the note that first wrote into a new 2 MB of the table
    (every ~6,700 new contexts then; ~4,000 with 516 bytes a row) waited 4.7-4.9 ms for the
    kernel to zero it, in the live loop. In small pages no such stall was left (120,000
    random notes learned)."""
    try:
        buf = mmap.mmap(-1, rows * cols * 4, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    except (AttributeError, OSError, TypeError, ValueError):  # not Linux: calloc's pages
        return np.zeros((rows, cols), np.float32)
    return np.frombuffer(buf, np.float32).reshape(rows, cols)


def mix_logits(logits: np.ndarray, probs: np.ndarray, lam: float) -> np.ndarray:
    """Return ``log((1 - lam) * softmax(logits) + lam * probs)`` as float32."""
    z = logits.astype(np.float64)
    z -= z.max()
    np.exp(z, out=z)
    z *= (1.0 - lam) / z.sum()
    z += lam * probs
    with np.errstate(divide="ignore"):
        return np.log(z).astype(np.float32)


def _mix_row(logits: np.ndarray, q: np.ndarray, start: int, scale: float,
             lam: float) -> np.ndarray:
    """Return ``log((1 - lam) * softmax(logits) + scale * q)`` (a new array of the logits'
    type: float32 from the engine), ``q`` covering ``logits[start:start + len(q)]`` (0
    elsewhere).

    Outside ``q`` that is the log-softmax plus ``log(1 - lam)``, with no exp and log to go
    through, so only ``q``'s window (49 of 128 pitches) is mixed: fewer and shorter NumPy
    calls than mixing the whole row."""
    out = logits - logits[logits.argmax()]  # the max: an argmax costs a third of .max()
    out -= math.log(float(np.exp(out).sum())) - math.log1p(-lam)
    end = start + len(q)
    window = np.exp(out[start:end], dtype=np.float64)
    window += scale * q
    out[start:end] = np.log(window, out=window)
    return out


def _intervals(acc: np.ndarray, chord: bool | None) -> np.ndarray:
    """The interval marginal of a vector of the marginals (``_MARGINALS``): of chord tones
    (True), of the other notes (False) or of all (None)."""
    if chord is None:
        return acc[:INTERVALS] + acc[INTERVALS:_TIMING]
    return acc[:INTERVALS] if chord else acc[INTERVALS:_TIMING]


def _length(context: int) -> int:
    """How many symbols a context (see PhraseMemory.__init__) holds."""
    return (context.bit_length() + _BITS - 1) // _BITS


def _encode(symbols) -> int:
    """A context from its symbols, oldest first."""
    context = 0
    for symbol in symbols:
        context = context << _BITS | symbol + 1
    return context


def _decode(context: int) -> list[int]:
    """A context's symbols, oldest first."""
    symbols = []
    while context:
        symbols.append((context & _DIGIT) - 1)
        context >>= _BITS
    return symbols[::-1]


@functools.lru_cache(maxsize=8)
def _bin_edges(bins: int) -> np.ndarray:
    return bin_edges(bins)


def _dense(counts: dict[int, float]) -> np.ndarray:
    """Return the marginals of a context's counts (interval, step, duration classes)."""
    return np.bincount(_CODE_INDEX[list(counts)].ravel(), np.repeat(list(counts.values()), 3),
                       _MARGINALS)


def _symbols(config: MemoryConfig) -> dict:
    return {"intervals": INTERVAL_RANGE, "step_classes": STEP_CLASSES,
            "duration_classes": DURATION_CLASSES, "chord_seconds": config.chord_seconds}


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
