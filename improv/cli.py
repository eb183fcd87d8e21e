"""The ``improv`` command.

Offline subcommands that need TensorFlow (train, evaluate, export, plot)
import it only when they run; the rest of improv never does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from improv import __version__
from improv.errors import ImprovError, InvalidValueError, MissingFileError
from improv.paths import default_model_dir, resolve_data
from improv.sampling import SamplingConfig

#: improv's sampling defaults, for the flags' defaults and help (improv/sampling.py).
_SAMPLING = SamplingConfig()


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=".*shuffle=True.*")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a note model and export it to models/",
                       description="Train a model, export it (Keras + NumPy weights + card), "
                       "score it on the test split and plot its history.")
    from improv.trainconfig import PRESETS  # no TensorFlow in this import

    p.add_argument("--preset", choices=sorted(PRESETS), default="harmony",
                   help="starting configuration (default: harmony, the shipped model)")
    p.add_argument("--data", action="append", metavar="SRC",
                   help="MIDI folder or MAESTRO-style CSV (repeatable; replaces the preset's)")
    p.add_argument("--arch", choices=("tutorial", "streaming"))
    for flag, typ, text in (
        ("--seq-length", int, "notes per window/sequence"), ("--units", int, "LSTM units"),
        ("--epochs", int, "maximum epochs"), ("--batch-size", int, "batch size"),
        ("--learning-rate", float, "Adam learning rate"),
        ("--pitch-weight", float, "loss weight of the pitch head"),
        ("--step-weight", float, "loss weight of the step head"),
        ("--duration-weight", float, "loss weight of the duration head"),
        ("--transpose", int, "random transposition of ±N semitones"),
        ("--timing-bins", int, "step and duration as classes over N time bins (0: values)"),
        ("--velocity-bins", int, "velocity as an input and a head over N classes (0: none)"),
        ("--velocity-weight", float, "loss weight of the velocity head"),
        ("--pitch-embedding", int, "read the pitch through a learned N-d embedding (0: /128)"),
        ("--interval-embedding", int, "also read the interval to the previous note (N-d)"),
        ("--max-minutes", float, "stop after this many minutes"),
        ("--max-files", int, "train on the first N training files only"),
        ("--patience", int, "early-stopping patience in epochs"),
        ("--reduce-lr-patience", int, "halve the learning rate after N flat epochs (0: never)"),
        ("--seed", int, "random seed"),
    ):
        p.add_argument(flag, type=typ, help=text)
    p.add_argument("--out", type=Path, help="model folder to write (default: models/<preset>)")
    p.add_argument("--checkpoints", type=Path,
                   help="checkpoint folder (default: runs/<model folder name>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    p.add_argument("--strategy", default="auto",
                   choices=("auto", "none", "mirrored", "multiworker"),
                   help="tf.distribute strategy (auto: multiworker when TF_CONFIG is set)")
    p.add_argument("--cpu-replicas", type=int, default=0,
                   help="split the CPU into N devices for the mirrored strategy")
    p.add_argument("--no-evaluate", action="store_true", help="skip the test-split evaluation")
    p.add_argument("--description", default="", help="one line for the model card")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_train(args) -> int:
    _quiet_tensorflow()
    from improv.trainconfig import PRESETS

    config = PRESETS[args.preset]
    changes = {k: getattr(args, k) for k in (
        "arch", "seq_length", "units", "epochs", "batch_size", "learning_rate", "pitch_weight",
        "step_weight", "duration_weight", "velocity_weight", "transpose", "timing_bins",
        "velocity_bins", "pitch_embedding", "interval_embedding", "max_minutes", "max_files",
        "patience", "reduce_lr_patience", "seed") if getattr(args, k) is not None}
    if args.data:
        changes["data"] = tuple(args.data)
    config = config.replace(**changes)
    config = config.replace(data=tuple(str(resolve_data(d)) for d in config.data))
    _check_data(config.data)  # before TensorFlow's import: a missing folder is named in 1 s
    from training.pipeline import train_export

    out = args.out or Path("models") / args.preset
    ckpt = args.checkpoints or Path("runs") / out.name
    card = train_export(config, out, ckpt, resume=args.resume, strategy=args.strategy,
                        cpu_replicas=args.cpu_replicas, evaluate=not args.no_evaluate,
                        verbose=0 if args.quiet else "auto" if sys.stdout.isatty() else 2,
                        description=args.description)  # 2: a line per epoch, no bar
    print(f"wrote {out}")
    if card.get("metrics"):
        _print_metrics({out.name: card["metrics"]})
    return 0


def _check_data(sources) -> None:
    """Say how to get the training data when a source is missing."""
    for source in sources:
        if not Path(source).exists():
            raise MissingFileError(
                f"{source}: no such file or folder; get the data sets improv trains on with: "
                "improv data download asap (see improv data list), or name yours with --data")


def _add_evaluate(sub) -> None:
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
    p.add_argument("--top-p", type=float, default=_SAMPLING.top_p,
                   help=f"--music: nucleus sampling mass (default {_SAMPLING.top_p:g}, "
                   "improv's own)")
    p.add_argument("--seed-notes", type=int, default=50, help="--music: notes of each seed")
    p.add_argument("--generate-notes", type=int, default=200,
                   help="--music: notes generated after each seed")
    p.add_argument("--max-files", type=int, default=0, help="score at most N files (0: all)")
    p.add_argument("--memory", type=float, default=None, metavar="S",
                   help="also score with the phrase memory at strength S, learning each "
                   "piece as it unfolds (default 0.5; 0: not)")
    p.add_argument("--png", type=Path, help="--music: histograms plot (default: next to --json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_evaluate_music(args, model_dir: Path, corpus) -> int:
    from improv import plots
    from improv.musicstats import evaluate_music

    result, notes = evaluate_music(model_dir, corpus.files, corpus.notes, args.temperatures,
                                   args.seed_notes, args.generate_notes, top_p=args.top_p,
                                   memory=_memory_strength(args, _tuned_strength()))
    out = args.json or Path(f"music-{model_dir.name}.json")
    out.write_text(json.dumps({"model": str(model_dir), "split": args.split, **result},
                              indent=2) + "\n")
    print(f"{result['pieces']} pieces: {args.seed_notes} seed notes, up to "
          f"{args.generate_notes} generated and compared with the real continuation")
    head = (f"{'temperature':>11} {'pitch ov':>9} {'pc ov':>6} {'step ov':>8} {'dur ov':>7} "
            f"{'pitch KL':>9} {'repeat':>7} {'run':>5} {'distinct':>9} {'step std':>9} "
            f"{'key fit':>8} {'out key':>8} {'motif':>6}")
    print(head)
    print("-" * len(head))
    real = result["real"]
    print(f"{'real':>11} {'':>9} {'':>6} {'':>8} {'':>7} {'':>9} {real['repeat_rate']:>7.3f} "
          f"{real['longest_run']:>5.1f} {real['distinct_pitches']:>9.1f} {real['step_std']:>9.3f} "
          f"{'':>8} {real['out_of_key']:>8.3f} {real['motif_reuse']:>6.3f}")
    rows = list(result["temperatures"].items())
    if "memory" in result:  # "t+m": temperature t with the phrase memory
        rows += [(f"{t}+m", r) for t, r in result["memory"]["temperatures"].items()]
    for t, r in rows:
        c, sig, fit = r["compare"], r["signatures"], r["call_response"]
        print(f"{t:>11} {c['pitch']['overlap']:>9.3f} {c['pitch_class']['overlap']:>6.3f} "
              f"{c['step']['overlap']:>8.3f} {c['duration']['overlap']:>7.3f} "
              f"{c['pitch']['kl']:>9.3f} {sig['repeat_rate']:>7.3f} {sig['longest_run']:>5.1f} "
              f"{sig['distinct_pitches']:>9.1f} {sig['step_std']:>9.3f} "
              f"{fit['key_overlap']:>8.3f} {sig['out_of_key']:>8.3f} {fit['motif_reuse']:>6.3f}")
    png = args.png or out.with_suffix(".png")
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
        write_card(model_dir, card)
        print(f"updated {model_dir / 'card.json'}")
    return 0


def _cmd_evaluate(args) -> int:
    from improv.corpus import find_midi_files, load_corpus
    from improv.weights import CARD_FILE, KERAS_FILE, WEIGHTS_FILE, ModelError

    model_dir = args.model or default_model_dir()
    card_path = model_dir / CARD_FILE
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    needed = model_dir / (WEIGHTS_FILE if args.music else KERAS_FILE)
    if not needed.is_file():
        raise ModelError(f"{needed}: no such file (is {model_dir} a model folder?)")
    sources = args.data or card.get("config", {}).get("data")
    if not sources:
        raise InvalidValueError("the model's card names no data; give --data")
    _check_data([resolve_data(s) for s in sources])
    files = [f for s in sources for f in find_midi_files(resolve_data(s))]
    chosen = files if args.split == "all" else [f for f in files if f.split == args.split]
    if not chosen:
        raise InvalidValueError(f"no files in the {args.split} split of {', '.join(sources)}")
    if args.max_files:
        chosen = chosen[:args.max_files]
    from improv.progress import set_quiet, shown

    set_quiet(args.quiet)
    corpus = load_corpus(chosen, progress=shown())  # a bar on a terminal only
    print(f"scoring {len(corpus.files)} files"
          + (f" at temperatures {', '.join(map(str, args.temperatures))} (the NumPy engine "
             "plays each piece)" if args.music else " with the Keras model") + " ...",
          file=sys.stderr, flush=True)
    if args.music:  # the NumPy engine plays: no TensorFlow
        return _cmd_evaluate_music(args, model_dir, corpus)
    _quiet_tensorflow()
    from improv.card import write_card
    from training.evaluate import evaluate_model, frequency_reference
    from training.pipeline import evaluation_card

    model = _load_keras(model_dir / KERAS_FILE)
    cfg = card.get("config", {})
    arch = cfg.get("arch") or ("streaming" if model.input_shape[1] is None else "tutorial")
    seq_length = cfg.get("seq_length") or model.input_shape[1]
    strength = _memory_strength(args, _tuned_strength())
    if strength:
        from training.memory_eval import evaluate_with_memory

        metrics = evaluate_with_memory(model, arch, seq_length, corpus, strength)
    else:
        metrics = evaluate_model(model, arch, seq_length, corpus)
    out = args.json or Path(f"evaluation-{model_dir.name}.json")
    out.write_text(json.dumps({"model": str(model_dir), "split": args.split,
                               "sources": [str(s) for s in sources], **metrics}, indent=2))
    _print_metrics({model_dir.name: metrics, **({f"+ memory {strength:g}": metrics["memory"]}
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


def _tuned_strength() -> float:
    """The strength evaluate scores the memory at unless told (improv.memory)."""
    from improv.memory import TUNED_STRENGTH

    return TUNED_STRENGTH


def _memory_strength(args, default: float | None = None) -> float:
    """The --memory strength (``default``, else improv's, when not given), checked."""
    from improv.memory import DEFAULT_STRENGTH

    if default is None:
        default = DEFAULT_STRENGTH
    value = default if args.memory is None else args.memory
    if not 0 <= value <= 1:
        raise InvalidValueError(f"--memory must be 0-1, got {value}")
    return value


def _load_keras(path: Path):
    import keras

    import training.loss  # noqa: F401  registers the custom loss for compiled files
    from improv.weights import ModelError

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise ModelError(f"{path}: cannot load the Keras model ({exc})") from None


def _print_metrics(rows: dict[str, dict]) -> None:
    # "on key": probability on the 7 commonest pitch classes of the 64 notes before each note
    head = f"{'model':<24} {'pitch CE':>9} {'top-1':>7} {'top-5':>7} {'on key':>7} " \
           f"{'step MAE':>9} {'dur MAE':>8} {'vel MAE':>8} {'loss':>7} {'targets':>9}"
    print(head)
    print("-" * len(head))
    for name, m in rows.items():
        vel = f"{m['velocity_mae']:>8.1f}" if "velocity_mae" in m else f"{'-':>8}"
        key = f"{m['key_mass']:>7.3f}" if "key_mass" in m else f"{'-':>7}"
        print(f"{name:<24} {m['pitch_ce']:>9.3f} {100 * m['pitch_top1']:>6.1f}% "
              f"{100 * m['pitch_top5']:>6.1f}% {key} {m['step_mae']:>9.3f} "
              f"{m['duration_mae']:>8.3f} {vel} {m['loss']:>7.3f} {m['targets']:>9,}")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw a piano roll, note distributions or a history",
                       description="Write a PNG plot.")
    p.add_argument("kind", choices=("roll", "distributions", "history", "music"))
    p.add_argument("input", type=Path, nargs="+",
                   help="a MIDI file (roll, distributions), a model folder (history), or "
                   "model folders whose cards hold `evaluate --music` results (music)")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.add_argument("--count", type=int, help="piano roll: first N notes only")


