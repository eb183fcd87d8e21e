"""Watchers of the MIDI system, each a thread that posts what it saw to a session's inbox.

:class:`PortWatch` notices named ports that go away and come back (and the MIDI system
itself going, when its listing comes back empty); :class:`PeerWatch` follows who is
connected to improv's virtual ports on JACK, whether its named ports are still connected to
improv (one re-created at once drops the connection), and hears from libjack when the
server goes.
The session acts on what they post, from its own thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from improv.outputs import PortOutput
from improv.ports import PortError, PortGoneError, PortLister, list_ports, open_output

#: How often named ports are checked for having gone away (or come back).
WATCH_EVERY = 1.0
#: How often the virtual ports' connections are read (17 µs a read, measured).
PEERS_EVERY = 0.2


class PeerEvent:
    """Posted by :class:`PeerWatch`: the virtual input lost its last peer
    (``kind == "input gone"``), the virtual output gained ones (``"output new"``), the named
    input or output is there but no longer connected to improv (``"input lost"``, ``"output
    lost"``: it went and came back between two looks of the port watch), or improv's own ports
    vanished: the JACK server went away (``"server gone"``)."""

    def __init__(self, kind: str, peers: list[str], seen: float | None = None):
        self.kind, self.peers = kind, peers
        self.seen = time.monotonic() if seen is None else seen  # when the watch looked


class PeerWatch:
    """Follow the connections of improv's virtual ports on JACK (:mod:`improv.jackgraph`),
    of its named ports (``"input lost"``, ``"output lost"``: see ``named``), and the server
    itself: when it goes, ``"server gone"`` is posted.

    A peer of the virtual input that goes away may have left keys held (its
    note-offs will never come): when the last one goes, the held keys are
    released. A new peer of the virtual output has heard nothing: it first gets
    sustain-off and all-notes-off on every channel (after a ``kill -9`` the
    previous improv may have left its notes on there; the startup panic went out
    before anything was connected).
    """

    def __init__(self, input_port: str, output_port: str, post, ignore: str,
                 named: tuple[tuple[str, str, Callable[[], str]], ...] = ()):
        from improv.jackgraph import JackGraph

        self.graph = JackGraph(f"improv watch {os.getpid()}")
        self.input_port, self.output_port, self.post, self.ignore = (input_port, output_port,
                                                                     post, ignore)
        # The named ports (``--input``, ``--output``) as (kind, name, a callable giving
        # improv's own port connected to it now): a port that goes and comes back within a
        # second looks the same to the port watch's listings, but its connection to improv
        # is gone (a red team's pianist was deaf for good after a 0.3 s reconnect of the
        # keyboard's port).
        self.named = named
        self._lost_said = {kind: 0.0 for kind, _, _ in named}  # when "... lost" was posted
        self._stop = threading.Event()
        self.dead = False  # the server went: never call into libjack again
        self._thread = threading.Thread(target=self._watch, daemon=True, name="improv-peers")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        if not (self.dead or self.graph.gone.is_set()):  # closing a client of a vanished
            self.graph.close()  # server crashes libjack

    def _peers(self, port: str) -> list[str] | None:
        found = self.graph.connections(port) if port else None
        return None if found is None else [p for p in found if not p.startswith(self.ignore)]

    def _watch(self) -> None:
        had_input, had_output = [], []
        while not self._stop.wait(PEERS_EVERY):
            if self.graph.gone.is_set():  # libjack said so; the graph it reads does not
                found = [None]
            else:
                found = [self._peers(port) if port else [] for port in (self.input_port,
                                                                        self.output_port)]
            if None in found:  # our own port is gone: so is the server (measured: the
                self.dead = True  # lookups return nothing then, closing the client crashes)
                self.post(PeerEvent("server gone", []))
                return
            peers, outs = found
            if had_input and not peers:
                self.post(PeerEvent("input gone", had_input))
            had_input = peers
            new = [p for p in outs if p not in had_output]
            if new:
                self.post(PeerEvent("output new", new))
            had_output = outs
            self._check_named()

    def _check_named(self) -> None:
        """Post "input lost" ("output lost") while a named port is there but not connected
        to improv's own port (None: it is not there, which the port watch tells), once a
        second: the session may pass one over (a reopen under way)."""
        for kind, port, own_now in self.named:
            look = time.monotonic()  # before the look: a reopen done meanwhile is newer
            own = own_now()
            found = self.graph.connections(port)
            if own and found is not None and own not in found:
                if look - self._lost_said[kind] >= WATCH_EVERY:
                    self._lost_said[kind] = look
                    self.post(PeerEvent(f"{kind} lost", [port], seen=look))


class PortWatch:
    """Notice named ports that go away and come back; reconnect to them by name.

    A thread of its own looks every WATCH_EVERY seconds through a
    :class:`~improv.ports.PortLister` and posts what it saw to the main loop's inbox;
    the main loop then silences, reports and reconnects (:meth:`apply`). When the
    listing comes back empty (improv's own ports are gone too), mido lists again from
    scratch, which raises :class:`PortError` if the MIDI system itself went (the JACK
    server stopped), and the run ends with status 3. Only then: a listing from scratch
    opens two new clients, and python-rtmidi holds the GIL meanwhile (measured here: 95-129
    ms beside a loaded machine); done on every change of the listing, it stalled the live
    loop whenever any port anywhere came or went (the 16-95 ms maxima of ``bench live``,
    whose own ports appear as it starts).
    """

    def __init__(self, backend, improviser, send, post, log):
        self.backend, self.improviser, self.send, self.log = backend, improviser, send, log
        self.missing: set[tuple[str, str]] = set()
        self._reopened = {"input": 0.0, "output": 0.0}  # time.monotonic() of the last reopen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(post,), daemon=True,
                                        name="improv-port-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, post) -> None:
        try:
            lister = PortLister(self.backend)
            last = None
            while not self._stop.wait(WATCH_EVERY):
                seen = lister.list()
                if seen != last:
                    last = seen
                    if not seen["inputs"] and not seen["outputs"]:  # the server went?
                        seen = list_ports(self.backend)
                        if seen["inputs"] or seen["outputs"]:  # no: a server started anew,
                            lister = PortLister(self.backend)  # which those clients miss
                post(seen)
        except PortError as exc:
            post(exc)

    def _say(self, text: str) -> None:
        print(f"\nimprov: {text}", file=self.log, flush=True)

    def _silence(self, key: tuple[str, str], text: str) -> None:
        """A watched port is gone: wait for it, end what improv played and what it heard."""
        self.missing.add(key)
        self.improviser.panic()
        self.improviser.tracker.flush(time.monotonic())
        self._say(f"{text}; silenced; waiting for it")

    def _reopen_input(self, reopen_input):
        inport = reopen_input()
        self._reopened["input"] = time.monotonic()
        return inport

    def _reopen_output(self, out: PortOutput) -> None:
        # by its full name and no other, not by what was asked for: "--output 0" or
        # "--output synth" may name another port now (a red team's answers went to another
        # program, or improv matched its own virtual input). Opened before the lock is
        # taken: the listings take tens of ms.
        port = open_output(self.backend, out.name, exact=True)
        with self.send.lock:
            old = out.reopen(port)
        # closed after the lock: a close on JACK waits improv.portclose.SETTLE (50 ms), and
        # every note, clock pulse and click is sent under that lock
        old.close()
        self._reopened["output"] = time.monotonic()
        self.improviser.panic()  # whatever the port's owner heard last, end it

    def input_lost(self, event: PeerEvent, inport, input_wanted: str, reopen_input):
        """Act on the peer watch's "input lost" (the named input went and came back between
        two listings): reconnect; return the input port. Passed over when this watch waits
        for the port already, or the look came before the last reopen was done (it saw the
        reopen under way)."""
        key = ("input", input_wanted)
        if key in self.missing or event.seen < self._reopened["input"]:
            return inport
        self.improviser.panic()
        self.improviser.tracker.flush(time.monotonic())
        try:
            inport = self._reopen_input(reopen_input)
        except PortError as exc:
            self._reopen_failed(key, inport.name, exc)
            return inport
        self._say(f"input port {inport.name!r} came back in a new instance; reconnected")
        return inport

    def output_lost(self, event: PeerEvent) -> None:
        """Act on the peer watch's "output lost" (the named output went and came back
        between two listings): reconnect, passed over as :meth:`input_lost` is."""
        for out in self._named_outputs():
            key = ("output", out.wanted)
            if (out.name not in event.peers or key in self.missing
                    or event.seen < self._reopened["output"]):
                continue
            try:
                self._reopen_output(out)
            except PortError as exc:
                self._reopen_failed(key, out.name, exc)
                continue
            self._say(f"output port {out.name!r} came back in a new instance; reconnected")

    def _reopen_failed(self, key: tuple[str, str], name: str, exc: PortError) -> None:
        """Wait for a port that the peer watch saw unconnected and that could not be reopened.
        Mostly it was going away: a client that closes, or is killed, loses its connections
        before its ports, and the peer watch can look in between (a CI run's keyboard, killed,
        was said to be "could not be reopened (... is gone)", never "went away")."""
        why = "went away" if isinstance(exc, PortGoneError) else f"could not be reopened ({exc})"
        self._silence(key, f"{key[0]} port {name!r} {why}")

    def _named_outputs(self) -> list[PortOutput]:
        return [out for out in self.send.outputs if isinstance(out, PortOutput) and out.wanted]

    def apply(self, ports, inport, input_wanted: str, reopen_input):
        """Act on a listing (or a PortError) from the watch thread; return the input port."""
        if isinstance(ports, PortError):
            raise ports
        watched = [("input", inport, input_wanted, ports["inputs"])] if input_wanted else []
        watched += [("output", out, out.wanted, ports["outputs"]) for out in self._named_outputs()]
        for kind, port, wanted, present in watched:
            key = (kind, wanted)
            if port.name not in present and key not in self.missing:
                self._silence(key, f"{kind} port {port.name!r} went away")
            elif port.name in present and key in self.missing:
                self.missing.discard(key)
                try:
                    if kind == "input":
                        inport = self._reopen_input(reopen_input)
                    else:
                        self._reopen_output(port)
                except PortError as exc:  # gone again (a port that flaps): wait on
                    self._silence(key, f"{kind} port {port.name!r} is back but could not be "
                                       f"reopened ({exc})")
                    continue
                self._say(f"{kind} port {port.name!r} is back; reconnected")
        return inport
