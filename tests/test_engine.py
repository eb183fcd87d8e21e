"""The NumPy engine equals the Keras model on trained weights and real notes."""

import numpy as np
import pytest

from improv.engine import NoteModel
from improv.generate import seed_notes
from tests.conftest import REPO
from tests.model_inputs import keras_inputs

MODELS = REPO / "models"


def _real_notes(path, n=120):
    """Rows of pitch, step, duration, velocity of a real performance."""
    return seed_notes(path)[:n]


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def _assert_heads_equal(preds, want):
    """Compare the engine's predictions with Keras's outputs, whichever heads they have."""
    np.testing.assert_allclose(np.stack([p.logits for p in preds]), want["pitch"], atol=1e-4)
    for row, head in enumerate(("step", "duration")):
        if want[head].shape[-1] == 1:
            np.testing.assert_allclose([getattr(p, head) for p in preds], want[head][:, 0],
                                       atol=1e-4)
        else:  # logits over time bins; the point value is the likeliest bin's time
            got = np.stack([p.timing_logits[row] for p in preds])
            np.testing.assert_allclose(got, want[head], atol=1e-4)
            np.testing.assert_array_equal([getattr(p, head) for p in preds],
                                          preds[0].timing_values[want[head].argmax(axis=1)])


@pytest.mark.parametrize("name", ["default", "tutorial-5files"])
def test_engine_equals_keras(name, real_midi, keras):
    engine = NoteModel.load(MODELS / name)
    model = keras.models.load_model(MODELS / name / "model.keras", compile=False)
    notes = _real_notes(real_midi)
    x = keras_inputs(notes, engine.weights)
    preds = [engine.feed(*row) for row in notes]
    if engine.arch == "streaming":
        want = {k: v.numpy()[0] for k, v in model(x).items()}
    else:
        x = x[0]
        windows = np.lib.stride_tricks.sliding_window_view(x, (engine.seq_length, x.shape[1]))[:, 0]
        want = {k: v.numpy() for k, v in model(windows).items()}
        preds = preds[engine.seq_length - 1:]  # full windows only
    _assert_heads_equal(preds, want)


def test_streaming_step_is_incremental_and_reset_forgets(real_midi):
    engine = NoteModel.load(MODELS / "default")
    notes = _real_notes(real_midi, 30)
    first = engine.feed_many(notes)
    engine.reset()
    again = engine.feed_many(notes)
    np.testing.assert_array_equal(first.logits, again.logits)
    assert engine.notes_fed == 30


def test_load_warms_up_and_forgets_its_warm_up_notes():
    """The load feeds a few notes so that the first BLAS calls' allocations are not paid on
    the first live note (measured without it, a fresh model's first note cost 2.5-5.6 times
    a later one's; ``improv bench engine`` prints that ratio, a timing that has no place in
    a test), and then forgets them: a fresh model predicts exactly as a reset one."""
    fresh = NoteModel.load(MODELS / "default")
    assert fresh.notes_fed == 0 and not fresh.h.any() and not fresh.c.any()
    first = fresh.feed(60, 0.1, 0.2)
    used = NoteModel.load(MODELS / "default")
    used.feed_many(np.array([[64, 0.2, 0.3, 70]] * 5))
    used.reset()
    np.testing.assert_array_equal(used.feed(60, 0.1, 0.2).logits, first.logits)


@pytest.mark.parametrize("velocity_bins,embedding,interval",
                         [(0, 0, 0), (16, 0, 0), (16, 8, 0), (0, 8, 4), (16, 8, 4)])
def test_engine_equals_keras_with_time_bins(tmp_path, real_midi, keras, velocity_bins,
                                            embedding, interval):
    """Heads over time bins (and velocity), pitch and interval embeddings, exported and run
    in NumPy, equal Keras."""
    from improv.trainconfig import TrainConfig
    from training.export import weights_to_arrays
    from training.model import build_model

    config = TrainConfig(units=32, timing_bins=16, velocity_bins=velocity_bins,
                         pitch_embedding=embedding, interval_embedding=interval)
    keras.utils.set_random_seed(3)
    model = build_model(config)
    np.savez(tmp_path / "weights.npz", **weights_to_arrays(model, config))
    engine = NoteModel.load(tmp_path)
    assert engine.weights.pitch_embedding == embedding
    notes = _real_notes(real_midi, 60)
    preds = [engine.feed(*row) for row in notes]
    want = {k: v.numpy()[0] for k, v in model(keras_inputs(notes, engine.weights)).items()}
    assert want["step"].shape == (60, 16)
    _assert_heads_equal(preds, want)
    if velocity_bins:
        got = np.stack([p.velocity_logits for p in preds])
        np.testing.assert_allclose(got, want["velocity"], atol=1e-4)
    else:
        assert preds[-1].velocity_logits is None
    engine.reset()  # a reset forgets the previous pitch too: the same notes, the same answers
    np.testing.assert_array_equal(engine.feed_many(notes).logits, preds[-1].logits)


def test_the_engine_keeps_the_notes_just_struck():
    from improv.engine import MAX_STRUCK

    model = NoteModel.load(MODELS / "default")
    model.feed(60, 0.5, 0.3)
    assert model.struck == ((60, 0.0),)
    model.feed(64, 0.01, 0.3)
    model.feed(67, 0.02, 0.3)
    assert [p for p, _ in model.struck] == [60, 64, 67]
    assert [round(before, 6) for _, before in model.struck] == [0.03, 0.02, 0.0]
    model.feed(72, 0.025, 0.3)  # 55 ms after the 60: it is no longer just struck
    assert [p for p, _ in model.struck] == [64, 67, 72]
    model.feed(74, 0.3, 0.3)
    assert model.struck == ((74, 0.0),)
    for i in range(MAX_STRUCK + 20):  # a model stuck on step 0
        model.feed(i % 128, 0.0, 0.3)
    assert len(model.struck) == MAX_STRUCK and model.struck[-1][0] == (MAX_STRUCK + 19) % 128
    model.reset()
    assert model.struck == ()


@pytest.mark.parametrize("pitch, step, duration, velocity",
                         [(128, 0.25, 0.2, 64), (-1, 0.25, 0.2, 64), (60, float("nan"), 0.2, 64),
                          (60, 0.25, float("inf"), 64), (60, 0.25, 0.2, float("nan"))])
def test_feed_refuses_what_would_break_the_state(pitch, step, duration, velocity):
    """A pitch past the table (128: IndexError; -1: its last row, silently) or a step that is
    not finite (kept in the LSTM's state for good): one clear error, the state untouched."""
    from improv.errors import InvalidValueError

    model = NoteModel.load(REPO / "models" / "default")
    model.feed(60, 0.25, 0.2)
    h, c = model.h.copy(), model.c.copy()
    with pytest.raises(InvalidValueError, match="feed"):
        model.feed(pitch, step, duration, velocity)
    np.testing.assert_array_equal(model.h, h)
    np.testing.assert_array_equal(model.c, c)
    with pytest.raises(InvalidValueError, match="rows"):
        model.feed_many(np.array([60, 0.25, 0.2, 80]))  # one note, not one row
    with pytest.raises(InvalidValueError, match="finite"):
        model.feed_many(np.array([[60, 0.25, 0.2, 80], [62, 0.25, 0.2, np.nan]]))
    np.testing.assert_array_equal(model.h, h)  # not even the first row fed
