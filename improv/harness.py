"""Real MIDI ports for tests and benchmarks: a JACK server, improv in a process, a listener.

One harness for both (the tests and ``improv bench`` used to start JACK and the daemon
each their own way):

- :class:`JackServer`: ``jackd -d dummy`` under a server name of its own, so a test or a
  benchmark never touches another JACK; :func:`jack_running` says whether one answers.
- :class:`Daemon`: ``improv run --status-json`` in a subprocess. It is ready when its
  ``listening`` event arrives (a JSON line on stdout, :mod:`improv.session`), not when a
  human message is grepped; :attr:`Daemon.events` holds every event, :attr:`Daemon.lines`
  what it said on stderr.
- :class:`Listener`: what arrives at a port, in an in-memory :class:`~improv.fakes.Sink`.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mido

from improv.fakes import Sink
from improv.paths import REPO_ROOT

JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"


class JackMissing(RuntimeError):
    """jackd is not installed (tests skip; benchmarks say how to install it)."""


def wait_for_line(lines: list[str], text: str, timeout: float) -> bool:
    """Wait until a line containing ``text`` has been read (another thread appends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in lines):
            return True
        time.sleep(0.02)
    return False


def jack_running() -> bool:
    """Whether the default JACK server (``JACK_DEFAULT_SERVER``) answers."""
    from improv.ports import PortError, get_backend, list_ports
    from improv.quiet import quiet_stderr

    try:
        with quiet_stderr():  # libjack explains at length that no server runs
            list_ports(get_backend("jack"))
        return True
    except PortError:
        return False


#: JACK's registry of servers (/dev/shm): 8 slots, and the slot of a server that died without
#: unregistering (killed; orphaned by a test run that timed out) is kept for good. After 8
#: such deaths no server of a new name starts ("Too many servers already active"); only
#: JACK's "default" name reuses its own slot.
JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")


