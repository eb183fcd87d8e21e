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
