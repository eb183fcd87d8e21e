"""``improv run``: play live with a pianist (the daemon, improv.daemon)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from improv.commands.common import GAIN_HELP, with_gain
from improv.flags import add_fields, given_fields

#: The sections of the config file whose fields are also flags, and their help groups.
SECTIONS = {"settings": "how improv plays along", "sampling": "how notes are drawn",
            "time": "follow a MIDI clock or a tempo; answers on the beat"}


def add_parser(sub) -> None:
    from improv.config import RunOptions, section_classes

    p = sub.add_parser("run", help="play live with a pianist (the daemon)",
                       description="Listen on a MIDI input and answer on a MIDI output and/or "
                       "FluidSynth. Settings come from --config (TOML), then flags.")
    p.add_argument("--config", type=Path, help="TOML file of settings (flags win)")
    p.add_argument("--gain", type=float, help=GAIN_HELP)
    p.add_argument("--status-json", action="store_true",
                   help="also print the session's status as JSON lines on stdout (events "
                   "listening, stopped, and status with the status line; for scripts and "
                   "benchmarks)")
    # Every other flag is a field of RunOptions or of one of its sections, with its help
    # in the field (improv.flags): --tempo sets [time] tempo.
    flags = {"": add_fields(p, RunOptions)}
    classes = section_classes()
    for section, title in SECTIONS.items():
        group = p.add_argument_group(section, title)
        flags[section] = add_fields(group, classes[section])
    p.set_defaults(option_flags=flags)


def _run_options(args):
    """The options of the config file (if any) with the flags given on top."""
    from improv.config import RunOptions, apply_flags, load_config

    options = load_config(args.config) if args.config else RunOptions()
    flags = {}
    for section, names in args.option_flags.items():
        for name, value in given_fields(args, names).items():
            flags[f"{section}.{name}" if section else name] = value
    return with_gain(apply_flags(options, flags), args.gain)


def command(args) -> int:
    from improv.daemon import EXIT_MIDI_GONE, run
    from improv.outfile import check_outputs

    options = _run_options(args)
    if args.config:  # (the session checks its outputs against each other when it opens)
        check_outputs(options.record or None, reads={"the config file": args.config})
    code = run(options, status_json=sys.stdout if args.status_json else None)
    if code == EXIT_MIDI_GONE:
        # The JACK server vanished: libjack freed the clients under our port objects, and
        # tearing those down at interpreter exit would crash. The recording is written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
