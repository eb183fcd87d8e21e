"""What a model plays, measured against real music (no TensorFlow needed).

Notes are ``(n, 4)`` arrays of pitch, step, duration, velocity (steps and
durations in seconds), as :mod:`improv.corpus` and :mod:`improv.generate`
make them. Distributions of generated and real notes are compared with the
overlap area and the KL divergence of their histograms, after Yang & Lerch
(2018), "On the evaluation of generative models in music" (they use kernel
density estimates; fixed-bin histograms are enough for these features).
"""

from __future__ import annotations

import numpy as np

from improv.errors import InvalidValueError
from improv.key import KEY_CLASSES, KEY_CONTEXT

#: Histogram bins per feature: the features compared between generated and real notes.
BINS = {
    "pitch_class": np.arange(13) - 0.5,
    "pitch": np.arange(21, 110) - 0.5,
    "interval": np.arange(-24, 26) - 0.5,
    "step": np.array([0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2, 2.0, np.inf]),
    "duration": np.array([0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2, 2.0, 4.0, np.inf]),
    "polyphony": np.arange(0, 12) - 0.5,
    "velocity": np.arange(0, 129, 8),
}
#: A step this long or longer counts as a silence gap.
GAP_SECONDS = 2.0


def polyphony(notes: np.ndarray) -> np.ndarray:
    """Return, at each note's onset, how many notes sound (itself included)."""
    starts = np.cumsum(notes[:, 1])
    ends = starts + np.maximum(notes[:, 2], 0)
    # Notes begun by s, less those ended by s (a note ended by s began by s): two sorted
    # searches, not a pass over all notes per note (28,000 notes: 0.003 s against 0.78 s;
    # the plot of evaluate --music --draws 8 holds 112,000).
    return (np.searchsorted(np.sort(starts), starts, "right")
            - np.searchsorted(np.sort(ends), starts, "right"))


def features(notes: np.ndarray) -> dict[str, np.ndarray]:
    """Return the per-note values each histogram is made of."""
    pitch = notes[:, 0].astype(int)
    return {
        "pitch_class": pitch % 12,
        "pitch": np.clip(pitch, 21, 108),
        "interval": np.clip(np.diff(pitch), -24, 24),
        "step": notes[1:, 1],
        "duration": notes[:, 2],
        "polyphony": np.clip(polyphony(notes), 0, 11),
        "velocity": notes[:, 3],
    }


