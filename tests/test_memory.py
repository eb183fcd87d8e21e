"""The phrase memory: known answers on hand-made sequences, mixing, files, size."""

import json
import os

import numpy as np
import pytest

from improv.engine import NoteModel, Prediction
from improv.generate import generate, seed_notes
from improv.key import KeyTracker
from improv.memory import (
    _CODE_CHORD,
    FORMAT,
    MAX_WEIGHT,
    VERSION,
    MemoryConfig,
    MemoryFileError,
    NotMemoryFileError,
    PhraseMemory,
    _decode,
    _dense,
    mix_logits,
)
from improv.sampling import Sampler, SamplingConfig
from tests.conftest import REPO

MODEL = REPO / "models" / "default"
#: A motif whose intervals never repeat inside it (+2 +2 +1 +2 -4 -3 +5 ...), so only a
#: memory of the whole motif can tell what follows a part of it.
MOTIF = [60, 62, 64, 65, 67, 63, 60, 65, 71, 70, 66]
#: Notes within 30 ms are one chord (the default does not group: see MemoryConfig).
CHORDS = MemoryConfig(chord_seconds=0.03)


def _play(memory, pitches, step=0.25, duration=0.2, own=False):
    for p in pitches:
        memory.learn(p, step, duration, own=own)


def _likeliest(memory) -> int:
    return int(np.argmax(memory.guess().pitch_probabilities()))


@pytest.mark.parametrize("shift", [0, 5, -7])
def test_a_motif_heard_once_is_predicted_when_it_comes_back(shift):
    """After one hearing, each further note of the motif is the likeliest, from its first
    three notes on, transposed too (the memory counts intervals)."""
    memory = PhraseMemory()
    _play(memory, MOTIF)
    _play(memory, [48, 53])  # something else in between
    again = [p + shift for p in MOTIF]
    _play(memory, again[:3])
    for i in range(3, len(again)):
        assert _likeliest(memory) == again[i], i
        assert memory.guess().order >= 2
        memory.learn(again[i], 0.25, 0.2)


def test_a_new_memory_knows_nothing():
    memory = PhraseMemory()
    assert memory.guess() is None
    memory.learn(60, 0.0, 0.5)
    guess = memory.guess()
    assert guess.order == 0 and memory.confidence(guess) == 0.0
    # one note: the guess is near uniform over the intervals, a little on a repeat
    probs = guess.pitch_probabilities()
    assert probs.sum() == pytest.approx(1.0) and probs[:36].sum() == 0.0


def test_the_order_of_a_chords_keys_does_not_matter():
    """A chord whose keys arrive in another order leaves the same context after it."""
    chords = [(60, 64, 67), (62, 65, 69), (59, 62, 67), (60, 64, 67)]
    a, b = PhraseMemory(CHORDS), PhraseMemory(CHORDS)
    rng = np.random.default_rng(1)
    for chord in chords:
        for memory, order in ((a, chord), (b, rng.permutation(chord))):
            for i, p in enumerate(order):
                memory.learn(int(p), 0.0 if i else 0.5, 0.4)
        assert a._prediction_context() == b._prediction_context()
    assert len(_decode(a._prediction_context()[0])) == CHORDS.max_order


def test_an_echoed_chord_progression_is_predicted_whatever_the_key_order():
    memory = PhraseMemory(CHORDS)
    progression = [(48, 55, 64), (53, 57, 65), (55, 59, 62), (48, 55, 64)]
    for chord in progression:
        for i, p in enumerate(chord):
            memory.learn(p, 0.0 if i else 0.5, 0.4)
    for chord in progression[:2]:  # again, keys in reverse order
        for i, p in enumerate(reversed(chord)):
            memory.learn(p, 0.0 if i else 0.5, 0.4)
    # the next chord's lowest note comes first in pitch order
    assert _likeliest(memory) == 55


def test_rhythm_relative_to_the_typical_gap_comes_back_in_another_tempo():
    """Long-short-short learned at one tempo is predicted at twice the speed."""
    memory = PhraseMemory()
    pitches = MOTIF[:9]
    steps = [0.6, 0.3, 0.3] * 3
    for _ in range(4):
        for p, s in zip(pitches, steps, strict=True):
            memory.learn(p, s, s)
    for p, s in zip(pitches[:4], [0.3, 0.15, 0.15, 0.3], strict=True):  # twice as fast
        memory.learn(p, s, s)
    guess = memory.guess()
    # next: a short step, half the long one; in seconds at the new tempo about 0.15 s
    seconds = np.array([0.0] + list(2.0 ** ((np.arange(1, 14) - 7) / 2))) * guess.typical_gap
    assert 0.1 < seconds[int(np.argmax(guess.steps))] < 0.25


