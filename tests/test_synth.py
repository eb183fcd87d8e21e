import numpy as np
import pytest

from improv.soundfont import find_soundfont
from improv.synth import SynthError, render, write_wav


def test_render_is_audible_and_as_long_as_the_notes(tmp_path):
    audio = render([60, 64, 67], [0.0, 0.5, 1.0], [0.5, 1.0, 2.0], [90, 90, 90], find_soundfont(),
                   samplerate=22050, tail=0.5)
    assert audio.shape == (int(2.5 * 22050), 2) and audio.dtype == np.int16
    rms = lambda a: np.sqrt(np.mean(a.astype(np.float64) ** 2))  # noqa: E731
    assert rms(audio[: 22050 * 2]) > 100
    assert rms(audio[-2000:]) < rms(audio[: 22050 * 2])  # the release dies away
    assert write_wav(tmp_path / "a.wav", audio, 22050).stat().st_size == 44 + audio.nbytes


def test_bad_soundfont_file(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF" + b"\x00" * 4 + b"sfbk" + b"\x00" * 100)  # right magic, no content
    with pytest.raises(SynthError, match="could not load"):
        render([60], [0.0], [0.5], [90], bad)


def test_fluidsynth_library_missing_names_the_fix(monkeypatch):
    import sys

    from improv.synth import import_fluidsynth

    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails as without the library
    with pytest.raises(SynthError, match="apt-get install libfluidsynth3"):
        import_fluidsynth()


def test_live_synth_with_a_corrupt_soundfont(tmp_path):
    from improv.outputs import SynthOutput

    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF" + b"\x00" * 4 + b"sfbk" + b"\x00" * 100)
    with pytest.raises(SynthError, match="could not load"):
        SynthOutput(bad, "file", settings={"audio.file.name": str(tmp_path / "x.wav")})


def test_run_with_a_corrupt_soundfont_fails_cleanly(tmp_path, capsys):
    from improv.cli import main

    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    assert main(["run", "--synth", "--soundfont", str(bad), "--no-status"]) == 1
    assert "not a SoundFont 2" in capsys.readouterr().err
