"""The tutorial's way of getting the next note, timed for ``improv bench engine``:
Keras ``model.predict`` on the 25-note window (TensorFlow: here, not in improv/)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from improv.features import pitch_to_input
from improv.generate import seed_notes
from improv.progress import progress


def _stats(seconds: list[float]) -> dict[str, float]:
    from improv.bench import _stats as stats

    return stats(seconds)


def time_keras_predict(model_dir: Path, notes: int) -> dict[str, float]:
    """Time the tutorial's way: ``model.predict`` on the 25-note window, argmax feedback."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(model_dir / "model.keras", compile=False)
    seq = model.input_shape[1]
    seed = seed_notes()[:, :3]
    window = np.stack([pitch_to_input(seed[-seq:, 0]), seed[-seq:, 1], seed[-seq:, 2]], axis=1)
    window = window.astype(np.float32)[None]
    model.predict(window, verbose=0)  # the first call builds the graph
    times = []
    for _ in progress(range(notes), desc="model.predict", unit="note"):
        t0 = time.perf_counter()
        out = model.predict(window, verbose=0)
        pitch = int(np.argmax(out["pitch"][0]))
        new = [pitch_to_input(pitch), max(0.0, float(out["step"][0, 0])),
               max(0.0, float(out["duration"][0, 0]))]
        window = np.concatenate([window[:, 1:], np.array([[new]], np.float32)], axis=1)
        times.append(time.perf_counter() - t0)
    return _stats(times)
