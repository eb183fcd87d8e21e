"""``improv bench``: measure speed (improv.bench); prints a table, writes JSON."""

from __future__ import annotations

import math
from pathlib import Path

from improv.errors import InvalidValueError
from improv.outfile import check_outputs


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure speed (prints a table, writes JSON)",
                       description="Benchmarks. 'engine': per-note latency of the NumPy engine "
                       "against the tutorial's model.predict, and improv generate's start-up. "
                       "'live': through real JACK ports (starts jackd -d dummy if none runs), "
                       "a bare echo client's round trip against improv's answer, and the "
                       "scheduler's jitter. 'soak': a real MIDI file played into improv in a "
                       "loop, with RSS, latency and stuck notes over time. 'input': messages "
                       "lost and duplicated by improv's input against a reference client, at "
                       "--rate messages a second for --seconds. 'clock': an outside MIDI "
                       "clock at 120 bpm, then 90, into improv --quantize 1/16: tempo "
                       "error, the answers' first notes against the beat, note-ons against "
                       "the grid, tempo-follow time and the transport stop.")
    p.add_argument("what", choices=("engine", "live", "soak", "input", "clock"))
    p.add_argument("--notes", type=int, default=10000,
                   help="notes to time per NumPy row (default 10000)")
    p.add_argument("--predict-notes", type=int, default=1000,
                   help="notes for the model.predict row (0 skips TensorFlow)")
    p.add_argument("--count", type=int, default=300, help="live: round trips per row")
    p.add_argument("--minutes", type=float, default=30.0, help="soak: how long (default 30)")
    p.add_argument("--every", type=float, default=60.0, help="soak: seconds between rows")
    p.add_argument("--midi", type=Path, help="soak: the MIDI file to play (default: built-in)")
    p.add_argument("--memory-file", type=Path,
                   help="soak: improv's --memory-file (start from a memory learned before)")
    p.add_argument("--rate", type=int, nargs="+", default=[1000, 2000],
                   help="input: messages a second, one row each (default 1000 2000)")
    p.add_argument("--seconds", type=float, default=60.0, help="input: seconds a row (60)")
    p.add_argument("--json", type=Path, help="JSON output (default: bench-<what>.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def command(args) -> int:
    from improv import bench
    from improv.progress import set_quiet

    set_quiet(args.quiet)
    out = args.json or Path(f"bench-{args.what}.json")
    check_outputs(out)
    for name in ("notes", "predict_notes", "count"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "predict_notes" else 1):
            raise InvalidValueError(f"--{name.replace('_', '-')} must be at least "
                                    f"{0 if name == 'predict_notes' else 1}, got {value}")
    for name in ("minutes", "every", "seconds"):
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidValueError(f"--{name} must be above 0, got {value}")
    for value in getattr(args, "rate", None) or ():
        if not (math.isfinite(value) and value > 0):
            raise InvalidValueError(f"--rate must be above 0, got {value}")
    if args.what == "live":
        bench.bench_live(args.count, out)
    elif args.what == "soak":
        bench.bench_soak(args.minutes, args.midi, args.every, out, args.memory_file)
    elif args.what == "clock":
        from improv.clockbench import bench_clock

        bench_clock(out)
    elif args.what == "input":
        bench.bench_input(args.rate, args.seconds, out)
    else:
        bench.bench_engine(args.notes, args.predict_notes, out)
    return 0
