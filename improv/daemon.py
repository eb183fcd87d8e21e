"""``improv run``: the live loop from input port to outputs, until Ctrl-C, SIGTERM or SIGHUP.

The work is a :class:`~improv.session.Session` (open, step, close, report); this module
runs one in the foreground: it installs the signal handlers and steps the session until
it is stopped or ends itself (the MIDI system went: :data:`EXIT_MIDI_GONE`). However the
loop ends (Ctrl-C, SIGTERM, SIGHUP, an exception), the session ends every sounding note,
sends all-notes-off and sustain-off, and writes the recording and the memory file.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading

from improv.config import RunOptions
from improv.session import EXIT_MIDI_GONE, Session, make_inbox

__all__ = ["EXIT_MIDI_GONE", "make_inbox", "run"]


def run(options: RunOptions, stop: threading.Event | None = None, log=None, source=None,
        outputs: list | None = None, status_json=None) -> int:
    """Run a session until ``stop`` is set, SIGINT, SIGTERM or SIGHUP; return the exit
    status (:class:`~improv.session.Session`'s: 0, EXIT_FAILED, EXIT_MIDI_GONE).

    ``source`` and ``outputs`` may replace the ports (see :class:`~improv.session.Session`);
    ``status_json`` is a stream for the session's JSON status lines.
    """
    stop = stop or threading.Event()
    signalled: list[int] = []  # the stopping signals received (the handler's only work)
    if threading.current_thread() is threading.main_thread():  # before anything opens
        # SIGHUP: the terminal improv ran in was closed (an ssh session dropped): it
        # stops as for Ctrl-C, ending its notes and writing its files, instead of dying;
        # unless it is ignored (``nohup improv run``), and where there is none (Windows).
        hup = getattr(signal, "SIGHUP", None)
        wanted = [signal.SIGINT, signal.SIGTERM]
        if hup is not None and signal.getsignal(hup) is not signal.SIG_IGN:
            wanted.append(hup)
        for sig in wanted:
            # A list's append, no lock: a handler that set the Event ran again inside
            # itself at a second signal (a double Ctrl-C) and waited for good on the lock
            # the first held (a red team's, 3 of 60 tries as improv started).
            signal.signal(sig, lambda signum, _: signalled.append(signum))
            if hasattr(signal, "siginterrupt"):
                # and the system calls it interrupts go on: libjack, cut short in a read
                # of its server's answer as a port opened, then waited for good in the next
                # (the same red team's)
                signal.siginterrupt(sig, False)
    with Session(options, log=log if log is not None else sys.stderr, source=source,
                 outputs=outputs, status_json=status_json) as session:
        if source is None and threading.current_thread() is threading.main_thread():
            # A daemon of its own (not a test's session in its process): what is loaded
            # now lives as long as the process, so it goes out of the collector's
            # sight: a full collection must not walk it with the GIL held while a note is
            # due (measured in a `bench clock` daemon: 15.5 ms, a note that late).
            gc.collect()
            gc.freeze()
        while not (stop.is_set() or signalled) and session.step() is None:
            pass
        if signalled:
            stop.set()  # (for whoever else waits on it: the demo's pianist)
    return session.exit_status  # set by close(): 0, or what went wrong
