import pytest

from improv import soundfont
from improv.soundfont import SoundfontError, check_soundfont, find_soundfont


def test_default_is_found_and_valid():
    assert check_soundfont(find_soundfont()).suffix == ".sf2"


def test_named_soundfont_wins(tmp_path):
    sf = find_soundfont()
    assert find_soundfont(sf) == sf


def test_env_var_and_its_errors(tmp_path, monkeypatch):
    real = find_soundfont()
    monkeypatch.setenv("IMPROV_SOUNDFONT", str(real))
    assert find_soundfont() == real
    monkeypatch.setenv("IMPROV_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(SoundfontError, match="IMPROV_SOUNDFONT"):
        find_soundfont()


def test_not_a_soundfont(tmp_path):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(SoundfontError, match="not a SoundFont 2"):
        find_soundfont(fake)
    with pytest.raises(SoundfontError, match="cannot read"):
        find_soundfont(tmp_path / "absent.sf2")


def test_nothing_found_names_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv("IMPROV_SOUNDFONT", raising=False)
    monkeypatch.setattr(soundfont, "SOUNDFONTS_DIR", tmp_path / "none")
    monkeypatch.setattr(soundfont, "_pretty_midi_soundfont", lambda: tmp_path / "pm.sf2")
    monkeypatch.setattr(soundfont, "SYSTEM_PLACES", (str(tmp_path / "sys.sf2"),))
    with pytest.raises(SoundfontError) as err:
        find_soundfont()
    msg = str(err.value)
    for place in ("soundfonts/", "pm.sf2", "sys.sf2", "--soundfont"):
        assert place in msg


def test_a_soundfont_cut_short_is_refused_before_it_is_used(tmp_path):
    whole = find_soundfont()
    cut = tmp_path / "cut.sf2"
    cut.write_bytes(whole.read_bytes()[:100_000])
    with pytest.raises(SoundfontError, match="cut short .100,000 bytes of"):
        check_soundfont(cut)
