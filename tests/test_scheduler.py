import time

import pytest

from improv.fakes import FakeClock, Sink
from improv.scheduler import Scheduler


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.002)
    return cond()


def balanced(sink):
    on = {}
    for _, m in sink.messages:
        if m.type == "note_on":
            on[m.note] = on.get(m.note, 0) + 1
        elif m.type == "note_off":
            on[m.note] = on.get(m.note, 0) - 1
    return all(v == 0 for v in on.values())


def test_notes_play_at_their_times_with_their_offs():
    # A fake clock: the test says when time passes and checks what was sent by then,
    # so a loaded machine cannot make it pass or fail.
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    t0 = clock.t + 0.05
    s.play(60, 90, t0, 0.05)
    s.play(64, 90, t0 + 0.1, 0.05)
    time.sleep(0.1)
    assert sink.kinds() == []  # nothing before its time
    clock.t = t0
    assert wait_until(lambda: sink.kinds() == [("note_on", 60)])
    clock.t = t0 + 0.05
    assert wait_until(lambda: sink.kinds() == [("note_on", 60), ("note_off", 60)])
    clock.t = t0 + 0.1
    assert wait_until(lambda: len(sink.messages) == 3)
    clock.t = t0 + 0.15
    assert wait_until(lambda: len(sink.messages) == 4)
    s.close()
    assert sink.kinds()[2:] == [("note_on", 64), ("note_off", 64)]
    assert balanced(sink) and s.shifts == 0


def test_restruck_pitch_is_ended_first_and_late_off_is_dropped():
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    t0 = clock.t + 0.02
    s.play(60, 90, t0, 0.2)  # long note
    s.play(60, 90, t0 + 0.05, 0.05)  # the same pitch again before it ends
    clock.t = t0
    assert wait_until(lambda: s.sent_on == 1)
    clock.t = t0 + 0.05
    assert wait_until(lambda: s.sent_on == 2)
    clock.t = t0 + 0.1
    assert wait_until(lambda: s.sent_off == 2)
    clock.t = t0 + 0.2  # the first note's own off: it no longer owns the pitch
    assert wait_until(lambda: not s.busy)
    s.close()
    assert sink.kinds() == [("note_on", 60), ("note_off", 60), ("note_on", 60), ("note_off", 60)]


def test_voice_limit_ends_the_oldest():
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, voices=2, clock=clock)
    for i, p in enumerate((60, 62, 64)):
        s.play(p, 90, clock.t + i * 0.01, 1.0)
    for i in range(3):
        assert wait_until(lambda i=i: s.sent_on == i + 1)
        clock.t += 0.01
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


def test_after_a_stall_the_rest_is_shifted_not_burst():
    # After a stall (the clock jumps 3 s), the overdue part of an answer is not sent at
    # once: the queue moves later by the delay and the notes keep their spacing.
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    for i in range(10):
        s.play(60 + i, 90, clock.t + 0.5 * i, 0.2)  # notes at +0, +0.5 .. +4.5 s
    assert wait_until(lambda: s.sent_on == 1)
    clock.t += 3.0  # a 3 s stall: the note at +0.5 is 2.5 s overdue
    assert wait_until(lambda: s.sent_on == 2 and s.sent_off == 1)
    time.sleep(0.2)
    assert s.sent_on == 2 and s.shifts == 1 and s.shifted == pytest.approx(2.5)
    for n in range(3, 11):  # then one note per 0.5 s, as planned
        clock.t += 0.5
        assert wait_until(lambda n=n: s.sent_on == n)
        assert s.sent_on == n
    clock.t += 1
    assert wait_until(lambda: not s.busy)
    s.close()
    assert [m.note for _, m in sink.messages if m.type == "note_on"] == list(range(60, 70))
    assert s.shifts == 1 and balanced(sink)


def test_a_small_delay_is_not_shifted():
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.play(60, 90, clock.t + 0.1, 0.2)
    clock.t += 0.14  # 40 ms late: sent as it is
    assert wait_until(lambda: s.sent_on == 1)
    assert s.shifts == 0
    s.close()


def test_a_beat_note_queued_too_late_moves_by_whole_beats():
    # The main loop chose beat 4 for an answer, then was held up 0.3 s before queueing
    # its note: sent at once it would be 0.3 s off the beat; it goes a beat later instead.
    from improv.beatclock import Timeline

    sink, clock = Sink(), FakeClock(10.0)
    s = Scheduler(sink, clock=clock)
    s.set_timeline(Timeline(time=10.0, beat=0.0, period=0.5))
    clock.t = 12.0 + 0.3  # beat 4 was at 12.0
    assert s.play_beats(60, 90, 4.0, 0.5) == 5.0  # where it went
    assert s.sent_on == 0 and s.shifts == 1 and s.shifted_beats == 1.0
    clock.t = 12.5  # beat 5
    assert wait_until(lambda: s.sent_on == 1)
    clock.t = 12.52
    s.play_beats(62, 90, 5.0, 0.5)  # 20 ms late (within LATE): sent at once, as it is
    assert s.sent_on == 2 and s.shifts == 1
    s.close()


def test_note_offs_are_always_sent_even_late():
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.play(60, 90, clock.t, 1.0)
    assert wait_until(lambda: s.sent_on == 1)
    clock.t += 60  # the off is a minute late: still sent
    assert wait_until(lambda: s.sent_off == 1)
    s.close()
    assert balanced(sink)


