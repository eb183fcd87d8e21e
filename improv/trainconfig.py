"""Training configuration, its named presets, and the checks of what a run is given that
``improv train`` and ``improv export`` make before TensorFlow's import (a second, not after
the run): the replicas, the model folder and the checkpoint folder."""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from improv.errors import InvalidValueError
from improv.flags import flag
from improv.weights import CARD_FILE, KERAS_FILE, WEIGHTS_FILE

ARCHITECTURES = ("tutorial", "streaming")
MAX_BATCH_SIZE = 65536
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a model and how it is trained.

    ``arch="tutorial"`` is the tutorial's window model: a fresh LSTM state on
    each ``seq_length``-note window, one target per window. ``arch="streaming"``
    predicts the next note at every position of ``seq_length``-note sequences,
    so running it one step per note with the state carried is how it was trained.

    A field whose metadata has ``"flag"`` is also an ``improv train`` flag (``--seq-length``
    for ``seq_length``), with that help text (:func:`improv.flags.add_fields`):
    a new field is one edit.
    """

    arch: str = flag("streaming", None, choices=ARCHITECTURES)
    seq_length: int = flag(128, "notes per window/sequence")
    units: int = flag(128, "LSTM units")
    vocab_size: int = 128
    learning_rate: float = flag(0.005, "Adam learning rate")
    batch_size: int = flag(64, "batch size")
    epochs: int = flag(50, "maximum epochs")
    pitch_weight: float = flag(0.05, "loss weight of the pitch head")
    step_weight: float = flag(1.0, "loss weight of the step head")
    duration_weight: float = flag(1.0, "loss weight of the duration head")
    patience: int = flag(5, "early-stopping patience in epochs")
    monitor: str = "val_loss"
    #: Halve the learning rate after this many epochs without improvement (0: never).
    reduce_lr_patience: int = flag(0, "halve the learning rate after N flat epochs (0: never)")
    #: Predict step and duration as classes over this many log-spaced time bins
    #: (:mod:`improv.timebins`) instead of the tutorial's single values (0).
    timing_bins: int = flag(0, "step and duration as classes over N time bins (0: values)")
    #: Give the model each note's velocity as a fourth input and predict the next one as
    #: classes over this many bins (:mod:`improv.velocitybins`); 0: the tutorial's three
    #: inputs and no velocity head.
    velocity_bins: int = flag(0, "velocity as an input and a head over N classes (0: none)")
    velocity_weight: float = flag(0.5, "loss weight of the velocity head")
    #: Read the pitch through a learned embedding of this many dimensions, so the model can
    #: tell pitch classes apart (0: the tutorial's single input pitch / vocab_size).
    pitch_embedding: int = flag(0, "read the pitch through a learned N-d embedding (0: /128)")
    #: Also read the interval to the previous note (:mod:`improv.features`) through a learned
    #: embedding of this many dimensions (0: none; needs ``pitch_embedding``).
    interval_embedding: int = flag(0, "also read the interval to the previous note (N-d)")
    #: Transpose each training window by a random number of semitones in [-t, t].
    transpose: int = flag(0, "random transposition of ±N semitones")
    #: Stop after this many minutes of training (0: no limit).
    max_minutes: float = flag(0.0, "stop after this many minutes")
    #: Use at most this many training files, in path order (0: all); the tutorial used 5.
    max_files: int = flag(0, "train on the first N training files only")
    seed: int = flag(42, "random seed")
    data: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise InvalidValueError(f"arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        for name in ("seq_length", "units", "vocab_size", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise InvalidValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.vocab_size != 128:  # the live engine looks up raw MIDI pitches, 0-127
            raise InvalidValueError(f"vocab_size must be 128 (MIDI pitches), got "
                                    f"{self.vocab_size}")
        # (the loader's bounds, improv.weights: a model beyond them would train, then be
        # refused; 4096 is 16 times the default's units and 32 times its window)
        for name in ("units", "seq_length"):
            if getattr(self, name) > 4096:
                raise InvalidValueError(f"{name} must be at most 4096, got "
                                        f"{getattr(self, name)}")
        # (a red-team run: --batch-size 100000000 was a traceback; a batch above the training
        # examples trains nothing, and the shipped model's 2.49 M ASAP training notes make
        # 19,484 sequences of 128: 65536 is 1024 times the default and more than 3 times that)
        if self.batch_size > MAX_BATCH_SIZE:
            raise InvalidValueError(f"batch_size must be at most {MAX_BATCH_SIZE}, got "
                                    f"{self.batch_size}")
        # (NumPy's and so keras.utils.set_random_seed's range: -1 and 2**47 were tracebacks)
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidValueError(f"seed must be 0-{MAX_SEED}, got {self.seed}")
        # (NaN passes every comparison's "not": a NaN learning rate trained to NaN weights)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InvalidValueError(f"learning_rate must be positive, got {self.learning_rate}")
        weights = (self.pitch_weight, self.step_weight, self.duration_weight,
                   self.velocity_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise InvalidValueError(f"loss weights must be finite and not negative, got "
                                    f"{weights}")
        if not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise InvalidValueError(f"max_minutes must be 0 (no limit) or more, got "
                                    f"{self.max_minutes}")
        for name in ("max_files", "patience", "reduce_lr_patience"):
            if getattr(self, name) < 0:
                raise InvalidValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.timing_bins and not 3 <= self.timing_bins <= 1024:
            raise InvalidValueError(f"timing_bins must be 0 or 3-1024, got {self.timing_bins}")
        if self.velocity_bins and not 2 <= self.velocity_bins <= 64:
            raise InvalidValueError(f"velocity_bins must be 0 or 2-64, got {self.velocity_bins}")
        if not 0 <= self.pitch_embedding <= 512:
            raise InvalidValueError(f"pitch_embedding must be 0-512, got {self.pitch_embedding}")
        if not 0 <= self.interval_embedding <= 512:
            raise InvalidValueError(
                f"interval_embedding must be 0-512, got {self.interval_embedding}")
        if self.interval_embedding and not self.pitch_embedding:
            raise InvalidValueError("interval_embedding needs pitch_embedding")
        if self.pitch_embedding and self.arch != "streaming":
            raise InvalidValueError("pitch_embedding is for the streaming model; the tutorial "
                                    "models keep the tutorial's input")
        if not 0 <= self.transpose <= 24:
            raise InvalidValueError(f"transpose must be 0-24 semitones, got {self.transpose}")

    @property
    def loss_weights(self) -> dict[str, float]:
        weights = {"pitch": self.pitch_weight, "step": self.step_weight,
                   "duration": self.duration_weight}
        if self.velocity_bins:
            weights["velocity"] = self.velocity_weight
        return weights

    @property
    def n_features(self) -> int:
        """Columns per note: pitch, step, duration (and velocity); the pitch as
        pitch / vocab_size, or an integer looked up in the pitch embedding."""
        return 4 if self.velocity_bins else 3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"] = list(self.data)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InvalidValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "data" in d:
            d["data"] = tuple(d["data"])
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


def check_replicas(replicas: int, batch_size: int) -> None:
    """Refuse (one line) more replicas than examples in a batch: each replica needs one (a
    red-team run: --cpu-replicas 100 with a batch of 64 printed TensorFlow's
    InvalidArgumentError and then never exited)."""
    if replicas > batch_size:
        raise InvalidValueError(f"{replicas} replicas need a batch of at least {replicas} "
                                f"examples (one each), got a batch size of {batch_size}")


#: A folder holding any of these is a model folder, which an export may replace.
MODEL_FILES = (KERAS_FILE, WEIGHTS_FILE, CARD_FILE)
#: The other files a model folder holds.
MODEL_EXTRAS = ("README.md", "history.json", "history.png", "piano_roll.png",
                "distributions.png")
#: A temporary file of :func:`improv.outfile.replacing` (``.NAME.XXXXXXXX.tmpSUFFIX``).
_TEMPORARY = re.compile(r"\..+\.\w{8}\.tmp.*")
#: A folder holding any of these holds a checkpoint, which only ``--resume`` continues.
CHECKPOINT_FILES = ("last.keras", "best.keras", "state.json")


def _check_writable(path: Path, what: str, inside: bool = False) -> None:
    """Refuse (one line) a folder ``path`` that is a file, or whose nearest folder above that
    exists (``path`` itself, if it exists and ``inside``: written into, not replaced) is a
    file or takes no new folder (``/dev/full/x``, ``/proc/x``, a read-only file system),
    tried by making and removing a folder there (root may write where ``os.access`` says no).
    (a red-team run: each was a traceback, ``--out FILE`` only after the whole training)"""
    if path.exists() and not path.is_dir():
        raise InvalidValueError(f"{path}: a file, not {what}")
    above = Path(os.path.realpath(path))
    if not (inside and above.is_dir()):
        above = above.parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise InvalidValueError(f"{path}: {above} is a file, not a folder")
    probe = above / f".improv-probe.{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError as exc:
        raise InvalidValueError(f"{path}: cannot be written here ({exc.strerror or exc})") \
            from None
    probe.rmdir()


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def check_model_folder(out: str | Path, keep: Iterable[str | Path] = ()) -> None:
    """Refuse (one line) a model folder ``out`` that cannot be written, a folder of other
    files (it would be replaced whole), and one that holds a path of ``keep`` (the
    checkpoints an export reads)."""
    out = Path(out)
    _check_writable(out, "a model folder")
    for path in keep:
        if _inside(path, out):
            raise InvalidValueError(f"{out}: holds {path}, which the new model folder would "
                                    "replace; name another folder")
    # Anything but what a model folder holds (and junk: .DS_Store, a cut rewrite's temporary
    # file) is the user's, and would go with the older model (a review, a red-team run:
    # notes, .git, a screenshot.png)
    others = sorted(p.name for p in out.iterdir() if not (
        p.is_file() and (p.name in MODEL_FILES + MODEL_EXTRAS or p.name == ".DS_Store"
                         or _TEMPORARY.fullmatch(p.name)))) if out.is_dir() else []
    if others and not any((out / n).exists() for n in MODEL_FILES):
        raise InvalidValueError(f"{out}: a folder of other files, not a model folder (no "
                                f"{', '.join(MODEL_FILES)}); name a new folder or a model "
                                "folder to replace")
    if others:
        raise InvalidValueError(f"{out}: also holds {', '.join(others[:3])}"
                                f"{' ...' if len(others) > 3 else ''}, which a model folder "
                                "replaced whole would lose; move them, or name another folder")


def check_checkpoints(ckpt_dir: str | Path, resume: bool) -> None:
    """Refuse (one line) a checkpoint folder that cannot be written, and one that holds a
    checkpoint a run without ``resume`` would replace (a red-team run: it silently replaced
    ``last.keras``, ``best.keras`` and ``state.json``)."""
    ckpt_dir = Path(ckpt_dir)
    _check_writable(ckpt_dir, "a checkpoint folder", inside=True)
    held = [n for n in CHECKPOINT_FILES if (ckpt_dir / n).exists()]
    if held and not resume:
        raise InvalidValueError(f"{ckpt_dir}: holds a checkpoint ({', '.join(held)}) this run "
                                "would replace; add --resume to continue it, or name another "
                                "--checkpoints folder")


_TUTORIAL = TrainConfig(arch="tutorial", seq_length=25, monitor="loss", epochs=50)

#: Named starting points for ``improv train --preset``.
PRESETS: dict[str, TrainConfig] = {
    # The tutorial exactly: its first 5 MAESTRO files, 50 epochs, early stopping on training loss.
    "tutorial-5files": _TUTORIAL.replace(max_files=5, data=("../shared/data/maestro-asap",)),
    # The tutorial's model and settings on every maestro-asap training file.
    "tutorial-full": _TUTORIAL.replace(data=("../shared/data/maestro-asap",)),
    # The live daemon's model (models/default): next note at every position, state carried.
    # Pitch weight 0.5, 256 units and transposition by up to 5 semitones won on validation
    # loss over pitch weights 0.05/0.25/1.0, 128 units and no transposition (models/README.md).
    "streaming": TrainConfig(
        units=256, pitch_weight=0.5, transpose=5, reduce_lr_patience=2, epochs=200,
        max_minutes=35,
        data=("../shared/data/maestro-asap", "../shared/data/asap-ecompetition")),
}
# The streaming model with step and duration as classes over 48 log-spaced time bins
# (about 14% wide), sampled like pitch; pitch keeps half the loss.
PRESETS["sampled-timing"] = PRESETS["streaming"].replace(
    timing_bins=48, pitch_weight=1.0, step_weight=0.5, duration_weight=0.5)
# The same, with each note's velocity as a fourth input and a velocity head over 32 bins.
PRESETS["dynamics"] = PRESETS["sampled-timing"].replace(velocity_bins=32, velocity_weight=0.5)
# The same, hearing harmony: the pitch through a learned 32-d embedding and the interval to the
# previous note through a 16-d one, instead of pitch / 128 (which cannot tell C4 from B4 any
# better than from C5). The shipped default; models/README.md has the runs that chose it.
PRESETS["harmony"] = PRESETS["dynamics"].replace(pitch_embedding=32, interval_embedding=16,
                                                 epochs=60, max_minutes=80)
