import numpy as np
import pytest

from improv.trainconfig import TrainConfig
from training.datasets import make_dataset, window_starts


def _files():
    # pitch i, step i/100, duration i/1000, velocity 64: every row says where it came from
    a = np.stack([np.arange(40), np.arange(40) / 100, np.arange(40) / 1000,
                  np.full(40, 64)], axis=1).astype(np.float32)
    b = a[:30].copy()
    b[:, 0] += 50
    return [a, b]


def test_windows_never_cross_files():
    starts = window_starts(_files(), 26)
    assert len(starts) == (40 - 26 + 1) + (30 - 26 + 1)
    assert starts.max() == 40 + 30 - 26


def test_tutorial_window_shapes_and_labels():
    cfg = TrainConfig(arch="tutorial", seq_length=25, batch_size=4)
    x, y = next(iter(make_dataset(_files(), cfg, training=False)))
    assert x.shape == (4, 25, 3)
    assert y["pitch"].shape == (4,) and y["step"].shape == (4, 1)
    x, y = x.numpy(), {k: v.numpy() for k, v in y.items()}
    for k in range(4):  # window k: notes k..k+24 of the first file, label note k+25
        np.testing.assert_allclose(x[k, :, 0], np.arange(k, k + 25) / 128)
        np.testing.assert_allclose(x[k, :, 1], np.arange(k, k + 25) / 100, rtol=1e-6)
        assert y["pitch"][k] == k + 25
        np.testing.assert_allclose(y["step"][k, 0], (k + 25) / 100, rtol=1e-6)
        np.testing.assert_allclose(y["duration"][k, 0], (k + 25) / 1000, rtol=1e-6)


def test_streaming_sequence_labels_are_next_notes():
    cfg = TrainConfig(arch="streaming", seq_length=10, batch_size=2)
    x, y = next(iter(make_dataset(_files(), cfg, training=False)))
    assert x.shape == (2, 10, 3) and y["pitch"].shape == (2, 10) and y["step"].shape == (2, 10, 1)
    x, pitch = x.numpy(), y["pitch"].numpy()
    np.testing.assert_allclose(x[0, :, 0] * 128, np.arange(10))
    np.testing.assert_array_equal(pitch[0], np.arange(1, 11))
    np.testing.assert_array_equal(pitch[1], np.arange(11, 21))  # sequences do not overlap


def test_transposition_shifts_inputs_and_labels_together():
    cfg = TrainConfig(arch="tutorial", seq_length=25, batch_size=16, transpose=6)
    x, y = next(iter(make_dataset(_files(), cfg, training=True)))
    pitch = np.rint(x.numpy()[:, 10, 0] * 128)  # position 10: row >= 10, never clipped
    row = np.rint(x.numpy()[:, 10, 1] * 100)  # steps are untouched and give the row
    base = np.where(pitch - row < 25, 0, 50)  # the second file is 50 semitones up
    shift = pitch - row - base
    assert np.all(np.abs(shift) <= 6) and len(set(shift)) > 1
    np.testing.assert_array_equal(y["pitch"].numpy(), row + 15 + base + shift)


def test_too_short_files():
    cfg = TrainConfig(arch="tutorial", seq_length=25)
    with pytest.raises(ValueError, match="26 notes"):
        make_dataset([np.zeros((10, 4), np.float32)], cfg, training=True)


def test_fewer_training_examples_than_a_batch():
    """Training batches drop their remainder: no batch at all trained nothing, and the
    untrained model was exported."""
    cfg = TrainConfig(arch="tutorial", seq_length=25, batch_size=64)  # 20 windows
    with pytest.raises(ValueError, match="only 20 training examples of 26 notes, fewer than "
                                         "the batch size 64"):
        make_dataset(_files(), cfg, training=True)
    assert next(iter(make_dataset(_files(), cfg, training=False)))  # scored whole


def test_time_bin_labels_are_the_bins_of_the_next_notes_times():
    from improv.timebins import to_bins

    cfg = TrainConfig(arch="streaming", seq_length=10, batch_size=2, timing_bins=24)
    _, y = next(iter(make_dataset(_files(), cfg, training=False)))
    assert y["step"].shape == (2, 10) and y["step"].dtype.is_integer
    np.testing.assert_array_equal(y["step"].numpy()[0], to_bins(np.arange(1, 11) / 100, 24))
    np.testing.assert_array_equal(y["duration"].numpy()[1],
                                  to_bins(np.arange(11, 21) / 1000, 24))


def test_velocity_is_a_fourth_input_and_its_bin_a_label():
    files = _files()
    files[0][:, 3] = np.arange(40) * 3  # velocities 0, 3, ..., 117
    cfg = TrainConfig(arch="streaming", seq_length=10, batch_size=2, velocity_bins=32)
    x, y = next(iter(make_dataset(files, cfg, training=False)))
    assert x.shape == (2, 10, 4)
    np.testing.assert_allclose(x.numpy()[0, :, 3], np.arange(10) * 3 / 127, rtol=1e-6)
    np.testing.assert_array_equal(y["velocity"].numpy()[0], np.arange(1, 11) * 3 * 32 // 128)


def test_embedding_inputs_are_integer_pitches_and_intervals():
    """With a pitch embedding the pitch is its own integer input, the float columns follow;
    intervals are the next pitch minus this one (+24), the first of a sequence 49 (none),
    and transposition moves pitches and labels together, intervals not at all."""
    import tensorflow as tf

    tf.random.set_seed(1)
    files = [np.stack([60 + np.arange(n), np.arange(n) / 100, np.full(n, 0.1), np.full(n, 64)],
                      axis=1).astype(np.float32) for n in (61, 41)]
    cfg = TrainConfig(arch="streaming", seq_length=10, batch_size=8, pitch_embedding=8,
                      interval_embedding=4, transpose=6)
    x, y = next(iter(make_dataset(files, cfg, training=True)))
    assert set(x) == {"pitches", "intervals", "notes"} and x["notes"].shape == (8, 10, 2)
    pitches, intervals = x["pitches"].numpy(), x["intervals"].numpy()
    assert pitches.dtype == np.int32 and intervals.dtype == np.int32
    assert np.all(intervals[:, 0] == 49) and np.all(intervals[:, 1:] == 25)  # steps of +1
    np.testing.assert_array_equal(y["pitch"].numpy()[:, :-1], pitches[:, 1:])
    row = np.rint(x["notes"].numpy()[:, 0, 0] * 100)  # the step column gives the row
    shift = pitches[:, 0] - 60 - row
    assert np.all(np.abs(shift) <= 6) and len(set(shift)) > 1
