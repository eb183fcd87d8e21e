"""The beat clock: tempo and beat phase from MIDI clock, a fixed tempo, or the player's onsets.

One :class:`BeatClock` answers "what beat is it at time t" and "when is beat b" for the
scheduler, from the first source that is available, in this order of precedence:

1. **MIDI clock** at the input (24 pulses per quarter note, ``0xF8``; start ``0xFA``, continue
   ``0xFB``, stop ``0xFC``, song position pointer ``0xF2``). The tempo is a least-squares line
   through the last ``pulse_window`` pulses (default 36, 1.5 beats). Measured in
   ``improv.tempo_eval`` with USB-like jitter of +-4 ms a pulse (19% of a pulse at 120 bpm):
   a window of 24 pulses wanders up to 1.0% (so it can leave the 1% band), 36 up to 0.57%
   (std 0.17%) and follows 120 -> 90 bpm to within 1% after 1.33 beats; 48 is smoother
   still but needs 1.75 beats, too close to the issue's limit of 2. The beat position counts
   pulses from start (or from the song position pointer), so bars follow the DAW's; pulses
   lost on the way in are counted too (:class:`PulseSmoother` numbers them by time). The clock
   is present while pulses keep coming (``clock_timeout``); a DAW that stops its transport
   often keeps sending pulses: then the clock gives the tempo and the onsets the phase.
2. **A fixed tempo** (``--tempo BPM``): the period is fixed; the phase comes from the player's
   onsets when there are enough, else from the moment the tempo was set.
3. **The player's onsets** (:class:`improv.tempo.TempoTracker`).

Everything takes an explicit ``now`` (seconds on the daemon's clock, the arrival stamps of
:mod:`improv.midiin`), never reads a clock itself, so a fake clock drives it in tests.

How the daemon uses it: every input message whose status is ``0xF8``, ``0xFA``, ``0xFB``,
``0xFC`` or ``0xF2`` goes to :meth:`BeatClock.midi` with its arrival time (python-rtmidi drops
them unless ``ignore_types(timing=False)``); a returned :class:`ClockEvent` of kind ``stop`` ends
improv's sounding notes, ``start``/``continue`` resume. Every note-on of the player goes to
:meth:`BeatClock.onset`. An answer starts at :meth:`next_beat` (or :meth:`next_bar`) with
``lead`` = what the engine needs; its notes are kept in beats and converted with
:meth:`time_at` when they are due, so a tempo change re-times the notes still to come.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

from improv.tempo import TempoEstimate, TempoTracker

#: MIDI clock pulses per quarter note.
PPQN = 24
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
#: The status bytes :meth:`BeatClock.midi` takes.
CLOCK_STATUSES = frozenset({CLOCK, START, CONTINUE, STOP, SONG_POSITION})


class Source(str, Enum):
    """Where the tempo in use comes from."""

    CLOCK = "clock"
    FIXED = "fixed"
    ONSETS = "onsets"
    NONE = "none"


class Transport(str, Enum):
    """The MIDI clock's transport: never seen, stopped or running."""

    NONE = "none"
    STOPPED = "stopped"
    RUNNING = "running"


@dataclass(frozen=True)
class Meter:
    """A time signature; the beat is a quarter note (MIDI clock's unit)."""

    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.numerator, int) or not 1 <= self.numerator <= 32:
            raise ValueError(f"Meter.numerator must be an int 1-32, got {self.numerator!r}")
        if self.denominator not in (1, 2, 4, 8, 16):
            raise ValueError(f"Meter.denominator must be 1, 2, 4, 8 or 16, got "
                             f"{self.denominator!r}")

    @classmethod
    def parse(cls, text: str) -> Meter:
        """``"3/4"`` -> ``Meter(3, 4)``."""
        try:
            num, den = (int(x) for x in text.strip().split("/"))
        except ValueError:
            raise ValueError(f"meter {text!r}: expected N/D such as 4/4 or 6/8") from None
        return cls(num, den)

    @property
    def bar_beats(self) -> float:
        """Quarter-note beats per bar (6/8: 3)."""
        return self.numerator * 4 / self.denominator

    @property
    def click_beats(self) -> float:
        """The metronome's step in quarter-note beats: a beat, or in x/8 and x/16 the
        meter's own unit (an eighth: 6/8 clicks six to a bar, not three quarters as 3/4
        does), so every bar line clicks (in 7/8 only every other one fell on a beat)."""
        return min(1.0, 4 / self.denominator)


