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


@pytest.mark.parametrize("settings,message", [
    ({"synth.gainn": 1.0}, "FluidSynth has no setting 'synth.gainn'"),
    ({"synth.gain": 1000.0}, "FluidSynth refused synth.gain = 1000.0"),
    ({"synth.polyphony": "many"}, "FluidSynth refused synth.polyphony = 'many'"),
])
def test_a_synth_setting_fluidsynth_refuses_is_an_error(tmp_path, settings, message):
    """FluidSynth only logs a setting it does not have or refuses, and plays on without it."""
    from improv.outputs import SynthOutput
    from improv.soundfont import find_soundfont
    from improv.synth import SynthSettingError

    wav = {"audio.file.name": str(tmp_path / "x.wav")}
    with pytest.raises(SynthSettingError, match=message):
        SynthOutput(find_soundfont(None), "file", settings={**wav, **settings})


def test_synth_settings_are_applied_a_whole_number_as_a_real_one(tmp_path):
    from improv.outputs import SynthOutput
    from improv.soundfont import find_soundfont

    long_name = str(tmp_path / ("a-long-name-" * 4 + ".wav"))
    out = SynthOutput(find_soundfont(None), "file",
                      settings={"audio.file.name": long_name, "synth.gain": 1,
                                "synth.reverb.active": False, "synth.polyphony": 64})
    try:
        assert out.synth.get_setting("synth.gain") == 1.0  # an int would not have been taken
        assert out.synth.get_setting("synth.reverb.active") == 0
        assert out.synth.get_setting("synth.polyphony") == 64
    finally:
        out.close()


def test_run_with_a_refused_synth_setting_is_one_line(tmp_path, capsys):
    from improv.cli import main

    config = tmp_path / "improv.toml"
    config.write_text('[synth_settings]\n"synth.gain" = 1000.0\n')
    assert main(["run", "--config", str(config), "--synth", "--audio-driver", "file",
                 "--no-status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FluidSynth refused synth.gain = 1000.0" in err, err


@pytest.mark.parametrize("audio", [np.full((100, 2), 0.5, np.float32),
                                   np.zeros(100, np.int16), np.zeros((100, 1), np.int16)])
def test_write_wav_refuses_what_it_would_write_wrong(tmp_path, audio):
    """Float samples were cast to int16 silence, mono written as stereo at half length."""
    with pytest.raises(ValueError, match="int16 stereo"):
        write_wav(tmp_path / "a.wav", audio)
    assert not (tmp_path / "a.wav").exists()