def _cmd_plot(args) -> int:
    from improv import plots

    first = args.input[0]
    if args.kind == "music":
        from improv.card import read_card

        rows = {}
        for folder in args.input:
            music = read_card(folder).get("music")
            if not music:
                raise InvalidValueError(f"{folder}: its card has no music results; run "
                                 f"improv evaluate {folder} --music --update-card")
            rows.update({f"{folder.name}, T={t}": r for t, r in music["summary"].items()})
        plots.plot_music_comparison(rows, args.output)
    elif args.kind == "history":
        path = first / "history.json" if first.is_dir() else first
        if not path.is_file():
            raise MissingFileError(f"{path}: no such file (a model folder has history.json)")
        plots.plot_history(json.loads(path.read_text()), args.output, title=first.name)
    else:
        from improv.notetable import midi_to_notes

        notes = midi_to_notes(first)
        if args.kind == "roll":
            plots.plot_piano_roll(notes, args.output, count=args.count)
        else:
            plots.plot_distributions(notes, args.output, title=first.name)
    print(f"wrote {args.output}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint folder as a model folder",
                       description="Turn the best (or last) checkpoint of a training run into "
                       "a model folder, e.g. after an interrupted run.")
    p.add_argument("checkpoints", type=Path, help="the run's checkpoint folder")
    p.add_argument("out", type=Path, help="model folder to write")


