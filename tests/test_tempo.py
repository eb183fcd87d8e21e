"""The onset tempo tracker on synthetic grids and real performances with ASAP beats."""

from __future__ import annotations

import numpy as np
import pytest

from improv.tempo import TempoEstimate, TempoTracker, TrackerConfig
from improv.tempo_eval import BEATS, Call, asap_calls, judge, synthetic_call
from tests.conftest import DATA


def track(onsets) -> TempoEstimate | None:
    tracker = TempoTracker()
    for t in onsets:
        tracker.add(float(t))
    return tracker.estimate()


@pytest.mark.parametrize("bpm", [60.0, 90.0, 120.0, 150.0, 180.0])
def test_a_metronome_is_tracked_with_its_phase(bpm):
    period = 60 / bpm
    est = track(3.0 + period * np.arange(12))
    assert est.bpm / bpm in (pytest.approx(1, rel=0.01), pytest.approx(2, rel=0.01),
                             pytest.approx(0.5, rel=0.01))
    start = est.beat_after(3.0 + period * 11 + 0.6)
    assert abs((start - 3.0) / period - round((start - 3.0) / period)) * period < 0.005


def test_chords_are_one_event_and_too_few_events_give_none():
    tracker = TempoTracker()
    for k in range(3):
        for spread in (0.0, 0.01, 0.02):
            tracker.add(1.0 + 0.5 * k + spread)
    assert len(tracker.events()[0]) == 3 and tracker.estimate() is None
    tracker.add(2.5)
    assert tracker.estimate().bpm == pytest.approx(120, rel=0.02)
    tracker.clear()
    assert len(tracker) == 0 and tracker.estimate() is None


def test_a_fixed_period_estimates_only_the_phase():
    tracker = TempoTracker()
    rng = np.random.default_rng(4)
    for k in range(6):  # an accented beat, an eighth and a sixteenth at 60 bpm
        for pos, weight in ((0.0, 2.0), (0.5, 1.0), (0.75, 1.0)):
            tracker.add(2.0 + k + pos + rng.normal(0, 0.01), weight)
    est = tracker.estimate(period=1.0)
    assert est.period == 1.0
    assert abs(est.beat_time - 2.0 - round(est.beat_time - 2.0)) < 0.015


def test_synthetic_calls_60_to_180_bpm_within_4_percent_or_double_or_half():
    """Seeded 8-beat calls (jitter, chords, missing and extra notes): measured 77.5% here
    (16-beat calls do better: 86-89% over 800 calls in ``tempo_eval``). Answers starting
    within 20 ms of the call's beat: 62.5% here, 55.8% before the accent phase and the
    lattice refit (improv.tempo, step 4)."""
    rng = np.random.default_rng(7)
    results = [judge(synthetic_call(rng, float(rng.uniform(60, 180)))) for _ in range(120)]
    good = [abs(r.phase_ms) for r in results if r.level in ("right", "double", "half")]
    assert len(good) / len(results) >= 0.75
    assert np.median(good) < 12  # ms
    on_beat = [r for r in results if r.level in ("right", "double", "half")
               and abs(r.beat_ms) <= 20]
    assert len(on_beat) / len(results) >= 0.6


def asap_steady(source: str) -> list[Call]:
    return [c for c in asap_calls() if c.source.endswith(source) and c.steady]


@pytest.mark.parametrize("piece", ["bwv_846", "bwv_858", "bwv_867", "bwv_875"])
def test_real_fugues_steady_passages(piece):
    """Real performances (tests/data) against ASAP's beats: tempo at some metrical level."""
    calls = asap_steady(piece)
    assert len(calls) >= 10
    results = [judge(c) for c in calls]
    good = [r for r in results if r.level in ("right", "double", "half")]
    assert len(good) / len(results) >= 0.75
    assert np.median([abs(r.phase_ms) for r in good]) < 40


@pytest.mark.corpus
def test_real_chopin_etude_validation_piece():
    if not (DATA / "maestro-asap" / "Chopin" / "Etudes_op_10" / "4").is_dir():
        pytest.skip("Chopin Op. 10 No. 4 not in ../shared/data/maestro-asap")
    assert (BEATS / "maestro-asap" / "Chopin").is_dir()
    results = [judge(c) for c in asap_steady("Etudes_op_10/4")]
    good = [r for r in results if r.level in ("right", "double", "half")]
    assert len(results) >= 30 and len(good) / len(results) >= 0.85


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 0}, "window"), ({"min_bpm": 200, "max_bpm": 100}, "below max_bpm"),
    ({"chord_merge": 0.5}, "chord_merge"), ({"min_events": 1}, "min_events"),
    ({"ambiguity": 0}, "ambiguity"),
])
def test_tracker_config_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


def test_estimate_checks_its_fields():
    with pytest.raises(ValueError, match="period"):
        TempoEstimate(period=0.0, beat_time=0.0, confidence=1.0, events=4)


@pytest.mark.parametrize("seed", range(5))
def test_a_player_who_drifts_is_followed_by_a_shorter_memory(seed, monkeypatch):
    """A call that speeds up (16 beats from 100 bpm, each 0.3% shorter, +-5 ms): the next
    beat is predicted with the half-life that best predicted the call's own last beats,
    which lands nearer than the configured half-life alone (a fit that weighs six beats
    back: 33 ms off at the median of 20 seeds, against 16 ms)."""
    import improv.tempo as tempo

    rng = np.random.default_rng(seed)
    beats = 1.0 + np.concatenate([[0.0], np.cumsum(0.6 * 0.997 ** np.arange(16))])
    onsets = beats[:-1] + rng.uniform(-0.005, 0.005, len(beats) - 1)

    def miss() -> float:  # from the beat after the call, the next one it predicts
        est = track(onsets)
        assert est.bpm == pytest.approx(60 / (beats[-1] - beats[-2]), rel=0.05)
        return abs(est.beat_after(onsets[-1] + 0.1) - beats[-1])

    chosen = miss()
    monkeypatch.setattr(tempo, "_HALFLIVES", ())
    fixed = miss()
    assert chosen < 0.025 and chosen < fixed, (chosen, fixed)


@pytest.mark.parametrize("n", [4, 6, 12])
def test_the_configured_half_life_when_the_last_beats_cannot_tell(n):
    """An exact metronome predicts its last beats equally with every half-life, and a short
    call has too few beats before its last ones: either way the configured one is used."""
    tracker = TempoTracker(TrackerConfig(halflife=5.0))
    for t in 1.0 + 0.5 * np.arange(n):
        tracker.add(float(t))
    times, weights = tracker.events()
    rel = times - times[-1]
    assert tracker._choose_halflife(rel, weights, 0.5, 0.0, False) == 5.0


def test_add_refuses_a_time_that_is_not_finite():
    tracker = TempoTracker()
    with pytest.raises(ValueError, match="finite"):
        tracker.add(float("nan"))
    assert len(tracker) == 0


def test_a_stamp_of_another_clock_does_not_stop_the_window_moving():
    """One wall-clock stamp among monotonic ones sat at the front of the onsets and kept
    every later one (5,000 after it: 5,001 kept, and no estimate); the next onset, more than
    two windows before it, now starts afresh."""
    tracker = TempoTracker()
    t = 100.0
    for _ in range(16):
        tracker.add(t)
        t += 0.5
    tracker.add(1.8e9)  # time.time() in 2027
    for _ in range(500):
        tracker.add(t)
        t += 0.5
    assert len(tracker) <= 2 * tracker.config.window / 0.5 + 1
    assert tracker.estimate().bpm == pytest.approx(120, rel=0.01)
