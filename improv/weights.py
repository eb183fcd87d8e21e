"""Load a model folder's exported weights (``weights.npz``) without TensorFlow.

The file holds plain arrays, named as :data:`ARRAYS` lists, and a ``meta``
string of JSON (architecture, sizes, format version). Gate order in the LSTM
arrays is Keras's: input, forget, cell, output. A model whose step and duration
heads give logits over time bins (``timing_bins`` in the meta) also holds
``timing_values``, the seconds each bin stands for; one with a velocity head
(``velocity_bins``) takes the velocity as a fourth input and holds
``velocity_kernel``, ``velocity_bias`` and ``velocity_values``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "weights.npz"
#: The other files of a model folder (written by training.export).
KERAS_FILE = "model.keras"
CARD_FILE = "card.json"
FORMAT_VERSION = 1
#: The arrays every model has (one with time bins adds ``timing_values``).
ARRAYS = (
    "lstm_kernel", "lstm_recurrent_kernel", "lstm_bias",
    "pitch_kernel", "pitch_bias", "step_kernel", "step_bias",
    "duration_kernel", "duration_bias",
)


class ModelError(ValueError):
    """A model folder is missing a file, or a file is damaged or does not fit."""


@dataclass(frozen=True)
class ModelWeights:
    """The arrays of one exported note model and what they mean."""

    arch: str
    seq_length: int
    units: int
    vocab_size: int
    n_features: int
    arrays: dict[str, np.ndarray]
    #: Step and duration heads' classes (0: they give seconds, the tutorial's way).
    timing_bins: int = 0
    #: Velocity head's classes (0: no velocity input or head).
    velocity_bins: int = 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def _expected_shapes(n_features: int, units: int, vocab: int, timing_bins: int,
                     velocity_bins: int) -> dict[str, tuple[int, ...]]:
    timing = timing_bins or 1
    shapes = {
        "lstm_kernel": (n_features, 4 * units),
        "lstm_recurrent_kernel": (units, 4 * units),
        "lstm_bias": (4 * units,),
        "pitch_kernel": (units, vocab), "pitch_bias": (vocab,),
        "step_kernel": (units, timing), "step_bias": (timing,),
        "duration_kernel": (units, timing), "duration_bias": (timing,),
    }
    if timing_bins:
        shapes["timing_values"] = (timing_bins,)
    if velocity_bins:
        shapes.update(velocity_kernel=(units, velocity_bins), velocity_bias=(velocity_bins,),
                      velocity_values=(velocity_bins,))
    return shapes


def load_weights(model_dir: str | Path) -> ModelWeights:
    """Read and check ``model_dir/weights.npz``.

    Raises
    ------
    ModelError
        Naming the file, if it is missing, truncated, or its arrays do not fit
        the architecture its metadata describes.
    """
    path = Path(model_dir)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"{path}: no such file (a model folder needs {WEIGHTS_FILE})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise ModelError(f"{path}: damaged or truncated weights file ({exc})") from None
    if "meta" not in arrays:
        raise ModelError(f"{path}: no 'meta' entry; not an improv weights file")
    try:
        meta = json.loads(str(arrays.pop("meta")))
        version = meta.get("format")
        arch, seq_length = meta["arch"], int(meta["seq_length"])
        units, vocab = int(meta["units"]), int(meta["vocab_size"])
        n_features = int(meta["n_features"])
        timing_bins = int(meta.get("timing_bins", 0))
        velocity_bins = int(meta.get("velocity_bins", 0))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path}: unreadable 'meta' entry ({exc})") from None
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: weights format {version!r}, "
                         f"this improv reads format {FORMAT_VERSION}")
    if arch not in ("tutorial", "streaming"):
        raise ModelError(f"{path}: unknown architecture {arch!r}")
    if timing_bins < 0 or timing_bins == 1:
        raise ModelError(f"{path}: bad 'timing_bins' {timing_bins} in its meta")
    if velocity_bins < 0 or velocity_bins == 1 or n_features != (4 if velocity_bins else 3):
        raise ModelError(f"{path}: {n_features} inputs and {velocity_bins} velocity bins in "
                         "its meta do not fit (3 inputs without velocity, 4 with)")
    shapes = _expected_shapes(n_features, units, vocab, timing_bins, velocity_bins)
    for name, shape in shapes.items():
        if name not in arrays:
            raise ModelError(f"{path}: missing array {name!r}")
        if arrays[name].shape != shape:
            raise ModelError(f"{path}: array {name!r} has shape {arrays[name].shape}, "
                             f"expected {shape} for a {units}-unit {arch} model")
        if not np.all(np.isfinite(arrays[name])):
            raise ModelError(f"{path}: array {name!r} holds NaN or infinite values")
    return ModelWeights(arch, seq_length, units, vocab, n_features,
                        {k: arrays[k].astype(np.float32) for k in shapes}, timing_bins,
                        velocity_bins)
