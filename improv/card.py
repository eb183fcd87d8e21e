"""Model cards: ``card.json`` and its Markdown rendering ``README.md`` (no TensorFlow).

A card holds the config, the data and its licenses, the split, the training time,
the held-out metrics (``metrics``) and what the model plays (``music``). The
Markdown puts the sibling ``tutorial*`` baselines' numbers beside this model's.
"""

from __future__ import annotations

import json
from pathlib import Path

from improv.key import KEY_CLASSES, KEY_CONTEXT
from improv.outfile import write_atomically
from improv.weights import CARD_FILE, ModelError


def read_card(model_dir: str | Path) -> dict:
    """Return a model folder's card (``{}`` if it has none); ModelError (one line) if it is
    damaged."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: damaged card ({str(exc).splitlines()[0]})") from None
    if not isinstance(card, dict) or not isinstance(card.get("config", {}), dict):
        raise ModelError(f"{path}: damaged card (not a card's fields)")
    return card


def write_card(model_dir: str | Path, card: dict) -> None:
    """Write ``card.json`` and its Markdown rendering ``README.md``."""
    model_dir = Path(model_dir)
    write_atomically(model_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
    write_atomically(model_dir / "README.md", render_card(card, model_dir))


def _velocity(m: dict) -> str:
    return f"{m['velocity_mae']:.1f}" if "velocity_mae" in m else "–"


def _metrics_row(name: str, m: dict) -> str:
    key = f"{m['key_mass']:.3f}" if "key_mass" in m else "–"
    return (f"| {name} | {m['pitch_ce']:.3f} | {100 * m['pitch_top1']:.1f}% | "
            f"{100 * m['pitch_top5']:.1f}% | {key} | {m['step_mae']:.3f} | "
            f"{m['duration_mae']:.3f} | {_velocity(m)} | {m['targets']:,} |")


def _overlap(row: dict, key: str) -> str:
    return f"{row[key]:.3f}" if key in row else "–"  # cards written before it was measured


def _share(row: dict, key: str) -> str:
    return f"{100 * row[key]:.1f}%" if key in row else "–"


def _with_memory(card: dict, memory: dict) -> str:
    """The name of a row scored with the phrase memory: its strength, and whether that is
    the one improv plays at."""
    from improv.memory import DEFAULT_STRENGTH

    strength = memory.get("strength")
    if not isinstance(strength, (int, float)):
        return f"**{card.get('name')}** with the phrase memory"
    return (f"**{card.get('name')}** with the phrase memory ({strength:g})"
            + (", as improv plays" if strength == DEFAULT_STRENGTH else ""))


def _music_table(card: dict, model_dir: Path | None) -> list[str]:
    music = card.get("music")
    if not music:
        return []
    rows = [(f"**{card.get('name')}**", t, r) for t, r in music["summary"].items()]
    memory = music.get("memory")
    if memory:
        rows += [(_with_memory(card, memory), t, r) for t, r in memory["summary"].items()]
    if model_dir is not None:
        for sib in sorted(Path(model_dir).parent.glob("*tutorial*")):
            other = read_card(sib).get("music")
            if other and sib.resolve() != Path(model_dir).resolve():
                rows += [(sib.name, t, r) for t, r in other["summary"].items()]
    real = music["real"]
    lines = ["", "## What it plays", "",
             f"`improv evaluate --music` on the {music.get('split', 'test')} split: each of "
             f"{music['pieces']} pieces is seeded with its first {music['seed_notes']} notes; "
             f"{music['generate_notes']} generated notes are compared with the real "
             "continuation (histogram overlap, 1 = same; KL in nats, 0 = same)"
             + (f"; means of {music['draws']} draws (random seeds) a piece" if music.get("draws")
                else "") + ".", "",
             "| model | temperature | pitch overlap | pitch-class overlap | interval overlap | "
             "step overlap | duration overlap | velocity overlap | pitch KL | repeats | "
             "longest run | distinct pitches | step std (s) | key fit | out of key | "
             "motif reuse |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, t, r in rows:
        lines.append(f"| {name} | {t} | {r['pitch_overlap']:.3f} | {r['pitch_class_overlap']:.3f}"
                     f" | {r['interval_overlap']:.3f} | {r['step_overlap']:.3f} | "
                     f"{r['duration_overlap']:.3f} | {_overlap(r, 'velocity_overlap')} | "
                     f"{r['pitch_kl']:.3f} | "
                     f"{r['repeat_rate']:.3f} | {r['longest_run']:.1f} | "
                     f"{r['distinct_pitches']:.1f} | {r['step_std']:.3f} | "
                     f"{r['key_overlap']:.3f} | {_share(r, 'out_of_key')} | "
                     f"{_overlap(r, 'motif_reuse')} |")
    lines.append(f"| real continuation | | | | | | | | | {real['repeat_rate']:.3f} | "
                 f"{real['longest_run']:.1f} | {real['distinct_pitches']:.1f} | "
                 f"{real['step_std']:.3f} | | {_share(real, 'out_of_key')} | "
                 f"{_overlap(real, 'motif_reuse')} |")
    lines += ["", f"Out of key: the share of notes whose pitch class is not among the "
              f"{KEY_CLASSES} commonest of the seed's last {KEY_CONTEXT} notes. Motif reuse: "
              f"the share of the interval 3-grams of the first {music['seed_notes']} notes played "
              "that occur in the seed."]
    return lines


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
        memory = card["metrics"].get("memory")
        if memory:  # improv evaluate's second row: the model and the phrase memory
            rows.append(_metrics_row(_with_memory(card, memory), memory))
    if model_dir is not None:
        for sib in sorted(Path(model_dir).parent.glob("*tutorial*")):
            m = read_card(sib).get("metrics")
            if m and sib.resolve() != Path(model_dir).resolve():
                rows.append(_metrics_row(sib.name, m))
    ref = card.get("reference", {})
    if ref:
        rows.append(f"| training-set pitch frequencies | {ref['pitch_ce']:.3f} | "
                    f"{100 * ref['pitch_top1']:.1f}% | {100 * ref['pitch_top5']:.1f}% | "
                    f"{ref.get('key_mass', float('nan')):.3f} | {ref['step_mae']:.3f} (median) | "
                    f"{ref['duration_mae']:.3f} (median) | "
                    f"{_velocity(ref)}{' (median)' if 'velocity_mae' in ref else ''} | |")
    if rows:
        ev = card.get("evaluation", {})
        lines += ["", "## Held-out metrics", "",
                  f"Measured by `improv evaluate` on the {ev.get('split', 'test')} split "
                  f"({ev.get('files', '?')} files of {', '.join(ev.get('sources', []))}): every "
                  f"note with at least {ev.get('min_context', 25)} notes before it in its file.",
                  "", "| model | pitch CE (nats) | top-1 | top-5 | on the key | step MAE (s) | "
                  "duration MAE (s) | velocity MAE | targets |",
                  "|---|---|---|---|---|---|---|---|---|", *rows,
                  "", f"On the key: the probability the model puts on the {KEY_CLASSES} commonest "
                  f"pitch classes of the {KEY_CONTEXT} notes before each note"
                  + (f" (the real note is among them {100 * card['metrics']['real_in_key']:.1f}%"
                     " of the time)." if "real_in_key" in card.get("metrics", {}) else ".")]
    lines += _music_table(card, model_dir)
    plots = sorted(p.name for p in Path(model_dir).glob("*.png")) if model_dir else []
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