def test_own_notes_count_less():
    memory = PhraseMemory(MemoryConfig(own_weight=0.25))
    _play(memory, [60, 62, 64], own=True)
    memory.learn(65, 0.25, 0.2)  # closes the last group
    data = memory.to_dict()
    root = dict(map(tuple, dict((tuple(k), v) for k, v in data["contexts"])[()]))
    assert sorted(root.values()) == [0.25, 0.5, 1.0]  # the first note; +2 twice; +1
    assert data["notes"] == {"player": 1, "own": 3}


def test_mixing_moves_probability_to_the_remembered_note():
    model = NoteModel.load(MODEL)
    memory = PhraseMemory()
    _play(memory, MOTIF)
    prediction = None
    for p in MOTIF[:5]:
        memory.learn(p, 0.25, 0.2)
        prediction = model.feed(p, 0.25, 0.2, 64)
    want = MOTIF[5]
    base = np.exp(mix_logits(prediction.logits, np.zeros(128), 0.0))
    assert memory.mix(prediction, 0.0) is prediction
    weak, strong = (np.exp(memory.mix(prediction, s).logits) for s in (0.3, 1.0))
    for probs in (base, weak, strong):
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert base[want] < weak[want] < strong[want]
    guess = memory.guess()
    lam = (1 - guess.floor) * memory.confidence(guess)
    assert strong[want] >= lam * guess.pitch_probabilities(heard=True)[want] - 1e-6
    mixed = memory.mix(prediction, 1.0)
    assert mixed.timing_logits is prediction.timing_logits  # timing_share 0: the model's
    assert mixed.velocity_logits is prediction.velocity_logits
    memory.config = MemoryConfig(timing_share=1.0)
    timing = np.exp(memory.mix(prediction, 1.0).timing_logits)
    np.testing.assert_allclose(timing.sum(axis=1), 1.0, atol=1e-5)


def test_playing_a_chord_tone_or_not_takes_what_came_as_such():
    """After the same notes the player once struck a chord tone a major third up (step 0)
    and once went on a tone up (step 0.25). Told the step drawn, the memory offers the chord
    tone to a chord tone and the tone to a later note; not told, both."""
    memory = PhraseMemory()
    _play(memory, [50, 60, 62])
    memory.learn(66, 0.0, 0.2)  # with 62: a chord
    _play(memory, [40, 50, 60, 62, 64])  # the same notes, then a tone up
    _play(memory, [40, 50, 60, 62])
    flat = Prediction(np.zeros(128, np.float32), 0.25, 0.2)

    def probs(step):
        return np.exp(memory.mix(flat, 1.0, step=step).logits)

    chord, later, either = probs(0.0), probs(0.25), probs(None)
    assert np.argmax(chord) == 66 and chord[66] > 10 * chord[64]
    assert np.argmax(later) == 64 and later[64] > 10 * later[66]
    assert either[64] > 10 * either[70] and either[66] > 10 * either[70]
    # it knows nothing of chord tones after a context it heard only notes after: the model's
    # own prediction of a chord tone is left as it is from the longest such context on
    memory = PhraseMemory()
    _play(memory, MOTIF)
    assert memory.mix(flat, 1.0, step=0.0) is flat


