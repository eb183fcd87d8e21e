"""Held-out next-note metrics, scored as ``../shared/EVALUATION.md`` describes.

For every file and every note ``i >= min_context``, the model sees the notes
before ``i`` (a window model the last ``seq_length``; the streaming model all
of them, state carried from the file's first note) and predicts note ``i``.
Pitch: mean cross-entropy in nats, top-1 and top-5 accuracy. Step and
duration: mean absolute error in seconds, and the tutorial's loss of each head
(for heads over time bins, of the distribution's median).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from improv.corpus import Corpus
from improv.errors import InvalidValueError
from improv.features import VOCAB_SIZE, model_inputs
from improv.musicstats import context_keys
from improv.timebins import bin_values
from improv.velocitybins import velocity_values

#: Notes of context every scored note has, as the protocol asks.
MIN_CONTEXT = 25


def _input_kind(model) -> dict:
    """Return :func:`improv.features.model_inputs`'s options for ``model``."""
    names = {t.name for t in model.inputs}
    if "pitches" not in names:
        return {"velocity": model.input_shape[-1] == 4}
    columns = next(t for t in model.inputs if t.name == "notes")
    return {"pitch_embedding": True, "interval_embedding": "intervals" in names,
            "velocity": columns.shape[-1] == 3}


def predict_corpus(model, notes: list[np.ndarray], arch: str, seq_length: int,
                   vocab: int = VOCAB_SIZE, min_context: int = MIN_CONTEXT,
                   batch_size: int = 4096) -> list[dict[str, np.ndarray]]:
    """Return, per file, the model's logits, step and duration for notes ``min_context..``."""
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    kind = _input_kind(model)

    def inputs(n: np.ndarray):
        return model_inputs(n, vocab_size=vocab, **kind)

    out = []
    if arch == "tutorial":
        for n in notes:
            if len(n) <= max(min_context, seq_length) - 1:
                out.append(None)
                continue
            first = max(min_context, seq_length)
            feats = inputs(n)
            nf = feats.shape[-1]
            windows = np.lib.stride_tricks.sliding_window_view(feats, (seq_length, nf))[:, 0]
            # window k covers notes k..k+seq_length-1 and predicts note k+seq_length
            windows = windows[first - seq_length:len(n) - seq_length]
            preds = [call(tf.constant(windows[i:i + batch_size]))
                     for i in range(0, len(windows), batch_size)]
            res = {k: np.concatenate([p[k].numpy() for p in preds]) for k in preds[0]}
            res["first"] = first
            out.append(res)
        return out
    # Streaming: whole files at once, a few of similar length per batch (causal, so
    # the zero padding after a file's end changes none of its outputs).
    order = np.argsort([len(n) for n in notes])
    results: list = [None] * len(notes)
    group = 8
    for g in range(0, len(order), group):
        idx = [i for i in order[g:g + group] if len(notes[i]) > min_context]
        if not idx:
            continue
        longest = max(len(notes[i]) for i in idx)
        per_file = [inputs(notes[i]) for i in idx]
        x = tf.nest.map_structure(
            lambda *a, longest=longest: np.stack(
                [np.pad(v, [(0, longest - len(v))] + [(0, 0)] * (v.ndim - 1)) for v in a]),
            *per_file)
        pred = {k: v.numpy() for k, v in call(x).items()}
        for row, i in enumerate(idx):
            n = len(notes[i])
            # the output at position j predicts note j + 1
            results[i] = {k: v[row, min_context - 1:n - 1] for k, v in pred.items()}
            results[i]["first"] = min_context
    return results


def _point_prediction(out: np.ndarray, values=bin_values) -> np.ndarray:
    """Return a head's guess: the value itself, or, for logits over bins, the median
    of the distribution (what minimises the expected absolute error)."""
    if out.shape[1] == 1:
        return out[:, 0].astype(np.float64)
    z = np.exp(out - out.max(axis=1, keepdims=True))
    cdf = np.cumsum(z, axis=1) / z.sum(axis=1, keepdims=True)
    return values(out.shape[1]).astype(np.float64)[(cdf < 0.5).sum(axis=1)]


#: ``loss`` in the metrics weighs the heads as the tutorial does, whatever weights a model
#: was trained with, so that models can be compared on it.
TUTORIAL_WEIGHTS = {"pitch": 0.05, "step": 1.0, "duration": 1.0}


