"""Export a trained model to ``models/<name>/``: Keras file, NumPy weights, card.

A model folder holds:

- ``model.keras``: the Keras model (loads with ``keras.models.load_model(path, compile=False)``);
- ``weights.npz``: the same weights as plain arrays for the NumPy runtime
  (see :mod:`improv.weights`);
- ``card.json`` and ``README.md``: the model card (config, data, split,
  training time, held-out metrics);
- ``history.json`` and the PNG plots it was trained with.

A model folder is built in a new folder beside its destination and swapped in at the end
(:func:`building`): the old folder is renamed aside, the new one renamed in, the old one
removed, so the destination is the new model whole or the old one untouched (a red-team
run: ``improv export`` over an older model folder replaced ``model.keras``, the weights and
the card but left the older model's ``history.json`` and plots, which the new README linked
to; under ``ulimit -f 40`` it left a cut ``model.keras``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from improv.card import read_card, write_card
from improv.corpus import SPLITS, TEST_PERCENT, VALIDATION_PERCENT, Corpus
from improv.errors import ImprovError
from improv.outfile import WriteError
from improv.timebins import bin_values
from improv.trainconfig import TrainConfig, check_model_folder
from improv.velocitybins import velocity_values
from improv.weights import CARD_FILE, FORMAT_VERSION, KERAS_FILE, WEIGHTS_FILE, ModelError

logger = logging.getLogger(__name__)


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


@contextmanager
def building(out: str | Path, keep: Iterable[str | Path] = (), done: str = "") -> Iterator[Path]:
    """Yield a new folder beside ``out`` to write the whole model folder in; when the block
    ends it takes ``out``'s place (the target of a symbolic link), else it is removed and
    ``out`` is as it was. A failed write is a :class:`WriteError` of ``out`` (``done``: what
    is kept, said after it)."""
    out = Path(out)
    check_model_folder(out, keep)
    target = Path(os.path.realpath(out))
    # The new folder lies one level down, in a work folder: its README, rendered there, has
    # no sibling to name (the older model at ``out`` would be one) until it is in place.
    work = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    new, old = work / "new", work / "old"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work.mkdir()
        new.mkdir()  # (its mode from the umask, as any folder mkdir makes)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise _write_error(out, exc, done) from None
    try:
        yield new
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a file-size limit: one line, not a bug
            raise _write_error(out, exc, done) from None
        raise
    # A signal during the swap, or its clean-up, ended it halfway (a review: between the
    # renames, the older folder went with the work folder; a red-team run: after them, the
    # older folder's files stayed in a hidden one): it is held until both are done.
    with _signals_held():
        try:
            if target.exists():
                os.rename(target, old)
            os.rename(new, target)
        except OSError as exc:
            try:  # the older folder back in place
                if old.exists() and not target.exists():
                    os.rename(old, target)
            except OSError:
                raise WriteError(out, exc, f"the older model folder is kept as {old}") \
                    from None
            shutil.rmtree(work, ignore_errors=True)
            raise _write_error(out, exc, done) from None
        shutil.rmtree(work, ignore_errors=True)
    if (target / CARD_FILE).is_file():  # its README, with the baselines beside it as rows
        try:
            write_card(target, read_card(target))
        except (OSError, ModelError) as exc:  # the folder is whole; the rows are missing
            logger.warning("warning: %s: README.md not rendered again (%s)", out, exc)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP (where they are not ignored) until the block ends,
    then act on the first that came as its handler would have (improv.cli: raise
    KeyboardInterrupt, or Terminated). Only the main thread sets handlers: elsewhere the
    block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    wanted = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
              if hasattr(signal, name)]
    before = {sig: signal.getsignal(sig) for sig in wanted}
    for sig, handler in before.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if came:
            handler = before[came[0]]
            if callable(handler):
                handler(came[0], None)
            else:  # the default: what it would have done
                signal.raise_signal(came[0])


def _write_error(out: Path, error: OSError, done: str) -> OSError:
    """``error`` as a :class:`WriteError` of ``out`` (one of a file in the work folder, which
    is gone, too; another of improv's own as it is)."""
    if isinstance(error, ImprovError) and not isinstance(error, WriteError):
        return error
    return WriteError(out, error, done)


def write_model(model: keras.Model, config: TrainConfig, folder: Path, card: dict,
                name: str) -> None:
    """Write the model, its weights and its card (named ``name``) into ``folder``, a new
    folder :func:`building` swaps in."""
    model.save(folder / KERAS_FILE)
    np.savez(folder / WEIGHTS_FILE, **weights_to_arrays(model, config))
    card = {"name": name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds"), "arch": config.arch, "config": config.to_dict(),
        "parameters": int(model.count_params()), "keras": keras.__version__, **card}
    write_card(folder, card)


def export_model(model: keras.Model, config: TrainConfig, out_dir: str | Path,
                 card: dict, keep: tuple[str | Path, ...] = ()) -> Path:
    """Write the model folder ``out_dir`` whole (an older one there is replaced, not mixed
    with the new files; a failed write leaves it as it was) and return it. ``keep``: paths
    ``out_dir`` must not hold (the checkpoints read)."""
    out = Path(out_dir)
    with building(out, keep) as folder:
        write_model(model, config, folder, card, out.name)
    return out
