"""Train a note model: data, strategy, checkpoints, resume and Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from improv.checks import is_history
from improv.corpus import Corpus, DataError, find_midi_files, load_corpus, tutorial_files
from improv.errors import InvalidValueError
from improv.trainconfig import TrainConfig, check_checkpoints, check_replicas
from training.datasets import make_dataset
from training.distribute import fit_multi_worker, get_strategy, is_chief
from training.model import build_model, compile_model

logger = logging.getLogger(__name__)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving a checkpoint."""


@dataclass
class TrainResult:
    """A trained model and what is known about how it was trained. ``epochs_run``: the
    epochs this call trained; ``epochs``, ``train_seconds`` and the rates: the whole run's,
    over every session a run resumed with ``--resume`` (a resume of a finished run trains
    nothing, and its card said 0 epochs in 0 s)."""

    model: keras.Model
    config: TrainConfig
    corpus: Corpus
    history: dict[str, list[float]]
    train_seconds: float
    examples_per_second: float
    targets_per_second: float
    epochs_run: int
    epochs: int
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
    """Stop training once ``minutes`` have passed."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
        self.hit = False

    def on_train_batch_end(self, batch, logs=None):
        if self.deadline and time.monotonic() > self.deadline:
            self.hit = True
            self.model.stop_training = True


@dataclass(frozen=True)
class RunState:
    """What ``state.json`` keeps of a run beside its weights: the epochs done, their history,
    and the examples and seconds they took, over every session of the run (a checkpoint
    written before these were kept reads as 0 of each). Seconds are the epochs' own: this
    state's own saving after an epoch, and an epoch cut short by Ctrl-C, are not counted.
    The counts are checked against limits no run reaches (a hand-edited ``examples`` of
    10**400 was a traceback after the run)."""

    epoch: int = 0
    history: dict = field(default_factory=dict)
    examples: int = 0
    seconds: float = 0.0

    def __post_init__(self):
        if (isinstance(self.epoch, bool) or not isinstance(self.epoch, int)
                or not 0 <= self.epoch < 2 ** 31):
            raise ValueError(f"epoch {self.epoch!r} is not a count of epochs")
        if not is_history(self.history):
            raise ValueError("history is not lists of numbers")
        if (isinstance(self.examples, bool) or not isinstance(self.examples, int)
                or not 0 <= self.examples <= 2 ** 53):
            raise ValueError(f"examples {self.examples!r} is not a count")
        if (isinstance(self.seconds, bool) or not isinstance(self.seconds, int | float)
                or not 0 <= self.seconds < 1e9):  # (NaN fails both)
            raise ValueError(f"seconds {self.seconds!r} is not a duration")

    def rates(self, config: TrainConfig) -> tuple[float, float]:
        """Examples and target notes trained a second (0 with no time kept): a streaming
        model learns ``seq_length`` notes an example, the tutorial's one."""
        per_second = self.examples / self.seconds if self.seconds > 0 else 0.0
        return per_second, per_second * (config.seq_length if config.arch == "streaming" else 1)


class _SaveState(keras.callbacks.Callback):
    """After each epoch, save the model and the run's state so that it can resume: its
    history, and the examples and seconds trained so far (from ``state``: a resumed run's;
    examples as batches of ``batch_size``, which a resumed run may change)."""

    def __init__(self, ckpt_dir: Path, state: RunState, enabled: bool, batch_size: int):
        super().__init__()
        self.ckpt_dir, self.state, self.enabled = ckpt_dir, state, enabled
        self.history = state.history
        self.batch_size = batch_size
        self.batches = 0  # since the last epoch's end
        self._started = time.monotonic()

    def on_train_begin(self, logs=None):
        self._started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        self.state = RunState(epoch + 1, self.history,
                              self.state.examples + self.batches * self.batch_size,
                              self.state.seconds + time.monotonic() - self._started)
        self.batches = 0
        if self.enabled:
            save_checkpoint(self.model, self.ckpt_dir, self.state)
        self._started = time.monotonic()  # (the save is not the next epoch's time)


