"""``improv evaluate``: score a model on held-out notes, or judge what it plays (--music)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from improv.commands.common import (
    SAMPLING,
    check_data,
    memory_strength,
    print_metrics,
    quiet_tensorflow,
)
from improv.errors import InvalidValueError
from improv.outfile import check_outputs, write_atomically
from improv.paths import default_model_dir, resolve_data
from improv.table import Column, print_table


def add_parser(sub) -> None:
    from improv.memory import DEFAULT_STRENGTH

    p = sub.add_parser("evaluate", help="score a model on held-out notes",
                       description="Score next-note predictions on a data split: pitch "
                       "cross-entropy and top-1/top-5 accuracy, step/duration errors.")
    p.add_argument("model", nargs="?", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--data", action="append", metavar="SRC",
                   help="MIDI folder or CSV (repeatable; default: the model's training sources)")
    p.add_argument("--split", default="test", choices=("train", "validation", "test", "all"),
                   help="which files of the sources to score (default: test)")
    p.add_argument("--json", type=Path, help="write the metrics here "
                   "(default: evaluation-<model>.json)")
    p.add_argument("--update-card", action="store_true",
                   help="store the metrics in the model's card")
    p.add_argument("--music", action="store_true",
                   help="judge what the model plays: continue each file's first notes and "
                   "compare with the real continuation (no TensorFlow needed)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                   help="--music: sampling temperatures to try (default 0.5 1.0 2.0)")
    p.add_argument("--top-p", type=float, default=SAMPLING.top_p,
                   help=f"--music: nucleus sampling mass (default {SAMPLING.top_p:g}, "
                   "improv's own)")
    p.add_argument("--seed-notes", type=int, default=50, help="--music: notes of each seed")
    p.add_argument("--generate-notes", type=int, default=200,
                   help="--music: notes generated after each seed")
    p.add_argument("--draws", type=int, default=1,
                   help="--music: continue each piece N times (random seeds 0..N-1) and report "
                   "the means, and the memory's change with its standard error (default 1)")
    p.add_argument("--max-files", type=int, default=0, help="score at most N files (0: all)")
    p.add_argument("--memory", type=float, default=None, metavar="S",
                   help="also score with the phrase memory at strength S, learning each "
                   f"piece as it unfolds (default {DEFAULT_STRENGTH:g}, as improv plays; 0: not)")
    p.add_argument("--png", type=Path, help="--music: histograms plot (default: next to --json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _music(args, model_dir: Path, corpus) -> int:
    from improv import plots
    from improv.musicstats import evaluate_music

    result, notes = evaluate_music(model_dir, corpus.files, corpus.notes, args.temperatures,
                                   args.seed_notes, args.generate_notes, top_p=args.top_p,
                                   memory=memory_strength(args), draws=args.draws)
    out = args.json
    write_atomically(out, json.dumps({"model": str(model_dir), "split": args.split, **result},
                              indent=2) + "\n")
    print(f"{result['pieces']} pieces: {args.seed_notes} seed notes, up to "
          f"{args.generate_notes} generated and compared with the real continuation"
          + (f"; means of {args.draws} draws" if args.draws > 1 else ""))
    real = result["real"]
    rows = [["real", "", "", "", "", "", real["repeat_rate"], real["longest_run"],
             real["distinct_pitches"], real["step_std"], "", real["out_of_key"],
             real["motif_reuse"]]]
    temperatures = list(result["temperatures"].items())
    if "memory" in result:  # "t+m": temperature t with the phrase memory
        temperatures += [(f"{t}+m", r) for t, r in result["memory"]["temperatures"].items()]
    for t, r in temperatures:
        c, sig, fit = r["compare"], r["signatures"], r["call_response"]
        rows.append([t, c["pitch"]["overlap"], c["pitch_class"]["overlap"], c["step"]["overlap"],
                     c["duration"]["overlap"], c["pitch"]["kl"], sig["repeat_rate"],
                     sig["longest_run"], sig["distinct_pitches"], sig["step_std"],
                     fit["key_overlap"], sig["out_of_key"], fit["motif_reuse"]])
    print_table(MUSIC_COLUMNS, rows)
    for t, change in result.get("memory", {}).get("difference", {}).items():
        print(f"the memory's change at {t} (with - without"
              + (", +- standard error" if args.draws > 1 else ", one draw") + "): "
              + ", ".join(_change(change[key], label) for key, label in CHANGES))
    png = args.png
    middle = sorted(notes)[len(notes) // 2]
    plots.plot_music(*notes[middle], png, title=f"{model_dir.name}, temperature {middle}")
    print(f"wrote {out} and {png}")
    if args.update_card:
        from improv.card import read_card, write_card
        from improv.musicstats import summary

        card = read_card(model_dir)
        card["music"] = {"split": args.split, "pieces": result["pieces"],
                         "seed_notes": args.seed_notes, "generate_notes": args.generate_notes,
                         "real": result["real"],
                         "summary": {t: summary(r) for t, r in result["temperatures"].items()}}
        if args.draws > 1:
            card["music"]["draws"] = args.draws
        if "memory" in result:
            card["music"]["memory"] = {
                "strength": result["memory"]["strength"],
                "summary": {t: summary(r)
                            for t, r in result["memory"]["temperatures"].items()}}
        write_card(model_dir, card)
        print(f"updated {model_dir / 'card.json'}")
    return 0


#: The columns of ``evaluate --music``'s table.
MUSIC_COLUMNS = [Column("temperature", 11), Column("pitch ov", 9, ".3f"), Column("pc ov", 6, ".3f"),
                 Column("step ov", 8, ".3f"), Column("dur ov", 7, ".3f"),
                 Column("pitch KL", 9, ".3f"), Column("repeat", 7, ".3f"),
                 Column("run", 5, ".1f"), Column("distinct", 9, ".1f"),
                 Column("step std", 9, ".3f"), Column("key fit", 8, ".3f"),
                 Column("out key", 8, ".3f"), Column("motif", 6, ".3f")]


#: The memory's changes printed after ``evaluate --music``'s table (summary keys, labels).
CHANGES = (("step_overlap", "step ov"), ("duration_overlap", "dur ov"),
           ("pitch_overlap", "pitch ov"), ("out_of_key", "out key"), ("motif_reuse", "motif"))


def _change(change: dict, label: str) -> str:
    error = change["standard_error"]
    return f"{label} {change['mean']:+.4f}" + ("" if error is None else f" +- {error:.4f}")


def command(args) -> int:
    from improv.card import read_card
    from improv.corpus import load_corpus
    from improv.progress import set_quiet, shown
    from improv.weights import KERAS_FILE, WEIGHTS_FILE, ModelError

    model_dir = args.model or default_model_dir()
    for name in ("max_files", "seed_notes", "generate_notes", "draws"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "max_files" else 1):
            raise InvalidValueError(f"--{name.replace('_', '-')} must be at least "
                                    f"{0 if name == 'max_files' else 1}, got {value}")
    memory_strength(args)  # checked before the scoring, not after it had begun
    # the outputs checked before the scoring, not after
    args.json = args.json or Path(f"{'music' if args.music else 'evaluation'}-"
                                  f"{model_dir.name}.json")
    if args.music:
        from improv.plots import check_image_path

        args.png = args.png or args.json.with_suffix(".png")
        check_image_path(args.png)
    # (a plot's missing folder is made, as improv plot makes it)
    png = args.png if args.music and args.png.resolve().parent.is_dir() else None
    check_outputs(args.json, png)
    card = read_card(model_dir)
    needed = model_dir / (WEIGHTS_FILE if args.music else KERAS_FILE)
    if not needed.is_file():
        raise ModelError(f"{needed}: no such file (is {model_dir} a model folder?)")
    sources, files, chosen = _files(args, card)
    # nor the model's files, nor the data's (they were written over: a red-team run)
    check_outputs(args.json, png, reads=[(f"a file of the model {model_dir}", p)
                                         for p in model_dir.iterdir()]
                  + [("a data file", f.path) for f in files])
    set_quiet(args.quiet)
    corpus = load_corpus(chosen, progress=shown())  # a bar on a terminal only
    split = "every split" if args.split == "all" else f"the {args.split} split"
    print(f"scoring {len(corpus.files)} files ({split} of {', '.join(map(str, sources))})"
          + (f" at temperatures {', '.join(map(str, args.temperatures))} (the NumPy engine "
             "plays each piece)" if args.music else " with the Keras model") + " ...",
          file=sys.stderr, flush=True)
    if args.music:  # the NumPy engine plays: no TensorFlow
        return _music(args, model_dir, corpus)
    return _keras(args, model_dir, card, sources, files, corpus)


def _files(args, card: dict) -> tuple[list, list, list]:
    """The sources to score (--data, else the card's), their files and those chosen."""
    from improv.corpus import find_midi_files

    sources = args.data or card.get("config", {}).get("data")
    if not sources:
        raise InvalidValueError("the model's card names no data; give --data")
    check_data([resolve_data(s) for s in sources])
    files = [f for s in sources for f in find_midi_files(resolve_data(s))]
    chosen = files if args.split == "all" else [f for f in files if f.split == args.split]
    if not chosen:
        found = f"{len(files)} file" + ("" if len(files) == 1 else "s")
        hint = "; --split all scores them all" if files else ""
        raise InvalidValueError(f"no files in the {args.split} split of {', '.join(sources)} "
                                f"({found}, split by piece{hint})")
    if args.max_files:
        chosen = chosen[:args.max_files]
    return sources, files, chosen


def _keras(args, model_dir: Path, card: dict, sources, files, corpus) -> int:
    """Score the Keras model's next-note predictions (TensorFlow)."""
    quiet_tensorflow()
    from improv.card import write_card
    from improv.corpus import load_corpus
    from improv.weights import KERAS_FILE
    from training.evaluate import evaluate_model, frequency_reference
    from training.loading import load_keras
    from training.pipeline import evaluation_card

    model = load_keras(model_dir / KERAS_FILE)
    cfg = card.get("config", {})
    arch = cfg.get("arch") or ("streaming" if model.input_shape[1] is None else "tutorial")
    seq_length = cfg.get("seq_length") or model.input_shape[1]
    strength = memory_strength(args)
    if strength:
        from training.memory_eval import evaluate_with_memory

        metrics = evaluate_with_memory(model, arch, seq_length, corpus, strength)
    else:
        metrics = evaluate_model(model, arch, seq_length, corpus)
    out = args.json
    write_atomically(out, json.dumps({"model": str(model_dir), "split": args.split,
                               "sources": [str(s) for s in sources], **metrics}, indent=2))
    print_metrics({model_dir.name: metrics, **({f"+ memory {strength:g}": metrics["memory"]}
                                                 if strength else {})})
    print(f"wrote {out}")
    if args.update_card:
        card["metrics"] = metrics
        card["evaluation"] = evaluation_card(metrics, corpus, args.split)
        if args.split != "train":
            train = load_corpus([f for f in files if f.split == "train"], progress=False)
            card["reference"] = frequency_reference(train, corpus)
        write_card(model_dir, card)
        print(f"updated {model_dir / 'card.json'}")
    return 0
