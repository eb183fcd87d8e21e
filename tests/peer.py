"""A stand-in MIDI device for the tests (see tests.live.Peer): python -m tests.peer KIND NAME.

``python -m tests.peer stream NAME RATE SECONDS``: a virtual output that, after a line on stdin,
sends note-ons and note-offs at RATE a second for SECONDS from its own process (so a busy Python
thread in the test cannot slow the sender down), then prints ``sent N``.

``python -m tests.peer flood NAME TAP RATE SECONDS``: the flood test's sender and its reference
listener, in a process of their own (the test process then holds no client under the flood's
load: a native crash there, in RtMidi or libjack, took the whole suite down with it in CI). A
virtual output NAME and a plain polled input TAP (python-rtmidi, no callback). Each line on
stdin is a command: ``go`` sends RATE messages a second (a note-on and its note-off on random
channels) for SECONDS, with a panic (CC120) halfway, printing ``panicked T`` (T its
``time.monotonic()``, the clock of every process here); ``call`` sends a one-note call and an
end-of-call pedal (CC67). After each it prints ``sent N`` (all sent so far), then ``heard M``
(what TAP heard) once TAP has heard nothing new for a second. At the end of its input it
closes both ports and prints ``closed``.
"""

import sys
import threading
import time

import mido

from improv.portclose import close_rtmidi, spaced
from tests.live import JACK_BACKEND, settled


def main() -> None:
    kind, name = sys.argv[1], sys.argv[2]
    if kind == "stream":
        stream(name, float(sys.argv[3]), float(sys.argv[4]))
        return
    if kind == "flood":
        flood(name, sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
        return
    backend = mido.Backend(JACK_BACKEND, load=True)
    if kind == "keys":
        port = spaced(backend.open_output(name, virtual=True, client_name=name))
        print("ready", flush=True)
        try:
            for line in sys.stdin:  # "60": a note on and off; "on 60": only its note-on
                only_on = line.startswith("on ")
                pitch = int(line.split()[-1])
                port.send(mido.Message("note_on", note=pitch, velocity=80))
                if not only_on:
                    port.send(mido.Message("note_off", note=pitch))
                print("played", pitch, flush=True)
        finally:
            port.close()
    else:
        port = spaced(backend.open_input(name, virtual=True, client_name=name))
        print("ready", flush=True)
        try:
            for msg in port:
                print(msg.type, getattr(msg, "note", getattr(msg, "control", "")), flush=True)
        finally:
            port.close()


def stream(name: str, rate: float, seconds: float) -> None:
    import rtmidi

    port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    port.open_virtual_port(name)
    print("ready", flush=True)
    sys.stdin.readline()
    sent, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        pitch = 21 + sent % 88
        port.send_message([0x90 if sent % 2 == 0 else 0x80, pitch, 64])
        sent += 1
        time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    time.sleep(0.2)  # let JACK deliver the last cycle before the port goes
    print("sent", sent, flush=True)
    close_rtmidi(port)


class Tap:
    """A plain python-rtmidi input, polled (no callback) from a thread, counting what it hears."""

    def __init__(self, name: str):
        import rtmidi

        self.port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name, queue_size_limit=1 << 17)
        self.port.open_virtual_port(name)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            if self.port.get_message() is not None:
                self.count += 1
            else:
                time.sleep(0.0005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()  # never free the port under a thread still polling it
        close_rtmidi(self.port)


def flood(name: str, tap_name: str, rate: float, seconds: float) -> None:
    import numpy as np
    import rtmidi

    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    keys.open_virtual_port(name)
    tap = Tap(tap_name)
    rng = np.random.default_rng(0)
    sent = 0
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "go":
            t0, panicked = time.monotonic(), False
            while time.monotonic() - t0 < seconds:
                for _ in range(5):  # 10 messages a millisecond at 10,000 a second
                    pitch, channel = int(rng.integers(21, 109)), int(rng.integers(16))
                    keys.send_message([0x90 | channel, pitch, 64])
                    keys.send_message([0x80 | channel, pitch, 0])
                    sent += 2
                if not panicked and time.monotonic() - t0 > seconds / 2:
                    keys.send_message([0xB0, 120, 127])  # the panic control, mid-flood
                    print("panicked", time.monotonic(), flush=True)
                    sent += 1
                    panicked = True
                time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        elif command == "call":
            for msg in ([0x90, 60, 80], [0x80, 60, 0], [0xB0, 67, 127]):  # a call, its end
                keys.send_message(msg)
                sent += 1
        else:
            print(f"unknown command {command!r}", flush=True)
            continue
        print("sent", sent, flush=True)
        print("heard", settled(lambda: tap.count), flush=True)  # nothing new for a second
    time.sleep(0.2)  # let JACK deliver the last cycle before the ports go
    close_rtmidi(keys)
    tap.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
