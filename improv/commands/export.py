"""``improv export``: turn a training run's checkpoint into a model folder (TensorFlow)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from improv.commands.common import quiet_tensorflow
from improv.errors import InvalidValueError, MissingFileError

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint folder as a model folder",
                       description="Turn the best (or last) checkpoint of a training run into "
                       "a model folder, e.g. after an interrupted run.")
    p.add_argument("checkpoints", type=Path, help="the run's checkpoint folder")
    p.add_argument("out", type=Path, help="model folder to write")


def command(args) -> int:
    quiet_tensorflow()
    from improv.trainconfig import TrainConfig, check_model_folder

    cfg_path = args.checkpoints / "config.json"
    if not cfg_path.is_file():
        raise MissingFileError(f"{cfg_path}: no such file (is this a checkpoint folder?)")
    try:
        config = TrainConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        # (bad JSON was a JSONDecodeError traceback: a red-team run)
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise InvalidValueError(f"{cfg_path}: damaged, not a training config ({reason})") \
            from None
    check_model_folder(args.out, keep=(args.checkpoints,))  # before TensorFlow's import
    from improv.weights import ModelError
    from training.export import export_model
    from training.loading import load_keras

    found = [args.checkpoints / n for n in ("best.keras", "last.keras")
             if (args.checkpoints / n).is_file()]
    if not found:
        raise MissingFileError(f"{args.checkpoints}: holds no best.keras or last.keras")
    try:
        model = load_keras(found[0])
    except ModelError as exc:
        if len(found) == 1:
            raise
        model = load_keras(found[1])  # the last epoch's weights, not the best's: said
        logger.warning("warning: %s; exporting %s instead", exc, found[1].name)
    card = {"description": f"exported from {args.checkpoints}",
            **_training(args.checkpoints / "state.json", config)}
    export_model(model, config, args.out, card, keep=(args.checkpoints,))
    print(f"wrote {args.out}")
    return 0


def _training(path: Path, config) -> dict:
    """The card's training section and last epoch, from the run's ``state.json`` (every
    session of it); none without the file, or with one unreadable or damaged (said): the
    weights are exported all the same. How the run stopped, and where it ran, the checkpoints
    do not say."""
    from training.train import read_state

    if not path.is_file():
        return {}
    try:
        state = read_state(path)
    except InvalidValueError:
        logger.warning("warning: %s is unreadable or damaged; the card leaves the training out",
                       path)
        return {}
    examples, targets = state.rates(config)
    return {"training": {"seconds": round(state.seconds, 1), "epochs_run": state.epoch,
                         "examples_per_second": round(examples, 1),
                         "targets_per_second": round(targets, 1),
                         "stopped_by": "? (exported from its checkpoints)",
                         "machine": "a machine not recorded"},
            "final_epoch": {k: v[-1] for k, v in state.history.items() if v}}
