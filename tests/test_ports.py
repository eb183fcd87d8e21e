"""Ports on a real JACK server: listing, choosing by name/substring/index, virtual ports."""

import subprocess
import sys

import pytest

from improv.ports import (
    PortError,
    PortLister,
    choose_port,
    get_backend,
    list_ports,
    open_input,
    open_output,
)
from tests.conftest import REPO


def test_an_api_or_back_end_this_rtmidi_lacks_is_one_line(monkeypatch):
    """``--api coremidi`` on Linux, a ``MIDO_BACKEND`` that names no module or no API: a
    ValueError or ModuleNotFoundError traceback at the first listing (a red-team run)."""
    import rtmidi

    from improv.ports import APIS

    missing = [a for a, v in APIS.items() if getattr(rtmidi, f"API_{v}", None)
               not in rtmidi.get_compiled_api()]
    if missing:
        with pytest.raises(PortError, match=f"MIDI API '{missing[0]}' is not in this "):
            get_backend(missing[0])
    for name, why in (("nonsense", "No module named 'nonsense'"),
                      ("mido.backends.rtmidi/FOO", "no such API")):
        monkeypatch.setenv("MIDO_BACKEND", name)
        with pytest.raises(PortError, match=f"MIDO_BACKEND='{name}': not a MIDI back-end "
                                            f"improv can use \\({why}\\)"):
            get_backend()


def test_choose_by_exact_name_substring_and_index():
    ports = ["Keystation:Keystation MIDI 1", "improv out:improv out", "Digital Piano:Port 1"]
    assert choose_port("improv out:improv out", ports, "input") == ports[1]
    assert choose_port("keystation", ports, "input") == ports[0]
    assert choose_port("2", ports, "input") == ports[2]
    with pytest.raises(PortError) as err:
        choose_port("Roland", ports, "input")
    assert "no input port matches 'Roland'" in str(err.value)
    assert "1: improv out:improv out" in str(err.value)  # the available ones are listed
    with pytest.raises(PortError, match="2 input ports match 'Port'"):
        choose_port("Port", ["A:Port 1", "B:Port 2"], "input")


def test_virtual_ports_are_listed_and_connectable(jack):
    backend = get_backend("jack")
    vin = open_input(backend, "improvtest in", virtual=True)
    vout = open_output(backend, "improvtest out", virtual=True)
    try:
        ports = list_ports(backend)
        assert any("improvtest out" in p for p in ports["inputs"])
        assert any("improvtest in" in p for p in ports["outputs"])
        to_improv = open_output(backend, "improvtest in")  # by substring
        import time

        import mido

        to_improv.send(mido.Message("note_on", note=60, velocity=90))
        time.sleep(0.2)
        assert [m.note for m in vin.iter_pending()] == [60]
        to_improv.close()
    finally:
        vin.close()
        vout.close()


def test_port_lister_sees_what_mido_sees(jack):
    backend = get_backend("jack")
    lister = PortLister(backend)
    port = open_output(backend, "listertest out", virtual=True)
    try:
        seen = lister.list()
        assert seen == list_ports(backend)
        assert any("listertest out" in name for name in seen["inputs"])  # others read it
    finally:
        port.close()
    assert not any("listertest" in name for name in lister.list()["inputs"])


