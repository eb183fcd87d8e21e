"""``tf.data`` pipelines of note windows (tutorial) and note sequences (streaming).

Notes of all files are stacked in one array; a window or sequence is a start
index into it, never crossing from one file into the next. Inputs are
those of :mod:`improv.features` (the tutorial's ``[pitch / vocab_size, step,
duration]``, or the integer pitch for an embedding); labels are the
next note's raw pitch (0-127), step and duration (seconds, or their time bins
when the config has ``timing_bins``). With ``velocity_bins`` a fourth input is
the velocity / 127 and a fourth label the next velocity's bin.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from improv.errors import InvalidValueError
from improv.features import INTERVAL_RANGE, NO_INTERVAL, pitch_to_input, velocity_to_input
from improv.timebins import bin_edges
from improv.trainconfig import TrainConfig
from improv.velocitybins import velocity_edges

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
              for off, n in zip(offsets, notes, strict=False) if len(n) >= length]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def _split_features(rows: tf.Tensor, config: TrainConfig, transpose: tf.Tensor | None):
    """Turn gathered (..., length+1, 4) rows into model inputs (as
    :func:`improv.features.model_inputs` makes them) and the (transposed) pitches."""
    vocab_size = config.vocab_size
    pitch = rows[..., 0]
    if transpose is not None:
        pitch = tf.clip_by_value(pitch + transpose, 0.0, float(vocab_size - 1))
    columns = [rows[..., 1], rows[..., 2]]
    if config.velocity_bins:
        columns.append(velocity_to_input(rows[..., 3]))
    if not config.pitch_embedding:
        return tf.stack([pitch_to_input(pitch, vocab_size)] + columns, axis=-1), pitch
    inputs = {"pitches": tf.cast(pitch, tf.int32), "notes": tf.stack(columns, axis=-1)}
    if config.interval_embedding:
        # A sequence's first note has no previous one, as a live session's first note.
        step = tf.clip_by_value(pitch[..., 1:] - pitch[..., :-1], -INTERVAL_RANGE,
                                INTERVAL_RANGE) + INTERVAL_RANGE
        first = tf.fill(tf.shape(pitch[..., :1]), float(NO_INTERVAL))
        inputs["intervals"] = tf.cast(tf.concat([first, step], axis=-1), tf.int32)
    return inputs, pitch


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
        raise InvalidValueError(f"no file has the {length} notes one training example needs")
    if training and len(starts) < config.batch_size:
        # (training batches drop their remainder: with fewer examples there was no batch, and
        # a model never trained was exported, its history empty: a red-team run)
        raise InvalidValueError(f"only {len(starts)} training examples of {length} notes, fewer "
                                f"than the batch size {config.batch_size}: give more data or a "
                                "smaller --batch-size")
    table = tf.constant(stacked)
    offsets = tf.range(length, dtype=tf.int64)
    seq = config.seq_length
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
        features, pitch = _split_features(rows, config, shift)
        # labels: the next note after every position (streaming) or after the window
        target = slice(1, None) if streaming else seq
        y = {"pitch": tf.cast(pitch[:, target], tf.int32),
             "step": timing(rows[:, target, 1:2]), "duration": timing(rows[:, target, 2:3])}
        if velocity_bins:
            y["velocity"] = tf.raw_ops.Bucketize(input=rows[:, target, 3],
                                                 boundaries=velocity_bounds)
        return tf.nest.map_structure(lambda f: f[:, :seq], features), y

    ds = tf.data.Dataset.from_tensor_slices(starts).cache()
    if training:
        ds = ds.shuffle(len(starts), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size, drop_remainder=training)
    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_SHAPED)
