"""The key of the last notes (improv.key) and how the sampler leans towards it."""

import numpy as np
import pytest

from improv.engine import Prediction
from improv.key import KEY_CLASSES, KEY_CONTEXT, KeyTracker, key_mask, pitch_weights
from improv.musicstats import context_keys
from improv.sampling import Sampler, SamplingConfig

C_MAJOR = [0, 2, 4, 5, 7, 9, 11]
G_MAJOR = [0, 2, 4, 6, 7, 9, 11]


def _classes(mask) -> list[int]:
    return np.flatnonzero(mask).tolist()


def test_a_scale_gives_its_key_and_a_modulation_moves_it():
    key = KeyTracker()
    assert key.mask is None and len(key) == 0
    for p in [60, 62, 64, 65, 67, 69, 71, 72] * 8:  # 64 notes of C major
        key.push(p)
    assert _classes(key.mask) == C_MAJOR
    for p in [67, 69, 71, 72, 74, 76, 78, 79] * 8:  # then 64 of G major: F -> F#
        key.push(p)
    assert _classes(key.mask) == G_MAJOR and len(key) == KEY_CONTEXT
    key.reset()
    assert key.mask is None and len(key) == 0


def test_the_live_key_is_the_evaluations_key_at_every_note():
    """KeyTracker (one note at a time) and musicstats.context_keys (all positions at once)
    are two implementations of one definition: they agree on a random walk, ties too."""
    rng = np.random.default_rng(3)
    pitches = 60 + np.cumsum(rng.integers(-4, 5, 300))
    offline = context_keys(pitches, 1)
    key = KeyTracker()
    for i, p in enumerate(pitches[:-1]):
        key.push(int(p))
        assert key.mask.tolist() == offline[i].tolist(), i
    assert key_mask(pitches[-KEY_CONTEXT:]).sum() == KEY_CLASSES


@pytest.mark.parametrize("context, classes", [(1, 1), (5, 3), (13, 7), (64, 7), (40, 11),
                                              (20, 12)])
def test_the_tracker_keeps_the_commonest_classes_of_any_window(context, classes):
    """push re-ranks only when the class pushed or the one dropped can change the key: over
    skewed random notes (ties, keys that change every few notes, a reset) its mask is
    key_mask of the last ``context`` notes after every push."""
    rng = np.random.default_rng(context * 13 + classes)
    key, heard, changes = KeyTracker(context, classes), [], 0
    for i in range(1500):
        if i == 700:
            key.reset()
            heard = []
        if i % 300 == 0:  # a new skew of the pitch classes every 300 notes
            odds = rng.dirichlet(np.ones(12))
        pitch = int(rng.choice(12, p=odds)) + 12 * int(rng.integers(2, 8))
        before = key.mask
        key.push(pitch)
        heard.append(pitch)
        assert key.mask.tolist() == key_mask(heard[-context:], classes).tolist(), i
        changes += key.mask is not before
    assert changes > 20 or classes == 12  # the key did move, so both paths ran


def test_pitch_weights():
    mask = np.zeros(12, dtype=bool)
    mask[C_MAJOR] = True
    w = pitch_weights(mask, 0.25, 60, 72)
    assert w.tolist() == [1, .75, 1, .75, 1, 1, .75, 1, .75, 1, .75, 1, 1]


@pytest.mark.parametrize("bad", [dict(context=0), dict(classes=0), dict(classes=13)])
def test_bad_tracker(bad):
    with pytest.raises(ValueError):
        KeyTracker(**bad)


def test_the_sampler_leans_towards_the_key_by_its_weight():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=128).astype(np.float32)
    mask = np.zeros(12, dtype=bool)
    mask[C_MAJOR] = True
    inside = mask[np.arange(128) % 12]
    plain = Sampler(SamplingConfig(temperature=1.0, top_p=1.0, key_weight=0.4))
    p0 = plain.pitch_probabilities(logits)
    p1 = plain.pitch_probabilities(logits, mask)
    lo, hi = plain.config.pitch_range
    r = slice(lo, hi + 1)
    # out of key: 0.6 times as likely relative to in key, exactly
    np.testing.assert_allclose((p1[r] / p0[r])[~inside[r]] / (p1[r] / p0[r])[inside[r]][0],
                               0.6, rtol=1e-5)
    assert p1[inside].sum() > p0[inside].sum()
    off = Sampler(SamplingConfig(temperature=1.0, top_p=1.0, key_weight=0.0))
    np.testing.assert_array_equal(off.pitch_probabilities(logits, mask), p0)
    # drawn notes follow: with the whole weight, nothing out of key is played
    full = Sampler(SamplingConfig(temperature=1.0, key_weight=1.0), seed=1)
    drawn = [full.sample(Prediction(logits, 0.2, 0.2), mask)[0] for _ in range(300)]
    assert all(mask[p % 12] for p in drawn)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_key_weight(bad):
    with pytest.raises(ValueError, match="key_weight"):
        SamplingConfig(key_weight=bad)


def test_the_whole_weight_never_leaves_nothing_to_draw():
    """key_weight 1 with every pitch in range off the key: the model's own distribution."""
    logits = np.full(128, -1e4, np.float32)
    logits[61] = 0.0  # C#: off C major, and the only pitch the model allows
    mask = np.zeros(12, dtype=bool)
    mask[C_MAJOR] = True
    s = Sampler(SamplingConfig(temperature=1.0, key_weight=1.0), seed=0)
    assert s.sample(Prediction(logits, 0.2, 0.2), mask)[0] == 61
    assert s.pitch_probabilities(logits, mask)[61] == 1.0
