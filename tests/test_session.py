"""A whole live session in-process: fake clock, fake keys, an in-memory output (no JACK)."""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import sys
import time
from dataclasses import replace

import mido
import pytest

from improv.config import RunOptions
from improv.controls import Controls
from improv.fakes import FakeClock, FakeKeys, Sink
from improv.improviser import Settings
from improv.session import TIMER_SLACK_NS, Session
from tests.conftest import REPO

MODEL = str(REPO / "models" / "tutorial-5files")  # small: loads in milliseconds


def wait_until(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.002)
    return bool(cond())


def options(**settings) -> RunOptions:
    base = dict(silence=0.5, answer_notes=4, gap=0.1)
    return RunOptions(model=MODEL, random_seed=0, status=False,
                      settings=Settings(**{**base, **settings}))


def play_call(session, keys, clock, pitches=(60, 64, 67, 72), every=0.2, held=0.1):
    for pitch in pitches:
        keys.note(pitch)
        session.step()
        clock.advance(held)
        keys.note(pitch, 0)
        session.step()
        clock.advance(every - held)
        session.step()


def run_until(session, clock, cond, dt: float = 0.01, limit: int = 20000) -> bool:
    """Step the session, moving the fake clock ``dt`` a step, until ``cond()``."""
    for _ in range(limit):
        if cond():
            return True
        clock.advance(dt)
        session.step()
        time.sleep(0.0005)  # the scheduler's thread follows the fake clock
    return cond()


@pytest.fixture
def parts():
    return FakeClock(), FakeKeys(), Sink("fake synth")


