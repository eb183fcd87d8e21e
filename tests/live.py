"""Helpers for tests on real MIDI ports: a JACK server, the daemon, a pianist, a listener."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido

REPO = Path(__file__).resolve().parent.parent
JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"


def wait_for_line(lines: list[str], text: str, timeout: float) -> bool:
    """Wait until a line containing ``text`` has been read (another thread appends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in lines):
            return True
        time.sleep(0.02)
    return False


class JackServer:
    """``jackd -d dummy`` under its own server name, so tests never touch another JACK."""

    def __init__(self, log: Path, suffix: str = "", make_default: bool = True):
        if not shutil.which("jackd"):
            raise RuntimeError("jackd is not installed; run: bash install.sh --test")
        self.name = f"improvtest{os.getpid()}{suffix}"
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": self.name,
                    "JACK_NO_AUDIO_RESERVATION": "1", "MIDO_BACKEND": JACK_BACKEND}
        self.log = open(log, "wb")
        # -t 5000: a client's requests (opening a client, a port) may wait 5 s for the
        # server instead of 0.5 s; with the CPU burnt beside the tests, opening a client
        # failed now and then ("JACK server not running?") with the default.
        self.proc = subprocess.Popen(
            ["jackd", "--name", self.name, "-t", "5000", "-d", "dummy", "-r", "48000", "-p", "64"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 15
        while subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd did not start; see {log}")
            time.sleep(0.1)
        if make_default:
                os.environ.update({k: self.env[k] for k in ("JACK_DEFAULT_SERVER", "MIDO_BACKEND",
                                                         "JACK_NO_AUDIO_RESERVATION")})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Daemon:
    """``improv run`` in a subprocess; waits until it listens."""

    def __init__(self, *args: str, env: dict | None = None, ready_timeout: float = 60):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "improv", "run", "--no-status", *args], cwd=REPO,
            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(ready_timeout):
            self.stop()
            raise RuntimeError("improv run did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on" in line:
                self._ready.set()

    def wait_for(self, text: str, timeout: float = 10) -> bool:
        return wait_for_line(self.lines, text, timeout)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    @property
    def log(self) -> str:
        return "".join(self.lines)


def connect_output(substring: str):
    """Open an output port connected to the port whose name contains ``substring``."""
    backend = mido.Backend(JACK_BACKEND, load=True)
    names = [n for n in backend.get_output_names() if substring in n]
    assert names, f"no port with {substring!r} in {backend.get_output_names()}"
    return backend.open_output(names[0])  # a client_name would make mido open a virtual port


class Listener:
    """Record what arrives from the port whose name contains ``substring`` (or, with
    ``virtual=True``, on a new port of that name, like a synth improv plays into)."""

    def __init__(self, substring: str, virtual: bool = False):
        backend = mido.Backend(JACK_BACKEND, load=True)
        self.messages: list[tuple[float, mido.Message]] = []
        record = lambda m: self.messages.append((time.monotonic(), m))  # noqa: E731
        if virtual:
            self.port = backend.open_input(substring, virtual=True, callback=record,
                                           client_name=substring)  # "NAME:NAME" on JACK
            return
        names = [n for n in backend.get_input_names() if substring in n]
        assert names, f"no port with {substring!r} in {backend.get_input_names()}"
        self.port = backend.open_input(names[0], callback=record)

    def notes(self, kind: str = "note_on") -> list[tuple[float, mido.Message]]:
        if kind == "note_on":
            return [(t, m) for t, m in self.messages if m.type == "note_on" and m.velocity > 0]
        return [(t, m) for t, m in self.messages
                if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]

    def stuck(self) -> set[int]:
        """Pitches switched on and not off (all-notes-off, CC123, clears a channel)."""
        on: dict[int, int] = {}
        for _, m in self.messages:
            if m.type == "note_on" and m.velocity > 0:
                on[m.note] = on.get(m.note, 0) + 1
            elif m.type in ("note_on", "note_off"):
                on[m.note] = max(on.get(m.note, 0) - 1, 0)
            elif m.type == "control_change" and m.control == 123:
                on.clear()
        return {p for p, n in on.items() if n}

    def close(self) -> None:
        self.port.close()


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
