"""One error base: every error a user can cause is an ImprovError and still its built-in."""

from __future__ import annotations

import pytest

from improv import cli
from improv.config import ConfigError
from improv.corpus import DataError
from improv.data import DownloadError
from improv.errors import ImprovError, InvalidValueError, MissingFileError
from improv.memory import MemoryFileError
from improv.midifile import MidiReadError
from improv.ports import PortError
from improv.soundfont import SoundfontError
from improv.synth import SynthError
from improv.weights import ModelError


@pytest.mark.parametrize("error, builtin", [
    (InvalidValueError, ValueError), (MissingFileError, FileNotFoundError),
    (ConfigError, ValueError), (PortError, OSError), (ModelError, ValueError),
    (SynthError, RuntimeError), (SoundfontError, FileNotFoundError),
    (MidiReadError, ValueError), (DataError, ValueError), (DownloadError, ValueError),
    (MemoryFileError, ValueError)])
def test_each_error_is_an_improv_error_and_its_builtin(error, builtin):
    assert issubclass(error, ImprovError)
    assert issubclass(error, builtin)


def test_an_improv_error_is_one_line_and_status_1(monkeypatch, capsys):
    def fails(args):
        raise ModelError("models/x: no such file")

    monkeypatch.setattr("improv.commands.ports.command", fails)
    assert cli.main(["ports"]) == 1
    assert capsys.readouterr().err == "improv: error: models/x: no such file\n"


def test_a_bug_shows_its_traceback(monkeypatch):
    def bug(args):
        raise ValueError("a bug, not the user's doing")

    monkeypatch.setattr("improv.commands.ports.command", bug)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["ports"])
