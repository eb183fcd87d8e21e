"""The live input: python-rtmidi polled from improv's own thread, bytes decoded here.

Why not mido's rtmidi back-end: it always installs a Python callback, and RtMidi
calls it from JACK's real-time process thread. That thread must then take the GIL
from improv's other threads; when it waits past its cycle, JACK drops or
repeats that cycle's events (measured here over JACK dummy, period 64, 5 s runs:
1,000 msg/s lost 38 and duplicated 16 where a reference client lost 1 and
duplicated 1; jackd logged "client = improv in was not finished" up to 491 times
a run). So the port is a plain ``rtmidi.MidiIn`` with no callback: RtMidi's
real-time thread only pushes onto its own lock-free queue (``QUEUE_LIMIT``
entries) and improv's main loop drains it every ``POLL`` seconds
(:meth:`PolledInput.poll`), stamps each message with its arrival time and decodes
it into mido messages, which the rest of improv keeps using.

**Unterminated SysEx.** RtMidi's JACK input treats every event after an ``F0``
with no ``F7`` as that SysEx's continuation and swallows it until an event ends
in ``F7`` (measured: 20,000 messages swallowed; ``ignore_types(sysex=True)``
does not help, it only drops the swallowed run for good when it finally ends).
So SysEx is *not* ignored in RtMidi, and when nothing has arrived for ``PROBE_IDLE``
seconds improv sends an empty SysEx (``F0 F7``) into its own input from a private client
(while it fills its queue, the fill's events, which end in ``F7`` too). If the input was
swallowing, that ``F7`` ends the run and RtMidi delivers it as one event: the broken
SysEx followed by the bytes of every swallowed message, which :class:`MidiDecoder`
splits back into messages (a status byte inside a SysEx aborts it, as on a MIDI cable).
Otherwise the probe arrives alone and is dropped like every SysEx (improv has no use for
SysEx). The cost: swallowed messages arrive up to ``PROBE_IDLE`` late, all with one
timestamp; a SysEx split over events more than ``PROBE_IDLE`` apart is cut (improv
ignores SysEx anyway); about 10 probe events a second while nobody plays. Reading JACK
events ourselves would need a process callback, which in Python is the very callback
this module exists to avoid.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import mido

from improv.portclose import close_rtmidi

logger = logging.getLogger(__name__)

#: RtMidi's queue between JACK's thread and ours (32 bytes an entry once used: 4 MB; see
#: :class:`PolledInput` on filling it). The main loop polls it between its other work, so
#: this is the slack when that work or a loaded machine holds it up: 13 s at 10,000 msg/s
#: (with 16,384 the flood test lost 10 of 100,000 on a starved machine where the reference
#: client lost none; RtMidi's default of 100/1024 is 0.1 s at that rate).
QUEUE_LIMIT = 1 << 17
#: Sleep between polls when the queue is empty: 0.27 ms p50 actual here at Linux's default
#: timer slack, 0.23 ms at the session's (improv.session.TIMER_SLACK_NS); adds at most that
#: to the input latency (JACK's period here is 1.33 ms). An idle improv used 11-13% of a
#: core here polling so, 14-15% with the session's slack (measured 2026-11-30; an earlier
#: note said 3%).
POLL = 0.0002
#: The main loop's sleep while the player plays (:meth:`improv.improviser.Improviser.playing`):
#: 0.14 ms actual with the session's 1 us timer slack. In ``improv bench live`` (with
#: Improviser.keep_warm) improv then added +0.18 / -0.55 / -0.67 ms at p99 over the echo
#: floor, against +0.57 / +0.50 / +0.52 at POLL (2026-11-30), for 26% of a core instead
#: of 22% while playing (a note every 0.25 s); after the player stops, POLL again.
POLL_PLAYING = 0.0001
#: Probe for a swallowing input after this long with nothing delivered (see above).
PROBE_IDLE = 0.1
#: Longest SysEx kept while decoding; longer ones are dropped (improv ignores SysEx).
MAX_SYSEX = 65536
PROBE = (0xF0, 0xF7)
#: What fills the queue (:class:`PolledInput`): a SysEx of three bytes (7D: the ID for
#: non-commercial use), as long as the longest channel message, and dropped as every SysEx.
FILL = (0xF0, 0x7D, 0xF7)
#: Fill events on their way at once. Bursts of 2,000 overflowed JACK's MIDI buffers at periods
#: of 256 frames and more, and the player's notes merged into that buffer were lost (a review
#: measured 275 of 300 at 512); 64 are a small share of a buffer at any period.
FILL_IN_FLIGHT = 64
#: Seconds without a fill event back after which those on their way count as lost.
FILL_STALL = 1.0
_FILL = list(FILL)

_LENGTHS = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}
_COMMON = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1}


class MidiDecoder:
    """Split raw MIDI bytes into messages, the way a MIDI cable's receiver does.

    Running status is kept for channel messages (across calls); real-time bytes
    (F8-FF) are messages wherever they fall; a status byte inside a SysEx aborts
    it; stray data bytes and undefined status bytes are dropped. SysEx messages
    are counted and dropped. Counters say what was dropped.
    """

    def __init__(self):
        self._running = 0  # the running channel status, 0 if none
        self._buf: list[int] = []  # a message being collected (status first)
        self._need = 0
        self._sysex: list[int] | None = None  # a SysEx being collected
        self.sysex = 0  # complete SysEx messages seen (dropped)
        self.aborted_sysex = 0  # SysEx cut short by a status byte
        self.dropped_bytes = 0  # stray data bytes, undefined status bytes
        self.invalid = 0  # byte runs mido refused

    def feed(self, data) -> list[mido.Message]:
        """Take the bytes of one delivered event; return the messages completed."""
        if (len(data) == 3 and 0x80 <= data[0] < 0xF0 and data[0] & 0xE0 != 0xC0
                and data[1] < 0x80 and data[2] < 0x80
                and self._sysex is None and not self._buf):  # the common case, fast
            self._running = data[0]
            return self._emit([], data)
        out: list[mido.Message] = []
        for b in data:
            self._byte(b, out)
        return out

    def _emit(self, out: list, raw) -> list:
        try:
            out.append(mido.Message.from_bytes(raw))
        except (ValueError, TypeError):  # e.g. an undefined real-time byte (F9, FD)
            self.invalid += 1
        return out

    def _abort_sysex(self) -> None:
        if self._sysex is not None:
            self._sysex = None
            self.aborted_sysex += 1

    def _byte(self, b: int, out: list) -> None:
        if b >= 0xF8:  # real-time: a message of its own, even inside a SysEx
            self._emit(out, [b])
        elif b == 0xF0:
            self._abort_sysex()
            self._sysex, self._running, self._buf = [b], 0, []
        elif b == 0xF7:
            if self._sysex is not None:
                self._sysex = None
                self.sysex += 1
            else:
                self.dropped_bytes += 1
            self._running, self._buf = 0, []
        elif b >= 0x80:
            self._abort_sysex()
            if b < 0xF0:
                self._running, self._buf, self._need = b, [b], _LENGTHS[b & 0xF0]
            elif b in _COMMON:
                self._running, self._buf, self._need = 0, [b], _COMMON[b]
                if self._need == 1:
                    self._buf = []
                    self._emit(out, [b])
            else:  # F4, F5: undefined
                self._running, self._buf = 0, []
                self.dropped_bytes += 1
        elif self._sysex is not None:
            if len(self._sysex) < MAX_SYSEX:
                self._sysex.append(b)
        else:
            if not self._buf:
                if not self._running:
                    self.dropped_bytes += 1
                    return
                self._buf, self._need = [self._running], _LENGTHS[self._running & 0xF0]
            self._buf.append(b)
            if len(self._buf) == self._need:
                raw, self._buf = self._buf, []
                self._emit(out, raw)


def _rtmidi_api(backend) -> int:
    import rtmidi

    return getattr(rtmidi, f"API_{backend.api}") if backend.api else rtmidi.API_UNSPECIFIED


class PolledInput:
    """An input port read without a callback (see the module's docstring).

    The daemon calls :meth:`poll` from its main loop: no thread hand-off between
    reading a message and acting on it (measured with ``improv bench live``: a
    poller thread handing messages to the main loop through a queue added ~1 ms at
    p99 on this 2-core machine). With ``post`` given, a thread of its own polls
    instead and calls ``post(t, msg)`` for each message.

    Arrival times: RtMidi stamps each event with the time since the previous one,
    on JACK's clock (``jack_get_time``, CLOCK_MONOTONIC like ``time.monotonic``). A
    message's time is the previous one's plus that delta, kept between the last
    poll that found nothing and now; so messages read after a busy stretch of the
    main loop keep their own times instead of all getting the time they were read.
    Open with :func:`improv.ports.open_polled_input`.

    Filling the queue: RtMidi gives each slot of its queue its bytes the first time an event
    passes through it, in JACK's thread (32 bytes an event, then nothing once every slot was
    used; measured with malloc_info). Left to the player's notes and the probes, the 131,072
    slots grew improv by 1.3 MB an hour for three hours of ``improv bench soak``. So with
    ``fill`` (as many as the queue's slots) and a probe, while nobody plays (no channel
    message for PROBE_IDLE; a MIDI clock may run), :data:`FILL` events go through the queue,
    :data:`FILL_IN_FLIGHT` at a time, and are dropped as they come back: 4 MB taken in the
    first seconds (2.8 s here), then flat. Until then they stand in for the probe.
    """

    def __init__(self, midi_in, name: str, post: Callable[[float, mido.Message], None] | None
                 = None, probe=None, clock: Callable[[], float] = time.monotonic, fill: int = 0,
                 own: str = ""):
        self._in, self.name, self._post, self._probe, self.clock = midi_in, name, post, probe, clock
        #: improv's own port reading a named input (``improv listener PID:in``), else "".
        self.own_port = own
        self._to_fill = fill  # FILL events still to send
        self._in_flight = 0  # sent and not back yet
        self.filled = 0  # FILL events that went through
        self.decoder = MidiDecoder()
        self.received = 0  # messages handed on
        self.events = 0  # events RtMidi delivered
        self.probes = 0
        now = clock()
        self._last_event = self._last_empty = self._last_probe = self._prev = now
        self._last_played = now  # the last channel message (the fill waits for a pause)
        self._fill_moved = now  # when a fill event last went out or came back
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the port may be swapped (reopen) under a poller
        self._thread = None
        if post is not None:
            self._thread = threading.Thread(target=self._run, name="improv-input", daemon=True)
            self._thread.start()

    def poll(self, limit: int = 256) -> list[tuple[float, mido.Message]]:
        """Return up to ``limit`` events' messages as (arrival time, message); [] if none.
        While nothing arrives, send the SysEx probe every PROBE_IDLE seconds."""
        out: list[tuple[float, mido.Message]] = []
        with self._lock:
            port, got = self._in, ()
            for _ in range(limit):
                got = port.get_message() if port is not None else None
                if got is None:
                    break
                now = self.clock()
                t = min(max(self._prev + got[1], self._last_empty), now)
                self._prev = t
                if self._in_flight and got[0] == _FILL:  # back from filling: dropped
                    self._in_flight -= 1
                    self.filled += 1
                    self._fill_moved = now
                    continue
                self._last_event = t
                if got[0] and got[0][0] < 0xF0:  # a channel message: someone plays
                    self._last_played = t
                self.events += 1
                for msg in self.decoder.feed(got[0]):
                    out.append((t, msg))
            now = self.clock()
            if got is None:
                self._last_empty = now
                if self._in_flight and now - self._fill_moved > FILL_STALL:
                    self._in_flight = 0  # lost on the way (a port that went): sent anew
                if self._probe is not None and self._to_fill:
                    # while nobody plays; a MIDI clock may run (a DAW's does all the time)
                    if now - self._last_played > PROBE_IDLE:
                        self._send_fill(now)
                elif (self._probe is not None and now - self._last_event > PROBE_IDLE
                        and now - self._last_probe > PROBE_IDLE):
                    self._last_probe = now
                    self._send_probe()
        self.received += len(out)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self.poll()
            for t, msg in got:
                try:
                    self._post(t, msg)
                except Exception as exc:  # never lose the input thread to one message
                    logger.error("\nimprov: input: %r", exc)
            if not got:
                time.sleep(POLL)

    def _send_fill(self, now: float) -> None:
        """Send the next fill events, up to FILL_IN_FLIGHT on their way (a FILL ends in F7:
        it ends a swallowing SysEx as the probe does)."""
        n = min(FILL_IN_FLIGHT - self._in_flight, self._to_fill)
        if n <= 0:
            return
        try:
            for _ in range(n):
                self._probe.send_message(FILL)
        except Exception:  # the fill only saves memory later: the input works without it
            self._to_fill = 0
            return
        self._in_flight += n
        self._to_fill -= n
        self._fill_moved = now

    def _send_probe(self) -> None:
        try:
            self._probe.send_message(PROBE)
            self.probes += 1
        except Exception:  # the probe is a safety net; the input works without it
            pass

    def swap(self, midi_in, name: str, probe=None, fill: int = 0, own: str = "") -> None:
        """Replace the underlying port (after a reconnect); close the old one."""
        with self._lock:
            old, old_probe = self._in, self._probe
            self._in, self.name, self._probe, self.own_port = midi_in, name, probe, own
            self._to_fill, self._in_flight = fill, 0  # a new queue to fill
            # RtMidi's first delta of the new port counts from nothing: from now, not from
            # the last poll before the reopen
            self._prev = self._last_empty = self.clock()
        _delete(old, old_probe)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        with self._lock:
            old, old_probe, self._in, self._probe = self._in, self._probe, None, None
        _delete(old, old_probe)


def _delete(midi_in, probe) -> None:
    for port in (probe, midi_in):
        if port is not None:
            try:
                close_rtmidi(port)  # spaced: see improv.portclose
            except Exception:  # a port of a vanished server: nothing left to free
                pass
