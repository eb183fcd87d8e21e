"""``improv plot``: a piano roll, note distributions, a training history, music results."""

from __future__ import annotations

import json
from pathlib import Path

from improv.checks import is_history, is_number
from improv.errors import InvalidValueError, MissingFileError


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw a piano roll, note distributions or a history",
                       description="Write a PNG plot.")
    p.add_argument("kind", choices=("roll", "distributions", "history", "music"))
    p.add_argument("input", type=Path, nargs="+",
                   help="a MIDI file (roll, distributions), a model folder (history), or "
                   "model folders whose cards hold `evaluate --music` results (music)")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.add_argument("--count", type=int, help="piano roll: first N notes only")


def command(args) -> int:
    from improv import plots

    plots.check_image_path(args.output)  # before the work, not after it
    if args.count is not None and args.count < 1:
        raise InvalidValueError(f"--count must be at least 1, got {args.count}")
    first = args.input[0]
    if args.kind == "music":
        from improv.card import read_card

        rows = {}
        for folder in args.input:
            music = read_card(folder).get("music")
            if not music:
                raise InvalidValueError(f"{folder}: its card has no music results; run "
                                        f"improv evaluate {folder} --music --update-card")
            summary = music.get("summary") if isinstance(music, dict) else None
            memory = music.get("memory") if isinstance(music, dict) else None
            played = memory.get("summary") if isinstance(memory, dict) else None
            if not _valid_rows(summary) or (memory is not None and not _valid_rows(played)):
                raise InvalidValueError(f"{folder}: its card's music results are damaged; run "
                                        f"improv evaluate {folder} --music --update-card")
            rows.update({f"{folder.name}, T={t}": r for t, r in summary.items()})
            if played:  # the same played with the phrase memory
                rows.update({f"{folder.name} + memory, T={t}": r for t, r in played.items()})
        plots.plot_music_comparison(rows, args.output)
    elif args.kind == "history":
        path = first / "history.json" if first.is_dir() else first
        if not path.is_file():
            raise MissingFileError(f"{path}: no such file (a model folder has history.json)")
        try:
            history = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidValueError(f"{path}: damaged ({str(exc).splitlines()[0]})") from None
        if not is_history(history):  # ("x" or null among the losses: a traceback)
            raise InvalidValueError(f"{path}: damaged (not a training history: lists of "
                                    "numbers per metric)")
        if not any(history.get(k) for k in ("loss", "val_loss")):
            raise InvalidValueError(f"{path}: no epochs to plot (the model was not trained)")
        plots.plot_history(history, args.output, title=first.name)
    else:
        from improv.notetable import midi_to_notes

        notes = midi_to_notes(first)
        if args.kind == "roll":
            plots.plot_piano_roll(notes, args.output, count=args.count)
        else:
            plots.plot_distributions(notes, args.output, title=first.name)
    print(f"wrote {args.output}")
    return 0


def _valid_rows(summary: object) -> bool:
    """Whether a card's music summary holds a row of numbers per temperature."""
    from improv import plots

    return isinstance(summary, dict) and bool(summary) and all(
        isinstance(r, dict) and all(is_number(r.get(k)) for k in plots.MUSIC_METRICS.values())
        for r in summary.values())
