"""A stand-in MIDI device for the tests (see tests.live.Peer): python -m tests.peer KIND NAME."""

import sys

import mido

from tests.live import JACK_BACKEND


def main() -> None:
    kind, name = sys.argv[1], sys.argv[2]
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


if __name__ == "__main__":
    main()
