import wave

import mido
import numpy as np

from improv.cli import main


def test_demo_plays_both_parts_into_a_wav_and_a_recording(tmp_path, capsys):
    wav, mid = tmp_path / "demo.wav", tmp_path / "demo.mid"
    assert main(["demo", "--phrases", "1", "--wav", str(wav), "--mid", str(mid),
                 "--random-seed", "2", "--audio-driver", "file"]) == 0
    tracks = {t.name: sum(m.type == "note_on" and m.velocity > 0 for m in t)
              for t in mido.MidiFile(mid).tracks}
    assert tracks == {"player": 12, "improv": 12}  # one phrase, one answer as long
    with wave.open(str(wav)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
        assert w.getnframes() / w.getframerate() > 3
    assert np.sqrt(np.mean(audio ** 2)) > 50
    assert f"wrote {mid}" in capsys.readouterr().err
