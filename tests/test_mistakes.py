"""Every documented user mistake gives one clear line and a non-zero exit: no traceback.

Each case runs the real ``improv`` command in a fresh process (no shared state, and the
same interpreter start-up a user gets)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

#: A process that imports improv.cli with TensorFlow, Keras and pandas made unimportable, as
#: in the runtime install (sys.modules[name] = None makes "import name" fail).
WITHOUT_TRAIN = ("import sys; [sys.modules.__setitem__(m, None) for m in "
                 "('tensorflow', 'keras', 'pandas')]; from improv.cli import main; "
                 "sys.exit(main(sys.argv[1:]))")


def improv(*args: str, code: str | None = None, cwd=REPO) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "improv",
                                                            *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistakes")
    (root / "empty.mid").write_bytes(b"")
    (root / "notamodel").mkdir()
    (root / "one").mkdir()  # a folder of one piece, "take": in the train split
    performance = REPO / "tests" / "data" / "maestro-asap" / "Bach" / "Fugue" / "bwv_846"
    (root / "one" / "take.mid").write_bytes((performance / "Shi05M.mid").read_bytes())
    return root


CASES = {
    "wav into a missing folder": (["generate", "-o", "{tmp}/e.mid", "--wav",
                                   "/nonexistent/dir/x.wav"], "no such folder /nonexistent/dir"),
    "demo wav into a missing folder": (["demo", "--wav", "/nonexistent/dir/x.wav"],
                                       "no such folder /nonexistent/dir"),
    "demo recording into a missing folder": (["demo", "--mid", "/nonexistent/dir/x.mid"],
                                             "no such folder /nonexistent/dir"),
    "empty seed file": (["generate", "-o", "{tmp}/e.mid", "--seed", "{tmp}/empty.mid"],
                        "empty file (0 bytes)"),
    "negative --max-step": (["generate", "-o", "{tmp}/e.mid", "--max-step", "-1"],
                            "max_step must be above 0"),
    "zero --max-duration": (["generate", "-o", "{tmp}/e.mid", "--max-duration", "0"],
                            "max_duration must be at least 0.02 s"),
    "zero --max-step for run": (["run", "--max-step", "0"], "max_step must be above 0"),
    "demo with a folder that is no model": (["demo", "--model", "{tmp}/notamodel"],
                                            "weights.npz"),
    "gain out of range": (["demo", "--gain", "11"], "--gain must be 0-10"),
    "train on missing data": (["train", "--data", "/nonexistent/midi"],
                              "improv data download asap"),
    "evaluate on missing data": (["evaluate", "--data", "/nonexistent/midi"],
                                 "improv data download asap"),
    "a bad --sha256": (["data", "download", "asap", "--to", "{tmp}/d", "--sha256", "xyz"],
                       "64 hex digits"),
    "evaluate a folder of one training piece": (["evaluate", "--data", "{tmp}/one"],
                                                "(1 file, split by piece; --split all scores"),
    "evaluate with a --memory of nan": (["evaluate", "--memory", "nan", "--data",
                                         "{tmp}/one", "--split", "all"],
                                        "--memory must be 0-1, got nan"),
    "bench JSON into a missing folder": (["bench", "engine", "--json", "/nonexistent/b.json"],
                                         "no such folder"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistake_gives_one_line(files, case):
    args, expected = CASES[case]
    proc = improv(*(a.format(tmp=files) for a in args))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("improv: error:") and expected in last, proc.stderr
    if case.startswith("evaluate with"):
        assert "scoring" not in proc.stderr  # refused before the work
    if case.startswith("demo with"):
        assert "improv demo:" not in proc.stderr  # no banner before the error


@pytest.mark.parametrize("args", [["train", "--data", "{tmp}"],
                                  ["evaluate", "--data", "{tmp}", "--split", "all"],
                                  ["plot", "roll", "{tmp}/empty.mid", "-o", "{tmp}/r.png"]])
def test_training_commands_without_the_train_extra_say_what_to_install(files, args):
    proc = improv(*(a.format(tmp=files) for a in args), code=WITHOUT_TRAIN)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "bash install.sh --train" in proc.stderr and "improv[train]" in proc.stderr


def test_runtime_commands_need_no_train_extra(tmp_path):
    """generate and bench engine run on the runtime install; bench skips the TensorFlow row."""
    proc = improv("generate", "-o", str(tmp_path / "g.mid"), "-n", "5", code=WITHOUT_TRAIN)
    assert proc.returncode == 0, proc.stderr
    proc = improv("bench", "engine", "--notes", "50", "--json", str(tmp_path / "b.json"),
                  code=WITHOUT_TRAIN)
    assert proc.returncode == 0, proc.stderr
    assert "model.predict row is skipped" in proc.stderr and "model.predict" not in proc.stdout


def test_recording_into_a_missing_folder_names_the_file():
    from improv.recorder import Recorder

    with pytest.raises(FileNotFoundError, match=r"/nonexistent/s\.mid: no such folder"):
        Recorder("/nonexistent/s.mid", 0.0)
