"""A stand-in MIDI device for the tests (see tests.live.Peer): python -m tests.peer KIND NAME.

``python -m tests.peer stream NAME RATE SECONDS``: a virtual output that, after a line on stdin,
sends note-ons and note-offs at RATE a second for SECONDS from its own process (so a busy Python
thread in the test cannot slow the sender down), then prints ``sent N``.
"""

import sys
import time

import mido

from tests.live import JACK_BACKEND


def main() -> None:
    kind, name = sys.argv[1], sys.argv[2]
    if kind == "stream":
        stream(name, float(sys.argv[3]), float(sys.argv[4]))
        return
    backend = mido.Backend(JACK_BACKEND, load=True)
    if kind == "keys":
        port = backend.open_output(name, virtual=True, client_name=name)
        print("ready", flush=True)
        for line in sys.stdin:  # "60": a note on and off; "on 60": only its note-on
            only_on = line.startswith("on ")
            pitch = int(line.split()[-1])
            port.send(mido.Message("note_on", note=pitch, velocity=80))
            if not only_on:
                port.send(mido.Message("note_off", note=pitch))
            print("played", pitch, flush=True)
    else:
        port = backend.open_input(name, virtual=True, client_name=name)
        print("ready", flush=True)
        for msg in port:
            print(msg.type, getattr(msg, "note", getattr(msg, "control", "")), flush=True)


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
    port.close_port()
    port.delete()


if __name__ == "__main__":
    main()
