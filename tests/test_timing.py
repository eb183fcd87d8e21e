"""Time-keeping in the improviser, in-process: MIDI clock, a fixed tempo, answers on the beat,
quantized onsets, re-timing on a tempo change, transport stop (fake clock, no ports)."""

from __future__ import annotations

import io
import json
import time

import mido
import numpy as np
import pytest

from improv.config import ConfigError, RunOptions, apply_flags, load_config
from improv.controls import Controls
from improv.engine import NoteModel
from improv.fakes import FakeClock, FakeKeys, Sink
from improv.improviser import Improviser, Settings
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from improv.session import Session
from improv.timing import ENGINE_LEAD, TimeKeeper, TimeSettings
from tests.conftest import REPO

MODEL = REPO / "models" / "tutorial-5files"
PULSE = mido.Message("clock")


@pytest.fixture(scope="module")
def model():
    return NoteModel.load(MODEL)


class Band:
    """An improviser on a fake clock with a MIDI clock sender beside it: ``run`` moves time
    in 1 ms steps, sending each pulse at its exact time and letting the improviser tick."""

    def __init__(self, model, settings: Settings, time_settings: TimeSettings | None = None,
                 bpm: float = 120.0, late: float = 0.05):
        self.clock = FakeClock(100.0)
        self.sink = Sink()
        self.scheduler = Scheduler(self.sink, clock=self.clock, late=late)
        self.played: list = []
        self.improv = Improviser(model, Sampler(seed=3), self.scheduler, settings,
                                 on_note=lambda note, who: self.played.append((who, note)),
                                 clock=self.clock,
                                 time_keeper=TimeKeeper(time_settings, self.clock()))
        self.bpm = bpm
        self.next_pulse: float | None = None
        self.pulses = 0  # since start

    def pulses_on(self) -> None:
        """Start sending pulses (no transport message: a DAW's clock while it is stopped)."""
        self.next_pulse = self.clock()

    def start(self) -> float:
        """Send FA just before the next pulse (now if none ran), as a DAW does: that pulse
        is beat 0. Return its time."""
        if self.next_pulse is None:
            self.next_pulse = self.clock()
        self.clock.t = max(self.clock(), self.next_pulse - 0.0005)
        self.improv.handle(mido.Message("start"), self.clock())
        self.pulses = 0
        return self.next_pulse

    def run(self, seconds: float, pace: float = 0.0) -> None:
        """Let ``seconds`` pass (``pace``: real seconds per fake second, for the scheduler's
        own thread to send what falls due)."""
        end = self.clock() + seconds
        while self.clock() < end - 1e-9:
            t = self.clock.advance(0.001)
            while self.next_pulse is not None and self.next_pulse <= t + 1e-9:
                self.improv.handle(PULSE, self.next_pulse)
                self.pulses += 1
                self.next_pulse += 60.0 / self.bpm / 24
            self.improv.tick(t)
            if pace:
                time.sleep(0.001 * pace)

    def call(self, pitches=(60, 64, 67, 72), every: float = 0.25) -> None:
        for pitch in pitches:
            self.improv.handle(mido.Message("note_on", note=pitch, velocity=80), self.clock())
            self.run(every / 2)
            self.improv.handle(mido.Message("note_off", note=pitch), self.clock())
            self.run(every / 2)

    def answer(self) -> list:
        return [note for who, note in self.played if who == "improv"]

    def close(self) -> None:
        self.improv.close()


def on_grid(times, origin: float, step: float, tol: float = 1e-6) -> bool:
    k = (np.asarray(times) - origin) / step
    return bool(np.all(np.abs(k - np.round(k)) * step < tol))