def score(notes: list[np.ndarray], preds: list) -> dict:
    """Aggregate per-note errors over all files into the protocol's metrics."""
    ce, top1, top5, step_err, dur_err, step_loss, dur_loss, vel_err = ([] for _ in range(8))
    key_mass, in_key = [], []
    for n, p in zip(notes, preds, strict=True):
        if p is None:
            continue
        target = n[p["first"]:]
        pitch = target[:, 0].astype(np.int64)
        logits = p["pitch"].astype(np.float64)
        m = logits.max(axis=1, keepdims=True)
        logz = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        ce.append(logz - logits[np.arange(len(pitch)), pitch])
        keys = context_keys(n[:, 0], p["first"])
        prob = np.exp(logits - logz[:, None])
        key_mass.append((prob * keys[:, np.arange(prob.shape[1]) % 12]).sum(axis=1))
        in_key.append(keys[np.arange(len(pitch)), pitch % 12])
        rank = (logits > logits[np.arange(len(pitch)), pitch][:, None]).sum(axis=1)
        top1.append(rank < 1)
        top5.append(rank < 5)
        for head, col, err, loss in (("step", 1, step_err, step_loss),
                                     ("duration", 2, dur_err, dur_loss)):
            y_pred = _point_prediction(p[head])
            y_true = target[:, col].astype(np.float64)
            err.append(np.abs(y_pred - y_true))
            loss.append((y_true - y_pred) ** 2 + 10 * np.maximum(-y_pred, 0))
        if "velocity" in p:
            vel_err.append(np.abs(_point_prediction(p["velocity"], velocity_values)
                                  - target[:, 3]))
    if not ce:
        raise InvalidValueError(f"no file has more than {MIN_CONTEXT} notes to score")
    cat = np.concatenate
    w = TUTORIAL_WEIGHTS
    metrics = {
        "targets": int(sum(len(c) for c in ce)),
        "files": int(sum(p is not None for p in preds)),
        "pitch_ce": float(cat(ce).mean()),
        "pitch_top1": float(cat(top1).mean()),
        "pitch_top5": float(cat(top5).mean()),
        # probability the model puts on its context's key, and how often the real note is in it
        "key_mass": float(cat(key_mass).mean()),
        "real_in_key": float(cat(in_key).mean()),
        "step_mae": float(cat(step_err).mean()),
        "duration_mae": float(cat(dur_err).mean()),
        "step_loss": float(cat(step_loss).mean()),
        "duration_loss": float(cat(dur_loss).mean()),
    }
    if vel_err:
        metrics["velocity_mae"] = float(cat(vel_err).mean())
    metrics["loss"] = (w["pitch"] * metrics["pitch_ce"] + w["step"] * metrics["step_loss"]
                       + w["duration"] * metrics["duration_loss"])
    return metrics


def evaluate_model(model, arch: str, seq_length: int, corpus: Corpus,
                   vocab: int = VOCAB_SIZE) -> dict:
    """Score ``model`` on every file of ``corpus``; totals plus one entry per source."""
    preds = predict_corpus(model, corpus.notes, arch, seq_length, vocab)
    result = score(corpus.notes, preds)
    by_source = {}
    for name in sorted({f.source for f in corpus.files}):
        keep = [i for i, f in enumerate(corpus.files) if f.source == name]
        if any(preds[i] is not None for i in keep):
            by_source[name] = score([corpus.notes[i] for i in keep], [preds[i] for i in keep])
    result["by_source"] = by_source
    return result


def frequency_reference(train: Corpus, test: Corpus, vocab: int = VOCAB_SIZE) -> dict:
    """Score the no-context predictor: training pitch frequencies, median step, duration
    and velocity."""
    pitches = np.concatenate([n[:, 0] for n in train.notes]).astype(np.int64)
    counts = np.bincount(pitches, minlength=vocab) + 1.0  # add-one: no pitch is impossible
    logp = np.log(counts / counts.sum())
    steps = np.concatenate([n[:, 1] for n in train.notes])
    durs = np.concatenate([n[:, 2] for n in train.notes])
    velocity = np.median(np.concatenate([n[:, 3] for n in train.notes]))
    preds = []
    for n in test.notes:
        k = len(n) - MIN_CONTEXT
        if k <= 0:
            preds.append(None)
            continue
        preds.append({"pitch": np.tile(logp, (k, 1)), "step": np.full((k, 1), np.median(steps)),
                      "duration": np.full((k, 1), np.median(durs)),
                      "velocity": np.full((k, 1), velocity), "first": MIN_CONTEXT})
    return score(test.notes, preds)