def histogram(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Return a normalised histogram (all zeros if there are no values)."""
    counts, _ = np.histogram(values, bins=bins)
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Return the overlapping area of two normalised histograms (1: identical, 0: disjoint)."""
    return float(np.minimum(p, q).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> float:
    """Return KL(p || q) in nats, with ``eps`` added to every bin so it stays finite."""
    p = (p + eps) / (p + eps).sum()
    q = (q + eps) / (q + eps).sum()
    return float(np.sum(p * np.log(p / q)))


def failure_signatures(notes: np.ndarray) -> dict[str, float]:
    """Measure the ways small LSTMs go wrong: repeats, runs, collapsed timing, gaps."""
    pitch = notes[:, 0].astype(int)
    repeats = pitch[1:] == pitch[:-1]
    run, longest = 1, 1
    for same in repeats:
        run = run + 1 if same else 1
        longest = max(longest, run)

    def collapsed(values: np.ndarray) -> float:
        # share of the most common value (to the millisecond): 1.0 means every value is the same
        if len(values) == 0:
            return 0.0
        _, counts = np.unique(np.round(values, 3), return_counts=True)
        return float(counts.max() / len(values))

    return {
        "repeat_rate": float(repeats.mean()) if len(repeats) else 0.0,
        "longest_run": int(longest),
        "distinct_pitches": int(len(np.unique(pitch))),
        "step_collapse": collapsed(notes[1:, 1]),
        "duration_collapse": collapsed(notes[:, 2]),
        "gap_rate": float(np.mean(notes[1:, 1] >= GAP_SECONDS)) if len(notes) > 1 else 0.0,
        "step_mean": float(notes[1:, 1].mean()) if len(notes) > 1 else 0.0,
        "step_std": float(notes[1:, 1].std()) if len(notes) > 1 else 0.0,
    }


def context_keys(pitches: np.ndarray, first: int, context: int = KEY_CONTEXT,
                 classes: int = KEY_CLASSES) -> np.ndarray:
    """Return, for each note from ``first`` on, a (12,) mask of the ``classes`` commonest
    pitch classes among the ``context`` notes before it (ties: the lower class): the key
    :class:`improv.key.KeyTracker` keeps live, for every position at once."""
    onehot = np.eye(12, dtype=np.int64)[np.asarray(pitches, np.int64) % 12]
    cum = np.concatenate([np.zeros((1, 12), np.int64), np.cumsum(onehot, axis=0)])
    end = np.arange(first, len(pitches))
    counts = cum[end] - cum[np.maximum(end - context, 0)]
    top = np.argsort(-counts, axis=1, kind="stable")[:, :classes]
    mask = np.zeros_like(counts, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return mask


def out_of_key(context: np.ndarray, notes: np.ndarray) -> float:
    """Return the share of ``notes`` whose pitch class is not among the
    :data:`KEY_CLASSES` commonest of the context's last :data:`KEY_CONTEXT` notes."""
    pitches = np.concatenate([context[:, 0], notes[:1, 0]])
    key = context_keys(pitches, len(context))[0]
    return float(np.mean(~key[notes[:, 0].astype(np.int64) % 12]))


#: Motifs are this many intervals in a row.
MOTIF_INTERVALS = 3


def motif_reuse(call: np.ndarray, response: np.ndarray, n: int = MOTIF_INTERVALS) -> float:
    """Return the share of the response's interval ``n``-grams (intervals clipped to
    +-24, as :func:`improv.features.interval_class`) that occur in the call: how much
    of the call's material the response takes up, transposed or not."""
    def grams(pitches: np.ndarray) -> list[tuple]:
        iv = np.clip(np.diff(pitches.astype(np.int64)), -24, 24).tolist()
        return [tuple(iv[i:i + n]) for i in range(len(iv) - n + 1)]

    own = grams(response[:, 0])
    if not own:
        return 0.0
    heard = set(grams(call[:, 0]))
    return float(np.mean([g in heard for g in own]))


def call_response_fit(call: np.ndarray, response: np.ndarray) -> dict[str, float]:
    """How well a response stays with its call: key, register, density and motifs.

    - ``key_overlap``: overlap of the two pitch-class histograms (1: same notes of the scale);
    - ``register_shift``: semitones between the median pitches (0: same register);
    - ``density_ratio``: the response's notes per second over the call's (1: as dense);
    - ``motif_reuse``: :func:`motif_reuse` of the response.
    """
    pc_call = histogram(call[:, 0].astype(int) % 12, BINS["pitch_class"])
    pc_resp = histogram(response[:, 0].astype(int) % 12, BINS["pitch_class"])

    def density(notes: np.ndarray) -> float:
        span = notes[1:, 1].sum() + notes[-1, 2]
        return len(notes) / span if span > 0 else float("inf")

    return {
        "key_overlap": overlap(pc_call, pc_resp),
        "register_shift": float(np.median(response[:, 0]) - np.median(call[:, 0])),
        "density_ratio": density(response) / density(call),
        "motif_reuse": motif_reuse(call, response),
    }


def compare(generated: np.ndarray, real: np.ndarray) -> dict[str, dict[str, float]]:
    """Overlap area and KL(real || generated) for every feature's histogram."""
    fg, fr = features(generated), features(real)
    out = {}
    for name, bins in BINS.items():
        p, q = histogram(fr[name], bins), histogram(fg[name], bins)
        out[name] = {"overlap": overlap(p, q), "kl": kl_divergence(p, q)}
    return out


def evaluate_music(model_dir, files: list, notes: list[np.ndarray], temperatures=(1.0,),
                   seed_notes: int = 50, generate_notes: int = 200,
                   random_seed: int = 0, top_p: float = 1.0,
                   memory: float = 0.0, draws: int = 1) -> tuple[dict, dict]:
    """Continue the first ``seed_notes`` of each file and compare with what really follows.

    Returns the results and, per temperature, all generated and all real notes (for
    plots). The results hold, per temperature, the metrics over all pieces together
    (histograms of all generated against all real continuations; failure signatures and
    call-response fit averaged over pieces), the same per piece, and the real
    continuations' own failure signatures for reference. With ``memory`` above 0, the
    same again with the phrase memory (:mod:`improv.memory`) at that strength, under
    ``result["memory"]``: it learns each seed as the player's and the notes drawn as
    improv's own.

    ``draws``: each piece is continued that many times (random seeds ``random_seed``,
    ``random_seed + 1``, ...; the runs with and without the memory share them); every
    number is then the mean over the draws of what one draw gives, each draw's
    :func:`summary` is kept under ``"draws"`` (with more than one), and with the memory,
    ``"difference"`` holds its change to each summary number (with - without, draw by
    draw) as a mean and a standard error (one draw's histogram overlaps move by about
    +-0.01 on the 70 test pieces, as much as the memory changes them).
    """
    if draws < 1:
        raise InvalidValueError(f"draws must be at least 1, got {draws}")
    from improv.engine import NoteModel
    from improv.generate import generate
    from improv.memory import PhraseMemory
    from improv.sampling import Sampler, SamplingConfig

    model = NoteModel.load(model_dir)
    pieces = [(f, n) for f, n in zip(files, notes, strict=True) if len(n) >= seed_notes + 20]
    if not pieces:
        raise InvalidValueError(f"no file has the {seed_notes + 20} notes a seed and a "
                                "continuation need")
    result = {"seed_notes": seed_notes, "generate_notes": generate_notes, "pieces": len(pieces),
              "top_p": top_p, "temperatures": {}}
    reals = [n[seed_notes:seed_notes + generate_notes] for _, n in pieces]
    result["real"] = _mean([{**failure_signatures(r),
                             "out_of_key": out_of_key(n[:seed_notes], r),
                             "motif_reuse": motif_reuse(n[:seed_notes], r[:seed_notes])}
                            for (_, n), r in zip(pieces, reals, strict=True)])
    all_notes = {}
    runs = [(temperature, 0.0) for temperature in temperatures]
    if memory > 0:
        result["memory"] = {"strength": memory, "temperatures": {}}
        runs += [(temperature, memory) for temperature in temperatures]
    for temperature, strength in runs:
        per_draw, generated = [], []
        for draw in range(draws):
            sampler = Sampler(SamplingConfig(temperature=temperature, top_p=top_p),
                              seed=random_seed + draw)
            gens = [generate(model, sampler, n[:seed_notes], len(real),
                             PhraseMemory() if strength else None, strength)
                    for (_, n), real in zip(pieces, reals, strict=True)]
            per_draw.append(_judge(pieces, reals, gens, seed_notes))
            generated += gens
        run = per_draw[0] if draws == 1 else _mean_nested(per_draw)
        if draws > 1:
            run["draws"] = [summary(d) for d in per_draw]
        where = result["memory"] if strength else result
        where["temperatures"][str(temperature)] = run
        if strength:
            alone = result["temperatures"][str(temperature)]
            result["memory"].setdefault("difference", {})[str(temperature)] = _difference(
                alone.get("draws", [summary(alone)]), run.get("draws", [summary(run)]))
        else:
            all_notes[temperature] = (np.concatenate(generated), np.concatenate(reals))
    return result, all_notes


def _judge(pieces: list, reals: list[np.ndarray], generated: list[np.ndarray],
           seed_notes: int) -> dict:
    """One draw's results: all pieces' histograms together, signatures and call-response
    fit averaged over the pieces, and each piece's own."""
    per_piece = {}
    for (f, n), real, gen in zip(pieces, reals, generated, strict=True):
        seed = n[:seed_notes]
        per_piece[str(f.path)] = {
            "compare": compare(gen, real),
            "signatures": {**failure_signatures(gen), "out_of_key": out_of_key(seed, gen)},
            "call_response": call_response_fit(seed, gen[:seed_notes])}
    return {"compare": compare(np.concatenate(generated), np.concatenate(reals)),
            "signatures": _mean([p["signatures"] for p in per_piece.values()]),
            "call_response": _mean([p["call_response"] for p in per_piece.values()]),
            "pieces": per_piece}


def _mean(dicts: list[dict]) -> dict:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


def _mean_nested(dicts: list[dict]) -> dict:
    """The mean of dicts of the same nested shape, number by number."""
    return {k: _mean_nested([d[k] for d in dicts]) if isinstance(dicts[0][k], dict)
            else float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


def _difference(without: list[dict], with_memory: list[dict]) -> dict:
    """Each summary number's change, draw by draw (the same random seeds): its mean and
    standard error (None from one draw)."""
    out = {}
    for key in with_memory[0]:
        change = np.array([b[key] - a[key] for a, b in zip(without, with_memory, strict=True)])
        error = float(change.std(ddof=1) / np.sqrt(len(change))) if len(change) > 1 else None
        out[key] = {"mean": float(change.mean()), "standard_error": error}
    return out


def summary(per_temperature: dict) -> dict:
    """Return one row of headline numbers from a temperature's results."""
    c, sig, fit = (per_temperature["compare"], per_temperature["signatures"],
                   per_temperature["call_response"])
    return {"pitch_overlap": c["pitch"]["overlap"], "pitch_class_overlap":
            c["pitch_class"]["overlap"], "interval_overlap": c["interval"]["overlap"],
            "step_overlap": c["step"]["overlap"], "duration_overlap": c["duration"]["overlap"],
            "velocity_overlap": c["velocity"]["overlap"], "pitch_kl": c["pitch"]["kl"],
            "repeat_rate": sig["repeat_rate"],
            "longest_run": sig["longest_run"], "distinct_pitches": sig["distinct_pitches"],
            "step_std": sig["step_std"], "key_overlap": fit["key_overlap"],
            "out_of_key": sig["out_of_key"], "motif_reuse": fit["motif_reuse"]}
