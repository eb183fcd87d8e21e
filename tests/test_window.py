import pytest

from improv.note import Note
from improv.window import NoteWindow


def test_rows_in_onset_order_with_steps():
    w = NoteWindow()
    w.add(Note(64, 80, 1.0, 1.5))
    w.add(Note(60, 70, 0.0, 2.0))  # ended later but started first
    assert w.ready(earliest_sounding=None) == [(60, 0.0, 2.0, 70), (64, 1.0, 0.5, 80)]


def test_a_held_note_holds_back_later_ones():
    w = NoteWindow()
    w.add(Note(67, 80, 1.0, 1.2))
    assert w.ready(earliest_sounding=0.5) == []  # a note from 0.5 s is still down
    assert w.pending == 1
    w.add(Note(48, 80, 0.5, 3.0))
    assert [r[0] for r in w.ready(None)] == [48, 67]


def test_chords_are_step_zero_and_long_pauses_are_capped():
    w = NoteWindow(max_step=4.0)
    for p in (60, 64, 67):
        w.add(Note(p, 80, 1.0, 2.0))
    w.add(Note(72, 80, 100.0, 101.0))
    rows = w.ready(None)
    assert [r[1] for r in rows] == [0.0, 0.0, 0.0, 4.0]


def test_window_is_bounded():
    w = NoteWindow(size=8)
    for i in range(100):
        w.push(60, float(i), 0.5, 80)
    assert len(w.rows) == 8
    with pytest.raises(ValueError):
        NoteWindow(size=0)


def test_a_start_that_is_not_finite_is_refused():
    window = NoteWindow()
    with pytest.raises(ValueError, match="finite"):
        window.push(pitch=60, start=float("nan"), duration=0.2, velocity=80)
    with pytest.raises(ValueError, match="finite"):
        window.push(pitch=60, start=1.0, duration=float("nan"), velocity=80)
    assert not window.rows
    with pytest.raises(ValueError, match="finite"):
        Note(pitch=60, velocity=80, start=float("nan"), end=float("nan"))
