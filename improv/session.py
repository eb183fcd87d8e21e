"""A live session: what ``improv run`` and ``improv demo`` drive, and what a test drives.

A :class:`Session` is opened (the model loaded, outputs and the input opened, the
improviser built, the watchers started), stepped (:meth:`Session.step`: one turn of the
live loop) and closed (every sounding note ended, all-notes-off and sustain-off sent,
the recording written, the ports closed), in that order; it is a context manager::

    with Session(options) as session:
        while session.step() is None:
            pass
    print(session.report())

One thread polls the input port (:mod:`improv.midiin`: no Python callback in JACK's
real-time thread) and the session's inbox takes each message with its arrival time;
:meth:`~Session.step` hands them to the :class:`~improv.improviser.Improviser` and lets
time pass; the scheduler's thread sends the notes. Everything that reads the time takes
the session's ``clock``, and the input and outputs can be given (``source``,
``outputs``), so a test drives a whole session in-process with a fake clock and fake
ports (:mod:`improv.fakes`). :attr:`Session.status` and :meth:`Session.report` are
dataclasses: the human status line and the closing lines are made from them, and
``--status-json`` prints them as JSON lines for scripts (:func:`json_line`): the periodic
``status`` event comes with the status line (not with ``--no-status``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import mido
import numpy as np

from improv.beatout import BeatSender
from improv.config import RunOptions
from improv.engine import NoteModel
from improv.filelock import FileLock
from improv.improviser import Improviser
from improv.jackgraph import JackServerGone
from improv.memory import check_memory_file
from improv.midiin import POLL, POLL_PLAYING, PolledInput
from improv.note import Note
from improv.outfile import check_outputs
from improv.outputs import PortOutput, SynthOutput
from improv.paths import default_model_dir
from improv.ports import (
    PortError,
    api_name,
    check_named_ports,
    get_backend,
    open_output,
    open_polled_input,
    reopen_polled_input,
)
from improv.recorder import Recorder
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from improv.timing import CLOCK_TYPES, TimeKeeper
from improv.watch import PeerEvent, PeerWatch, PortWatch

logger = logging.getLogger(__name__)

STATUS_EVERY = 0.5
#: Exit status when the MIDI system (the JACK server) goes away under a running improv.
EXIT_MIDI_GONE = 3
#: Exit status when the session ended on an error, or could not write what it was to keep
#: (the recording, the memory file): one line says which.
EXIT_FAILED = 1
#: Most input messages handled in a row before the main loop lets time pass: under a
#: flood of input the calls still end and answers still start on time.
MAX_BATCH = 256
#: How often time passes for the improviser (calls end, continue mode is fed).
TICK = 0.001
#: Real-time priority (SCHED_FIFO) for improv's threads, only when asked for
#: (``IMPROV_REALTIME=1``) and allowed (root, or an rtprio limit): above every ordinary
#: process, below JACK's client threads (libjack ran improv's own at 5 here, jackd's
#: default -P 10 minus 5; at an equal priority a Python thread computing an answer
#: would keep them off a core). Measured once with two training jobs on the 2 cores
#: beside it (improv bench live, end-of-call to answer): p99 10.3 ms, max 67 ms without;
#: 4.1 ms, max 4.4 ms with. Not the default: a process that spins at real-time
#: priority starves the whole machine (seen here: libjack's threads of a client whose
#: server died spun at 95% CPU each), and threads and forked children inherit it.
RT_PRIORITY = 2
#: Timer slack (ns) of improv's threads (Linux): how late the kernel may end a sleep to
#: wake threads together. At the default 50 us, the main loop's 0.2 ms poll slept 0.27
#: ms p50 here, so a message waited longer in the input queue; at 1 us 0.23 ms. In
#: ``improv bench live`` (with Improviser.keep_warm) that took the answers that came a JACK
#: period after the echo floor's from 7-15 of 300 to 1-8, and the scheduler's jitter p99
#: from 0.79 to 0.38-0.52 ms (2026-11-30). An idle improv then used 14-15% of a core, not
#: 11-13%.
TIMER_SLACK_NS = 1000
_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30


@dataclass(frozen=True)
class Status:
    """What the status line shows, as data (``--status-json`` prints it)."""

    mode: str
    temperature: float
    notes_in: int
    #: improv's notes played so far (sent: queued notes an answer cut short never were).
    notes_out: int
    latency_p50_ms: float
    latency_p99_ms: float
    keys_released: int
    stall_shifts: int
    #: The session clock's time of this status (seconds, monotonic).
    time: float = 0.0
    #: The tempo in use (bpm) and its source: "clock", "fixed", "onsets", or "none".
    tempo_bpm: float | None = None
    tempo_source: str = "none"
    #: The beat clock's summary ("120.0 bpm (clock, running)", "98.0 bpm (onsets) or 196").
    tempo: str = ""
    transport_stops: int = 0
    #: (context, next note) counts the phrase memory holds (bounded: MemoryConfig.max_entries).
    memory_counts: int = 0

    def line(self) -> str:
        """The human status line."""
        line = (f"{self.mode} | temperature {self.temperature:.2f} | "
                f"in {self.notes_in} out {self.notes_out} | "
                f"latency p50 {self.latency_p50_ms:.2f} ms p99 {self.latency_p99_ms:.2f} ms")
        if self.keys_released:
            line += f" | {self.keys_released} held key(s) released"
        if self.stall_shifts:
            line += f" | delayed {self.stall_shifts}x after stalls"
        if self.tempo:
            line += f" | {self.tempo}"
        return line


@dataclass(frozen=True)
class Listening:
    """Where a session listens and plays (its first line; ``event`` "listening")."""

    mode: str
    input: str
    api: str
    outputs: tuple[str, ...]

    def line(self) -> str:
        return (f"improv: {self.mode}, listening on {self.input!r} ({self.api}), playing to "
                f"{', '.join(repr(o) for o in self.outputs)}; Ctrl-C to stop")


@dataclass(frozen=True)
class Report:
    """What a closed session did (its last lines; ``event`` "stopped")."""

    messages: int
    notes_in: int
    notes_out: int
    answers: int
    keys_released: int
    stall_shifts: int
    stall_seconds: float
    #: Note-ons heard twice (one strike delivered again by JACK) and dropped.
    repeats: int
    jitter_notes: int
    jitter_p50_ms: float | None
    jitter_p99_ms: float | None
    jitter_max_ms: float | None
    recorded: str | None
    exit_status: int | None

    def jitter_line(self) -> str | None:
        if not self.jitter_notes:
            return None
        return (f"improv: scheduling jitter p50 {self.jitter_p50_ms:.3f} ms, p99 "
                f"{self.jitter_p99_ms:.3f} ms, max {self.jitter_max_ms:.3f} ms "
                f"({self.jitter_notes} notes)")

    def line(self) -> str:
        dropped = (f", answer delayed {self.stall_shifts} time(s) by {self.stall_seconds:.2f} s "
                   "after stalls" if self.stall_shifts else "")
        repeats = f" ({self.repeats} duplicate note-on(s) dropped)" if self.repeats else ""
        return (f"improv: stopped; {self.messages} messages heard{repeats}, {self.notes_in} "
                f"notes in, {self.notes_out} out{dropped}")


def json_line(event: str, data) -> str:
    """One ``--status-json`` line: ``{"event": ..., **fields}``."""
    return json.dumps({"event": event, **asdict(data)})


def _realtime() -> bool:
    """Ask for real-time scheduling for this thread and the threads it starts (a
    forked child is reset to ordinary scheduling); return whether it was granted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(RT_PRIORITY))
        return True
    except (AttributeError, OSError):  # not Linux, or not allowed: ordinary scheduling
        return False


