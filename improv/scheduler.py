"""Play notes at their times, from one thread, on the monotonic clock.

Every note_on the scheduler sends has its note_off: a note's off is queued
with its on; re-striking a sounding pitch ends it first; the voice limit ends
the oldest note; :meth:`Scheduler.cancel` and :meth:`Scheduler.panic` end
everything that sounds. ``send`` is called from the scheduler's thread only.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

import mido

#: Wake this long before an event and spin out the rest: sleeps overshoot by ~0.1-1 ms.
SPIN = 0.001


class Scheduler:
    """A clock thread that sends timed note messages through ``send``."""

    def __init__(self, send: Callable[[mido.Message], None], channel: int = 0, voices: int = 16,
                 clock: Callable[[], float] = time.monotonic):
        if not 0 <= channel <= 15:
            raise ValueError(f"channel must be 0-15, got {channel}")
        if voices < 1:
            raise ValueError(f"voices must be at least 1, got {voices}")
        self.send, self.channel, self.voices, self.clock = send, channel, voices, clock
        self._queue: list[tuple[float, int, int, int, int]] = []  # time, seq, on?, pitch, vel
        self._seq = itertools.count()
        self._sounding: dict[int, int] = {}  # pitch -> seq of the note_on that sounds it
        self._cond = threading.Condition()
        self._stop = False
        self.jitter: list[float] = []  # actual - intended send time, seconds (last 10,000)
        self.sent_on = 0
        self.sent_off = 0
        self._thread = threading.Thread(target=self._run, name="improv-scheduler", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------
    def play(self, pitch: int, velocity: int, start: float, duration: float) -> None:
        """Queue a note: on at ``start`` (clock seconds), off ``duration`` later."""
        if not (0 <= pitch <= 127 and 1 <= velocity <= 127):
            raise ValueError(f"bad note: pitch {pitch}, velocity {velocity}")
        seq = next(self._seq)
        with self._cond:
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
                self.send(mido.Message("control_change", channel=channel, control=64, value=0))
                self.send(mido.Message("control_change", channel=channel, control=123, value=0))

    def close(self) -> None:
        """End every note and stop the thread."""
        self.cancel()
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=2)

    # -- the scheduler thread (and callers holding the lock) ----------------------------
    def _off(self, pitch: int) -> None:
        self._sounding.pop(pitch, None)
        self.send(mido.Message("note_off", channel=self.channel, note=pitch, velocity=0))
        self.sent_off += 1

    def _fire(self, on: int, pitch: int, velocity: int, seq: int) -> None:
        if on:
            if pitch in self._sounding:  # re-struck: end the old note first
                self._off(pitch)
            elif len(self._sounding) >= self.voices:
                oldest = min(self._sounding, key=self._sounding.get)
                self._off(oldest)
            self._sounding[pitch] = seq
            self.send(mido.Message("note_on", channel=self.channel, note=pitch,
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
                t, seq, on, pitch, velocity = heapq.heappop(self._queue)
                if on:  # lateness of the send itself, not of the port behind it
                    self.jitter.append(self.clock() - t)
                    if len(self.jitter) > 10_000:
                        del self.jitter[:5_000]
                self._fire(on, pitch, velocity, seq)
