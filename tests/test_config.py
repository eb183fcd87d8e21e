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


BAD_VALUES = [
    ("[settings]\nvelocity = 64.5", "settings.velocity must be a whole number"),
    ("channel = 1.5", "channel must be a whole number"),
    ("[sampling]\ntop_k = 2.5", "sampling.top_k must be a whole number"),
    ("[settings]\ngap = inf", "settings.gap must be a finite number"),
    ("[settings]\nsilence = inf", "settings.silence must be a finite number"),
    ("[settings]\nlookahead = inf", "settings.lookahead must be a finite number"),
    ("[settings]\nlookahead = 1e6", "settings.lookahead must be > 0 and <= 10"),
    ("[settings]\nsilence = 1e6", "settings.silence must be 0-600"),
    ("[settings]\ngap = nan", "settings.gap must be a finite number"),
    ("[settings]\npassthrough = \"false\"", "settings.passthrough must be true or false"),
    ("random_seed = \"abc\"", "random_seed must be a whole number or empty"),
    ("random_seed = 1.5", "random_seed must be a whole number or empty"),
    ("random_seed = -1", "random_seed must be >= 0"),
    ("record = 5", "record must be a string"),
    ("synth = \"yes\"", "synth must be true or false"),
    ("[sampling]\ntemperature = \"hot\"", "sampling.temperature must be a number, got 'hot'"),
    ("[sampling]\nmax_duration = 1e9", "sampling.max_duration must be 0-60"),
    ("[sampling]\npitch_range = [21, 108.5]", "sampling.pitch_range[1] must be a whole number"),
    ("[controls]\npanic = 120.0", "controls.panic must be a whole number"),
    ("voices = 100000", "voices must be 1-128"),
]


@pytest.mark.parametrize("text, message", BAD_VALUES)
def test_values_of_the_wrong_type_or_range(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert message in str(err.value) and str(cfg) in str(err.value)


def test_non_utf8_config_names_the_file(tmp_path):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('input = "Kl\xe4vier"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=f"{cfg}: not UTF-8"):
        load_config(cfg)


@pytest.mark.parametrize("flags, message", [
    ({"settings.gap": float("inf")}, "settings.gap must be a finite number"),
    ({"settings.silence": float("nan")}, "settings.silence must be a finite number"),
    ({"sampling.top_p": float("nan")}, "sampling.top_p must be a finite number"),
    ({"sampling.temperature": float("inf")}, "sampling.temperature must be a finite number"),
    ({"channel": 16}, "channel must be 0-15"),
    ({"settings.held_keys": -1.0}, "settings.held_keys must be 0-3600"),
])
def test_bad_flag_values(flags, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        apply_flags(RunOptions(), flags)


def test_bad_config_is_one_line_before_any_port_opens(tmp_path):
    """No JACK server is named here at all: the config error comes first."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    cfg = tmp_path / "bad.toml"
    cfg.write_text("[settings]\nvelocity = 64.5\n")
    env = {**os.environ, "JACK_DEFAULT_SERVER": "nobody-runs-this", "JACK_NO_START_SERVER": "1"}
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--config", str(cfg),
                          "--virtual"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"improv: error: {cfg} [settings]: settings.velocity must be a whole number, got 64.5 "
        "(float)"]
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--gap", "inf", "--virtual"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "improv: error: settings.gap must be a finite number, got inf"]
