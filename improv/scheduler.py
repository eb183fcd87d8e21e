"""Play notes at their times, from one thread, on the monotonic clock.

Every note_on the scheduler sends has its note_off: a note's off is queued
with its on; re-striking a sounding pitch ends it first; the voice limit ends
the oldest note; :meth:`Scheduler.cancel` and :meth:`Scheduler.panic` end
everything that sounds. ``send`` is called from the scheduler's thread only.
``on_played(pitch, velocity, start, end)`` hears of each note once it has ended, with the
times its note-on and note-off went out: what was played, as a recording wants it (a note
dropped from the queue before it began was never played; one cut short ends when it was cut).
It is called with the scheduler's lock held, from its thread or from whoever called
``play``, ``cancel``, ``panic`` or ``close``: it must be quick and must not call the scheduler.

A note_on due more than ``LATE`` seconds ago is not sent late in a burst: after
a stall (the process stopped, a starved machine) the overdue part of an answer
would otherwise go out at once, each note a few ms long (measured: SIGSTOP 5 s
mid-answer, SIGCONT, 35 note-ons within 100 ms). Instead the rest of the queue
(every note not yet started, with its note_off) is shifted later by the delay,
so the answer resumes where it stopped, in its rhythm, and no note is lost. Why
shift rather than drop: on a starved machine (two cores, two training jobs
beside it) the scheduler thread was sometimes more than 50 ms late, and dropping
lost notes of answers there. Note-offs of sounding notes are never shifted: they
go out at once. A send that raises is counted and reported; it never ends the
thread.

**Notes in beats.** With a tempo known (:mod:`improv.beatclock`), notes can be queued in
beats (:meth:`Scheduler.play_beats`) on a second queue. The main loop hands the scheduler
the seconds-to-beats map in use (:meth:`Scheduler.set_timeline`, a frozen
:class:`~improv.beatclock.Timeline`, swapped atomically) whenever the tempo moves, and a
beat note's time is worked out from the map in use when it comes due: a tempo change
mid-answer re-times the notes still to come, and no thread but the main loop touches the
beat clock itself. A stale beat note shifts the beat queue by whole beats (not by the
delay), so the notes stay on the grid they were put on; so does a beat note queued already
more than ``LATE`` after its beat (the caller was held up: a CI run under load sent answers'
first notes 57 and 239 ms off the beat when such a note went out at once).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import numbers
import threading
import time
from typing import Callable

import mido

from improv.beatclock import Timeline
from improv.errors import InvalidValueError

logger = logging.getLogger(__name__)

#: Wake this long before an event and spin out the rest: sleeps overshoot by ~0.1-1 ms.
SPIN = 0.001
#: A note_on this late shifts the rest of the queue (see above). 50 ms: a late note
#: is heard as wrong from ~30-50 ms; the scheduler's own jitter is ~1 ms.
LATE = 0.05
#: Longest single wait of the thread: a note due later is waited for in parts (a wait past
#: threading.TIMEOUT_MAX, 9.2e9 s here, raised OverflowError and ended the thread).
MAX_WAIT = 60.0


class Scheduler:
    """A clock thread that sends timed note messages through ``send``."""

    def __init__(self, send: Callable[[mido.Message], None], channel: int = 0, voices: int = 16,
                 clock: Callable[[], float] = time.monotonic, late: float = LATE,
                 log=None, on_played: Callable[[int, int, float, float], None] | None = None):
        if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel <= 15:
            raise InvalidValueError(f"channel must be 0-15, got {channel}")
        if not isinstance(voices, int) or isinstance(voices, bool) or voices < 1:
            raise InvalidValueError(f"voices must be at least 1, got {voices}")
        self.send, self.channel, self.voices, self.clock = send, channel, voices, clock
        self.late = late
        self.log = log or (lambda text: logger.error("\nimprov: %s", text))
        self._queue: list[tuple[float, int, int, int, int]] = []  # time, seq, on?, pitch, vel
        self._beats: list[tuple[float, int, int, int, int]] = []  # the same, in beats
        self._timeline: Timeline | None = None
        self._seq = itertools.count()
        self._sounding: dict[int, int] = {}  # pitch -> seq of the note_on that sounds it
        self.on_played = on_played
        self._started: dict[int, tuple[int, float]] = {}  # seq -> velocity, note_on time
        self._cond = threading.Condition()
        self._stop = False
        self.jitter: list[float] = []  # actual - intended send time, seconds (last 10,000)
        self.sent_on = 0
        self.sent_off = 0
        self.shifts = 0  # times the queue was shifted for a note_on more than ``late`` overdue
        self.shifted = 0.0  # seconds shifted in all (improviser's continue mode follows it)
        self.shifted_beats = 0.0  # beats the beat queue was shifted in all (the same)
        self.errors = 0  # sends that raised
        self._thread = threading.Thread(target=self._run, name="improv-scheduler", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------
    def play(self, pitch: int, velocity: int, start: float, duration: float) -> None:
        """Queue a note: on at ``start`` (clock seconds), off ``duration`` later."""
        pitch, velocity, start, duration = _checked(pitch, velocity, start, duration,
                                                    "start", "duration")
        seq = next(self._seq)
        with self._cond:
            self._refuse_if_closed()
            now = self.clock()
            if start <= now and (not self._queue or self._queue[0][0] >= start):
                # Due already and nothing before it: sent from this thread, now. Waking
                # the scheduler's thread for it cost a thread switch (~0.3 ms at p99 here,
                # more on a loaded machine) on the way from end-of-call to the answer.
                self._fire_now(now - start, pitch, velocity, seq)
            else:
                heapq.heappush(self._queue, (start, seq, 1, pitch, velocity))
            heapq.heappush(self._queue, (start + max(duration, 0.0), seq, 0, pitch, 0))
            self._cond.notify()

    def _refuse_if_closed(self) -> None:
        if self._stop:  # its thread is gone: a note-on sent now would never be ended
            raise ValueError("the scheduler is closed: it plays no more notes")

    def set_timeline(self, timeline: Timeline | None) -> None:
        """The seconds-to-beats map that times the beat queue from now on (None: the beat
        queue is dropped, its sounding notes end)."""
        with self._cond:
            if timeline is self._timeline:  # the same: no need to wake the thread (the
                return  # improviser hands it over before every answer)
            self._timeline = timeline
            if timeline is None and self._beats:
                self._drop_beats()
            self._cond.notify()

    @property
    def timeline(self) -> Timeline | None:
        return self._timeline

    def play_beats(self, pitch: int, velocity: int, start: float, duration: float) -> float:
        """Queue a note in beats: on at beat ``start``, off ``duration`` beats later; its
        times follow the timeline in use when each comes due (needs :meth:`set_timeline`).
        Return the beat it starts on: ``start``, or whole beats later when ``start`` is more
        than ``late`` gone already (then the beat queue moves with it, as after a stall)."""
        pitch, velocity, start, duration = _checked(pitch, velocity, start, duration,
                                                    "beat", "beats")
        seq = next(self._seq)
        with self._cond:
            self._refuse_if_closed()
            line = self._timeline
            if line is None:
                raise ValueError("play_beats needs a timeline (set_timeline)")
            now = self.clock()
            at = line.time_at(start)
            if now - at > self.late:  # the caller was held up (see above): stale already
                beats = float(math.ceil((now - at) / line.period))
                self._shift_beats(beats)  # the notes queued before it stay after it
                start += beats
                at = line.time_at(start)
            # Due already (within ``late``): sent now, as in play().
            if at <= now and not self._queue and (not self._beats or self._beats[0][0] >= start):
                self._fire_now(now - at, pitch, velocity, seq)
            else:
                heapq.heappush(self._beats, (start, seq, 1, pitch, velocity))
            heapq.heappush(self._beats, (start + max(duration, 0.0), seq, 0, pitch, 0))
            self._cond.notify()
        return start

    def queued(self) -> list[tuple[float, bool, int]]:
        """(time, note_on?, pitch) of every queued event in time order; beat notes at the
        times the timeline in use gives them now."""
        with self._cond:
            line = self._timeline
            events = [(t, bool(on), pitch) for t, _, on, pitch, _ in self._queue]
            if line is not None:
                events += [(line.time_at(b), bool(on), pitch)
                           for b, _, on, pitch, _ in self._beats]
        return sorted(events)

    @property
    def beats_pending(self) -> bool:
        """Whether notes wait on the beat queue (then the timeline matters)."""
        return bool(self._beats)

    @property
    def busy(self) -> bool:
        """Whether notes are queued or sounding."""
        with self._cond:
            return bool(self._queue or self._beats or self._sounding)

    @property
    def sounding(self) -> list[int]:
        with self._cond:
            return sorted(self._sounding)

    @property
    def queued_until(self) -> float | None:
        """Time of the last queued event (None when idle)."""
        with self._cond:
            times = [e[0] for e in self._queue]
            if self._beats and self._timeline is not None:
                times.append(self._timeline.time_at(max(e[0] for e in self._beats)))
            return max(times, default=None)

    def cancel(self) -> None:
        """Drop every queued note and end the sounding ones now."""
        with self._cond:
            self._queue.clear()
            self._beats.clear()
            for pitch in list(self._sounding):
                self._off(pitch)
            self._cond.notify()

    def panic(self) -> None:
        """Cancel, then send all-notes-off and sustain-off on every channel."""
        with self._cond:
            self._queue.clear()
            self._beats.clear()
            for pitch in list(self._sounding):
                self._off(pitch)
            for channel in range(16):
                self._send(mido.Message("control_change", channel=channel, control=64, value=0))
                self._send(mido.Message("control_change", channel=channel, control=123, value=0))

    def reset_listeners(self) -> None:
        """Send sustain-off and all-notes-off on every channel, keeping what is queued
        (for a listener that has just connected and heard none of it)."""
        with self._cond:
            for channel in range(16):
                for control in (64, 123):
                    self._send(mido.Message("control_change", channel=channel, control=control,
                                            value=0))

    def close(self) -> None:
        """End every note and stop the thread."""
        self.cancel()
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=2)

    # -- the scheduler thread (and callers holding the lock) ----------------------------
    def _shift(self, delay: float) -> None:
        """Move every note not yet started (and its note_off) ``delay`` seconds later."""
        sounding = set(self._sounding.values())
        self._queue = [(t + delay, seq, on, pitch, vel) if on or seq not in sounding
                       else (t, seq, on, pitch, vel)
                       for t, seq, on, pitch, vel in self._queue]
        heapq.heapify(self._queue)
        self.shifts += 1
        self.shifted += delay

    def _shift_beats(self, beats: float) -> None:
        """Move every beat note not yet started (and its note_off) ``beats`` later."""
        sounding = set(self._sounding.values())
        self._beats = [(b + beats, seq, on, pitch, vel) if on or seq not in sounding
                       else (b, seq, on, pitch, vel)
                       for b, seq, on, pitch, vel in self._beats]
        heapq.heapify(self._beats)
        self.shifts += 1
        self.shifted_beats += beats

    def _drop_beats(self) -> None:
        """Drop the beat queue; end the notes it sounds (lock held)."""
        mine = {seq for _, seq, on, _, _ in self._beats if not on}
        self._beats.clear()
        for pitch, seq in list(self._sounding.items()):
            if seq in mine:
                self._off(pitch)

    def _next(self) -> tuple[float, list | None]:
        """(due time, queue) of the earliest event of either queue (lock held)."""
        due, heap = math.inf, None
        if self._queue:
            due, heap = self._queue[0][0], self._queue
        if self._beats and self._timeline is not None:
            at = self._timeline.time_at(self._beats[0][0])
            if at < due:
                due, heap = at, self._beats
        return due, heap

    def _send(self, msg: mido.Message) -> None:
        try:
            self.send(msg)
        except Exception as exc:  # one failing send must not end the thread or the note-offs
            self.errors += 1
            if self.errors <= 3:
                self.log(f"cannot send {msg}: {exc!r}")

    def _fire_now(self, late: float, pitch: int, velocity: int, seq: int) -> None:
        """Send a due note-on from the calling thread (the lock held), ``late`` seconds
        after its time; a send that raises is counted and reported."""
        self.jitter.append(late)
        try:
            self._fire(1, pitch, velocity, seq)
        except Exception as exc:
            self.errors += 1
            self.log(f"scheduler: {exc!r}")

    def _off(self, pitch: int) -> None:
        seq = self._sounding.pop(pitch, None)
        self._send(mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
        self.sent_off += 1
        started = self._started.pop(seq, None)
        if started is not None and self.on_played is not None:
            try:
                self.on_played(pitch, started[0], started[1], self.clock())
            except Exception as exc:  # a failing listener must not stop the note-offs
                self.errors += 1
                if self.errors <= 3:
                    self.log(f"scheduler: {exc!r}")

    def _fire(self, on: int, pitch: int, velocity: int, seq: int) -> None:
        if on:
            if pitch in self._sounding:  # re-struck: end the old note first
                self._off(pitch)
            elif len(self._sounding) >= self.voices:
                oldest = min(self._sounding, key=self._sounding.get)
                self._off(oldest)
            self._sounding[pitch] = seq
            self._send(mido.Message("note_on", channel=self.channel, note=pitch,
                                    velocity=velocity))
            self.sent_on += 1
            if self.on_played is not None:
                self._started[seq] = (velocity, self.clock())
        elif self._sounding.get(pitch) == seq:  # only if this note still owns the pitch
            self._off(pitch)

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                due, heap = self._next()
                if heap is None:
                    self._cond.wait()
                    continue
                wait = float(due - self.clock())  # a clock of NumPy floats too
                if wait > SPIN:
                    self._cond.wait(min(wait - SPIN, MAX_WAIT))
                    continue
                if wait > 0:  # the last moment: spin, without the lock, then look again
                    self._cond.release()
                    try:
                        limit = time.perf_counter() + SPIN
                        while self.clock() < due and time.perf_counter() < limit:
                            time.sleep(0)  # lets other threads in: a bare loop would hold
                            # the GIL until the switch interval (5 ms), and the input
                            # thread and main loop would wait that long
                    finally:
                        self._cond.acquire()
                    continue
                t, seq, on, pitch, velocity = heap[0]
                if on and self.clock() - due > self.late:  # stale: shift, do not burst
                    if heap is self._queue:
                        self._shift(self.clock() - due)
                    else:  # by whole beats: the notes stay on their grid
                        self._shift_beats(float(math.ceil(
                            (self.clock() - due) / self._timeline.period)))
                    continue
                heapq.heappop(heap)
                if on:  # lateness of the send itself, not of the port behind it
                    lateness = self.clock() - due
                    self.jitter.append(lateness)
                    if len(self.jitter) > 10_000:
                        del self.jitter[:5_000]
                try:
                    self._fire(on, pitch, velocity, seq)
                except Exception as exc:  # a bad event must not end the scheduler
                    self.errors += 1
                    if self.errors <= 3:
                        self.log(f"scheduler: {exc!r}")


def _checked(pitch, velocity, start, duration, when: str, length: str
             ) -> tuple[int, int, float, float]:
    """A note's fields as Python numbers (NumPy ones are taken: a NumPy float would reach
    the thread's Condition.wait, which takes no float32), or ValueError."""
    # plain ints and floats first: the ABCs' isinstance cost 2.4 us a note, these 0.2
    integral = (type(pitch) is int and type(velocity) is int) or all(
        isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in (pitch, velocity))
    real = (type(start) is float and type(duration) is float) or all(
        isinstance(x, numbers.Real) and not isinstance(x, bool) for x in (start, duration))
    if not (integral and real and 0 <= pitch <= 127 and 1 <= velocity <= 127
            and math.isfinite(start) and math.isfinite(duration)):
        raise ValueError(f"bad note: pitch {pitch!r}, velocity {velocity!r}, {when} {start!r},"
                         f" {length} {duration!r}")
    return int(pitch), int(velocity), float(start), float(duration)
