"""Closing python-rtmidi ports on JACK so that libjack is less likely to crash the process.

Every change to the JACK graph (a client that opens or closes, a port that connects or goes)
takes effect at the server's next period. The server then tells every client the new
latencies, one client after another, and each client handles that in its own notification
thread. There, libjack's client walks its list of ports with no lock
(``JackClient::HandleLatencyCallback``). ``jack_port_unregister`` (python-rtmidi's
``close_port``) takes a port out of that same list, from the caller's thread
(``JackClient::PortUnRegister``). When the two meet, the walk reads a freed list node, and the
process can die of a segmentation fault (jackaudio/jack2 issue 216, "possible race condition
with jack_port_unregister and JackClient::HandleLatencyCallback").

improv's own order of closing walked into that window. An input's probe was closed (a graph
change), then at once the input's own port, just as the server told the input's client about
the probe. CI died of a segmentation fault in a native thread while improv was in
``close_port`` of such an input (2026-12-02; the one before died during the flood test). This
was not reproduced here: no crash in 3,250 closes under traffic and graph churn, old code or new.

So on JACK, ``close_port`` here waits :data:`SETTLE` first. That covers a change improv just
made, and one another program just made (a benchmark closed its inputs just after its peers
had exited). The port's close and its client's (``delete``) take turns with those of the
process's other threads. A client's close takes nothing out of a port list: ``Close`` never
touches it. A change made by another program at the very moment improv closes a port can
still meet it; only libjack can fix that. Ports python-rtmidi frees on its own (garbage
collection, the end of the process) are closed without the wait.
"""

from __future__ import annotations

import threading
import time

#: Wait before each close_port on JACK. A change takes effect within one period: 21 ms at
#: JACK's common 1024 frames at 48 kHz, 1.33 ms for the tests' server (64 frames); 0.05 s
#: assumes periods up to about 2048 frames and a few ms for the server to tell each
#: client. Measured here (JACK dummy, period 64): a daemon's stop 0.115 -> 0.265 s, a harness
#: listener's close 0.04 -> 0.14 s.
SETTLE = 0.05
#: Longest wait for another thread's close to end. A close is a call into the JACK server,
#: which can hang on a starved server (improv.session gives its closes 2 s); a close that
#: waited this long goes on without its turn rather than hang behind it.
TURN_TIMEOUT = 5.0

_turn = threading.RLock()  # RLock: a port freed by garbage collection within a close


def _on_jack(rt) -> bool:
    import rtmidi

    # get_current_api on a deleted python-rtmidi object is a use of freed memory: not asked
    return not getattr(rt, "is_deleted", False) and rt.get_current_api() == rtmidi.API_UNIX_JACK


def _close(rt, jack: bool) -> None:
    """Close ``rt``'s port (after SETTLE on JACK) and free it, in turn (see the module)."""
    if getattr(rt, "is_deleted", False):
        return
    if hasattr(rt, "cancel_callback"):  # an input: no call into Python from JACK's thread
        # is under way or waiting for the GIL when the client closes (improv.ports.close_input;
        # mido sets its callback again just before it closes)
        rt.cancel_callback()
    turn = jack and _turn.acquire(timeout=TURN_TIMEOUT)
    try:
        if jack:
            time.sleep(SETTLE)
        rt.close_port()
        rt.delete()
    finally:
        if turn:
            _turn.release()


def close_rtmidi(rt) -> None:
    """Close the port of a python-rtmidi ``MidiIn`` or ``MidiOut`` (after :data:`SETTLE` on
    JACK) and free it; nothing if it was freed already. A call into the server may raise
    (or, on a server that went away, crash: improv does not close ports then)."""
    if isinstance(rt, SpacedRtMidi):
        rt = rt.target
    _close(rt, _on_jack(rt))


class SpacedRtMidi:
    """A python-rtmidi object whose ``close_port`` is :func:`close_rtmidi` (it frees the object
    too; the ``delete`` that mido calls next finds it freed); everything else is the
    object's own (see :func:`spaced`)."""

    def __init__(self, target):
        self.target = target
        self._jack = _on_jack(target)
        if hasattr(target, "send_message"):  # an output's sends skip __getattr__
            self.send_message = target.send_message

    def __getattr__(self, name: str):
        if name == "target":  # not set yet (a copy): no endless lookup
            raise AttributeError(name)
        return getattr(self.target, name)

    def close_port(self) -> None:
        _close(self.target, self._jack)

    def delete(self) -> None:
        if not getattr(self.target, "is_deleted", False):
            self.target.delete()


def spaced(port):
    """Return mido's python-rtmidi ``port``, its closing done as :func:`close_rtmidi`'s
    (mido's close calls ``close_port`` and ``delete`` on its ``_rt``)."""
    rt = getattr(port, "_rt", None)
    if rt is not None and not isinstance(rt, SpacedRtMidi):
        port._rt = SpacedRtMidi(rt)
    return port