def test_a_failing_send_does_not_kill_the_thread():
    sent, logged = [], []

    def send(msg):
        if msg.type == "note_on" and msg.note == 61:
            raise OSError("port went away")
        sent.append(msg)
    clock = FakeClock()
    s = Scheduler(send, clock=clock, log=logged.append)
    for i in range(3):
        s.play(60 + i, 90, clock.t, 0.1)
    assert wait_until(lambda: s.sent_on == 3)  # the failing one counted as tried
    clock.t += 0.2
    assert wait_until(lambda: s.sent_off == 3)
    assert s.errors == 1 and "port went away" in logged[0]
    assert s._thread.is_alive()
    assert [m.note for m in sent if m.type == "note_on"] == [60, 62]
    s.close()


def test_bad_notes_are_refused_at_play():
    s = Scheduler(Sink())
    for args in ((60.5, 90, 0.0, 1.0), (60, 64.5, 0.0, 1.0), (60, 90, float("inf"), 1.0),
                 (60, 90, 0.0, float("nan"))):
        with pytest.raises(ValueError):
            s.play(*args)
    assert s._thread.is_alive()
    s.close()


def test_numpy_times_and_a_numpy_clock_are_taken():
    """Times from a NumPy array (float32) and a clock that gives them: the notes play; the
    thread, which waits on a Condition that takes no float32, lives (it died before)."""
    import numpy as np

    class NumpyClock(FakeClock):
        def __call__(self):
            return np.float32(self.t)

    sink, clock = Sink(), NumpyClock()
    clock.t = 100.0
    s = Scheduler(sink, clock=clock)
    s.play(60, 90, np.float32(100.5), np.float32(0.25))
    s.play(62, 90, np.float64(100.5), np.float32(0.25))
    time.sleep(0.05)
    assert s._thread.is_alive() and s.sent_on == 0
    clock.t = 100.5
    assert wait_until(lambda: s.sent_on == 2)
    clock.t = 101.0
    assert wait_until(lambda: s.sent_off == 2)
    assert s._thread.is_alive() and balanced(sink)
    s.close()


def test_reset_listeners_keeps_the_queue():
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.play(60, 90, clock.t + 1, 0.1)
    s.reset_listeners()
    ccs = [(m.channel, m.control) for _, m in sink.messages if m.type == "control_change"]
    assert len(ccs) == 32 and (0, 123) in ccs and (15, 64) in ccs
    assert s.busy
    s.close()


def test_on_played_hears_what_was_played_as_it_was_played():
    """A note ended in its time, one cut short by cancel (at the cancel's time), one re-struck
    (ended when struck again), and one dropped from the queue before it began (never)."""
    sink, clock, played = Sink(), FakeClock(), []
    s = Scheduler(sink, clock=clock, on_played=lambda *note: played.append(note))
    t0 = clock.t + 0.02
    s.play(60, 90, t0, 0.05)
    s.play(64, 70, t0 + 0.1, 0.5)
    s.play(64, 71, t0 + 0.2, 0.5)  # 64 again while it sounds
    s.play(67, 80, t0 + 0.4, 0.1)  # still queued when cancel comes
    for t, ons, offs in ((t0, 1, 0), (t0 + 0.05, 1, 1), (t0 + 0.1, 2, 1), (t0 + 0.2, 3, 2)):
        clock.t = t
        assert wait_until(lambda n=ons, m=offs: (s.sent_on, s.sent_off) == (n, m))
    assert len(played) == 2
    clock.t = t0 + 0.3
    s.cancel()
    s.close()
    assert played == [(60, 90, t0, t0 + 0.05), (64, 70, t0 + 0.1, t0 + 0.2),
                      (64, 71, t0 + 0.2, t0 + 0.3)]
    assert s.sent_on == 3 and balanced(sink)


def test_a_note_far_ahead_is_waited_for_in_parts():
    """A duration of years (a drone held until cancelled) or a start in nanoseconds: the
    wait past threading.TIMEOUT_MAX raised OverflowError and ended the thread, so the next
    note's note_off never came. Now the thread waits in parts and lives."""
    import sys

    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.play(48, 80, clock.t, sys.maxsize)  # on now, off never (in practice)
    s.play(60, 80, clock.t + 0.1, 0.1)
    time.sleep(0.05)
    assert s._thread.is_alive()
    start = clock.t + 0.1
    clock.t = start
    assert wait_until(lambda: s.sent_on == 2)
    clock.t = start + 0.1
    assert wait_until(lambda: s.sent_off == 1)  # then only the drone's off is left to wait for
    s.play(62, 80, clock.t + 0.1, 0.1)  # a note after that wait began is still played
    time.sleep(0.1)
    clock.t += 0.1
    assert wait_until(lambda: s.sent_on == 3)
    clock.t += 0.1
    assert wait_until(lambda: s.sent_off == 2)
    assert s._thread.is_alive() and [m.note for _, m in sink.messages
                                     if m.type == "note_off"] == [60, 62]
    s.close()
    assert balanced(sink)  # close ends the drone


def test_a_closed_scheduler_refuses_notes_and_sends_nothing():
    """After close its thread is gone: a note-on sent then would never get its note-off."""
    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.close()
    sent = len(sink.messages)
    for play in (s.play, s.play_beats):
        with pytest.raises(ValueError, match="closed"):
            play(60, 90, clock.t, 0.5)
    assert len(sink.messages) == sent


def test_numpy_ints_are_taken_as_pitch_and_velocity():
    import numpy as np

    sink, clock = Sink(), FakeClock()
    s = Scheduler(sink, clock=clock)
    s.play(np.int64(60), np.int64(90), clock.t, 0.1)
    assert wait_until(lambda: s.sent_on == 1)
    with pytest.raises(ValueError, match="bad note"):
        s.play(True, 90, clock.t, 0.1)
    s.close()
    assert balanced(sink) and sink.kinds()[0] == ("note_on", 60)