def test_playing_the_memorys_pitches_lean_to_where_the_model_agrees():
    """The player went on a third up and a third down as often, after the same notes. With
    a model that finds the lower note e times likelier, playing, the memory offers it
    e ** agreement times the other, its share of the mass unchanged; at agreement 0, as
    often; scoring (no step) leaves the counts alone."""
    memory = PhraseMemory()
    _play(memory, [40, 50, 60, 64, 40, 50, 60, 57, 40, 50, 60])
    logits = np.zeros(128, np.float32)
    logits[57] = 1.0
    prediction = Prediction(logits, 0.25, 0.2)
    base = np.exp(prediction.logits) / np.exp(prediction.logits).sum()

    def memory_part(config, step):
        memory.config = config
        p = np.exp(memory.mix(prediction, 1.0, step=step).logits.astype(np.float64))
        lam = 1 - p[0] / base[0]  # a pitch it never offers keeps (1 - lam) of its own
        return (p - (1 - lam) * base) / lam, lam

    agree, lam = memory_part(MemoryConfig(agreement=0.5), 0.25)
    plain, lam0 = memory_part(MemoryConfig(agreement=0.0), 0.25)
    assert agree[57] / agree[64] == pytest.approx(np.exp(0.5), rel=1e-3)
    assert plain[57] / plain[64] == pytest.approx(1.0, rel=1e-3)
    assert lam == pytest.approx(lam0, rel=1e-5) and agree.sum() == pytest.approx(1.0, abs=1e-3)
    scored, _ = memory_part(MemoryConfig(agreement=0.5), None)
    assert scored[57] / scored[64] == pytest.approx(1.0, rel=1e-3)


