"""Measure the onset tempo tracker (:mod:`improv.tempo`) and the MIDI-clock smoother.

``python -m improv.tempo_eval`` prints a table: for calls played on a steady grid, the share
whose estimated tempo is within 4% of the truth, the share at its double or half (shown as
such by the status line), and the beat-phase error of the answer's start; then the clock's
follow time after a 120 -> 90 bpm change, its smoothed jitter, and the cost per onset and per
clock pulse. Calls come from three sources:

- ``synthetic``: rhythms drawn on a 4/4 grid (quarters to sixteenths, triplets, rests, chords
  spread up to 25 ms, 15 ms timing jitter, 5% missing and 3% extra notes) at 60-180 bpm.
- ``pop909``: the rhythms of POP909 arrangements (their MIDI is on a 1/16 grid with one tempo)
  re-rendered at 60-180 bpm with the same human timing; needs ``../shared/data/pop909``.
- ``asap``: real performances with ASAP's beat annotations (``tests/data/beats``): each call is
  8 annotated beats; "steady" calls are those whose beats vary by under 5% (std / mean of the
  intervals, the call and the 2 beats after it).

The answer is taken to start on the first estimated beat at least ``GAP`` seconds after the
call's last onset (improv waits for a silence before it answers). Its error is measured against
the beats of the grid the call set up (a line through its last 4 true beats, extrapolated), as a
musician hears it: a double-tempo estimate that starts on the off-beat is half a beat off. The
last column keeps the earlier, lenient measure (against the true half beats when the estimate is
the double tempo) for comparison.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from improv.tempo import TempoTracker, TrackerConfig

REPO = Path(__file__).resolve().parent.parent
BEATS = REPO / "tests" / "data" / "beats"
MIDI_ROOTS = (REPO / "tests" / "data", REPO.parent / "shared" / "data")
POP909 = REPO.parent / "shared" / "data" / "pop909"
#: Seconds between the call's last onset and the earliest start of the answer.
GAP = 0.6
#: A tempo within this ratio of the truth (or its double or half) is right.
TOLERANCE = 0.04


@dataclass(frozen=True)
class Call:
    """Onsets of one call and its true beats (seconds)."""

    onsets: np.ndarray
    beats: np.ndarray
    steady: bool = True
    source: str = ""
    #: Salience of each onset for :meth:`TempoTracker.add` (key velocity / 64), or None: 1.
    weights: np.ndarray | None = None

    def call_grid(self) -> tuple[float, float]:
        """The call's own beat grid at its end: (period, time of its last beat).

        A least-squares line through the last 4 true beats of the call: on a steady grid that
        is the grid; in a real performance it is the beat the call set up, not the one the
        player went on to take (ASAP's own beats, extrapolated 2 beats ahead this way, miss the
        performed beat by 31-102 ms p50 in these performances: rubato, not tracking error).
        """
        before = self.beats[self.beats <= self.onsets[-1] + 0.05][-4:]
        slope, icpt = np.polyfit(np.arange(len(before)), before, 1)
        return float(slope), float(icpt + slope * (len(before) - 1))


@dataclass(frozen=True)
class Result:
    """One call's outcome."""

    level: str  # "right", "double", "half", "wrong" or "none"
    ratio: float
    phase_ms: float  # error of the answer's start against the true beats at the level
    #: Error of the answer's start against the call's own beats (not their halves): what a
    #: musician hears; a double-tempo estimate that starts on the off-beat is ~half a beat off.
    beat_ms: float = math.nan


def humanise(rng: np.random.Generator, grid: np.ndarray, period: float, jitter: float = 0.015,
             missing: float = 0.05, extra: float = 0.03, chords: float = 0.3) -> np.ndarray:
    """Note-on times from grid positions (beats): timing jitter, chords, missing/extra notes."""
    out = []
    for g in grid:
        if rng.random() < missing:
            continue
        t = g * period + rng.normal(0, jitter)
        out.append(t)
        if rng.random() < chords:
            out.extend(t + rng.uniform(0, 0.025, size=int(rng.integers(1, 4))))
    span = grid.max() * period
    n_extra = rng.binomial(len(grid), extra)
    out.extend(rng.uniform(0, span, size=n_extra))
    return np.sort(np.array(out))


