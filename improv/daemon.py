"""``improv run``: the live loop from input port to outputs.

One thread polls the input port (:mod:`improv.midiin`: no Python callback in
JACK's real-time thread) and queues each message with its arrival time; the
main thread hands them to the :class:`~improv.improviser.Improviser` and lets
time pass; the scheduler's thread sends the notes. On JACK a watch thread
follows who is connected to the virtual ports (:class:`PeerWatch`). However the
loop ends (Ctrl-C, SIGTERM, an exception), every sounding note is ended,
all-notes-off and sustain-off are sent, and the recording is written.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time

import mido
import numpy as np

from improv.config import RunOptions
from improv.engine import NoteModel
from improv.improviser import Improviser
from improv.midiin import POLL, PolledInput
from improv.outputs import PortOutput, SynthOutput
from improv.paths import default_model_dir
from improv.ports import (
    PortError,
    PortLister,
    api_name,
    get_backend,
    list_ports,
    open_output,
    open_polled_input,
    reopen_polled_input,
)
from improv.recorder import Recorder
from improv.sampling import Sampler
from improv.scheduler import Scheduler

STATUS_EVERY = 0.5
#: Exit status when the MIDI system (the JACK server) goes away under a running improv.
EXIT_MIDI_GONE = 3
#: How often named ports are checked for having gone away (or come back).
WATCH_EVERY = 1.0
#: How often the virtual ports' connections are read (17 µs a read, measured).
PEERS_EVERY = 0.2
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


def _realtime() -> bool:
    """Ask for real-time scheduling for this thread and the threads it starts (a
    forked child is reset to ordinary scheduling); return whether it was granted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(RT_PRIORITY))
        return True
    except (AttributeError, OSError):  # not Linux, or not allowed: ordinary scheduling
        return False


def _ordinary() -> None:
    """Back to ordinary scheduling (the caller may go on, e.g. a test run in-process)."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class PeerEvent:
    """Posted by :class:`PeerWatch`: the virtual input lost its last peer
    (``kind == "input gone"``), the virtual output gained ones (``"output new"``), or
    improv's own ports vanished: the JACK server went away (``"server gone"``)."""

    def __init__(self, kind: str, peers: list[str]):
        self.kind, self.peers = kind, peers


class PeerWatch:
    """Follow the connections of improv's virtual ports on JACK (:mod:`improv.jackgraph`).

    A peer of the virtual input that goes away may have left keys held (its
    note-offs will never come): when the last one goes, the held keys are
    released. A new peer of the virtual output has heard nothing: it first gets
    sustain-off and all-notes-off on every channel (after a ``kill -9`` the
    previous improv may have left its notes on there; the startup panic went out
    before anything was connected).
    """

    def __init__(self, input_port: str, output_port: str, post, ignore: str):
        from improv.jackgraph import JackGraph

        self.graph = JackGraph(f"improv watch {os.getpid()}")
        self.input_port, self.output_port, self.post, self.ignore = (input_port, output_port,
                                                                     post, ignore)
        self._stop = threading.Event()
        self.dead = False  # the server went: never call into libjack again
        self._thread = threading.Thread(target=self._watch, daemon=True, name="improv-peers")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        if not self.dead:  # closing a client of a vanished server crashes libjack
            self.graph.close()

    def _peers(self, port: str) -> list[str] | None:
        found = self.graph.connections(port) if port else None
        return None if found is None else [p for p in found if not p.startswith(self.ignore)]

    def _watch(self) -> None:
        had_input, had_output = [], []
        while not self._stop.wait(PEERS_EVERY):
            found = [self._peers(port) if port else [] for port in (self.input_port,
                                                                    self.output_port)]
            if None in found:  # our own port is gone: so is the server (measured: the
                self.dead = True  # lookups return nothing then, closing the client crashes)
                self.post(PeerEvent("server gone", []))
                return
            peers, outs = found
            if had_input and not peers:
                self.post(PeerEvent("input gone", had_input))
            had_input = peers
            new = [p for p in outs if p not in had_output]
            if new:
                self.post(PeerEvent("output new", new))
            had_output = outs


class _FanOut:
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
                        print(f"\nimprov: cannot send to {out.name}: {exc}",
                              file=_SafeLog(sys.stderr))


class _SafeLog:
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


