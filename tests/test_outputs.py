"""The outputs improv plays into: a port (reconnectable) and FluidSynth."""

from __future__ import annotations

import mido
import pytest

from improv.fakes import Sink
from improv.outputs import PortOutput, SynthOutput
from improv.synth import SynthError


def test_a_port_output_sends_and_reopens_by_name():
    first, second = Sink("synth"), Sink("synth")
    out = PortOutput(first, wanted="syn")
    assert (out.name, out.wanted) == ("synth", "syn")
    out.send(mido.Message("note_on", note=60, velocity=90))
    assert out.reopen(second) is first  # for the caller to close, outside its send lock
    assert not first.closed and not second.closed
    first.close()
    out.send(mido.Message("note_off", note=60))
    assert first.kinds() == [("note_on", 60)] and second.kinds() == [("note_off", 60)]
    out.close()
    assert second.closed


def test_fluidsynth_plays_into_a_file(tmp_path):
    from improv.soundfont import find_soundfont

    try:
        soundfont = find_soundfont(None)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    wav = tmp_path / "out.wav"
    out = SynthOutput(soundfont, "file", settings={"audio.file.name": str(wav)})
    assert out.name == "FluidSynth (file)"
    for msg in (mido.Message("note_on", note=60, velocity=90),
                mido.Message("control_change", control=64, value=127),
                mido.Message("note_off", note=60)):
        out.send(msg)
    out.close()
    assert wav.is_file()


def test_a_bad_soundfont_is_a_synth_error(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    with pytest.raises(SynthError, match="could not load"):
        SynthOutput(bad, "file", settings={"audio.file.name": str(tmp_path / "x.wav")})
