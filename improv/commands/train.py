"""``improv train``: train a note model and export it (TensorFlow, imported lazily)."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

from improv.commands.common import check_data, print_metrics, quiet_tensorflow
from improv.flags import add_fields, given_fields
from improv.paths import resolve_data


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a note model and export it to models/",
                       description="Train a model, export it (Keras + NumPy weights + card), "
                       "score it on the test split and plot its history.")
    from improv.trainconfig import PRESETS  # no TensorFlow in this import

    p.add_argument("--preset", choices=sorted(PRESETS), default="harmony",
                   help="starting configuration (default: harmony, the shipped model)")
    p.add_argument("--data", action="append", metavar="SRC",
                   help="MIDI folder or MAESTRO-style CSV (repeatable; replaces the preset's)")
    from improv.trainconfig import TrainConfig

    # Every field made with improv.flags.flag: --seq-length, --units... (the preset's values
    # replace the fields' defaults, so the help does not name them).
    add_fields(p, TrainConfig, defaults=False)
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


def command(args) -> int:
    quiet_tensorflow()
    from improv.trainconfig import PRESETS

    config = PRESETS[args.preset]
    from improv.trainconfig import TrainConfig

    changes = given_fields(args, [f.name for f in fields(TrainConfig) if "flag" in f.metadata])
    if args.data:
        changes["data"] = tuple(args.data)
    out = args.out or Path("models") / args.preset
    ckpt = args.checkpoints or Path("runs") / out.name
    learning_rate_given = "learning_rate" in changes
    if args.resume and not learning_rate_given:
        # the rate the run was started with, not the preset's (a --learning-rate given now
        # applies: training.train)
        changes["learning_rate"] = _checkpoint_learning_rate(ckpt, config.learning_rate)
    config = config.replace(**changes)
    config = config.replace(data=tuple(str(resolve_data(d)) for d in config.data))
    check_data(config.data)  # before TensorFlow's import: a missing folder is named in 1 s
    from improv.trainconfig import check_checkpoints, check_model_folder, check_replicas

    # (each was found only after the whole run, or never: a red-team run)
    check_checkpoints(ckpt, args.resume)
    check_model_folder(out, keep=(ckpt,))
    check_replicas(args.cpu_replicas, config.batch_size)
    from training.pipeline import train_export

    card = train_export(config, out, ckpt, resume=args.resume, strategy=args.strategy,
                        cpu_replicas=args.cpu_replicas, evaluate=not args.no_evaluate,
                        verbose=0 if args.quiet else "auto" if sys.stdout.isatty() else 2,
                        description=args.description,  # 2: a line per epoch, no bar
                        learning_rate_given=learning_rate_given)
    print(f"wrote {out}")
    if card.get("metrics"):
        print_metrics({out.name: card["metrics"]})
    return 0


def _checkpoint_learning_rate(ckpt: Path, default: float) -> float:
    """The learning rate of the checkpoint in ``ckpt`` (``default`` if it holds none, or none
    readable: a damaged one is named when the run resumes)."""
    from improv.checks import is_number

    if not (ckpt / "last.keras").exists():  # (no checkpoint: the run starts afresh)
        return default
    try:
        rate = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))["learning_rate"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return default
    return float(rate) if is_number(rate) and rate > 0 else default