def _timer_slack(ns: int) -> int | None:
    """Set this thread's timer slack (the threads it starts inherit it); return the one
    it had, or None where that cannot be done (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
    zero = ctypes.c_ulong(0)
    old = prctl(_PR_GET_TIMERSLACK, zero, zero, zero, zero)
    if old < 0 or prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), zero, zero, zero) != 0:
        return None
    return old


def _ordinary() -> None:
    """Back to ordinary scheduling (the caller may go on, e.g. a test run in-process)."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class FanOut:
    """Send each message to every output, one at a time (ports are not thread-safe)."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.lock = threading.Lock()
        self.errors = 0

    def __call__(self, msg) -> None:
        with self.lock:
            for out in self.outputs:
                try:
                    out.send(msg)
                except Exception as exc:  # a vanished port must not kill the scheduler
                    self.errors += 1
                    if self.errors <= 3:
                        logger.error("\nimprov: cannot send to %s: %s", out.name, exc)


class SafeLog:
    """A log stream whose failures are ignored: a closed or broken stderr (the program
    that started improv died) must not abort the shutdown that ends improv's notes."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except (OSError, ValueError):
            return 0

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False


def make_inbox() -> queue.Queue:
    """Make the main loop's inbox of (arrival time, message) pairs.

    Not ``queue.SimpleQueue``: on CPython 3.11 its ``get(timeout=...)``, interrupted
    by a signal near the deadline, computes a negative timeout and waits forever, so
    a SIGTERM could hang improv (1 stop in ~20 here). ``queue.Queue`` waits correctly.
    """
    return queue.Queue()