def _cmd_export(args) -> int:
    _quiet_tensorflow()
    from improv.trainconfig import TrainConfig
    from training.export import export_model

    cfg_path = args.checkpoints / "config.json"
    if not cfg_path.is_file():
        raise MissingFileError(f"{cfg_path}: no such file (is this a checkpoint folder?)")
    config = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
    for name in ("best.keras", "last.keras"):
        if (args.checkpoints / name).is_file():
            model = _load_keras(args.checkpoints / name)
            break
    else:
        raise MissingFileError(f"{args.checkpoints}: holds no best.keras or last.keras")
    export_model(model, config, args.out, {"description": f"exported from {args.checkpoints}"})
    print(f"wrote {args.out}")
    return 0


def _add_sampling(p) -> None:
    p.add_argument("--temperature", type=float, default=_SAMPLING.temperature,
                   help="pitch sampling temperature; 0 always takes the likeliest "
                   f"(default {_SAMPLING.temperature:g})")
    p.add_argument("--top-k", type=int, default=0, help="draw among the k likeliest pitches")
    p.add_argument("--top-p", type=float, default=_SAMPLING.top_p,
                   help=f"nucleus sampling mass (default {_SAMPLING.top_p:g}; 1: off)")
    p.add_argument("--max-step", type=float, default=2.0, help="longest gap between onsets (s)")
    p.add_argument("--max-duration", type=float, default=4.0, help="longest note (s)")
    p.add_argument("--random-seed", type=int, help="same number, same notes")