@dataclass(frozen=True)
class ClockConfig:
    """Settings of :class:`BeatClock`."""

    #: Pulses in the least-squares tempo line (36: 1.5 beats; see the module docstring).
    pulse_window: int = 36
    #: The clock is absent when no pulse came for this long (s); 20 bpm pulses every 0.125 s.
    clock_timeout: float = 0.5
    meter: Meter = Meter()

    def __post_init__(self) -> None:
        if not isinstance(self.pulse_window, int) or not 2 <= self.pulse_window <= 4 * PPQN:
            raise ValueError(f"ClockConfig.pulse_window must be an int 2-{4 * PPQN}, got "
                             f"{self.pulse_window!r}")
        if not (isinstance(self.clock_timeout, (int, float)) and 0 < self.clock_timeout <= 10):
            raise ValueError(f"ClockConfig.clock_timeout must be in (0, 10] s, got "
                             f"{self.clock_timeout!r}")
        if not isinstance(self.meter, Meter):
            raise ValueError(f"ClockConfig.meter must be a Meter, got {self.meter!r}")


@dataclass(frozen=True)
class ClockEvent:
    """A transport change: ``kind`` is "start", "stop", "continue" or "position"."""

    kind: str
    time: float
    #: Song position in beats after the event.
    beat: float


@dataclass(frozen=True)
class Timeline:
    """A linear map between seconds and beats: ``beat`` falls at ``time``."""

    time: float
    beat: float
    period: float

    def beat_at(self, t: float) -> float:
        return self.beat + (t - self.time) / self.period

    def time_at(self, beat: float) -> float:
        return self.time + (beat - self.beat) * self.period


#: The tempos improv plays at (bpm): --tempo, and a MIDI clock (one outside is ignored).
MIN_BPM, MAX_BPM = 20, 400


def check_bpm(bpm: float, name: str = "tempo") -> float:
    """Return ``bpm`` as a float if it is a tempo improv can play (20-400), else raise."""
    if (isinstance(bpm, bool) or not isinstance(bpm, (int, float))
            or not MIN_BPM <= bpm <= MAX_BPM):
        raise ValueError(f"{name} must be {MIN_BPM}-{MAX_BPM} bpm, got {bpm!r}")
    return float(bpm)


