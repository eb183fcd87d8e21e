"""The polled input: decoding raw bytes (in-process), and over real JACK ports: an
unterminated SysEx does not make improv deaf, and nothing is lost against a tap."""

import subprocess
import sys
import threading
import time

import pytest

from improv.midiin import FILL, FILL_IN_FLIGHT, PROBE, MidiDecoder, PolledInput
from improv.portclose import close_rtmidi
from tests.live import REPO, settled


def decode(*events):
    d = MidiDecoder()
    out = []
    for e in events:
        out += d.feed(list(e))
    return d, [m.bytes() for m in out]


def test_plain_messages_and_running_status():
    d, got = decode([0x90, 60, 64], [0x90, 62, 70, 64, 0], [65, 10])
    assert got == [[0x90, 60, 64], [0x90, 62, 70], [0x90, 64, 0], [0x90, 65, 10]]
    d, got = decode([0xC0, 5, 6], [0xB0, 64, 127])  # two-byte messages keep running status
    assert got == [[0xC0, 5], [0xC0, 6], [0xB0, 64, 127]]


def test_broken_sysex_gives_back_the_swallowed_messages():
    # RtMidi's JACK input hands the unterminated SysEx and everything after it as one
    # event once an event ends in F7 (the probe, F0 F7): the messages come back out.
    swallowed = [0xF0, 1, 2, 3, 0x90, 60, 64, 0x80, 60, 0, 0xB0, 123, 0] + list(PROBE)
    d, got = decode(swallowed)
    assert got == [[0x90, 60, 64], [0x80, 60, 0], [0xB0, 123, 0]]
    assert d.aborted_sysex == 1 and d.sysex == 1  # the probe itself: dropped


def test_sysex_is_dropped_realtime_inside_it_is_kept_and_junk_is_counted():
    d, got = decode([0xF0, 1, 0xF8, 2, 0xF7], [0x40, 0x41], [0xF4], [0xF9], [0xF7])
    assert got == [[0xF8]]
    assert d.sysex == 1 and d.dropped_bytes == 4 and d.invalid == 1
    d, got = decode([0xF0] + [1] * 100_000 + [0xF7], [0x90, 1, 2])  # a huge one: bounded
    assert got == [[0x90, 1, 2]] and d.sysex == 1


class FakePort:
    """A python-rtmidi MidiIn stand-in: get_message() pops from a list."""

    def __init__(self):
        self.queue, self.lock = [], threading.Lock()
        self.probes = []

    def get_message(self):
        with self.lock:
            return (self.queue.pop(0), 0.0) if self.queue else None

    def send_message(self, msg):  # as the probe port
        self.probes.append(list(msg))
        with self.lock:
            self.queue.append(list(msg))

    def close_port(self):
        pass

    def delete(self):
        pass


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def test_polled_input_stamps_and_posts_every_message_and_probes_when_idle():
    port = FakePort()
    got = []
    clock = [100.0]
    polled = PolledInput(port, "fake", lambda t, m: got.append((t, m)), probe=port,
                         clock=lambda: clock[0])
    try:
        with port.lock:
            port.queue += [[0x90, 60, 64], [0x80, 60, 0]]
        assert wait_until(lambda: len(got) == 2)
        assert [t for t, _ in got] == [100.0, 100.0]
        assert [m.type for _, m in got] == ["note_on", "note_off"]
        assert not port.probes  # not idle yet on this clock
        clock[0] += 1.0  # idle for a second: one probe, which comes back and is dropped
        assert wait_until(lambda: port.probes)
        assert wait_until(lambda: polled.events >= 3)
        assert len(got) == 2 and polled.decoder.sysex >= 1
    finally:
        polled.close()


def test_the_queue_is_filled_while_nobody_plays_a_few_at_a_time():
    """With ``fill``, idle polls send FILL events through the port, never more than
    FILL_IN_FLIGHT on their way, and drop them as they come back (the probe waits till the
    fill is done); a player's event keeps the time the fill events' deltas before it add up
    to, and the fill waits until the player has been quiet for PROBE_IDLE (a MIDI clock does
    not count)."""
    port = FakePort()
    port.get_message = lambda: (port.queue.pop(0), 0.001) if port.queue else None  # 1 ms apart
    clock = [100.0]
    polled = PolledInput(port, "fake", probe=port, clock=lambda: clock[0], fill=200)

    def sent():
        return port.probes.count(list(FILL))

    clock[0] = 100.2  # quiet: the first batch goes out
    assert polled.poll() == [] and sent() == FILL_IN_FLIGHT == 64
    port.queue.append([0x90, 60, 64])  # a note after the batch
    clock[0] = 100.3
    got = polled.poll()  # the batch back at 100.200-100.263, then the note
    assert [(round(t, 6), m.note) for t, m in got] == [(100.264, 60)]
    assert polled.filled == 64 and sent() == 64  # the note was 36 ms ago: the fill waits
    port.queue.append([0xF8])  # a DAW's MIDI clock, running all the time, does not stop it
    clock[0] = 100.38  # the note 116 ms ago, the clock's tick (at 100.3) 80 ms
    assert [m.type for _, m in polled.poll()] == ["clock"] and sent() == 128
    most = 0
    for _ in range(20):
        clock[0] += 0.2
        polled.poll()
        most = max(most, port.queue.count(list(FILL)))
    assert polled.filled == 200 and most <= FILL_IN_FLIGHT
    first_probe = port.probes.index(list(PROBE))  # the probe once the fill was done
    assert first_probe > max(i for i, p in enumerate(port.probes) if p == list(FILL))
    # only the probes were decoded (the last one is still on its way)
    assert polled.decoder.sysex == len(port.probes) - sent() - len(port.queue)