def _check_folder(path: Path | None) -> None:
    """Refuse an output file whose folder is missing, before any work is done."""
    if path is not None and not path.resolve().parent.is_dir():
        raise MissingFileError(f"{path}: no such folder {path.parent}")


def _sampler(args):
    from improv.sampling import Sampler, SamplingConfig

    for flag in ("max_step", "max_duration"):
        if not getattr(args, flag) > 0:
            raise InvalidValueError(f"--{flag.replace('_', '-')} must be above 0 seconds, "
                             f"got {getattr(args, flag)}")

    cfg = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         max_step=args.max_step, max_duration=args.max_duration)
    return Sampler(cfg, seed=args.random_seed)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="continue a seed MIDI file and write the result",
                       description="Continue a seed (a MIDI file, or the built-in excerpt) for N "
                       "notes; write a MIDI file and, with --wav, render it with FluidSynth.")
    p.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    p.add_argument("--seed", type=Path, help="MIDI file to continue (default: built-in excerpt)")
    p.add_argument("-n", "--notes", type=int, default=120, help="notes to generate (default 120)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--wav", type=Path, help="also render to this WAV file")
    p.add_argument("--soundfont", type=Path, help="soundfont for --wav (default: see README)")
    p.add_argument("--include-seed", action="store_true", help="write the seed notes too")
    _add_memory(p)
    _add_sampling(p)