def test_the_chance_of_a_chord_tone_moves_to_the_memorys():
    """A player who always answers a rising third with a chord tone: after it, the step is
    drawn with the chance of a chord tone moved towards the memory's (certain), the bins on
    each side keeping their shares within it; nothing moves at strength 0 or without bins."""
    memory = PhraseMemory()
    for _ in range(4):
        _play(memory, [60, 64])
        memory.learn(67, 0.0, 0.2)  # with 64: a chord
        _play(memory, [40])
    _play(memory, [60, 64])
    values = np.array([0.0, 0.02, 0.04, 0.1, 0.2, 0.4], np.float32)  # three under 50 ms
    logits = np.log(np.array([[0.05, 0.1, 0.05, 0.4, 0.3, 0.1]] * 2, np.float32))
    prediction = Prediction(np.zeros(128, np.float32), 0.25, 0.2, logits, values)

    def chance(pred):
        p = np.exp(pred.timing_logits[0] - pred.timing_logits[0].max())
        return p / p.sum()

    before, after = chance(prediction), chance(memory.mix_rhythm(prediction, 1.0))
    assert before[:3].sum() == pytest.approx(0.2) and after[:3].sum() > 0.6
    np.testing.assert_allclose(after[:3] / after[:3].sum(), before[:3] / before[:3].sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(after[3:] / after[3:].sum(), before[3:] / before[3:].sum(),
                               rtol=1e-5)
    mixed = memory.mix_rhythm(prediction, 1.0)
    np.testing.assert_array_equal(mixed.timing_logits[1], logits[1])  # durations: the model's
    np.testing.assert_array_equal(mixed.logits, prediction.logits)
    assert memory.mix_rhythm(prediction, 0.0) is prediction
    plain = Prediction(np.zeros(128, np.float32), 0.25, 0.2)
    assert memory.mix_rhythm(plain, 1.0) is plain
    assert PhraseMemory(MemoryConfig(rhythm_gain=0.0)).mix_rhythm(prediction, 1.0) is prediction
    # a memory that never heard a chord tone there moves the chance the other way
    melodic = PhraseMemory()
    _play(melodic, MOTIF * 2)
    assert chance(melodic.mix_rhythm(prediction, 1.0))[:3].sum() < 0.1


def test_the_sampler_draws_the_pitch_from_the_mix_for_the_step_it_drew():
    steps = []
    one_hot = np.full(128, -1e9, np.float32)
    one_hot[77] = 0.0

    def mix(prediction, step):
        steps.append(step)
        return Prediction(one_hot, prediction.step, prediction.duration)

    sampler = Sampler(seed=0)
    flat = Prediction(np.zeros(128, np.float32), 0.3, 0.2)
    assert sampler.sample(flat, mix=mix) == (77, pytest.approx(0.3), pytest.approx(0.2))
    assert steps == [pytest.approx(0.3)]


def test_greedy_answer_echoes_the_call_at_full_strength():
    """At strength 1 and temperature 0, an answer to a call heard twice plays it back (the
    memory not leaning to the key: MOTIF has notes outside it, which the default key weight
    of 1 never offers; test_a_motif_comes_back_on_the_scale)."""
    model = NoteModel.load(MODEL)
    memory = PhraseMemory(MemoryConfig(key_weight=0.0))
    call = np.array([[p, 0.25, 0.2, 70] for p in MOTIF * 2 + MOTIF[:3]], float)
    greedy = SamplingConfig(temperature=0, timing_temperature=0, velocity_temperature=0)
    out = generate(model, Sampler(greedy, seed=0), call, 8, memory, 1.0)
    assert out[:, 0].astype(int).tolist() == MOTIF[3:11]


def test_a_motif_comes_back_on_the_scale():
    """A motif heard in C major (D E F: up a tone, up a semitone), begun again on F by the
    player (F G): without the key the memory offers it transposed (G#, off the scale);
    with the key, on the scale (A or G, its neighbours on the scale)."""
    key = KeyTracker()
    for p in [60, 62, 64, 65, 67, 69, 71]:
        key.push(p)
    assert key.mask.tolist() == [p % 12 in (0, 2, 4, 5, 7, 9, 11) for p in range(12)]
    results = {}
    for key_weight in (0.0, 1.0):
        memory = PhraseMemory(MemoryConfig(key_weight=key_weight))
        _play(memory, [62, 64, 65] * 3 + [65, 67])
        logits = np.zeros(128, np.float32)  # an LSTM with no opinion
        results[key_weight] = np.exp(
            memory.mix(Prediction(logits, 0.25, 0.2), 1.0, key.mask).logits)
    assert int(np.argmax(results[0.0])) == 68  # G + 1 = G#
    assert results[1.0][68] < results[0.0][68] / 5
    assert int(np.argmax(results[1.0])) in (67, 69)
    # the whole weight, and nothing the memory knows on the key: it keeps its guess
    memory = PhraseMemory(MemoryConfig(key_weight=1.0))
    _play(memory, [62, 64, 65] * 3 + [65, 67])
    nothing = np.zeros(12, dtype=bool)
    prediction = Prediction(np.zeros(128, np.float32), 0.25, 0.2)
    np.testing.assert_array_equal(memory.mix(prediction, 1.0, nothing).logits,
                                  memory.mix(prediction, 1.0).logits)


def test_generate_with_memory_is_repeatable_and_learns_both_parts():
    model = NoteModel.load(MODEL)
    seed = seed_notes()[:40]
    runs = []
    for _ in range(2):
        memory = PhraseMemory()
        runs.append(generate(model, Sampler(seed=4), seed, 30, memory, 0.6))
        assert memory.notes == {"player": 40, "own": 30}
    np.testing.assert_array_equal(*runs)
    plain = generate(model, Sampler(seed=4), seed, 30)
    assert not np.array_equal(plain, runs[0])


def test_file_round_trip(tmp_path):
    memory = PhraseMemory()
    _play(memory, MOTIF)
    _play(memory, MOTIF[:4], own=True)
    path = tmp_path / "player.improv-memory"
    memory.save(path)
    back = PhraseMemory.load(path)
    assert back.to_dict() == memory.to_dict()
    assert back.describe() == memory.describe()
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    # least recently seen first: the last note was counted after its contexts, longest
    # first, so they close the list and the empty context is the most recent
    assert [len(symbols) for symbols, _ in data["contexts"][-6:]] == [5, 4, 3, 2, 1, 0]
    # a loaded memory predicts from the counts: the motif comes back in a new session
    _play(back, [p + 2 for p in MOTIF[:3]])
    assert _likeliest(back) == MOTIF[3] + 2
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    PhraseMemory().save(path)
    before = path.read_bytes()
    memory = PhraseMemory()
    _play(memory, MOTIF)

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        memory.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def _valid(tmp_path) -> dict:
    memory = PhraseMemory()
    _play(memory, MOTIF)
    return memory.to_dict()


def _damage(data: dict, how: str):
    if how == "version":
        data["version"] = 99
    elif how == "format":
        data["format"] = "something-else"
    elif how == "symbols":
        data["symbols"]["chord_seconds"] = 0.5
    elif how == "order":
        data["max_order"] = 0
    elif how == "gap":
        data["typical_gap"] = float("nan")
    elif how == "notes":
        data["notes"] = {"player": -1, "own": 0}
    elif how == "notes true":  # (a bool is an int to Python)
        data["notes"] = {"player": True, "own": 0}
    elif how == "notes huge":
        data["notes"] = {"player": 10 ** 4000, "own": 0}
    elif how == "code":
        data["contexts"][0][1][0][0] = 10 ** 9
    elif how == "count":
        data["contexts"][0][1][0][1] = -2
    elif how == "huge count":  # it would overflow the marginals (float32) to inf, then NaN
        data["contexts"][0][1][0][1] = 1e39
    elif how == "symbol":
        data["contexts"][-1][0] = [77]
    elif how == "shape":
        data["contexts"][0] = "x"
    elif how == "duplicate":
        data["contexts"].append(data["contexts"][0])
    elif how == "long":
        data["contexts"][0][0] = [1] * 40
    elif how == "list":
        return [data]
    return data


@pytest.mark.parametrize("how", ["version", "format", "symbols", "order", "gap", "notes",
                                 "notes true", "notes huge", "code", "count", "huge count",
                                 "symbol", "shape", "duplicate", "long", "list"])
def test_damaged_contents_are_refused_with_one_line(tmp_path, how):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_damage(_valid(tmp_path), how)))
    with pytest.raises(MemoryFileError) as e:
        PhraseMemory.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not isinstance(e.value, NotMemoryFileError) or how in ("format", "list")


