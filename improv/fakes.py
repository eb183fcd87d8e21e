"""In-memory stand-ins for the clock and the ports, to drive improv from code or a test.

As isobar's ``DummyClock`` and ``DummyOutputDevice`` and mido's in-memory ``BaseIOPort``:
:class:`FakeClock` is a clock that moves only when told; :class:`Sink` is an output that
keeps what it is sent (and a ``send`` callable the scheduler can take); :class:`FakeKeys`
is an input source for :class:`~improv.session.Session` that a caller plays into::

    clock, keys, sink = FakeClock(), FakeKeys(), Sink()
    with Session(options, source=keys, outputs=[sink], clock=clock) as session:
        keys.play(mido.Message("note_on", note=60, velocity=90))
        session.step()
"""

from __future__ import annotations

import threading
import time

import mido


class FakeClock:
    """A monotonic clock that moves only when set or advanced."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        """Move the clock on by ``seconds``; return the new time."""
        self.t += seconds
        return self.t


class Sink:
    """An output that keeps every message sent to it with its arrival (real) time.

    Callable (as the scheduler's ``send``) and a port (``name``, ``send``, ``close``).
    """

    def __init__(self, name: str = "sink"):
        self.name = name
        self.messages: list[tuple[float, mido.Message]] = []
        self.lock = threading.Lock()
        self.closed = False

    def __call__(self, msg: mido.Message) -> None:
        self.send(msg)

    def send(self, msg: mido.Message) -> None:
        with self.lock:
            self.messages.append((time.monotonic(), msg))

    def close(self) -> None:
        self.closed = True

    def kinds(self) -> list[tuple[str, int | None]]:
        """(type, note) of every message, in order."""
        with self.lock:
            return [(m.type, getattr(m, "note", None)) for _, m in self.messages]

    def notes(self, kind: str = "note_on") -> list[tuple[float, mido.Message]]:
        """The note-ons (velocity > 0), or with ``kind="note_off"`` the note-offs."""
        with self.lock:
            messages = list(self.messages)
        if kind == "note_on":
            return [(t, m) for t, m in messages if m.type == "note_on" and m.velocity > 0]
        return [(t, m) for t, m in messages
                if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]

    def stuck(self) -> set[int]:
        """Pitches switched on and not off (all-notes-off, CC123, clears a channel)."""
        on: dict[int, int] = {}
        with self.lock:
            messages = list(self.messages)
        for _, m in messages:
            if m.type == "note_on" and m.velocity > 0:
                on[m.note] = on.get(m.note, 0) + 1
            elif m.type in ("note_on", "note_off"):
                on[m.note] = max(on.get(m.note, 0) - 1, 0)
            elif m.type == "control_change" and m.control == 123:
                on.clear()
        return {p for p, n in on.items() if n}


class FakeKeys:
    """An input source for a :class:`~improv.session.Session`: what it is told to play
    reaches the session's inbox, stamped with the session's clock."""

    def __init__(self, name: str = "fake keys"):
        self.name = name
        self.enqueue = None
        self.closed = False

    def __call__(self, enqueue, improviser) -> FakeKeys:  # the Session's ``source``
        self.enqueue = enqueue
        return self

    def play(self, msg: mido.Message) -> None:
        self.enqueue(msg)

    def note(self, pitch: int, velocity: int = 90) -> None:
        """Press a key (velocity > 0) or release it (velocity 0)."""
        self.enqueue(mido.Message("note_on", note=pitch, velocity=velocity))

    def close(self) -> None:
        self.closed = True