#: One beat's rhythms (positions within the beat; None: the beat is held from before).
PATTERNS = ([0.0], [0.0, 0.5], [0.0, 0.75], [0.0, 0.25, 0.5, 0.75], [0.5], [0.0, 1 / 3, 2 / 3],
            [0.0, 0.5, 0.75], None)


def synthetic_call(rng: np.random.Generator, bpm: float, beats: int = 8) -> Call:
    """A call of ``beats`` beats on a 4/4 grid at ``bpm``, starting on a downbeat."""
    period = 60.0 / bpm
    grid = [0.0]
    for b in range(beats):
        pat = PATTERNS[int(rng.integers(len(PATTERNS)))]
        if pat is None or (b == 0 and pat == [0.5]):
            continue
        grid.extend(b + p for p in pat if b + p > 0)
    grid.append(float(beats))  # the call ends on a beat
    onsets = humanise(rng, np.array(sorted(set(grid))), period)
    offset = rng.uniform(1, 5)
    return Call(onsets + offset, offset + period * np.arange(-1, beats + 12), source="synthetic")


def pop909_calls(rng: np.random.Generator, files: int = 40, per_file: int = 4,
                 beats: int = 8) -> list[Call]:
    """Calls with the rhythms of POP909 songs, rendered at random tempos 60-180 bpm."""
    import pretty_midi

    calls = []
    for path in sorted(POP909.glob("*.mid"))[::max(1, 909 // files)][:files]:
        pm = pretty_midi.PrettyMIDI(str(path))
        ticks = np.array(sorted({pm.time_to_tick(n.start) for i in pm.instruments
                                 for n in i.notes}))
        res = pm.resolution
        # The beat is the commonest residue of the onsets modulo a quarter note.
        residues = np.bincount(ticks % res, minlength=res)
        grid = (ticks - int(residues.argmax())) / res  # in beats
        for _ in range(per_file):
            start = float(np.floor(rng.uniform(grid.min() + 1, grid.max() - beats - 2)))
            part = grid[(grid >= start) & (grid <= start + beats)] - start
            if len(part) < 6:
                continue
            bpm = float(rng.uniform(60, 180))
            period = 60 / bpm
            onsets = humanise(rng, part, period, missing=0.0, extra=0.0, chords=0.0)
            calls.append(Call(onsets, period * np.arange(-1, beats + 12), source="pop909"))
    return calls


def read_beats(path: Path) -> np.ndarray:
    """Beat times from a ``*_beats.txt`` file (``time label`` lines)."""
    return np.array([float(line.split()[0]) for line in path.read_text().splitlines()
                     if line.strip()])


def asap_calls(beats: int = 8, hop: int = 2) -> list[Call]:
    """Calls of ``beats`` annotated beats from every performance with a beat file."""
    from improv.midifile import read_midi

    calls = []
    for beat_file in sorted(BEATS.rglob("*_beats.txt")):
        rel = beat_file.relative_to(BEATS)
        midi_rel = rel.with_name(rel.name.replace("_beats.txt", ".mid"))
        midi = next((r / midi_rel for r in MIDI_ROOTS if (r / midi_rel).is_file()), None)
        if midi is None:
            continue
        notes = read_midi(midi)
        onsets, velocity = notes["start"], notes["velocity"] / 64.0
        true = read_beats(beat_file)
        for k in range(0, len(true) - beats - 3, hop):
            lo, hi = true[k] - 0.05, true[k + beats] + 0.05
            sel = (onsets >= lo) & (onsets <= hi)
            part = onsets[sel]
            if len(part) < 6:
                continue
            ibi = np.diff(true[k:k + beats + 3])
            steady = float(ibi.std() / ibi.mean()) < 0.05
            calls.append(Call(part, true, steady=steady, source=str(rel.parent),
                              weights=velocity[sel]))
    return calls


def judge(call: Call, config: TrackerConfig | None = None, velocity: bool = False) -> Result:
    """Run the tracker over one call and compare with the truth.

    ``velocity``: pass the call's key velocities as onset weights (accents). Off by default: on
    the ASAP steady calls it lowered the starts within 20 ms of a beat from 50.0% to 48.3%
    (the comb then favours loud notes, not the beat; measured before the half-life was chosen
    per call), so the daemon passes weight 1.
    """
    tracker = TempoTracker(config)
    use = velocity and call.weights is not None
    weights = call.weights if use else np.ones(len(call.onsets))
    for t, w in zip(call.onsets, weights, strict=True):
        tracker.add(float(t), float(w))
    est = tracker.estimate()
    if est is None:
        return Result("none", math.nan, math.nan)
    true_period, true_beat = call.call_grid()
    ratio = est.period / true_period  # > 1: slower than the truth
    level = "wrong"
    for name, factor in (("right", 1.0), ("half", 2.0), ("double", 0.5)):
        if abs(ratio / factor - 1) <= TOLERANCE:
            level = name
    start = est.beat_after(float(call.onsets[-1]) + GAP)
    step = true_period / 2 if level == "double" else true_period
    phase = float(start - true_beat - round((start - true_beat) / step) * step)
    beat = float(start - true_beat - round((start - true_beat) / true_period) * true_period)
    return Result(level, 1 / ratio, phase * 1000, beat * 1000)


def summarise(name: str, results: list[Result]) -> str:
    """One table row."""
    n = len(results)
    levels = [r.level for r in results]
    right, double, half = (levels.count(x) / n for x in ("right", "double", "half"))
    ok = [r for r in results if r.level in ("right", "double", "half")]
    good = [abs(r.beat_ms) for r in ok]
    p50, p99 = (np.percentile(good, [50, 99]) if good else (math.nan, math.nan))
    within = sum(1 for g in good if g <= 20) / n
    lenient = sum(1 for r in ok if abs(r.phase_ms) <= 20) / n
    return (f"| {name} | {n} | {right:.1%} | {double:.1%} | {half:.1%} | "
            f"{right + double + half:.1%} | {p50:.1f} | {p99:.1f} | {within:.1%} | "
            f"{lenient:.1%} |")


def tracker_table(config: TrackerConfig | None = None, seed: int = 0,
                  pop909: bool = True) -> list[str]:
    """The tracker's rows: synthetic per tempo band, POP909 rhythms, ASAP steady and all."""
    rng = np.random.default_rng(seed)
    rows = ["| calls | n | tempo within 4% | double | half | any of the three | "
            "beat error p50 ms | p99 ms | start within 20 ms of a beat | "
            "(or of a half beat when double) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    everything: list[Result] = []
    for lo, hi in ((60, 90), (90, 120), (120, 150), (150, 180)):
        calls = [synthetic_call(rng, float(rng.uniform(lo, hi)), beats=int(rng.choice([8, 16])))
                 for _ in range(200)]
        res = [judge(c, config) for c in calls]
        everything += res
        rows.append(summarise(f"synthetic {lo}-{hi} bpm", res))
    rows.append(summarise("synthetic 60-180 bpm, all", everything))
    if pop909 and POP909.is_dir():
        rows.append(summarise("POP909 rhythms 60-180 bpm", [judge(c, config)
                                                            for c in pop909_calls(rng)]))
    calls = asap_calls()
    if calls:
        res = [judge(c, config) for c in calls]
        steady = [r for r, c in zip(res, calls, strict=True) if c.steady]
        rows.append(summarise("ASAP real, steady passages", steady))
        rows.append(summarise("ASAP real, all 8-beat calls", res))
        for src in sorted({c.source for c in calls}):
            mine = [r for r, c in zip(res, calls, strict=True) if c.source == src and c.steady]
            rows.append(summarise(f"  {src}, steady", mine))
    return rows


def timing(seed: int = 0) -> str:
    """Cost of ``add`` per onset and of ``estimate`` on a 10 s window (median of 200)."""
    rng = np.random.default_rng(seed)
    call = synthetic_call(rng, 120.0, beats=16)
    tracker = TempoTracker()
    t0 = time.perf_counter()
    for _ in range(50):
        for t in call.onsets:
            tracker.add(float(t))
    per_add = (time.perf_counter() - t0) / (50 * len(call.onsets))
    costs = []
    for _ in range(200):
        t0 = time.perf_counter()
        tracker.estimate()
        costs.append(time.perf_counter() - t0)
    n_events = len(tracker.events()[0])
    return (f"tracker: add {per_add * 1e6:.1f} us per onset; estimate {np.median(costs) * 1e3:.2f}"
            f" ms median, {np.percentile(costs, 99) * 1e3:.2f} ms p99 ({n_events} events)")


def clock_pulses(rng: np.random.Generator, tempos: list[tuple[float, int]], jitter: float,
                 start: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pulse arrival times (uniform +-``jitter`` s) and true times for (bpm, beats) segments."""
    true, t = [], start
    for bpm, beats in tempos:
        for _ in range(beats * 24):
            true.append(t)
            t += 60.0 / bpm / 24
    true_arr = np.array(true)
    return true_arr + rng.uniform(-jitter, jitter, len(true_arr)), true_arr


def clock_follow(window: int = 36, jitter: float = 0.003, seed: int = 0) -> dict[str, float]:
    """120 bpm for 8 beats then 90 bpm: beats until the tempo stays within 1%, and the jitter."""
    from improv.beatclock import BeatClock, ClockConfig

    rng = np.random.default_rng(seed)
    follow, tempo_err, phase_err = [], [], []
    for _ in range(20):
        arrive, true = clock_pulses(rng, [(120.0, 8), (90.0, 8)], jitter)
        clock = BeatClock(ClockConfig(pulse_window=window))
        clock.midi([0xFA], arrive[0] - 0.01)
        change = 8 * 24
        last_bad = change
        for i, t in enumerate(arrive):
            clock.midi([0xF8], float(t))
            bpm = clock.tempo(float(t))
            if bpm is None:
                continue
            if i >= change and abs(bpm / 90 - 1) > 0.01:
                last_bad = i + 1
            if 3 * 24 <= i < change:
                tempo_err.append(bpm / 120 - 1)
                phase_err.append(clock.time_at(i / 24, float(t)) - true[i])
        follow.append((last_bad - change) / 24)
    return {"follow_beats_max": float(np.max(follow)),
            "follow_beats_p50": float(np.median(follow)),
            "tempo_jitter_pct_std": float(np.std(tempo_err) * 100),
            "tempo_jitter_pct_max": float(np.max(np.abs(tempo_err)) * 100),
            "phase_jitter_ms_std": float(np.std(phase_err) * 1000),
            "phase_jitter_ms_max": float(np.max(np.abs(phase_err)) * 1000)}


def clock_table() -> list[str]:
    """Rows for the clock smoother at windows of 12, 24 and 48 pulses, jitter 2 and 4 ms."""
    rows = ["| pulse window | jitter | 120->90 within 1% after (beats, p50 / max) | "
            "tempo std / max % | beat time std / max ms |", "|---|---|---|---|---|"]
    for window in (12, 24, 36, 48):
        for jitter in (0.002, 0.004):
            r = clock_follow(window, jitter)
            rows.append(f"| {window} | +-{jitter * 1000:.0f} ms | {r['follow_beats_p50']:.2f} / "
                        f"{r['follow_beats_max']:.2f} | {r['tempo_jitter_pct_std']:.2f} / "
                        f"{r['tempo_jitter_pct_max']:.2f} | {r['phase_jitter_ms_std']:.2f} / "
                        f"{r['phase_jitter_ms_max']:.2f} |")
    return rows


def clock_timing() -> str:
    """Cost of one pulse through :meth:`BeatClock.midi` plus a tempo read."""
    from improv.beatclock import BeatClock

    arrive, _ = clock_pulses(np.random.default_rng(0), [(120.0, 100)], 0.003)
    clock = BeatClock()
    clock.midi([0xFA], 0.0)
    t0 = time.perf_counter()
    for t in arrive:
        clock.midi([0xF8], float(t))
        clock.tempo(float(t))
    per = (time.perf_counter() - t0) / len(arrive)
    return f"clock: {per * 1e6:.1f} us per pulse (midi() and tempo())"


def main(argv: list[str] | None = None) -> None:
    """Print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pop909", action="store_true", help="skip the POP909 rhythms")
    args = ap.parse_args(argv)
    for row in tracker_table(seed=args.seed, pop909=not args.no_pop909):
        print(row)
    print()
    for row in clock_table():
        print(row)
    print()
    print(timing(args.seed))
    print(clock_timing())


if __name__ == "__main__":
    main()