def test_ports_command_lists_with_the_backend(jack):
    out = subprocess.run([sys.executable, "-m", "improv", "ports", "--api", "jack"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "MIDI back-end: JACK" in out.stdout


def test_wrong_input_name_lists_ports_and_fails(jack):
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--api", "jack", "--input",
                          "no such keyboard", "--no-status"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert "no input port matches 'no such keyboard'" in out.stderr
    # both wrong: both named at once, the input first (the output alone was named)
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--api", "jack", "--input",
                          "no such keyboard", "--output", "no such synth", "--no-status"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    first = out.stderr.index("no input port matches 'no such keyboard'")
    assert out.stderr.index("no output port matches 'no such synth'") > first
    assert "Traceback" not in out.stderr
    # a wrong --input and --clock-input: both named, the input ports listed once
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--api", "jack", "--input",
                          "no such keyboard", "--clock-input", "no such clock", "--no-status"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no input port matches 'no such keyboard'; no input port matches 'no such clock'" \
        in out.stderr
    assert out.stderr.count("the input ports are:") == 1


def test_improv_never_takes_its_own_sender_for_the_input(jack):
    """A named output on JACK sends from improv's own client (improv sender PID:out), opened
    before the input: an --input that would match it alone (a feedback loop: improv
    answering itself) matches nothing."""
    synth = open_input(get_backend("jack"), "own synth", virtual=True)
    try:
        out = subprocess.run([sys.executable, "-m", "improv", "run", "--api", "jack", "--input",
                              "improv sender", "--output", "own synth", "--no-status"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    finally:
        synth.close()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no input port matches 'improv sender'" in out.stderr


def test_improv_never_takes_its_own_output_for_the_clock_input(jack):
    """--clock-input on improv's own virtual output (with --clock-out: a feedback loop that
    ran a 100 bpm clock at 96, with a start and a stop at one moment) matches nothing."""
    out = subprocess.run([sys.executable, "-m", "improv", "run", "--api", "jack", "--virtual",
                          "selfloop", "--no-synth", "--tempo", "100", "--clock-out",
                          "--clock-input", "selfloop out", "--no-status"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no input port matches 'selfloop out'" in out.stderr
    # one line for what went wrong: no "stopped; 0 messages heard" report before it of a
    # session that never listened (its output opened first)
    assert "stopped" not in out.stderr, out.stderr


def test_a_port_gone_between_listing_and_opening_is_a_port_error(jack, monkeypatch):
    """A keyboard that flaps can be listed and gone a moment later, when improv opens it: a
    PortError (the port watch then waits for it again), not a ValueError that ended the run
    (a red team's 3 of 3 flapping runs)."""
    import improv.ports as ports

    backend = get_backend("jack")
    listed = list_ports(backend)
    monkeypatch.setattr(ports, "list_ports", lambda b: {"inputs": ["ghost:ghost"],
                                                        "outputs": listed["outputs"]})
    with pytest.raises(PortError, match="cannot open 'ghost:ghost': it is gone"):
        ports.open_polled_input(backend, name="ghost:ghost")


def test_the_port_lister_lists_again_when_a_port_goes_meanwhile():
    """RtMidi counts the ports, then names them: one gone in between fails the listing
    ("the 'portNumber' argument (2) is invalid"); the lister lists again rather than report
    the MIDI system gone."""
    calls = []

    class Client:
        def get_ports(self):
            calls.append(1)
            if len(calls) == 1:
                raise SystemError("MidiInJack::getPortName: the 'portNumber' argument (2) is "
                                  "invalid.")
            return ["keys:keys"]

    lister = PortLister.__new__(PortLister)
    lister._in = lister._out = Client()
    assert lister.list() == {"inputs": ["keys:keys"], "outputs": ["keys:keys"]}
    assert len(calls) == 3


def test_an_input_name_never_matches_improvs_own_virtual_output(jack):
    """"--virtual ownkeysx --input ownkeys" took improv's own "ownkeysx out" for a second
    match (and alone would have had improv answer itself): the keyboard is chosen."""
    from tests.live import Daemon

    keys = open_output(get_backend("jack"), "bounce ownkeys", virtual=True)
    try:
        daemon = Daemon("--api", "jack", "--input", "ownkeys", "--virtual", "ownkeysx")
        code = daemon.stop()
    finally:
        keys.close()
    assert code == 0, daemon.log
    assert daemon.last("listening")["input"] == "bounce ownkeys:bounce ownkeys", daemon.log


def test_a_port_reopened_by_its_full_name_is_that_one_or_none():
    """A port reopened is the one of that full name: not another that the name is a part
    of ("synth:in" in "synth:in 2"), which a name asked for would match."""
    assert choose_port("synth:in", ["synth:in 2"], "output") == "synth:in 2"
    with pytest.raises(PortError, match="output port 'synth:in' is gone"):
        choose_port("synth:in", ["synth:in 2"], "output", exact=True)
    assert choose_port("synth:in", ["synth:in 2", "synth:in"], "output", exact=True) == (
        "synth:in")


def test_own_clients_are_told_by_their_whole_name():
    """improv's own ports are its clients' exactly (JACK may add "-01"): another improv's,
    whose process number only begins with this one's, is not."""
    import os

    from improv.ports import own_client

    pid = os.getpid()
    assert own_client(f"improv sender {pid}:out", "sender")
    assert own_client(f"improv sender {pid}-01:out", "sender")
    assert not own_client(f"improv sender {pid}0:out", "sender")
    assert not own_client(f"improv listener {pid}:in", "sender")


def test_no_jack_server_is_a_clear_error(tmp_path):
    env = {"JACK_DEFAULT_SERVER": "nobody-runs-this", "JACK_NO_START_SERVER": "1",
           "PATH": "/usr/bin:/bin"}
    import os

    out = subprocess.run([sys.executable, "-m", "improv", "ports", "--api", "jack"], cwd=REPO,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env})
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("improv: error: cannot list MIDI")


def test_every_wrong_name_is_named_and_each_kind_of_port_listed_once(monkeypatch):
    import improv.ports as ports

    sender = ports._client("sender") + ":out"  # improv's own: never an input
    monkeypatch.setattr(ports, "list_ports", lambda b: {
        "inputs": ["keys:out", sender, "pads:out 1", "pads:out 2"], "outputs": ["synth:in"]})
    ports.check_named_ports(None, inputs=("keys", "keys", ""), outputs=("synth",))  # all fine
    with pytest.raises(PortError) as caught:
        ports.check_named_ports(None, inputs=("nokeys", "pads", "improv sender"),
                                outputs=("nosynth",))
    lines = str(caught.value).splitlines()
    assert lines[0] == ("no input port matches 'nokeys'; 2 input ports match 'pads'; "
                        "no input port matches 'improv sender'; the input ports are:")
    assert lines[1:4] == ["  0: keys:out", "  1: pads:out 1", "  2: pads:out 2"]  # no sender
    assert lines[4:] == ["no output port matches 'nosynth'; the output ports are:",
                         "  0: synth:in"]