def _reset_registry() -> bool:
    """Remove JACK's server registry if no jackd is alive on this machine (then it holds
    only the slots of dead servers, and the next server makes a fresh one); return whether
    it was removed."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if fields[1] == "(jackd)" and fields[2] != "Z":  # a zombie holds nothing
            return False
    try:
        JACK_REGISTRY.unlink()
        return True
    except OSError:
        return False


class JackServer:
    """``jackd -d dummy`` (48 kHz, period ``period``: 64, 1.33 ms) under its own server name
    (``name``: that one; the benchmarks start JACK's ``default``, as a user's own server would
    be).

    With ``make_default`` this process (and what it starts) uses it: the server name,
    mido's JACK back-end and no audio reservation go into ``os.environ``.
    """

    def __init__(self, log: Path | None = None, suffix: str = "", make_default: bool = True,
                 name: str | None = None, period: int = 64):
        if not shutil.which("jackd"):
            raise JackMissing("jackd is not installed; run: bash install.sh --test")
        self.name = name or f"improvtest{os.getpid()}{suffix}"
        self.period = period
        self._ran = False  # whether our jackd ran: only then are its files ours to remove
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": self.name,
                    "JACK_NO_AUDIO_RESERVATION": "1", "MIDO_BACKEND": JACK_BACKEND}
        if log is None:  # a log all the same: its first line says why jackd did not start
            log = Path(tempfile.mkstemp(prefix="jackd-", suffix=".log")[1])
        self.log_path = log
        self.log = open(log, "wb")
        # JACK keeps a slot per server name in a registry of a few, and a dead server's
        # slot stays taken: with no server alive, start from an empty one (a session of
        # runs here filled it, and the suite's second server could not start). With one
        # alive the registry must stay, full or not.
        _reset_registry()
        started = self._start()
        for _ in range(3):  # a server of this name that just stopped may still hold it
            if started or "server already active" not in log.read_text(errors="replace"):
                break
            time.sleep(1.0)
            self.log = open(log, "wb")
            started = self._start()
        if not started:
            self.stop()
            raise RuntimeError(f"jackd did not start; see {log}")
        if make_default:
            os.environ.update({k: self.env[k] for k in ("JACK_DEFAULT_SERVER", "MIDO_BACKEND",
                                                         "JACK_NO_AUDIO_RESERVATION")})

    def _start(self) -> bool:
        """Start jackd; return whether it answers within 15 s."""
        # -t 5000: a client's requests (opening a client, a port) may wait 5 s for the
        # server instead of 0.5 s; with the CPU burnt beside the tests, opening a client
        # failed now and then ("JACK server not running?") with the default.
        self.proc = subprocess.Popen(
            ["jackd", "--name", self.name, "-t", "5000", "-d", "dummy", "-r", "48000", "-p",
             str(self.period)],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 15
        while subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.close()
                return False
            time.sleep(0.1)
        self._ran = self.proc.poll() is None  # not a live server of that name answering
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        # The semaphores of clients still open when the server stopped (a test of a server
        # that goes away) stay in /dev/shm for good: 371 files there after a few days of runs.
        # Not when ours never ran: the name may be a live server's ("server already active").
        for sem in self.semaphores() if self._ran else ():
            sem.unlink(missing_ok=True)
        if self._ran:  # and its socket
            Path(f"/dev/shm/jack_{self.name}_{os.getuid()}_0").unlink(missing_ok=True)

    def semaphores(self) -> list[Path]:
        """JACK's files in /dev/shm for this server's clients (``jack_sem.UID_NAME_CLIENT``;
        the names here have no "_", so no other server's match)."""
        return list(Path("/dev/shm").glob(f"jack_sem.{os.getuid()}_{glob.escape(self.name)}_*"))


class Daemon:
    """``improv run --status-json`` in a subprocess; waits until it listens."""

    def __init__(self, *args: str, env: dict | None = None, ready_timeout: float = 60,
                 status: bool = False):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "improv", "run", "--status-json",
             *([] if status else ["--no-status"]), *args], cwd=REPO_ROOT,
            # faulthandler: a native crash (seen once in ~30 suite runs, in RtMidi/JACK) prints
            # every thread's stack to the log the tests show
            env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[str] = []
        self.events: list[dict] = []
        self._ready = threading.Event()
        self._readers = [threading.Thread(target=self._read_log, daemon=True),
                         threading.Thread(target=self._read_events, daemon=True)]
        for reader in self._readers:
            reader.start()
        if not self._ready.wait(ready_timeout):
            self.stop()
            raise RuntimeError("improv run did not start:\n" + "".join(self.lines))
        if self.last("listening") is None:  # it ended first: say why, not fail later on
            code = self.stop()  # a port it never opened
            raise RuntimeError(f"improv run ended (status {code}) before it listened:\n"
                               + "".join(self.lines))

    def _read_log(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def _read_events(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            if event.get("event") == "listening":
                self._ready.set()
        self._ready.set()  # it ended: stop waiting (the caller sees it did not listen)

    def wait_for(self, text: str, timeout: float = 10) -> bool:
        return wait_for_line(self.lines, text, timeout)

    def last(self, event: str) -> dict | None:
        """The last event of this kind (``status``, ``stopped``...), or None."""
        return next((e for e in reversed(self.events) if e.get("event") == event), None)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for reader in self._readers:  # everything it said, the last event included
            reader.join(5)
        return code

    @property
    def log(self) -> str:
        return "".join(self.lines)


class Listener(Sink):
    """Record what arrives from the port whose name contains ``substring`` (or, with
    ``virtual=True``, on a new port of that name, like a synth improv plays into).

    It reads its port the way improv does (:func:`improv.ports.open_polled_input`, no
    Python callback in JACK's thread): a callback listener lost messages of its own on
    a loaded machine (the flood test once saw 14 of improv's 16 all-notes-off)."""

    def __init__(self, substring: str, virtual: bool = False):
        from improv.ports import get_backend, open_polled_input

        super().__init__(substring)
        self.port = open_polled_input(get_backend("jack"), self._arrived, substring,
                                      virtual=virtual, fill=False)

    def _arrived(self, t: float, msg: mido.Message) -> None:
        with self.lock:
            self.messages.append((t, msg))

    def close(self) -> None:
        super().close()
        self.port.close()
