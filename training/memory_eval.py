"""How much the phrase memory (:mod:`improv.memory`) helps the model predict, and the
choice of its constants.

Every held-out piece is played through the NumPy engine (teacher-forced, state carried
from the first note) and through a fresh memory that learns each note after it has been
predicted, as it would live. For every note from :data:`MIN_CONTEXT` on, we keep the
probability the model and the memory give the real pitch, step bin and duration bin, and
the memory's confidence inputs (order, count); the cross-entropy of any mixture follows
from those, so the weighting constants are searched on the validation split in one pass
per memory configuration. No TensorFlow.

    python -m training.memory_eval --split validation --tune     # choose the constants
    python -m training.memory_eval --split test                  # report with the defaults
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from improv.engine import NoteModel
from improv.features import VOCAB_SIZE
from improv.key import KeyTracker
from improv.memory import MAX_WEIGHT, MemoryConfig, PhraseMemory
from improv.timebins import to_bins

#: Notes of context before the first scored note, as ``training/evaluate.py`` scores.
MIN_CONTEXT = 25


def model_trace(model: NoteModel, notes: np.ndarray, first: int = MIN_CONTEXT) -> dict:
    """Teacher-force ``notes`` through ``model``; return, for notes ``first..``, the log
    probability of the real pitch (and of the real step and duration bins)."""
    model.reset()
    pitch, step, dur = [], [], []
    n = len(notes)
    bins = model.weights.timing_bins
    if bins:
        step_bin = to_bins(notes[:, 1], bins)
        dur_bin = to_bins(notes[:, 2], bins)
    for i in range(n - 1):
        row = notes[i]
        pred = model.feed(int(row[0]), float(row[1]), float(row[2]), int(row[3]))
        if i + 1 < first:
            continue
        pitch.append(_log_softmax_at(pred.logits, int(notes[i + 1, 0])))
        if bins:
            step.append(_log_softmax_at(pred.timing_logits[0], int(step_bin[i + 1])))
            dur.append(_log_softmax_at(pred.timing_logits[1], int(dur_bin[i + 1])))
    out = {"pitch": np.array(pitch)}
    if bins:
        out["step"], out["duration"] = np.array(step), np.array(dur)
    return out


def memory_trace(notes: np.ndarray, config: MemoryConfig, bins: int = 0,
                 first: int = MIN_CONTEXT) -> dict:
    """Feed ``notes`` to a fresh memory; return, for notes ``first..``, the probability it
    gave the real pitch (and step and duration bins), its order and count."""
    memory = PhraseMemory(config)
    pitch, order, count, step, dur, floor = [], [], [], [], [], []
    if bins:
        step_bin = to_bins(notes[:, 1], bins)
        dur_bin = to_bins(notes[:, 2], bins)
    for i in range(len(notes)):
        if i >= first:
            guess = memory.guess()
            probs = guess.pitch_probabilities(heard=True)
            pitch.append(probs[int(notes[i, 0])])
            floor.append(guess.floor)
            order.append(guess.order)
            count.append(guess.count)
            if bins:
                where = memory._time_bins(guess.typical_gap, bins)
                spread = np.bincount(where, np.concatenate([guess.steps, guess.durations]),
                                     2 * bins)
                step.append(spread[step_bin[i]])
                dur.append(spread[bins + dur_bin[i]])
        memory.learn(int(notes[i, 0]), float(notes[i, 1]), float(notes[i, 2]))
    out = {"pitch": np.array(pitch), "order": np.array(order), "count": np.array(count),
           "floor": np.array(floor)}
    if bins:
        out["step"], out["duration"] = np.array(step), np.array(dur)
    return out


def mix_corpus(notes: list[np.ndarray], preds: list, strength: float,
               config: MemoryConfig | None = None) -> list:
    """Return ``preds`` (of :func:`training.evaluate.predict_corpus`) with each scored note's
    pitch logits (and time-bin logits) mixed with a memory's guess, through
    :meth:`PhraseMemory.mix`: the memory of each file starts empty and learns every note
    after it is predicted, so a note's guess is built from the notes before it only (so
    is the key the memory leans towards, :class:`improv.key.KeyTracker`)."""
    from improv.engine import Prediction
    from improv.timebins import bin_values

    out = []
    for n, p in zip(notes, preds, strict=True):
        if p is None:
            out.append(None)
            continue
        memory = PhraseMemory(config)
        key = KeyTracker()
        first = p["first"]
        pitch = p["pitch"].copy()
        timed = p["step"].shape[1] > 1
        step, duration = p["step"].copy(), p["duration"].copy()
        values = bin_values(step.shape[1]) if timed else None
        for i in range(len(n)):
            if i >= first:
                j = i - first
                pred = Prediction(pitch[j], 0.0, 0.0,
                                  np.stack([step[j], duration[j]]) if timed else None, values)
                mixed = memory.mix(pred, strength, key.mask)
                pitch[j] = mixed.logits
                if timed:
                    step[j], duration[j] = mixed.timing_logits
            memory.learn(int(n[i, 0]), float(n[i, 1]), float(n[i, 2]))
            key.push(int(n[i, 0]))
        out.append({**p, "pitch": pitch, "step": step, "duration": duration})
    return out


def evaluate_with_memory(model, arch: str, seq_length: int, corpus, strength: float,
                         vocab: int = VOCAB_SIZE) -> dict:
    """:func:`training.evaluate.evaluate_model`'s metrics, plus ``memory``: the same with
    the phrase memory mixed in at ``strength`` (the Keras model predicts once)."""
    from training.evaluate import predict_corpus, score

    preds = predict_corpus(model, corpus.notes, arch, seq_length, vocab)
    mixed = mix_corpus(corpus.notes, preds, strength)
    result = score(corpus.notes, preds)
    by_source, by_source_mixed = {}, {}
    for name in sorted({f.source for f in corpus.files}):
        keep = [i for i, f in enumerate(corpus.files) if f.source == name]
        if any(preds[i] is not None for i in keep):
            by_source[name] = score([corpus.notes[i] for i in keep], [preds[i] for i in keep])
            by_source_mixed[name] = score([corpus.notes[i] for i in keep],
                                          [mixed[i] for i in keep])
    result["by_source"] = by_source
    result["memory"] = {**score(corpus.notes, mixed), "strength": strength,
                        "by_source": by_source_mixed}
    result["memory"]["pitch_ce_ratio"] = result["memory"]["pitch_ce"] / result["pitch_ce"]
    return result


def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    z = logits.astype(np.float64)
    m = z.max()
    return float(z[index] - m - np.log(np.exp(z - m).sum()))


def confidence(order: np.ndarray, count: np.ndarray, config: MemoryConfig) -> np.ndarray:
    """:meth:`PhraseMemory.confidence`, vectorised."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, config.scale * order / config.max_order * count
                        / (count + config.count_half), 0.0)


