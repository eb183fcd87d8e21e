"""Helpers the command modules share: flags, checks, the sampling defaults."""

from __future__ import annotations

import os
from pathlib import Path

from improv.errors import InvalidValueError, MissingFileError
from improv.sampling import SamplingConfig
from improv.table import Column, print_table

#: improv's sampling defaults, for the flags' defaults and help (improv/sampling.py).
SAMPLING = SamplingConfig()


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=".*shuffle=True.*")


def check_data(sources) -> None:
    """Say how to get the training data when a source is missing."""
    for source in sources:
        if not Path(source).exists():
            raise MissingFileError(
                f"{source}: no such file or folder; get the data sets improv trains on with: "
                "improv data download asap (see improv data list), or name yours with --data")


def tuned_strength() -> float:
    """The strength evaluate scores the memory at unless told (improv.memory)."""
    from improv.memory import TUNED_STRENGTH

    return TUNED_STRENGTH


def memory_strength(args, default: float | None = None) -> float:
    """The --memory strength (``default``, else improv's, when not given), checked."""
    from improv.memory import DEFAULT_STRENGTH

    if default is None:
        default = DEFAULT_STRENGTH
    value = default if args.memory is None else args.memory
    if not 0 <= value <= 1:
        raise InvalidValueError(f"--memory must be 0-1, got {value}")
    return value


#: The columns of evaluate's and train's metrics ("on key": probability on the 7 commonest
#: pitch classes of the 64 notes before each note).
METRIC_COLUMNS = [Column("model", 24, align="<"), Column("pitch CE", 9, ".3f"),
                  Column("top-1", 7, ".1f", suffix="%", scale=100),
                  Column("top-5", 7, ".1f", suffix="%", scale=100), Column("on key", 7, ".3f"),
                  Column("step MAE", 9, ".3f"), Column("dur MAE", 8, ".3f"),
                  Column("vel MAE", 8, ".1f"), Column("loss", 7, ".3f"),
                  Column("targets", 9, ",")]


def print_metrics(rows: dict[str, dict]) -> None:
    print_table(METRIC_COLUMNS, [
        [name, m["pitch_ce"], m["pitch_top1"], m["pitch_top5"], m.get("key_mass"),
         m["step_mae"], m["duration_mae"], m.get("velocity_mae"), m["loss"], m["targets"]]
        for name, m in rows.items()])


def add_sampling(p) -> None:
    p.add_argument("--temperature", type=float, default=SAMPLING.temperature,
                   help="pitch sampling temperature; 0 always takes the likeliest "
                   f"(default {SAMPLING.temperature:g})")
    p.add_argument("--top-k", type=int, default=0, help="draw among the k likeliest pitches")
    p.add_argument("--top-p", type=float, default=SAMPLING.top_p,
                   help=f"nucleus sampling mass (default {SAMPLING.top_p:g}; 1: off)")
    p.add_argument("--key-weight", type=float, default=SAMPLING.key_weight,
                   help="0-1: how much rarer notes outside the key of the last notes are "
                   f"drawn (default {SAMPLING.key_weight:g}; 0: the model alone)")
    p.add_argument("--max-step", type=float, default=2.0, help="longest gap between onsets (s)")
    p.add_argument("--max-duration", type=float, default=4.0, help="longest note (s)")
    p.add_argument("--random-seed", type=int, help="same number, same notes")


def check_folder(path: Path | None) -> None:
    """Refuse an output file whose folder is missing, before any work is done."""
    if path is not None and not path.resolve().parent.is_dir():
        raise MissingFileError(f"{path}: no such folder {path.parent}")


def make_sampler(args):
    from improv.sampling import Sampler, SamplingConfig

    for flag in ("max_step", "max_duration"):
        if not getattr(args, flag) > 0:
            raise InvalidValueError(f"--{flag.replace('_', '-')} must be above 0 seconds, "
                                    f"got {getattr(args, flag)}")

    cfg = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         key_weight=args.key_weight, max_step=args.max_step,
                         max_duration=args.max_duration)
    return Sampler(cfg, seed=args.random_seed)


def add_memory(p, default: float | None = None) -> None:
    p.add_argument("--memory", type=float, default=default, metavar="S",
                   help="weight of the phrase memory, 0-1: 0 the model alone, 0.5 as tuned "
                   "(default), 1 mostly the player's own material")
    p.add_argument("--memory-file", type=Path, metavar="FILE",
                   help="keep what the memory learns in FILE across sessions")


GAIN_HELP = "FluidSynth's live gain (default 1.5; 0-10); WAV files are normalised instead"


def with_gain(options, gain: float | None):
    """Return ``options`` with FluidSynth's live gain set (``synth.gain``), if given."""
    if gain is None:
        return options
    if not 0 <= gain <= 10:
        raise InvalidValueError(f"--gain must be 0-10 (FluidSynth's range), got {gain}")
    from dataclasses import replace

    return replace(options, synth_settings={**options.synth_settings, "synth.gain": gain})


def add_fields(parser, cls, names=None) -> list[str]:
    """Add a flag for each field of the dataclass ``cls`` whose metadata has ``"flag"``
    (its help), ``--seq-length`` for ``seq_length``, typed by the field's annotation and
    defaulting to None (not given); return the fields' names, for :func:`given_fields`."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        if "flag" not in f.metadata or (names is not None and f.name not in names):
            continue
        extra = {k: v for k, v in f.metadata.items() if k != "flag"}
        kind = hints[f.name]
        parser.add_argument(f"--{f.name.replace('_', '-')}", help=f.metadata["flag"],
                            **({} if "choices" in extra else {"type": kind}), **extra)
        added.append(f.name)
    return added


def given_fields(args, names) -> dict:
    """The values of the flags :func:`add_fields` added that were given."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}