# -- over real JACK ----------------------------------------------------------------------

def test_unterminated_sysex_does_not_make_improv_deaf(jack):
    import rtmidi

    from improv.ports import get_backend, open_polled_input

    got = []
    polled = open_polled_input(get_backend("jack"), lambda t, m: got.append(m), "sysextest in",
                               virtual=True)
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "sysextest sender")
    try:
        assert polled.name == "sysextest in:sysextest in"
        sender.open_port(sender.get_ports().index(polled.name))
        time.sleep(0.2)
        sender.send_message([0xF0, 0x7D, 1, 2])  # no F7: RtMidi would swallow what follows
        for pitch in range(60, 70):
            sender.send_message([0x90, pitch, 64])
            sender.send_message([0x80, pitch, 0])
        assert wait_until(lambda: len(got) >= 20), (len(got), polled.probes)
        assert [m.note for m in got if m.type == "note_on"] == list(range(60, 70))
        assert polled.decoder.aborted_sysex == 1
        got.clear()  # and the input works normally afterwards
        # (Up to 3 sends, 10 s each: a CI-like run beside a CPU burner once heard nothing
        # of one in 10 s, where 6 of 6 runs of this test alone heard it at once; a deaf
        # input hears none of them.)
        for _ in range(3):
            sender.send_message([0x90, 72, 64])
            if wait_until(lambda: got):
                break
        state = (polled.events, polled.received, polled.probes, polled.filled,
                 polled.decoder.sysex, polled.decoder.aborted_sysex)
        assert got and got[0].note == 72, state
    finally:
        close_rtmidi(sender)
        polled.close()


@pytest.mark.parametrize("rate", [2000])
def test_polled_input_hears_what_the_tap_hears(jack, rate):
    """A polled input beside a tap (another polled client on the same sender), with a busy
    Python thread in the input's process: it hears what the tap hears, within 0.5% of what
    was sent. The sender is a process of its own, so the busy thread cannot slow it down."""
    import rtmidi

    from improv.ports import get_backend, open_polled_input

    got = []
    polled = open_polled_input(get_backend("jack"), lambda t, m: got.append(m), "losstest in",
                               virtual=True)
    tap = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "losstest tap", queue_size_limit=65536)
    sender = subprocess.Popen([sys.executable, "-m", "tests.peer", "stream", "losstest sender",
                               str(rate), "3"], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    stop = threading.Event()

    def busy():  # the main loop's work, holding the GIL as Python does
        while not stop.is_set():
            sum(range(2000))
    burner = threading.Thread(target=busy, daemon=True)
    try:
        assert sender.stdout.readline().strip() == "ready"
        sender_name = [n for n in tap.get_ports() if "losstest sender" in n][0]
        tap.open_port(tap.get_ports().index(sender_name))
        subprocess.run(["jack_connect", sender_name, polled.name], check=True)
        time.sleep(0.3)
        burner.start()
        sender.stdin.write("go\n")
        sender.stdin.flush()
        out, _ = sender.communicate(timeout=60)
        sent = int(out.split()[-1])
        assert sent >= rate  # the sender ran (its pace is not asserted)
        heard = 0
        while tap.get_message() is not None:  # the tap's queue holds all of it (65,536)
            heard += 1
        settled(lambda: len(got))
        # A JACK client that misses a cycle on a loaded machine loses that cycle's messages
        # (~3 at this rate), the tap as much as improv, so exact parity is luck. The callback
        # input this replaced lost 14% here (1,090 + 313 of ~10,000 with a busy main thread).
        assert abs(len(got) - sent) <= abs(heard - sent) + sent // 200, (
            f"sent {sent}, tap heard {heard}, improv's input {len(got)}")
        print(f"sent {sent}, tap heard {heard}, improv's input {len(got)}")
    finally:
        stop.set()
        if sender.poll() is None:
            sender.kill()
        close_rtmidi(tap)
        polled.close()


