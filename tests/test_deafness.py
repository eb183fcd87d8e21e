"""Never deaf: a lost note-off, a stuck key, a player's panic (in-process, fake clock)."""

import mido
import pytest

from improv.engine import NoteModel
from improv.improviser import MIN_HELD_KEYS, Improviser, Settings
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from tests.conftest import REPO

MODEL = NoteModel.load(REPO / "models" / "default")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def improv():
    clock = Clock()
    scheduler = Scheduler(lambda msg: None, clock=clock)
    logged = []
    made = []

    def make(**settings):
        i = Improviser(MODEL, Sampler(seed=0), scheduler, Settings(**settings), clock=clock,
                       log=logged.append)
        i.logged = logged
        made.append(i)
        return i
    yield make, clock
    for i in made:
        i.close()


def on(p, v=80):
    return mido.Message("note_on", note=p, velocity=v)


def off(p):
    return mido.Message("note_off", note=p)


def cc(control, value=127):
    return mido.Message("control_change", control=control, value=value)


def phrase(i, clock, pitches):
    for p in pitches:
        clock.t += 0.2
        i.handle(on(p), clock.t)
        clock.t += 0.1
        i.handle(off(p), clock.t)


def test_a_lost_note_off_then_a_phrase_is_answered_within_the_held_key_limit(improv):
    make, clock = improv
    i = make(silence=0.5, answer_notes=4)
    i.handle(on(40), clock.t)  # its note-off is lost
    phrase(i, clock, [60, 62, 64, 65])
    assert i.window.pending == 4  # the phrase waits behind the held key
    clock.t += 0.6
    i.tick(clock.t)
    assert i.answers == 0  # a key is held: the call goes on
    assert i.held_key_limit() == MIN_HELD_KEYS  # 2 x 0.5 s is below the floor
    clock.t += MIN_HELD_KEYS
    i.tick(clock.t)
    assert i.keys_released == 1 and i.tracker.keys_down == 0
    assert any("taken as released" in line for line in i.logged)
    assert i.answers == 1 and i.notes_out == 4
    assert i.window.pending == 0  # the model heard all five notes before answering
    assert [r[0] for r in i.window.rows][:5] == [40, 60, 62, 64, 65]


def test_held_keys_setting(improv):
    make, clock = improv
    i = make(silence=3.0)
    assert i.held_key_limit() == 6.0
    i = make(silence=2.0, held_keys=1.5)
    assert i.held_key_limit() == 1.5


@pytest.mark.parametrize("control", [120, 123])
def test_the_players_all_sound_off_and_all_notes_off_release_keys(improv, control):
    make, clock = improv
    i = make(silence=0.5, answer_notes=2)
    i.handle(on(40), clock.t)
    phrase(i, clock, [60, 62])
    i.handle(cc(control, 0), clock.t)
    assert i.tracker.keys_down == 0 and i.window.pending == 0
    phrase(i, clock, [64])
    clock.t += 0.6
    i.tick(clock.t)
    assert i.answers == 1


def test_end_call_feeds_waiting_notes_first_and_recovers(improv):
    make, clock = improv
    i = make(silence=30, answer_notes=3)
    i.handle(on(40), clock.t)
    phrase(i, clock, [60, 62, 64])
    rows = len(i.window.rows)
    i.handle(cc(67), clock.t)  # end of call
    i.handle(cc(67, 0), clock.t)  # the pedal let go
    assert i.answers == 1 and i.tracker.keys_down == 0
    assert len(i.window.rows) == rows + 4 + 3  # 4 heard notes, then 3 answered
    # and the next call is heard normally (no key still "down")
    clock.t += 5
    phrase(i, clock, [67, 69])
    i.handle(cc(67), clock.t)
    assert i.answers == 2


def test_panic_control_releases_keys(improv):
    make, clock = improv
    i = make(silence=0.5)
    i.handle(on(40), clock.t)
    i.handle(cc(120), clock.t)
    assert i.tracker.keys_down == 0 and not i.call


@pytest.mark.parametrize("bad", [dict(velocity=64.5), dict(gap=float("inf")),
                                 dict(silence=float("inf")), dict(lookahead=float("inf")),
                                 dict(passthrough="false"), dict(answer_notes=2.5),
                                 dict(silence=601.0), dict(gap=11.0), dict(lookahead=0.0),
                                 dict(held_keys=-1.0), dict(barge_in=1)])
def test_settings_refuse_bad_values(bad):
    with pytest.raises(ValueError):
        Settings(**bad)


def test_continue_mode_work_per_tick_is_bounded(improv):
    make, clock = improv
    i = make(mode="continue", lookahead=10.0)
    i.tick(clock.t)
    assert i.notes_out <= 64


def test_a_note_on_delivered_twice_is_heard_once(improv):
    """JACK may hand an event to a client twice (6 us apart): one note, one onset, one
    passthrough, and its one note-off leaves no key down. A key struck again while still
    down 5 ms later is a new strike."""
    make, clock = improv
    i = make(silence=0.5, passthrough=True)
    passed = []
    i.passthrough = passed.append
    clock.t += 0.2
    i.handle(on(60), clock.t)
    i.handle(on(60), clock.t + 6e-6)
    clock.t += 0.1
    i.handle(off(60), clock.t)
    assert (i.notes_in, i.repeats, i.tracker.keys_down) == (1, 1, 0)
    assert [m.type for m in passed] == ["note_on", "note_off"]
    assert [row[0] for row in i.window.rows] == [60]  # one note reached the model
    clock.t += 0.05
    i.handle(on(60), clock.t)
    i.handle(on(60), clock.t + 0.005)  # struck again, still down: a second note
    assert (i.notes_in, i.repeats, i.tracker.keys_down) == (3, 1, 1)
