"""Clock out and metronome (improv.beatout): in-process on given times, then over real JACK
ports with a listener, as a drum machine following improv would hear them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from improv.beatclock import PPQN, Timeline
from improv.beatout import CLICK_BAR, CLICK_BEAT, CLICK_CHANNEL, CLICK_LENGTH, BeatSender
from improv.fakes import Sink
from improv.harness import Daemon, Listener

AT_120 = Timeline(time=0.0, beat=0.0, period=0.5)


class TimedSink(Sink):
    """A sink that stamps each message with the time the test says it is (``now``)."""

    now = 0.0

    def send(self, msg) -> None:
        self.messages.append((self.now, msg))


def _sender(**kwargs) -> tuple[BeatSender, TimedSink]:
    sink = TimedSink()
    return BeatSender(sink, thread=False, **kwargs), sink


def _advance(sender: BeatSender, start: float, end: float, step: float = 0.001) -> None:
    """Let time pass from ``start`` to ``end`` (inclusive) as the sender's thread sees it:
    a look every ``step`` seconds (a jump at once would be a stall)."""
    for now in np.append(np.arange(start, end, step), end):
        sender.send.now = float(now)
        sender.run_until(float(now))


def _types(sink: Sink) -> list[str]:
    return [m.type for _, m in sink.messages]


def test_clock_out_sends_24_pulses_a_beat_after_a_start_on_the_bar_line():
    sender, sink = _sender()
    sender.set_timeline(Timeline(time=0.0, beat=-0.5, period=0.5), now=0.0)  # half a beat to a bar
    _advance(sender, 0.0, 2.25)  # to beat 4
    kinds = _types(sink)
    # Pulses from beat -0.5 to 4: 12 before the bar line, then 4 beats and the pulse at 4.
    assert kinds.count("clock") == 12 + 4 * PPQN + 1
    assert kinds.count("start") == 1 and kinds.index("start") == 12  # just before beat 0's
    assert sender.pulses == kinds.count("clock")


def test_pulses_follow_a_tempo_change_and_stop_when_the_tempo_goes():
    sender, sink = _sender()
    sender.set_timeline(AT_120, now=0.0)
    _advance(sender, 0.0, 0.999)  # two beats at 120 (the pulse at 1.0 not yet)
    at_90 = Timeline(time=1.0, beat=2.0, period=60 / 90)
    sender.set_timeline(at_90, now=1.0)
    _advance(sender, 1.0, 1.0 + 2 * 60 / 90)  # two beats at 90
    pulses = [t for t, m in sink.messages if m.type == "clock"]
    assert len(pulses) == 4 * PPQN + 1
    gaps = np.diff(pulses)  # as sent: one look (1 ms) at most off
    assert np.allclose(gaps[:2 * PPQN - 1], 0.5 / PPQN, atol=0.0011)
    assert np.allclose(gaps[2 * PPQN + 1:], at_90.period / PPQN, atol=0.0011)
    sender.set_timeline(None, now=2.4)
    assert _types(sink)[-1] == "stop" and sender.stops == 1
    assert sender.run_until(10.0) == 0  # no tempo: nothing to send


def test_a_long_stall_skips_ahead_and_the_follower_starts_again_on_the_bar():
    sender, sink = _sender()
    sender.set_timeline(AT_120, now=0.0)
    _advance(sender, 0.0, 0.1)
    before = sender.pulses
    assert _types(sink)[0] == "start"
    sink.now = 5.0
    sender.run_until(5.0)  # 10 beats late: one pulse, at 5.0, not 240 at once
    sender.run_until(5.0)
    assert sender.pulses - before == 1 and _types(sink)[-2:] == ["stop", "clock"]
    _advance(sender, 5.0, 6.0)  # the next bar line is beat 12, at 6.0: a start there
    assert _types(sink).count("start") == 2 and sink.messages[-2][0] == 6.0
    assert _types(sink)[-2:] == ["start", "clock"]


@pytest.mark.parametrize("stall", [0.08, 0.3])
def test_after_a_short_stall_the_pulses_owed_go_out_at_once_without_late_clicks(stall):
    """A follower counts pulses: 4 lost after a stall of 80 ms, 15 after 0.3 s, shifted its
    bars for good (a red team's); a beat or less owed goes out at once."""
    sender, sink = _sender(metronome=True)
    sender.set_timeline(AT_120, now=0.0)
    _advance(sender, 0.0, 0.7)
    clicks = sender.clicks
    _advance(sender, 0.7 + stall, 2.0)  # held for ``stall`` s from 0.7
    # every pulse of beats 0-4 (2.0 s) went out, the start's pulse included
    assert sender.pulses == 4 * PPQN + 1 and _types(sink).count("start") == 1
    assert _types(sink).count("stop") == 0
    late = [t for t, m in sink.messages if m.type == "note_on" and t > 0.7 + stall - 1e-9]
    assert sender.clicks - clicks == len(late) == 3  # the beats at 1.0, 1.5 and 2.0, on time
    assert np.allclose(late, [1.0, 1.5, 2.0], atol=0.0011)


def test_metronome_clicks_each_beat_accented_on_the_bar_and_each_click_ends():
    sender, sink = _sender(clock_out=False, metronome=True, bar_beats=3)
    sender.set_timeline(AT_120, bar_offset=1.0, now=0.0)  # bars of 3 beats from beat 1
    _advance(sender, 0.0, 3.0)  # beats 0-6
    ons = [m for _, m in sink.messages if m.type == "note_on"]
    assert [m.note for m in ons] == [CLICK_BEAT, CLICK_BAR, CLICK_BEAT, CLICK_BEAT, CLICK_BAR,
                                     CLICK_BEAT, CLICK_BEAT]
    assert all(m.channel == CLICK_CHANNEL for _, m in sink.messages)
    assert "clock" not in _types(sink)
    _advance(sender, 3.0, 3.0 + CLICK_LENGTH + 0.001)
    offs = [m for _, m in sink.messages if m.type == "note_off"]
    assert len(offs) == 2 * len(ons)  # both wood blocks off after each click


def test_stopped_transport_silences_the_click_and_stops_the_clock_but_pulses_run_on():
    sender, sink = _sender(metronome=True)
    sender.set_timeline(AT_120, now=0.0)
    _advance(sender, 0.0, 0.99)
    clicks = sender.clicks
    sender.set_timeline(AT_120, running=False, now=0.99)  # the incoming clock stopped
    assert _types(sink)[-1] == "stop"
    pulses = sender.pulses
    _advance(sender, 1.0, 1.99)
    assert sender.clicks == clicks and sender.pulses - pulses == 2 * PPQN
    sender.set_timeline(Timeline(time=2.0, beat=0.0, period=0.5), renumbered=True,
                        now=2.0)  # a start
    _advance(sender, 2.0, 2.5)
    assert sender.starts == 2 and sender.clicks == clicks + 2


def test_pulses_run_on_through_an_incoming_stop_and_a_start_restarts_them():
    # Clock out passing on an incoming clock, as the improviser hands it the timelines:
    # the stop's timeline counts its beats afresh, and the pulses must go on all the same.
    import mido

    from improv.timing import TimeKeeper

    keeper, (sender, sink) = TimeKeeper(now=0.0), _sender()
    pulse = 0.5 / PPQN

    def hear(message: str, t: float) -> None:
        keeper.midi(mido.Message(message), t)
        line, renumbered = keeper.refresh(t)
        sender.set_timeline(line, renumbered, keeper.beat.bar_offset(t),
                            running=not keeper.halted(t), now=t)

    t = 1.0
    for _ in range(2 * PPQN):  # pulses before the start: the tempo
        hear("clock", t)
        _advance(sender, t, t + pulse - 0.001)
        t += pulse
    # (Pulses without a start: improv starts its followers on its own bar line; the
    # incoming start then restarts them on the song's.)
    hear("start", t)
    starts, stops = sender.starts, sender.stops
    for beat in range(16):
        if beat == 8:
            hear("stop", t)
            stopped_at = sender.pulses
        if beat == 12:
            assert abs(sender.pulses - stopped_at - 4 * PPQN) <= 2, (sender.pulses, stopped_at)
            hear("start", t)
        for _ in range(PPQN):
            hear("clock", t)
            _advance(sender, t, t + pulse - 0.001)
            t += pulse
    assert (sender.starts - starts, sender.stops - stops) == (2, 1)
    kinds = _types(sink)
    assert kinds[-4 * PPQN - 2:].count("clock") >= 4 * PPQN  # on after the second start


def test_close_stops_the_clock_and_ends_a_sounding_click():
    sender, sink = _sender(metronome=True)
    sender.set_timeline(AT_120, now=0.0)
    sender.run_until(0.0)
    sender.close()
    assert _types(sink)[-3:] == ["stop", "note_off", "note_off"]


def test_a_clock_of_numpy_floats_does_not_kill_the_thread():
    """The sender's thread waits on a Condition, which takes no NumPy float32: a clock that
    gives them (times from a NumPy array) plays its pulses all the same."""
    from improv.fakes import FakeClock

    class NumpyClock(FakeClock):
        def __call__(self):
            return np.float32(self.t)

    clock, sink = NumpyClock(t=10.0), Sink()
    sender = BeatSender(sink, clock=clock)
    sender.set_timeline(Timeline(time=10.5, beat=0.0, period=0.5), now=10.0)
    time.sleep(0.05)
    assert sender._thread.is_alive()
    clock.t = 10.5
    deadline = time.monotonic() + 10
    while not sender.pulses and time.monotonic() < deadline:
        time.sleep(0.002)
    assert sender.pulses >= 1 and sender._thread.is_alive()
    sender.close()


def test_bad_sender_settings_say_which():
    with pytest.raises(ValueError, match="bar_beats"):
        BeatSender(Sink(), thread=False, bar_beats=0)


def test_an_idle_sender_sends_nothing_until_the_click_is_switched_on():
    sender, sink = _sender(clock_out=False, metronome=False)
    sender.set_timeline(AT_120, now=0.0)
    _advance(sender, 0.0, 1.0)
    assert sink.messages == [] and not sender.active
    sender.set_metronome(True)
    _advance(sender, 1.0, 2.0)
    assert sender.clicks == 3  # beats at 1.0, 1.5, 2.0


@pytest.mark.slow
def test_clock_out_and_metronome_over_jack(jack):
    """improv run --tempo 120 --clock-out --metronome: what a follower hears on its output."""
    daemon = Daemon("--api", "jack", "--virtual", "beatout", "--tempo", "120", "--clock-out",
                    "--metronome")
    listener = Listener("beatout out")
    try:
        # The listener connects after improv listens: improv starts it on the next bar line
        # then (a follower that connects gets a start); wait for 6 beats after that.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with listener.lock:
                kinds = [m.type for _, m in listener.messages]
            if "start" in kinds and kinds[kinds.index("start"):].count("clock") >= 6 * PPQN:
                break
            time.sleep(0.05)
    finally:
        code = daemon.stop()
        time.sleep(0.3)  # the stop's JACK cycle
        listener.close()
    assert code == 0, daemon.log
    msgs = list(listener.messages)
    kinds = [m.type for _, m in msgs]
    assert "start" in kinds and kinds[-1] in ("stop", "note_off"), kinds[-5:]
    assert "stop" in kinds[kinds.index("start"):]
    pulses = np.array([t for t, m in msgs if m.type == "clock"])
    assert len(pulses) >= 6 * PPQN
    # 120 bpm: a pulse every 20.8 ms (the median: one late pulse is not the tempo).
    assert np.median(np.diff(pulses)) == pytest.approx(60 / 120 / PPQN, rel=0.05)
    # A click on every 24th pulse, on channel 10, and each one ends; the start on a bar
    # line, so the click with the start's pulse is the bar's.
    clicks = [m for _, m in msgs if m.type == "note_on"]
    assert clicks and all(m.channel == CLICK_CHANNEL for m in clicks)
    assert abs(len(pulses) / PPQN - len(clicks)) <= 1
    after = [m for _, m in msgs[kinds.index("start"):]]
    assert next(m for m in after if m.type == "note_on").note == CLICK_BAR
    offs = [m for _, m in msgs if m.type == "note_off"]
    assert len(offs) >= 2 * len(clicks)


@pytest.mark.slow
def test_clock_input_port_gives_the_tempo_and_clock_out_passes_it_on(jack):
    """--clock-input: the clock comes from a port of its own (an outside sender at 100 bpm),
    the player's input stays apart; with --clock-out improv passes that tempo on."""
    from improv.clockbench import ClockSender

    sender = ClockSender("beatsrc", 100.0)
    daemon = listener = None
    try:
        sender.say("start")
        daemon = Daemon("--api", "jack", "--virtual", "fwd", "--clock-input", "beatsrc",
                        "--clock-out", "--status-every", "0.1", status=True)
        listener = Listener("fwd out")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = daemon.last("status")
            with listener.lock:
                pulses = [t for t, m in listener.messages if m.type == "clock"]
            if status and status["tempo_source"] == "clock" and len(pulses) > 4 * PPQN:
                break
            time.sleep(0.05)
    finally:
        sender.close()
        code = daemon.stop() if daemon is not None else None
        if listener is not None:
            listener.close()
    assert code == 0, daemon.log
    # the status while the clock ran (not the last one: once the sender is gone, the clock
    # times out before a loaded machine has stopped improv, and the source is none again)
    assert status["tempo_source"] == "clock", status
    assert status["tempo_bpm"] == pytest.approx(100.0, rel=0.01)
    assert np.median(np.diff(pulses)) == pytest.approx(60 / 100 / PPQN, rel=0.05)


def test_a_stopped_clock_that_goes_away_no_longer_holds_the_click():
    # The DAW stopped, then went away; with --tempo the metronome goes on at that tempo.
    import mido

    from improv.timing import TimeKeeper, TimeSettings

    keeper = TimeKeeper(TimeSettings(tempo=100.0), now=0.0)
    t = 1.0
    for _ in range(48):
        keeper.midi(mido.Message("clock"), t)
        t += 0.5 / PPQN
    keeper.midi(mido.Message("stop"), t)
    assert keeper.halted(t) and keeper.source(t).value == "clock"
    later = t + keeper.beat.config.clock_timeout + 0.1  # no pulse since
    assert not keeper.halted(later) and keeper.source(later).value == "fixed"


@pytest.mark.parametrize("clock_out", [True, False])
def test_in_seven_eight_every_bar_line_clicks_accented_and_the_start_is_on_one(clock_out):
    """7/8 at 120: bars of 3.5 beats. Bar lines on half beats never clicked (the accent
    came every other bar) and a clock out's start waited for one on a beat."""
    from improv.beatclock import Meter

    meter = Meter.parse("7/8")
    sender, sink = _sender(metronome=True, clock_out=clock_out, bar_beats=meter.bar_beats,
                           click_beats=meter.click_beats)
    sender.set_timeline(Timeline(time=0.0, beat=1.0, period=0.5), now=0.0)  # mid-bar
    _advance(sender, 0.0, 6.5)  # beats 1-14: bar lines at 3.5, 7, 10.5 and 14
    accents = [t for t, m in sink.messages if m.type == "note_on" and m.note == CLICK_BAR]
    assert np.allclose(accents, [1.25, 3.0, 4.75, 6.5], atol=0.0011)
    assert sender.clicks == 13 * 2 + 1  # every eighth
    if clock_out:  # the start just before the first bar line's pulse
        kinds = _types(sink)
        assert kinds.count("start") == 1 and kinds[kinds.index("start") + 1] == "clock"
        assert sink.messages[kinds.index("start")][0] == pytest.approx(1.25, abs=0.0011)


def test_a_meter_whose_bar_is_no_whole_number_of_clicks_is_refused():
    with pytest.raises(ValueError, match="no whole number of clicks"):
        BeatSender(Sink(), thread=False, bar_beats=3.5, click_beats=1.0)


def test_the_click_steps_by_the_meters_unit_in_x8():
    """6/8 clicked three quarters to a bar, as 3/4 (a red team's): six eighths now."""
    from improv.beatclock import Meter

    steps = {m: Meter.parse(m).click_beats for m in ("4/4", "3/4", "2/2", "6/8", "7/8",
                                                     "12/8", "5/16")}
    assert steps == {"4/4": 1.0, "3/4": 1.0, "2/2": 1.0, "6/8": 0.5, "7/8": 0.5,
                     "12/8": 0.5, "5/16": 0.25}
