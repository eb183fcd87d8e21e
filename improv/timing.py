"""The improviser's sense of time: the ``[time]`` settings and the beat clock it follows.

:class:`TimeKeeper` owns the :class:`~improv.beatclock.BeatClock` of a live session. The
improviser hands it every MIDI clock message (``clock``, ``start``, ``stop``, ``continue``,
``songpos``: :data:`CLOCK_TYPES`) and every note-on of the player; it says which tempo is in
use and where (:meth:`TimeKeeper.timeline`), and shapes the onsets of improv's notes, kept in
beats, with the quantizer of the settings (:meth:`TimeKeeper.shape`).

Which sources count: MIDI clock, then a fixed tempo (``tempo``), then, only with
``onsets = true``, the tempo estimated from the player's onsets. The onsets are off by
default: the tracker's estimate misses the issue's 4% on some real performances (see
:mod:`improv.tempo`), and an answer put on a wrong beat is worse than one a ``gap`` after the
call (the behaviour without any tempo, kept as it was). The onsets still give a fixed
tempo's phase (the answer lands on the call's beat).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import mido

from improv.beatclock import (
    MAX_BPM,
    MIN_BPM,
    BeatClock,
    ClockConfig,
    ClockEvent,
    Meter,
    Source,
    Timeline,
    Transport,
)
from improv.checks import check_range, check_types
from improv.errors import InvalidValueError
from improv.flags import flag
from improv.quantize import Grid, Quantizer

#: Where an answer starts when a tempo is known: the next beat, the next bar line, or at once.
ANSWER_ON = ("beat", "bar", "now")
#: mido's names of the messages :meth:`TimeKeeper.midi` takes (0xF8, 0xFA, 0xFC, 0xFB, 0xF2).
CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue", "songpos"})
#: What the engine needs between the end of a call and an answer's first note: the first
#: draw and the hand-over to the scheduler. Measured with ``improv bench live`` (end-of-call
#: control to the first answer note): p99 4-10 ms on the shared 2-core machine; so an
#: answer never starts on a beat closer than this (it takes the following one).
ENGINE_LEAD = 0.015
#: With nothing new heard, the timeline is read again this often: a clock that stops
#: sending goes absent after BeatClock's ``clock_timeout`` (0.5 s), and the source changes.
REFRESH = 0.05


@dataclass(frozen=True)
class TimeSettings:
    """How improv keeps time (the ``[time]`` section of the config file; flags by name)."""

    tempo: float = flag(0.0, "a fixed tempo, 20-400 bpm (a MIDI clock wins; 0: none)",
                        metavar="BPM")
    onsets: bool = flag(False, "without a clock or --tempo, follow the tempo of the player's "
                        "onsets")
    answer_on: str = flag("beat", "with a tempo, where an answer starts: the next beat, bar "
                          "line, or at once", choices=ANSWER_ON)
    quantize: str = flag("", "grid of improv's onsets with a tempo: 1/8, 1/16, 1/12 "
                         "(triplets)...; none when not given", metavar="GRID")
    quantize_strength: float = flag(1.0, "how far each onset moves to the grid",
                                    metavar="0..1")
    swing: float = flag(0.0, "delay the grid's off-steps (1: triplet shuffle)", metavar="0..1")
    meter: str = flag("4/4", "time signature for --answer-on bar and the metronome's accent")
    clock_out: bool = flag(False, "send MIDI clock (and start/stop) on improv's output at the "
                           "tempo in use, for a drum machine or DAW to follow")
    metronome: bool = flag(False, "click every beat at the tempo in use, on MIDI channel 10")

    def __post_init__(self) -> None:
        check_types(self, "time.")
        if self.tempo != 0:
            check_range("time.tempo", self.tempo, MIN_BPM, MAX_BPM)
        if self.answer_on not in ANSWER_ON:
            raise InvalidValueError(f"time.answer_on must be one of {', '.join(ANSWER_ON)}, "
                                    f"got {self.answer_on!r}")
        check_range("time.quantize_strength", self.quantize_strength, 0, 1)
        check_range("time.swing", self.swing, 0, 1)
        try:
            self.quantizer()
            self.meter_value()
        except ValueError as exc:
            raise InvalidValueError(f"time: {exc}") from None

    def quantizer(self) -> Quantizer | None:
        """The quantizer of these settings, or None without a grid."""
        if not self.quantize:
            if self.swing:
                raise ValueError("swing needs a grid (quantize = \"1/16\" ...)")
            return None
        return Quantizer(Grid.parse(self.quantize), self.quantize_strength, self.swing)

    def meter_value(self) -> Meter:
        return Meter.parse(self.meter)


class TimeKeeper:
    """The beat clock of a live session and the settings that use it (one thread only)."""

    def __init__(self, settings: TimeSettings | None = None, now: float = 0.0) -> None:
        self.settings = settings or TimeSettings()
        self.beat = BeatClock(ClockConfig(meter=self.settings.meter_value()))
        if self.settings.tempo:
            self.beat.set_tempo(self.settings.tempo, now)
        self.quantizer = self.settings.quantizer()
        self.clock_messages = 0  # MIDI clock messages heard (not the player's input)
        self._dirty = True
        self._next_refresh = -math.inf
        self._source = Source.NONE
        self._renumbered = False

    # -- inputs -------------------------------------------------------------------------
    def midi(self, msg: mido.Message, t: float) -> ClockEvent | None:
        """A clock message (:data:`CLOCK_TYPES`) arrived at ``t``; return a transport change."""
        self.clock_messages += 1
        self._dirty = True
        event = self.beat.midi(msg.bytes(), t)
        if event is not None and event.kind != "stop":
            self._renumbered = True  # start, continue, a song position: beats count afresh
        return event

    def onset(self, t: float, velocity: int) -> None:
        """The player's note-on at ``t`` (velocity 64 weighs 1)."""
        self.beat.onset(t, velocity / 64)
        self._dirty = True

    def set_tempo(self, bpm: float | None, now: float) -> None:
        """Fix the tempo (bpm), or None to follow the clock or the onsets again."""
        self.beat.set_tempo(bpm, now)
        self.settings = replace(self.settings, tempo=float(bpm or 0.0))
        self._dirty = True

    def update(self, **changes) -> TimeSettings:
        """Change settings (a control moved); the quantizer follows. Raises ValueError."""
        settings = replace(self.settings, **changes)
        self.settings, self.quantizer = settings, settings.quantizer()
        return settings

    # -- state --------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """The MIDI clock's transport is stopped (continue mode pauses until start)."""
        return self.beat.transport is Transport.STOPPED

    def halted(self, now: float) -> bool:
        """The MIDI clock that gives the tempo has its transport stopped (not a clock that
        went away: then a fixed tempo, say, goes on)."""
        return self.stopped and self.beat.clock_present(now)

    def source(self, now: float) -> Source:
        """The source of the tempo in use (the onsets only when the settings say so)."""
        if self.beat.clock_present(now):
            return Source.CLOCK
        if self.beat.fixed_tempo is not None:
            return Source.FIXED
        if self.settings.onsets and self.beat.source(now) is Source.ONSETS:
            return Source.ONSETS
        return Source.NONE

    def timeline(self, now: float) -> Timeline | None:
        """The seconds-to-beats map in use, or None without a tempo."""
        return None if self.source(now) is Source.NONE else self.beat.timeline(now)

    def due(self, now: float) -> bool:
        """Whether the timeline may have moved since :meth:`refresh` last read it."""
        return self._dirty or now >= self._next_refresh

    def refresh(self, now: float) -> tuple[Timeline | None, bool]:
        """Read the timeline now; also say whether beat numbers changed meaning since the
        last read (the source changed, or a transport start or song position came): notes
        queued in the old numbers must go."""
        source = self.source(now)
        line = None if source is Source.NONE else self.beat.timeline(now)
        renumbered = self._renumbered or source is not self._source
        self._source, self._renumbered, self._dirty = source, False, False
        self._next_refresh = now + REFRESH
        return line, renumbered

    def answer_start(self, now: float, lead: float) -> tuple[float, float] | None:
        """(time, beat) where an answer decided at ``now`` starts, ``lead`` at the earliest:
        the next beat, bar line or at once (``answer_on``); None without a tempo."""
        line = self.timeline(now)
        if line is None:
            return None
        how = self.settings.answer_on
        if how == "bar":
            return self.beat.next_bar(now, lead)
        if how == "beat":
            return self.beat.next_beat(now, lead)
        return now + lead, line.beat_at(now + lead)

    def shape(self, beat: float) -> float:
        """An onset (in beats) moved towards the grid, if one is set."""
        return beat if self.quantizer is None else float(self.quantizer.apply(beat))

    def status(self, now: float) -> tuple[float | None, str, str]:
        """(bpm or None, source, the status line's text) of the tempo in use."""
        source = self.source(now)
        if source is Source.NONE:
            return None, source.value, ""
        return self.beat.tempo(now), source.value, self.beat.status(now)
