"""The phrase memory in the live improviser (its CC, learning, the file) and on the CLI."""

import json
import time

import mido
import numpy as np
import pytest

from improv.cli import main
from improv.config import ConfigError, RunOptions, apply_flags, load_config
from improv.controls import Controls, cc_to_memory
from improv.engine import NoteModel
from improv.improviser import Improviser, Settings
from improv.memory import DEFAULT_STRENGTH, MemoryFileError, PhraseMemory
from improv.sampling import Sampler, SamplingConfig
from improv.scheduler import Scheduler
from tests.conftest import REPO
from tests.test_memory import MOTIF

MODEL = REPO / "models" / "default"


def _improviser(settings: Settings, played: list | None = None, log=None) -> Improviser:
    played = [] if played is None else played
    greedy = SamplingConfig(temperature=0, timing_temperature=0, velocity_temperature=0)
    return Improviser(NoteModel.load(MODEL), Sampler(greedy, seed=1),
                      Scheduler(lambda msg: None), settings, log=log,
                      on_note=lambda note, who: played.append((who, note.pitch)))


def _call(improv: Improviser, pitches, t: float, step: float = 0.25) -> float:
    for i, pitch in enumerate(pitches):
        improv.handle(mido.Message("note_on", note=pitch, velocity=90), t + step * i)
        improv.handle(mido.Message("note_off", note=pitch), t + step * i + 0.2)
    return t + step * len(pitches)


def test_the_cc_sets_the_memory_weight():
    lines = []
    improv = _improviser(Settings(), log=lines.append)
    assert improv.settings.memory == DEFAULT_STRENGTH
    for value, want in ((0, 0.0), (127, 1.0), (64, 64 / 127)):
        improv.handle(mido.Message("control_change", control=Controls().memory, value=value))
        assert improv.settings.memory == pytest.approx(want)
    assert lines[-1] == f"memory {64 / 127:.2f}"
    assert cc_to_memory(200) == 1.0 and cc_to_memory(-3) == 0.0
    improv.close()


def test_the_memory_cc_can_be_moved_or_turned_off():
    assert Controls(memory=-1).action(16) is None
    assert Controls(memory=20).action(20) == "memory"
    with pytest.raises(ValueError, match="both use CC1"):
        Controls(memory=1)


def test_the_player_and_improv_are_learned_apart():
    played = []
    improv = _improviser(Settings(silence=0.5, answer_notes=6), played)
    t = _call(improv, MOTIF, 100.0)
    improv.tick(t + 2.0)
    assert improv.memory.notes == {"player": len(MOTIF), "own": 6}
    assert [who for who, _ in played].count("improv") == 6
    improv.close()


#: A motif on the C major scale, all seven of its notes, with no three intervals in a row
#: twice (the memory leans to the key and offers no note off it; MOTIF has nine classes).
SCALE_MOTIF = [60, 62, 64, 65, 67, 64, 60, 65, 69, 67, 71]


def test_at_full_weight_the_answer_echoes_a_call_played_twice():
    """Greedy, memory 1: after the motif twice and its first three notes again, improv
    plays the motif on; with the memory off it does not."""
    answers = {}
    for weight in (0.0, 1.0):
        played = []
        improv = _improviser(Settings(silence=0.5, answer_notes=8, memory=weight), played)
        t = _call(improv, SCALE_MOTIF * 2 + SCALE_MOTIF[:3], 100.0)
        improv.tick(t + 2.0)
        answers[weight] = [p for who, p in played if who == "improv"]
        improv.close()
    assert answers[1.0] == SCALE_MOTIF[3:11]
    assert answers[0.0] != SCALE_MOTIF[3:11]


def test_the_memory_file_is_kept_across_sessions(tmp_path):
    path = tmp_path / "me.json"
    improv = _improviser(Settings(silence=0.5, answer_notes=4, memory_file=str(path)))
    t = _call(improv, MOTIF, 100.0)
    improv.tick(t + 2.0)
    improv.close()
    kept = PhraseMemory.load(path)
    assert kept.notes == {"player": len(MOTIF), "own": 4}
    again = _improviser(Settings(memory_file=str(path)))
    assert again.memory.to_dict()["contexts"] == kept.to_dict()["contexts"]
    again.close()


def test_a_damaged_memory_file_is_set_aside_and_the_session_starts_empty(tmp_path):
    path = tmp_path / "me.json"
    path.write_text('{"format": "improv-memory", "version": 1, "contex')
    lines = []
    improv = _improviser(Settings(memory_file=str(path)), log=lines.append)
    assert len(improv.memory) == 0
    assert len(lines) == 1 and "damaged" in lines[0] and "empty memory" in lines[0]
    assert (tmp_path / "me.json.damaged").exists() and not path.exists()
    improv.close()
    assert PhraseMemory.load(path).notes == {"player": 0, "own": 0}