def _add_memory(p, default: float | None = None) -> None:
    p.add_argument("--memory", type=float, default=default, metavar="S",
                   help="weight of the phrase memory, 0-1: 0 the model alone (default), 0.5 "
                   "as tuned, 1 mostly the player's own material")
    p.add_argument("--memory-file", type=Path, metavar="FILE",
                   help="keep what the memory learns in FILE across sessions")


def _cmd_generate(args) -> int:
    import numpy as np

    from improv.engine import NoteModel
    from improv.generate import generate, restrike, seed_notes, to_absolute
    from improv.midifile import write_midi

    if args.notes < 1:
        raise InvalidValueError(f"--notes must be at least 1, got {args.notes}")
    sampler = _sampler(args)
    soundfont = None
    for path in (args.output, args.wav):
        _check_folder(path)
    if args.wav:
        from improv.soundfont import find_soundfont

        soundfont = find_soundfont(args.soundfont)  # fail before generating, not after
    from improv.memory import open_memory

    strength = _memory_strength(args)
    model = NoteModel.load(args.model or default_model_dir())
    seed = seed_notes(args.seed)
    memory = open_memory(args.memory_file, lambda line: print(f"improv: {line}",
                                                                  file=sys.stderr))
    new = generate(model, sampler, seed, args.notes, memory, strength)
    if args.memory_file:
        memory.save(args.memory_file)
    seed_start, seed_end = to_absolute(seed)
    start, end = to_absolute(new, start=seed_start[-1])
    velocity = new[:, 3]
    if args.include_seed:
        pitch = np.concatenate([seed[:, 0], new[:, 0]])
        start, end = np.concatenate([seed_start, start]), np.concatenate([seed_end, end])
        velocity = np.concatenate([seed[:, 3], velocity])
    else:
        pitch = new[:, 0]
        start, end = start - start[0], end - start[0]
    end = restrike(pitch, start, end)
    write_midi(args.output, pitch, start, end, velocity)
    count = f"{len(pitch)} note" + ("" if len(pitch) == 1 else "s")
    print(f"wrote {args.output} ({count}, {end.max():.1f} s)")
    if args.wav:
        from improv.synth import peak_dbfs, render_normalised, write_wav

        audio = render_normalised(pitch, start, end, velocity, soundfont)
        write_wav(args.wav, audio)
        print(f"wrote {args.wav} (soundfont {soundfont}, peak {peak_dbfs(audio):.1f} dBFS)")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="hear improv answer a built-in pianist (no keyboard needed)",
                       description="A built-in pianist plays phrases of a real performance into "
                       "improv, which answers; both sound through FluidSynth (speakers, else "
                       "demo.wav) and are recorded to demo.mid.")
    p.add_argument("--wav", type=Path, default=Path("demo.wav"),
                   help="audio file, written whether or not there is an audio device "
                   "(default demo.wav)")
    p.add_argument("--mid", type=Path, default=Path("demo.mid"), help="recording (demo.mid)")
    p.add_argument("--phrases", type=int, default=3, help="phrases the pianist plays (1-5)")
    p.add_argument("--model", help="model folder (default: the shipped one)")
    p.add_argument("--soundfont", help="soundfont (default: see soundfonts/README.md)")
    p.add_argument("--audio-driver", help="FluidSynth audio driver (file: no live sound)")
    p.add_argument("--gain", type=float, help=GAIN_HELP)
    p.add_argument("--temperature", type=float,
                   help=f"pitch sampling temperature (default {_SAMPLING.temperature:g})")
    p.add_argument("--random-seed", type=int, help="seed of improv's random draws")


