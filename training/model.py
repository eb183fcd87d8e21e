"""The LSTM note models: the tutorial's window model and the streaming model."""

from __future__ import annotations

import keras

from improv.features import INTERVAL_CLASSES
from improv.trainconfig import TrainConfig
from training.loss import mse_with_positive_pressure


def build_model(config: TrainConfig) -> keras.Model:
    """Return the uncompiled model for ``config.arch``.

    Both take ``(batch, time, 3)`` notes and end in the tutorial's three heads:
    128 pitch logits, a step and a duration (or, with ``timing_bins``, logits
    over time bins for each). With ``velocity_bins`` each note has a fourth
    input, its velocity / 127, and a fourth head gives logits over velocity bins.
    With ``pitch_embedding`` the pitch is not a column of ``notes`` but an integer
    input ``pitches`` looked up in a learned table (and, with ``interval_embedding``,
    the interval class of :mod:`improv.features` in a second), concatenated with
    the remaining columns before the LSTM.
    The tutorial model reads a fixed window and predicts only the note after it;
    the streaming model takes any length and predicts the next note after every
    position.
    """
    streaming = config.arch == "streaming"
    time = None if streaming else config.seq_length
    if config.pitch_embedding:
        pitch = keras.Input(shape=(time,), dtype="int32", name="pitches")
        columns = keras.Input(shape=(time, config.n_features - 1), name="notes")
        inputs = {"pitches": pitch, "notes": columns}
        parts = [keras.layers.Embedding(config.vocab_size, config.pitch_embedding,
                                        name="pitch_embedding")(pitch)]
        if config.interval_embedding:
            inputs["intervals"] = keras.Input(shape=(time,), dtype="int32", name="intervals")
            parts.append(keras.layers.Embedding(INTERVAL_CLASSES, config.interval_embedding,
                                                name="interval_embedding")(inputs["intervals"]))
        x = keras.layers.Concatenate(name="note_features")(parts + [columns])
    else:
        inputs = x = keras.Input(shape=(time, config.n_features), name="notes")
    x = keras.layers.LSTM(config.units, return_sequences=streaming, name="lstm")(x)
    timing = config.timing_bins or 1  # logits over time bins, or the value itself
    outputs = {
        "pitch": keras.layers.Dense(config.vocab_size, name="pitch")(x),
        "step": keras.layers.Dense(timing, name="step")(x),
        "duration": keras.layers.Dense(timing, name="duration")(x),
    }
    if config.velocity_bins:
        outputs["velocity"] = keras.layers.Dense(config.velocity_bins, name="velocity")(x)
    return keras.Model(inputs, outputs, name=f"improv_{config.arch}")


def losses(config: TrainConfig, reduction: str | None = "sum_over_batch_size") -> dict:
    """Return each head's loss: cross-entropy for classes, else the tutorial's MSE."""
    def classes():
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)

    timing = classes() if config.timing_bins else mse_with_positive_pressure
    heads = {"pitch": classes(), "step": timing, "duration": timing}
    if config.velocity_bins:
        heads["velocity"] = classes()
    return heads


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Compile with :func:`losses`, the config's loss weights and Adam."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss=losses(config), loss_weights=config.loss_weights)
    return model