class PulseSmoother:
    """Least-squares period and phase of the last ``window`` clock pulses, numbered by time.

    A JACK client that misses a cycle loses that cycle's messages. Measured with
    ``improv bench clock`` on the loaded 2-core machine here: improv's input lost a pulse
    that the listening tap heard in about half the runs, and while pulses were numbered as
    they came, every later beat then fell a pulse (21 ms at 120 bpm) late. So a pulse that
    comes ``k`` >= 1.5 periods after the line's place for the previous one, when the
    pulses before it lay on the line, may come after ``round(k) - 1`` lost ones. The next
    :attr:`CONFIRM` pulses decide: if they all lie within :attr:`TOLERANCE` of a pulse of
    the old line, shifted by the lost ones, they were lost, and the pulses are numbered
    again; a change of tempo drifts off the old line instead, and every pulse counts.
    A pulse that comes within a quarter period of the one before is late, catching up (a
    sender that stalled sends what it owes at once, in one JACK cycle, even at one time):
    it counts, but the line takes its place on the line, not its time, and so does a gap's
    pulse that it follows (that one was late too, none was lost).

    A pulse at the very time of the one before, which came on time, is a copy of it and
    does not count, unless such pulses recur at a steady interval: then the sender bunches
    its pulses (it sends once a buffer longer than a pulse), and they and the ones taken
    for copies before all count, at their times, on a longer line (:attr:`BUNCH_WINDOW`),
    until none has come at once for ``2 * BUNCH_MAX`` pulses (a tempo change took the
    sender under its buffer rate). The first pulse after a start is never a copy. The
    other way round, a sender whose buffers are a little shorter than a pulse leaves one
    empty now and then: gaps of one pulse at a steady interval are taken back, not lost.
    Simulated for a minute at 120 bpm with 1024-frame buffers, 250 with 512 and 90 with
    2048 (48 kHz), the beat had drifted 2.8, 15.6 and 30 beats behind the sender's; now it
    stays within 0.04 beats, and within a buffer and a half where a buffer carries 3 or 4
    pulses (400 bpm with 1024, 180 with 2048, 120 with 4096); the tempo read (1st-99th
    percentile) within 0.3% in all six.

    More pulses may be lost while a gap is tested (a pulse as many periods after the one
    before, nearer a later place on the old line; then :attr:`CONFIRM` pulses again):
    ``improv bench clock`` saw pulses 112 and 114 lost, and improv's beats fell 2 pulses
    late for the rest of the run.

    Measured on synthetic clocks with +-4 ms (USB) jitter, 100 runs each at 60 / 120 / 180 /
    240 bpm: 3 pulses lost anywhere in 16 beats were all counted right in 100 / 100 / 97 / 23
    runs (94 / 94 / 91 / 23 while a test took one gap; the others count as they came), two
    lost 2 pulses apart in 100 / 100 / 99 / 68 (0 before). At 120 bpm over 24 beats, 3, 8
    and 19 lost: every run right; with +-6 ms jitter 90, 88 and 71 of 100, with +-8 ms
    (0.38 pulses: a pulse alone no longer tells its place) 19, 1 and 0. 1 pulse taken as
    lost in 2,100 changes of tempo (7 pairs from 120->90 to 200->150, 300 seeds each; 4
    with +-6 ms).
    """

    #: Pulses that confirm a gap (a quarter beat; twice as many must lie on the line before
    #: it). A tempo change of 7% or more drifts 0.4 pulses off the old line within them.
    CONFIRM = 6
    #: How far (in pulses) a confirming pulse may lie from its place on the old line:
    #: above USB clock jitter (+-4 ms, 0.19 pulses at 120 bpm) on both ends.
    TOLERANCE = 0.4
    #: Most pulses taken as lost in one test (a longer silence starts afresh: ``add``).
    MAX_LOST = 9
    #: Fewest and most pulses between copies (or gaps of a pulse) that recur at a steady
    #: interval and so are a sender's full (or empty) buffers: a duplicate every 487 pulses,
    #: steady, was taken for them (a red team's). A sender within 0.5% of its buffer rate
    #: (117.2 bpm at 1024 frames, 234.4 at 512) goes over 192 pulses between them and is
    #: missed: simulated for a minute there, 4-28 pulses off.
    BUNCH_MIN, BUNCH_MAX = 2, 192
    #: Pulses in the line of a bunching sender: its arrivals are a sawtooth of a buffer's
    #: height, one tooth per interval; 36 pulses read 117-122 bpm at 120 (1024 frames).
    BUNCH_WINDOW = 144

    def __init__(self, window: int = PPQN) -> None:
        self.window = window
        self._pulses: deque[tuple[int, float]] = deque(maxlen=window)  # (number, time)
        self._line: tuple[float, float] | None = None  # cached fit: (period, last time)
        # A gap under test: (number of the pulse after it, of the pulse after a gap
        # since, pulses maybe lost in all, the old line's period and its time for number 0)
        self._gap: tuple[int, int, int, float, float] | None = None
        self._realign = False
        self._arrived = -math.inf  # the previous pulse's arrival
        # The last pulses taken for copies, one [number it would have had, how many, arrival
        # of the pulse they copied] for each moment (a buffer can carry several at once)
        self._copies: deque[list] = deque()  # (those of the last 3 * BUNCH_MAX pulses)
        self._bunched = False  # pulses at once are real: the sender bunches them
        self._last_bunch = 0  # the number of the last pulse at once, bunched
        # Gaps taken for lost pulses: (number of the pulse after, pulses lost), of the last
        # 3 * BUNCH_MAX pulses; and whether they recur: a sender's empty buffers
        self._losses: deque[tuple[int, int]] = deque()
        self._sparse = False
        self._last_sparse = 0  # the number of the last pulse after an empty buffer
        self._early = 0  # pulses in a row early for their places on the line

    def reset(self) -> None:
        self._pulses = deque(maxlen=self.window)
        self._line = self._gap = None
        self._copies.clear()
        self._losses.clear()
        self._bunched, self._sparse, self._early = False, False, 0

    def realign(self) -> None:
        """The next pulse follows a transport start, continue or song position: a DAW may
        restart its pulses there, so the gap before it says nothing of lost ones."""
        self._realign, self._gap = True, None

    def add(self, t: float) -> int:
        """A pulse arrived at ``t``; return how many pulses the clock moved on: 1, or more
        when this pulse confirms that pulses before a gap were lost (or that pulses taken
        for copies were a buffer's), 0 for a copy of the pulse before, less (even below
        0) when gaps taken for lost pulses were a sender's empty buffers. A gap over 10
        pulses at the current rate starts afresh."""
        realign, self._realign = self._realign, False
        arrived, self._arrived = self._arrived, t
        if self._pulses:
            gap = t - arrived
            period = self.period()
            # (Pulses of one JACK cycle may carry one time: a burst, not a restart.)
            if gap < 0 or (period is not None and gap > 10 * period):
                self.reset()
            elif self._sparse:
                if period is not None and gap >= 1.5 * period:  # another empty buffer
                    self._last_sparse = self._pulses[-1][0] + 1
            elif (self._gap is None and not realign and period is not None
                  and len(self._pulses) >= 2 * self.CONFIRM):
                last = self._pulses[-1][0]
                zero = self.last_time() - last * period  # the line's time of number 0
                k = (t - zero) / period - last
                if k >= 1.5 and self._on_line(list(self._pulses)[-2 * self.CONFIRM:], zero, period):
                    self._gap = (last + 1, last + 1, round(k) - 1, period, zero)
        number = self._pulses[-1][0] + 1 if self._pulses else 0
        period = self.period() if len(self._pulses) >= 2 * self.CONFIRM else None
        owed = 0  # pulses taken for copies before, found real
        if period is not None and t - arrived < 0.25 * period:
            if (t - arrived < 0.05 * period and arrived - self.last_time() < 0.5 * period
                    and not (self._gap is not None and number - 1 in self._gap[:2])
                    and not self._bunched and not realign):
                # (Not the first pulse after a start: a DAW that restarts its pulses there
                # may send it just after its last free-running one: a pulse of the song.)
                # At once after a pulse that came on time: a copy of it (the tap of `bench
                # clock` heard a pulse twice, 6 us apart, between pulses on time: a JACK
                # client that misses a cycle can get its events twice). It does not count,
                # unless such "copies" recur at a steady interval: a sender that delivers
                # its pulses once a buffer longer than a pulse (a DAW's 1024 frames at 120
                # bpm: two pulses share one buffer in 42) sends two at once that often.
                # Dropped, they read 120 bpm as 117.2 and the bars drifted (a red team's).
                owed = self._recurring(number, arrived)
                if not owed:
                    self._arrived = arrived
                    return 0
                self._bunched, self._gap, self._last_bunch = True, None, number
                dropped = list(self._copies)
                self._pulses = deque(((n + sum(k for c, k, _ in dropped if n >= c), t0)
                                      for n, t0 in self._pulses),
                                     maxlen=max(self.window, self.BUNCH_WINDOW))
                number += owed
                self._line = None
            # Early, not late (its place on the line still to come), 3 pulses running: a
            # clock over 4 times faster. Taken for late ones catching up, a jump from 7 to
            # 120 bpm kept the pulses on the old line for good. The line starts afresh. (A
            # pulse at the very moment of the one before says nothing: a buffer's.)
            if t - arrived >= 0.05 * period:
                early = self.last_time() + period > t + 0.5 * period
                self._early = self._early + 1 if early else 0
            if self._early >= 3:
                self.reset()
                self._pulses.append((0, t))
                return 1
            # Too soon: a late pulse catching up (a burst of them can share one time). It
            # counts, but the line takes its place on the line, not its time; so does the
            # pulse after the gap, which came late too (no pulse was lost).
            if self._gap is not None and number - 1 in self._gap[:2]:
                self._gap = None
                self._pulses.pop()
                self._line = None
                self._pulses.append((number - 1, self.last_time() + self.period()))
                self._line = None
            if self._bunched and t - arrived < 0.05 * period:
                self._last_bunch = number
            else:
                t = self.last_time() + self.period()
            # (A bunching sender's pulses keep their times: steps of a buffer each, whose
            # line has the true slope. Put on the line, 3-4 a buffer at 400 bpm, they fed
            # the line's own period back into it: it read 134-420 bpm.)
        else:
            self._early = 0
        if self._sparse and number - self._last_sparse > 2 * self.BUNCH_MAX:
            self._sparse = False  # no empty buffer for that long: a plain clock's rules
            self._pulses = deque(self._pulses, maxlen=self.window)
        if self._bunched and number - self._last_bunch > 2 * self.BUNCH_MAX:
            # No pulses at one moment for that long: the sender no longer bunches (a
            # tempo change took it under its buffer rate). The line and the copy rule of
            # a plain clock again.
            self._bunched = False
            self._pulses = deque(self._pulses, maxlen=self.window)
            self._copies.clear()
        self._pulses.append((number, t))
        self._line = None
        return 1 + owed + self._test_gap()

    def _recurring(self, number: int, arrived: float) -> int:
        """A pulse at the very moment of the one before (which arrived at ``arrived``), to
        be numbered ``number``: return how many pulses taken for copies before were real
        (such moments recur at a steady interval, :attr:`BUNCH_MIN` pulses or more, within
        2), else 0 and keep it in mind."""
        copies = self._copies
        if copies and copies[-1][2] == arrived:  # another at that moment (a buffer of 3+)
            copies[-1][1] += 1
            return 0
        while copies and number - copies[0][0] > 3 * self.BUNCH_MAX:
            copies.popleft()  # long ago: a JACK duplicate's, if any
        if len(copies) >= 2:
            (first, k1, _), (second, k2, _) = copies[-2], copies[-1]
            if self._steady(second - first + k1, number - second + k2):  # pulses sent
                # All those kept were real: while the line was still finding the
                # sender's, some pairs escaped the rule and spoilt the interval (152 bpm
                # at 1024 frames ended 5.7 pulses behind when only the last two counted)
                owed = sum(k for _, k, _ in copies)
                copies.append([number, 0, arrived])  # (this one counts)
                return owed
        copies.append([number, 1, arrived])
        return 0

    def _test_gap(self) -> int:
        """Test the newest pulse against a gap under test; once its confirming pulses came,
        decide: return the pulses lost."""
        if self._gap is None:
            return 0
        start, first, lost, period, zero = self._gap
        number, t = self._pulses[-1]
        shift = (t - zero) / period - number  # how many pulses off the old line it lies
        more = round(shift - lost)
        if more:
            # More pulses may be lost while the gap is tested (seen: pulses 112 and 114
            # lost by the tap and improv alike): a pulse nearer a later place on the old
            # line, as many periods after the one before. The pulses after it must then
            # confirm anew, which a change of tempo never does: it drifts off the line (at
            # half the tempo every pulse comes a place further, until MAX_LOST).
            if (more > 0 and lost + more <= self.MAX_LOST
                    and t - self._pulses[-2][1] >= (more + 0.4) * period):
                first, lost = number, lost + more
                self._gap = start, first, lost, period, zero
            else:
                self._gap = None
                return 0
        if number - first + 1 < self.CONFIRM:
            return 0  # not all come yet
        self._gap = None
        after = list(self._pulses)[-self.CONFIRM:]
        if not self._on_line(after, zero, period, lost):
            return 0
        since = [(n, t) for n, t in self._pulses if n >= start]
        for _ in since:  # renumber the pulses since the gap: each to its place on the line
            self._pulses.pop()
        self._pulses.extend((round((t - zero) / period), t) for _, t in since)
        self._line = None
        return lost - self._empty_buffers(start + lost, lost)

    def _steady(self, one: int, two: int) -> bool:
        """Whether two intervals (pulses) between full or empty buffers are a sender's
        steady one: :attr:`BUNCH_MIN`-:attr:`BUNCH_MAX` pulses, within 2 of each other."""
        return (self.BUNCH_MIN <= min(one, two) and max(one, two) <= self.BUNCH_MAX
                and abs(two - one) <= 2)

    def _empty_buffers(self, after: int, lost: int) -> int:
        """``lost`` pulses were just taken as lost before pulse ``after``. If such gaps of
        one pulse recur at a steady interval (:attr:`BUNCH_MIN`-:attr:`BUNCH_MAX` pulses,
        within 2), they are a sender's empty buffers, not pulses lost: it sends a buffer at
        a time, a little shorter than a pulse (at 1024 frames and 116 bpm one buffer in 50
        carries none, and improv ran 19 pulses ahead in 40 s; at 512 and 228 bpm, 101).
        Return how many pulses to take back (all taken as lost of late), else 0."""
        losses = self._losses
        while losses and after - losses[0][0] > 3 * self.BUNCH_MAX:
            losses.popleft()
        losses.append((after, lost))
        if len(losses) < 3 or any(k != 1 for _, k in list(losses)[-3:]):
            return 0
        (a, _), (b, _), (c, _) = list(losses)[-3:]
        if not self._steady(b - a, c - b):
            return 0
        back = sum(k for _, k in losses)
        self._pulses = deque(((n - sum(k for s, k in losses if n >= s), t)
                              for n, t in self._pulses),
                             maxlen=max(self.window, self.BUNCH_WINDOW))
        losses.clear()
        self._sparse, self._last_sparse, self._line = True, self._pulses[-1][0], None
        return back

    def _on_line(self, pulses, zero: float, period: float, shift: int = 0) -> bool:
        """Whether each (number, time) of ``pulses`` lies within :attr:`TOLERANCE` of
        number + ``shift`` on the line through ``zero`` with ``period``."""
        return all(abs((t - zero) / period - (n + shift)) <= self.TOLERANCE for n, t in pulses)

    @property
    def testing_gap(self) -> bool:
        """A gap is under test: the next pulses may still show pulses lost before it."""
        return self._gap is not None

    def __len__(self) -> int:
        return len(self._pulses)

    def _fit(self) -> tuple[float, float] | None:
        if self._line is None and len(self._pulses) >= 2:
            n = len(self._pulses)
            xm = sum(x for x, _ in self._pulses) / n
            ym = sum(y for _, y in self._pulses) / n
            sxx = sum((x - xm) ** 2 for x, _ in self._pulses)
            sxy = sum((x - xm) * (y - ym) for x, y in self._pulses)
            slope = sxy / sxx
            self._line = slope, ym + slope * (self._pulses[-1][0] - xm)
        return self._line

    def period(self) -> float | None:
        """Seconds per pulse, or None before two pulses."""
        fit = self._fit()
        return None if fit is None or fit[0] <= 0 else fit[0]

    def last_time(self) -> float | None:
        """The smoothed time of the latest pulse (the line's value there)."""
        fit = self._fit()
        return None if fit is None else fit[1]


