import pytest

from improv.config import ConfigError, RunOptions, apply_flags, load_config
from improv.controls import Controls, cc_to_temperature


def test_file_then_flags(tmp_path):
    cfg = tmp_path / "improv.toml"
    cfg.write_text('input = "Keystation"\nrecord = "s.mid"\n[settings]\nmode = "continue"\n'
                   'silence = 1.5\n[sampling]\ntemperature = 0.8\n[controls]\nend_call = 66\n')
    opts = load_config(cfg)
    assert opts.input == "Keystation" and opts.settings.mode == "continue"
    assert opts.settings.silence == 1.5 and opts.sampling.temperature == 0.8
    assert opts.controls.end_call == 66
    opts = apply_flags(opts, {"input": "Piano", "settings.mode": "call-response",
                              "sampling.temperature": None})
    assert opts.input == "Piano" and opts.settings.mode == "call-response"
    assert opts.sampling.temperature == 0.8  # an unset flag leaves the file's value


@pytest.mark.parametrize("text, message", [
    ("mode = [", "not valid TOML"),
    ("colour = 1", "unknown key(s) colour"),
    ("[settings]\nmood = 1", "unknown key(s) mood"),
    ("[sampling]\ntemperature = -1", "temperature must be >= 0"),
    ("[settings]\nanswer_notes = -3", "answer_notes must be >= 0"),
    ("[settings]\nmode = \"jam\"", "mode must be one of"),
    ("channel = 16", "channel must be 0-15"),
    ("[controls]\nend_call = 1", "both use CC1"),
    ("settings = 3", "must be a table"),
])
def test_bad_config_files(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        load_config(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_controls():
    c = Controls()
    assert c.action(1) == "temperature" and c.action(67) == "end_call" and c.action(7) is None
    assert cc_to_temperature(0) == pytest.approx(0.1)
    assert cc_to_temperature(127) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="sustain"):
        Controls(end_call=64)
    assert RunOptions().settings.mode == "call-response"
