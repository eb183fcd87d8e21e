"""``improv export``: turn a training run's checkpoint into a model folder (TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

from improv.commands.common import quiet_tensorflow
from improv.errors import MissingFileError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint folder as a model folder",
                       description="Turn the best (or last) checkpoint of a training run into "
                       "a model folder, e.g. after an interrupted run.")
    p.add_argument("checkpoints", type=Path, help="the run's checkpoint folder")
    p.add_argument("out", type=Path, help="model folder to write")


def command(args) -> int:
    quiet_tensorflow()
    from improv.trainconfig import TrainConfig
    from training.export import export_model

    cfg_path = args.checkpoints / "config.json"
    if not cfg_path.is_file():
        raise MissingFileError(f"{cfg_path}: no such file (is this a checkpoint folder?)")
    config = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
    from training.loading import load_keras

    for name in ("best.keras", "last.keras"):
        if (args.checkpoints / name).is_file():
            model = load_keras(args.checkpoints / name)
            break
    else:
        raise MissingFileError(f"{args.checkpoints}: holds no best.keras or last.keras")
    export_model(model, config, args.out, {"description": f"exported from {args.checkpoints}"})
    print(f"wrote {args.out}")
    return 0
