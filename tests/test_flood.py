"""10,000 messages a second for 10 s into the input port: improv stays responsive,
bounded, and fast again afterwards."""

import time

import mido
import numpy as np

from tests.live import Daemon, Listener, connect_output


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_flood(jack):
    synth = Listener("flood synth", virtual=True)
    daemon = Daemon("--virtual", "improvflood", "--output", "flood synth", "--silence", "0.3",
                    "--answer-notes", "2", "--random-seed", "1")
    pianist = connect_output("improvflood in")
    rng = np.random.default_rng(0)
    try:
        rss = []
        panic_sent = None
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 10.0:
            for _ in range(5):  # 10 messages a millisecond: 5 notes on and off
                pitch = int(rng.integers(21, 109))
                pianist.send(mido.Message("note_on", note=pitch, velocity=64,
                                          channel=int(rng.integers(16))))
                pianist.send(mido.Message("note_off", note=pitch))
                sent += 2
            elapsed = time.monotonic() - t0
            if panic_sent is None and elapsed > 5.0:
                synth.messages.clear()
                pianist.send(mido.Message("control_change", control=120, value=127))
                panic_sent = time.monotonic()
            if len(rss) < int(elapsed / 2):
                rss.append(_rss_mb(daemon.proc.pid))
            time.sleep(max(0.0, t0 + sent / 10_000 - time.monotonic()))
        assert sent >= 90_000
        # The panic sent mid-flood was honoured: all-notes-off came out within a second.
        panics = [t for t, m in synth.messages if m.type == "control_change" and m.control == 123]
        assert panics and panics[0] - panic_sent < 1.0, daemon.log[-2000:]
        assert max(rss) - min(rss) < 40, f"memory grew during the flood: {rss}"
        # After the flood: a short call is answered promptly.
        time.sleep(1.0)
        synth.messages.clear()
        pianist.send(mido.Message("note_on", note=60, velocity=80))
        pianist.send(mido.Message("note_off", note=60))
        pianist.send(mido.Message("control_change", control=67, value=127))  # end of call
        sent_at = time.monotonic()
        deadline = sent_at + 3
        while not synth.notes() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert synth.notes(), daemon.log[-2000:]
        assert synth.notes()[0][0] - sent_at < 0.25  # gap 0.1 s + processing
    finally:
        assert daemon.stop() == 0
        pianist.close()
        synth.close()
    assert not synth.stuck()
