"""The live input: python-rtmidi polled from improv's own thread, bytes decoded here.

Why not mido's rtmidi back-end: it always installs a Python callback, and RtMidi
calls it from JACK's real-time process thread. That thread must then take the GIL
from improv's other threads; when it waits past its cycle, JACK drops or
repeats that cycle's events (measured here over JACK dummy, period 64, 5 s runs:
1,000 msg/s lost 38 and duplicated 16 where a reference client lost 1 and
duplicated 1; jackd logged "client = improv in was not finished" up to 491 times
a run). So the port is a plain ``rtmidi.MidiIn`` with no callback: RtMidi's
real-time thread only pushes onto its own lock-free queue (``QUEUE_LIMIT``
entries) and :class:`PolledInput`'s thread drains it every ``POLL`` seconds,
stamps each message on arrival (``time.monotonic``) and decodes it into mido
messages, which the rest of improv keeps using.

**Unterminated SysEx.** RtMidi's JACK input treats every event after an ``F0``
with no ``F7`` as that SysEx's continuation and swallows it until an event ends
in ``F7`` (measured: 20,000 messages swallowed; ``ignore_types(sysex=True)``
does not help, it only drops the swallowed run for good when it finally ends).
So SysEx is *not* ignored in RtMidi, and when nothing has arrived for
``PROBE_IDLE`` seconds improv sends an empty SysEx (``F0 F7``) into its own input
from a private client. If the input was swallowing, that ``F7`` ends the run and
RtMidi delivers it as one event: the broken SysEx followed by the bytes of every
swallowed message, which :class:`MidiDecoder` splits back into messages (a status
byte inside a SysEx aborts it, as on a MIDI cable). Otherwise the probe arrives
alone and is dropped like every SysEx (improv has no use for SysEx). The cost:
swallowed messages arrive up to ``PROBE_IDLE`` late, all with one timestamp; a
SysEx split over events more than ``PROBE_IDLE`` apart is cut (improv ignores
SysEx anyway); about 10 probe events a second while nobody plays. Reading JACK
events ourselves would need a process callback, which in Python is the very
callback this module exists to avoid.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

import mido

#: RtMidi's queue between JACK's thread and ours. At 10,000 msg/s this is 1.6 s of
#: slack, so a poller delayed by a loaded machine does not lose input (RtMidi's
#: default of 100/1024 is 0.1 s at that rate).
QUEUE_LIMIT = 16384
#: Sleep between polls when the queue is empty. ~0.25 ms actual on Linux: adds at most
#: that to the input latency (JACK's period here is 1.33 ms) for ~3% of a core.
POLL = 0.0002
#: Probe for a swallowing input after this long with nothing delivered (see above).
PROBE_IDLE = 0.1
#: Longest SysEx kept while decoding; longer ones are dropped (improv ignores SysEx).
MAX_SYSEX = 65536
PROBE = (0xF0, 0xF7)

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

    ``post(t, msg)`` is called from this object's thread for every message, with
    ``t`` its arrival time on ``clock``. Open with :func:`improv.ports.open_polled_input`.
    """

    def __init__(self, midi_in, name: str, post: Callable[[float, mido.Message], None],
                 probe=None, clock: Callable[[], float] = time.monotonic):
        self._in, self.name, self._post, self._probe, self.clock = midi_in, name, post, probe, clock
        self.decoder = MidiDecoder()
        self.received = 0  # messages handed on
        self.events = 0  # events RtMidi delivered
        self.probes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the port may be swapped (reopen) under the poller
        self._thread = threading.Thread(target=self._poll, name="improv-input", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        last_event = last_probe = self.clock()
        while not self._stop.is_set():
            with self._lock:
                got = self._in.get_message() if self._in is not None else None
            if got is None:
                now = self.clock()
                if (self._probe is not None and now - last_event > PROBE_IDLE
                        and now - last_probe > PROBE_IDLE):
                    last_probe = now
                    self._send_probe()
                time.sleep(POLL)
                continue
            now = last_event = self.clock()
            self.events += 1
            for msg in self.decoder.feed(got[0]):
                self.received += 1
                try:
                    self._post(now, msg)
                except Exception as exc:  # never lose the input thread to one message
                    print(f"\nimprov: input: {exc!r}", file=sys.stderr)

    def _send_probe(self) -> None:
        try:
            self._probe.send_message(PROBE)
            self.probes += 1
        except Exception:  # the probe is a safety net; the input works without it
            pass

    def swap(self, midi_in, name: str, probe=None) -> None:
        """Replace the underlying port (after a reconnect); close the old one."""
        with self._lock:
            old, old_probe = self._in, self._probe
            self._in, self.name, self._probe = midi_in, name, probe
        _delete(old, old_probe)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        with self._lock:
            old, old_probe, self._in, self._probe = self._in, self._probe, None, None
        _delete(old, old_probe)


def _delete(midi_in, probe) -> None:
    for port in (probe, midi_in):
        if port is not None:
            try:
                port.close_port()
                port.delete()
            except Exception:  # a port of a vanished server: nothing left to free
                pass