def _malloc_in_use() -> int:
    """Bytes malloc has handed out, over every arena (glibc's malloc_info)."""
    import ctypes
    import os
    import re
    import tempfile

    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    fd, path = tempfile.mkstemp()
    os.close(fd)
    try:
        fp = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        info = open(path).read()
    finally:
        os.unlink(path)
    used = 0
    for heap in re.findall(r'<heap nr="\d+">(.*?)</heap>', info, re.S):
        used += int(re.search(r'<system type="current" size="(\d+)"', heap).group(1))
        used -= sum(map(int, re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"',
                                        heap)))
    return used


def _fill_and_pass(name: str, fill: int, player_events: int, queue: int = 4096,
                   play_after: int | None = None):
    """Over JACK: an input (queue of ``queue`` slots) with a probe and a player; poll until
    ``play_after`` (default: all ``fill``) FILL events went through, then pass
    ``player_events`` of the player's (note on and off; the notes 0-127 over and over), and
    poll until the fill is done. Return (malloc growth while the player's passed, how many
    note_ons were heard, whether they came in order)."""
    import rtmidi

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name, queue_size_limit=queue)
    midi_in.ignore_types(sysex=False)
    midi_in.open_virtual_port("in")
    probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"{name} probe")
    player = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"{name} player")
    polled = PolledInput(midi_in, f"{name}:in", probe=probe, fill=fill)
    heard, in_order = 0, True

    def read():  # counted as they come: a list of them would take memory of its own
        nonlocal heard, in_order
        for _, msg in polled.poll(4096):
            if msg.type == "note_on":
                in_order &= msg.note == heard % 128
                heard += 1
    try:
        for port in (probe, player):
            port.open_port(port.get_ports().index(f"{name}:in"))
        deadline = time.monotonic() + 60
        while polled.filled < (fill if play_after is None else play_after) and \
                time.monotonic() < deadline:
            assert polled.poll() == []
            time.sleep(0.001)
        before = _malloc_in_use()
        notes = player_events // 2
        for i in range(notes):
            player.send_message([0x90, i % 128, 64])
            player.send_message([0x80, i % 128, 0])
            if i % 64 == 63 or i == notes - 1:
                # The next 128 messages go once these are heard. Sent every 4 ms whatever
                # came back, 64 of 4,096 note-ons were once lost without a word (1 of 6
                # runs of the JACK tests beside a CPU burner): likely bursts piled up behind
                # a held-up JACK cycle and went out in one, more than the port took at once.
                deadline = time.monotonic() + 10
                while heard <= i and time.monotonic() < deadline:
                    time.sleep(0.001)
                    read()
                if heard <= i:  # some were lost: the caller's count says how many came
                    break
        growth = _malloc_in_use() - before
        deadline = time.monotonic() + 60
        while polled.filled < fill and time.monotonic() < deadline:
            read()
            time.sleep(0.001)
        assert polled.filled == fill
        return growth, heard, in_order
    finally:
        close_rtmidi(player)
        polled.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_info")
def test_a_filled_queue_takes_no_memory_as_events_pass(jack):
    """RtMidi gives a slot of its input queue memory the first time an event passes through
    it (32 bytes, in JACK's thread): left to the player, a queue of 4,096 slots took ~128 KB
    over its first 4,096 events. Filled while nobody played, the player's events then take
    none (in a long session: flat RSS, not +4 MB over the first 131,072 events)."""
    growth = {}
    for fill in (0, 4096):
        growth[fill], heard, in_order = _fill_and_pass(f"filltest{fill}", fill, 8192)
        assert heard == 4096 and in_order
    assert growth[0] >= 4096 * 24, growth
    assert growth[4096] < growth[0] / 8, growth


def test_the_fill_loses_no_note_at_a_long_period(tmp_path, monkeypatch):
    """At JACK period 512 (10.7 ms), where an earlier fill (bursts of 2,000 while the player
    played) lost the player's notes (275 of 300 came through), a player who starts while the
    queue fills loses nothing and gets them in order (the fill waits while the player plays,
    with at most FILL_IN_FLIGHT on their way, and goes on once the player stops), and jackd
    says nothing of full buffers."""
    from tests.live import JackMissing, JackServer

    try:
        server = JackServer(tmp_path / "jackd.log", suffix="p512", make_default=False,
                            period=512)
    except JackMissing as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    try:
        _, heard, in_order = _fill_and_pass("fill512", 4096, 600, play_after=1024)
        assert heard == 300 and in_order
    finally:
        server.stop()
    assert "room" not in (tmp_path / "jackd.log").read_text(errors="replace")
