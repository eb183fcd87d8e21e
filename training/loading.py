"""Load a Keras model file (``model.keras``, a checkpoint) for evaluate and export."""

from __future__ import annotations

from pathlib import Path

import keras

import training.loss  # noqa: F401  registers the custom loss for compiled files
from improv.weights import ModelError


def load_keras(path: Path):
    """Return the Keras model in ``path`` (uncompiled); a damaged file is a ModelError."""
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise ModelError(f"{path}: cannot load the Keras model ({exc})") from None