def open_synth(options: RunOptions) -> list:
    """Open FluidSynth if asked for (before any port: a bad soundfont fails fast)."""
    if not options.synth:
        return []
    from improv.soundfont import find_soundfont

    return [SynthOutput(find_soundfont(options.soundfont or None), options.audio_driver or None,
                        settings=dict(options.synth_settings))]


def open_port_output(options: RunOptions, backend) -> list:
    """Open the MIDI output, unless only --synth was asked for."""
    if options.synth and not (options.output or options.virtual):
        return []
    if options.output:
        return [PortOutput(open_output(backend, options.output), wanted=options.output)]
    # no output named: a virtual one (on JACK, ALSA, CoreMIDI a DAW can connect)
    port = open_output(backend, f"{options.virtual or 'improv'} out", virtual=True)
    out = PortOutput(port)
    out.name = getattr(port, "real_name", port.name)  # the name others connect to
    return [out]


class Session:
    """One live session: open, step until it ends, close, report.

    ``source(enqueue, improviser)`` may replace the input port: it must call
    ``enqueue(msg)`` for each message and return an object with ``name`` and ``close()``
    (``improv demo`` plays its built-in pianist this way; a test plays its fake keys).
    ``outputs`` may replace the outputs the options name (objects with ``name``,
    ``send(msg)`` and ``close()``). ``model`` may replace the one the options name,
    ``clock`` the monotonic clock. ``status_json``, a stream, gets the session's
    :class:`Listening`, :class:`Status` and :class:`Report` as JSON lines.
    """

    def __init__(self, options: RunOptions, *, log=None, source=None,
                 outputs: list | None = None, model: NoteModel | None = None,
                 clock=time.monotonic, status_json=None):
        self.options = options
        self.log = SafeLog(log if log is not None else sys.stderr)
        self.source, self.clock, self.model = source, clock, model
        self.status_json = SafeLog(status_json) if status_json is not None else None
        self._own_outputs = outputs is None
        self.outputs: list = [] if outputs is None else outputs
        self.backend = None
        self.inport = None
        self.improviser: Improviser | None = None
        self.scheduler: Scheduler | None = None
        self.recorder: Recorder | None = None
        self.listening: Listening | None = None
        self.exit_status: int | None = None
        self.midi_gone = False
        self.failures = 0
        self.latencies: list[float] = []
        self._inbox = make_inbox()
        self._watch = None
        self._peers = None
        self._realtime = False
        self._slack: int | None = None  # the timer slack before open(), to restore
        self._opened = False
        self._closed = False
        self._recording_failed = False
        self._played_notes: deque[Note] = deque()  # improv's, as played, for the recorder
        #: What could not be written when the session closed (the recording, the memory).
        self.unsaved: list[str] = []
        self._polled = None
        self._clock_in: PolledInput | None = None
        self.beat_sender: BeatSender | None = None
        self._next_tick = 0.0
        self._next_status = 0.0
        self._every = STATUS_EVERY

    # -- open ---------------------------------------------------------------------------
    def open(self) -> Session:
        """Load the model, open the outputs and the input, start the watchers."""
        options = self.options
        self.model = self.model or NoteModel.load(options.model or default_model_dir())
        # before anything opens, as the model: a file named for two outputs, a memory file
        # that could not be written at the end or that another improv uses (the improviser
        # holds its lock from when it reads it)
        memory_file = options.settings.memory_file
        lock = FileLock(memory_file) if memory_file else None
        check_outputs(options.record or None, memory_file or None,
                      also=(lock.lock_path,) if lock else ())
        if lock:
            check_memory_file(memory_file)
            lock.acquire().release()
        self._realtime = (threading.current_thread() is threading.main_thread()
                          and os.environ.get("IMPROV_REALTIME") == "1" and _realtime())
        if threading.current_thread() is threading.main_thread():
            self._slack = _timer_slack(TIMER_SLACK_NS)
        # (before any thread starts: they inherit it)
        try:
            if self._own_outputs:
                self.outputs = open_synth(options)
            if self.source is None or self._own_outputs:
                self.backend = get_backend(options.api or None)
                check_named_ports(  # every one that is wrong, before any opens
                    self.backend, inputs=(options.input if self.source is None else "",
                                          options.clock_input),
                    outputs=(options.output if self._own_outputs else "",))
            if self._own_outputs:
                self.outputs += open_port_output(options, self.backend)
        except BaseException:
            for out in self.outputs:
                out.close()
            self._restore_thread()
            raise
        self._opened = True
        try:  # from here on close() undoes what was done: threads, outputs, the slack
            self._build()
            self._open_input()
        except BaseException:
            self.exit_status = EXIT_FAILED
            self.close()
            raise
        return self

    def _build(self) -> None:
        """Make the scheduler, the beat sender, the recorder and the improviser."""
        options, clock = self.options, self.clock
        send = FanOut(self.outputs)
        self._send = send
        self.recorder = recorder = Recorder(options.record, clock()) if options.record else None
        # The recording holds the player's notes as improv heard them and improv's as they
        # were played (not as queued: an answer cut short by the player, a panic or the end
        # of the session left notes in the queue that never sounded).
        self.scheduler = Scheduler(send, channel=options.channel, voices=options.voices,
                                   clock=clock, on_played=self._played if recorder else None)
        timing = options.time  # (a sender even with both off: a control can start the click)
        meter = timing.meter_value()
        self.beat_sender = BeatSender(send, timing.clock_out, timing.metronome,
                                      meter.bar_beats, clock=clock, click_beats=meter.click_beats)
        self.improviser = Improviser(
            self.model, Sampler(options.sampling, options.random_seed), self.scheduler,
            options.settings, options.controls, passthrough=send,
            on_note=self._heard if recorder else None, clock=clock,
            log=lambda text: print(f"\nimprov: {text}", file=self.log, flush=True),
            time_keeper=TimeKeeper(options.time, clock()), beat_sender=self.beat_sender)

    def _heard(self, note: Note, who: str) -> None:
        if who == "player":
            self.recorder.add(note, who)

    def _played(self, pitch: int, velocity: int, start: float, end: float) -> None:
        # The scheduler's thread, its lock held: a deque's append, not the recorder's lock
        # (held while the recording is encoded), which would hold up the notes after it.
        self._played_notes.append(Note(pitch=pitch, start=start, end=end, velocity=velocity))

    def _record_played(self) -> None:
        """Hand the recorder what the scheduler played since the last turn."""
        notes = self._played_notes
        while notes:
            self.recorder.add(notes.popleft(), "improv")

    def _open_input(self) -> None:
        options, clock, backend = self.options, self.clock, self.backend
        # Scheduler panics first: a previous run killed hard may have left notes on.
        self.scheduler.panic()
        # improv's own ports are never an input: they would be a feedback loop (a clock
        # input on improv's own clock out ran it at 96 bpm against its 100: a red team's)
        own = tuple(o.name for o in self.outputs if isinstance(o, PortOutput) and not o.wanted)
        if self.source is not None:
            self.inport = self.source(self.enqueue, self.improviser)
        elif options.input:
            self.inport = open_polled_input(backend, name=options.input, exclude=own)
        else:
            self.inport = open_polled_input(backend, name=f"{options.virtual or 'improv'} in",
                                            virtual=True)
        if options.clock_input:
            self._clock_in = open_polled_input(backend or get_backend(options.api or None),
                                               name=options.clock_input, exclude=own)
        api = api_name(backend) if backend is not None else "built in"
        self.listening = Listening(options.settings.mode, self.inport.name, api,
                                   tuple(o.name for o in self.outputs))
        print(self.listening.line(), file=self.log, flush=True)
        timing = options.time
        if self.beat_sender.active and not (timing.tempo or timing.onsets):
            wanted = [f for f, on in (("--clock-out", timing.clock_out),
                                      ("--metronome", timing.metronome)) if on]
            print(f"improv: {' and '.join(wanted)} follow{'s' if len(wanted) == 1 else ''} the "
                  "tempo in use: none until a MIDI clock arrives (or give --tempo BPM, or "
                  "--onsets)", file=self.log, flush=True)
        self._json("listening", self.listening)
        self._every = options.status_every or (STATUS_EVERY if self.log.isatty()
                                               else 10 * STATUS_EVERY)
        self._next_status = clock() + self._every
        post = lambda item: self._inbox.put((clock(), item))  # noqa: E731
        if backend is not None:  # also with only virtual ports: it sees the server go
            self._watch = PortWatch(backend, self.improviser, self._send, post, self.log)
            self._watch.start()
        if backend is not None and api_name(backend) == "JACK":
            self._peers = _peer_watch(options, self.inport, self.outputs, post, self.log)
        self._polled = self.inport if isinstance(self.inport, PolledInput) else None
        self._next_tick = clock()

    def enqueue(self, msg) -> None:
        """Hand the session a message now (any thread): what a source calls."""
        self._inbox.put((self.clock(), msg))

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is not None and self.exit_status is None:
            self.exit_status = EXIT_FAILED
        self.close()

    # -- step ---------------------------------------------------------------------------
    def step(self, now: float | None = None) -> int | None:
        """One turn of the live loop; return an exit status when the session must end.

        At most MAX_BATCH input events, then whatever the other threads posted, then
        time passes (at ``now``, else the clock's time): the work of one turn is
        bounded, floods included. With nothing to do, a turn waits a moment (a few ms).
        """
        items = self._polled.poll(MAX_BATCH) if self._polled is not None else []
        if self._clock_in is not None:
            # The clock input's clock messages alone (its notes are not the player's), and
            # the main input's none: two clocks mixed, or one heard twice (both inputs on
            # one port), read 120 bpm as 210 or 19,444 (a red team's).
            items = [item for item in items if item[1].type not in CLOCK_TYPES]
            items += [(t, m) for t, m in self._clock_in.poll(MAX_BATCH) if m.type in CLOCK_TYPES]
            items.sort(key=lambda item: item[0])
        for _ in range(MAX_BATCH):
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if not items and self._polled is None:  # a built-in source posts to the inbox: wait
            try:
                items.append(self._inbox.get(timeout=0.002))
            except queue.Empty:
                pass
        for t, msg in items:
            code = self._dispatch(t, msg)
            if code is not None:
                self.exit_status = code
                return code
        if now is None:
            now = self.clock()
        if not items and self._polled is not None and now < self._next_tick:
            if self.improviser.playing(now):
                self.improviser.keep_warm(now)
                time.sleep(POLL_PLAYING)
            else:
                time.sleep(POLL)
            return None
        if now < self._next_tick:
            return None
        self._next_tick = now + TICK
        self.improviser.tick(now)
        if self.recorder:
            self._record_played()
            self._write_recording(now)
        self.improviser.autosave(now)
        if self.options.status and now >= self._next_status:  # --no-status: neither
            self._next_status = now + self._every
            status = self.status
            end = "\r" if self.log.isatty() else "\n"
            print(status.line(), end=end, file=self.log, flush=True)
            self._json("status", status)
        return None

    def _write_recording(self, now: float) -> None:
        """Write the recording now and then; a write that fails (its folder gone, a full
        disk) is one line, and improv plays on and tries again."""
        try:
            if self.recorder.maybe_write(now) and self._recording_failed:
                self._recording_failed = False
                print(f"\nimprov: wrote {self.recorder.path} again", file=self.log, flush=True)
        except OSError as exc:
            if not self._recording_failed:
                print(f"\nimprov: could not write the recording to {self.recorder.path} "
                      f"({exc.strerror or exc}); playing on, trying again every "
                      f"{self.recorder.every:g} s", file=self.log, flush=True)
            self._recording_failed = True

    def _dispatch(self, t: float, msg) -> int | None:
        """Act on one inbox item; return an exit status to end the run."""
        if isinstance(msg, PeerEvent):
            if msg.kind == "server gone":
                self.midi_gone = True  # first: nothing may touch the ports of a dead server
                print("\nimprov: error: the MIDI system went away (improv's ports "
                      "vanished: the JACK server stopped?)", file=self.log)
                return EXIT_MIDI_GONE
            self._on_peers(msg)
            return None
        if not isinstance(msg, mido.Message):  # what the port watch saw
            try:
                self.inport = self._watch.apply(msg, self.inport, self.options.input,
                                                self._reopen_input)
            except PortError as exc:
                self.midi_gone = True
                print(f"\nimprov: error: the MIDI system went away ({exc})", file=self.log)
                return EXIT_MIDI_GONE
            return None
        try:
            self.improviser.handle(msg, t)
        except Exception as exc:  # one bad message must not end the session
            self.failures += 1
            if self.failures <= 3:
                print(f"\nimprov: error handling {msg}: {exc!r}", file=self.log, flush=True)
        self.latencies.append(self.clock() - t)
        if len(self.latencies) > 2000:
            del self.latencies[:1000]
        return None

    def _reopen_input(self):
        # by its full name, as the port watch's outputs are (improv.watch)
        reopen_polled_input(self.backend, self.inport, self.inport.name)
        return self.inport

    def _on_peers(self, event: PeerEvent) -> None:
        if event.kind == "input lost":
            self.inport = self._watch.input_lost(event, self.inport, self.options.input,
                                                 self._reopen_input)
        elif event.kind == "output lost":
            self._watch.output_lost(event)
        elif event.kind == "input gone":
            self.improviser.release_keys(self.clock(), f"{', '.join(event.peers)} disconnected")
        else:
            self.scheduler.reset_listeners()
            if self.beat_sender is not None:
                self.beat_sender.restart()  # a clock follower hears a start on a bar line
            print(f"\nimprov: {', '.join(event.peers)} connected; sent all-notes-off",
                  file=self.log, flush=True)

    @property
    def status(self) -> Status:
        """The session's status now (what the status line shows)."""
        improviser = self.improviser
        lat = (np.asarray(self.latencies[-500:]) * 1e3 if self.latencies else np.zeros(1))
        now = self.clock()
        bpm, source, text = improviser.time.status(now)
        return Status(improviser.settings.mode, float(improviser.temperature),
                      improviser.notes_in, improviser.scheduler.sent_on,
                      float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                      improviser.keys_released, improviser.scheduler.shifts, now,
                      None if bpm is None else float(bpm), source, text,
                      improviser.transport_stops, improviser.memory.entries)

    # -- close --------------------------------------------------------------------------
    def close(self) -> None:
        """End every note, write the recording, close the ports, print the report."""
        if self._closed or not self._opened:
            return
        self._closed = True
        log = self.log
        self._restore_thread()
        if self._watch is not None:
            self._watch.stop()
        if self._peers is not None:
            # (the server may have gone since the watch last looked: its ports are left alone)
            self.midi_gone |= self._peers.graph.gone.is_set()
            self._peers.dead |= self.midi_gone
            self._peers.stop()
        # (Parts are None where open() failed before making them.)
        if self.improviser is not None:
            self.improviser.panic()  # note-offs first, before anything that could fail or block
            # the scheduler's thread ends; the memory file is written
            if not self.improviser.close():
                self.unsaved.append("memory")
        elif self.scheduler is not None:
            self.scheduler.close()
        if self.beat_sender is not None:
            self.beat_sender.close()  # a stop for the clock's followers; the click ends
        if self.recorder:
            # the notes the panic and the scheduler's close ended too (a scheduler thread
            # held in a send past its close's 2 s join would add its last ones too late)
            self._record_played()
            try:
                if self.recorder.notes or not self.recorder.replaces:
                    self.recorder.write()
                    print(f"\nimprov: recorded {self.recorder.path}", file=log)
                else:
                    print(f"\nimprov: nothing to record, so {self.recorder.path} was not "
                          "written", file=log)
            except OSError as exc:
                self.unsaved.append("recording")
                print(f"\nimprov: error: could not write the recording to "
                      f"{self.recorder.path} ({exc.strerror or exc})", file=log)
        if self.exit_status is None:
            self.exit_status = EXIT_FAILED if self.unsaved else 0
        ports = [p for p in (self.inport, self._clock_in) if p is not None]
        for port in ports + self.outputs:
            if not (self.midi_gone and not isinstance(port, SynthOutput)):
                _close(port)  # ports of a vanished JACK server must not be touched: libjack
                # has freed their clients already
        if self.improviser is None:
            return
        report = self.report()
        if self.listening is not None:  # (one that never listened: its error says it all)
            if report.jitter_line():
                print(f"\n{report.jitter_line()}", file=log)
            print(f"\n{report.line()}", file=log, flush=True)
        self._json("stopped", report)

    def _restore_thread(self) -> None:
        """Give this thread back the scheduling and the timer slack it had before open()."""
        if self._realtime:
            _ordinary()
            self._realtime = False
        if self._slack is not None:
            _timer_slack(self._slack)
            self._slack = None

    def report(self) -> Report:
        """What the session did so far (final once it is closed)."""
        improviser, scheduler = self.improviser, self.scheduler
        jitter = [None, None, None]
        if scheduler.jitter:
            ms = np.asarray(scheduler.jitter) * 1e3
            jitter = [float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
                      float(ms.max())]
        return Report(improviser.messages, improviser.notes_in, scheduler.sent_on,
                      improviser.answers, improviser.keys_released, scheduler.shifts,
                      float(scheduler.shifted), improviser.repeats, len(scheduler.jitter),
                      *jitter,
                      str(self.recorder.path) if self.recorder and self.recorder.written
                      else None, self.exit_status)

    def _json(self, event: str, data) -> None:
        if self.status_json is not None:
            print(json_line(event, data), file=self.status_json, flush=True)


