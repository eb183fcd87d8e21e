"""Export a trained model to ``models/<name>/``: Keras file, NumPy weights, card.

A model folder holds:

- ``model.keras``: the Keras model (loads with ``keras.models.load_model(path, compile=False)``);
- ``weights.npz``: the same weights as plain arrays for the NumPy runtime
  (see :mod:`improv.weights`);
- ``card.json`` and ``README.md``: the model card (config, data, split,
  training time, held-out metrics);
- ``history.json`` and the PNG plots it was trained with.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

import keras
import numpy as np

from improv.card import write_card
from improv.corpus import SPLITS, TEST_PERCENT, VALIDATION_PERCENT, Corpus
from improv.timebins import bin_values
from improv.trainconfig import TrainConfig
from improv.velocitybins import velocity_values
from improv.weights import FORMAT_VERSION, KERAS_FILE, WEIGHTS_FILE


def weights_to_arrays(model: keras.Model, config: TrainConfig) -> dict[str, np.ndarray]:
    """Return the model's weights under the names :mod:`improv.weights` reads."""
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    arrays = {"lstm_kernel": kernel, "lstm_recurrent_kernel": recurrent, "lstm_bias": bias}
    for table in ("pitch_embedding", "interval_embedding"):
        if getattr(config, table):
            (arrays[table],) = model.get_layer(table).get_weights()
    heads = ("pitch", "step", "duration") + (("velocity",) if config.velocity_bins else ())
    for head in heads:
        w, b = model.get_layer(head).get_weights()
        arrays[f"{head}_kernel"], arrays[f"{head}_bias"] = w, b
    meta = {"format": FORMAT_VERSION, "arch": config.arch, "seq_length": config.seq_length,
            "units": config.units, "vocab_size": config.vocab_size,
            "n_features": config.n_features, "timing_bins": config.timing_bins,
            "velocity_bins": config.velocity_bins, "pitch_embedding": config.pitch_embedding,
            "interval_embedding": config.interval_embedding}
    if config.timing_bins:
        arrays["timing_values"] = bin_values(config.timing_bins)
    if config.velocity_bins:
        arrays["velocity_values"] = velocity_values(config.velocity_bins)
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def source_license(source: str | Path) -> str:
    """Return the ``License:`` line of a data folder's SOURCE.md, or ``"unknown"``."""
    path = Path(source)
    readme = (path if path.is_dir() else path.parent) / "SOURCE.md"
    if readme.is_file():
        m = re.search(r"^- License:\s*(.+)$", readme.read_text(encoding="utf-8"), re.M)
        if m:
            return m.group(1).strip()
    return "unknown"


def data_card(config: TrainConfig, corpus: Corpus) -> dict:
    """Describe the data: each source's license and per-split file/note counts."""
    sources = []
    for src in config.data:
        name = Path(src).name
        part = Corpus([f for f in corpus.files if f.source == name],
                      [n for f, n in zip(corpus.files, corpus.notes, strict=True)
                       if f.source == name])
        sources.append({"name": name, "path": str(src), "license": source_license(src),
                        **{s: v for s, v in part.summary().items() if s in SPLITS}})
    return {
        "sources": sources,
        "totals": corpus.summary(),
        "split_rule": (f"by piece (composer/title from metadata.csv, else the file): sha1 of the "
                       f"piece name mod 100; < {VALIDATION_PERCENT} validation, "
                       f"< {VALIDATION_PERCENT + TEST_PERCENT} test, else train"),
        "train_files_used": config.max_files or "all",
    }


def export_model(model: keras.Model, config: TrainConfig, out_dir: str | Path,
                 card: dict) -> Path:
    """Write the model folder ``out_dir`` and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    tmp = out / "weights.tmp.npz"
    np.savez(tmp, **weights_to_arrays(model, config))
    tmp.replace(out / WEIGHTS_FILE)
    card = {"name": out.name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds"), "arch": config.arch, "config": config.to_dict(),
        "parameters": int(model.count_params()), "keras": keras.__version__, **card}
    write_card(out, card)
    return out