def _cmd_demo(args) -> int:
    from improv.config import RunOptions, apply_flags
    from improv.demo import demo

    if not 1 <= args.phrases <= 5:
        raise InvalidValueError(f"--phrases must be 1-5, got {args.phrases}")
    options = apply_flags(RunOptions(), {
        "model": args.model, "soundfont": args.soundfont, "audio_driver": args.audio_driver,
        "random_seed": args.random_seed, "sampling.temperature": args.temperature})
    return demo(_with_gain(options, args.gain), args.wav, args.mid, args.phrases)


GAIN_HELP = "FluidSynth's live gain (default 1.5; 0-10); WAV files are normalised instead"


def _with_gain(options, gain: float | None):
    """Return ``options`` with FluidSynth's live gain set (``synth.gain``), if given."""
    if gain is None:
        return options
    if not 0 <= gain <= 10:
        raise InvalidValueError(f"--gain must be 0-10 (FluidSynth's range), got {gain}")
    from dataclasses import replace

    return replace(options, synth_settings={**options.synth_settings, "synth.gain": gain})


def _add_ports(sub) -> None:
    p = sub.add_parser("ports", help="list MIDI inputs and outputs",
                       description="List the MIDI ports the back-end sees, with their indexes.")
    p.add_argument("--api", choices=("alsa", "jack", "coremidi", "winmm"),
                   help="MIDI back-end (default: $MIDO_BACKEND, else ALSA, else JACK)")


def _cmd_ports(args) -> int:
    from improv.ports import api_name, get_backend, list_ports

    backend = get_backend(args.api)
    ports = list_ports(backend)
    print(f"MIDI back-end: {api_name(backend)}")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:")
        for i, name in enumerate(ports[kind]):
            print(f"  {i}: {name}")
        if not ports[kind]:
            print("  (none)")
    return 0


def _add_run(sub) -> None:
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
                   f"(default {_SAMPLING.temperature:g})")
    p.add_argument("--top-k", type=int, help="draw among the k likeliest pitches (0: all)")
    p.add_argument("--top-p", type=float,
                   help=f"nucleus sampling mass (default {_SAMPLING.top_p:g}; 1: off)")
    p.add_argument("--random-seed", type=int, help="seed of improv's random draws")
    p.add_argument("--gain", type=float, help=GAIN_HELP)
    _add_memory(p)
    p.add_argument("--no-status", dest="status", action="store_false", default=None,
                   help="no status line")


def _run_options(args):
    from improv.config import RunOptions, apply_flags, load_config

    options = load_config(args.config) if args.config else RunOptions()
    flags = {k: getattr(args, k) for k in ("model", "input", "output", "virtual", "api",
                                          "channel", "voices", "synth", "soundfont",
                                          "audio_driver", "record", "random_seed", "status")}
    flags.update({f"settings.{k}": getattr(args, k) for k in (
        "mode", "silence", "answer_notes", "gap", "passthrough", "barge_in", "held_keys",
        "memory")})
    if args.memory_file is not None:
        flags["settings.memory_file"] = str(args.memory_file)
    flags.update({f"sampling.{k}": getattr(args, k) for k in ("temperature", "top_k", "top_p")})
    return _with_gain(apply_flags(options, flags), args.gain)