def mixed_ce(log_model: np.ndarray, p_memory: np.ndarray, lam: np.ndarray) -> float:
    """Mean cross-entropy (nats) of the mixture ``(1 - lam) p_model + lam p_memory``."""
    with np.errstate(divide="ignore"):
        return float(-np.log((1 - lam) * np.exp(log_model) + lam * p_memory).mean())


def choose_files(files: list, max_files: int) -> list:
    """Up to ``max_files`` files, one performance per piece first, then a second, ..."""
    by_piece: dict[str, list] = {}
    for f in files:
        by_piece.setdefault(f.piece, []).append(f)
    rounds = itertools.zip_longest(*by_piece.values())
    ordered = [f for r in rounds for f in r if f is not None]
    return ordered[:max_files] if max_files else ordered


def evaluate(model_dir: Path, notes: list[np.ndarray], config: MemoryConfig, strength: float,
             traces: list[dict] | None = None) -> dict:
    """Cross-entropy of pitch (and step, duration bins) with and without the memory."""
    model = NoteModel.load(model_dir)
    bins = model.weights.timing_bins
    traces = traces or [model_trace(model, n) for n in notes]
    mem = [memory_trace(n, config, bins) for n in notes]
    return _score(traces, mem, config, strength)


def _score(traces: list[dict], mem: list[dict], config: MemoryConfig, strength: float) -> dict:
    cat = np.concatenate
    lam = np.minimum(MAX_WEIGHT, 2 * min(strength, 1.0) * confidence(cat([m["order"] for m in mem]),
                                          cat([m["count"] for m in mem]), config))
    lam = lam * (1.0 - cat([m["floor"] for m in mem]))
    out = {"notes": int(len(lam)), "strength": strength, "config": asdict(config),
           "mean_weight": float(lam.mean())}
    for head in ("pitch", "step", "duration"):
        if head not in traces[0] or head not in mem[0]:
            continue
        log_model = cat([t[head] for t in traces])
        p_memory = cat([m[head] for m in mem])
        share = 1.0 if head == "pitch" else config.timing_share
        out[head] = {"ce_model": float(-log_model.mean()),
                     # pitches beyond two octaves of the last have 0: floored at 1e-6
                     "ce_memory_alone": float(-np.log(np.maximum(p_memory, 1e-6)).mean()),
                     "ce_mixed": mixed_ce(log_model, p_memory, lam * share)}
        out[head]["ratio"] = out[head]["ce_mixed"] / out[head]["ce_model"]
    return out


