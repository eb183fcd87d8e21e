"""``improv run``: play live with a pianist (the daemon, improv.daemon)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from improv.commands.common import GAIN_HELP, SAMPLING, add_memory, with_gain


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="play live with a pianist (the daemon)",
                       description="Listen on a MIDI input and answer on a MIDI output and/or "
                       "FluidSynth. Settings come from --config (TOML), then flags.")
    p.add_argument("--config", type=Path, help="TOML file of settings (flags win)")
    p.add_argument("--model", help="model folder (default: the shipped one)")
    p.add_argument("--input", "-i", help="input port: name, part of a name, or index")
    p.add_argument("--output", "-o", help="output port: name, part of a name, or index")
    p.add_argument("--virtual", nargs="?", const="improv", metavar="NAME",
                   help="open virtual ports NAME in / NAME out (default name: improv)")
    p.add_argument("--api", choices=("alsa", "jack", "coremidi", "winmm"), help="MIDI back-end")
    p.add_argument("--channel", type=int, help="output channel 0-15")
    p.add_argument("--voices", type=int, help="most notes improv sounds at once")
    p.add_argument("--synth", action="store_true", default=None,
                   help="play through FluidSynth (no MIDI output unless named)")
    p.add_argument("--soundfont", help="soundfont for --synth")
    p.add_argument("--audio-driver", help="FluidSynth audio driver (pulseaudio, alsa, jack, ...)")
    p.add_argument("--record", help="write the session (both parts) to this MIDI file")
    p.add_argument("--mode", choices=("call-response", "continue"),
                   help="answer each phrase, or keep playing (default call-response)")
    p.add_argument("--silence", type=float, help="seconds of silence that end a call (0: adaptive)")
    p.add_argument("--held-keys", type=float, metavar="S",
                   help="a key held this long with no input is taken as released (a lost "
                   "note-off); 0: twice the silence, at least 5 s")
    p.add_argument("--answer-notes", type=int, help="notes per answer (0: as many as the call)")
    p.add_argument("--gap", type=float, help="seconds between a call's end and the answer")
    p.add_argument("--passthrough", action=argparse.BooleanOptionalAction, default=None,
                   help="send the player's notes to the output too")
    p.add_argument("--barge-in", action=argparse.BooleanOptionalAction, default=None,
                   help="stop an answer when the player plays again (default: on)")
    p.add_argument("--temperature", type=float,
                   help="pitch sampling temperature; 0 always takes the likeliest "
                   f"(default {SAMPLING.temperature:g})")
    p.add_argument("--top-k", type=int, help="draw among the k likeliest pitches (0: all)")
    p.add_argument("--top-p", type=float,
                   help=f"nucleus sampling mass (default {SAMPLING.top_p:g}; 1: off)")
    p.add_argument("--key-weight", type=float,
                   help="0-1: how much rarer notes outside the key of the last notes are "
                   f"drawn (default {SAMPLING.key_weight:g}; 0: the model alone)")
    p.add_argument("--random-seed", type=int, help="seed of improv's random draws")
    p.add_argument("--gain", type=float, help=GAIN_HELP)
    add_memory(p)
    add_time(p)
    p.add_argument("--no-status", dest="status", action="store_false", default=None,
                   help="no status line")
    p.add_argument("--status-every", type=float, metavar="S",
                   help="seconds between status lines (default 0.5 on a terminal, else 5)")
    p.add_argument("--status-json", action="store_true",
                   help="also print the session's status as JSON lines on stdout (events "
                   "listening, stopped, and status with the status line; for scripts and "
                   "benchmarks)")
    # Every other flag sets the RunOptions field (or [settings], [sampling] key) of its name.
    p.set_defaults(option_flags=[a.dest for a in p._actions
                                 if a.dest not in ("help", "config", "gain", "status_json")])


def add_time(p) -> None:
    """The flags of time-keeping (improv.timing; the [time] section of the config file)."""
    g = p.add_argument_group("time", "follow a MIDI clock or a tempo; answers on the beat")
    g.add_argument("--clock-input", metavar="PORT",
                   help="a port that sends MIDI clock (clock arriving at --input counts too)")
    g.add_argument("--tempo", type=float, metavar="BPM",
                   help="a fixed tempo, 20-400 bpm (a MIDI clock wins; 0: none)")
    g.add_argument("--onsets", action=argparse.BooleanOptionalAction, default=None,
                   help="without a clock or --tempo, follow the tempo of the player's onsets "
                   "(default: off)")
    g.add_argument("--answer-on", choices=("beat", "bar", "now"),
                   help="with a tempo, where an answer starts: the next beat (default), bar "
                   "line, or at once")
    g.add_argument("--quantize", metavar="GRID",
                   help="grid of improv's onsets with a tempo: 1/8, 1/16, 1/12 (triplets)...")
    g.add_argument("--quantize-strength", type=float, metavar="0..1",
                   help="how far each onset moves to the grid (default 1)")
    g.add_argument("--swing", type=float, metavar="0..1",
                   help="delay the grid's off-steps (1: triplet shuffle; default 0)")
    g.add_argument("--meter", help="time signature for --answer-on bar and the metronome's "
                   "accent (default 4/4)")
    g.add_argument("--clock-out", action=argparse.BooleanOptionalAction, default=None,
                   help="send MIDI clock (and start/stop) on improv's output at the tempo in "
                   "use, for a drum machine or DAW to follow (default: off)")
    g.add_argument("--metronome", action=argparse.BooleanOptionalAction, default=None,
                   help="click every beat at the tempo in use, on MIDI channel 10 (default: "
                   "off)")


def _run_options(args):
    """The options of the config file (if any) with the flags given on top."""
    from improv.config import RunOptions, apply_flags, load_config
    from improv.improviser import Settings
    from improv.sampling import SamplingConfig
    from improv.timing import TimeSettings

    options = load_config(args.config) if args.config else RunOptions()
    sections = {"settings": Settings, "sampling": SamplingConfig, "time": TimeSettings}
    top = {f.name for f in fields(RunOptions)} - set(sections) - {"controls"}
    flags = {}
    for dest in args.option_flags:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest in top:
            flags[dest] = value
            continue
        section = next(name for name, cls in sections.items()
                       if dest in {f.name for f in fields(cls)})
        flags[f"{section}.{dest}"] = str(value) if isinstance(value, Path) else value
    return with_gain(apply_flags(options, flags), args.gain)


def command(args) -> int:
    from improv.daemon import EXIT_MIDI_GONE, run

    code = run(_run_options(args), status_json=sys.stdout if args.status_json else None)
    if code == EXIT_MIDI_GONE:
        # The JACK server vanished: libjack freed the clients under our port objects, and
        # tearing those down at interpreter exit would crash. The recording is written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