def _cmd_run(args) -> int:
    from improv.daemon import EXIT_MIDI_GONE, run

    code = run(_run_options(args))
    if code == EXIT_MIDI_GONE:
        # The JACK server vanished: libjack freed the clients under our port objects, and
        # tearing those down at interpreter exit would crash. The recording is written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="measure speed (prints a table, writes JSON)",
                       description="Benchmarks. 'engine': per-note latency of the NumPy engine "
                       "against the tutorial's model.predict, and improv generate's start-up. "
                       "'live': through real JACK ports (starts jackd -d dummy if none runs), "
                       "a bare echo client's round trip against improv's answer, and the "
                       "scheduler's jitter. 'soak': a real MIDI file played into improv in a "
                       "loop, with RSS, latency and stuck notes over time. 'input': messages "
                       "lost and duplicated by improv's input against a reference client, at "
                       "--rate messages a second for --seconds.")
    p.add_argument("what", choices=("engine", "live", "soak", "input"))
    p.add_argument("--notes", type=int, default=10000,
                   help="notes to time per NumPy row (default 10000)")
    p.add_argument("--predict-notes", type=int, default=1000,
                   help="notes for the model.predict row (0 skips TensorFlow)")
    p.add_argument("--count", type=int, default=300, help="live: round trips per row")
    p.add_argument("--minutes", type=float, default=30.0, help="soak: how long (default 30)")
    p.add_argument("--every", type=float, default=60.0, help="soak: seconds between rows")
    p.add_argument("--midi", type=Path, help="soak: the MIDI file to play (default: built-in)")
    p.add_argument("--rate", type=int, nargs="+", default=[1000, 2000],
                   help="input: messages a second, one row each (default 1000 2000)")
    p.add_argument("--seconds", type=float, default=60.0, help="input: seconds a row (60)")
    p.add_argument("--json", type=Path, help="JSON output (default: bench-<what>.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_bench(args) -> int:
    from improv import bench
    from improv.progress import set_quiet

    set_quiet(args.quiet)
    out = args.json or Path(f"bench-{args.what}.json")
    _check_folder(out)
    if args.what == "live":
        bench.bench_live(args.count, out)
    elif args.what == "soak":
        bench.bench_soak(args.minutes, args.midi, args.every, out)
    elif args.what == "input":
        bench.bench_input(args.rate, args.seconds, out)
    else:
        bench.bench_engine(args.notes, args.predict_notes, out)
    return 0


def _add_memory_command(sub) -> None:
    from improv.memory_cli import add_parser

    add_parser(sub)


def _cmd_memory(args) -> int:
    from improv.memory_cli import command

    return command(args)


def _add_data(sub) -> None:
    from improv.data import add_parser

    add_parser(sub)


def _cmd_data(args) -> int:
    from improv.data import command

    return command(args)


COMMANDS = {"demo": _cmd_demo, "ports": _cmd_ports, "run": _cmd_run, "bench": _cmd_bench,
            "generate": _cmd_generate, "train": _cmd_train, "evaluate": _cmd_evaluate,
            "plot": _cmd_plot, "export": _cmd_export, "data": _cmd_data,
            "memory": _cmd_memory}
#: What each extra brings; a command that needs a missing one says which to install.
EXTRAS = {"tensorflow": "train", "keras": "train", "pandas": "train", "matplotlib": "train"}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``improv`` command."""
    parser = argparse.ArgumentParser(prog="improv", description="A real-time MIDI improviser.")
    parser.add_argument("--version", action="version", version=f"improv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run(sub)
    _add_demo(sub)
    _add_ports(sub)
    _add_generate(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_plot(sub)
    _add_export(sub)
    _add_bench(sub)
    _add_data(sub)
    _add_memory_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``improv`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:  # TrainingInterrupted says where it saved
        print(f"improv: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        extra = EXTRAS[top]
        print(f"improv: error: `improv {args.command}` needs {top}, which the runtime install "
              f"leaves out; install the {extra} extra: bash install.sh --{extra} (or pip install "
              f"'improv[{extra}]')", file=sys.stderr)
        return 1
    # Every error a user can cause is an ImprovError (improv.errors); anything else is a
    # bug and shows its traceback.
    except ImprovError as exc:
        print(f"improv: error: {exc}", file=sys.stderr)
        return 1
