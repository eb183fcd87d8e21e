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


def memory_strength(args) -> float:
    """The --memory strength (improv's default when not given), checked."""
    from improv.memory import DEFAULT_STRENGTH

    value = DEFAULT_STRENGTH if args.memory is None else args.memory
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
    """The sampling flags (the fields of improv.sampling.SamplingConfig made flags) and
    --random-seed; :func:`make_sampler` reads them."""
    from improv.flags import add_fields

    p.set_defaults(sampling_flags=add_fields(p, SamplingConfig))
    p.add_argument("--random-seed", type=int, help="same number, same notes")


def make_sampler(args):
    from improv.flags import given_fields
    from improv.sampling import Sampler

    if args.random_seed is not None and args.random_seed < 0:
        raise InvalidValueError(f"--random-seed must be 0 or more, got {args.random_seed}")
    from improv.config import check_sampling

    config = SamplingConfig(**given_fields(args, args.sampling_flags))
    check_sampling(config)  # the caps improv run's flags and config file have
    return Sampler(config, seed=args.random_seed)


def add_memory(p) -> None:
    """--memory and --memory-file (fields of improv.improviser.Settings made flags)."""
    from improv.flags import add_fields
    from improv.improviser import Settings

    add_fields(p, Settings, only=("memory", "memory_file"))


GAIN_HELP = "FluidSynth's live gain (default 1.5; 0-10); WAV files are normalised instead"


def with_gain(options, gain: float | None):
    """Return ``options`` with FluidSynth's live gain set (``synth.gain``), if given."""
    if gain is None:
        return options
    if not 0 <= gain <= 10:
        raise InvalidValueError(f"--gain must be 0-10 (FluidSynth's range), got {gain}")
    from dataclasses import replace

    return replace(options, synth_settings={**options.synth_settings, "synth.gain": gain})