def save_checkpoint(model: keras.Model, ckpt_dir: Path, state: RunState) -> None:
    """Write ``last.keras`` and ``state.json`` atomically (a crash keeps the old pair)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / "last.tmp.keras"
    model.save(tmp)
    tmp.replace(ckpt_dir / "last.keras")
    state_tmp = ckpt_dir / "state.tmp.json"
    state_tmp.write_text(json.dumps({"epoch": state.epoch, "history": state.history,
                                     "examples": state.examples, "seconds": state.seconds}))
    state_tmp.replace(ckpt_dir / "state.json")


#: What a checkpoint's model is made of: a run that resumes it must ask for the same (a
#: resume with other units trained the checkpoint's model and exported it as a card that
#: named the new size, a model improv then refused).
_SHAPE_FIELDS = ("arch", "seq_length", "units", "vocab_size", "timing_bins", "velocity_bins",
                 "pitch_embedding", "interval_embedding")


def _damaged(path: Path, exc: BaseException) -> InvalidValueError:
    reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [repr(exc)])[0]
    return InvalidValueError(f"{path}: cannot resume, the file is missing or damaged "
                             f"({reason}); run without --resume into another --checkpoints "
                             "folder to start afresh")


def read_state(path: Path) -> RunState:
    """Return a checkpoint's :class:`RunState` from its ``state.json``; a damaged one is one
    line (a red-team run: ``"epoch": "x"`` was a TypeError inside ``fit``)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        run = RunState(state["epoch"], state["history"], state.get("examples", 0),
                       state.get("seconds", 0.0))
        return dataclasses.replace(
            run, history={k: [float(x) for x in v] for k, v in run.history.items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            OverflowError) as exc:  # (OverflowError: an int of 400 digits)
        raise _damaged(path, exc) from None


def _check_resumable(ckpt_dir: Path, config: TrainConfig) -> TrainConfig | None:
    """Refuse (one line) to resume a checkpoint whose model differs from ``config``'s, or
    whose files are damaged; return the config it was trained with (None: no checkpoint)."""
    last = ckpt_dir / "last.keras"
    if not last.exists():
        others = [n for n in ("best.keras", "state.json") if (ckpt_dir / n).exists()]
        if others:  # (resumed "afresh", it replaced them: a red-team run)
            raise InvalidValueError(f"{ckpt_dir}: holds {', '.join(others)} but no last.keras "
                                    "to resume from; improv export it, or name another "
                                    "--checkpoints folder")
        return None
    try:
        saved = TrainConfig.from_dict(
            json.loads((ckpt_dir / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _damaged(ckpt_dir / "config.json", exc) from None
    read_state(ckpt_dir / "state.json")
    best = ckpt_dir / "best.keras"  # (read after the run: found damaged only then)
    if best.exists() and not zipfile.is_zipfile(best):
        raise _damaged(best, ValueError("not a Keras file"))
    if not zipfile.is_zipfile(last):  # (a .keras file is a zip; "garbage" was a traceback)
        raise _damaged(last, ValueError("not a Keras file"))
    differ = [f"{name} {getattr(saved, name)} (this run: {getattr(config, name)})"
              for name in _SHAPE_FIELDS if getattr(saved, name) != getattr(config, name)]
    if differ:
        raise InvalidValueError(f"{ckpt_dir}: cannot resume, its model has "
                                f"{', '.join(differ)}; give the same settings, or another "
                                "--checkpoints folder to start afresh")
    return saved


def _best(history: dict[str, list[float]], monitor: str) -> tuple[float | None, int]:
    """The lowest ``monitor`` value in a resumed ``history`` and the epochs since it (a NaN
    epoch is never the best: no value beats a NaN best)."""
    values = history.get(monitor) or []
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None, 0
    best, at = min(finite)
    return best, len(values) - 1 - at


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that goes on where a resumed run stopped: from its ``best`` value, with
    the ``waited`` epochs since it already counted (a fresh one began each resume at no best
    and no wait; Keras's ``baseline`` would not do: an epoch that beat the resumed run's
    own best skipped the patience check)."""

    def __init__(self, best: float | None = None, waited: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.resumed_best, self.waited = best, waited

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best, self.wait = self.resumed_best, self.waited


def train(
    config: TrainConfig,
    ckpt_dir: str | Path,
    resume: bool = False,
    strategy_name: str = "auto",
    cpu_replicas: int = 0,
    verbose: int | str = "auto",
    corpus: Corpus | None = None,
    learning_rate_given: bool = False,
) -> TrainResult:
    """Train ``config`` and return the model with its best weights.

    Checkpoints go to ``ckpt_dir`` after every epoch; ``resume=True`` continues
    from them (with ``config``'s learning rate if it differs from the checkpoint's or
    ``learning_rate_given``: else the optimizer's own). On Ctrl-C the current weights are
    saved and :class:`TrainingInterrupted` is raised.
    """
    ckpt_dir = Path(ckpt_dir)
    check_checkpoints(ckpt_dir, resume)  # before the data is read, not after the run
    check_replicas(cpu_replicas, config.batch_size)
    saved = _check_resumable(ckpt_dir, config) if resume else None
    if corpus is None:  # before the strategy: forking after gRPC starts can deadlock
        corpus = gather_corpus(config, progress=verbose != 0)
    strategy = get_strategy(strategy_name, cpu_replicas)
    check_replicas(strategy.num_replicas_in_sync, config.batch_size)  # (GPUs, workers)
    chief = is_chief()
    train_notes = corpus.split("train").notes
    val_notes = corpus.split("validation").notes if config.monitor.startswith("val_") else []
    if config.monitor.startswith("val_") and not val_notes:
        logger.warning("warning: no validation files; early stopping watches the training loss")
        config = config.replace(monitor=config.monitor[len("val_"):])
    train_ds = make_dataset(train_notes, config, training=True)
    val_ds = make_dataset(val_notes, config, training=False) if val_notes else None

    state = RunState()
    with strategy.scope():
        if saved is not None:
            state = read_state(ckpt_dir / "state.json")
            try:
                model = keras.models.load_model(ckpt_dir / "last.keras")
            except Exception as exc:  # Keras raises many types for a damaged archive
                raise _damaged(ckpt_dir / "last.keras", exc) from None
            logger.info("resuming from %s after epoch %s", ckpt_dir, state.epoch)
            if learning_rate_given or saved.learning_rate != config.learning_rate:
                # (the reloaded optimizer kept the checkpoint's rate while the config and the
                # card named the new one: a red-team run); else the rate stays as the
                # optimizer has it, halved by --reduce-lr-patience or not
                was = float(np.asarray(model.optimizer.learning_rate))
                model.optimizer.learning_rate = config.learning_rate
                logger.info("learning rate %g (the checkpoint's was %g)",
                            config.learning_rate, was)
        else:
            if resume:
                logger.info("no checkpoint in %s; starting afresh", ckpt_dir)
            keras.utils.set_random_seed(config.seed)
            model = compile_model(build_model(config), config)

    initial_epoch, history = state.epoch, state.history
    saver = _SaveState(ckpt_dir, state, chief, config.batch_size)
    limit = _TimeLimit(config.max_minutes)
    # A resumed run starts from its history's best: with a blank one, its first epoch, worse
    # or not, replaced best.keras (a red-team run).
    best, waited = _best(history, config.monitor)
    if not (ckpt_dir / "best.keras").exists():
        best = None  # (nothing to keep: the first epoch writes it)
    early = _EarlyStopping(best=best, waited=waited, monitor=config.monitor,
                           patience=config.patience, restore_best_weights=True, verbose=1)
    callbacks = [saver, early, limit]
    if config.reduce_lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor, factor=0.5, patience=config.reduce_lr_patience, verbose=1))
    if chief:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            ckpt_dir / "best.keras", monitor=config.monitor, save_best_only=True,
            initial_value_threshold=best))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    try:
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            fit_multi_worker(model, strategy, train_ds, val_ds, config, initial_epoch, callbacks)
        else:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                      initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose)
    except KeyboardInterrupt:
        if chief:
            save_checkpoint(model, ckpt_dir, saver.state)
        raise TrainingInterrupted(
            f"interrupted: saved the weights to {ckpt_dir / 'last.keras'} "
            f"(after epoch {saver.state.epoch}); run again with --resume to continue") from None
    epochs_run = saver.state.epoch - initial_epoch
    # the whole run's, every session of it (Keras and fit_multi_worker end a stopped epoch
    # too: no batch is left after the last epoch's end)
    per_second, targets_per_second = saver.state.rates(config)
    if (ckpt_dir / "best.keras").exists():
        # EarlyStopping restores only when it stops the run; the time limit does not.
        model.set_weights(keras.models.load_model(ckpt_dir / "best.keras").get_weights())

    return TrainResult(
        model=model, config=config, corpus=corpus, history=history,
        train_seconds=saver.state.seconds,
        examples_per_second=per_second, targets_per_second=targets_per_second,
        epochs_run=epochs_run, epochs=saver.state.epoch, replicas=strategy.num_replicas_in_sync,
        stopped_by="time limit" if limit.hit else
        "early stopping" if early.stopped_epoch else "epoch limit",
    )
