"""Helpers for tests on real MIDI ports: a pianist, connections, another program.

The JACK server, the daemon process and the listener are the harness the benchmarks use
too (:mod:`improv.harness`), imported here under the names the tests know."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import mido

from improv.harness import JACK_BACKEND, Daemon, JackMissing, JackServer, Listener, wait_for_line

__all__ = ["JACK_BACKEND", "Daemon", "JackMissing", "JackServer", "Listener", "wait_for_line"]

REPO = Path(__file__).resolve().parent.parent


def connect_output(substring: str):
    """Open an output port connected to the port whose name contains ``substring``."""
    backend = mido.Backend(JACK_BACKEND, load=True)
    names = [n for n in backend.get_output_names() if substring in n]
    assert names, f"no port with {substring!r} in {backend.get_output_names()}"
    return backend.open_output(names[0])  # a client_name would make mido open a virtual port


def jack_connect(source: str, destination: str) -> None:
    """Connect two JACK ports by full name (as a patchbay would)."""
    subprocess.run(["jack_connect", source, destination], check=True, capture_output=True)


def wait_until(cond, timeout: float = 10.0) -> bool:
    """Wait until ``cond()`` is true (polling); return whether it became true."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(cond())


def play(port, notes, speed: float = 1.0) -> float:
    """Play (pitch, start, end, velocity) notes in real time; return when the last ended."""
    events = sorted([(s / speed, 1, p, v) for p, s, e, v in notes]
                    + [(e / speed, 0, p, 0) for p, s, e, v in notes])
    t0 = time.monotonic()
    for t, on, pitch, vel in events:
        delay = t0 + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        port.send(mido.Message("note_on" if on else "note_off", note=pitch,
                               velocity=vel if on else 0))
    return time.monotonic()


class Peer:
    """Another MIDI program, in its own process so that it can be killed: ``keys`` owns an
    output port and plays a note per line written to it; ``synth`` owns an input port and
    prints what it receives."""

    def __init__(self, kind: str, name: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.peer", kind, name], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        assert self.wait_for("ready", 20), "the peer did not start"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for(self, text: str, timeout: float = 10) -> bool:
        return wait_for_line(self.lines, text, timeout)

    def play(self, pitch: int, only_on: bool = False) -> None:
        self.proc.stdin.write(f"{'on ' if only_on else ''}{pitch}\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def settled(value, quiet: float = 1.0, timeout: float = 60.0) -> int:
    """Wait until ``value()`` has not changed for ``quiet`` seconds; return it."""
    last, since, deadline = value(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last