def test_clock_messages_are_not_the_players_input(model):
    band = Band(model, Settings(silence=0.5, held_keys=1.0))
    band.improv.handle(mido.Message("note_on", note=60, velocity=80), band.clock())
    band.start()
    band.run(3.0)
    improv = band.improv
    # The held key timed out although pulses kept coming: they are not input.
    assert improv.keys_released == 1 and improv.messages == 1
    assert improv.time.clock_messages == 1 + band.pulses and 144 <= band.pulses <= 145
    assert improv.time.source(band.clock()).value == "clock"
    assert improv.time.beat.tempo(band.clock()) == pytest.approx(120.0, rel=1e-6)
    band.close()


def test_an_answer_starts_on_the_next_beat_of_the_clock(model):
    band = Band(model, Settings(silence=0.5, answer_notes=8, gap=0.1))
    band.pulses_on()
    band.run(0.3)  # pulses before the transport starts: the tempo, not yet the bars
    origin = band.start()
    band.run(0.37)  # the call starts off the beat
    band.call()
    band.run(1.0)
    answer = band.answer()
    assert len(answer) == 8 and band.improv.answers == 1
    first = answer[0].start
    assert on_grid([first], origin, 0.5)
    ended = band.improv.last_input + 0.5  # when the silence ended the call
    assert ended + 0.1 + ENGINE_LEAD <= first < ended + 0.1 + ENGINE_LEAD + 0.5
    band.close()


def test_answer_on_bar_and_quantized_onsets(model):
    band = Band(model, Settings(silence=0.5, answer_notes=16, gap=0.1),
                TimeSettings(answer_on="bar", quantize="1/16"))
    origin = band.start()
    band.run(0.2)
    band.call()
    band.run(0.8)
    starts = [note.start for note in band.answer()]
    assert len(starts) == 16
    assert on_grid(starts[:1], origin, 2.0)  # a bar of 4/4 at 120 bpm
    assert on_grid(starts, origin, 0.125)  # every onset on the 1/16 grid
    band.close()


def test_a_tempo_change_retimes_the_notes_still_to_come(model):
    band = Band(model, Settings(silence=0.5, answer_notes=24, gap=0.1),
                TimeSettings(quantize="1/16"), late=10.0)
    origin = band.start()
    band.call(every=0.5)
    band.run(0.55, pace=1.0)  # the call is over and answered: the answer is queued in beats
    assert band.improv.answers == 1 and band.scheduler.beats_pending
    line = band.scheduler.timeline
    before = [t for t, on, _ in band.scheduler.queued() if on]
    beats = [line.beat_at(t) for t in before]
    band.bpm = 90.0
    band.run(1.5, pace=1.0)  # 2.25 beats at the new tempo: the clock follows within 2 beats
    line = band.scheduler.timeline
    assert 60 / line.period == pytest.approx(90.0, rel=0.01)
    later = [t for t, on, _ in band.scheduler.queued() if on]
    assert later and len(later) < len(before)
    # The notes still to come kept their beats; their seconds follow the new tempo.
    kept = [line.beat_at(t) for t in later]
    assert np.allclose(kept, beats[-len(kept):], atol=1e-6)
    assert on_grid(kept, 0.0, 0.25)
    assert origin < later[0]
    band.close()


def test_transport_stop_silences_at_once_and_continue_waits_for_start(model):
    band = Band(model, Settings(mode="continue", lookahead=0.5), late=10.0)
    band.start()
    assert band.improv.time.source(band.clock()).value == "none"  # no pulse yet
    band.run(1.5, pace=1.0)
    assert band.sink.notes() and band.scheduler.busy
    band.improv.handle(mido.Message("stop"), band.clock())
    # At once, in the same call: no note sounds, nothing is queued.
    assert not band.sink.stuck() and not band.scheduler.busy
    assert band.improv.transport_stops == 1
    sent = len(band.sink.notes())
    band.run(1.0, pace=0.2)  # pulses go on, the transport stays stopped: improv waits
    assert len(band.sink.notes()) == sent and not band.scheduler.busy
    band.improv.handle(mido.Message("continue"), band.clock())
    band.run(1.0, pace=1.0)
    assert len(band.sink.notes()) > sent
    band.close()
    assert not band.sink.stuck()