class PortWatch:
    """Notice named ports that go away and come back; reconnect to them by name.

    A thread of its own looks every WATCH_EVERY seconds through a
    :class:`~improv.ports.PortLister` and posts what it saw to the main loop's inbox;
    the main loop then silences, reports and reconnects (:meth:`apply`). When the
    listing changes, mido lists again from scratch: that is slow (so only then) but
    raises :class:`PortError` if the MIDI system itself went (the JACK server
    stopped), and the run ends with status 3.
    """

    def __init__(self, backend, improviser, send: _FanOut, post, log):
        self.backend, self.improviser, self.send, self.log = backend, improviser, send, log
        self.missing: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(post,), daemon=True,
                                        name="improv-port-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, post) -> None:
        try:
            lister = PortLister(self.backend)
            last = None
            while not self._stop.wait(WATCH_EVERY):
                seen = lister.list()
                if seen != last:  # a port came or went: confirm from scratch
                    last = seen
                    seen = list_ports(self.backend)
                post(seen)
        except PortError as exc:
            post(exc)

    def _say(self, text: str) -> None:
        print(f"\nimprov: {text}", file=self.log, flush=True)

    def apply(self, ports, inport, input_wanted: str, reopen_input):
        """Act on a listing (or a PortError) from the watch thread; return the input port."""
        if isinstance(ports, PortError):
            raise ports
        watched = [("input", inport, input_wanted, ports["inputs"])] if input_wanted else []
        watched += [("output", out, out.wanted, ports["outputs"]) for out in self.send.outputs
                    if isinstance(out, PortOutput) and out.wanted]
        for kind, port, wanted, present in watched:
            key = (kind, wanted)
            if port.name not in present and key not in self.missing:
                self.missing.add(key)
                self.improviser.panic()
                self.improviser.tracker.flush(time.monotonic())
                self._say(f"{kind} port {port.name!r} went away; silenced; waiting for it")
            elif port.name in present and key in self.missing:
                self.missing.discard(key)
                if kind == "input":
                    inport = reopen_input()
                else:
                    with self.send.lock:
                        port.reopen(open_output(self.backend, wanted))
                    self.improviser.panic()  # whatever the port's owner heard last, end it
                self._say(f"{kind} port {port.name!r} is back; reconnected")
        return inport


def run(options: RunOptions, stop: threading.Event | None = None, log=sys.stderr,
        source=None, outputs: list | None = None) -> int:
    """Run until ``stop`` is set, SIGINT or SIGTERM; return the exit status.

    ``source(enqueue, improviser)`` may replace the input port: it must call
    ``enqueue(msg)`` for each message and return an object with ``name`` and ``close()``
    (``improv demo`` plays its built-in pianist this way). ``outputs`` may
    replace the outputs the options name.
    """
    stop = stop or threading.Event()
    log = _SafeLog(log)
    clock = time.monotonic
    model = NoteModel.load(options.model or default_model_dir())
    realtime = (threading.current_thread() is threading.main_thread()
                and os.environ.get("IMPROV_REALTIME") == "1" and _realtime())
    # (before any thread starts: they inherit it)
    own_outputs = outputs is None
    outputs = open_synth(options) if own_outputs else outputs
    try:
        backend = get_backend(options.api or None) if source is None or own_outputs else None
        if own_outputs:
            outputs += open_port_output(options, backend)
    except Exception:
        for out in outputs:
            out.close()
        raise
    send = _FanOut(outputs)
    scheduler = Scheduler(send, channel=options.channel, voices=options.voices)
    recorder = Recorder(options.record, clock()) if options.record else None
    improviser = Improviser(model, Sampler(options.sampling, options.random_seed), scheduler,
                            options.settings, options.controls, passthrough=send,
                            on_note=recorder.add if recorder else None,
                            log=lambda text: print(f"\nimprov: {text}", file=log, flush=True))
    inbox = make_inbox()
    inport = None
    watch = None
    peers = None
    midi_gone = False
    failures = 0
    latencies: list[float] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        # Scheduler panics first: a previous run killed hard may have left notes on.
        scheduler.panic()
        enqueue = lambda msg: inbox.put((clock(), msg))  # noqa: E731  (the source's thread)
        if source is not None:
            inport = source(enqueue, improviser)
        elif options.input:
            inport = open_polled_input(backend, name=options.input)
        else:
            inport = open_polled_input(backend, name=f"{options.virtual or 'improv'} in",
                                       virtual=True)
        api = api_name(backend) if backend is not None else "built in"
        print(f"improv: {options.settings.mode}, listening on {inport.name!r} ({api}),"
              f" playing to {', '.join(repr(o.name) for o in outputs)}; Ctrl-C to stop",
              file=log, flush=True)
        every = STATUS_EVERY if getattr(log, "isatty", lambda: False)() else 10 * STATUS_EVERY
        next_status = clock() + every
        if backend is not None:  # also with only virtual ports: it sees the server go
            watch = PortWatch(backend, improviser, send, lambda seen: inbox.put((clock(), seen)),
                              log)
            watch.start()
        if backend is not None and api_name(backend) == "JACK":
            peers = _peer_watch(options, inport, outputs, lambda e: inbox.put((clock(), e)), log)

        def reopen_input():
            reopen_polled_input(backend, inport, options.input)
            return inport

        def dispatch(t: float, msg) -> int | None:
            """Act on one inbox item; return an exit status to end the run."""
            nonlocal inport, midi_gone, failures
            if isinstance(msg, PeerEvent):
                if msg.kind == "server gone":
                    midi_gone = True  # first: nothing may touch the ports of a dead server
                    print("\nimprov: error: the MIDI system went away (improv's ports "
                          "vanished: the JACK server stopped?)", file=log)
                    return EXIT_MIDI_GONE
                _on_peers(msg, improviser, scheduler, log)
                return None
            if not isinstance(msg, mido.Message):  # what the port watch saw
                try:
                    inport = watch.apply(msg, inport, options.input, reopen_input)
                except PortError as exc:
                    midi_gone = True
                    print(f"\nimprov: error: the MIDI system went away ({exc})", file=log)
                    return EXIT_MIDI_GONE
                return None
            try:
                improviser.handle(msg, t)
            except Exception as exc:  # one bad message must not end the session
                failures += 1
                if failures <= 3:
                    print(f"\nimprov: error handling {msg}: {exc!r}", file=log, flush=True)
            latencies.append(clock() - t)
            if len(latencies) > 2000:
                del latencies[:1000]
            return None

        polled = inport if isinstance(inport, PolledInput) else None
        next_tick = clock()
        while not stop.is_set():
            # At most MAX_BATCH input events, then whatever the other threads posted,
            # then time passes: the work of one turn is bounded, floods included.
            items = polled.poll(MAX_BATCH) if polled is not None else []
            for _ in range(MAX_BATCH):
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if not items and polled is None:  # a built-in source posts to the inbox: wait
                try:
                    items.append(inbox.get(timeout=0.002))
                except queue.Empty:
                    pass
            for t, msg in items:
                code = dispatch(t, msg)
                if code is not None:
                    return code
            now = clock()
            if not items and polled is not None and now < next_tick:
                time.sleep(POLL)
                continue
            if now < next_tick:
                continue
            next_tick = now + TICK
            improviser.tick(now)
            if recorder:
                recorder.maybe_write(now)
            if options.status and now >= next_status:
                next_status = now + every
                _status(improviser, latencies, log)
        return 0
    finally:
        if realtime:
            _ordinary()
        if watch is not None:
            watch.stop()
        if peers is not None:
            peers.dead |= midi_gone
            peers.stop()
        improviser.panic()  # note-offs first, before anything that could fail or block
        scheduler.close()
        if recorder:
            recorder.write()
            print(f"\nimprov: recorded {recorder.path}", file=log)
        for port in ([inport] if inport is not None else []) + outputs:
            if not (midi_gone and not isinstance(port, SynthOutput)):
                _close(port)  # ports of a vanished JACK server must not be touched: libjack
                # has freed their clients already
        if scheduler.jitter:
            ms = np.asarray(scheduler.jitter) * 1e3
            print(f"\nimprov: scheduling jitter p50 {np.percentile(ms, 50):.3f} ms, p99 "
                  f"{np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms ({len(ms)} notes)",
                  file=log)
        dropped = (f", answer delayed {scheduler.shifts} time(s) by {scheduler.shifted:.2f} s "
                   "after stalls" if scheduler.shifts else "")
        print(f"\nimprov: stopped; {improviser.messages} messages heard, {improviser.notes_in} "
              f"notes in, {improviser.notes_out} out{dropped}", file=log, flush=True)


