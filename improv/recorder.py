"""Record a session as a MIDI file: the player's notes and improv's on separate tracks.

The file is rewritten (to a temporary name, then renamed over the old one)
every ``every`` seconds, so a crash loses at most that much.

The rewrite runs in the live loop, so its cost must not grow with the session. Building
the whole file again with mido each time did (measured here: 15 ms at 1,000 notes, 70 ms
at 5,000, 290 ms at 20,000, about an hour of a duet: the loop stood still that long every
2 s). So each track keeps the bytes of its events that can no longer change (those more
than :data:`SETTLE` seconds old), encoded once, and a rewrite encodes only the rest. The
bytes are what mido writes for the same notes (format 1, running status), which a test
checks.
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
from pathlib import Path

import mido

from improv.errors import ImprovError, MissingFileError

TICKS_PER_BEAT = 480
TEMPO = 500_000  # 120 bpm: 960 ticks a second, about 1 ms each
TICK = TEMPO / 1e6 / TICKS_PER_BEAT  # seconds
#: Events this many seconds before now (or before the latest note's start, if earlier) are
#: settled: encoded once. A note that starts earlier than that when it is recorded (recorded
#: at its end: a key or the pedal held longer while the player goes on) unsettles its track
#: back to the settling before its start.
SETTLE = 10.0
_END_OF_TRACK = b"\x00\xff\x2f\x00"


def _varlen(n: int) -> bytes:
    """A MIDI variable-length quantity (7 bits a byte, the last byte's top bit clear)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    """A meta event at delta time 0."""
    return b"\x00\xff" + bytes([kind]) + _varlen(len(data)) + data


class _Track:
    """One track: the encoded bytes of its settled events, and the rest."""

    def __init__(self, name: str):
        self.head = _meta(0x03, name.encode("latin-1"))  # track_name
        if name == "player":
            self.head += _meta(0x51, TEMPO.to_bytes(3, "big"))  # set_tempo
        self.final = bytearray()  # the settled events, encoded
        self.tick, self.status = 0, 0  # tick and status byte of the last of them
        self.settled = 0.0  # seconds: events before this are in ``final``
        self.events: list[tuple[float, int, int, int]] = []  # the settled events, in order
        # After each settling: (settled, len(final), tick, status, len(events)), to go back to.
        self.marks = [(0.0, 0, 0, 0, 0)]
        self.pending: list[tuple[float, int, int, int]] = []  # (time, on?, pitch, velocity)
        self.rewinds = 0  # notes that came before what was settled

    def add(self, start: float, end: float, pitch: int, velocity: int) -> None:
        start = max(start, 0.0)
        if start < self.settled:
            self._rewind(start)
        self.pending.append((start, 1, pitch, velocity))
        # A note's off at least a tick after its on: at one time the off sorts first (as a
        # re-struck key's old note ends before the new one starts), and a player pairing
        # them in order would leave a note of no length on.
        self.pending.append((max(end, start + TICK), 0, pitch, 0))

    def _rewind(self, t: float) -> None:
        """Unsettle the events after the last settling at or before ``t``: they go back to
        pending, and their bytes are cut off (a few seconds' worth, not the session)."""
        self.rewinds += 1
        i = bisect.bisect_right(self.marks, t, key=lambda mark: mark[0]) - 1
        self.settled, size, self.tick, self.status, count = self.marks[i]
        del self.marks[i + 1:]
        del self.final[size:]
        self.pending.extend(self.events[count:])
        del self.events[count:]

    def settle(self, before: float) -> None:
        """Encode, once and for all, the pending events before ``before`` seconds."""
        if before <= self.settled:
            return
        ready = sorted(e for e in self.pending if e[0] < before)
        self.pending = [e for e in self.pending if e[0] >= before]
        self.tick, self.status = _encode(ready, self.tick, self.status, self.final)
        self.events.extend(ready)
        self.settled = before
        self.marks.append((before, len(self.final), self.tick, self.status, len(self.events)))

    def chunk(self) -> bytes:
        """The whole MTrk chunk: the settled bytes, then the pending events."""
        rest = bytearray()
        _encode(sorted(self.pending), self.tick, self.status, rest)
        body = b"".join((self.head, self.final, rest, _END_OF_TRACK))
        return b"MTrk" + struct.pack(">I", len(body)) + body


def _encode(events, tick: int, status: int, out: bytearray) -> tuple[int, int]:
    """Append sorted (seconds, on?, pitch, velocity) events to ``out`` as note-on / note-off
    messages on channel 1, after an event at ``tick`` with status byte ``status`` (0: none,
    or a meta event), in running status; return the last event's tick and status byte."""
    for t, on, pitch, velocity in events:
        at = int(round(mido.second2tick(t, TICKS_PER_BEAT, TEMPO)))
        out += _varlen(max(at - tick, 0))
        byte = 0x90 if on else 0x80
        out += bytes((pitch, velocity) if byte == status else (byte, pitch, velocity))
        tick, status = max(at, tick), byte
    return tick, status


class RecordingError(ImprovError, OSError):
    """A recording that cannot be written when the session starts."""


class Recorder:
    """Collect notes and write them out now and then."""

    def __init__(self, path: str | Path, start: float, every: float = 2.0):
        self.path = Path(path)
        if not self.path.resolve().parent.is_dir():  # else the error names our .tmp file
            raise MissingFileError(f"{self.path}: no such folder {self.path.parent}")
        self.start, self.every = start, every
        self.tracks = {"player": _Track("player"), "improv": _Track("improv")}
        self._latest = 0.0  # the latest start of a note recorded (seconds from ``start``)
        self._lock = threading.Lock()
        self._last_write = start
        self._dirty = False
        self.notes = 0  # recorded
        #: Whether the file holds this recording (else it is not there, or another's).
        self.written = False
        #: An older file at the path stays until there is a note to record (a session that
        #: heard nothing replaced a take with an empty file: a red-team run, 2026-12-02).
        self.replaces = self.path.exists()
        try:  # fail now, not an hour into the session, if the path is not writable
            if self.replaces:
                self._store(self._encode(), replace=False)  # written, then removed
            else:
                self.write()
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot be written "
                                 f"({exc.strerror or exc})") from None

    def add(self, note, who: str) -> None:
        """Add a note (an :class:`~improv.note.Note`) to the ``player`` or ``improv`` track."""
        start = note.start - self.start
        with self._lock:
            self.tracks[who].add(start, note.end - self.start, note.pitch, note.velocity)
            self._latest = max(self._latest, start)
            self._dirty = True
            self.notes += 1

    @property
    def rewinds(self) -> int:
        """Notes recorded after their time was settled (a key held over :data:`SETTLE`
        seconds while the player went on): each unsettled the last seconds of its track."""
        return sum(track.rewinds for track in self.tracks.values())

    def maybe_write(self, now: float) -> bool:
        """Write the file if it changed and ``every`` seconds have passed (also since a
        write that failed); return whether it was written. OSError if it cannot be."""
        if self._dirty and now - self._last_write >= self.every:
            self._last_write = now
            self.write(now)
            return True
        return False

    def write(self, now: float | None = None) -> Path:
        """Write the file now (atomically). ``now``: the clock's time (a caller may record
        notes ahead of it, as queued; what settles is counted back from the earlier)."""
        self._store(self._encode(now))
        self.written = True
        return self.path

    def _encode(self, now: float | None = None) -> bytes:
        """The whole file's bytes (the settled events encoded once: see the module doc)."""
        with self._lock:
            latest = self._latest if now is None else min(self._latest, now - self.start)
            for track in self.tracks.values():
                track.settle(latest - SETTLE)
            self._dirty = False
            return b"".join([b"MThd", struct.pack(">IHHH", 6, 1, len(self.tracks),
                                                  TICKS_PER_BEAT)]
                            + [track.chunk() for track in self.tracks.values()])

    def _store(self, data: bytes, replace: bool = True) -> None:
        """Write ``data`` to a temporary file, then rename it over the file (or, with
        ``replace=False``, remove it: the path can be written)."""
        # Its own rename, not improv.outfile's: that one flushes to disk (2-3 ms here, more
        # on a slow disk), which every 2 s would hold the live loop up.
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            if replace:
                os.replace(tmp, self.path)
            else:
                tmp.unlink()
        except OSError:
            self._dirty = True  # still to be written
            tmp.unlink(missing_ok=True)
            raise
