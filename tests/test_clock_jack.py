"""Time-keeping over real JACK ports with an outside clock sender (improv.clocksend, its own
process): answers on the beat and on the 1/16 grid, 120 -> 90 bpm followed, transport stop.

One run of the scenario of ``improv bench clock`` (improv.clockbench; more only when the clock
came through broken, see ``measured``); the tolerances come from
the JACK period (P = 1.33 ms, period 64 at 48 kHz) and leave room for a loaded 2-core machine:
a pulse is 20.8 ms at 120 bpm, so a note within 10 ms of a beat is on it, not a pulse off."""

from __future__ import annotations

import json

import numpy as np
import pytest

from improv.clockbench import measure, run_clock

PERIOD_MS = 64 / 48000 * 1e3


#: Runs of the scenario at most: see ``measured``.
ATTEMPTS = 3


def _on_the_beat(m: dict) -> bool:
    """The timing checks of test_answers_start_on_the_beat_and_lie_on_the_grid."""
    firsts, grid = np.abs(m["first_note_from_beat_ms"]), np.abs(m["note_on_from_grid_ms"])
    return (len(firsts) == 3 and bool(np.all(firsts <= 10)) and len(grid) > 0
            and np.median(grid) <= 3 * PERIOD_MS and np.mean(grid <= 10) >= 0.9)


@pytest.fixture(scope="module")
def measured(jack, tmp_path_factory):
    """One run of the scenario, or up to ATTEMPTS when the machine failed it. A JACK client
    that misses its cycles loses (or repeats) their messages, the tap beside improv as much
    as improv. improv counts the clock's pulses through such losses (PulseSmoother, tested
    on synthetic clocks), but not through all: a pulse lost just before the change of
    tempo cannot be told from the change (seen once here, beside a CPU burner), and
    improv's answers then lie a pulse (28 ms) off the beat. So a run whose answers are off
    the beat is run again only when the pulses the tap heard, counted by improv's own beat
    clock, end off the sender's count too (clockbench.heard_clock_error): the clock came
    through broken. Off the beat with the clock heard whole fails."""
    folder = tmp_path_factory.mktemp("clock")
    for attempt in range(1, ATTEMPTS + 1):
        raw = run_clock(answer_notes=16)
        path = folder / f"raw{attempt}.json"  # what a failure is read from
        path.write_text(json.dumps(raw))
        m = {**measure(raw), "raw": str(path), "attempt": attempt}
        broken = abs(m["heard_clock_error_pulses"] or 0.0) >= 0.5
        if _on_the_beat(m) or not broken:
            return m
    return m


def test_improv_follows_the_outside_clock(measured):
    summary = {k: measured[k] for k in ("follow_beats", "status_events", "exit_status")}
    assert measured["exit_status"] == 0 and measured["status_events"] > 100, summary
    assert np.median(measured["tempo_error_120_pct"]) < 0.5, summary
    assert np.median(measured["tempo_error_90_pct"]) < 0.5, summary
    # The issue asks for 1% within 2 beats (1.3 measured); a stalled status may add one here.
    assert measured["follow_beats"] is not None and measured["follow_beats"] <= 3, summary


def test_answers_start_on_the_beat_and_lie_on_the_grid(measured):
    # Each phrase's whole answer was waited for (run_clock); the stop came in the last one.
    notes = measured["answer_notes"]
    assert measured["answers"] == 3 and notes[:2] == [16, 16] and notes[2] >= 3, notes
    # Two JACK hops and a scheduler's send: a few periods. A pulse is 21-28 ms here, so a
    # pulse lost on the way into improv and counted as the next one (improv numbers pulses
    # by time: beatclock.PulseSmoother) shows as 20 ms or more.
    firsts = np.abs(measured["first_note_from_beat_ms"])
    assert np.all(firsts <= 10), (firsts, measured["raw"], measured["attempt"])
    grid = np.abs(measured["note_on_from_grid_ms"])
    assert np.median(grid) <= 3 * PERIOD_MS, (grid, measured["raw"])
    assert np.mean(grid <= 10) >= 0.9, (grid, measured["raw"])


def test_a_transport_stop_silences_improv_at_once(measured):
    assert measured["note_ons_after_stop"] == 0 and measured["stuck"] == []
    assert measured["stop_to_last_note_ms"] <= 50