#: The grid --tune searches. A first search on 16 validation files (orders 3/5/8/12, chords
#: grouped at 0 or 0.03 s, count_half 0-4, scale 0.5-3) put the best at order 5,
#: count_half 0.5, scale 1; scales above 1 then reached weight 1 and an infinite
#: cross-entropy (hence MAX_WEIGHT). This grid is around that best.
ORDERS = (5, 8)
CHORD_GRID = (0.0, 0.03, 0.05, 0.08)
COUNT_HALF = (0.25, 0.5, 1.0)
SCALE = (0.75, 1.0, 1.25)


def tune(traces: list[dict], notes: list[np.ndarray], bins: int, log=print) -> dict:
    """Search the memory's constants for the lowest pitch cross-entropy at the default
    strength; timing_share for the lowest step plus duration cross-entropy at the chosen
    pitch constants."""
    from improv.memory import TUNED_STRENGTH

    strength = TUNED_STRENGTH
    best = None
    results = []
    for max_order, chord in itertools.product(ORDERS, CHORD_GRID):
        base = MemoryConfig(max_order=max_order, chord_seconds=chord)
        t0 = time.time()
        mem = [memory_trace(n, base, bins) for n in notes]
        log(f"memory max_order={max_order} chord_seconds={chord}: "
            f"{time.time() - t0:.0f} s")
        for half, scale in itertools.product(COUNT_HALF, SCALE):
            cfg = replace(base, count_half=half, scale=scale)
            s = _score(traces, mem, cfg, strength)
            results.append({"max_order": max_order, "chord_seconds": chord, "count_half": half,
                            "scale": scale, "pitch_ce": s["pitch"]["ce_mixed"]})
            if best is None or s["pitch"]["ce_mixed"] < best[0]["pitch"]["ce_mixed"]:
                best = (s, cfg, strength, mem)
        log(f"  best so far: {best[1]}: "
            f"{best[0]['pitch']['ce_mixed']:.4f} vs {best[0]['pitch']['ce_model']:.4f}")
    s, cfg, strength, mem = best
    timing = []
    if bins:
        for share in (0.0, 0.25, 0.5, 0.75, 1.0):
            t = _score(traces, mem, replace(cfg, timing_share=share), strength)
            timing.append({"timing_share": share, "step_ce": t["step"]["ce_mixed"],
                           "duration_ce": t["duration"]["ce_mixed"]})
        share = min(timing, key=lambda r: r["step_ce"] + r["duration_ce"])["timing_share"]
        cfg = replace(cfg, timing_share=share)
    return {"best": _score(traces, mem, cfg, strength), "grid": results, "timing": timing}


def main(argv: list[str] | None = None) -> int:
    from improv.corpus import find_midi_files, load_corpus
    from improv.paths import default_model_dir, resolve_data

    p = argparse.ArgumentParser(prog="python -m training.memory_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--data", action="append", default=None)
    p.add_argument("--split", default="validation", choices=("validation", "test"))
    p.add_argument("--max-files", type=int, default=0)
    p.add_argument("--strength", type=float, default=None,
                   help="memory strength (default: improv's default)")
    p.add_argument("--tune", action="store_true", help="search the constants")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    model_dir = args.model or default_model_dir()
    sources = args.data or ["../shared/data/maestro-asap", "../shared/data/asap-ecompetition"]
    files = [f for s in sources for f in find_midi_files(resolve_data(s))]
    files = choose_files([f for f in files if f.split == args.split], args.max_files)
    corpus = load_corpus(files, progress=False)
    notes = [n for n in corpus.notes if len(n) > MIN_CONTEXT + 1]
    model = NoteModel.load(model_dir)
    t0 = time.time()
    traces = [model_trace(model, n) for n in notes]
    print(f"{len(notes)} files, {sum(len(t['pitch']) for t in traces)} scored notes; "
          f"model pass {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    if args.tune:
        result = tune(traces, notes, model.weights.timing_bins,
                      log=lambda s: print(s, file=sys.stderr, flush=True))
    else:
        from improv.memory import DEFAULT_STRENGTH

        strength = DEFAULT_STRENGTH if args.strength is None else args.strength
        result = evaluate(model_dir, notes, MemoryConfig(), strength, traces)
    result.update({"model": str(model_dir), "split": args.split,
                   "files": [str(f.path) for f in corpus.files]})
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    best = result.get("best", result)
    print(json.dumps({k: v for k, v in best.items() if k != "config"}, indent=1))
    print(json.dumps(best["config"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
