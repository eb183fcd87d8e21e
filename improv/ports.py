"""MIDI ports through mido and python-rtmidi: back-ends, listing, choosing, opening.

A port is chosen by exact name, by a unique substring, or by its index in the
list; a name that matches nothing raises :class:`PortError` listing the ports
there are. Virtual ports (for a DAW to connect to) are named ``improv in``
(what you send into improv) and ``improv out`` (what improv plays), the same
on every start.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import mido

from improv.errors import ImprovError
from improv.portclose import close_rtmidi, spaced
from improv.quiet import quiet_stderr

T = TypeVar("T")

#: ``--api`` names and rtmidi's API names.
APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE",
        "winmm": "WINDOWS_MM"}
VIRTUAL_IN = "improv in"
VIRTUAL_OUT = "improv out"


class PortError(ImprovError, OSError):
    """A port or back-end is missing or cannot be opened."""


class PortGoneError(PortError):
    """A port reopened by its full name, or chosen a moment before, is not there now."""


def _api_works(api: str) -> bool:
    import rtmidi

    try:
        with quiet_stderr():  # ALSA prints its own error when /dev/snd/seq is missing
            rtmidi.MidiIn(getattr(rtmidi, f"API_{APIS[api]}")).delete()
        return True
    except (SystemError, RuntimeError, rtmidi.RtMidiError, AttributeError):
        return False


def get_backend(api: str | None = None) -> mido.Backend:
    """Return the mido back-end for ``api`` (alsa, jack, coremidi, winmm).

    Without ``api``: ``$MIDO_BACKEND`` if set, else the platform's default;
    on Linux, JACK when ALSA is absent (no sound card / no ``snd-seq``).
    """
    if api:
        if api not in APIS:
            raise PortError(f"unknown MIDI API {api!r}; choose from {', '.join(APIS)}")
        _check_compiled(api)
        name = f"mido.backends.rtmidi/{APIS[api]}"
    elif os.environ.get("MIDO_BACKEND"):
        name = os.environ["MIDO_BACKEND"]
        try:  # (a module and an API of rtmidi's: checked here, not at the first listing)
            backend = mido.Backend(name, load=True)
            if backend.api:  # (an unknown one fails only in use)
                _check_compiled(next(k for k, v in APIS.items() if v == backend.api))
        except PortError as exc:
            raise PortError(f"MIDO_BACKEND={name!r}: {exc}") from None
        except (ImportError, StopIteration) as exc:
            raise PortError(f"MIDO_BACKEND={name!r}: not a MIDI back-end improv can use "
                            f"({str(exc) or 'no such API'}); try "
                            "mido.backends.rtmidi/UNIX_JACK, or unset it") from None
        return backend
    elif sys.platform.startswith("linux"):
        if _api_works("alsa"):
            name = "mido.backends.rtmidi/LINUX_ALSA"
        elif _api_works("jack"):
            name = "mido.backends.rtmidi/UNIX_JACK"
        else:
            raise PortError(
                "no MIDI system: ALSA is absent (no /dev/snd/seq: load snd-seq, or this machine "
                "has no sound support) and no JACK server is running (start one: "
                "jackd -d dummy, or use --api jack with your JACK setup)")
    else:
        name = "mido.backends.rtmidi"
    return mido.Backend(name, load=True)


def _check_compiled(api: str) -> None:
    """PortError if this python-rtmidi was built without ``api`` (CoreMIDI on Linux)."""
    import rtmidi

    compiled = rtmidi.get_compiled_api()
    if getattr(rtmidi, f"API_{APIS[api]}", None) not in compiled:
        have = [k for k, v in APIS.items() if getattr(rtmidi, f"API_{v}", None) in compiled]
        raise PortError(f"MIDI API {api!r} is not in this python-rtmidi (it has: "
                        f"{', '.join(have) or 'none'})")


def api_name(backend: mido.Backend) -> str:
    """Return the back-end's API in words (ALSA, JACK, CoreMIDI, Windows MM)."""
    words = {"LINUX_ALSA": "ALSA", "UNIX_JACK": "JACK", "MACOSX_CORE": "CoreMIDI",
             "WINDOWS_MM": "Windows MM"}
    api = backend.api or {"linux": "LINUX_ALSA", "darwin": "MACOSX_CORE",
                          "win32": "WINDOWS_MM"}.get(sys.platform, "")
    return words.get(api, api or "default")


