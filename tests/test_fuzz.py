"""Property-based tests: whatever arrives on the input, every note improv starts is
ended, nothing grows without bound, and no exception escapes."""

import mido
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from improv.engine import NoteModel
from improv.improviser import Improviser, Settings
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from improv.tracker import NoteTracker
from improv.window import MAX_PENDING, NoteWindow
from tests.conftest import REPO

channels = st.integers(0, 15)
notes = st.integers(0, 127)
messages = st.one_of(
    st.builds(lambda n, v, c: mido.Message("note_on", note=n, velocity=v, channel=c),
              notes, st.integers(0, 127), channels),
    st.builds(lambda n, c: mido.Message("note_off", note=n, channel=c), notes, channels),
    st.builds(lambda v, c: mido.Message("control_change", control=64, value=v, channel=c),
              st.integers(0, 127), channels),  # pedal storms
    st.builds(lambda cc, v: mido.Message("control_change", control=cc, value=v),
              st.integers(0, 127), st.integers(0, 127)),  # every control, the mapped ones too
    st.just(mido.Message("clock")), st.just(mido.Message("active_sensing")),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(st.integers(0, 127), max_size=8)),
    st.builds(lambda p: mido.Message("pitchwheel", pitch=p), st.integers(-8192, 8191)),
)


def _parsed(data: bytes) -> list:
    """Parse raw bytes the way a port does: stray and out-of-range bytes are dropped."""
    parser = mido.Parser()
    parser.feed(data)
    return list(parser)


# A stream element is one message, or whatever a burst of raw bytes parses into.
events = st.one_of(messages.map(lambda m: [m]), st.binary(min_size=1, max_size=24).map(_parsed))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(messages, st.floats(0, 0.5)), max_size=300))
def test_tracker_and_window_stay_consistent(stream):
    tracker, window = NoteTracker(), NoteWindow(size=32)
    t = 0.0
    for msg, dt in stream:
        t += dt
        for note in tracker.handle(msg, t):
            assert note.end >= note.start and 0 <= note.pitch <= 127
            window.add(note)
        window.ready(tracker.earliest_start)
        assert len(window.rows) <= 32 and window.pending <= MAX_PENDING
        assert tracker.sounding <= 16 * 128
        assert all(row[1] >= 0 and row[2] >= 0 for row in window.rows)
    for note in tracker.flush(t + 1):
        window.add(note)
    window.ready(None)
    assert tracker.sounding == 0 and window.pending == 0


class Sink:
    def __init__(self):
        self.sounding = {}

    def __call__(self, msg):
        if msg.type == "note_on":
            self.sounding[(msg.channel, msg.note)] = self.sounding.get((msg.channel, msg.note),
                                                                       0) + 1
        elif msg.type == "note_off":
            self.sounding[(msg.channel, msg.note)] -= 1
        elif msg.type == "control_change" and msg.control == 123:
            for key in [k for k in self.sounding if k[0] == msg.channel]:
                self.sounding[key] = 0


MODEL = NoteModel.load(REPO / "models" / "default")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(events, st.floats(0, 0.3)), max_size=200),
       st.sampled_from(["call-response", "continue"]))
def test_improviser_never_leaves_a_note_on(stream, mode):
    sink = Sink()
    clock = [1000.0]
    scheduler = Scheduler(sink, voices=8, clock=lambda: clock[0])
    improv = Improviser(MODEL, Sampler(seed=0), scheduler,
                        Settings(mode=mode, silence=0.3, max_answer_notes=16),
                        clock=lambda: clock[0])
    for burst, dt in stream:
        clock[0] += dt
        for msg in burst:
            improv.handle(msg, clock[0])
        improv.tick(clock[0])
        assert len(improv.window.rows) <= improv.window.rows.maxlen
        assert len(improv.call) <= 4 * 16
    improv.close()
    assert all(v == 0 for v in sink.sounding.values()), "a note improv started was left on"
    assert np.isfinite(improv.temperature)
