"""Helpers for tests on real MIDI ports: a pianist, connections, another program.

The JACK server, the daemon process and the listener are the harness the benchmarks use
too (:mod:`improv.harness`), imported here under the names the tests know."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido

from improv.harness import JACK_BACKEND, Daemon, JackMissing, JackServer, Listener, wait_for_line
from improv.portclose import spaced

__all__ = ["JACK_BACKEND", "Daemon", "JackMissing", "JackServer", "Listener", "wait_for_line"]

REPO = Path(__file__).resolve().parent.parent


def connect_output(substring: str):
    """Open an output port connected to the port whose name contains ``substring``."""
    backend = mido.Backend(JACK_BACKEND, load=True)
    names = [n for n in backend.get_output_names() if substring in n]
    assert names, f"no port with {substring!r} in {backend.get_output_names()}"
    # no client_name: mido would open a virtual port; its closing spaced (improv.portclose)
    return spaced(backend.open_output(names[0]))


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
    prints what it receives; ``flood`` floods a port and counts what a reference listener
    hears, command by command (:meth:`ask`). See tests.peer."""

    def __init__(self, kind: str, name: str, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.peer", kind, name, *args],
                                     cwd=REPO, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        if not self.wait_for("ready", 20):
            self.kill()
            raise AssertionError(f"the peer did not start: {self.lines}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for(self, text: str, timeout: float = 10) -> bool:
        return wait_for_line(self.lines, text, timeout)

    def ask(self, command: str, timeout: float) -> list[str]:
        """Write ``command``; return the lines it printed up to its ``heard`` line (the
        ``flood`` kind), or fail with what the peer said and how it ended."""
        start = len(self.lines)
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(line.startswith("heard") for line in self.lines[start:]):
                return self.lines[start:]
            time.sleep(0.02)
        raise AssertionError(f"the peer did not finish {command!r}: exit status "
                             f"{self.proc.poll()}, said {self.lines[start:]}")

    def play(self, pitch: int, only_on: bool = False) -> None:
        self.proc.stdin.write(f"{'on ' if only_on else ''}{pitch}\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def close(self, timeout: float = 30) -> None:
        """End its input (``keys`` and ``flood`` then close their ports and exit); kill it if
        it has not ended within ``timeout`` seconds."""
        try:
            self.proc.stdin.close()
        except OSError:  # it is gone already
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


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