class BeatClock:
    """Tempo and beat phase from MIDI clock, a fixed tempo or the player's onsets."""

    def __init__(self, config: ClockConfig | None = None, tempo: float | None = None,
                 tracker: TempoTracker | None = None) -> None:
        self.config = config or ClockConfig()
        self.tracker = tracker or TempoTracker()
        self._smoother = PulseSmoother(self.config.pulse_window)
        self._fixed: float | None = None
        self._fixed_since = 0.0
        self._last_pulse: float | None = None
        self._transport = Transport.NONE
        self._position = 0  # song position in pulses of the latest pulse (or the next one)
        self._pending = True  # the next pulse is at _position (after start/continue/SPP)
        self._gap_at_stop = False  # a stop came while a gap ran: its lost pulses still count
        self._in_range = False  # the pulses' tempo is one improv plays (_pulse)
        self._onsets = 0
        self._cache: tuple[tuple[int, float | None], TempoEstimate | None] | None = None
        self._free: Timeline | None = None  # the last timeline from onsets or a fixed tempo
        self._bar_offset = 0.0
        if tempo is not None:
            self.set_tempo(tempo, 0.0)

    # -- inputs ---------------------------------------------------------------------------

    def set_tempo(self, bpm: float | None, now: float) -> None:
        """Fix the tempo (``--tempo``, a CC), or None to go back to the onsets."""
        self._fixed = None if bpm is None else check_bpm(bpm)
        self._fixed_since = now

    def onset(self, now: float, weight: float = 1.0) -> None:
        """The player's note-on at ``now``."""
        self.tracker.add(now, weight)
        self._onsets += 1

    def midi(self, message: bytes | bytearray | list[int] | tuple[int, ...], now: float
             ) -> ClockEvent | None:
        """Feed one MIDI system real-time or song-position message; return a transport change.

        Other messages are ignored (None). ``stop`` means: end improv's sounding notes.
        """
        if not message:
            return None
        status = message[0]
        if status == CLOCK:
            self._pulse(now)
            return None
        if status in (START, CONTINUE, SONG_POSITION):
            self._smoother.realign()
        if status == START:
            self._position, self._pending = 0, True
            self._transport = Transport.RUNNING
            return ClockEvent("start", now, 0.0)
        if status == CONTINUE:
            self._transport = Transport.RUNNING
            return ClockEvent("continue", now, self._position / PPQN)
        if status == STOP:
            if self._transport is Transport.RUNNING and not self._pending:
                self._position += 1  # the next pulse after a continue is the following one
                self._pending = True
                self._gap_at_stop = self._smoother.testing_gap
            self._transport = Transport.STOPPED
            return ClockEvent("stop", now, self._position / PPQN)
        if status == SONG_POSITION and len(message) >= 3:
            sixteenths = (message[1] & 0x7F) | ((message[2] & 0x7F) << 7)
            self._position, self._pending = sixteenths * (PPQN // 4), True
            return ClockEvent("position", now, self._position / PPQN)
        return None

    def _pulse(self, now: float) -> None:
        if self._last_pulse is not None and now - self._last_pulse > self.config.clock_timeout:
            self._smoother.reset()
            self._in_range = False
        advance = self._smoother.add(now)
        self._last_pulse = now
        # A clock is taken within 20-400 bpm (1% spare), and kept until it leaves them by
        # 5% (a clock at 400 reads up to 404 at times): one at 410 was followed (--tempo
        # refuses it; a red team's), one at 1000 went on to the clock out.
        bpm = self._pulses_bpm(now)
        if bpm is not None:
            if MIN_BPM / 1.01 <= bpm <= MAX_BPM * 1.01:
                self._in_range = True
            elif not MIN_BPM / 1.05 <= bpm <= MAX_BPM * 1.05:
                self._in_range = False
        if not advance:  # a copy of the pulse before (or a pulse and one taken back)
            return
        if self._transport is Transport.RUNNING:
            if self._pending:
                self._pending = False
            else:
                self._position += advance
        elif advance > 1 and self._gap_at_stop:  # lost before the stop: they were played
            self._position += advance - 1
        if not self._smoother.testing_gap:
            self._gap_at_stop = False

    # -- state ----------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def fixed_tempo(self) -> float | None:
        """The tempo fixed by :meth:`set_tempo` (bpm), or None."""
        return self._fixed

    def clock_present(self, now: float) -> bool:
        """Pulses are arriving (the latest within ``clock_timeout``) and give a tempo improv
        can play: a clock outside 20-400 bpm is ignored, as ``--tempo`` would refuse it (a
        red team's 1000 bpm clock was passed on to the clock out; at 7 bpm an answer on the
        bar waited for more than 30 s)."""
        return self._in_range and self._pulses_bpm(now) is not None

    def _pulses_bpm(self, now: float) -> float | None:
        """The tempo of the pulses arriving (the latest within ``clock_timeout``), if any."""
        if self._last_pulse is None or now - self._last_pulse > self.config.clock_timeout:
            return None
        period = self._smoother.period()
        return None if period is None else 60.0 / (period * PPQN)

    def source(self, now: float) -> Source:
        """The source of the tempo in use at ``now``."""
        if self.clock_present(now):
            return Source.CLOCK
        if self._fixed is not None:
            return Source.FIXED
        if self._estimate(now) is not None:
            return Source.ONSETS
        return Source.NONE

    def _estimate(self, now: float, period: float | None = None) -> TempoEstimate | None:
        key = (self._onsets, period)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.tracker.estimate(period=period))
        return self._cache[1]

    def timeline(self, now: float) -> Timeline | None:
        """The seconds-to-beats map in use at ``now``, or None with no tempo at all."""
        if self.clock_present(now):
            period = self._smoother.period() * PPQN
            if self._transport is Transport.RUNNING:
                pos = self._position if not self._pending else self._position - 1
                return Timeline(self._smoother.last_time(), pos / PPQN, period)
            return self._free_timeline(now, period)
        if self._fixed is not None:
            return self._free_timeline(now, 60.0 / self._fixed)
        return self._free_timeline(now, None)

    def _free_timeline(self, now: float, period: float | None) -> Timeline | None:
        """A timeline whose phase comes from the onsets (beat numbers kept continuous)."""
        est = self._estimate(now, period)
        if est is None:
            if period is None:
                return self._free if self._free is not None and self._fixed is None else None
            if self._free is None:
                anchor = self._fixed_since if self._fixed is not None else now
                line = Timeline(anchor, 0.0, period)
            else:  # the beat at ``now`` stays; a new period (a clock's) counts from here
                line = Timeline(now, self._free.beat_at(now), period)
            self._free = line
            return line
        beat = 0.0 if self._free is None else float(round(self._free.beat_at(est.beat_time)))
        line = Timeline(est.beat_time, beat, est.period)
        self._free = line
        return line

    # -- conversions ----------------------------------------------------------------------

    def tempo(self, now: float) -> float | None:
        """Tempo in use at ``now`` in bpm, or None."""
        line = self.timeline(now)
        return None if line is None else 60.0 / line.period

    def beat_at(self, now: float) -> float | None:
        """The beat position at ``now`` (song position with a running clock), or None."""
        line = self.timeline(now)
        return None if line is None else line.beat_at(now)

    def time_at(self, beat: float, now: float) -> float | None:
        """When ``beat`` falls, by the tempo in use at ``now`` (re-ask as the tempo changes)."""
        line = self.timeline(now)
        return None if line is None else line.time_at(beat)

    def beats_to_seconds(self, beats: float, now: float) -> float | None:
        """A duration in beats, in seconds at the tempo in use at ``now``."""
        line = self.timeline(now)
        return None if line is None else beats * line.period

    def seconds_to_beats(self, seconds: float, now: float) -> float | None:
        """A duration in seconds, in beats at the tempo in use at ``now``."""
        line = self.timeline(now)
        return None if line is None else seconds / line.period

    def next_beat(self, now: float, lead: float = 0.0) -> tuple[float, float] | None:
        """(time, beat) of the first beat at or after ``now + lead``; None without a tempo."""
        return self._next(now, lead, 1.0, 0.0)

    def next_bar(self, now: float, lead: float = 0.0) -> tuple[float, float] | None:
        """(time, beat) of the first bar line at or after ``now + lead``.

        With MIDI clock, bars count from the song's start; otherwise from :meth:`downbeat`.
        """
        return self._next(now, lead, self.config.meter.bar_beats, self.bar_offset(now))

    def bar_offset(self, now: float) -> float:
        """The number of a beat that starts a bar (bars repeat every ``meter.bar_beats``):
        0 with a running MIDI clock, else the one :meth:`downbeat` set."""
        running = self.clock_present(now) and self._transport is Transport.RUNNING
        return 0.0 if running else self._bar_offset

    def _next(self, now: float, lead: float, step: float, offset: float
              ) -> tuple[float, float] | None:
        line = self.timeline(now)
        if line is None:
            return None
        at = line.beat_at(now + lead)
        beat = offset + math.ceil((at - offset) / step - 1e-9) * step
        return line.time_at(beat), beat

    def downbeat(self, t: float) -> None:
        """Take the beat nearest ``t`` as a bar line (without a clock: a call's first note)."""
        line = self.timeline(t)
        if line is not None:
            self._bar_offset = float(round(line.beat_at(t))) % self.config.meter.bar_beats

    def status(self, now: float) -> str:
        """A status-line summary: tempo, source, transport, and a double/half ambiguity."""
        source = self.source(now)
        bpm = self.tempo(now)
        pulses = self._pulses_bpm(now)
        ignored = ("" if pulses is None or source is Source.CLOCK else
                   f"; a clock at {pulses:.0f} bpm ignored ({MIN_BPM}-{MAX_BPM})")
        if bpm is None:
            return "tempo: none" + ignored
        text = f"{bpm:.1f} bpm ({source.value}"
        if source is Source.CLOCK:
            text += f", {self._transport.value}" if self._transport is not Transport.NONE else ""
        text += ")"
        if source is Source.ONSETS:
            est = self._estimate(now)
            if est is not None and est.alternative is not None:
                text += f" or {est.alternative:.0f}"
        return text + ignored
