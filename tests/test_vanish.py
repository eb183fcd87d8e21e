"""Ports that go away mid-session and come back; a JACK server that stops."""

import signal
import subprocess
import sys
import time

import mido
import pytest

from improv.portclose import close_rtmidi
from tests.live import REPO, Daemon, JackServer, Listener, Peer, connect_output


def _answered(listener, notes: int) -> bool:
    """Whether ``notes`` of improv's notes reach ``listener`` within 15 s."""
    deadline = time.monotonic() + 15
    while len(listener.notes()) < notes and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(listener.notes()) == notes


def test_output_port_goes_away_and_comes_back(jack):
    synth = Peer("synth", "vanish synth")
    daemon = Daemon("--virtual", "improvvo", "--output", "vanish synth", "--silence", "0.3",
                    "--answer-notes", "3", "--random-seed", "1")
    pianist = connect_output("improvvo in")
    try:
        synth.kill()
        assert daemon.wait_for("output port 'vanish synth:vanish synth' went away", 15), daemon.log
        synth = Peer("synth", "vanish synth")
        assert daemon.wait_for("output port 'vanish synth:vanish synth' is back", 15), daemon.log
        assert synth.wait_for("control_change 123", 10)  # reconnected: first, all notes off
        for pitch in (60, 62, 64):
            pianist.send(mido.Message("note_on", note=pitch, velocity=80))
            pianist.send(mido.Message("note_off", note=pitch))
        assert synth.wait_for("note_on", 15), "no answer after the reconnect"
    finally:
        assert daemon.stop() == 0, daemon.log
        pianist.close()
        synth.kill()


def test_input_port_goes_away_and_comes_back(jack):
    keys = Peer("keys", "vanish keys")
    daemon = Daemon("--input", "vanish keys", "--virtual", "improvvi", "--silence", "0.3",
                    "--answer-notes", "2", "--random-seed", "1")
    listener = Listener("improvvi out")
    try:
        keys.kill()
        assert daemon.wait_for("input port 'vanish keys:vanish keys' went away", 15), daemon.log
        keys = Peer("keys", "vanish keys")
        assert daemon.wait_for("input port 'vanish keys:vanish keys' is back", 15), daemon.log
        for pitch in (60, 64):
            keys.play(pitch)
        assert _answered(listener, 2), daemon.log
    finally:
        assert daemon.stop() == 0, daemon.log
        listener.close()
        keys.kill()


def test_an_input_port_that_comes_back_at_once_is_reconnected(jack):
    """The keyboard's port closes and opens again within milliseconds (a driver or a DAW
    re-creating it): the port watch's listings, a second apart, show it there both times,
    but its connection to improv is gone. improv notices through the port's connections
    and reconnects, and hears the next notes (it was deaf for good)."""
    import rtmidi

    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "quick keys")
    keys.open_virtual_port("quick keys")
    daemon = Daemon("--input", "quick keys", "--virtual", "improvqk", "--silence", "0.3",
                    "--answer-notes", "2", "--random-seed", "1")
    listener = Listener("improvqk out")
    try:
        time.sleep(0.5)  # the watches have their first looks
        close_rtmidi(keys)  # and at once a new client of that name, with a new port
        keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "quick keys")
        keys.open_virtual_port("quick keys")
        assert daemon.wait_for("reconnected", 15), daemon.log
        for pitch in (60, 64):
            keys.send_message([0x90, pitch, 80])
            keys.send_message([0x80, pitch, 0])
        assert _answered(listener, 2), daemon.log
    finally:
        assert daemon.stop() == 0, daemon.log
        listener.close()
        close_rtmidi(keys)