def _call(fn, what: str):
    import rtmidi

    try:
        return fn()
    except (SystemError, RuntimeError, rtmidi.RtMidiError) as exc:  # "JACK server not running?"
        raise PortError(f"{what}: {exc}") from None


def list_ports(backend: mido.Backend) -> dict[str, list[str]]:
    """Return the input and output port names the back-end sees."""
    return {"inputs": _names(backend, "inputs"), "outputs": _names(backend, "outputs")}


def _names(backend: mido.Backend, kind: str) -> list[str]:
    """One half of :func:`list_ports` ("inputs" or "outputs"): one client opened, not two."""
    get = backend.get_input_names if kind == "inputs" else backend.get_output_names
    return _listed(lambda: _call(get, f"cannot list MIDI {kind}"))


def _listed(listing: Callable[[], T]) -> T:
    """Run a port listing, and again (three tries in all) if it failed: a port that goes while
    it is listed makes RtMidi fail ("the 'portNumber' argument (2) is invalid": it counts the
    ports, then names them; a red team's flapping ports once ended a run with "the MIDI
    system went away")."""
    for _ in range(2):
        try:
            return listing()
        except PortError:
            time.sleep(0.01)
    return listing()


def own_client(port: str, role: str) -> bool:
    """Whether ``port`` is one of this improv's own, of its client ``role`` ("sender",
    "listener", "probe"): ``improv ROLE PID``, or ``improv ROLE PID-01``... (JACK's name for a
    second client of a name taken: a reopen opens the new one before the old one closes)."""
    client = port.split(":", 1)[0]
    return re.fullmatch(rf"{re.escape(_client(role))}(-\d+)?", client) is not None


def _client(role: str) -> str:
    return f"improv {role} {os.getpid()}"


class PortLister:
    """List ports through two rtmidi clients kept open.

    mido opens two new clients for every listing; on JACK that takes ~75 ms, during
    which python-rtmidi holds the GIL and every other thread of improv waits (measured
    here: the main loop stalled up to 28 ms). Clients kept open list in ~0.1 ms and
    see the same names. When the JACK server is gone they list nothing.
    """

    def __init__(self, backend: mido.Backend):
        import rtmidi

        api = getattr(rtmidi, f"API_{backend.api}") if backend.api else rtmidi.API_UNSPECIFIED
        self._in = _call(lambda: rtmidi.MidiIn(api), "cannot open a MIDI client")
        self._out = _call(lambda: rtmidi.MidiOut(api), "cannot open a MIDI client")

    def list(self) -> dict[str, list[str]]:
        """Return the input and output port names there are now (:func:`_listed`)."""
        return {"inputs": _listed(lambda: _call(self._in.get_ports, "cannot list MIDI inputs")),
                "outputs": _listed(lambda: _call(self._out.get_ports,
                                                 "cannot list MIDI outputs"))}


def choose_port(wanted: str, available: list[str], kind: str, exact: bool = False) -> str:
    """Return the port ``wanted`` names: exact, unique substring, or index (``exact``: the
    exact name only; a port reopened by its full name must not become another one)."""
    if exact and wanted not in available:
        raise PortGoneError(f"{kind} port {wanted!r} is gone")
    chosen, why = _choose(wanted, available, kind)
    if why:
        raise PortError(f"{why}; {_listing(available, kind)}")
    return chosen


