import mido
import pytest

from improv.note import Note
from improv.tracker import NoteTracker


def on(p, v=80, ch=0):
    return mido.Message("note_on", note=p, velocity=v, channel=ch)


def off(p, ch=0):
    return mido.Message("note_off", note=p, channel=ch)


def pedal(down, ch=0):
    return mido.Message("control_change", control=64, value=127 if down else 0, channel=ch)


def test_note_on_off_and_velocity_zero():
    t = NoteTracker()
    assert t.handle(on(60, 90), 1.0) == []
    assert t.handle(on(64, 0), 1.2) == []  # velocity 0 of a key not down: ignored
    assert t.handle(on(60, 0), 1.5) == [Note(60, 90, 1.0, 1.5)]
    assert t.keys_down == 0


def test_chord_notes_start_together():
    t = NoteTracker()
    for p in (60, 64, 67):
        t.handle(on(p), 2.0)
    ended = [n for p in (67, 60, 64) for n in t.handle(off(p), 3.0)]
    assert sorted(n.pitch for n in ended) == [60, 64, 67]
    assert {n.start for n in ended} == {2.0}


def test_sustain_pedal_extends_until_released():
    t = NoteTracker()
    t.handle(pedal(True), 0.0)
    t.handle(on(60), 0.5)
    assert t.handle(off(60), 1.0) == []  # still sounding under the pedal
    assert t.keys_down == 0 and t.sounding == 1
    assert t.handle(pedal(False), 3.0) == [Note(60, 80, 0.5, 3.0)]
    assert t.sounding == 0


def test_restrike_under_pedal_ends_the_old_note():
    t = NoteTracker()
    t.handle(pedal(True), 0.0)
    t.handle(on(60, 70), 0.5)
    t.handle(off(60), 0.7)
    assert t.handle(on(60, 90), 1.0) == [Note(60, 70, 0.5, 1.0)]
    t.handle(off(60), 1.2)
    assert t.handle(pedal(False), 2.0) == [Note(60, 90, 1.0, 2.0)]


def test_pedal_is_per_channel_and_other_messages_are_ignored():
    t = NoteTracker()
    t.handle(pedal(True, ch=1), 0.0)
    t.handle(on(60, ch=0), 0.1)
    assert t.handle(off(60, ch=0), 0.2) == [Note(60, 80, 0.1, 0.2)]
    for msg in (mido.Message("pitchwheel", pitch=100), mido.Message("clock"),
                mido.Message("sysex", data=[1, 2]), off(99)):
        assert t.handle(msg, 0.3) == []


def test_flush_ends_everything():
    t = NoteTracker()
    t.handle(pedal(True), 0.0)
    t.handle(on(60), 0.1)
    t.handle(off(60), 0.2)
    t.handle(on(62), 0.3)
    assert [n.pitch for n in t.flush(1.0)] == [60, 62]
    assert t.sounding == 0 and t.earliest_start is None


def test_note_refuses_end_before_start():
    with pytest.raises(ValueError, match="before it starts"):
        Note(60, 80, 2.0, 1.0)


def test_a_note_on_delivered_twice_is_a_repeat_and_a_later_strike_is_not():
    t = NoteTracker()
    t.handle(on(60, v=80), 1.0)
    assert t.is_repeat(on(60, v=80), 1.000006)  # JACK's copy, 6 us later
    assert not t.is_repeat(on(60, v=81), 1.000006)  # another velocity: another strike
    assert not t.is_repeat(on(60, v=80, ch=1), 1.000006)  # another channel's key
    assert not t.is_repeat(on(62, v=80), 1.000006)  # a key not down
    assert not t.is_repeat(on(60, v=80), 1.05)  # struck again 50 ms later
    assert not t.is_repeat(off(60), 1.000006)
    assert not t.is_repeat(on(60, v=0), 1.000006)  # a note-off in note-on's clothes
    t.handle(off(60), 1.2)
    assert not t.is_repeat(on(60, v=80), 1.2000001)  # the key came up: a new strike
