import threading
import time

import pytest

from improv.scheduler import Scheduler


class Sink:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    def __call__(self, msg):
        with self.lock:
            self.messages.append((time.monotonic(), msg))

    def kinds(self):
        return [(m.type, getattr(m, "note", None)) for _, m in self.messages]


def balanced(sink):
    on = {}
    for _, m in sink.messages:
        if m.type == "note_on":
            on[m.note] = on.get(m.note, 0) + 1
        elif m.type == "note_off":
            on[m.note] = on.get(m.note, 0) - 1
    return all(v == 0 for v in on.values())


def test_notes_play_at_their_times_with_their_offs():
    sink = Sink()
    s = Scheduler(sink)
    t0 = time.monotonic() + 0.05
    s.play(60, 90, t0, 0.05)
    s.play(64, 90, t0 + 0.1, 0.05)
    time.sleep(0.3)
    s.close()
    times = {(m.type, m.note): t for t, m in sink.messages if m.type.startswith("note")}
    assert abs(times[("note_on", 60)] - t0) < 0.01
    assert abs(times[("note_off", 60)] - (t0 + 0.05)) < 0.01
    assert abs(times[("note_on", 64)] - (t0 + 0.1)) < 0.01
    assert balanced(sink)


def test_restruck_pitch_is_ended_first_and_late_off_is_dropped():
    sink = Sink()
    s = Scheduler(sink)
    t0 = time.monotonic() + 0.02
    s.play(60, 90, t0, 0.2)  # long note
    s.play(60, 90, t0 + 0.05, 0.05)  # the same pitch again before it ends
    time.sleep(0.35)
    s.close()
    assert sink.kinds() == [("note_on", 60), ("note_off", 60), ("note_on", 60), ("note_off", 60)]


def test_voice_limit_ends_the_oldest():
    sink = Sink()
    s = Scheduler(sink, voices=2)
    t0 = time.monotonic() + 0.02
    for i, p in enumerate((60, 62, 64)):
        s.play(p, 90, t0 + i * 0.01, 1.0)
    time.sleep(0.1)
    assert s.sounding == [62, 64]
    s.close()
    assert balanced(sink)


def test_cancel_and_panic_leave_nothing_sounding():
    sink = Sink()
    s = Scheduler(sink, channel=3)
    t0 = time.monotonic()
    for i in range(10):
        s.play(60 + i, 90, t0 + i * 0.02, 5.0)
    time.sleep(0.1)
    s.cancel()
    assert not s.busy and balanced(sink)
    s.panic()
    ccs = [(m.channel, m.control) for _, m in sink.messages if m.type == "control_change"]
    assert len(ccs) == 32 and (15, 123) in ccs and (0, 64) in ccs
    assert all(m.channel == 3 for _, m in sink.messages if m.type.startswith("note"))
    s.close()


def test_bad_arguments():
    with pytest.raises(ValueError):
        Scheduler(Sink(), channel=16)
    s = Scheduler(Sink())
    with pytest.raises(ValueError):
        s.play(200, 90, 0.0, 1.0)
    s.close()