def test_with_a_fixed_tempo_continue_plays_on_once_a_stopped_clock_went_away(model):
    """A DAW that stops sends no more pulses: with --tempo, improv paused while the stopped
    clock was there, then stayed silent for good (a red team's). The fixed tempo goes on
    once the clock is gone, as halted() says; while it is there and stopped, improv waits."""
    band = Band(model, Settings(mode="continue", lookahead=0.5), TimeSettings(tempo=100.0),
                late=10.0)
    band.start()
    band.run(1.0, pace=1.0)
    band.improv.handle(mido.Message("stop"), band.clock())
    sent = len(band.sink.notes())
    band.run(0.3, pace=0.5)  # pulses still come: stopped, improv waits
    assert len(band.sink.notes()) == sent and not band.scheduler.busy
    band.next_pulse = None  # the DAW sends no more pulses
    band.run(2.0, pace=1.0)
    assert band.improv.time.source(band.clock()).value == "fixed"
    assert len(band.sink.notes()) > sent
    band.close()
    assert not band.sink.stuck()


def test_continue_mode_on_the_clock_plays_on_its_beats(model):
    band = Band(model, Settings(mode="continue", lookahead=1.0),
                TimeSettings(quantize="1/8"))
    band.pulses_on()
    band.run(0.3)  # the clock runs before the transport starts (it plays on the clock's
    # own beats then)
    before = len(band.answer())
    origin = band.start()
    band.run(2.0)
    starts = [note.start for note in band.answer()[before:]]
    assert len(starts) >= 4
    assert on_grid(starts, origin, 0.25)
    assert on_grid(starts[:1], origin, 0.5)  # it came in on a beat
    band.close()


def test_a_fixed_tempo_takes_its_phase_from_the_call(model):
    band = Band(model, Settings(silence=0.5, answer_notes=4, gap=0.1),
                TimeSettings(tempo=100.0))
    band.run(0.123)
    first = band.clock()
    band.call(pitches=(60, 62, 64, 65, 67, 69, 71, 72), every=0.6)
    band.run(1.5)
    starts = [note.start for note in band.answer()]
    assert len(starts) == 4 and band.improv.time.source(band.clock()).value == "fixed"
    assert on_grid(starts[:1], first, 0.6, tol=0.02)  # the call's own beat
    band.close()


def test_without_a_tempo_the_answer_comes_a_gap_after_the_call(model):
    band = Band(model, Settings(silence=0.5, answer_notes=4, gap=0.1))
    band.call()
    band.run(1.0)
    starts = [note.start for note in band.answer()]
    assert starts[0] == pytest.approx(band.improv.last_input + 0.5 + 0.1, abs=0.0011)
    assert band.scheduler.timeline is None and not band.scheduler.beats_pending
    band.close()


def test_the_onsets_give_a_tempo_only_when_asked(model):
    steady = [(60 + i % 5, 0.5 * i) for i in range(16)]
    for asked, source in ((False, "none"), (True, "onsets")):
        keeper = TimeKeeper(TimeSettings(onsets=asked))
        for _, t in steady:
            keeper.onset(t, 80)
        assert keeper.source(8.0).value == source