def test_a_call_is_answered_after_its_silence(parts):
    clock, keys, sink = parts
    status = io.StringIO()
    with Session(options(), source=keys, outputs=[sink], clock=clock, log=io.StringIO(),
                 status_json=status) as session:
        play_call(session, keys, clock)
        assert session.improviser.notes_in == 4 and session.improviser.answers == 0
        clock.advance(0.3)  # 0.4 s of silence: less than the 0.5 s that ends the call
        session.step()
        assert session.improviser.answers == 0
        assert run_until(session, clock, lambda: len(sink.notes()) == 4)
        assert session.improviser.answers == 1 and session.improviser.notes_out == 4
        assert run_until(session, clock, lambda: not sink.stuck())
    assert sink.closed and keys.closed
    events = [json.loads(line) for line in status.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["listening", "stopped"]
    assert events[0]["input"] == "fake keys" and events[0]["outputs"] == ["fake synth"]
    stopped = events[-1]
    assert (stopped["messages"], stopped["notes_in"], stopped["notes_out"]) == (8, 4, 4)
    report = session.report()
    assert report.answers == 1 and report.exit_status == 0 == stopped["exit_status"]


def test_playing_again_stops_the_answer(parts, tmp_path):
    clock, keys, sink = parts
    take = tmp_path / "take.mid"
    with Session(replace(options(answer_notes=32, gap=0.2), record=str(take)), source=keys,
                 outputs=[sink], clock=clock, log=io.StringIO()) as session:
        play_call(session, keys, clock)
        assert run_until(session, clock, lambda: len(sink.notes()) >= 3)
        assert session.scheduler.busy
        keys.note(50)  # barge in during the answer
        session.step()
        assert not session.scheduler.busy
        assert run_until(session, clock, lambda: not sink.stuck(), limit=200)
        played = len(sink.notes())
        assert 3 <= played < 32
    # what the recording and the report count is what was played, not what was queued
    tracks = {t.name: [m for m in t if m.type == "note_on" and m.velocity]
              for t in mido.MidiFile(take).tracks}
    assert len(tracks["improv"]) == played == session.report().notes_out
    assert session.improviser.notes_out == 32  # drawn and queued


def test_the_mode_control_switches_to_continue_and_it_plays_on(parts):
    clock, keys, sink = parts
    with Session(options(), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        keys.play(mido.Message("control_change", control=Controls().mode, value=127))
        session.step()
        assert session.improviser.settings.mode == "continue"
        assert run_until(session, clock, lambda: len(sink.notes()) >= 20)
    assert session.status.mode == "continue"


def test_status_is_data_and_the_line_is_made_from_it(parts):
    clock, keys, sink = parts
    with Session(options(), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        play_call(session, keys, clock)
        status = session.status
    assert (status.mode, status.notes_in, status.notes_out) == ("call-response", 4, 0)
    assert status.memory_counts == session.improviser.memory.entries >= 4  # the call, learned
    assert status.line().startswith("call-response | temperature 0.90 | in 4 out 0 | latency")


def test_the_report_counts_note_ons_dropped_as_duplicates(parts):
    clock, keys, sink = parts
    with Session(options(), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        keys.note(60)
        keys.note(60)  # the same event again, at the same instant: JACK's copy
        session.step()
        report = session.report()
    assert (report.messages, report.notes_in, report.repeats) == (2, 1, 1)
    assert "(1 duplicate note-on(s) dropped)" in report.line()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is Linux's")
def test_the_session_sleeps_with_fine_timer_slack_and_gives_it_back(parts):
    clock, keys, sink = parts
    prctl = ctypes.CDLL(None).prctl
    get = 30  # PR_GET_TIMERSLACK: read here independently of improv.session
    before = prctl(get, 0, 0, 0, 0)
    if before == TIMER_SLACK_NS or os.sched_getscheduler(0) != os.SCHED_OTHER:
        pytest.skip("this process has the session's slack already, or runs at real-time "
                    "priority (where Linux keeps no timer slack)")
    with Session(options(), source=keys, outputs=[sink], clock=clock, log=io.StringIO()):
        during = prctl(get, 0, 0, 0, 0)
    assert during == TIMER_SLACK_NS != before
    assert prctl(get, 0, 0, 0, 0) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is Linux's")
def test_a_session_that_fails_to_open_gives_the_timer_slack_back(parts, tmp_path):
    clock, keys, sink = parts
    prctl = ctypes.CDLL(None).prctl
    before = prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK
    bad = RunOptions(model=MODEL, random_seed=0, status=False, synth=True,
                     soundfont=str(tmp_path / "missing.sf2"))
    with pytest.raises(Exception, match="missing.sf2"):
        Session(bad, source=keys, clock=clock, log=io.StringIO()).open()
    assert prctl(30, 0, 0, 0, 0) == before


def test_the_memory_file_is_written_when_the_session_closes(parts, tmp_path):
    """What improv learned is kept when the session ends (and read by the next one)."""
    from improv.memory import PhraseMemory

    clock, keys, sink = parts
    path = tmp_path / "me.json"
    with Session(options(memory_file=str(path)), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        play_call(session, keys, clock)
        assert run_until(session, clock, lambda: len(sink.notes()) == 4)
        assert not path.exists()  # written once, at the end
    assert PhraseMemory.load(path).notes == {"player": 4, "own": 4}
    with Session(options(memory_file=str(path)), source=FakeKeys(), outputs=[Sink("again")],
                 clock=clock, log=io.StringIO()) as again:
        assert again.improviser.memory.notes == {"player": 4, "own": 4}


def test_a_session_that_fails_after_its_outputs_opened_closes_them(parts, tmp_path,
                                                                   monkeypatch):
    """A recording that cannot be written (a full disk) fails open() after the outputs
    opened: they are closed again, as close() would, and no thread of the session is left;
    the error is one line (an ImprovError), not a traceback."""
    import threading

    from improv.errors import ImprovError
    from improv.recorder import Recorder

    def full(self, now=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Recorder, "write", full)
    clock, keys, sink = parts
    before = set(threading.enumerate())
    bad = RunOptions(model=MODEL, random_seed=0, status=False, record=str(tmp_path / "x.mid"))
    with pytest.raises(ImprovError, match="cannot be written .No space left on device"):
        Session(bad, source=keys, outputs=[sink], clock=clock, log=io.StringIO()).open()
    assert sink.closed
    assert wait_until(lambda: not set(threading.enumerate()) - before, timeout=5), \
        [t.name for t in set(threading.enumerate()) - before]


def test_the_memory_file_is_written_after_a_silence_while_the_session_runs(parts, tmp_path):
    """A crash must not lose what was learned: after AUTOSAVE_AFTER seconds of silence
    the file holds the session so far, and again after the next call."""
    from improv.autosave import AUTOSAVE_AFTER
    from improv.memory import PhraseMemory

    clock, keys, sink = parts
    path = tmp_path / "me.json"
    with Session(options(memory_file=str(path)), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        for call in (1, 2):
            play_call(session, keys, clock)
            answered = 4 * call
            assert run_until(session, clock, lambda n=answered: len(sink.notes()) == n)
            assert run_until(session, clock, lambda: not session.scheduler.busy)
            idle = clock()  # the answer is over (when, on the fake clock, varies)
            assert run_until(session, clock, path.exists, dt=0.05)
            quiet = session.improviser.last_input + AUTOSAVE_AFTER
            assert clock() >= quiet  # not before the silence
            assert clock() - max(idle, quiet) < 1.0  # and soon after it
            assert PhraseMemory.load(path).notes == {"player": 4 * call, "own": 4 * call}
            path.unlink()


def test_a_recording_that_cannot_be_written_is_one_line_and_the_session_plays_on(parts,
                                                                                  tmp_path):
    """Its folder removed mid-session: improv says so once, answers the call all the same,
    writes the file again when it can, and ends with EXIT_FAILED if it never could."""
    import shutil

    from improv.session import EXIT_FAILED

    clock, keys, sink = parts
    folder = tmp_path / "takes"
    folder.mkdir()
    log = io.StringIO()
    session = Session(RunOptions(model=MODEL, random_seed=0, status=False,
                                 record=str(folder / "take.mid"),
                                 settings=Settings(silence=0.5, answer_notes=4, gap=0.1)),
                      source=keys, outputs=[sink], clock=clock, log=log)
    with session:
        shutil.rmtree(folder)
        play_call(session, keys, clock)
        assert run_until(session, clock, lambda: len(sink.notes()) == 4)  # answered
        assert run_until(session, clock, lambda: "could not write the recording" in
                         log.getvalue())
        folder.mkdir()
        assert run_until(session, clock, lambda: f"wrote {folder / 'take.mid'} again"
                         in log.getvalue())
        assert len(mido.MidiFile(folder / "take.mid").tracks[1]) > 4
        shutil.rmtree(folder)
        play_call(session, keys, clock)
        assert run_until(session, clock, lambda: len(sink.notes()) == 8)
    assert log.getvalue().count("could not write the recording") == 3  # twice live, at close
    assert session.unsaved == ["recording"] and session.exit_status == EXIT_FAILED
    assert sink.closed and not sink.stuck()


def test_a_memory_file_that_cannot_be_written_is_refused_before_anything_opens(parts,
                                                                              tmp_path):
    clock, keys, sink = parts
    take = tmp_path / "take.mid"
    bad = replace(options(memory_file=str(tmp_path / "no" / "m.json")), record=str(take))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        Session(bad, source=keys, outputs=[sink], clock=clock, log=io.StringIO()).open()
    assert not take.exists() and not sink.messages  # no recording begun, nothing sent


def test_a_memory_file_this_user_may_not_write_is_refused(tmp_path, monkeypatch):
    from improv.errors import ImprovError
    from improv.memory import check_memory_file

    check_memory_file(tmp_path / "m.json")  # fine
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # (root may write anything)
    with pytest.raises(ImprovError, match=r"cannot be written here \(permission denied\)"):
        check_memory_file(tmp_path / "m.json")

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly)
    with pytest.raises(ImprovError, match=r"cannot be written here \(a read-only file system"):
        check_memory_file(tmp_path / "m.json")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this system")
@pytest.mark.parametrize("ignored", [False, True])
def test_sighup_stops_improv_unless_it_is_ignored_as_under_nohup(parts, ignored):
    import threading

    from improv.daemon import run

    clock, keys, sink = parts
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN if ignored else signal.SIG_DFL)
    stop = threading.Event()
    stop.set()  # a session that ends at once: the handlers stay as run() left them
    try:
        assert run(options(), stop=stop, log=io.StringIO(), source=keys, outputs=[sink]) == 0
        handler = signal.getsignal(signal.SIGHUP)
        assert (handler is signal.SIG_IGN) if ignored else callable(handler)
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


class _Polled:
    """A polled input (improv.midiin.PolledInput's poll) that gives what it is handed."""

    def __init__(self):
        self.items = []

    def poll(self, most):
        items, self.items = self.items, []
        return items

    def close(self):
        pass


def test_with_a_clock_input_the_main_inputs_clock_is_not_mixed_in(parts):
    """Two clocks mixed (120 bpm at --clock-input, 90 at the keyboard's port) read 210 bpm,
    and one port named for both read 19,444: only the clock input's clock counts."""
    clock, keys, sink = parts
    with Session(options(), source=keys, outputs=[sink], clock=clock,
                 log=io.StringIO()) as session:
        main, clock_in = _Polled(), _Polled()
        session._polled, session._clock_in = main, clock_in
        t0 = clock()
        for i in range(4 * 24):  # 4 beats: 120 bpm at the clock input, 90 at the main one
            clock_in.items.append((t0 + i * 60 / 120 / 24, mido.Message("clock")))
            main.items.append((t0 + i * 60 / 90 / 24, mido.Message("clock")))
            main.items.append((t0 + i * 60 / 120 / 24, mido.Message("clock")))  # the same
        clock.advance(2.1)
        session.step()
        bpm, source, _ = session.improviser.time.status(clock())
    assert source == "clock" and bpm == pytest.approx(120, rel=1e-3)


def test_an_old_recording_stays_until_there_is_something_to_record(parts, tmp_path):
    """``--record take.mid`` again, and nothing played: the old take was replaced with an
    empty file the moment the session started (a red-team run, 2026-12-02)."""
    clock, keys, sink = parts
    take = tmp_path / "take.mid"
    take.write_bytes(b"yesterday's take")
    log = io.StringIO()
    with Session(replace(options(), record=str(take)), source=keys, outputs=[sink],
                 clock=clock, log=log) as session:
        for _ in range(50):
            session.step()
    assert take.read_bytes() == b"yesterday's take"
    assert f"nothing to record, so {take} was not written" in log.getvalue()
    assert session.report().recorded is None and session.exit_status == 0
    assert [p.name for p in tmp_path.iterdir()] == ["take.mid"]  # no temporary file left
    with Session(replace(options(), record=str(take)), source=keys, outputs=[sink],
                 clock=clock, log=io.StringIO()) as session:
        play_call(session, keys, clock)
        assert run_until(session, clock, lambda: len(sink.notes()) == 4)
    tracks = {t.name: sum(m.type == "note_on" and m.velocity > 0 for m in t)
              for t in mido.MidiFile(take).tracks}
    assert tracks == {"player": 4, "improv": 4}
    assert session.report().recorded == str(take)
