"""``tf.data`` pipelines of note windows (tutorial) and note sequences (streaming).

Notes of all files are stacked in one array; a window or sequence is a start
index into it, never crossing from one file into the next. Inputs are
``[pitch / vocab_size, step, duration]`` as in the tutorial; labels are the
next note's raw pitch (0-127), step and duration (seconds, or their time bins
when the config has ``timing_bins``). With ``velocity_bins`` a fourth input is
the velocity / 127 and a fourth label the next velocity's bin.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from improv.timebins import bin_edges
from improv.velocitybins import velocity_edges
from training.config import TrainConfig

_SHAPED = tf.data.Options()
# Start indices are generated, not read from files: shard by element when distributed.
_SHAPED.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA


def stack_notes(notes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-file note arrays; return them and each file's first row."""
    offsets = np.cumsum([0] + [len(n) for n in notes])
    stacked = np.concatenate(notes) if notes else np.zeros((0, 4), np.float32)
    return stacked.astype(np.float32), offsets


def window_starts(notes: list[np.ndarray], length: int, stride: int = 1) -> np.ndarray:
    """Return start rows (into the stacked array) of every ``length``-note span
    that lies inside one file, ``stride`` apart."""
    offsets = np.cumsum([0] + [len(n) for n in notes])
    starts = [np.arange(off, off + len(n) - length + 1, stride)
              for off, n in zip(offsets, notes) if len(n) >= length]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def _split_features(rows: tf.Tensor, vocab_size: int, transpose: tf.Tensor | None,
                    velocity: bool = False):
    """Turn gathered (..., length+1, 4) rows into model inputs and (transposed) pitches."""
    pitch = rows[..., 0]
    if transpose is not None:
        pitch = tf.clip_by_value(pitch + transpose, 0.0, float(vocab_size - 1))
    columns = [pitch / vocab_size, rows[..., 1], rows[..., 2]]
    if velocity:
        columns.append(rows[..., 3] / 127.0)
    return tf.stack(columns, axis=-1), pitch


def make_dataset(notes: list[np.ndarray], config: TrainConfig, training: bool) -> tf.data.Dataset:
    """Build the batched dataset for ``config.arch``.

    ``training=True`` shuffles (over the whole set, like the tutorial's
    dataset-sized buffer) and applies transposition augmentation.
    """
    stacked, _ = stack_notes(notes)
    length = config.seq_length + 1
    streaming = config.arch == "streaming"
    # Streaming sequences do not overlap: every note is a target once per epoch.
    starts = window_starts(notes, length, stride=config.seq_length if streaming else 1)
    if len(starts) == 0:
        raise ValueError(f"no file has the {length} notes one training example needs")
    table = tf.constant(stacked)
    offsets = tf.range(length, dtype=tf.int64)
    seq = config.seq_length
    vocab = config.vocab_size
    augment = training and config.transpose > 0
    velocity_bins = config.velocity_bins
    if velocity_bins:
        velocity_bounds = velocity_edges(velocity_bins).tolist()
    if config.timing_bins:
        edges = bin_edges(config.timing_bins).tolist()

        def timing(t):  # (..., 1) seconds -> (...) bin classes
            return tf.raw_ops.Bucketize(input=t[..., 0], boundaries=edges)
    else:
        def timing(t):
            return t

    def to_example(start_batch):
        rows = tf.gather(table, start_batch[:, None] + offsets)  # (batch, length, 4)
        shift = None
        if augment:
            shift = tf.cast(tf.random.uniform(tf.shape(start_batch)[:1], -config.transpose,
                                              config.transpose + 1, dtype=tf.int32), tf.float32)
            shift = shift[:, None]
        features, pitch = _split_features(rows, vocab, shift, velocity=bool(velocity_bins))
        # labels: the next note after every position (streaming) or after the window
        target = slice(1, None) if streaming else seq
        y = {"pitch": tf.cast(pitch[:, target], tf.int32),
             "step": timing(rows[:, target, 1:2]), "duration": timing(rows[:, target, 2:3])}
        if velocity_bins:
            y["velocity"] = tf.raw_ops.Bucketize(input=rows[:, target, 3],
                                                 boundaries=velocity_bounds)
        return features[:, :seq], y

    ds = tf.data.Dataset.from_tensor_slices(starts).cache()
    if training:
        ds = ds.shuffle(len(starts), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size, drop_remainder=training)
    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_SHAPED)