def _choose(wanted: str, available: list[str], kind: str) -> tuple[str, str]:
    """(the port ``wanted`` names, "") or ("", why none is)."""
    if wanted in available:
        return wanted, ""
    matches = [p for p in available if wanted.lower() in p.lower()]
    if len(matches) == 1:
        return matches[0], ""
    if wanted.isdigit() and int(wanted) < len(available):
        return available[int(wanted)], ""
    why = f"{len(matches)} {kind} ports match" if matches else f"no {kind} port matches"
    return "", f"{why} {wanted!r}"


def _listing(available: list[str], kind: str) -> str:
    listing = "\n  ".join(f"{i}: {p}" for i, p in enumerate(available)) or "(none)"
    return f"the {kind} ports are:\n  {listing}"


def check_named_ports(backend: mido.Backend, inputs: tuple[str, ...] = (),
                      outputs: tuple[str, ...] = ()) -> None:
    """Raise one PortError naming every port asked for ("" for none) that matches no port
    or several, inputs first (with a wrong input and a wrong output, improv named the
    output alone, and the input only once that was put right: a review). Opening checks
    each again (a port may go in between)."""
    listed = list_ports(backend)
    inputs_seen = [n for n in listed["inputs"]  # as an input is chosen (_open_rtmidi_input)
                   if not own_client(n, "sender") and not own_client(n, "probe")]
    problems = []
    for names, kind, available in ((inputs, "input", inputs_seen),
                                   (outputs, "output", listed["outputs"])):
        # (--input and --clock-input alike)
        wrong = [why for name in dict.fromkeys(n for n in names if n)
                 if (why := _choose(name, available, kind)[1])]
        if wrong:  # a kind's ports listed once, not once a wrong name
            problems.append(f"{'; '.join(wrong)}; {_listing(available, kind)}")
    if problems:
        raise PortError("\n".join(problems))


def _check_virtual(backend: mido.Backend) -> None:
    if api_name(backend) == "Windows MM":
        raise PortError("Windows MIDI has no virtual ports; install a loopback driver "
                        "(e.g. loopMIDI), create a port there and name it with --input/--output")


def _clients(names: list[str]) -> set[str]:
    return {n.split(":", 1)[0] for n in names}


def _claim(backend: mido.Backend, port: str, listing: str, opener):
    """Open a virtual port named ``port`` (client and port both); return (it, real name).

    ``listing`` is which of the other side's lists shows it ("outputs" lists the
    ports one can send to, among them a virtual input). A name already taken is
    refused: JACK would rename ours (``improv in-01``) and nobody would find it.
    """
    _check_virtual(backend)
    before = list_ports(backend)[listing]
    if port in _clients(before):
        raise PortError(f"a port named {port!r} is already open (is another improv running?); "
                        f"choose other names with --virtual NAME")
    opened = _call(opener, f"cannot open {port!r}")
    new = [n for n in list_ports(backend)[listing] if n not in before
           and n.split(":", 1)[0].startswith(port)]
    ours = [n for n in new if n.split(":", 1)[0] == port]
    if len(new) > 1 or (new and not ours):  # another program took the name meanwhile
        _close_quietly(opened)
        raise PortError(f"a port named {port!r} was opened by another program at the same "
                        f"time; choose other names with --virtual NAME")
    return opened, (ours[0] if ours else port)


def _close_quietly(port) -> None:
    try:
        if hasattr(port, "close_port"):
            close_rtmidi(port)
        else:
            port.close()
    except Exception:
        pass


def open_polled_input(backend: mido.Backend, post=None, name: str | None = None,
                      virtual: bool = False, fill: bool = True, exclude: tuple[str, ...] = ()):
    """Open the input ``name`` (or a virtual one) read without a callback.

    Returns a :class:`~improv.midiin.PolledInput`: read it with ``poll()``, or give
    ``post`` and a thread of its own calls ``post(t, msg)`` for each message. See
    :mod:`improv.midiin` for why. ``fill``: fill its queue while nobody plays (off for a
    benchmark's own clients, whose measurements it would share the first seconds with).
    ``exclude``: ports ``name`` never matches (improv's own virtual output: improv would
    answer itself).
    """
    from improv.midiin import PolledInput

    midi_in, real, probe, own = _open_rtmidi_input(backend, name, virtual, exclude)
    return PolledInput(midi_in, real, post, probe=probe, fill=_fill(probe) if fill else 0,
                       own=own)


