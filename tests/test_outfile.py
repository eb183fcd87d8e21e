"""Files improv writes (improv.outfile): refused before the work when they cannot be written,
written whole or not at all, and what a user gets from each command that writes one."""

from __future__ import annotations

import os
import stat
import wave

import numpy as np
import pytest

from improv.cli import main
from improv.errors import InvalidValueError, MissingFileError
from improv.outfile import check_outputs, replacing, write_atomically
from tests.conftest import REPO, TEST_DATA


def test_outputs_are_checked_before_the_work(tmp_path):
    check_outputs(tmp_path / "a.mid", None, tmp_path / "b.wav")
    with pytest.raises(MissingFileError, match="no such folder"):
        check_outputs(tmp_path / "no" / "a.mid")
    with pytest.raises(InvalidValueError, match="a folder, not a file"):
        check_outputs(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(InvalidValueError, match="named for two outputs"):
        check_outputs(tmp_path / "a.mid", tmp_path / "sub" / ".." / "a.mid")
    (tmp_path / "link.mid").symlink_to(tmp_path / "a.mid")
    with pytest.raises(InvalidValueError, match="named for two outputs"):
        check_outputs(tmp_path / "a.mid", tmp_path / "link.mid")


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "take.wav"
    path.write_bytes(b"the old take")
    with pytest.raises(OSError, match="File too large"), replacing(path) as tmp:
        tmp.write_bytes(b"half of the new")
        raise OSError(27, "File too large")
    assert path.read_bytes() == b"the old take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]


def test_a_file_keeps_its_mode_and_a_link_its_target(tmp_path):
    path, link = tmp_path / "m.json", tmp_path / "link.json"
    path.write_text("old")
    path.chmod(0o640)
    link.symlink_to(path)
    write_atomically(link, "new")
    assert link.is_symlink() and path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    write_atomically(tmp_path / "fresh.json", "x")  # a new file: 0o666 less the umask
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "fresh.json").stat().st_mode) == 0o666 & ~umask


def test_a_wav_cut_short_leaves_the_old_one(tmp_path, monkeypatch):
    from improv.synth import write_wav

    path = tmp_path / "g.wav"
    write_wav(path, np.zeros((100, 2), np.int16))
    before = path.read_bytes()

    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wave.Wave_write, "writeframes", full)
    with pytest.raises(OSError):
        write_wav(path, np.ones((1000, 2), np.int16))
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