def test_memory_settings_from_the_config_file_and_flags(tmp_path):
    cfg = tmp_path / "improv.toml"
    cfg.write_text('[settings]\nmemory = 0.8\nmemory_file = "me.json"\n[controls]\nmemory = 17\n')
    options = load_config(cfg)
    assert options.settings.memory == 0.8 and options.settings.memory_file == "me.json"
    assert options.controls.memory == 17
    assert apply_flags(options, {"settings.memory": 0.0}).settings.memory == 0.0
    for bad in ("1.5", "-0.1", '"a lot"'):
        cfg.write_text(f"[settings]\nmemory = {bad}\n")
        with pytest.raises(ConfigError, match="memory"):
            load_config(cfg)
    with pytest.raises(ConfigError, match="memory"):
        apply_flags(RunOptions(), {"settings.memory": 2.0})


def test_generate_keeps_the_memory_file_and_show_and_clear_it(tmp_path, capsys):
    path = tmp_path / "me.json"
    out = tmp_path / "o.mid"
    assert main(["generate", "-o", str(out), "-n", "20", "--random-seed", "1",
                 "--memory-file", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["notes"] == {"player": 64, "own": 20}
    capsys.readouterr()
    assert main(["memory", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "64 notes of the player's and 20 of improv's" in shown
    assert main(["memory", "clear", str(path)]) == 0
    assert PhraseMemory.load(path).notes == {"player": 0, "own": 0}


def test_generate_memory_weight_changes_the_answer_and_0_turns_it_off(tmp_path):
    from improv.midifile import read_midi

    got = {}
    for weight in ("0", "0.5", "1"):
        out = tmp_path / f"{weight}.mid"
        assert main(["generate", "-o", str(out), "-n", "40", "--random-seed", "2",
                     "--memory", weight]) == 0
        got[weight] = read_midi(out)["pitch"].tolist()
    assert got["0"] != got["1"]


@pytest.mark.parametrize("args,message", [
    (["memory", "show", "{dir}/none.json"], "no such file"),
    (["memory", "show", "{dir}/bad.json"], "damaged memory file"),
    (["generate", "-o", "{dir}/o.mid", "--memory", "1.5"], "--memory must be 0-1"),
    (["memory", "clear", "{dir}/no/such/m.json"], "no such folder"),
    (["generate", "-o", "{dir}/o.mid", "--memory-file", "{dir}/no/m.json"], "no such folder"),
    (["generate", "-o", "{dir}/o.mid", "--memory-file", "{dir}/folder"], "a folder, not a"),
])
def test_memory_mistakes_give_one_line(tmp_path, capsys, args, message):
    (tmp_path / "bad.json").write_bytes(b'{"format": "improv-memory", "version": \x00\x01')
    (tmp_path / "folder").mkdir()
    assert main([a.format(dir=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.mid").exists()  # refused before any work
    assert (tmp_path / "folder").is_dir() and not (tmp_path / "folder.damaged").exists()


def test_a_file_that_is_no_memory_file_is_refused_and_left_as_it_is(tmp_path, capsys):
    """A MIDI file (or any file of the user's) named as the memory file by mistake: not
    replaced by an empty memory (clear), not set aside as damaged (generate, run)."""
    seed = tmp_path / "seed.mid"
    seed.write_bytes(next((REPO / "tests" / "data").rglob("*.mid")).read_bytes())
    before = seed.read_bytes()
    out = tmp_path / "o.mid"
    for args in (["memory", "clear", str(seed)], ["memory", "show", str(seed)],
                 ["generate", "-o", str(out), "-n", "5", "--memory-file", str(seed)]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "not an improv memory file" in err and err.count("\n") == 1
    with pytest.raises(MemoryFileError, match="not an improv memory file"):
        _improviser(Settings(memory_file=str(seed)))
    assert seed.read_bytes() == before and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.mid"]  # no .damaged, no lock


def test_a_text_that_names_the_format_is_no_memory_file(tmp_path, capsys):
    """`memory clear README.md` replaced a README (it names the format) with a memory."""
    readme = tmp_path / "README.md"
    readme.write_bytes((REPO / "README.md").read_bytes())
    before = readme.read_bytes()
    assert b"improv-memory" in before
    for args in (["memory", "clear", str(readme)],
                 ["generate", "-o", str(tmp_path / "o.mid"), "-n", "5", "--memory-file",
                  str(readme)]):
        assert main(args) == 1
        assert "not an improv memory file" in capsys.readouterr().err
    assert readme.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_a_memory_file_name_too_long_to_save_is_refused_at_the_start(tmp_path, capsys):
    """Found when the memory was written (the temporary file's name is 19 bytes longer),
    it lost the session's learning, and gave clear a traceback."""
    path = tmp_path / ("a" * 235 + ".json")
    path.write_bytes(b"")
    out = tmp_path / "o.mid"
    for args in (["memory", "clear", str(path)],
                 ["generate", "-o", str(out), "-n", "5", "--memory-file", str(path)]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "too long a name to write safely here" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="too long a name"):
        _improviser(Settings(memory_file=str(path)))
    assert not out.exists()
    short = tmp_path / ("a" * 220 + ".json")
    assert main(["memory", "clear", str(short)]) == 0 and short.stat().st_size > 0


def test_an_empty_memory_file_name_is_no_file_in_generate_as_in_run(tmp_path):
    out = tmp_path / "o.mid"
    assert main(["generate", "-o", str(out), "-n", "5", "--memory-file", ""]) == 0
    assert out.exists()


def test_a_memory_file_that_became_a_pipe_is_not_written_into(tmp_path):
    """Replaced by a FIFO mid-session: written into, it held improv's exit (and the
    autosave) until something read the pipe; now it is refused with one line."""
    import os
    import stat

    path = tmp_path / "me.json"
    lines = []
    improv = _improviser(Settings(silence=0.5, answer_notes=2, memory_file=str(path)),
                         log=lines.append)
    t = _call(improv, MOTIF, 100.0)
    improv.tick(t + 2.0)
    os.mkfifo(path)
    # a reader, so that a write into the pipe would go through (not hang) and be seen
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + 60  # the answer ends (the scheduler's thread)
        while improv.scheduler.busy and time.monotonic() < deadline:
            time.sleep(0.001)
        for _ in range(100):  # a few turns encode the file, then the write fails
            if lines:
                break
            improv.autosave(t + 100.0)
        assert len(lines) == 1
        assert improv.close() is False
        assert os.read(reader, 1 << 16) == b""  # nothing went into the pipe
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(path.stat().st_mode)
    assert lines and all("not a file" in line for line in lines), lines
    assert lines[-1].startswith(f"could not write the memory to {path}")


@pytest.mark.parametrize("where", ["no/such/m.json", "folder"])
def test_a_memory_file_that_cannot_be_written_is_refused_at_the_start(tmp_path, where):
    """Not found at the end of the session, when what it learned would be lost."""
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError if where == "folder" else FileNotFoundError,
                       match="not a memory file" if where == "folder" else "no such folder"):
        _improviser(Settings(memory_file=str(tmp_path / where)))
    assert (tmp_path / "folder").is_dir() and not (tmp_path / "folder.damaged").exists()


def test_evaluate_music_reports_motif_reuse_with_and_without_memory():
    from improv.corpus import find_midi_files, load_corpus
    from improv.musicstats import evaluate_music, motif_reuse

    call = np.array([[p, 0.2, 0.2, 64] for p in MOTIF], float)
    echo = np.array([[p + 3, 0.2, 0.2, 64] for p in MOTIF[2:9]], float)
    assert motif_reuse(call, echo) == 1.0
    assert motif_reuse(call, np.array([[60, 0, 0, 0], [61, 0, 0, 0]] * 4, float)) == 0.0
    files = find_midi_files(REPO / "tests" / "data" / "maestro-asap")[:2]
    corpus = load_corpus(files, progress=False)
    result, _ = evaluate_music(MODEL, corpus.files, corpus.notes, (1.0,), 30, 60,
                               memory=0.5)
    assert 0 <= result["real"]["motif_reuse"] <= 1
    with_memory = result["memory"]["temperatures"]["1.0"]["call_response"]["motif_reuse"]
    assert 0 <= with_memory <= 1 and result["memory"]["strength"] == 0.5


def test_evaluate_music_draws_average_seeded_runs_and_the_memory_change():
    """--draws N: each number is the mean of N one-draw runs at random seeds 0..N-1, and the
    memory's change is taken draw by draw (the same seeds with and without it)."""
    from improv.corpus import find_midi_files, load_corpus
    from improv.musicstats import evaluate_music, summary

    files = find_midi_files(REPO / "tests" / "data" / "maestro-asap")[:2]
    corpus = load_corpus(files, progress=False)
    args = (MODEL, corpus.files, corpus.notes, (1.0,), 30, 40)
    both, notes = evaluate_music(*args, memory=0.5, draws=2)
    ones = [evaluate_music(*args, memory=0.5, random_seed=seed)[0] for seed in (0, 1)]
    for where in (lambda r: r, lambda r: r["memory"]):
        first, second = (summary(where(one)["temperatures"]["1.0"]) for one in ones)
        assert first != second and "draws" not in where(ones[0])["temperatures"]["1.0"]
        run = where(both)["temperatures"]["1.0"]
        assert run["draws"] == [first, second]
        assert summary(run) == pytest.approx({k: (first[k] + second[k]) / 2 for k in first})
    generated, real = notes[1.0]  # for the plot: every draw's notes, the real ones once
    assert len(generated) == 2 * len(real) == 2 * 2 * 40
    change = both["memory"]["difference"]["1.0"]["motif_reuse"]
    changes = [summary(one["memory"]["temperatures"]["1.0"])["motif_reuse"]
               - summary(one["temperatures"]["1.0"])["motif_reuse"] for one in ones]
    assert change["mean"] == pytest.approx(sum(changes) / 2)
    assert change["standard_error"] == pytest.approx(abs(changes[0] - changes[1]) / 2)
    assert ones[0]["memory"]["difference"]["1.0"]["motif_reuse"]["standard_error"] is None
    with pytest.raises(ValueError, match="draws must be at least 1"):
        evaluate_music(*args, draws=0)
