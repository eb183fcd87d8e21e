import numpy as np
import pytest

from improv.notetable import MidiReadError, midi_to_notes, notes_from_arrays, notes_to_midi
from tests.conftest import write_midi

KNOWN = [(60, 0.0, 0.5, 80), (64, 0.0, 0.25, 70), (67, 0.5, 1.5, 90), (72, 2.0, 2.125, 100)]


def test_known_notes_exact(tmp_path):
    notes = midi_to_notes(write_midi(tmp_path / "k.mid", KNOWN))
    assert list(notes.columns) == ["pitch", "start", "end", "step", "duration", "velocity"]
    assert notes["pitch"].tolist() == [60, 64, 67, 72]
    np.testing.assert_allclose(notes["step"], [0.0, 0.0, 0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(notes["duration"], [0.5, 0.25, 1.0, 0.125], atol=1e-6)
    assert notes["velocity"].tolist() == [80, 70, 90, 100]


def test_merges_instruments_and_skips_drums(tmp_path):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for prog, drum, pitch, start in ((0, False, 60, 1.0), (40, False, 50, 0.5), (0, True, 36, 0.0)):
        inst = pretty_midi.Instrument(program=prog, is_drum=drum)
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=start, end=start + 0.5))
        pm.instruments.append(inst)
    pm.write(str(tmp_path / "m.mid"))
    notes = midi_to_notes(tmp_path / "m.mid")
    assert notes["pitch"].tolist() == [50, 60]
    np.testing.assert_allclose(notes["step"], [0.0, 0.5], atol=1e-6)


def test_real_file(real_midi):
    notes = midi_to_notes(real_midi)
    assert len(notes) > 500
    assert notes["start"].is_monotonic_increasing
    assert (notes["step"] >= 0).all() and (notes["duration"] >= 0).all()
    np.testing.assert_allclose(notes["step"].iloc[1:], np.diff(notes["start"]), atol=1e-9)
    assert notes["pitch"].between(21, 108).all()  # the piano's range
    assert notes["velocity"].between(1, 127).all()


def test_round_trip(tmp_path, real_midi):
    notes = midi_to_notes(real_midi).iloc[:300]
    notes_to_midi(notes, tmp_path / "out.mid", program="Acoustic Grand Piano")
    back = midi_to_notes(tmp_path / "out.mid")
    # Tick rounding can swap notes a fraction of a millisecond apart: compare by pitch.
    notes = notes.sort_values(["pitch", "start"], kind="stable")
    back = back.sort_values(["pitch", "start"], kind="stable")
    assert back["pitch"].tolist() == notes["pitch"].tolist()
    assert back["velocity"].tolist() == notes["velocity"].tolist()
    # 480 ticks per beat at 120 bpm: times are kept to about 1 ms
    np.testing.assert_allclose(back["start"], notes["start"], atol=1.1e-3)
    np.testing.assert_allclose(back["end"], notes["end"], atol=1.1e-3)


def test_fixed_velocity(tmp_path):
    notes = notes_from_arrays([60, 62], [0, 1], [0.5, 1.5], [10, 20])
    notes_to_midi(notes, tmp_path / "v.mid", velocity=99)
    assert midi_to_notes(tmp_path / "v.mid")["velocity"].tolist() == [99, 99]
    with pytest.raises(ValueError, match="velocity"):
        notes_to_midi(notes, tmp_path / "v.mid", velocity=0)


def test_end_before_start_refused():
    with pytest.raises(ValueError, match="ends before"):
        notes_from_arrays([60], [1.0], [0.5])


@pytest.mark.parametrize("content", [b"", b"MThd\x00\x00\x00\x06garbage", b"not midi at all"])
def test_corrupt_files(tmp_path, content):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MidiReadError, match="bad.mid"):
        midi_to_notes(path)


def test_drum_only_and_empty(tmp_path):
    with pytest.raises(MidiReadError, match="no non-drum notes"):
        midi_to_notes(write_midi(tmp_path / "drums.mid", [(36, 0, 0.1, 100)], drum=True))
    with pytest.raises(MidiReadError, match="no non-drum notes"):
        midi_to_notes(write_midi(tmp_path / "none.mid", []))
