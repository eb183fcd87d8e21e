"""An outside MIDI clock, as a DAW sends it, in a process of its own (``improv bench clock``
and the tests use it): ``python -m improv.clocksend NAME BPM`` opens a virtual JACK output
NAME and sends 24 pulses a beat (0xF8) at BPM from the start, on an absolute schedule (a
late pulse does not delay the next), so a busy Python thread in the caller cannot disturb it.

Commands, one a line on stdin; each is done at the next pulse and answered on stdout with
the ``time.monotonic()`` of its send (CLOCK_MONOTONIC, the clock of every process here):

- ``start`` / ``continue`` / ``stop``: 0xFA / 0xFB / 0xFC just before the next pulse (after
  ``start`` that pulse is beat 0) -> ``start T``, ``continue T``, ``stop T``
- ``bpm X``: the pulses from the next one on at X bpm -> ``bpm X T`` (the first such pulse)
- ``notes P P ...``: one note per beat from the next beat (transport running), half a beat
  long, sent with the beat's pulse -> ``note P T`` each
- ``quit``

It prints ``ready`` once the port is open. It asks for real-time scheduling (SCHED_FIFO,
where allowed), as a DAW's clock runs in its audio thread: at ordinary priority on the
loaded 2-core machine here pulses came up to 110 ms late, in bursts.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

from improv.portclose import close_rtmidi

#: Wake this long before a pulse and spin out the rest (sleeps overshoot ~0.1-1 ms here).
SPIN = 0.001
#: SCHED_FIFO priority: above ordinary processes, below JACK's own threads (jackd -P 10).
RT_PRIORITY = 3


def _lines(commands: queue.Queue) -> None:
    for line in sys.stdin:
        commands.put(line.split())
    commands.put(["quit"])


def main(argv: list[str] | None = None) -> None:
    import rtmidi

    name, bpm = (argv or sys.argv[1:])[:2]
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except (AttributeError, OSError):  # not allowed: ordinary scheduling
        pass
    bpm = float(bpm)
    port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    port.open_virtual_port(name)
    commands: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(commands,), daemon=True).start()
    say = lambda *words: print(*words, flush=True)  # noqa: E731
    say("ready")
    running = False
    pulse = 0  # pulses since start (the beat is pulse // 24)
    due: dict[int, list[tuple[list[int], int]]] = {}  # pulse -> messages (and a note to log)
    at = time.monotonic() + 0.01
    while True:
        while True:  # wait for the pulse: sleep, then spin
            left = at - time.monotonic()
            if left <= 0:
                break
            time.sleep(left - SPIN if left > SPIN else 0)
        while not commands.empty():
            cmd = commands.get()
            if not cmd:
                continue
            if cmd[0] == "quit":
                time.sleep(0.1)  # let JACK deliver the last cycle before the port goes
                close_rtmidi(port)
                return
            if cmd[0] in ("start", "continue", "stop"):
                port.send_message([{"start": 0xFA, "continue": 0xFB, "stop": 0xFC}[cmd[0]]])
                say(cmd[0], f"{time.monotonic():.6f}")
                running = cmd[0] != "stop"
                if cmd[0] == "start":
                    pulse, due = 0, {}
            elif cmd[0] == "bpm":
                bpm = float(cmd[1])
                say("bpm", cmd[1], f"{at:.6f}")
            elif cmd[0] == "notes":
                beat = pulse + (-pulse) % 24
                for i, pitch in enumerate(int(p) for p in cmd[1:]):
                    due.setdefault(beat + 24 * i, []).append(([0x90, pitch, 80], pitch))
                    due.setdefault(beat + 24 * i + 12, []).append(([0x80, pitch, 0], -1))
        port.send_message([0xF8])
        sent = time.monotonic()
        if running:
            for message, pitch in due.pop(pulse, []):
                port.send_message(message)
                if pitch >= 0:
                    say("note", pitch, f"{sent:.6f}")
            pulse += 1
        at += 60.0 / bpm / 24


if __name__ == "__main__":
    main()
