"""Which velocity improv's notes get: the setting's, the model's, or the player's."""

import mido
import numpy as np
import pytest

from improv.engine import NoteModel
from improv.improviser import Improviser, Settings
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from improv.timing import TimeKeeper, TimeSettings
from tests.conftest import REPO


@pytest.fixture(scope="module")
def velocity_model(tmp_path_factory):
    """A small exported model with a velocity head (random weights: spread-out velocities)."""
    import keras

    from improv.trainconfig import TrainConfig
    from training.export import weights_to_arrays
    from training.model import build_model

    config = TrainConfig(units=16, timing_bins=8, velocity_bins=16)
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("velocity_model")
    np.savez(folder / "weights.npz", **weights_to_arrays(build_model(config), config))
    return NoteModel.load(folder)


def _answer_velocities(model, settings: Settings) -> list[int]:
    played = []
    scheduler = Scheduler(lambda msg: None)
    improv = Improviser(model, Sampler(seed=1), scheduler, settings,
                        on_note=lambda note, who: played.append((who, note.velocity)))
    t = 100.0
    for i, pitch in enumerate([60, 64, 67, 72]):  # the call, all at velocity 100
        improv.handle(mido.Message("note_on", note=pitch, velocity=100), t + 0.2 * i)
        improv.handle(mido.Message("note_off", note=pitch), t + 0.2 * i + 0.1)
    improv.tick(t + 5.0)  # a long silence ends the call
    improv.close()
    return [v for who, v in played if who == "improv"]


def test_a_velocity_head_gives_the_notes_their_velocities(velocity_model):
    got = _answer_velocities(velocity_model, Settings(silence=0.5, answer_notes=24))
    assert len(got) == 24
    assert set(got) <= set(velocity_model.weights["velocity_values"].astype(int))
    assert len(set(got)) > 1  # drawn, not one constant


def test_a_set_velocity_wins(velocity_model):
    got = _answer_velocities(velocity_model, Settings(silence=0.5, answer_notes=8, velocity=90))
    assert got == [90] * 8


def test_without_a_velocity_head_improv_plays_at_the_players_median():
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    assert not model.takes_velocity
    assert _answer_velocities(model, Settings(silence=0.5, answer_notes=8)) == [100] * 8


def _call(improv, onsets, t0=100.0, held=0.05):
    for i, onset in enumerate(onsets):
        improv.handle(mido.Message("note_on", note=60 + i, velocity=90), t0 + onset)
        improv.handle(mido.Message("note_off", note=60 + i), t0 + onset + held)
    return t0 + onsets[-1] + held  # the last input


@pytest.mark.parametrize("gap, threshold", [(0.1, 0.6), (0.4, 1.2), (2.0, 3.0)])
def test_the_adaptive_silence_is_three_typical_gaps_within_0_6_to_3_s(gap, threshold):
    """Silence 0: a call ends after 3 times its median gap, clamped to 0.6-3 s."""
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None),
                        Settings(answer_notes=2))
    last = _call(improv, [i * gap for i in range(5)])
    assert improv.silence_threshold() == pytest.approx(threshold)
    improv.tick(last + threshold - 0.01)
    assert improv.answers == 0
    improv.tick(last + threshold + 1e-9)
    assert improv.answers == 1
    improv.close()


def test_chord_tones_are_not_gaps():
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None), Settings())
    _call(improv, [0.0, 0.01, 0.5, 0.51, 1.0, 1.01])  # two-note chords 0.49 s apart
    assert improv.silence_threshold() == pytest.approx(3 * 0.49)  # not 3 * 0.01
    improv.close()


class _StuckOnStepZero(Sampler):
    """A sampler whose model only ever draws chords: every step is 0."""

    def sample(self, prediction, key=None, struck=(), mix=None):
        pitch, _, duration = super().sample(prediction, key, struck, mix)
        return pitch, 0.0, duration


