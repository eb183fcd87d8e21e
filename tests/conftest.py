"""Shared fixtures: small generated MIDI files and a tiny data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

REPO = Path(__file__).resolve().parent.parent
#: The full data sets, beside the checkout (CI has them; a plain clone does not).
DATA = REPO.parent / "shared" / "data"
#: Six small real performances shipped with the tests, in the full sets' layout (SOURCE.md).
TEST_DATA = Path(__file__).resolve().parent / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_midi(path: Path, notes: list[tuple[int, float, float, int]], drum: bool = False,
               program: int = 0) -> Path:
    """Write (pitch, start, end, velocity) notes as one instrument."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program, is_drum=drum)
    for pitch, start, end, vel in notes:
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=end))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def random_piece(rng: np.random.Generator, n: int) -> list[tuple[int, float, float, int]]:
    """Return ``n`` plausible piano notes: a random walk in pitch, steps of 0-0.5 s."""
    pitch, t, out = 60, 0.0, []
    for _ in range(n):
        pitch = int(np.clip(pitch + rng.integers(-5, 6), 30, 90))
        t += float(rng.choice([0.0, 0.125, 0.25, 0.5]))
        out.append((pitch, round(t, 3), round(t + float(rng.choice([0.1, 0.25, 0.5])), 3),
                    int(rng.integers(40, 110))))
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A folder of 24 generated pieces (about 200 notes each) in all three splits."""
    root = tmp_path_factory.mktemp("tiny_data")
    rng = np.random.default_rng(0)
    for i in range(24):
        write_midi(root / f"piece{i:02d}.mid", random_piece(rng, 200))
    return root


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "corpus: needs the full data sets in ../shared/data")
    config.addinivalue_line("markers", "jack: starts a JACK server (jackd -d dummy); "
                            "-m 'not jack' runs the fast tier")
    config.addinivalue_line("markers", "slow: takes many seconds (trains a model, plays in "
                            "real time)")


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test that uses the ``jack`` fixture ``jack`` (so ``-m "not jack"`` leaves
    it out whatever its module says); skip tests marked ``corpus`` where the full data
    sets are absent (a plain clone)."""
    for item in items:
        if "jack" in getattr(item, "fixturenames", ()) and "jack" not in item.keywords:
            item.add_marker(pytest.mark.jack)
    missing = [name for name in ("maestro-asap", "asap-ecompetition")
               if not (DATA / name).is_dir()]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"full corpus absent: no {DATA / missing[0]} "
                            "(improv data download asap --to ../shared/data)")
    for item in items:
        if "corpus" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_midi() -> Path:
    """A real performance (Bach, Fugue BWV 846; shipped in tests/data, see SOURCE.md)."""
    return TEST_DATA / "maestro-asap" / "Bach" / "Fugue" / "bwv_846" / "Shi05M.mid"


@pytest.fixture(scope="session")
def jack(tmp_path_factory):
    """A JACK server (dummy driver) for tests on real MIDI ports; skipped without jackd."""
    from tests.live import JackMissing, JackServer

    try:
        server = JackServer(tmp_path_factory.mktemp("jack") / "jackd.log")
    except JackMissing as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def call_notes(real_midi):
    """A short real phrase (the first 12 notes of a performance), as (pitch, start, end, vel)."""
    from improv.midifile import read_midi

    cols = read_midi(real_midi)
    start = cols["start"][:12] - cols["start"][0]
    end = cols["end"][:12] - cols["start"][0]
    return list(zip(cols["pitch"][:12].tolist(), start.tolist(), end.tolist(),
                    cols["velocity"][:12].tolist(), strict=True))
