"""Export a trained model to ``models/<name>/``: Keras file, NumPy weights, card.

A model folder holds:

- ``model.keras``: the Keras model (loads with ``keras.models.load_model(path, compile=False)``);
- ``weights.npz``: the same weights as plain arrays for the NumPy runtime
  (see :mod:`improv.weights`);
- ``card.json`` and ``README.md``: the model card (config, data, split,
  training time, held-out metrics);
- ``history.json`` and the PNG plots it was trained with.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

import keras
import numpy as np

from improv.weights import CARD_FILE, FORMAT_VERSION, KERAS_FILE, WEIGHTS_FILE
from training.config import TrainConfig
from training.corpus import Corpus, SPLITS, TEST_PERCENT, VALIDATION_PERCENT
from training.model import N_FEATURES



def weights_to_arrays(model: keras.Model, config: TrainConfig) -> dict[str, np.ndarray]:
    """Return the model's weights under the names :mod:`improv.weights` reads."""
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    arrays = {"lstm_kernel": kernel, "lstm_recurrent_kernel": recurrent, "lstm_bias": bias}
    for head in ("pitch", "step", "duration"):
        w, b = model.get_layer(head).get_weights()
        arrays[f"{head}_kernel"], arrays[f"{head}_bias"] = w, b
    meta = {"format": FORMAT_VERSION, "arch": config.arch, "seq_length": config.seq_length,
            "units": config.units, "vocab_size": config.vocab_size, "n_features": N_FEATURES}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def source_license(source: str | Path) -> str:
    """Return the ``License:`` line of a data folder's SOURCE.md, or ``"unknown"``."""
    path = Path(source)
    readme = (path if path.is_dir() else path.parent) / "SOURCE.md"
    if readme.is_file():
        m = re.search(r"^- License:\s*(.+)$", readme.read_text(encoding="utf-8"), re.M)
        if m:
            return m.group(1).strip()
    return "unknown"


def data_card(config: TrainConfig, corpus: Corpus) -> dict:
    """Describe the data: each source's license and per-split file/note counts."""
    sources = []
    for src in config.data:
        name = Path(src).name
        part = Corpus([f for f in corpus.files if f.source == name],
                      [n for f, n in zip(corpus.files, corpus.notes) if f.source == name])
        sources.append({"name": name, "path": str(src), "license": source_license(src),
                        **{s: v for s, v in part.summary().items() if s in SPLITS}})
    return {
        "sources": sources,
        "totals": corpus.summary(),
        "split_rule": (f"by piece (composer/title from metadata.csv, else the file): sha1 of the "
                       f"piece name mod 100; < {VALIDATION_PERCENT} validation, "
                       f"< {VALIDATION_PERCENT + TEST_PERCENT} test, else train"),
        "train_files_used": config.max_files or "all",
    }


def export_model(model: keras.Model, config: TrainConfig, out_dir: str | Path,
                 card: dict) -> Path:
    """Write the model folder ``out_dir`` and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    tmp = out / "weights.tmp.npz"
    np.savez(tmp, **weights_to_arrays(model, config))
    tmp.replace(out / WEIGHTS_FILE)
    card = {"name": out.name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds"), "arch": config.arch, "config": config.to_dict(),
        "parameters": int(model.count_params()), "keras": keras.__version__, **card}
    write_card(out, card)
    return out


def read_card(model_dir: str | Path) -> dict:
    """Return a model folder's card (``{}`` if it has none)."""
    path = Path(model_dir) / CARD_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_card(model_dir: str | Path, card: dict) -> None:
    """Write ``card.json`` and its Markdown rendering ``README.md``."""
    model_dir = Path(model_dir)
    (model_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / "README.md").write_text(render_card(card, model_dir))


def _metrics_row(name: str, m: dict) -> str:
    return (f"| {name} | {m['pitch_ce']:.3f} | {100 * m['pitch_top1']:.1f}% | "
            f"{100 * m['pitch_top5']:.1f}% | {m['step_mae']:.3f} | {m['duration_mae']:.3f} | "
            f"{m['targets']:,} |")


def render_card(card: dict, model_dir: Path | None = None) -> str:
    """Render a card as Markdown, with the sibling ``tutorial*`` baselines' metrics."""
    cfg = card.get("config", {})
    lines = [f"# Model card: {card.get('name', '?')}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += [
        f"- Architecture: `{card.get('arch')}` (LSTM({cfg.get('units')}), "
        f"sequence length {cfg.get('seq_length')}, {card.get('parameters', '?'):,} parameters)",
        f"- Loss weights: pitch {cfg.get('pitch_weight')}, step {cfg.get('step_weight')}, "
        f"duration {cfg.get('duration_weight')}; Adam({cfg.get('learning_rate')}), "
        f"batch {cfg.get('batch_size')}, transpose ±{cfg.get('transpose')}",
    ]
    tr = card.get("training", {})
    if tr:
        lines.append(
            f"- Training: {tr.get('epochs_run')} epochs in {tr.get('seconds', 0) / 60:.1f} min "
            f"on {tr.get('machine', 'CPU')}; {tr.get('examples_per_second', 0):,.0f} examples/s "
            f"({tr.get('targets_per_second', 0):,.0f} target notes/s); "
            f"stopped by {tr.get('stopped_by', '?')}")
    data = card.get("data", {})
    if data:
        lines += ["", "## Data", "", "| source | license | train files | train notes | "
                  "validation files | test files |", "|---|---|---|---|---|---|"]
        for s in data.get("sources", []):
            lines.append(f"| {s['name']} | {s['license']} | {s['train']['files']} | "
                         f"{s['train']['notes']:,} | {s['validation']['files']} | "
                         f"{s['test']['files']} |")
        lines += ["", f"Split: {data.get('split_rule')}. Training files used: "
                  f"{data.get('train_files_used')}. Unreadable files skipped: "
                  f"{data.get('totals', {}).get('skipped', 0)}."]
    rows = []
    if card.get("metrics"):
        rows.append(_metrics_row(f"**{card.get('name')}** (this model)", card["metrics"]))
    if model_dir is not None:
        for sib in sorted(Path(model_dir).parent.glob("*tutorial*")):
            m = read_card(sib).get("metrics")
            if m and sib.resolve() != Path(model_dir).resolve():
                rows.append(_metrics_row(sib.name, m))
    ref = card.get("reference", {})
    if ref:
        rows.append(f"| training-set pitch frequencies | {ref['pitch_ce']:.3f} | "
                    f"{100 * ref['pitch_top1']:.1f}% | {100 * ref['pitch_top5']:.1f}% | "
                    f"{ref['step_mae']:.3f} (median) | {ref['duration_mae']:.3f} (median) | |")
    if rows:
        ev = card.get("evaluation", {})
        lines += ["", "## Held-out metrics", "",
                  f"Measured by `improv evaluate` on the {ev.get('split', 'test')} split "
                  f"({ev.get('files', '?')} files of {', '.join(ev.get('sources', []))}): every "
                  f"note with at least {ev.get('min_context', 25)} notes before it in its file.",
                  "", "| model | pitch CE (nats) | top-1 | top-5 | step MAE (s) | "
                  "duration MAE (s) | targets |", "|---|---|---|---|---|---|---|", *rows]
    plots = sorted(p.name for p in Path(model_dir).glob("*.png")) if model_dir else []
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
