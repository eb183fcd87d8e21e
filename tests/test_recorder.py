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


def test_a_note_of_no_length_is_written_on_then_off(tmp_path):
    """Its off at its on's time was written first (the order a re-struck key's old note
    ends in): a player pairing them in order would leave the note on."""
    path = tmp_path / "session.mid"
    rec = Recorder(path, start=0.0)
    rec.add(Note(pitch=60, start=0.5, end=0.5, velocity=90), "player")
    rec.add(Note(pitch=60, start=1.0, end=1.5, velocity=90), "player")
    rec.write()
    events = [(m.type, m.note) for m in mido.MidiFile(path).tracks[0] if not m.is_meta]
    assert events == [("note_on", 60), ("note_off", 60)] * 2


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


def _mido_bytes(tracks: dict[str, list[tuple[float, float, int, int]]], path) -> bytes:
    """The same notes written with mido, as the recorder did before it kept bytes (an
    independent copy of the encoding, on purpose)."""
    from improv.recorder import TEMPO, TICK, TICKS_PER_BEAT

    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    for name, notes in tracks.items():
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        if name == "player":
            track.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
        events = sorted([(max(s, 0.0), 1, p, v) for s, e, p, v in notes]
                        + [(max(e, max(s, 0.0) + TICK), 0, p, 0) for s, e, p, v in notes])
        now = 0
        for t, on, pitch, velocity in events:
            tick = int(round(mido.second2tick(t, TICKS_PER_BEAT, TEMPO)))
            track.append(mido.Message("note_on" if on else "note_off", note=pitch,
                                      velocity=velocity, time=max(tick - now, 0)))
            now = max(tick, now)
        mid.tracks.append(track)
    mid.save(path)
    return path.read_bytes()


def test_a_long_session_is_written_as_mido_writes_it(tmp_path):
    """An hour of a duet at a few notes a second, written every few notes: each file is
    the one mido writes for the notes so far, though only the last seconds are encoded
    again each time. Chords, overlaps, and notes recorded long after they started (a held
    key, recorded at its end: its track's last seconds are unsettled)."""
    import numpy as np

    from improv.recorder import SETTLE

    rng = np.random.default_rng(0)
    rec = Recorder(tmp_path / "s.mid", start=1000.0)
    recorded = {"player": [], "improv": []}
    held = []  # keys held past SETTLE: recorded when they end, as the tracker does

    def add(note, who):
        rec.add(note, who)
        recorded[who].append((note.start - 1000.0, note.end - 1000.0, note.pitch,
                              note.velocity))

    t = 1000.0
    for i in range(12000):
        t += float(rng.choice([0.0, 0.01, 0.2, 0.5]))
        who = "player" if (i // 16) % 2 == 0 else "improv"
        longest = 3 * SETTLE if i % 997 == 0 else 0.3
        note = Note(pitch=int(rng.integers(30, 100)), start=t,
                    end=t + float(rng.uniform(0.0, longest)), velocity=int(rng.integers(1, 128)))
        if note.duration > SETTLE:
            held.append((note, who))
        else:
            add(note, who)
        for late in [h for h in held if h[0].end <= t]:
            add(*late)
            held.remove(late)
        if i % 50 == 49:
            rec.maybe_write(t)
        if i % 1500 == 1499:
            got = rec.write().read_bytes()
            assert got == _mido_bytes(recorded, tmp_path / "want.mid"), i
    assert rec.rewinds >= 3  # held keys came after their time was settled


def test_the_player_heard_during_a_long_answer_settles_nothing_again(tmp_path):
    """An answer recorded when it is queued (as a caller may), seconds ahead of the clock; what
    settles counts back from the clock, so the player's notes played meanwhile (recorded
    at their ends) come after nothing settled."""
    rec = Recorder(tmp_path / "s.mid", start=0.0, every=1.0)
    t = 0.0
    for i in range(200):  # a duet: an answer of 40 notes queued at once, the player over it
        if i % 40 == 0:
            for k in range(40):
                rec.add(Note(pitch=60 + k % 12, start=t + 0.4 * k, end=t + 0.4 * k + 0.3,
                             velocity=70), "improv")
        rec.add(Note(pitch=48, start=t, end=t + 0.35, velocity=80), "player")
        rec.maybe_write(t + 0.35)
        t += 0.4
    assert rec.rewinds == 0
    assert len(read_midi(rec.write())["pitch"]) == 200 + 200
