"""10,000 messages a second for 10 s into the input port, with a reference client
("tap") listening to the same sender: improv hears exactly what the tap hears,
honours a panic sent mid-flood, stays bounded, and answers the next phrase with
nothing stuck. Assertions are on counts and states, never on how fast a loaded
machine is; timeouts only bound the waits.

The sender and the tap run in a process of their own (tests.peer's ``flood``): the test
process holds no client under the flood's load (a native crash there, in RtMidi or libjack,
took the whole suite down with it once in CI)."""

import re
import threading

from tests.live import Daemon, Listener, Peer, jack_connect, settled, wait_until


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _said(lines: list[str], word: str) -> str:
    return next(line for line in lines if line.startswith(word)).split()[1]


def test_flood(jack):
    synth = Listener("flood synth", virtual=True)
    daemon = peer = None
    try:
        daemon = Daemon("--virtual", "improvflood", "--output", "flood synth", "--silence",
                        "0.3", "--answer-notes", "2", "--random-seed", "1")
        peer = Peer("flood", "flood keys", "flood tap", "10000", "10")
        jack_connect("flood keys:flood keys", "improvflood in:improvflood in")
        jack_connect("flood keys:flood keys", "flood tap:flood tap")
        # the daemon's memory every 2 s while the peer floods (its answer ends it)
        rss: list[float] = []
        failed: list[BaseException] = []
        done = threading.Event()

        def sample() -> None:
            try:
                while not done.wait(2.0):
                    rss.append(_rss_mb(daemon.proc.pid))
            except BaseException as exc:  # (a daemon gone: said below, not as memory)
                failed.append(exc)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            said = peer.ask("go", 120)  # the flood, then the tap's count once it settles
        finally:
            done.set()
            sampler.join()
        assert not failed, (failed, daemon.log[-2000:])
        assert int(_said(said, "sent")) >= 90_000
        # improv works through its backlog and honours the panic sent halfway
        assert daemon.wait_for("panic", 60), daemon.log[-2000:]
        panicked = float(_said(said, "panicked"))

        def all_notes_off() -> int:
            return sum(m.type == "control_change" and m.control == 123
                       for t, m in list(synth.messages) if t >= panicked)

        # improv logs the panic before it sends the 16 all-notes-off, so they may still be on
        # their way when the line is read (a CI-like run beside a burner once counted none)
        assert wait_until(lambda: all_notes_off() >= 16, 30), (  # (what to look at if not)
            all_notes_off(), panicked, len(synth.messages), synth.messages[-5:],
            daemon.log[-1500:])
        assert len(rss) >= 3 and max(rss) - min(rss) < 100, f"memory grew in the flood: {rss}"
        # (a loaded improv may still be answering the flood: that answer is not this one's)
        settled(lambda: len(synth.messages), quiet=1.0)
        synth.messages.clear()
        said = peer.ask("call", 60)  # a one-note call, then the end-of-call pedal
        sent, heard = int(_said(said, "sent")), int(_said(said, "heard"))
        assert wait_until(lambda: len(synth.notes()) >= 2, 60), daemon.log[-2000:]
    finally:
        # every client closed whatever failed (a tap left polling a port freed later
        # crashed the test process once)
        try:
            code = daemon.stop() if daemon is not None else None
            wait_until(lambda: not synth.stuck(), 5)  # its last note-offs, sent as it stopped
        finally:
            try:
                if peer is not None:
                    peer.close()
            finally:
                synth.close()
    assert code == 0, daemon.log[-2000:]
    assert not synth.stuck()
    improv_heard = int(re.search(r"stopped; (\d+) messages heard", daemon.log).group(1))
    # At 10,000 messages a second (ten times a dense passage with pedal) improv hears what a
    # plain client of the same server hears, within 0.5% of what was sent. Measured beside a
    # CPU burner on 2 cores: improv 10 short of the reference in one run (99,994 of 100,004),
    # 60 ahead of it in another; the callback input it replaced lost 3.7% at 5,000 a second.
    # Parity at 2,000 a second is tests/test_midiin.py's.
    assert abs(improv_heard - sent) <= abs(heard - sent) + sent // 200, (
        f"sent {sent}, tap heard {heard}, improv heard {improv_heard}")
    print(f"sent {sent}, tap heard {heard}, improv heard {improv_heard}")