def _peer_watch(options: RunOptions, inport, outputs: list, post, log) -> PeerWatch | None:
    """Start watching the virtual ports' peers, the named ports' connections to improv (one
    re-created at once drops them) and the server (JACK only: the port listings do not show
    it going, improv.jackgraph); None if libjack cannot be asked."""
    vin = "" if options.input else inport.name
    vout = next((o.name for o in outputs if isinstance(o, PortOutput) and not o.wanted), "")
    named = [("input", inport.name, lambda: getattr(inport, "own_port", ""))
             ] if options.input else []
    named += [("output", out.name, lambda out=out: getattr(out.port, "own_port", ""))
              for out in outputs if isinstance(out, PortOutput) and out.wanted]
    try:
        watch = PeerWatch(vin, vout, post, ignore=f"improv probe {os.getpid()}:",
                          named=tuple(named))
    except JackServerGone:
        # It stopped after improv's ports opened (a server stopped during the start-up hung
        # improv: with no watch, nothing told; 2 of 25 such starts beside two burners).
        post(PeerEvent("server gone", []))
        return None
    except OSError as exc:  # improv works without it; say what is missing
        print(f"improv: warning: cannot watch the JACK server and the ports' connections "
              f"({exc})", file=log)
        return None
    watch.start()
    return watch


def _close(port, timeout: float = 2.0) -> None:
    """Close a port, but never hang the exit on it (a starved JACK server can)."""
    closer = threading.Thread(target=port.close, daemon=True)
    closer.start()
    closer.join(timeout)