def test_an_output_port_that_comes_back_at_once_is_reconnected(jack):
    """The synth's port closes and opens again within milliseconds (a DAW re-creating its
    MIDI input): the port watch's listings show it there both times, but improv's connection
    to it is gone. improv notices through the port's connections, reconnects, and the new
    port hears its answers (they went nowhere)."""
    import rtmidi

    def open_synth():
        synth = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "quick synth")
        synth.open_virtual_port("quick synth")
        return synth

    def heard_note_on(synth) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            message = synth.get_message()
            if message and message[0][0] & 0xF0 == 0x90 and message[0][2] > 0:
                return True
            if not message:
                time.sleep(0.01)
        return False

    synth = open_synth()
    daemon = Daemon("--virtual", "improvqs", "--output", "quick synth", "--silence", "0.3",
                    "--answer-notes", "3", "--random-seed", "1")
    pianist = connect_output("improvqs in")
    try:
        time.sleep(0.5)  # the peer watch has looked (every 0.2 s), the port watch not yet
        close_rtmidi(synth)
        synth = open_synth()  # at once a new client of that name, with a new port
        reconnected = daemon.wait_for("reconnected", 15)
        for pitch in (60, 62, 64):
            pianist.send(mido.Message("note_on", note=pitch, velocity=80))
            pianist.send(mido.Message("note_off", note=pitch))
        answered = heard_note_on(synth)
    finally:
        code = daemon.stop()
        pianist.close()
        close_rtmidi(synth)
    assert reconnected and answered, f"no answer after the reconnect\n{daemon.log}"
    assert code == 0, daemon.log


@pytest.mark.parametrize("ports, settle", [("virtual", 0.0), ("output", 0.0),
                                            ("virtual", 2.0), ("named", 2.0)])
def test_jack_server_stopping_ends_the_run_clearly(jack, tmp_path, ports, settle):
    """A second JACK server of its own, so that stopping it touches no other test. Stopped
    at once, the start-up finds it gone; stopped ``settle`` seconds later, libjack's
    shutdown callback tells (improv.jackgraph: the port listings and the graph kept open
    go on showing the ports), for virtual ports and for named ports alone."""
    server = JackServer(tmp_path / "jackd.log", suffix=f"{ports}{settle:.0f}",
                        make_default=False)
    peers = [subprocess.Popen([sys.executable, "-m", "tests.peer", kind, name], cwd=REPO,
                              env=server.env, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                              text=True)
             for kind, name in [("synth", "js synth")] + [("keys", "js keys")] * (ports == "named")]
    daemon = None
    try:
        assert all(peer.stdout.readline().strip() == "ready" for peer in peers)
        args = {"virtual": ("--virtual", "improvjs"),
                "output": ("--virtual", "improvjs", "--output", "js synth"),
                "named": ("--input", "js keys", "--output", "js synth")}[ports]
        daemon = Daemon(*args, env=server.env)
        time.sleep(settle)  # past the start-up: the watchers have their listings
        server.stop()
        try:
            code = daemon.proc.wait(15)
        except subprocess.TimeoutExpired:  # hung: its threads' stacks (PYTHONFAULTHANDLER)
            daemon.proc.send_signal(signal.SIGABRT)
            daemon.proc.wait(10)
            pytest.fail(f"improv did not end when the server stopped:\n{daemon.log}")
        assert code == 3, daemon.log
        assert daemon.wait_for("the MIDI system went away", 2), daemon.log
        assert not server.semaphores()  # its clients' files in /dev/shm went with it
    finally:
        if daemon is not None and daemon.proc.poll() is None:
            daemon.proc.kill()  # one that hung on the dead server (a failure) must not stay
        for peer in peers:
            peer.kill()
        if server.proc.poll() is None:
            server.stop()


def test_a_server_that_stops_before_the_watch_opens_ends_the_run(monkeypatch):
    """The server stopped after improv's ports opened and before the graph's client did: the
    watch cannot open, and improv must end as when the server stops later (it hung: 2 of
    25 such start-ups beside two burners). No server is needed: libjack finds none."""
    from improv.jackgraph import JackGraph, JackServerGone
    from improv.session import _peer_watch
    from improv.watch import PeerEvent

    monkeypatch.setenv("JACK_DEFAULT_SERVER", "improv-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(JackServerGone):
        JackGraph("improv gone test")
    posted, said = [], []

    class Port:
        name = "improv in"

    options = type("Options", (), {"input": ""})()
    assert _peer_watch(options, Port(), [], posted.append, said) is None
    assert [type(e) for e in posted] == [PeerEvent] and posted[0].kind == "server gone"