CASES = {
    "generate into a folder": (["generate", "-o", "{tmp}", "-n", "5"], "a folder, not a file"),
    "one file for the MIDI and the WAV": (["generate", "-o", "{tmp}/x.mid", "--wav",
                                           "{tmp}/x.mid", "-n", "5"], "named for two outputs"),
    "one file for the MIDI and the memory": (["generate", "-o", "{tmp}/x.mid", "--memory-file",
                                              "{tmp}/x.mid", "-n", "5"],
                                             "named for two outputs"),
    "a negative random seed": (["generate", "-o", "{tmp}/x.mid", "--random-seed", "-1"],
                               "--random-seed must be 0 or more"),
    "too many notes": (["generate", "-o", "{tmp}/x.mid", "-n", "10000000000"], "--notes must"),
    "a step of 1000 s": (["generate", "-o", "{tmp}/x.mid", "--max-step", "1000"], "max_step"),
    "demo's WAV and recording in one file": (["demo", "--wav", "{tmp}/d.x", "--mid", "{tmp}/d.x"],
                                             "named for two outputs"),
    "evaluate's JSON into a missing folder": (["evaluate", "--music", "--data", "{data}",
                                               "--json", "{tmp}/no/e.json"], "no such folder"),
    "evaluate's plot of no image type": (["evaluate", "--music", "--data", "{data}", "--png",
                                          "{tmp}/e.txt"], "not an image file name"),
    "evaluate with negative seed notes": (["evaluate", "--music", "--data", "{data}",
                                           "--seed-notes", "-5"], "--seed-notes must be"),
    "evaluate with negative max files": (["evaluate", "--music", "--data", "{data}",
                                          "--max-files", "-1"], "--max-files must be"),
    "evaluate with no draws": (["evaluate", "--music", "--data", "{data}", "--draws", "0"],
                               "--draws must be at least 1"),
    "plot of no image type": (["plot", "roll", "{seed}", "-o", "{tmp}/r.txt"],
                              "not an image file name"),
    "plot of no notes": (["plot", "roll", "{seed}", "-o", "{tmp}/r.png", "--count", "0"],
                         "--count must be at least 1"),
    "a damaged training history": (["plot", "history", "{tmp}/history.json", "-o",
                                    "{tmp}/h.png"], "damaged"),
    "bench of no notes": (["bench", "engine", "--notes", "0", "--json", "{tmp}/b.json"],
                          "--notes must be at least 1"),
    "a soak of NaN minutes": (["bench", "soak", "--minutes", "nan", "--json", "{tmp}/b.json"],
                              "--minutes must be above 0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_command_refuses_an_output_it_cannot_write_before_its_work(tmp_path, capsys,
                                                                         case):
    args, expected = CASES[case]
    (tmp_path / "history.json").write_text('{"loss": [1.0, 0.')
    fill = {"tmp": tmp_path, "data": TEST_DATA / "maestro-asap",
            "seed": REPO / "improv" / "seeds" / "bach_prelude_846.mid"}
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([a.format(**fill) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("improv: error:") and expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_damaged_card_is_one_line(tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(REPO / "models" / "tutorial-5files", model)
    (model / "card.json").write_text('{"config": {"data": [')
    assert main(["evaluate", str(model), "--music", "--data",
                 str(TEST_DATA / "maestro-asap")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged card" in err, err


@pytest.mark.parametrize("history, why", [('{"loss": [1, "x", null]}', "damaged"),
                                           ('{"loss": 3}', "damaged"),
                                           ('{"loss": [true]}', "damaged"),
                                           ("{}", "no epochs to plot")])
def test_a_damaged_or_empty_history_is_one_line_when_plotted(tmp_path, capsys, history, why):
    """A string or null among the losses was a ValueError traceback from matplotlib; an
    empty history (a run that trained no batch) an empty plot (a red-team run)."""
    path = tmp_path / "history.json"
    path.write_text(history)
    assert main(["plot", "history", str(path), "-o", str(tmp_path / "h.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"improv: error: {path}: {why}") and err.count("\n") == 1, err
    assert not (tmp_path / "h.png").exists()


@pytest.mark.parametrize("music", ['{"summary": "oops"}', '{"summary": {"0.9": {}}}',
                                   '{"summary": {"0.9": {"pitch_overlap": "x"}}}', '[1]'])
def test_a_card_with_damaged_music_results_is_one_line_when_plotted(tmp_path, capsys, music):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(REPO / "models" / "default", model)
    card = json.loads((model / "card.json").read_text())
    card["music"] = json.loads(music)
    (model / "card.json").write_text(json.dumps(card))
    assert main(["plot", "music", str(model), "-o", str(tmp_path / "m.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "music results are damaged" in err, err
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("memory", ['"oops"', '{"summary": {"0.9": {}}}', '{"summary": {}}'])
def test_damaged_memory_rows_of_music_results_are_one_line_when_plotted(tmp_path, capsys,
                                                                         memory):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(REPO / "models" / "default", model)
    card = json.loads((model / "card.json").read_text())
    assert main(["plot", "music", str(model), "-o", str(tmp_path / "ok.png")]) == 0
    card["music"]["memory"] = json.loads(memory)
    (model / "card.json").write_text(json.dumps(card))
    assert main(["plot", "music", str(model), "-o", str(tmp_path / "m.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "music results are damaged" in err, err
    assert not (tmp_path / "m.png").exists()


def test_ctrl_c_says_interrupted(monkeypatch, capsys):
    import improv.commands.generate as generate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "command", interrupted)
    assert main(["generate", "-o", "x.mid"]) == 130
    assert capsys.readouterr().err == "improv: interrupted\n"


def test_damaged_memory_files_set_aside_are_all_kept(tmp_path):
    from improv.memory import open_memory

    path, lines = tmp_path / "m.json", []
    first, second = ('{"format": "improv-memory", "first' + n for n in "12")
    for text in (first, second):
        path.write_text(text)
        assert len(open_memory(path, lines.append)) == 0
    assert (tmp_path / "m.json.damaged").read_text() == first
    assert (tmp_path / "m.json.damaged.1").read_text() == second
    assert "m.json.damaged.1" in lines[1]


def test_a_memory_file_that_is_no_file_is_refused(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # reading it would wait for a writer for ever
    for action in ("show", "clear"):
        assert main(["memory", action, str(fifo)]) == 1
        assert "not a file" in capsys.readouterr().err
    assert main(["memory", "clear", str(tmp_path)]) == 1
    assert "a folder" in capsys.readouterr().err
    assert tmp_path.is_dir() and stat.S_ISFIFO(fifo.stat().st_mode)


def test_bad_training_settings_are_refused():
    from improv.trainconfig import TrainConfig

    for bad in ({"learning_rate": float("nan")}, {"pitch_weight": float("inf")},
                {"max_minutes": -5.0}, {"max_files": -3}, {"patience": -1},
                {"vocab_size": 1000}, {"units": 10 ** 7}):
        with pytest.raises(InvalidValueError):
            TrainConfig(**bad)


def test_a_file_name_that_is_not_utf8_gets_a_split():
    from improv.corpus import split_for_piece

    assert split_for_piece(os.fsdecode(b"Bach/caf\xe9")) in ("train", "validation", "test")
    assert split_for_piece("Bach/Fugue") == split_for_piece(os.fsdecode(b"Bach/Fugue"))


def test_a_config_nested_thousands_deep_is_one_line(tmp_path):
    from improv.config import ConfigError, load_config

    cfg = tmp_path / "deep.toml"
    cfg.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deep|not valid TOML"):
        load_config(cfg)


def test_a_device_or_pipe_is_written_into_not_replaced(tmp_path):
    check_outputs(os.devnull)  # an output, not a file to put in its place
    write_atomically(os.devnull, "nothing")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomically(fifo, b"through")
        assert os.read(reader, 100) == b"through" and stat.S_ISFIFO(fifo.stat().st_mode)
    finally:
        os.close(reader)


def test_an_output_this_user_may_not_write_is_refused_before_the_work(tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # (root may write anything)
    with pytest.raises(InvalidValueError, match="cannot be written here"):
        check_outputs(tmp_path / "a.mid")


def test_a_memory_that_cannot_be_saved_after_generate_is_one_line(tmp_path, capsys,
                                                                   monkeypatch):
    from improv.memory import PhraseMemory

    def full(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PhraseMemory, "save", full)
    out, memory = tmp_path / "g.mid", tmp_path / "m.json"
    assert main(["generate", "-o", str(out), "-n", "5", "--memory-file", str(memory)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left" in err and f"{out} was written" in err
    assert out.exists() and not memory.exists()


def test_outputs_are_checked_where_the_system_cannot_say_its_limits(tmp_path, monkeypatch):
    """Windows has no pathconf and no statvfs: 255 bytes, and no read-only test."""
    monkeypatch.delattr(os, "pathconf")
    monkeypatch.delattr(os, "statvfs")
    check_outputs(tmp_path / "o.mid")
    with pytest.raises(ValueError, match="too long a name"):
        check_outputs(tmp_path / ("a" * 250 + ".mid"))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match="permission denied"):
        check_outputs(tmp_path / "o.mid")


def _limited(blocks: int):
    """A child's file-size limit, in 512-byte blocks (as ``ulimit -f``)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (blocks * 512, blocks * 512))


def test_a_write_the_system_refuses_is_one_line_and_leaves_the_old_file(tmp_path):
    """A full disk or a file-size limit met while writing (checked before, there was room)
    was a traceback from deep in mido or wave (a red-team run, 2026-12-02)."""
    import subprocess
    import sys

    old = tmp_path / "take.mid"
    old.write_bytes(b"the old take")
    out = subprocess.run([sys.executable, "-m", "improv", "generate", "-o", str(old), "-n",
                          "3000"], preexec_fn=_limited(2), capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 1
    assert out.stderr == f"improv: error: {old}: could not be written (File too large)\n"
    assert old.read_bytes() == b"the old take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]  # no temporary file


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_wav_that_cannot_be_written_says_the_midi_file_was(tmp_path, capsys):
    mid = tmp_path / "a.mid"
    assert main(["generate", "-o", str(mid), "-n", "5", "--wav", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert err == (f"improv: error: /dev/full: could not be written (No space left on "
                   f"device); {mid} was written\n")
    assert mid.stat().st_size > 0


def test_an_output_that_is_a_file_improv_reads_is_refused(tmp_path, capsys):
    """``generate --seed s.mid --wav s.mid`` replaced the seed with the WAV; ``run --config
    c.toml --record c.toml`` the config file with the recording (a red-team run)."""
    seed = tmp_path / "s.mid"
    assert main(["generate", "-o", str(seed), "-n", "5"]) == 0
    before = seed.read_bytes()
    (tmp_path / "link.mid").symlink_to(seed)
    capsys.readouterr()
    for output in (["-o", str(seed)], ["-o", str(tmp_path / "o.mid"), "--wav",
                                        str(tmp_path / "link.mid")]):
        assert main(["generate", "--seed", str(seed), "-n", "5", *output]) == 1
        assert "which improv reads; name another file" in capsys.readouterr().err
    assert seed.read_bytes() == before and not (tmp_path / "o.mid").exists()
    config = tmp_path / "c.toml"
    config.write_text(f'record = "{config}"\n')
    assert main(["run", "--config", str(config)]) == 1
    assert capsys.readouterr().err == (f"improv: error: {config}: that is the config file "
                                       f"({config}), which improv reads; name another file "
                                       "to write\n")
    assert config.read_text() == f'record = "{config}"\n'


def test_evaluate_never_writes_over_its_model_or_its_data(tmp_path, capsys):
    """``evaluate --json`` named as a data file or a file of the model replaced it (the
    model then could not be loaded: a red-team run, 2026-12-02)."""
    import shutil

    model, data = tmp_path / "model", tmp_path / "data"
    shutil.copytree(REPO / "models" / "default", model)
    data.mkdir()
    piece = TEST_DATA / "maestro-asap" / "Bach" / "Fugue" / "bwv_846" / "Shi05M.mid"
    shutil.copy(piece, data / "take.mid")
    before = {p: p.read_bytes() for p in [*model.iterdir(), data / "take.mid"]}
    for json_path, what in ((data / "take.mid", "a data file"),
                            (model / "card.json", f"a file of the model {model}")):
        for music in ([], ["--music"]):
            assert main(["evaluate", str(model), "--data", str(data), "--split", "all",
                         "--json", str(json_path), *music]) == 1
            assert capsys.readouterr().err == (f"improv: error: {json_path}: that is {what} "
                                               f"({json_path}), which improv reads; name "
                                               "another file to write\n")
    assert {p: p.read_bytes() for p in before} == before
