"""Play notes at their times, from one thread, on the monotonic clock.

Every note_on the scheduler sends has its note_off: a note's off is queued
with its on; re-striking a sounding pitch ends it first; the voice limit ends
the oldest note; :meth:`Scheduler.cancel` and :meth:`Scheduler.panic` end
everything that sounds. ``send`` is called from the scheduler's thread only.

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
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from typing import Callable

import mido

from improv.errors import InvalidValueError

logger = logging.getLogger(__name__)

#: Wake this long before an event and spin out the rest: sleeps overshoot by ~0.1-1 ms.
SPIN = 0.001
#: A note_on this late shifts the rest of the queue (see above). 50 ms: a late note
#: is heard as wrong from ~30-50 ms; the scheduler's own jitter is ~1 ms.
LATE = 0.05


class Scheduler:
    """A clock thread that sends timed note messages through ``send``."""

    def __init__(self, send: Callable[[mido.Message], None], channel: int = 0, voices: int = 16,
                 clock: Callable[[], float] = time.monotonic, late: float = LATE,
                 log=None):
        if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel <= 15:
            raise InvalidValueError(f"channel must be 0-15, got {channel}")
        if not isinstance(voices, int) or isinstance(voices, bool) or voices < 1:
            raise InvalidValueError(f"voices must be at least 1, got {voices}")
        self.send, self.channel, self.voices, self.clock = send, channel, voices, clock
        self.late = late
        self.log = log or (lambda text: logger.error("\nimprov: %s", text))
        self._queue: list[tuple[float, int, int, int, int]] = []  # time, seq, on?, pitch, vel
        self._seq = itertools.count()
        self._sounding: dict[int, int] = {}  # pitch -> seq of the note_on that sounds it
        self._cond = threading.Condition()
        self._stop = False
        self.jitter: list[float] = []  # actual - intended send time, seconds (last 10,000)
        self.sent_on = 0
        self.sent_off = 0
        self.shifts = 0  # times the queue was shifted for a note_on more than ``late`` overdue
        self.shifted = 0.0  # seconds shifted in all (improviser's continue mode follows it)
        self.errors = 0  # sends that raised
        self._thread = threading.Thread(target=self._run, name="improv-scheduler", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------
    def play(self, pitch: int, velocity: int, start: float, duration: float) -> None:
        """Queue a note: on at ``start`` (clock seconds), off ``duration`` later."""
        if not (isinstance(pitch, int) and isinstance(velocity, int) and 0 <= pitch <= 127
                and 1 <= velocity <= 127 and math.isfinite(start) and math.isfinite(duration)):
            raise ValueError(f"bad note: pitch {pitch!r}, velocity {velocity!r}, start {start!r},"
                             f" duration {duration!r}")
        seq = next(self._seq)
        with self._cond:
            now = self.clock()
            if start <= now and (not self._queue or self._queue[0][0] >= start):
                # Due already and nothing before it: sent from this thread, now. Waking
                # the scheduler's thread for it cost a thread switch (~0.3 ms at p99 here,
                # more on a loaded machine) on the way from end-of-call to the answer.
                self.jitter.append(now - start)
                try:
                    self._fire(1, pitch, velocity, seq)
                except Exception as exc:
                    self.errors += 1
                    self.log(f"scheduler: {exc!r}")
            else:
                heapq.heappush(self._queue, (start, seq, 1, pitch, velocity))
            heapq.heappush(self._queue, (start + max(duration, 0.0), seq, 0, pitch, 0))
            self._cond.notify()

    @property
    def busy(self) -> bool:
        """Whether notes are queued or sounding."""
        with self._cond:
            return bool(self._queue or self._sounding)

    @property
    def sounding(self) -> list[int]:
        with self._cond:
            return sorted(self._sounding)

    @property
    def queued_until(self) -> float | None:
        """Time of the last queued event (None when idle)."""
        with self._cond:
            return max((e[0] for e in self._queue), default=None)

    def cancel(self) -> None:
        """Drop every queued note and end the sounding ones now."""
        with self._cond:
            self._queue.clear()
            for pitch in list(self._sounding):
                self._off(pitch)
            self._cond.notify()

    def panic(self) -> None:
        """Cancel, then send all-notes-off and sustain-off on every channel."""
        with self._cond:
            self._queue.clear()
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

    def _send(self, msg: mido.Message) -> None:
        try:
            self.send(msg)
        except Exception as exc:  # one failing send must not end the thread or the note-offs
            self.errors += 1
            if self.errors <= 3:
                self.log(f"cannot send {msg}: {exc!r}")

    def _off(self, pitch: int) -> None:
        self._sounding.pop(pitch, None)
        self._send(mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
        self.sent_off += 1

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
        elif self._sounding.get(pitch) == seq:  # only if this note still owns the pitch
            self._off(pitch)

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                if not self._queue:
                    self._cond.wait()
                    continue
                due = self._queue[0][0]
                wait = due - self.clock()
                if wait > SPIN:
                    self._cond.wait(wait - SPIN)
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
                t, seq, on, pitch, velocity = self._queue[0]
                if on and self.clock() - t > self.late:  # stale: shift, do not burst
                    self._shift(self.clock() - t)
                    continue
                heapq.heappop(self._queue)
                if on:  # lateness of the send itself, not of the port behind it
                    lateness = self.clock() - t
                    self.jitter.append(lateness)
                    if len(self.jitter) > 10_000:
                        del self.jitter[:5_000]
                try:
                    self._fire(on, pitch, velocity, seq)
                except Exception as exc:  # a bad event must not end the scheduler
                    self.errors += 1
                    if self.errors <= 3:
                        self.log(f"scheduler: {exc!r}")
