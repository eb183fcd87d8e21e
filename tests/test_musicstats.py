"""Music metrics on hand-made note lists whose answers are known."""

import numpy as np
import pytest

from improv.musicstats import (
    call_response_fit,
    compare,
    failure_signatures,
    histogram,
    kl_divergence,
    overlap,
    polyphony,
)


def notes(pitches, step=0.25, duration=0.2, velocity=80):
    n = len(pitches)
    return np.stack([pitches, np.full(n, step), np.full(n, duration), np.full(n, velocity)],
                    axis=1).astype(float)


def test_overlap_and_kl():
    p = np.array([0.5, 0.5, 0.0])
    assert overlap(p, p) == 1.0 and kl_divergence(p, p) == pytest.approx(0.0, abs=1e-9)
    assert overlap(p, np.array([0.0, 0.0, 1.0])) == 0.0
    q = np.array([0.25, 0.75, 0.0])
    assert overlap(p, q) == pytest.approx(0.75)
    want = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert kl_divergence(p, q) == pytest.approx(want, rel=1e-4)
    assert histogram(np.array([0, 0, 1, 2]), np.arange(4) - 0.5).tolist() == [0.5, 0.25, 0.25]


def test_failure_signatures():
    sig = failure_signatures(notes([60, 60, 60, 62, 64, 64]))
    assert sig["repeat_rate"] == pytest.approx(3 / 5)
    assert sig["longest_run"] == 3 and sig["distinct_pitches"] == 3
    assert sig["step_collapse"] == 1.0 and sig["duration_collapse"] == 1.0
    varied = notes([60, 62, 64, 65])
    varied[:, 1] = [0, 0.1, 0.2, 3.0]
    varied[:, 2] = [0.1, 0.2, 0.3, 0.4]
    sig = failure_signatures(varied)
    assert sig["step_collapse"] == pytest.approx(1 / 3) and sig["duration_collapse"] == 0.25
    assert sig["gap_rate"] == pytest.approx(1 / 3) and sig["repeat_rate"] == 0.0


def test_polyphony_counts_sounding_notes():
    chord_then_melody = np.array([[60, 0, 1.0, 80], [64, 0, 1.0, 80], [67, 0, 1.0, 80],
                                  [72, 0.5, 0.2, 80], [74, 1.0, 0.2, 80]], float)
    assert polyphony(chord_then_melody).tolist() == [3, 3, 3, 4, 1]
    # a note that ends as the next begins no longer sounds then; one of no length never does
    edges = np.array([[60, 0, 0.5, 80], [62, 0.5, 0.0, 80], [64, 0, 0.25, 80],
                      [65, 0.25, 0.1, 80]], float)
    assert polyphony(edges).tolist() == [1, 1, 1, 1]


def test_polyphony_agrees_with_counting_every_note():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        notes = np.stack([np.full(n, 60.0), rng.choice([0, 0, 0.1, 0.25], n),
                          rng.choice([0, 0.02, 0.1, 0.3, 1.0], n), np.full(n, 64.0)], axis=1)
        starts = np.cumsum(notes[:, 1])
        ends = starts + notes[:, 2]
        counted = [int(np.sum((starts <= s) & (ends > s))) for s in starts]
        assert polyphony(notes).tolist() == counted


def test_call_response_fit():
    call = notes([60, 62, 64, 65, 67])  # C major, around E4
    same = call_response_fit(call, notes([64, 65, 67, 60, 62]))
    assert same["key_overlap"] == 1.0 and same["register_shift"] == 0.0
    assert same["density_ratio"] == pytest.approx(1.0)
    far = call_response_fit(call, notes([61, 63, 66, 68, 70], step=0.125))  # black keys
    assert far["key_overlap"] == 0.0 and far["register_shift"] == 2.0
    assert far["density_ratio"] > 1.5


def test_compare_identical_and_different():
    real = notes([60, 62, 64, 65, 67, 69, 71, 72])
    same = compare(real.copy(), real)
    assert all(v["overlap"] == pytest.approx(1.0) for v in same.values())
    wild = notes([30, 100, 31, 99, 32, 98, 33, 97], step=1.5)
    diff = compare(wild, real)
    assert diff["pitch"]["overlap"] == 0.0 and diff["step"]["kl"] > 1.0


def test_context_keys_and_out_of_key():
    from improv.musicstats import context_keys, out_of_key

    c_major = [60, 62, 64, 65, 67, 69, 71]
    context = notes(c_major * 9 + [61])  # 64 notes: the 7 white keys, one C#
    # the C# is the 8th commonest class: not in the key
    mask = context_keys(context[:, 0], len(context) - 1)[0]
    assert np.flatnonzero(mask).tolist() == [0, 2, 4, 5, 7, 9, 11]
    assert out_of_key(context, notes([60, 61, 62, 66])) == pytest.approx(2 / 4)
    assert out_of_key(context, notes([72, 74, 76])) == 0.0
    # only the last 64 notes count: a long C-major past does not hide a move to A-flat major
    past = notes(c_major * 20 + [68, 70, 72, 73, 75, 77, 79] * 10)
    assert out_of_key(past, notes([68, 70, 73])) == 0.0
