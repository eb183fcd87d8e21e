"""The port watch in-process: what it posts, and when it lists from scratch (fake listings)."""

from __future__ import annotations

import queue

import improv.watch as watch
from improv.ports import PortError


def test_ports_that_come_and_go_are_seen_without_a_listing_from_scratch(monkeypatch):
    """A listing from scratch opens new clients while holding the GIL (~0.1 s on JACK): it
    is asked for only when the clients kept open list nothing (the server went)."""
    listings = iter([{"inputs": ["keys"], "outputs": ["synth"]},
                     {"inputs": ["keys", "daw"], "outputs": ["synth"]},  # a port came
                     {"inputs": ["daw"], "outputs": ["synth"]},  # one went
                     {"inputs": [], "outputs": []}])  # nothing at all: the server?
    from_scratch = []

    class Lister:
        def __init__(self, backend):
            pass

        def list(self):
            return next(listings)

    def list_ports(backend):
        from_scratch.append(backend)
        raise PortError("cannot list MIDI inputs: the JACK server is gone")

    monkeypatch.setattr(watch, "PortLister", Lister)
    monkeypatch.setattr(watch, "list_ports", list_ports)
    monkeypatch.setattr(watch, "WATCH_EVERY", 0.001)
    posted: queue.Queue = queue.Queue()
    port_watch = watch.PortWatch("backend", None, None, posted.put, None)
    port_watch.start()
    got = [posted.get(timeout=10) for _ in range(4)]
    port_watch.stop()
    assert [g["inputs"] for g in got[:3]] == [["keys"], ["keys", "daw"], ["daw"]]
    assert isinstance(got[3], PortError) and from_scratch == ["backend"]


def test_a_server_started_anew_gets_clients_of_its_own(monkeypatch):
    """Clients kept open from a server that went list nothing even once a new server runs;
    when the listing from scratch finds ports, the watch opens new clients."""
    import itertools

    listings = itertools.chain([{"inputs": ["keys"], "outputs": ["synth"]},
                                {"inputs": [], "outputs": []}],  # the old clients, now
                               itertools.repeat({"inputs": ["keys"], "outputs": ["synth"]}))
    listers = []

    class Lister:
        def __init__(self, backend):
            listers.append(self)

        def list(self):
            return next(listings)

    monkeypatch.setattr(watch, "PortLister", Lister)
    monkeypatch.setattr(watch, "list_ports", lambda backend: {"inputs": ["keys"],
                                                              "outputs": ["synth"]})
    monkeypatch.setattr(watch, "WATCH_EVERY", 0.001)
    posted: queue.Queue = queue.Queue()
    port_watch = watch.PortWatch("backend", None, None, posted.put, None)
    port_watch.start()
    got = [posted.get(timeout=10) for _ in range(3)]
    port_watch.stop()
    assert [g["inputs"] for g in got] == [["keys"], ["keys"], ["keys"]]
    assert len(listers) == 2