def _peer_watch(options: RunOptions, inport, outputs: list, post, log) -> PeerWatch | None:
    """Start watching the virtual ports' peers (JACK only); None if nothing to watch."""
    vin = "" if options.input else inport.name
    vout = next((o.name for o in outputs if isinstance(o, PortOutput) and not o.wanted), "")
    if not (vin or vout):
        return None
    try:
        watch = PeerWatch(vin, vout, post, ignore=f"improv probe {os.getpid()}:")
    except OSError as exc:  # improv works without it; say what is missing
        print(f"improv: warning: cannot watch the virtual ports' connections ({exc})",
              file=log)
        return None
    watch.start()
    return watch


def _on_peers(event: PeerEvent, improviser: Improviser, scheduler: Scheduler, log) -> None:
    if event.kind == "input gone":
        improviser.release_keys(time.monotonic(), f"{', '.join(event.peers)} disconnected")
    else:
        scheduler.reset_listeners()
        print(f"\nimprov: {', '.join(event.peers)} connected; sent all-notes-off", file=log,
              flush=True)


def _close(port, timeout: float = 2.0) -> None:
    """Close a port, but never hang the exit on it (a starved JACK server can)."""
    closer = threading.Thread(target=port.close, daemon=True)
    closer.start()
    closer.join(timeout)


def _status(improviser: Improviser, latencies: list[float], log) -> None:
    lat = np.asarray(latencies[-500:]) * 1e3 if latencies else np.zeros(1)
    line = (f"{improviser.settings.mode} | temperature {improviser.temperature:.2f} | "
            f"in {improviser.notes_in} out {improviser.notes_out} | "
            f"latency p50 {np.percentile(lat, 50):.2f} ms p99 {np.percentile(lat, 99):.2f} ms")
    if improviser.keys_released:
        line += f" | {improviser.keys_released} held key(s) released"
    if improviser.scheduler.shifts:
        line += f" | delayed {improviser.scheduler.shifts}x after stalls"
    end = "\r" if getattr(log, "isatty", lambda: False)() else "\n"
    print(line, end=end, file=log, flush=True)
