"""Losses for the step and duration heads."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="improv")
def mse_with_positive_pressure(y_true, y_pred):
    """Return mean squared error plus ``10 * max(-y_pred, 0)``.

    The extra term is the tutorial's: it pushes step and duration predictions
    away from negative values, which no note can have.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    mse = (y_true - y_pred) ** 2
    positive_pressure = 10 * ops.maximum(-y_pred, 0.0)
    return ops.mean(mse + positive_pressure, axis=-1)
