"""Train a note model: data, strategy, checkpoints, resume and Ctrl-C."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from improv.corpus import Corpus, DataError, find_midi_files, load_corpus, tutorial_files
from improv.errors import InvalidValueError
from improv.trainconfig import TrainConfig
from training.datasets import make_dataset
from training.distribute import fit_multi_worker, get_strategy, is_chief
from training.model import build_model, compile_model

logger = logging.getLogger(__name__)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving a checkpoint."""


@dataclass
class TrainResult:
    """A trained model and what is known about how it was trained."""

    model: keras.Model
    config: TrainConfig
    corpus: Corpus
    history: dict[str, list[float]]
    train_seconds: float
    examples_per_second: float
    targets_per_second: float
    epochs_run: int
    stopped_by: str = "epoch limit"
    replicas: int = 1


def gather_corpus(config: TrainConfig, progress: bool = True) -> Corpus:
    """Find and read the files ``config`` trains on (all splits)."""
    if not config.data:
        raise DataError("no data sources given")
    if config.max_files:
        # The tutorial trains on its first files and has no held-out part; keep
        # the other splits of the same sources for evaluation.
        train = tutorial_files(config.data[0], config.max_files)
        rest = [f for src in config.data for f in find_midi_files(src) if f.split != "train"]
        files = train + rest
    else:
        files = [f for src in config.data for f in find_midi_files(src)]
    corpus = load_corpus(files, progress=progress)
    if not corpus.split("train").notes:
        raise DataError("no readable training files in " + ", ".join(config.data))
    return corpus


class _TimeLimit(keras.callbacks.Callback):
    """Count batches; stop training once ``minutes`` have passed."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
        self.hit = False
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.deadline and time.monotonic() > self.deadline:
            self.hit = True
            self.model.stop_training = True


class _SaveState(keras.callbacks.Callback):
    """After each epoch, save the model and the history so a run can resume."""

    def __init__(self, ckpt_dir: Path, history: dict, enabled: bool):
        super().__init__()
        self.ckpt_dir, self.history, self.enabled = ckpt_dir, history, enabled
        self.epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch + 1
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        if self.enabled:
            save_checkpoint(self.model, self.ckpt_dir, self.epoch, self.history)


def save_checkpoint(model: keras.Model, ckpt_dir: Path, epoch: int, history: dict) -> None:
    """Write ``last.keras`` and ``state.json`` atomically (a crash keeps the old pair)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / "last.tmp.keras"
    model.save(tmp)
    tmp.replace(ckpt_dir / "last.keras")
    state_tmp = ckpt_dir / "state.tmp.json"
    state_tmp.write_text(json.dumps({"epoch": epoch, "history": history}))
    state_tmp.replace(ckpt_dir / "state.json")


#: What a checkpoint's model is made of: a run that resumes it must ask for the same (a
#: resume with other units trained the checkpoint's model and exported it as a card that
#: named the new size, a model improv then refused).
_SHAPE_FIELDS = ("arch", "seq_length", "units", "vocab_size", "timing_bins", "velocity_bins",
                 "pitch_embedding", "interval_embedding")


