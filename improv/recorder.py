"""Record a session as a MIDI file: the player's notes and improv's on separate tracks.

The file is rewritten (to a temporary name, then renamed over the old one)
every ``every`` seconds, so a crash loses at most that much.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import mido

from improv.errors import MissingFileError

TICKS_PER_BEAT = 480
TEMPO = 500_000  # 120 bpm: 960 ticks a second, about 1 ms each


class Recorder:
    """Collect notes and write them out now and then."""

    def __init__(self, path: str | Path, start: float, every: float = 2.0):
        self.path = Path(path)
        if not self.path.resolve().parent.is_dir():  # else the error names our .tmp file
            raise MissingFileError(f"{self.path}: no such folder {self.path.parent}")
        self.start, self.every = start, every
        self.tracks: dict[str, list[tuple[float, float, int, int]]] = {"player": [], "improv": []}
        self._lock = threading.Lock()
        self._last_write = start
        self._dirty = False
        self.write()  # fail now, not an hour into the session, if the path is not writable

    def add(self, note, who: str) -> None:
        """Add a note (an :class:`~improv.note.Note`) to the ``player`` or ``improv`` track."""
        with self._lock:
            self.tracks[who].append((note.start - self.start, note.end - self.start,
                                     note.pitch, note.velocity))
            self._dirty = True

    def maybe_write(self, now: float) -> None:
        """Write the file if it changed and ``every`` seconds have passed."""
        if self._dirty and now - self._last_write >= self.every:
            self.write()
            self._last_write = now

    def write(self) -> Path:
        """Write the file now (atomically)."""
        with self._lock:
            tracks = {k: list(v) for k, v in self.tracks.items()}
            self._dirty = False
        mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
        for name, notes in tracks.items():
            track = mido.MidiTrack()
            track.append(mido.MetaMessage("track_name", name=name, time=0))
            if name == "player":
                track.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
            events = []
            for start, end, pitch, velocity in notes:
                events.append((max(start, 0.0), 1, pitch, velocity))
                events.append((max(end, start, 0.0), 0, pitch, 0))
            events.sort()
            now = 0
            for t, on, pitch, velocity in events:
                tick = int(round(mido.second2tick(t, TICKS_PER_BEAT, TEMPO)))
                kind = "note_on" if on else "note_off"
                track.append(mido.Message(kind, note=pitch, velocity=velocity,
                                          time=max(tick - now, 0)))
                now = max(tick, now)
            mid.tracks.append(track)
        tmp = self.path.with_name(self.path.name + ".tmp")
        mid.save(tmp)
        os.replace(tmp, self.path)
        return self.path