def test_an_answer_never_stacks_more_than_max_chord_notes_at_one_instant():
    from improv.improviser import MAX_CHORD

    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    played = []
    improv = Improviser(model, _StuckOnStepZero(seed=0), Scheduler(lambda msg: None),
                        Settings(silence=0.5, answer_notes=20),
                        on_note=lambda note, who: played.append((who, note.start)))
    last = _call(improv, [0.0, 0.2, 0.4])
    improv.tick(last + 0.5)
    improv.close()
    starts = [t for who, t in played if who == "improv"]
    assert len(starts) == 20
    sizes = [starts.count(t) for t in sorted(set(starts))]
    assert sizes == [MAX_CHORD] * (20 // MAX_CHORD) + [20 % MAX_CHORD]
    assert all(b - a == pytest.approx(0.1) for a, b in zip(sorted(set(starts)),
                                                            sorted(set(starts))[1:], strict=False))


class _Recording(Sampler):
    """A sampler that keeps the notes it was told were just struck, draw by draw."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.struck_seen: list[tuple] = []

    def sample(self, prediction, key=None, struck=(), mix=None):
        self.struck_seen.append(tuple(struck))
        return super().sample(prediction, key, struck, mix)


@pytest.mark.parametrize("tempo", [None, 120.0])
def test_an_answers_first_note_may_repeat_the_calls_last_chord(tempo):
    """An answer starts after a silence, so its first note is drawn as if nothing were just
    struck (the call ended in a chord: its pitches stay possible); the notes after it are
    drawn knowing the notes just before them."""
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    sampler = _Recording(seed=0)
    t = 100.0
    keeper = TimeKeeper(TimeSettings(tempo=tempo) if tempo else None, now=t)
    improv = Improviser(model, sampler, Scheduler(lambda msg: None),
                        Settings(silence=0.5, answer_notes=4), clock=lambda: t + 1.0,
                        time_keeper=keeper)
    for i, pitch in enumerate([60, 64, 67]):  # a chord: three keys within 10 ms
        improv.handle(mido.Message("note_on", note=pitch, velocity=90), t + 0.005 * i)
    for pitch in (60, 64, 67):
        improv.handle(mido.Message("note_off", note=pitch), t + 0.3)
    assert len(model.struck) == 3  # what the model heard last: the chord
    improv.tick(t + 1.0)
    improv.close()
    assert improv.answers == 1 and len(sampler.struck_seen) == 4
    assert sampler.struck_seen[0] == ()
    assert all(sampler.struck_seen[1:])  # the last note drawn at least


def test_an_answer_ended_at_once_by_the_control_keeps_the_rule():
    """With no gap, an answer the end-call control starts right after a chord sounds with
    it: its first note is drawn knowing what was just struck."""
    from improv.controls import Controls

    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    sampler = _Recording(seed=0)
    t = 100.0
    improv = Improviser(model, sampler, Scheduler(lambda msg: None),
                        Settings(silence=60.0, answer_notes=2, gap=0.0), clock=lambda: t)
    for i, pitch in enumerate([60, 64, 67]):
        improv.handle(mido.Message("note_on", note=pitch, velocity=90), t + 0.005 * i)
    improv.handle(mido.Message("control_change", control=Controls().end_call, value=127),
                  t + 0.012)
    improv.close()
    assert improv.answers == 1 and len(sampler.struck_seen) == 2
    assert sampler.struck_seen[0]  # the chord, just struck


def test_a_time_that_is_not_finite_is_refused_before_it_reaches_the_model():
    """A NaN time (a gap in an array of times) went into the window's step and the LSTM's
    state, for good: from then on improv answered only its highest pitch."""
    from improv.errors import InvalidValueError

    model = NoteModel.load(REPO / "models" / "default")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None),
                        Settings(silence=0.5, answer_notes=4))
    last = _call(improv, [0.0, 0.25])
    for t in (float("nan"), float("inf")):
        with pytest.raises(InvalidValueError, match="finite"):
            improv.handle(mido.Message("note_on", note=64, velocity=90), t)
    assert improv.notes_in == 2 and np.isfinite(model.h).all()
    improv.tick(last + 1.0)
    improv.close()
    assert improv.answers == 1


def test_an_on_note_that_raises_is_logged_and_the_answer_goes_on():
    """A listener that raises (a full disk in a recorder) stopped the answer after its first
    note with the call left open, so every later silence answered it again."""
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    logged = []

    def on_note(note, who):
        raise OSError("disk full")

    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None),
                        Settings(silence=0.5, answer_notes=4), on_note=on_note,
                        log=logged.append)
    last = _call(improv, [0.0, 0.25, 0.5])
    for k in range(3):
        improv.tick(last + 1.0 + k)
    improv.close()
    assert improv.answers == 1 and improv.notes_out == 4 and not improv.call
    assert improv.listener_errors == 3 + 4 and len(logged) == 3
    assert "disk full" in logged[0]


def test_times_of_another_clock_are_told_once():
    """time.time() stamps against the default time.monotonic: no call ever ends; one line
    says why instead of silence."""
    import time

    logged = []
    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None),
                        Settings(silence=0.5), log=logged.append)
    for k in range(3):
        improv.handle(mido.Message("note_on", note=60, velocity=90), time.time() + k)
    improv.close()
    assert len(logged) == 1 and "ahead of the improviser's clock" in logged[0]


def test_a_switch_control_acts_once_a_press_of_a_continuous_pedal():
    """One press of a continuous pedal sends many values of 64 or more: CC89 swept
    0-127-0 switched the click 4 times, CC86 at 70, 100, 127 stepped beat -> bar -> now ->
    beat. A switch acts when its value rises to 64 or more, again only after it fell."""
    from improv.controls import Controls

    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    lines = []
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None), Settings(),
                        log=lines.append)
    controls = Controls()
    modes = []
    for value in (0, 30, 70, 100, 127, 90, 40, 0, 64, 127):
        improv.handle(mido.Message("control_change", control=controls.mode, value=value))
        modes.append(improv.settings.mode)
    first, second = modes[2], modes[8]
    assert modes[:2] == ["call-response"] * 2 and first != "call-response"
    assert modes[2:8] == [first] * 6 and second != first and modes[9] == second
    for value in (70, 100, 127):
        improv.handle(mido.Message("control_change", control=controls.answer_on, value=value))
    assert lines[-1] == "answers start on bar"
    improv.close()


def test_a_button_that_sends_127_alone_switches_each_press():
    """A pad or footswitch in trigger mode sends no release: each 127 a while after the
    last is a press (one that came milliseconds after is the same press)."""
    from improv.controls import Controls
    from improv.improviser import SWITCH_AGAIN

    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None), Settings(),
                        clock=lambda: 100.0)
    press = mido.Message("control_change", control=Controls().mode, value=127)
    modes = []
    again = SWITCH_AGAIN + 0.001
    for t in (100.0, 100.0 + again, 100.0 + again + 0.01, 100.0 + 3 * again):
        improv.handle(press, t)
        modes.append(improv.settings.mode)
    assert modes == ["continue", "call-response", "call-response", "continue"]
    improv.close()


def test_a_pedal_held_then_let_go_or_resting_unsteadily_acts_once():
    """Pressed, held a second and let go (127 ... 126, 100, 0), or resting at 126/127,
    or swept slowly (a value every 0.35 s): one press each (the held pedal's release
    switched the click back: a red team's)."""
    from improv.controls import Controls

    model = NoteModel.load(REPO / "models" / "tutorial-5files")
    improv = Improviser(model, Sampler(seed=0), Scheduler(lambda msg: None), Settings(),
                        clock=lambda: 100.0)
    mode = Controls().mode
    moves = {"held, let go": [(0.0, 127), (1.0, 126), (1.01, 100), (1.02, 0)],
             "resting unsteadily": [(0.0, 127), (0.5, 126), (1.0, 127), (1.5, 126)],
             "slow sweep": [(0.35 * i, 60 + i) for i in range(12)]}
    t = 100.0
    for name, values in moves.items():
        before = improv.settings.mode
        switches = 0
        for dt, value in values:
            improv.handle(mido.Message("control_change", control=mode, value=value), t + dt)
            switches += improv.settings.mode != before
            before = improv.settings.mode
        improv.handle(mido.Message("control_change", control=mode, value=0), t + 5)
        t += 10
        assert switches == 1, name
    improv.close()
