"""What improv sends on the beat besides its notes: MIDI clock out and a metronome click.

With a tempo in use (:mod:`improv.timing`: an incoming MIDI clock, ``--tempo``, or with
``--onsets`` the player's), a :class:`BeatSender` thread sends, on improv's own output:

- **MIDI clock** (``--clock-out``): 24 pulses a beat (``0xF8``) at the tempo improv uses, so
  a drum machine or a DAW set to follow an outside clock follows the player through improv.
  A start (``0xFA``) goes out just before the pulse of the first bar line after the tempo
  appears (the follower's bar 1 is one of improv's bar lines), a stop (``0xFC``) when the
  tempo goes away, when an incoming clock's transport stops, and at the end of the session.
  The pulses run on while stopped, as a DAW's do, so a follower keeps the tempo.
- **A metronome click** (``--metronome``): a short note on MIDI channel 10 (General MIDI
  drums; FluidSynth's channel 10 plays them too) on every beat (every eighth in x/8:
  :attr:`~improv.beatclock.Meter.click_beats`), high wood block on a bar line, low wood
  block on the others; silent while an incoming clock is stopped.

The main loop hands the sender the seconds-to-beats map in use
(:meth:`BeatSender.set_timeline`, a frozen :class:`~improv.beatclock.Timeline` swapped
atomically) as the scheduler gets it; the sender's thread works out each pulse's time from
the map in use when it comes due, so a tempo change moves the pulses still to come.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

import mido

from improv.beatclock import PPQN, Timeline
from improv.scheduler import LATE, MAX_WAIT, SPIN  # the scheduler's lateness and waits

#: General MIDI drums on channel 10 (index 9): hi wood block on a bar line, low otherwise.
CLICK_CHANNEL = 9
CLICK_BAR, CLICK_BEAT = 76, 77
CLICK_VELOCITY_BAR, CLICK_VELOCITY_BEAT = 110, 80
#: How long a click sounds (s).
CLICK_LENGTH = 0.05
#: Most pulses owed after a stall that go out at once (one beat; more: a stop, a new start).
MAX_OWED = PPQN


class BeatSender:
    """A thread that sends MIDI clock (``clock_out``) and a click (``metronome``) on the
    beat of the timeline in use, through ``send``: from its thread, and a stop from the
    caller's (:meth:`set_timeline`, :meth:`close`), so ``send`` must be thread-safe (as the
    session's fan-out to its outputs is)."""

    def __init__(self, send: Callable[[mido.Message], None], clock_out: bool = True,
                 metronome: bool = False, bar_beats: float = 4.0,
                 clock: Callable[[], float] = time.monotonic, thread: bool = True,
                 click_beats: float = 1.0):
        if not bar_beats > 0:
            raise ValueError(f"BeatSender: bar_beats must be > 0, got {bar_beats!r}")
        bar, click = bar_beats * PPQN, click_beats * PPQN
        if not (click >= 1 and click == int(click) and bar == int(bar) and bar % click == 0):
            raise ValueError(f"BeatSender: a bar of {bar_beats!r} beats is no whole number of "
                             f"clicks of {click_beats!r} (Meter.click_beats)")
        self.send, self.clock_out, self.metronome = send, clock_out, metronome
        self.clock = clock
        self._bar, self._click = int(bar), int(click)  # in pulses
        self._line: Timeline | None = None
        self._bar_offset = 0.0
        self._running = True  # False while an incoming clock's transport is stopped
        self._started = False  # a start was sent and no stop since
        self._next: int | None = None  # the next pulse's number (beat * PPQN); None: work out
        self._click_off: float | None = None  # when the sounding click ends
        self._cond = threading.Condition()
        self._stop = False
        self.pulses = self.clicks = self.starts = self.stops = 0
        self.errors = 0
        self._thread = None
        if thread:
            self._thread = threading.Thread(target=self._run, name="improv-beat", daemon=True)
            self._thread.start()

    # -- called from the main loop ----------------------------------------------------
    def set_timeline(self, line: Timeline | None, renumbered: bool = False,
                     bar_offset: float = 0.0, running: bool = True,
                     now: float | None = None) -> None:
        """The seconds-to-beats map in use from now on (None: no tempo, the clock out
        stops). ``renumbered``: beat numbers changed meaning (a transport start, a new
        source), so a start goes out again at the next bar line; ``bar_offset``: the beat
        number of a bar line (0 with an incoming clock); ``running``: False while an
        incoming clock's transport is stopped; ``now``: the time (default: the clock's)."""
        with self._cond:
            now = self.clock() if now is None else now
            if (renumbered or line is None or running != self._running
                    or (self._next is not None
                        and abs(line.beat_at(now) * PPQN - self._next) > PPQN)):
                self._next = None  # the beats count afresh: the next pulse from now
            if (line is None or not running or renumbered) and self._started:
                self._send_clock("stop")
            self._line, self._bar_offset, self._running = line, bar_offset, running
            self._cond.notify()

    @property
    def active(self) -> bool:
        """Whether it sends anything (the metronome can be switched on later)."""
        return self.clock_out or self.metronome

    def set_metronome(self, on: bool) -> None:
        """Switch the click on or off (a control); a sounding click ends."""
        with self._cond:
            self.metronome = bool(on)
            if not on and self._click_off is not None:
                self._end_click()
            self._next = None  # its steps are clicks, or pulses with clock out
            self._cond.notify()

    def restart(self) -> None:
        """A follower has just connected: a start goes out again at the next bar line."""
        with self._cond:
            self._started = False

    def close(self) -> None:
        """Stop the thread; send a stop and end a sounding click."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._cond:
            if self._started:
                self._send_clock("stop")
            if self._click_off is not None:
                self._end_click()

    # -- the sender's thread -------------------------------------------------------------
    def _send(self, msg: mido.Message) -> None:
        try:
            self.send(msg)
        except Exception:  # a failing output must not end the thread (or leave a click on)
            self.errors += 1

    def _send_clock(self, kind: str) -> None:
        self._send(mido.Message(kind))
        if kind == "start":
            self._started, self.starts = True, self.starts + 1
        elif kind == "stop":
            self._started, self.stops = False, self.stops + 1

    def _end_click(self) -> None:
        for note in (CLICK_BAR, CLICK_BEAT):
            self._send(mido.Message("note_off", channel=CLICK_CHANNEL, note=note))
        self._click_off = None

    def _step(self) -> int:
        """Pulses from one due event to the next: every pulse with clock out, else clicks."""
        return 1 if self.clock_out else self._click

    def _due(self, now: float) -> tuple[float, str | None]:
        """(time, what) of the next event: "click off", "pulse", or None (lock held)."""
        due, what = math.inf, None
        if self._click_off is not None:
            due, what = self._click_off, "click off"
        line = self._line
        if line is not None and self.active:
            if self._next is None:
                step = self._step()
                self._next = math.ceil(line.beat_at(now) * PPQN / step - 1e-6) * step
            at = line.time_at(self._next / PPQN)
            if at < due:
                due, what = at, "pulse"
        return due, what

    def _pulse(self, now: float, click: bool = True) -> None:
        """Send what falls on pulse ``self._next`` and move on (lock held); ``click``:
        False for a pulse sent late (its click would be off the beat)."""
        number, step = self._next, self._step()
        self._next = number + step
        on_beat = number % self._click == 0  # a click's (a beat, or 7/8's eighth)
        on_bar = on_beat and round(number - self._bar_offset * PPQN) % self._bar == 0
        if self.clock_out:
            if on_bar and self._running and not self._started:
                self._send_clock("start")
            self._send(mido.Message("clock"))
            self.pulses += 1
        if self.metronome and on_beat and self._running and click:
            if self._click_off is not None:
                self._end_click()
            self._send(mido.Message(
                "note_on", channel=CLICK_CHANNEL, note=CLICK_BAR if on_bar else CLICK_BEAT,
                velocity=CLICK_VELOCITY_BAR if on_bar else CLICK_VELOCITY_BEAT))
            self._click_off = now + CLICK_LENGTH
            self.clicks += 1

    def run_until(self, now: float) -> int:
        """Send everything due up to ``now``, in order; return how many events that was.
        The thread does this as time passes; a sender made with ``thread=False`` (tests,
        a fake clock) is driven by calling it."""
        done = 0
        with self._cond:
            while True:
                due, what = self._due(now)
                if what is None or due > now:
                    return done
                self._fire(what, due, now)
                done += 1

    def _fire(self, what: str, due: float, now: float) -> None:
        """Send the event ``what`` due at ``due`` (lock held).

        After a stall (improv held for over :data:`LATE`): a follower counts the pulses, so
        with a beat or less owed they all go out at once (a red team's follower lost 4 of
        them after 80 ms, 15 after 0.3 s, and its bars stayed shifted), without the late
        clicks. With more owed, no burst: a stop, and on from now, so the follower starts
        again at improv's next bar line (a start goes out there)."""
        if what == "click off":
            self._end_click()
        elif now - due <= LATE:
            self._pulse(now)
        elif self.clock_out and self._line.beat_at(now) * PPQN - self._next <= MAX_OWED:
            self._pulse(now, click=False)
        else:
            if self._started:
                self._send_clock("stop")
            self._next = None

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                now = self.clock()
                due, what = self._due(now)
                if what is None:
                    self._cond.wait()
                    continue
                wait = float(due - now)  # a clock of NumPy floats too (Condition.wait)
                if wait > SPIN:
                    self._cond.wait(min(wait - SPIN, MAX_WAIT))
                    continue
                if wait > 0:  # the last moment: spin without the lock, then look again
                    self._cond.release()
                    try:
                        limit = time.perf_counter() + SPIN
                        while self.clock() < due and time.perf_counter() < limit:
                            time.sleep(0)  # lets other threads in (see improv.scheduler)
                    finally:
                        self._cond.acquire()
                    continue
                self._fire(what, due, self.clock())
