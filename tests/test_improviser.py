"""Which velocity improv's notes get: the setting's, the model's, or the player's."""

import mido
import numpy as np
import pytest

from improv.engine import NoteModel
from improv.improviser import Improviser, Settings
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from tests.conftest import REPO


@pytest.fixture(scope="module")
def velocity_model(tmp_path_factory):
    """A small exported model with a velocity head (random weights: spread-out velocities)."""
    import keras

    from training.config import TrainConfig
    from training.export import weights_to_arrays
    from training.model import build_model

    config = TrainConfig(units=16, timing_bins=8, velocity_bins=16)
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("velocity_model")
    np.savez(folder / "weights.npz", **weights_to_arrays(build_model(config), config))
    return NoteModel.load(folder)


def _answer_velocities(model, settings: Settings) -> list[int]:
    played = []
    scheduler = Scheduler(lambda msg: None)
    improv = Improviser(model, Sampler(seed=1), scheduler, settings,
                        on_note=lambda note, who: played.append((who, note.velocity)))
    t = 100.0
    for i, pitch in enumerate([60, 64, 67, 72]):  # the call, all at velocity 100
        improv.handle(mido.Message("note_on", note=pitch, velocity=100), t + 0.2 * i)
        improv.handle(mido.Message("note_off", note=pitch), t + 0.2 * i + 0.1)
    improv.tick(t + 5.0)  # a long silence ends the call
    improv.close()
    return [v for who, v in played if who == "improv"]


def test_a_velocity_head_gives_the_notes_their_velocities(velocity_model):
    got = _answer_velocities(velocity_model, Settings(silence=0.5, answer_notes=24))
    assert len(got) == 24
    assert set(got) <= set(velocity_model.weights["velocity_values"].astype(int))
    assert len(set(got)) > 1  # drawn, not one constant


def test_a_set_velocity_wins(velocity_model):
    got = _answer_velocities(velocity_model, Settings(silence=0.5, answer_notes=8, velocity=90))
    assert got == [90] * 8


def test_without_a_velocity_head_improv_plays_at_the_players_median():
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    assert not model.takes_velocity
    assert _answer_velocities(model, Settings(silence=0.5, answer_notes=8)) == [100] * 8