def _check_resumable(ckpt_dir: Path, config: TrainConfig) -> None:
    """Refuse (one line) to resume a checkpoint whose model differs from ``config``'s, or
    whose files are damaged."""
    if not (ckpt_dir / "last.keras").exists():
        return
    try:
        saved = TrainConfig.from_dict(
            json.loads((ckpt_dir / "config.json").read_text(encoding="utf-8")))
        json.loads((ckpt_dir / "state.json").read_text(encoding="utf-8"))["epoch"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise InvalidValueError(f"{ckpt_dir}: cannot resume, its config.json or state.json "
                                f"is missing or damaged ({reason})") from None
    differ = [f"{name} {getattr(saved, name)} (this run: {getattr(config, name)})"
              for name in _SHAPE_FIELDS if getattr(saved, name) != getattr(config, name)]
    if differ:
        raise InvalidValueError(f"{ckpt_dir}: cannot resume, its model has "
                                f"{', '.join(differ)}; give the same settings, or another "
                                "--checkpoints folder to start afresh")


def train(
    config: TrainConfig,
    ckpt_dir: str | Path,
    resume: bool = False,
    strategy_name: str = "auto",
    cpu_replicas: int = 0,
    verbose: int | str = "auto",
    corpus: Corpus | None = None,
) -> TrainResult:
    """Train ``config`` and return the model with its best weights.

    Checkpoints go to ``ckpt_dir`` after every epoch; ``resume=True`` continues
    from them. On Ctrl-C the current weights are saved and
    :class:`TrainingInterrupted` is raised.
    """
    ckpt_dir = Path(ckpt_dir)
    if resume:
        _check_resumable(ckpt_dir, config)  # before the data is read, not after the run
    if corpus is None:  # before the strategy: forking after gRPC starts can deadlock
        corpus = gather_corpus(config, progress=verbose != 0)
    strategy = get_strategy(strategy_name, cpu_replicas)
    chief = is_chief()
    train_notes = corpus.split("train").notes
    val_notes = corpus.split("validation").notes if config.monitor.startswith("val_") else []
    if config.monitor.startswith("val_") and not val_notes:
        logger.warning("warning: no validation files; early stopping watches the training loss")
        config = config.replace(monitor=config.monitor[len("val_"):])
    train_ds = make_dataset(train_notes, config, training=True)
    val_ds = make_dataset(val_notes, config, training=False) if val_notes else None

    history: dict[str, list[float]] = {}
    initial_epoch = 0
    with strategy.scope():
        if resume and (ckpt_dir / "last.keras").exists():
            state = json.loads((ckpt_dir / "state.json").read_text())
            model = keras.models.load_model(ckpt_dir / "last.keras")
            initial_epoch, history = state["epoch"], state["history"]
            logger.info("resuming from %s after epoch %s", ckpt_dir, initial_epoch)
        else:
            if resume:
                logger.info("no checkpoint in %s; starting afresh", ckpt_dir)
            keras.utils.set_random_seed(config.seed)
            model = compile_model(build_model(config), config)

    saver = _SaveState(ckpt_dir, history, chief)
    saver.epoch = initial_epoch
    limit = _TimeLimit(config.max_minutes)
    early = keras.callbacks.EarlyStopping(monitor=config.monitor, patience=config.patience,
                                          restore_best_weights=True, verbose=1)
    callbacks = [saver, early, limit]
    if config.reduce_lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor, factor=0.5, patience=config.reduce_lr_patience, verbose=1))
    if chief:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            ckpt_dir / "best.keras", monitor=config.monitor, save_best_only=True))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    started = time.monotonic()
    try:
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            fit_multi_worker(model, strategy, train_ds, val_ds, config, initial_epoch, callbacks)
        else:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                      initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose)
    except KeyboardInterrupt:
        if chief:
            save_checkpoint(model, ckpt_dir, saver.epoch, history)
        raise TrainingInterrupted(
            f"interrupted: saved the weights to {ckpt_dir / 'last.keras'} "
            f"(after epoch {saver.epoch}); run again with --resume to continue") from None
    seconds = time.monotonic() - started
    epochs_run = saver.epoch - initial_epoch
    if (ckpt_dir / "best.keras").exists():
        # EarlyStopping restores only when it stops the run; the time limit does not.
        model.set_weights(keras.models.load_model(ckpt_dir / "best.keras").get_weights())

    per_second = limit.batches * config.batch_size / seconds if seconds > 0 else 0.0
    return TrainResult(
        model=model, config=config, corpus=corpus, history=history, train_seconds=seconds,
        examples_per_second=per_second,
        targets_per_second=per_second * (config.seq_length if config.arch == "streaming" else 1),
        epochs_run=epochs_run, replicas=strategy.num_replicas_in_sync,
        stopped_by="time limit" if limit.hit else
        "early stopping" if early.stopped_epoch else "epoch limit",
    )
