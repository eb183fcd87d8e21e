"""``improv demo``: a built-in pianist plays into improv, which answers."""

from __future__ import annotations

from pathlib import Path

from improv.commands.common import GAIN_HELP, with_gain
from improv.errors import InvalidValueError
from improv.sampling import SamplingConfig


def add_parser(sub) -> None:
    from improv.config import RunOptions
    from improv.flags import add_fields

    p = sub.add_parser("demo", help="hear improv answer a built-in pianist (no keyboard needed)",
                       description="A built-in pianist plays phrases of a real performance into "
                       "improv, which answers; both sound through FluidSynth (speakers, else "
                       "demo.wav) and are recorded to demo.mid.")
    p.add_argument("--wav", type=Path, default=Path("demo.wav"),
                   help="audio file, written whether or not there is an audio device "
                   "(default demo.wav)")
    p.add_argument("--mid", type=Path, default=Path("demo.mid"), help="recording (demo.mid)")
    p.add_argument("--phrases", type=int, default=3, help="phrases the pianist plays (1-5)")
    p.add_argument("--gain", type=float, help=GAIN_HELP)
    # improv run's flags of these names (their help is in the fields, improv.flags).
    add_fields(p, RunOptions, only=("model", "soundfont", "audio_driver", "random_seed"))
    add_fields(p, SamplingConfig, only=("temperature",))


def command(args) -> int:
    from improv.config import RunOptions, apply_flags
    from improv.demo import demo

    if not 1 <= args.phrases <= 5:
        raise InvalidValueError(f"--phrases must be 1-5, got {args.phrases}")
    options = apply_flags(RunOptions(), {
        "model": args.model, "soundfont": args.soundfont, "audio_driver": args.audio_driver,
        "random_seed": args.random_seed, "sampling.temperature": args.temperature})
    return demo(with_gain(options, args.gain), args.wav, args.mid, args.phrases)