@pytest.mark.parametrize("content", [b"{", b"\xff\xfe\x00garbage", b"[" * 100000,
                                     b"null", b"NaN", b"MThd\x00\x00\x00\x06\x00\x01",
                                     b'{"format": "something-else"}', b"\xff" + FORMAT.encode(),
                                     # a text that names the format (a README, notes)
                                     b'# Memory files\nThey say "format": "improv-memory".\n',
                                     b'["improv-memory"]'])
def test_what_is_no_memory_file_is_refused_with_one_line(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(NotMemoryFileError) as e:
        PhraseMemory.load(path)
    assert "not an improv memory file" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b'{"format":"improv-memory",',
                                     b' {\n  "format": "improv-memory", "version": 1, "no',
                                     b'{"format":"improv-memory","x":1' + b"[" * 100000,
                                     # (Python refuses to read an int of over 4300 digits)
                                     b'{"format":"improv-memory","version":1' + b"9" * 5000
                                     + b"}"])
def test_damaged_bytes_are_refused_with_one_line(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(MemoryFileError, match="damaged memory file") as e:
        PhraseMemory.load(path)
    assert "\n" not in str(e.value) and not isinstance(e.value, NotMemoryFileError)


def test_an_empty_file_is_an_empty_memory(tmp_path):
    """``touch FILE`` before the first session: nothing to lose, nothing to refuse."""
    path = tmp_path / "m.json"
    for content in (b"", b"\n"):
        path.write_bytes(content)
        memory = PhraseMemory.load(path)
        assert len(memory) == 0 and memory.notes == {"player": 0, "own": 0}


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "m.json"
    memory = PhraseMemory()
    _play(memory, MOTIF)
    memory.save(path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(MemoryFileError, match="damaged"):
        PhraseMemory.load(path)


def test_missing_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(MemoryFileError, match="no such file"):
        PhraseMemory.load(tmp_path / "none.json")
    import improv.memory

    path = tmp_path / "m.json"
    PhraseMemory().save(path)
    monkeypatch.setattr(improv.memory, "MAX_FILE_BYTES", 10)
    with pytest.raises(MemoryFileError, match="bytes"):
        PhraseMemory.load(path)


def test_size_stays_bounded_however_long_the_session():
    """A session of 30 000 random notes (hours of playing) keeps at most max_entries counts,
    forgetting the least recently seen a few at a time, and at most MAX_CODES next notes
    after any context; the rows of the contexts that went are reused, and every context's
    marginals still match its counts."""
    from improv.memory import MAX_CODES

    memory = PhraseMemory(MemoryConfig(max_entries=5000))
    rng = np.random.default_rng(0)
    sizes = []
    for i, p in enumerate(rng.integers(40, 90, 30000)):
        memory.learn(int(p), float(rng.choice([0.0, 0.2, 0.4])), float(rng.uniform(0.05, 2)))
        if i % 1000 == 999:
            entries = sum(len(pairs) for _, pairs in memory.to_dict()["contexts"])
            assert entries == memory.describe()["counts"]
            sizes.append(entries)
    # a note forgets only what it went over (at most one context's next notes more)
    assert max(sizes) <= 5000 and min(sizes[5:]) >= 5000 - MAX_CODES
    rows = list(memory._table.values())
    counts = [memory._counts[row] for row in rows]
    assert max(len(c) for c in counts) <= MAX_CODES
    assert len(memory._counts) <= 5000 + 6  # rows of forgotten contexts were reused
    assert len(set(rows)) == len(rows) and not set(rows) & set(memory._free)
    np.testing.assert_allclose(memory._marginals[rows], [_dense(c) for c in counts],
                               rtol=1e-5)
    assert not memory._marginals[memory._free].any()
    # and each context's sums of all and of chord tones' counts (the steps include 0)
    chord = [{code: n for code, n in c.items() if _CODE_CHORD[code]} for c in counts]
    assert 0 < sum(map(len, chord)) < sum(map(len, counts))
    np.testing.assert_allclose([memory._totals[r] for r in rows], [sum(c.values()) for c in counts])
    np.testing.assert_allclose([memory._chord_totals[r] for r in rows],
                               [sum(c.values()) for c in chord])
    assert [memory._chord_codes[r] for r in rows] == list(map(len, chord))
    # the same after a file's round trip, and in rows reused after a clear
    again = PhraseMemory.from_dict(memory.to_dict(), memory.config)
    for m in (again, memory):
        if m is memory:
            memory.clear()
            for p in rng.integers(40, 90, 6000):
                memory.learn(int(p), float(rng.choice([0.0, 0.2])), 0.3)
        rows = list(m._table.values())
        counts = [m._counts[row] for row in rows]
        assert [m._chord_totals[r] for r in rows] == pytest.approx(
            [sum(n for code, n in c.items() if _CODE_CHORD[code]) for c in counts])
        assert [m._chord_codes[r] for r in rows] == [
            sum(map(_CODE_CHORD.__getitem__, c)) for c in counts]
    # what was heard last is still remembered
    _play(memory, MOTIF)
    _play(memory, MOTIF[:3])
    assert _likeliest(memory) == MOTIF[3]


def test_guesses_between_notes_change_nothing_the_memory_learns():
    """A guess keeps the rows it found until the next note: a memory asked for a guess
    before every note (chords, forgetting, a new context) guesses after each note exactly
    as one never asked, and both mix the same."""
    config = MemoryConfig(max_entries=1000, chord_seconds=0.03)
    asked, fresh = PhraseMemory(config), PhraseMemory(config)
    rng = np.random.default_rng(5)
    pred = Prediction(rng.normal(size=128).astype(np.float32), 0.2, 0.2,
                      rng.normal(size=(2, 48)).astype(np.float32),
                      np.geomspace(0.01, 4, 48).astype(np.float32))
    for i in range(4000):
        if i == 2500:
            for m in (asked, fresh):
                m.reset_context()
        note = int(rng.integers(48, 84)), float(rng.choice([0.0, 0.01, 0.2, 0.5])), 0.3
        for m in (asked, fresh):
            m.learn(*note)
        for step in (0.0, 0.3):
            mixed = asked.mix(asked.mix_rhythm(pred, 0.5), 0.5, None, step)
        if i % 50 == 0:
            for a, b in zip(vars(fresh.guess()).values(), vars(asked.guess()).values(),
                            strict=True):
                np.testing.assert_array_equal(a, b)
            again = fresh.mix(fresh.mix_rhythm(pred, 0.5), 0.5, None, step)
            np.testing.assert_array_equal(again.logits, mixed.logits)
    assert fresh.entries == asked.entries <= 1000 and asked.describe()["counts"] > 900


def test_a_file_larger_than_the_memory_keeps_what_was_seen_last(tmp_path):
    """A file with more counts than max_entries loads as if the memory had forgotten the
    least recently seen contexts, and only as many rows are used as it keeps."""
    memory = PhraseMemory(MemoryConfig(max_entries=20000))
    rng = np.random.default_rng(3)
    _play(memory, [int(p) for p in rng.integers(40, 90, 6000)])
    _play(memory, MOTIF)
    path = tmp_path / "big.improv-memory"
    memory.save(path)
    assert memory.describe()["counts"] > 10000
    small = PhraseMemory.load(path, MemoryConfig(max_entries=1000))
    assert small.describe()["counts"] <= 1000 and len(small._counts) <= 1006
    memory._forget(1000)
    assert small.to_dict() == memory.to_dict()
    _play(small, MOTIF[:3])
    assert _likeliest(small) == MOTIF[3]


def test_clear_forgets_everything():
    memory = PhraseMemory()
    _play(memory, MOTIF)
    memory.clear()
    assert len(memory) == 0 and memory.guess() is None and memory.notes["player"] == 0


@pytest.mark.parametrize("field,value", [("max_order", 0), ("max_order", 2.5),
                                         ("chord_seconds", -0.1), ("own_weight", 2.0),
                                         ("count_half", float("nan")), ("timing_share", 1.5),
                                         ("max_entries", 10), ("gap_rate", 0.0),
                                         ("key_weight", 1.5), ("key_weight", -0.1),
                                         ("own_weight", True), ("play_gain", -1.0),
                                         ("rhythm_gain", 11.0), ("agreement", -0.5),
                                         ("agreement", 5.0)])
def test_config_checks_its_fields(field, value):
    with pytest.raises(ValueError, match=field):
        MemoryConfig(**{field: value})


def test_the_fast_mix_equals_the_mixture_formula():
    """mix() (all rows in one array) equals (1 - lam) softmax + lam * guess, row by row."""
    from improv.timebins import to_bins

    model = NoteModel.load(MODEL)
    memory = PhraseMemory(MemoryConfig(timing_share=1.0))
    seed = seed_notes()[:60]
    for row in seed:
        memory.learn(int(row[0]), float(row[1]), float(row[2]))
    prediction = model.feed_many(seed)
    guess = memory.guess()
    lam = (1 - guess.floor) * min(MAX_WEIGHT, 2 * 0.5 * memory.confidence(guess))
    assert 0 < lam < 1 and 0 < guess.floor < 1
    mixed = memory.mix(prediction, 0.5)
    want = mix_logits(prediction.logits, guess.pitch_probabilities(heard=True), lam)
    np.testing.assert_allclose(np.exp(mixed.logits), np.exp(want), atol=1e-6)
    # with a key: the memory's guess weighted by 1 - key_weight outside it, renormalised
    key = np.zeros(12, dtype=bool)
    key[[0, 2, 4, 5, 7, 9, 11]] = True
    keyed = memory.mix(prediction, 0.5, key)
    inside = key[np.arange(128) % 12]
    q = guess.pitch_probabilities(heard=True) * np.where(
        inside, 1.0, 1.0 - memory.config.key_weight)
    want = mix_logits(prediction.logits, q / q.sum(), lam)
    np.testing.assert_allclose(np.exp(keyed.logits), np.exp(want), atol=1e-6)
    bins = prediction.timing_logits.shape[1]
    ratios = 2.0 ** ((np.arange(14) - 7) / 2)
    steps = to_bins(ratios * guess.typical_gap, bins)
    steps[0] = 0
    heard_steps = (guess.steps - guess.floor / 14) / (1 - guess.floor)
    want_step = mix_logits(prediction.timing_logits[0],
                           np.bincount(steps, heard_steps, bins), lam)
    np.testing.assert_allclose(np.exp(mixed.timing_logits[0]), np.exp(want_step), atol=1e-6)


def test_learn_refuses_a_note_it_cannot_count_and_changes_nothing():
    memory = PhraseMemory()
    _play(memory, MOTIF)
    before = (dict(memory.notes), memory.entries, len(memory), memory.changes)
    for args in ((60, float("nan"), 0.2), (60, 0.25, float("inf")), (128, 0.25, 0.2)):
        with pytest.raises(ValueError, match="memory learn"):
            memory.learn(*args)
    assert (dict(memory.notes), memory.entries, len(memory), memory.changes) == before


def test_own_weight_zero_learns_no_own_note_and_its_file_loads(tmp_path):
    """own_weight 0 ("learn from me only") wrote counts of 0, which the loader takes for a
    damaged file: the player's memory was set aside. Now improv's notes are not counted."""
    memory = PhraseMemory(MemoryConfig(own_weight=0.0))
    _play(memory, MOTIF)
    entries = memory.entries
    _play(memory, MOTIF, own=True)
    assert memory.entries == entries and memory.notes["own"] == len(MOTIF)
    memory.save(tmp_path / "me.json")
    loaded = PhraseMemory.load(tmp_path / "me.json")
    assert loaded.entries == entries and sorted(os.listdir(tmp_path)) == ["me.json"]
    with pytest.raises(ValueError, match="own_weight"):
        MemoryConfig(own_weight=1e-7)  # a count the file would round to 0