def reopen_polled_input(backend: mido.Backend, polled, name: str) -> None:
    """Reconnect a :class:`~improv.midiin.PolledInput` to the input of full name ``name``
    (no other: PortError if it is gone)."""
    midi_in, real, probe, own = _open_rtmidi_input(backend, name, False, exact=True)
    polled.swap(midi_in, real, probe, fill=_fill(probe), own=own)


def _fill(probe) -> int:
    """Fill events for a new input's queue (improv.midiin.PolledInput): one a slot, with a
    probe to send them."""
    from improv.midiin import QUEUE_LIMIT

    return QUEUE_LIMIT if probe is not None else 0


def _open_rtmidi_input(backend: mido.Backend, name: str | None, virtual: bool,
                       exclude: tuple[str, ...] = (), exact: bool = False):
    import rtmidi

    from improv.midiin import QUEUE_LIMIT, _rtmidi_api

    api = _rtmidi_api(backend)

    def make(client: str):
        midi_in = rtmidi.MidiIn(api, client, queue_size_limit=QUEUE_LIMIT)
        # SysEx is let through RtMidi on purpose (improv.midiin: unterminated SysEx)
        # MIDI clock (F8, start, stop, continue) through: the beat clock follows it
        midi_in.ignore_types(sysex=False, timing=False, active_sense=True)
        return midi_in

    if virtual:
        port = name or VIRTUAL_IN

        def opener():
            midi_in = make(port)
            midi_in.open_virtual_port(port)
            return midi_in
        midi_in, real = _claim(backend, port, "outputs", opener)
    else:
        listed = list_ports(backend)
        # not improv's own sender (a named output on JACK, opened first), nor its probe
        candidates = [n for n in listed["inputs"] if n not in exclude
                      and not own_client(n, "sender") and not own_client(n, "probe")]
        chosen = choose_port(name or "0", candidates, "input", exact)
        client = _client("listener")

        def opener():
            midi_in = make(client)
            try:  # the index in the opening client's own listing: another's may differ by
                # then (a red team's flapping ports had improv listen to its own output)
                midi_in.open_port(midi_in.get_ports().index(chosen), "in")
            except ValueError:  # gone since it was chosen
                midi_in.delete()
                raise PortGoneError(f"cannot open {chosen!r}: it is gone") from None
            return midi_in
        midi_in = _call(opener, f"cannot open {chosen!r}")
        ours = [n for n in _names(backend, "outputs") if n not in listed["outputs"]
                and own_client(n, "listener")]
        real = ours[0] if len(ours) == 1 else ""
        chosen_name = chosen
    probe = _open_probe(api, real) if api_name(backend) == "JACK" and real else None
    # and improv's own port: for a named input, the listener's ("" if unknown)
    return midi_in, (real if virtual else chosen_name), probe, (real if not virtual else "")


def _open_probe(api: int, target: str):
    """An output connected to our own input, for the SysEx probe (improv.midiin)."""
    import rtmidi

    try:
        probe = rtmidi.MidiOut(api, _client("probe"))
        probe.open_port(probe.get_ports().index(target), "probe")
        return probe
    except (ValueError, SystemError, RuntimeError, rtmidi.RtMidiError):
        return None  # the input works without it; only the SysEx safety net is missing