def test_time_settings_from_flags_and_the_config_file(tmp_path):
    from improv.cli import build_parser
    from improv.commands.run import _run_options

    args = build_parser().parse_args(
        ["run", "--tempo", "96", "--answer-on", "bar", "--quantize", "1/12",
         "--quantize-strength", "0.5", "--meter", "3/4", "--clock-input", "daw",
         "--onsets", "--status-every", "0.1"])
    options = _run_options(args)
    assert options.time == TimeSettings(tempo=96.0, answer_on="bar", quantize="1/12",
                                        quantize_strength=0.5, meter="3/4", onsets=True)
    assert (options.clock_input, options.status_every) == ("daw", 0.1)
    cfg = tmp_path / "improv.toml"
    cfg.write_text('[time]\ntempo = 120\nquantize = "1/16"\nswing = 0.5\n'
                   '[controls]\nquantize_strength = 20\n')
    options = load_config(cfg)
    assert options.time.quantizer().swing == 0.5 and options.controls.quantize_strength == 20
    for bad, message in (('[time]\ntempo = 10', "time.tempo must be 20-400"),
                         ('[time]\nanswer_on = "soon"', "time.answer_on must be one of"),
                         ('[time]\nquantize = "1/12"\nswing = 0.3', "already triplets"),
                         ('[time]\nbeat = 1', "unknown key")):
        cfg.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_config(cfg)
    with pytest.raises(ConfigError, match="swing must be 0-1"):
        apply_flags(RunOptions(), {"time.swing": 2.0})


def test_the_time_controls(model):
    band = Band(model, Settings(), TimeSettings(quantize="1/16"))
    controls = Controls()
    cc = lambda number, value: band.improv.handle(  # noqa: E731
        mido.Message("control_change", control=number, value=value), band.clock())
    cc(controls.answer_on, 127)
    assert band.improv.time.settings.answer_on == "bar"
    cc(controls.quantize_strength, 0)
    assert band.improv.time.quantizer.strength == 0.0
    cc(controls.swing, 127)
    assert band.improv.time.quantizer.swing == 1.0
    assert band.improv.messages == 3 and band.improv.notes_in == 0
    band.close()


def test_the_status_shows_the_tempo_and_its_source():
    clock, keys, sink = FakeClock(), FakeKeys(), Sink()
    options = RunOptions(model=str(MODEL), status=False, time=TimeSettings(tempo=90.0))
    status_json = io.StringIO()
    with Session(options, source=keys, outputs=[sink], clock=clock, log=io.StringIO(),
                 status_json=status_json) as session:
        status = session.status
        assert (status.tempo_bpm, status.tempo_source) == (90.0, "fixed")
        assert status.line().endswith("| 90.0 bpm (fixed)")
        keys.play(mido.Message("start"))
        for _ in range(40):
            clock.advance(0.02)
            keys.play(PULSE)  # 125 bpm
            session.step()
        status = session.status
        assert status.tempo_source == "clock" and status.tempo_bpm == pytest.approx(125.0)
        assert "bpm (clock, running)" in status.line()
        assert session.improviser.messages == 0  # the clock is not the player
    stopped = json.loads(status_json.getvalue().splitlines()[-1])
    assert stopped["messages"] == 0


def test_the_metronome_control_switches_the_click(model):
    from improv.beatout import BeatSender

    clock, sink = FakeClock(100.0), Sink()
    sender = BeatSender(sink, clock_out=False, metronome=False, thread=False, clock=clock)
    improv = Improviser(model, Sampler(seed=3), Scheduler(Sink(), clock=clock), Settings(),
                        clock=clock, time_keeper=TimeKeeper(TimeSettings(tempo=120.0), clock()),
                        beat_sender=sender)
    switch = mido.Message("control_change", control=Controls().metronome, value=127)

    def run(seconds: float) -> None:
        end = clock() + seconds
        while clock() < end - 1e-9:
            t = clock.advance(0.001)
            improv.tick(t)
            sender.run_until(t)

    run(1.0)
    assert sender.clicks == 0 and not sender.active
    improv.handle(switch, clock())
    run(2.0)  # four beats at 120 bpm
    assert sender.clicks in (4, 5) and sender.metronome
    clicks = sender.clicks
    improv.handle(switch.copy(value=0), clock())  # let go: the next press switches again
    improv.handle(switch, clock())
    run(2.0)
    assert sender.clicks == clicks and not sender.metronome
    assert [m.type for _, m in sink.messages][-2:] == ["note_off", "note_off"]
    improv.close()
