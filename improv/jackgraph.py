"""Who is connected to a JACK port: a small, read-only view of the JACK graph.

RtMidi says nothing about connections, so improv asks libjack itself, through
ctypes, with a client that is opened but never activated: it has no process
callback and no real-time thread, and asking for a port's connections reads the
server's shared graph (measured: 17 µs a call). The library is the one
python-rtmidi's wheel already loaded (a second copy of libjack in the process is
avoided), else the system's ``libjack.so.0``.

Used for virtual ports, which nothing else watches: a virtual input whose last
peer went away releases the keys held through it; a peer that connects to the
virtual output first gets all-notes-off and sustain-off. And for the server itself:
libjack tells the client when the server goes (``jack_on_info_shutdown``, measured
10 ms after the server was killed), where the graph it reads and the port listings
of the clients kept open go on saying that nothing changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading

JACK_NO_START_SERVER = 0x01
#: jack_status_t bits of a client that could not open: no connection to the server, or a
#: communication error with it (jack/types.h: JackServerFailed, JackServerError).
JACK_SERVER_FAILED, JACK_SERVER_ERROR = 0x10, 0x20


class JackServerGone(OSError):
    """The JACK server did not take a new client: it is not running (any more)."""
#: void (*)(jack_status_t code, const char *reason, void *arg)
_INFO_SHUTDOWN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


def _load():
    import rtmidi

    here = os.path.dirname(os.path.dirname(rtmidi.__file__))
    for path in sorted(glob.glob(os.path.join(here, "python_rtmidi*", "libjack*.so*"))) + [
            ctypes.util.find_library("jack") or "libjack.so.0"]:
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError:
            continue
    else:
        raise OSError("libjack not found")
    lib.jack_client_open.restype = ctypes.c_void_p
    lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_int)]
    lib.jack_client_close.argtypes = [ctypes.c_void_p]
    lib.jack_port_by_name.restype = ctypes.c_void_p
    lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.jack_port_get_all_connections.restype = ctypes.c_void_p
    lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.jack_free.argtypes = [ctypes.c_void_p]
    lib.jack_on_info_shutdown.argtypes = [ctypes.c_void_p, _INFO_SHUTDOWN, ctypes.c_void_p]
    return lib


class JackGraph:
    """Read a port's connections; :attr:`gone` is set when the server goes away. Raises
    OSError if there is no JACK server."""

    def __init__(self, client_name: str = "improv watch"):
        self._lib = _load()
        status = ctypes.c_int()
        self._client = self._lib.jack_client_open(client_name.encode(), JACK_NO_START_SERVER,
                                                  ctypes.byref(status))
        if not self._client:
            gone = status.value & (JACK_SERVER_FAILED | JACK_SERVER_ERROR)
            raise (JackServerGone if gone else OSError)(
                f"cannot open a JACK client (status {status.value:#x})")
        self.gone = threading.Event()
        # libjack's own (non-real-time) thread calls it; referenced here for as long as the
        # client lives (a ctypes callback that is collected would crash libjack's call)
        self._on_shutdown = _INFO_SHUTDOWN(lambda code, reason, arg: self.gone.set())
        self._lib.jack_on_info_shutdown(self._client, self._on_shutdown, None)

    def connections(self, port: str) -> list[str] | None:
        """Return the full names of the ports connected to ``port`` (None: no such port)."""
        handle = self._lib.jack_port_by_name(self._client, port.encode())
        if not handle:
            return None
        raw = self._lib.jack_port_get_all_connections(self._client, handle)
        if not raw:
            return []
        names = ctypes.cast(raw, ctypes.POINTER(ctypes.c_char_p))
        out = []
        i = 0
        while names[i]:
            out.append(names[i].decode(errors="replace"))
            i += 1
        self._lib.jack_free(raw)
        return out

    def close(self) -> None:
        if self._client:
            self._lib.jack_client_close(self._client)
            self._client = None
