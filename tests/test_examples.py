"""Every script in examples/ runs and does what its docstring says."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

EXAMPLES = REPO / "examples"


def run(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # pyfluidsynth may say where it found its library (it depends on the machine)
    return "\n".join(line for line in proc.stdout.splitlines()
                     if not line.startswith("'fluidsynth' was found")) + "\n"


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {
        "engine_alone.py", "drive_improviser.py", "custom_output.py"}


def test_engine_alone_draws_the_notes_asked_for_the_same_each_run():
    out = run("engine_alone.py", "5")
    assert len(out.splitlines()) == 5 and all("step" in line for line in out.splitlines())
    assert run("engine_alone.py", "5") == out


def test_drive_improviser_answers_the_call():
    lines = run("drive_improviser.py").splitlines()
    assert lines[0] == "heard 4 notes, answered 8:"
    assert len(lines) == 9


def test_custom_output_hears_the_answer():
    lines = run("custom_output.py").splitlines()
    assert sum(line.startswith("improv plays ") for line in lines) >= 6
    assert lines[-1].startswith("output closed after ")
