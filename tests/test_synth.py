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
