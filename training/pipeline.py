"""The whole ``improv train`` job: train, export, evaluate on the test split, plot."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import numpy as np

from improv.card import read_card, write_card
from improv.corpus import Corpus
from improv.trainconfig import TrainConfig, check_model_folder
from training.evaluate import MIN_CONTEXT, evaluate_model, frequency_reference
from training.export import building, data_card, write_model
from training.train import TrainResult, train

logger = logging.getLogger(__name__)


def evaluation_card(metrics: dict, corpus: Corpus, split: str) -> dict:
    """Describe where the metrics were measured, for the model card."""
    return {"split": split, "files": metrics["files"],
            "sources": sorted({f.source for f in corpus.files}), "min_context": MIN_CONTEXT}


def write_plots(out: Path, result: TrainResult, card_name: str) -> list[Path]:
    """Draw the history, a piano roll and the distributions of the training data."""
    try:
        from improv import plots
    except ImportError as exc:  # matplotlib is an extra
        logger.warning("warning: no plots (%s); install improv[plots]", exc)
        return []
    import pandas as pd

    from improv.notetable import notes_from_steps

    paths = [plots.plot_history(result.history, out / "history.png", title=card_name)]
    train_part = result.corpus.split("train")
    first = train_part.notes[0]
    roll = notes_from_steps(first[:, 0], first[:, 1], first[:, 2], first[:, 3])
    paths.append(plots.plot_piano_roll(roll, out / "piano_roll.png", count=200,
                                       title=f"{train_part.files[0].path.name}: first 200 notes"))
    every = np.concatenate(train_part.notes)
    frame = pd.DataFrame({"pitch": every[:, 0], "step": every[:, 1], "duration": every[:, 2]})
    paths.append(plots.plot_distributions(frame, out / "distributions.png",
                                          title=f"training notes ({len(every):,})"))
    return paths


def train_export(config: TrainConfig, out: Path, ckpt_dir: Path, resume: bool = False,
                 strategy: str = "auto", cpu_replicas: int = 0, evaluate: bool = True,
                 verbose: int | str = "auto", description: str = "",
                 learning_rate_given: bool = False) -> dict:
    """Train ``config``, export it to ``out`` and return its card (``learning_rate_given``:
    see :func:`training.train.train`)."""
    check_model_folder(out, keep=(ckpt_dir,))  # before the run (train checks its folder)
    result = train(config, ckpt_dir, resume=resume, strategy_name=strategy,
                   cpu_replicas=cpu_replicas, verbose=verbose,
                   learning_rate_given=learning_rate_given)
    card = {
        "description": description,
        "data": data_card(config, result.corpus),
        "training": {"seconds": round(result.train_seconds, 1), "epochs_run": result.epochs,
                     "examples_per_second": round(result.examples_per_second, 1),
                     "targets_per_second": round(result.targets_per_second, 1),
                     "stopped_by": result.stopped_by, "replicas": result.replicas,
                     "machine": f"{platform.machine()} CPU, {__import__('os').cpu_count()} cores"},
        "final_epoch": {k: v[-1] for k, v in result.history.items() if v},
    }
    # The whole folder is built beside ``out`` and swapped in at the end (export.building).
    kept = f"the checkpoints in {ckpt_dir} are kept: improv export {ckpt_dir} {out} writes it"
    try:
        _write_folder(result, config, out, ckpt_dir, card, kept, evaluate)
    except KeyboardInterrupt:  # (during the evaluation, say: the model is not lost)
        raise KeyboardInterrupt(f"interrupted while writing {out}; {kept}") from None
    return read_card(out)


def _write_folder(result: TrainResult, config: TrainConfig, out: Path, ckpt_dir: Path,
                  card: dict, kept: str, evaluate: bool) -> None:
    """Write the model folder ``out`` whole: the model, its history, its evaluation on the
    test split (if ``evaluate``) and its plots."""
    with building(out, keep=(ckpt_dir,), done=kept) as folder:
        write_model(result.model, config, folder, card, out.name)
        (folder / "history.json").write_text(json.dumps(result.history, indent=1) + "\n")
        if evaluate:
            test = result.corpus.split("test")
            if test.notes:
                metrics = evaluate_model(result.model, config.arch, config.seq_length, test,
                                         config.vocab_size)
                card = read_card(folder)
                card["metrics"] = metrics
                card["evaluation"] = evaluation_card(metrics, test, "test")
                card["reference"] = frequency_reference(result.corpus.split("train"), test)
                write_card(folder, card)
        write_plots(folder, result, out.name)
        write_card(folder, read_card(folder))  # re-render: the README lists the plots
