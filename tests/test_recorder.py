"""The recorder: two tracks, times relative to the start, atomic rewrites."""

from __future__ import annotations

import mido
import pytest

from improv.errors import MissingFileError
from improv.midifile import read_midi
from improv.note import Note
from improv.recorder import Recorder


def test_both_parts_on_their_tracks_at_their_times(tmp_path):
    path = tmp_path / "session.mid"
    rec = Recorder(path, start=100.0)
    rec.add(Note(pitch=60, start=100.5, end=101.0, velocity=90), "player")
    rec.add(Note(pitch=67, start=101.5, end=102.25, velocity=70), "improv")
    rec.write()
    mid = mido.MidiFile(path)
    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks]
    assert names == ["player", "improv"]
    cols = read_midi(path)
    assert cols["pitch"].tolist() == [60, 67]
    assert cols["start"].tolist() == pytest.approx([0.5, 1.5], abs=0.002)
    assert cols["end"].tolist() == pytest.approx([1.0, 2.25], abs=0.002)
    assert cols["velocity"].tolist() == [90, 70]


def test_rewritten_only_when_changed_and_due(tmp_path):
    path = tmp_path / "session.mid"
    rec = Recorder(path, start=0.0, every=2.0)  # written once at start: the path works
    first = path.stat().st_mtime_ns
    rec.maybe_write(5.0)  # nothing new
    assert path.stat().st_mtime_ns == first
    rec.add(Note(pitch=60, start=0.1, end=0.2, velocity=80), "player")
    rec.maybe_write(1.0)  # new, but not due
    assert not any(m.type == "note_on" for m in mido.MidiFile(path).tracks[0])
    rec.maybe_write(2.5)
    assert read_midi(path)["pitch"].tolist() == [60]
    assert not list(tmp_path.glob("*.tmp"))  # renamed over, never left behind


def test_a_missing_folder_is_named_at_once(tmp_path):
    with pytest.raises(MissingFileError, match="no such folder"):
        Recorder(tmp_path / "nope" / "session.mid", start=0.0)
