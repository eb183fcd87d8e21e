"""``improv run``: the live loop from input port to outputs.

One thread reads the input port (rtmidi's callback) and queues each message
with its arrival time; the main thread hands them to the
:class:`~improv.improviser.Improviser` and lets time pass; the scheduler's
thread sends the notes. However the loop ends (Ctrl-C, SIGTERM, an
exception), every sounding note is ended, all-notes-off and sustain-off are
sent, and the recording is written.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time

import numpy as np

from improv.config import RunOptions
from improv.engine import NoteModel
from improv.improviser import Improviser
from improv.outputs import PortOutput, SynthOutput
from improv.paths import default_model_dir
from improv.ports import api_name, get_backend, open_input, open_output
from improv.recorder import Recorder
from improv.sampling import Sampler
from improv.scheduler import Scheduler

STATUS_EVERY = 0.5


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
                        print(f"\nimprov: cannot send to {out.name}: {exc}", file=sys.stderr)


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
        port = open_output(backend, options.output)
    else:  # no output named: a virtual one (on JACK, ALSA, CoreMIDI a DAW can connect)
        port = open_output(backend, f"{options.virtual or 'improv'} out", virtual=True)
    return [PortOutput(port)]


def run(options: RunOptions, stop: threading.Event | None = None, log=sys.stderr,
        source=None, outputs: list | None = None) -> int:
    """Run until ``stop`` is set, SIGINT or SIGTERM; return the exit status.

    ``source(enqueue, improviser)`` may replace the input port: it must call
    ``enqueue(msg)`` for each message and return an object with ``name`` and ``close()``
    (``improv demo`` plays its built-in pianist this way). ``outputs`` may
    replace the outputs the options name.
    """
    stop = stop or threading.Event()
    clock = time.monotonic
    model = NoteModel.load(options.model or default_model_dir())
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
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    inport = None
    latencies: list[float] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        # Scheduler panics first: a previous run killed hard may have left notes on.
        scheduler.panic()
        enqueue = lambda msg: inbox.put((clock(), msg))  # noqa: E731  (rtmidi's thread)
        if source is not None:
            inport = source(enqueue, improviser)
        elif options.input:
            inport = open_input(backend, options.input, callback=enqueue)
        else:
            inport = open_input(backend, f"{options.virtual or 'improv'} in", virtual=True,
                                callback=enqueue)
        api = api_name(backend) if backend is not None else "built in"
        print(f"improv: {options.settings.mode}, listening on {inport.name!r} ({api}),"
              f" playing to {', '.join(repr(o.name) for o in outputs)}; Ctrl-C to stop",
              file=log, flush=True)
        every = STATUS_EVERY if getattr(log, "isatty", lambda: False)() else 10 * STATUS_EVERY
        next_status = clock() + every
        while not stop.is_set():
            try:
                t, msg = inbox.get(timeout=0.002)
                improviser.handle(msg, t)
                latencies.append(clock() - t)
                if len(latencies) > 2000:
                    del latencies[:1000]
                continue  # drain the inbox before anything else
            except queue.Empty:
                pass
            now = clock()
            improviser.tick(now)
            if recorder:
                recorder.maybe_write(now)
            if options.status and now >= next_status:
                next_status = now + every
                _status(improviser, latencies, log)
        return 0
    finally:
        improviser.panic()  # note-offs first, before anything that could fail or block
        scheduler.close()
        if recorder:
            recorder.write()
            print(f"\nimprov: recorded {recorder.path}", file=log)
        for port in ([inport] if inport is not None else []) + outputs:
            _close(port)
        if scheduler.jitter:
            ms = np.asarray(scheduler.jitter) * 1e3
            print(f"\nimprov: scheduling jitter p50 {np.percentile(ms, 50):.3f} ms, p99 "
                  f"{np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms ({len(ms)} notes)",
                  file=log)
        print(f"\nimprov: stopped; {improviser.notes_in} notes in, {improviser.notes_out} out",
              file=log, flush=True)


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
    end = "\r" if getattr(log, "isatty", lambda: False)() else "\n"
    print(line, end=end, file=log, flush=True)
