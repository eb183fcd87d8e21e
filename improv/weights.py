"""Load a model folder's exported weights (``weights.npz``) without TensorFlow.

The file holds plain arrays, named as :data:`ARRAYS` lists, and a ``meta``
string of JSON (architecture, sizes, format version). Gate order in the LSTM
arrays is Keras's: input, forget, cell, output. A model whose step and duration
heads give logits over time bins (``timing_bins`` in the meta) also holds
``timing_values``, the seconds each bin stands for; one with a velocity head
(``velocity_bins``) takes the velocity as a fourth input and holds
``velocity_kernel``, ``velocity_bias`` and ``velocity_values``. One that reads
the pitch through an embedding (``pitch_embedding`` in the meta: its width)
holds ``pitch_embedding``, a row per pitch, and the LSTM kernel's first rows
take that row instead of ``pitch / vocab_size``; with ``interval_embedding``
a second table, a row per interval class (:mod:`improv.features`), follows it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from improv.errors import ImprovError
from improv.features import INTERVAL_CLASSES

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


class ModelError(ImprovError, ValueError):
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
    #: Width of the pitch embedding (0: the pitch is read as pitch / vocab_size).
    pitch_embedding: int = 0
    #: Width of the interval embedding (0: none).
    interval_embedding: int = 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def _expected_shapes(n_features: int, units: int, vocab: int, timing_bins: int,
                     velocity_bins: int, pitch_embedding: int = 0,
                     interval_embedding: int = 0) -> dict[str, tuple[int, ...]]:
    timing = timing_bins or 1
    rows = n_features + (pitch_embedding - 1 + interval_embedding if pitch_embedding else 0)
    shapes = {
        "lstm_kernel": (rows, 4 * units),
        "lstm_recurrent_kernel": (units, 4 * units),
        "lstm_bias": (4 * units,),
        "pitch_kernel": (units, vocab), "pitch_bias": (vocab,),
        "step_kernel": (units, timing), "step_bias": (timing,),
        "duration_kernel": (units, timing), "duration_bias": (timing,),
    }
    if timing_bins:
        shapes["timing_values"] = (timing_bins,)
    if pitch_embedding:
        shapes["pitch_embedding"] = (vocab, pitch_embedding)
    if interval_embedding:
        shapes["interval_embedding"] = (INTERVAL_CLASSES, interval_embedding)
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
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4]: info for info in archive.infolist()
                       if info.filename.endswith(".npy")}
            if "meta" not in members:
                raise ModelError(f"{path}: no 'meta' entry; not an improv weights file")
            meta_text = _read_member(archive, members["meta"], path, kind="U")
            return _check_and_read(path, archive, members, meta_text)
    except ModelError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as exc:
        raise ModelError(f"{path}: damaged or truncated weights file ({exc})") from None
    except MemoryError:
        raise ModelError(f"{path}: too large to load") from None


#: Bounds checked from the archive's headers before any array is read. The largest
#: shipped model's biggest array is 1.3 MB (256-unit LSTM kernels); a model within the
#: engine's budget stays far below these.
MAX_ARRAY_BYTES = 64 << 20
MAX_META_BYTES = 64 << 10


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, kind: str,
                 shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one ``.npy`` member after checking its header: dtype kind, shape and size."""
    name = info.filename[:-4]
    limit = MAX_META_BYTES if kind == "U" else MAX_ARRAY_BYTES
    if info.file_size > limit + 4096:
        raise ModelError(f"{path}: array {name!r} is {info.file_size:,} bytes uncompressed, "
                         f"more than a model holds ({limit:,})")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        header_shape, _, dtype = read_header(f)
        if dtype.kind != kind or dtype.hasobject:
            raise ModelError(f"{path}: array {name!r} has dtype {dtype}, expected "
                             f"{'text' if kind == 'U' else 'floating point'}")
        if shape is not None and header_shape != shape:
            raise ModelError(f"{path}: array {name!r} has shape {header_shape}, expected {shape}")
        if int(np.prod(header_shape)) * dtype.itemsize > limit:
            raise ModelError(f"{path}: array {name!r} of shape {header_shape} is larger than "
                             f"a model holds ({limit:,} bytes)")
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _check_and_read(path: Path, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo],
                    meta_text: np.ndarray) -> ModelWeights:
    """Check the meta and every expected array's header, then read only those arrays."""
    try:
        meta = json.loads(str(meta_text))
        version = meta.get("format")
        arch, seq_length = meta["arch"], int(meta["seq_length"])
        units, vocab = int(meta["units"]), int(meta["vocab_size"])
        n_features = int(meta["n_features"])
        timing_bins = int(meta.get("timing_bins", 0))
        velocity_bins = int(meta.get("velocity_bins", 0))
        pitch_embedding = int(meta.get("pitch_embedding", 0))
        interval_embedding = int(meta.get("interval_embedding", 0))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path}: unreadable 'meta' entry ({exc})") from None
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: weights format {version!r}, "
                         f"this improv reads format {FORMAT_VERSION}")
    if arch not in ("tutorial", "streaming"):
        raise ModelError(f"{path}: unknown architecture {arch!r}")
    # (improv feeds it raw MIDI pitches 0-127; a window beyond 4096 notes is no model of ours)
    if vocab != 128 or not 1 <= seq_length <= 4096 or not 1 <= units <= 4096:
        raise ModelError(f"{path}: bad sizes in its meta (vocab_size {vocab}: must be 128; "
                         f"seq_length {seq_length}, units {units}: must be 1-4096)")
    if timing_bins < 0 or timing_bins == 1:
        raise ModelError(f"{path}: bad 'timing_bins' {timing_bins} in its meta")
    if velocity_bins < 0 or velocity_bins == 1 or n_features != (4 if velocity_bins else 3):
        raise ModelError(f"{path}: {n_features} inputs and {velocity_bins} velocity bins in "
                         "its meta do not fit (3 inputs without velocity, 4 with)")
    if pitch_embedding < 0 or interval_embedding < 0 or (
            interval_embedding and not pitch_embedding) or (
            pitch_embedding and arch != "streaming"):
        raise ModelError(f"{path}: bad embedding widths {pitch_embedding}/{interval_embedding} "
                         "in its meta (embeddings need both widths >= 0, a pitch embedding for an "
                         "interval one, and the streaming architecture)")
    shapes = _expected_shapes(n_features, units, vocab, timing_bins, velocity_bins,
                              pitch_embedding, interval_embedding)
    arrays = {}
    for name, shape in shapes.items():
        if name not in members:
            raise ModelError(f"{path}: missing array {name!r}")
        array = _read_member(archive, members[name], path, kind="f", shape=shape)
        if not np.all(np.isfinite(array)):
            raise ModelError(f"{path}: array {name!r} holds NaN or infinite values")
        arrays[name] = array.astype(np.float32)
    if timing_bins and not np.all(arrays["timing_values"] >= 0):
        raise ModelError(f"{path}: array 'timing_values' holds negative times")
    return ModelWeights(arch, seq_length, units, vocab, n_features, arrays, timing_bins,
                        velocity_bins, pitch_embedding, interval_embedding)
