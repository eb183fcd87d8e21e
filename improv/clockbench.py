"""``improv bench clock``: improv keeping time with an outside MIDI clock, over real JACK ports.

An outside clock (:mod:`improv.clocksend`, its own process, "a DAW") sends 24 pulses a beat
at 120 bpm to ``improv run --quantize 1/16`` (``--input`` the clock's port); after a start,
it plays a phrase of one note a beat, improv answers (the whole answer is waited for); the
clock changes to 90 bpm, plays another phrase, improv answers; a third phrase, and the
transport stops during its answer.
Two taps in this process hear the clock's port and improv's output. Measured:

- improv's tempo (its status events, every ``STATUS_EVERY`` s) against the clock's, at 120
  bpm and from 2 beats after the change to 90; and how many beats after the change the tempo
  in use enters 1% of 90 (and stays there for a beat);
- each answer's first note-on against the nearest beat of the clock, and every answer note-on
  against the nearest point of the clock's 1/16 grid (6 pulses). The grid is the clock's
  pulses as the tap hears them (a least-squares line through the 24 pulses around the note:
  the tap's own jitter is not the grid), so one JACK hop (improv's output) lies
  between what improv heard and what the tap hears: the deviations include it;
- the stop: from the stop message at the tap to improv's last note message, note-ons after
  it, notes left sounding.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from improv.beatclock import BeatClock
from improv.bench import _jack, _stop
from improv.fakes import Sink
from improv.harness import Daemon
from improv.outfile import write_atomically
from improv.paths import REPO_ROOT
from improv.table import Column, print_table

COLUMNS = [Column("measure (JACK dummy, period 64 = 1.33 ms)", 46, align="<"),
           Column("p50", 9, ".3f"), Column("p99", 9, ".3f"), Column("max", 9, ".3f"),
           Column("n", 5)]
STATUS_EVERY = 0.05
CLOCK_PORT = "clocksrc"
IMPROV = "clockimprov"
PHRASE = (60, 62, 64, 65, 67, 65, 64, 62)


class Tap(Sink):
    """What arrives from a port, stamped with its arrival time (python-rtmidi polled from a
    thread of its own, improv.midiin: a Python callback in JACK's thread lost pulses here
    when it waited for the GIL, and stamped them when it got it, up to 100 ms late)."""

    def __init__(self, port: str):
        from improv.ports import get_backend, open_polled_input

        super().__init__(port)
        self.port = open_polled_input(get_backend("jack"), post=self._add, name=port,
                                      fill=False)

    def _add(self, t: float, msg) -> None:
        with self.lock:
            self.messages.append((t, msg))

    def close(self) -> None:
        super().close()
        self.port.close()


class ClockSender:
    """:mod:`improv.clocksend` in a subprocess; ``say`` a command, ``wait`` for its answer."""

    def __init__(self, name: str, bpm: float):
        self.proc = subprocess.Popen([sys.executable, "-m", "improv.clocksend", name, str(bpm)],
                                     cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines: list[list[str]] = []
        threading.Thread(target=self._read, daemon=True).start()
        if self.wait("ready", 20) is None:
            self.close()
            raise RuntimeError("the clock sender did not start")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.split())

    def say(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait(self, word: str, timeout: float = 10, after: int = 0) -> list[str] | None:
        """The first answer line starting with ``word`` (from line ``after`` on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if line and line[0] == word:
                    return line
            time.sleep(0.005)
        return None

    def phrase_end(self, after: int, notes: int, timeout: float = 30) -> float:
        """The time of the last of ``notes`` phrase notes sent (from line ``after`` on),
        once it is sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = [line for line in self.lines[after:] if line and line[0] == "note"]
            if len(sent) >= notes:
                return float(sent[notes - 1][2])
            time.sleep(0.005)
        raise RuntimeError("the clock sender did not play its phrase")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.say("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def pulse_numbers(times: np.ndarray) -> np.ndarray:
    """Number the pulses a tap heard (times from the start's pulse on) as the clock sent
    them. A JACK client that misses a cycle loses that cycle's messages, the tap as much as
    improv: a gap of 1.5 periods or more (the median of the gaps around it) followed by at
    least half a period stands for ``round(gap / period) - 1`` lost pulses; a gap followed
    at once by the next pulse is a late pulse, not a lost one."""
    gaps = np.diff(times)
    numbers = np.zeros(len(times), dtype=int)
    for i, gap in enumerate(gaps):
        period = float(np.median(gaps[max(0, i - 12):i + 12]))
        step = round(gap / period)
        follows = i + 1 >= len(gaps) or gaps[i + 1] >= 0.5 * period
        numbers[i + 1] = numbers[i] + (step if step >= 2 and follows else 1)
    return numbers


def without_copies(times: np.ndarray) -> np.ndarray:
    """The pulses a tap heard, less copies: a JACK client that misses a cycle can get that
    cycle's events twice (seen at the tap: a pulse twice, 6 us apart, between two on
    time). A pulse within 5% of a period of one that came on time (0.5-1.5 periods after
    its own predecessor) is a copy; one after a late pulse is a late one catching up (a
    stalled sender's burst), and stays."""
    if len(times) < 3:
        return times
    keep = [0]
    gaps = np.diff(times)
    for i in range(1, len(times)):
        period = float(np.median(gaps[max(0, i - 13):i + 12]))
        before = times[keep[-1]] - times[keep[-2]] if len(keep) > 1 else period
        if times[i] - times[keep[-1]] < 0.05 * period and 0.5 <= before / period <= 1.5:
            continue
        keep.append(i)
    return times[keep]


def heard_clock_error(raw: dict) -> float | None:
    """The pulses the clock tap heard (from the start to the stop), through improv's own
    beat clock: how far (in pulses) its count at the last one lies from where the clock
    sender put that pulse (120 bpm from the start, 90 from the change). About 0 when what
    the tap heard tells the pulses' count; a whole pulse or more when it does not (pulses
    lost where their loss cannot be told, as just before the change of tempo). None
    without a start."""
    clock, start, change = raw["clock"], raw["start"], raw["change"]
    at = next((i for i, (_, kind) in enumerate(clock) if kind == "start"), None)
    if at is None or change is None:
        return None
    p120, p90 = 60 / 120 / 24, 60 / 90 / 24
    changed = round((change - start) / p120)  # the pulse from which they are 90 bpm apart
    beats, error = BeatClock(), None
    for t, kind in clock[at:]:
        if kind == "stop":
            break
        if kind not in ("start", "clock"):  # the phrase's notes
            continue
        beats.midi([0xFA] if kind == "start" else [0xF8], t)
        position = beats.beat_at(t) if kind == "clock" else None
        if position is not None:
            sent = ((t - start) / p120 if t < start + changed * p120
                    else changed + (t - start - changed * p120) / p90)
            error = position * 24 - sent
    return error


def _grid_time(pulses: np.ndarray, numbers: np.ndarray, t: float, every: int) -> float:
    """The time of the grid point (each ``every`` pulses from the start) nearest ``t``, from
    a least-squares line through the 24 pulses around it (``pulses``: times of the pulses
    numbered ``numbers``, :func:`pulse_numbers`)."""
    i = int(np.searchsorted(pulses, t))
    lo, hi = max(0, i - 12), min(len(pulses), i + 12)
    if hi - lo < 4:
        return float("nan")
    slope, intercept = np.polyfit(numbers[lo:hi], pulses[lo:hi], 1)
    k = round((t - intercept) / slope / every) * every
    return float(intercept + slope * k)


def _stats(values) -> list:
    v = np.asarray(values, dtype=float)
    if not len(v):
        return [None, None, None, 0]
    return [float(np.percentile(v, 50)), float(np.percentile(v, 99)), float(v.max()), len(v)]


def run_clock(quantize: str = "1/16", answer_notes: int = 24, phrases: int = 2,
              answer_timeout: float = 30.0) -> dict:
    """Run the scenario above (JACK must run); return the raw measurements. Each phrase but
    the last waits for its whole answer (up to ``answer_timeout`` s) and a second after it:
    the model's steps are its own, and a fixed wait cut some answers short (the next phrase
    came in the middle of one, after a 3-beat rest in it)."""
    sender = ClockSender(CLOCK_PORT, 120.0)
    daemon = taps = None
    try:
        daemon = Daemon("--api", "jack", "--input", CLOCK_PORT, "--virtual", IMPROV,
                        "--quantize", quantize, "--silence", "0.6", "--gap", "0",
                        "--answer-notes", str(answer_notes), "--random-seed", "0",
                        "--status-every", str(STATUS_EVERY), status=True)
        taps = (Tap(CLOCK_PORT), Tap(f"{IMPROV} out"))
        time.sleep(1.0)  # the clock's tempo settles in improv
        mark = len(sender.lines)
        sender.say("start")
        start = float(sender.wait("start", after=mark)[1])
        time.sleep(1.0)
        change = None
        for i in range(phrases + 1):
            if i == 1:  # after the first answer, the tempo changes
                mark = len(sender.lines)
                sender.say("bpm 90")
                change = float(sender.wait("bpm", after=mark)[2])
                time.sleep(4 * 60 / 90)
            mark = len(sender.lines)
            sender.say("notes " + " ".join(str(p) for p in PHRASE))
            end = sender.phrase_end(mark, len(PHRASE))
            # The whole answer after the phrase (improv may begin one during it, when a
            # note of the call is lost on the way: that one is cut short by the next
            # note); the last one only its first 3 notes, and the transport stops.
            wanted = answer_notes if i < phrases else 3
            deadline = time.monotonic() + answer_timeout
            while (sum(t > end for t, _ in taps[1].notes()) < wanted
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            if i < phrases:
                time.sleep(1.0)
                continue
            mark = len(sender.lines)
            sender.say("stop")
            stop_sent = float(sender.wait("stop", after=mark)[1])
            time.sleep(1.5)
    finally:
        sender.close()
        code = daemon.stop(timeout=15) if daemon is not None else None
        for tap in taps or ():
            tap.close()
    clock_msgs = list(taps[0].messages)
    improv_msgs = list(taps[1].messages)
    return {"start": start, "change": change, "stop_sent": stop_sent, "exit_status": code,
            "clock": [(t, m.type) for t, m in clock_msgs],
            "improv": [(t, m.type, getattr(m, "note", None), getattr(m, "velocity", 0))
                       for t, m in improv_msgs],
            "stuck": sorted(taps[1].stuck()),
            "status": [(e["time"], e["tempo_bpm"], e["tempo_source"]) for e in daemon.events
                       if e.get("event") == "status"],
            "phrase_notes": [(float(line[2]), int(line[1])) for line in sender.lines
                             if line[0] == "note"]}


def _follow(after: list[tuple[float, float | None]], change: float, bpm: float) -> float | None:
    """Beats from ``change`` until the tempo in use enters 1% of ``bpm`` and stays there for
    a beat (a later excursion shows in the tempo error's p99 instead); None if it never does."""
    beat = 60 / bpm
    within = [b is not None and abs(b / bpm - 1) <= 0.01 for _, b in after]
    for i, (t, _) in enumerate(after):
        held = [ok for (u, _), ok in zip(after[i:], within[i:], strict=True) if u <= t + beat]
        if all(held) and after[-1][0] >= t + beat:
            return (t - change) / beat
    return None


def measure(raw: dict) -> dict:
    """The measurements of a :func:`run_clock`."""
    clock = raw["clock"]
    stop_heard = next((t for t, kind in clock if kind == "stop"), None)
    # The pulses after the start message (in the order heard: the start and its pulse
    # come in one JACK cycle, and may carry the same time).
    start_at = next(i for i, (_, kind) in enumerate(clock) if kind == "start")
    heard = np.asarray([t for t, kind in clock[start_at:] if kind == "clock"])
    pulses = without_copies(heard)
    numbers = pulse_numbers(pulses)
    change, start = raw["change"], raw["start"]
    ons = [t for t, kind, _, vel in raw["improv"] if kind == "note_on" and vel > 0]
    ons = [t for t in ons if stop_heard is None or t < stop_heard]
    # Answers: the note-ons after each phrase's last note, before the next phrase.
    played = [t for t, _ in raw["phrase_notes"]]
    starts, ends = played[::len(PHRASE)], played[len(PHRASE) - 1::len(PHRASE)]
    answers = [[t for t in ons if end < t < (starts[i + 1] if i + 1 < len(starts) else np.inf)]
               for i, end in enumerate(ends)]
    firsts = [answer[0] for answer in answers if answer]
    beat_dev = [(t - _grid_time(pulses, numbers, t, 24)) * 1e3 for t in firsts]
    # The grid at a steady tempo: during a change the clock itself only says where the grid
    # is once its pulses have come (improv follows within 2 beats, measured below).
    beat90 = 60 / 90
    changing = [t for t in ons if change <= t < change + 2 * beat90]
    grid_dev = [(t - _grid_time(pulses, numbers, t, 6)) * 1e3 for t in ons
                if t not in changing]
    status = raw["status"]
    at120 = [abs(bpm / 120 - 1) * 100 for t, bpm, src in status
             if start + 1.0 <= t < change and bpm is not None]
    at90 = [abs(bpm / 90 - 1) * 100 for t, bpm, src in status
            if change + 2 * beat90 <= t < (stop_heard or np.inf) and bpm is not None]
    after = [(t, bpm) for t, bpm, src in status if change <= t < (stop_heard or np.inf)]
    follow = _follow(after, change, 90.0)
    stop_ms = notes_after_stop = None
    if stop_heard is not None:
        late = [t for t, kind, _, _ in raw["improv"] if t >= stop_heard
                and kind in ("note_on", "note_off")]
        stop_ms = (max(late) - stop_heard) * 1e3 if late else 0.0
        notes_after_stop = sum(1 for t, kind, _, vel in raw["improv"]
                               if t > stop_heard + 0.005 and kind == "note_on" and vel > 0)
    return {"pulses_lost_at_tap": int(numbers[-1] + 1 - len(numbers)) if len(numbers) else 0,
            "pulse_copies_at_tap": len(heard) - len(pulses),
            "heard_clock_error_pulses": heard_clock_error(raw),
            "tempo_error_120_pct": at120, "tempo_error_90_pct": at90,
            "first_note_from_beat_ms": beat_dev, "note_on_from_grid_ms": grid_dev,
            "follow_beats": follow, "stop_to_last_note_ms": stop_ms,
            "note_ons_after_stop": notes_after_stop, "stuck": raw["stuck"],
            "answers": len(firsts), "answer_notes": [len(a) for a in answers],
            "during_change": len(changing),
            "status_events": len(status), "exit_status": raw["exit_status"]}


def bench_clock(out: Path | None = None, quantize: str = "1/16") -> dict:
    """Run the scenario, print the table, write JSON."""
    jackd = _jack()
    try:
        raw = run_clock(quantize)
    finally:
        _stop(jackd)
    m = measure(raw)
    grid = m["note_on_from_grid_ms"]
    rows = [
        ["tempo error at 120 bpm (%)", *_stats(m["tempo_error_120_pct"])],
        ["tempo error at 90 bpm, from 2 beats on (%)", *_stats(m["tempo_error_90_pct"])],
        ["answer's first note - nearest beat (ms)", *_stats(m["first_note_from_beat_ms"])],
        [f"note-on - nearest {quantize} point (ms)", *_stats(grid)],
        [f"|note-on - nearest {quantize} point| (ms)", *_stats(np.abs(grid))],
        ["beats after 120->90 to within 1% for a beat", m["follow_beats"], None, None, 1],
        ["stop heard -> improv's last note message (ms)", m["stop_to_last_note_ms"], None,
         None, 1],
    ]
    print_table(COLUMNS, rows)
    print(f"grid rows: note-ons at a steady tempo (not the {m['during_change']} within 2 "
          "beats after the change to 90)")
    print(f"{m['answers']} answers of {m['answer_notes']} note-ons (the stop came in the "
          f"last); note-ons after the stop: {m['note_ons_after_stop']}; notes left sounding: "
          f"{len(m['stuck'])}; improv exited with {m['exit_status']}")
    if out:
        write_atomically(out, json.dumps({"measures": m, "raw": raw}, indent=1) + "\n")
        print(f"wrote {out}")
    return m
