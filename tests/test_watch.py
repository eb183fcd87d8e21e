"""The port watch in-process: what it posts, and when it lists from scratch (fake listings)."""

from __future__ import annotations

import itertools
import queue

import improv.watch as watch
from improv.ports import PortError

KEYS = {"inputs": ["keys"], "outputs": ["synth"]}
NOTHING = {"inputs": [], "outputs": []}


def _watch(monkeypatch, listings, list_ports, posts: int) -> tuple[list, list]:
    """Run a PortWatch whose kept-open clients list ``listings`` one a look and whose
    listing from scratch is ``list_ports``; return the first ``posts`` things it posted and
    the listers it opened."""
    listings = iter(listings)
    listers = []

    class Lister:
        def __init__(self, backend):
            listers.append(self)

        def list(self):
            return next(listings)

    monkeypatch.setattr(watch, "PortLister", Lister)
    monkeypatch.setattr(watch, "list_ports", list_ports)
    monkeypatch.setattr(watch, "WATCH_EVERY", 0.001)
    posted: queue.Queue = queue.Queue()
    port_watch = watch.PortWatch("backend", None, None, posted.put, None)
    port_watch.start()
    got = [posted.get(timeout=10) for _ in range(posts)]
    port_watch.stop()
    return got, listers


def test_ports_that_come_and_go_are_seen_without_a_listing_from_scratch(monkeypatch):
    """A listing from scratch opens new clients while holding the GIL (~0.1 s on JACK): it
    is asked for only when the clients kept open list nothing (the server went)."""
    from_scratch = []

    def list_ports(backend):
        from_scratch.append(backend)
        raise PortError("cannot list MIDI inputs: the JACK server is gone")

    listings = [KEYS, {"inputs": ["keys", "daw"], "outputs": ["synth"]},  # a port came
                {"inputs": ["daw"], "outputs": ["synth"]}, NOTHING]  # one went; then all
    got, _ = _watch(monkeypatch, listings, list_ports, 4)
    assert [g["inputs"] for g in got[:3]] == [["keys"], ["keys", "daw"], ["daw"]]
    assert isinstance(got[3], PortError) and from_scratch == ["backend"]


def test_a_server_started_anew_gets_clients_of_its_own(monkeypatch):
    """Clients kept open from a server that went list nothing even once a new server runs;
    when the listing from scratch finds ports, the watch opens new clients."""
    listings = itertools.chain([KEYS, NOTHING], itertools.repeat(KEYS))
    got, listers = _watch(monkeypatch, listings, lambda backend: KEYS, 3)
    assert got == [KEYS, KEYS, KEYS] and len(listers) == 2


class _Improviser:
    """What the port watch asks of the improviser: silence, and forget held keys."""

    def __init__(self):
        self.panics = 0
        self.tracker = self

    def panic(self):
        self.panics += 1

    def flush(self, now):
        pass


class _Port:
    def __init__(self, name):
        self.name, self.closed = name, False

    def close(self):
        self.closed = True


def test_an_output_that_flaps_is_waited_for_and_reopened_by_its_full_name(monkeypatch):
    """A port back in one listing and gone again before improv opens it (a synth that
    flaps) is waited for again: the run goes on (it ended with "the MIDI system went away",
    a red team's 3 of 3 tries). And it is reopened by the full name it had, not by what was
    asked for ("--output 0" reconnected to whatever port came first by then)."""
    import io
    import threading
    from types import SimpleNamespace

    from improv.outputs import PortOutput

    opened = []

    def open_output(backend, name, exact=False):
        assert exact
        opened.append(name)
        if len(opened) == 1:
            raise PortError(f"cannot open {name!r}: it is gone")
        return _Port(name)

    monkeypatch.setattr(watch, "open_output", open_output)
    out = PortOutput(_Port("synth:synth"), wanted="0")
    log = io.StringIO()
    improviser = _Improviser()
    port_watch = watch.PortWatch("backend", improviser,
                                 SimpleNamespace(outputs=[out], lock=threading.Lock()),
                                 None, log)
    listing = {"inputs": [], "outputs": ["other app:other app", "synth:synth"]}
    port_watch.apply({"inputs": [], "outputs": ["other app:other app"]}, None, "", None)
    assert ("output", "0") in port_watch.missing and "went away" in log.getvalue()
    port_watch.apply(listing, None, "", None)  # back, and gone again as it is opened
    assert ("output", "0") in port_watch.missing
    assert "is back but could not be reopened (cannot open 'synth:synth': it is gone)" in (
        log.getvalue())
    port_watch.apply(listing, None, "", None)
    assert port_watch.missing == set() and log.getvalue().endswith("is back; reconnected\n")
    assert opened == ["synth:synth", "synth:synth"] and out.port.name == "synth:synth"
    assert improviser.panics == 3  # gone, gone again, and once reopened


def test_output_lost_reopens_once_and_passes_over_what_it_must(monkeypatch):
    """"output lost" reopens the named output it names; it is passed over for another port,
    for a port the watch waits for already, and for a look made before the last reopen (that
    look saw the reopen under way: a second one cut improv's notes for nothing)."""
    import io
    import threading
    from types import SimpleNamespace

    from improv.outputs import PortOutput

    opened = []
    monkeypatch.setattr(watch, "open_output",
                        lambda backend, name, exact=False: opened.append(name) or _Port(name))
    out = PortOutput(_Port("synth:synth"), wanted="synth")
    log = io.StringIO()
    port_watch = watch.PortWatch("backend", _Improviser(),
                                 SimpleNamespace(outputs=[out], lock=threading.Lock()),
                                 None, log)
    port_watch.output_lost(watch.PeerEvent("output lost", ["other:other"]))
    assert opened == []
    look = watch.PeerEvent("output lost", ["synth:synth"])
    port_watch.output_lost(look)
    assert opened == ["synth:synth"] and "came back in a new instance" in log.getvalue()
    port_watch.output_lost(look)  # looked before that reopen: passed over
    assert opened == ["synth:synth"]
    port_watch.missing.add(("output", "synth"))  # gone: the port watch waits for it
    port_watch.output_lost(watch.PeerEvent("output lost", ["synth:synth"]))
    assert opened == ["synth:synth"]


def test_a_lost_port_that_cannot_be_reopened_because_it_went_is_said_to_have_gone():
    """A killed keyboard's client loses its connections before its port: the peer watch can
    see the port unconnected, and its reopen find it gone. That is "went away" (a CI run
    said "could not be reopened (... is gone)", never "went away"); another failure to open
    keeps its reason. Either way the port is waited for, and improv is silenced."""
    import io

    from improv.ports import PortGoneError

    for exc, said in ((PortGoneError("input port 'keys:keys' is gone"),
                       "input port 'keys:keys' went away; silenced; waiting for it\n"),
                      (PortError("cannot open 'keys:keys': the server refused"),
                       "input port 'keys:keys' could not be reopened (cannot open 'keys:keys': "
                       "the server refused); silenced; waiting for it\n")):
        def reopen(exc=exc):
            raise exc

        log = io.StringIO()
        improviser = _Improviser()
        port_watch = watch.PortWatch("backend", improviser, None, None, log)
        inport = _Port("keys:keys")
        assert port_watch.input_lost(watch.PeerEvent("input lost", ["keys:keys"]), inport,
                                     "keys", reopen) is inport
        assert log.getvalue() == f"\nimprov: {said}"
        assert port_watch.missing == {("input", "keys")} and improviser.panics == 2
