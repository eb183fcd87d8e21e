"""PNG plots: piano roll, note distributions, training history.

Uses matplotlib's Agg back-end, so it works without a screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from improv.errors import InvalidValueError
from improv.outfile import replacing


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_piano_roll(notes: pd.DataFrame, path: str | Path, count: int | None = None,
                    title: str = "") -> Path:
    """Draw the first ``count`` notes (all if None) as horizontal bars: time by pitch."""
    plt = _pyplot()
    notes = notes if count is None else notes.iloc[:count]
    fig, ax = plt.subplots(figsize=(20, 4))
    plot_pitch = np.stack([notes["pitch"], notes["pitch"]])
    plot_time = np.stack([notes["start"], notes["end"]])
    ax.plot(plot_time, plot_pitch, color="b", marker=".")
    ax.set_xlabel("Time [s]")
    ax.set_ylabel("Pitch")
    ax.set_title(title or (f"First {count} notes" if count else "Whole track"))
    return _save(fig, path)


def plot_distributions(notes: pd.DataFrame, path: str | Path, drop_percentile: float = 2.5,
                       title: str = "") -> Path:
    """Histogram pitch, step and duration (steps and durations above the
    ``100 - drop_percentile`` percentile left out, as the tutorial does)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    axes[0].hist(notes["pitch"], bins=np.arange(0, 129, 1) - 0.5)
    axes[0].set_xlabel("pitch")
    for ax, col in zip(axes[1:], ("step", "duration"), strict=False):
        cut = np.percentile(notes[col], 100 - drop_percentile)
        ax.hist(notes[col][notes[col] <= cut], bins=np.linspace(0, cut, 21))
        ax.set_xlabel(f"{col} (s)")
    axes[0].set_ylabel("notes")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_history(history: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """Plot total and per-head loss per epoch, training against validation."""
    plt = _pyplot()
    panels = ("loss", "pitch_loss", "step_loss", "duration_loss")
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for ax, key in zip(axes, panels, strict=False):
        plotted = False
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
                plotted = True
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
        if plotted:  # (an empty legend is a matplotlib warning)
            ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_music(generated: np.ndarray, real: np.ndarray, path: str | Path,
               title: str = "") -> Path:
    """Histograms of real and generated notes side by side, one panel per feature."""
    from improv.musicstats import BINS, features, histogram

    plt = _pyplot()
    fg, fr = features(generated), features(real)
    fig, axes = plt.subplots(1, len(BINS), figsize=(4 * len(BINS), 3.5))
    for ax, (name, bins) in zip(axes, BINS.items(), strict=False):
        x = np.arange(len(bins) - 1)
        ax.bar(x - 0.2, histogram(fr[name], bins), width=0.4, label="real")
        ax.bar(x + 0.2, histogram(fg[name], bins), width=0.4, label="generated")
        ax.set_title(name)
        ax.set_xticks([])
    axes[0].legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


#: The bars of :func:`plot_music_comparison`: label -> key of a summary row.
MUSIC_METRICS = {"pitch": "pitch_overlap", "pitch class": "pitch_class_overlap",
                 "interval": "interval_overlap", "step": "step_overlap",
                 "duration": "duration_overlap", "velocity": "velocity_overlap",
                 "key fit": "key_overlap"}


def plot_music_comparison(rows: dict[str, dict], path: str | Path) -> Path:
    """Bars of how close each model's music is to the real continuations (1 = the same).

    ``rows`` maps a label to a summary row of :func:`improv.musicstats.summary`.
    """
    plt = _pyplot()
    metrics = MUSIC_METRICS
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(metrics))
    for i, (label, row) in enumerate(rows.items()):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, [row[k] for k in metrics.values()],
               width=width, label=label)
    ax.set_xticks(x, list(metrics))
    ax.set_ylabel("overlap with real music (1 = same)")
    ax.set_ylim(0, 1.2)  # room above the bars for the legend
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set_title("Generated vs real continuations of held-out pieces")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    return _save(fig, path)


def check_image_path(path: str | Path) -> None:
    """Refuse, before any work, a file name whose type matplotlib cannot write (it picks
    the type by the extension) and a folder (InvalidValueError)."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.is_dir():
        raise InvalidValueError(f"{path}: a folder, not a file to write")
    if path.suffix[1:].lower() not in kinds:
        raise InvalidValueError(f"{path}: not an image file name (end it in .png, .pdf, "
                                f".svg or another of {', '.join(sorted(kinds))})")


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    check_image_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=80, format=path.suffix[1:].lower())
    _pyplot().close(fig)
    return path
