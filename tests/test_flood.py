"""10,000 messages a second for 10 s into the input port, with a reference client
("tap") listening to the same sender: improv hears exactly what the tap hears,
honours a panic sent mid-flood, stays bounded, and answers the next phrase with
nothing stuck. Assertions are on counts and states, never on how fast a loaded
machine is; timeouts only bound the waits."""

import re
import threading
import time

import numpy as np
import rtmidi

from tests.live import Daemon, Listener, jack_connect, settled, wait_until


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Tap:
    """A plain python-rtmidi client, polled (no callback), counting what it hears."""

    def __init__(self, name: str):
        self.port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name, queue_size_limit=1 << 17)
        self.port.open_virtual_port(name)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            if self.port.get_message() is not None:
                self.count += 1
            else:
                time.sleep(0.0005)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.port.close_port()
        self.port.delete()


def test_flood(jack):
    synth = Listener("flood synth", virtual=True)
    daemon = Daemon("--virtual", "improvflood", "--output", "flood synth", "--silence", "0.3",
                    "--answer-notes", "2", "--random-seed", "1")
    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "flood keys")
    keys.open_virtual_port("flood keys")
    tap = Tap("flood tap")
    jack_connect("flood keys:flood keys", "improvflood in:improvflood in")
    jack_connect("flood keys:flood keys", "flood tap:flood tap")
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    try:
        rss = []
        panic_at = None
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 10.0:
            for _ in range(5):  # 10 messages a millisecond: 5 notes on and off
                pitch, channel = int(rng.integers(21, 109)), int(rng.integers(16))
                keys.send_message([0x90 | channel, pitch, 64])
                keys.send_message([0x80 | channel, pitch, 0])
                sent += 2
            elapsed = time.monotonic() - t0
            if panic_at is None and elapsed > 5.0:
                panic_at = len(synth.messages)
                keys.send_message([0xB0, 120, 127])  # the panic control, mid-flood
                sent += 1
            if len(rss) < int(elapsed / 2):
                rss.append(_rss_mb(daemon.proc.pid))
            time.sleep(max(0.0, t0 + sent / 10_000 - time.monotonic()))
        assert sent >= 90_000
        # improv works through its backlog; then a short call is answered
        settled(lambda: tap.count)
        assert daemon.wait_for("panic", 60), daemon.log[-2000:]
        after_panic = [m for _, m in synth.messages[panic_at:]]
        assert sum(m.type == "control_change" and m.control == 123 for m in after_panic) >= 16
        assert max(rss) - min(rss) < 100, f"memory grew during the flood: {rss}"
        time.sleep(1.0)
        synth.messages.clear()
        for msg in ([0x90, 60, 80], [0x80, 60, 0], [0xB0, 67, 127]):  # a call, end of call
            keys.send_message(msg)
            sent += 1
        assert wait_until(lambda: len(synth.notes()) >= 2, 60), daemon.log[-2000:]
        settled(lambda: tap.count)
    finally:
        assert daemon.stop() == 0
        keys.close_port()
        keys.delete()
        tap.close()
        synth.close()
    assert not synth.stuck()
    heard = int(re.search(r"stopped; (\d+) messages heard", daemon.log).group(1))
    # At 10,000 messages a second (ten times a dense passage with pedal) improv hears what a
    # plain client of the same server hears, within 0.5% of what was sent. Measured beside a
    # CPU burner on 2 cores: improv 10 short of the reference in one run (99,994 of 100,004),
    # 60 ahead of it in another; the callback input it replaced lost 3.7% at 5,000 a second.
    # Parity at 2,000 a second is tests/test_midiin.py's.
    assert abs(heard - sent) <= abs(tap.count - sent) + sent // 200, (
        f"sent {sent}, tap heard {tap.count}, improv heard {heard}")
    print(f"sent {sent}, tap heard {tap.count}, improv heard {heard}")