def close_input(port, settle: float = 0.1) -> None:
    """Close an input opened with a callback (:func:`open_input`) without hanging the process.

    libjack's jack_client_close cancels the client's thread, and one cancelled while it
    waited for the GIL to hand on a message kept the GIL's lock: every thread of the process
    hung for good (``improv bench live``, 3 of 3 runs beside a soak; seen in gdb). mido's
    own close is no help: it sets its callback wrapper again just before it closes. So
    python-rtmidi is told to stop calling Python, a call under way has ``settle`` seconds to
    end, and the port is closed beneath mido."""
    rt = getattr(port, "_rt", None)  # mido's python-rtmidi object
    if rt is None or port.closed:
        port.close()
        return
    rt.cancel_callback()
    time.sleep(settle)
    close_rtmidi(rt)
    port.closed = True


def open_input(backend: mido.Backend, name: str | None = None, virtual: bool = False,
               callback=None):
    """Open the input ``name`` (or a virtual one) through mido (tests and benchmarks)."""
    if virtual:
        _check_virtual(backend)
        port = name or VIRTUAL_IN
        return spaced(_call(lambda: backend.open_input(port, virtual=True, client_name=port,
                                                       callback=callback),
                            f"cannot open {port!r}"))
    chosen = choose_port(name or "0", list_ports(backend)["inputs"], "input")
    # no client_name here: mido makes any port with a client name a virtual one
    return spaced(_call(lambda: backend.open_input(chosen, callback=callback),
                        f"cannot open {chosen!r}"))


def open_output(backend: mido.Backend, name: str | None = None, virtual: bool = False,
                exact: bool = False):
    """Open the output ``name`` (or the virtual ``improv out``; ``exact``: the port of that
    full name and no other, PortError if it is gone).

    A virtual output's ``real_name`` is the full name others connect to
    (``improv out:improv out`` on JACK); a taken name is refused.
    """
    if virtual:
        port = name or VIRTUAL_OUT
        opened, real = _claim(backend, port, "inputs", lambda: spaced(backend.open_output(
            port, virtual=True, client_name=port)))
        opened.real_name = real
        return opened
    listed = list_ports(backend)
    chosen = choose_port(name or "0", listed["outputs"], "output", exact)
    if api_name(backend) == "JACK":
        return _call(lambda: _open_jack_output(backend, chosen, listed["inputs"]),
                     f"cannot open {chosen!r}")
    return spaced(_call(lambda: backend.open_output(chosen), f"cannot open {chosen!r}"))


class JackOutput(mido.ports.BaseOutput):
    """A named output on JACK, sent through python-rtmidi from improv's own client
    (``improv sender PID``): its port, ``own_port``, can be told apart in the JACK graph, so
    the peer watch sees when the port it feeds went and came back at once and dropped the
    connection (:class:`improv.watch.PeerWatch`); a patchbay shows it by that name too."""

    def __init__(self, midi_out, name: str, own: str):
        self._rt = midi_out
        self.own_port = own
        self._send_lock = threading.Lock()
        super().__init__(name)

    def send(self, msg: mido.Message) -> None:
        """Send a message (as mido's own rtmidi output does: no copy of it, 1.56 -> 0.76 us a
        message, measured)."""
        if self.closed:
            raise ValueError("send() called on closed port")
        with self._send_lock:
            self._rt.send_message(msg.bytes())

    def _close(self) -> None:
        close_rtmidi(self._rt)


def _open_jack_output(backend: mido.Backend, chosen: str, before: list[str]) -> JackOutput:
    """Open ``chosen`` from improv's sender client; ``before``: the sources listed before."""
    import rtmidi

    from improv.midiin import _rtmidi_api

    midi_out = rtmidi.MidiOut(_rtmidi_api(backend), _client("sender"))
    try:
        midi_out.open_port(midi_out.get_ports().index(chosen), "out")
    except ValueError:  # gone since it was chosen
        midi_out.delete()
        raise PortGoneError(f"cannot open {chosen!r}: it is gone") from None
    ours = [n for n in _names(backend, "inputs") if n not in before and own_client(n, "sender")]
    return JackOutput(midi_out, chosen, ours[0] if len(ours) == 1 else "")
