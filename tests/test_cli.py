"""Bad input at the command line: one clear line, a non-zero exit, nothing lost."""

import subprocess
import sys

from improv.cli import main
from tests.conftest import REPO, write_midi


def _run(*args):
    return subprocess.run([sys.executable, "-m", "improv", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_nonsense_flags():
    proc = _run("train", "--epochs", "many")
    assert proc.returncode == 2
    assert "invalid int value: 'many'" in proc.stderr
    proc = _run("dance")
    assert proc.returncode == 2 and "invalid choice: 'dance'" in proc.stderr


def test_out_of_range_config(capsys, tmp_path):
    assert main(["train", "--epochs", "0", "--out", str(tmp_path / "m")]) == 1
    assert "epochs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_data_folder_without_midi(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("no midi")
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("improv: error:") and "no MIDI files" in err[-1]


def test_all_files_unreadable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IMPROV_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bad.mid").write_bytes(b"garbage")
    write_midi(tmp_path / "data" / "drums.mid", [(36, 0, 0.1, 100)], drum=True)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no readable training files" in err and err.count("warning: skipped") == 2


def test_model_folder_with_missing_or_truncated_file(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--data", str(tmp_path)]) == 1
    assert "model.keras: no such file" in capsys.readouterr().err
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    write_midi(tmp_path / "x.mid", [(60, i * 0.1, i * 0.1 + 0.1, 90) for i in range(40)])
    assert main(["evaluate", str(tmp_path), "--data", str(tmp_path), "--split", "all",
                 "--quiet"]) == 1
    assert "cannot load the Keras model" in capsys.readouterr().err


def test_plot_commands(tmp_path, real_midi):
    for kind in ("roll", "distributions"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", kind, str(real_midi), "-o", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", "history", str(REPO / "models" / "default"), "-o",
                 str(tmp_path / "h.png")]) == 0


#: Flags whose values have a form of their own (or need another flag).
SAMPLES = {"tempo": (["--tempo", "96"], 96.0), "quantize": (["--quantize", "1/8"], "1/8"),
           "meter": (["--meter", "3/4"], "3/4"),
           "swing": (["--quantize", "1/16", "--swing", "0.5"], 0.5)}


def test_every_run_flag_sets_the_config_key_of_its_field():
    # Flags come from the settings' fields (improv.flags): each one given on the command
    # line lands in the field of its name, in its section ([time] tempo for --tempo).
    import dataclasses

    from improv.cli import build_parser
    from improv.commands.run import _run_options
    from improv.config import RunOptions, section_classes

    classes = {"": RunOptions, **section_classes()}
    parser = build_parser()
    checked = 0
    for section, names in parser.parse_args(["run"]).option_flags.items():
        for f in dataclasses.fields(classes[section]):
            if f.name not in names:
                continue
            default, flag = f.default, f"--{f.name.replace('_', '-')}"
            argv = []
            # A value other than the default, so that it shows where it landed.
            if isinstance(default, bool):
                argv, want = [f"--{'no-' if default else ''}{flag[2:]}"], not default
            elif f.name in SAMPLES:
                argv, want = SAMPLES[f.name]
            elif "choices" in f.metadata:
                want = next(c for c in f.metadata["choices"] if c != default)
            elif isinstance(default, float):
                want = default / 2 if default else 0.5
            elif isinstance(default, int) or default is None:
                want = (default or 0) + 1
            else:
                want = "x"
            argv = argv or [flag, str(want)]
            options = _run_options(parser.parse_args(["run", *argv]))
            holder = getattr(options, section) if section else options
            assert getattr(holder, f.name) == want, (argv, section)
            checked += 1
    assert checked >= 35  # every flag of improv run but --config, --gain, --status-json


def test_a_name_stdout_cannot_encode_is_escaped_not_a_crash(tmp_path):
    """Under PYTHONIOENCODING=ascii, `generate` wrote the file, then failed on printing its
    accented name: a traceback and status 1."""
    import os

    out = tmp_path / "café.mid"
    proc = subprocess.run([sys.executable, "-m", "improv", "generate", "-n", "3", "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert "caf\\xe9.mid" in proc.stdout and out.exists()
