"""``improv bench engine``: how long the next note takes, measured several ways in one run.

Prints a table and writes JSON. Timings are wall-clock per note (p50/p99/max)
with ``time.perf_counter``; they vary with the machine and its load.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from improv.engine import NoteModel
from improv.generate import seed_notes
from improv.harness import Daemon
from improv.key import KeyTracker
from improv.outfile import write_atomically
from improv.paths import MODELS_DIR, default_model_dir
from improv.portclose import close_rtmidi
from improv.progress import progress
from improv.sampling import Sampler
from improv.table import Column, format_head, format_row, print_table

logger = logging.getLogger(__name__)


#: The engine row that does the same NumPy work every time (:func:`time_reference`).
REFERENCE_ROW = "reference: the LSTM step and heads alone, on the same input (keep_warm)"
#: The benchmarks' tables (improv.table).
ENGINE_COLUMNS = [Column("way to get the next note (sampling included)", 72, align="<"),
                  Column("p50 ms", 8, ".4f"), Column("p99 ms", 8, ".4f"),
                  Column("max ms", 8, ".3f"), Column("notes", 6)]
LIVE_COLUMNS = [Column("path (JACK dummy, period 64 = 1.33 ms)", 52, align="<"),
                Column("p50 ms", 8, ".3f"), Column("p99 ms", 8, ".3f"),
                Column("max ms", 8, ".3f"), Column("n", 5)]
SOAK_COLUMNS = [Column("minute", 6, ".1f"), Column("RSS MB", 8, ".1f"), Column("p99 ms", 8, ".3f"),
                Column("notes in", 9), Column("notes out", 10), Column("memory", 8),
                Column("stuck", 6)]
INPUT_COLUMNS = [Column("rate msg/s", 10), Column("seconds", 8, ".0f"), Column("sent", 8),
                 Column("tap lost", 9), Column("tap dup", 8), Column("improv lost", 12),
                 Column("improv dup", 11), Column("improv heard", 13)]


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "n": len(ms)}


def time_engine(model: NoteModel, notes: int, sampler: Sampler,
                desc: str = "NumPy engine") -> dict[str, float]:
    """Time feed + sample per note, the way the daemon runs it (the bar's own work falls
    between two timed notes, never inside one)."""
    seed = seed_notes()
    prediction = model.feed_many(seed)
    key = KeyTracker()
    for row in seed:
        key.push(int(row[0]))
    times = []
    for _ in progress(range(notes), desc=desc, unit="note"):
        t0 = time.perf_counter()
        pitch, step, duration = sampler.sample(prediction, key.mask, model.struck)
        velocity = sampler.velocity(prediction) or 64
        prediction = model.feed(pitch, step, duration, velocity)
        key.push(pitch)
        times.append(time.perf_counter() - t0)
    return _stats(times)


def time_memory(model: NoteModel, notes: int, sampler: Sampler) -> dict[str, float]:
    """Time what the phrase memory adds to a note, as the daemon runs it: mixing its chance
    of a chord tone into the step's, its guess into the pitch's, and learning the note drawn.
    The memory first hears the seed ten times over (a session's worth of material, so its
    contexts match and mix)."""
    from improv.memory import DEFAULT_STRENGTH, PhraseMemory

    seed = seed_notes()
    memory = PhraseMemory()
    key = KeyTracker()
    for _ in range(10):
        for row in seed:
            memory.learn(int(row[0]), float(row[1]), float(row[2]))
            key.push(int(row[0]))
    prediction = model.feed_many(seed)
    times = []
    mixing = [0.0]  # seconds the last mix took

    def mix(p, step):  # the sampler calls it once the step is drawn
        t0 = time.perf_counter()
        mixed = memory.mix(p, DEFAULT_STRENGTH, key.mask, step)
        mixing[0] = time.perf_counter() - t0
        return mixed

    for _ in progress(range(notes), desc="phrase memory", unit="note"):
        t0 = time.perf_counter()
        timed = memory.mix_rhythm(prediction, DEFAULT_STRENGTH)
        rhythm = time.perf_counter() - t0
        pitch, step, duration = sampler.sample(timed, key.mask, model.struck, mix)
        velocity = sampler.velocity(prediction) or 64
        prediction = model.feed(pitch, step, duration, velocity)
        key.push(pitch)
        t2 = time.perf_counter()
        memory.learn(pitch, step, duration, own=True)
        times.append(time.perf_counter() - t2 + mixing[0] + rhythm)
    return _stats(times)


def time_reference(model: NoteModel, notes: int) -> dict[str, float]:
    """Time the engine's NumPy work alone, the same each time: a step of the LSTM and its
    heads on one input, nothing drawn, the state left as it was (``keep_warm``): about half
    of a note's time; the rest is Python (sampling, checks). Its p99 over its p50 is the
    spread the machine gives fixed work while it ran. The VM this was written on also had
    slow stretches of seconds (a row's p50 up by 20-40% for 2,000 notes), which land in one
    row and not another: so a p99 is compared over several runs."""
    times = []
    for _ in progress(range(notes), desc="reference", unit="step"):
        t0 = time.perf_counter()
        model.keep_warm()
        times.append(time.perf_counter() - t0)
    return _stats(times)


def time_generate_startup() -> dict[str, float]:
    """Run ``improv generate -n 1`` in a fresh process: wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        code = ("import resource, sys; from improv.cli import main; main(sys.argv[1:]); "
                "print('tensorflow' in sys.modules, "
                "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, "generate", "-n", "1", "-o",
                               str(Path(tmp) / "x.mid")], capture_output=True, text=True,
                              check=True)
        wall = time.perf_counter() - t0
    imported, rss_kb = proc.stdout.split()[-2:]
    return {"seconds": wall, "rss_mb": int(rss_kb) / 1024, "imports_tensorflow": imported == "True"}


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def time_first_feed(model_dir: Path, loads: int = 7, later: int = 20) -> float:
    """Return the median, over fresh loads, of the first note's time over a later note's:
    the load's warm-up should leave the first live note no slower than the rest."""
    ratios = []
    for _ in range(loads):
        model = NoteModel.load(model_dir)
        t0 = time.perf_counter()
        model.feed(60, 0.1, 0.2)
        first = time.perf_counter() - t0
        times = []
        for _ in range(later):
            t0 = time.perf_counter()
            model.feed(62, 0.1, 0.2)
            times.append(time.perf_counter() - t0)
        ratios.append(first / float(np.median(times)))
    return float(np.median(ratios))


def bench_engine(notes: int = 10000, predict_notes: int = 1000, out: Path | None = None) -> dict:
    """Run every measurement; print the table; return (and maybe write) the results.

    Without TensorFlow (the runtime install) the model.predict row is left out, with a note.
    """
    if predict_notes and not _has_tensorflow():
        logger.warning("bench engine: TensorFlow is not installed (the runtime install leaves "
                       "it out), so the model.predict row is skipped; bash install.sh --train "
                       "adds it")
        predict_notes = 0
    print("bench engine: timing improv generate's start-up ...", file=sys.stderr, flush=True)
    startup = time_generate_startup()  # first: a child inherits this process's peak RSS
    default = default_model_dir()
    tutorial = MODELS_DIR / "tutorial-5files"
    streaming = NoteModel.load(default)
    window = NoteModel.load(tutorial)
    rows = {
        f"NumPy engine, incremental step ({default.name}, {streaming.weights.units} units)":
            time_engine(streaming, notes, Sampler(seed=0), "incremental step"),
        f"NumPy engine, windowed re-run ({tutorial.name}, {window.seq_length} notes)":
            time_engine(window, notes, Sampler(seed=0), "windowed re-run"),
        "phrase memory alone: mix its guess in, learn the note (improv.memory)":
            time_memory(streaming, notes, Sampler(seed=0)),
        REFERENCE_ROW: time_reference(streaming, notes),
    }
    predict_name = f"model.predict on the window, TensorFlow ({tutorial.name})"
    if predict_notes:
        from training.keras_timing import time_keras_predict  # TensorFlow: lazily

        rows[predict_name] = time_keras_predict(tutorial, predict_notes)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "rows": rows, "generate_startup": startup,
              "first_note_ratio": time_first_feed(default)}
    if predict_notes:
        base = rows[predict_name]["p99_ms"]
        result["speedup_p99"] = {k: base / v["p99_ms"] for k, v in rows.items()
                                 if k != predict_name}
    print_table(ENGINE_COLUMNS, [[name, r["p50_ms"], r["p99_ms"], r["max_ms"], r["n"]]
                                 for name, r in rows.items()], rule=False)
    for name, s in result.get("speedup_p99", {}).items():
        print(f"speed-up at p99 over model.predict: {s:,.0f}x  ({name})")
    reference = rows[REFERENCE_ROW]
    result["machine_spread"] = reference["p99_ms"] / reference["p50_ms"]
    print(f"the machine's spread: the reference's p99 is {result['machine_spread']:.2f} times "
          "its p50 (the same work each time)")
    print(f"first note after a load: {result['first_note_ratio']:.1f} times a later one's "
          "(median of 7 loads; the load's warm-up aims at 1)")
    print(f"improv generate -n 1: {startup['seconds']:.2f} s start to finish, "
          f"peak RSS {startup['rss_mb']:.0f} MB, TensorFlow imported: "
          f"{startup['imports_tensorflow']}")
    if out:
        write_atomically(out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result


def _jack():
    """A JACK server for a benchmark: None if one runs, else a new ``jackd -d dummy``
    (period 64 at 48 kHz, improv.harness) under the name ``JACK_DEFAULT_SERVER`` gives, or
    JACK's default name, as before the harness: a name of its own per run would take a new
    slot in JACK's server registry. (With "default" alone, a benchmark beside another
    program's server of that name could not start its own.)"""
    from improv.harness import JackMissing, JackServer, jack_running

    os.environ["JACK_NO_START_SERVER"] = "1"
    if jack_running():
        return None
    try:
        return JackServer(name=os.environ.get("JACK_DEFAULT_SERVER") or "default")
    except JackMissing:
        raise RuntimeError("could not start jackd -d dummy (install jackd2)") from None


def _stop(jackd) -> None:
    if jackd is not None:
        jackd.stop()


def _round_trips(to_port, listener_msgs, make_msg, count: int, wait_for, settle: float = 0.02):
    """Send ``count`` messages; return the seconds until each one's answer arrived."""
    times = []
    for i in progress(range(count), desc="round trips", unit="trip"):
        listener_msgs.clear()
        msg = make_msg(i)
        t0 = time.monotonic()
        to_port.send(msg)
        deadline = t0 + 1.0
        while time.monotonic() < deadline:
            hit = wait_for(listener_msgs)
            if hit is not None:
                times.append(hit - t0)
                break
            time.sleep(0.0002)
        time.sleep(settle)
    return times


#: Round trips below which ``bench live`` says its p99s are the noise of a few samples (a
#: review's --count 2 printed that improv adds -0.1 ms over the floor).
P99_LEAST = 100


def bench_live(count: int = 300, out: Path | None = None) -> dict:
    """Measure through real JACK ports: the echo floor, improv's answer latency and jitter."""
    import mido

    from improv.ports import close_input, get_backend, open_input, open_output

    jackd = _jack()
    backend = get_backend("jack")
    arrivals: list[tuple[float, mido.Message]] = []
    record = lambda m: arrivals.append((time.monotonic(), m))  # noqa: E731
    first_on = lambda msgs: next((t for t, m in msgs if m.type == "note_on"  # noqa: E731
                                  and m.velocity > 0), None)
    result: dict = {"count": count, "jack": "dummy driver, 48 kHz, period 64 (1.33 ms)"}
    try:
        # 1. The floor: a bare Python echo client, two JACK hops like improv.
        echo_out = open_output(backend, "bench echo out", virtual=True)
        echo_in = open_input(backend, "bench echo in", virtual=True, callback=echo_out.send)
        sender = open_output(backend, "bench echo in")
        listener = open_input(backend, "bench echo out", callback=record)
        note = lambda i: mido.Message("note_on", note=60 + i % 12, velocity=90)  # noqa: E731
        echo = _round_trips(sender, arrivals, note, count, first_on)
        sender.close()
        close_input(listener)
        close_input(echo_in)
        echo_out.close()
        result["echo_floor"] = _stats(echo)

        # 2. improv: a one-note call, then the end-call control; time to the answer's note.
        daemon = Daemon("--api", "jack", "--virtual", "benchimprov", "--silence", "60",
                        "--answer-notes", "1", "--gap", "0", "--random-seed", "0")
        sender = open_output(backend, "benchimprov in")
        listener = open_input(backend, "benchimprov out", callback=record)
        time.sleep(0.2)

        def call_then_end(i):
            sender.send(mido.Message("note_on", note=60 + i % 12, velocity=90))
            sender.send(mido.Message("note_off", note=60 + i % 12))
            return mido.Message("control_change", control=67, value=127)

        answers = _round_trips(sender, arrivals, call_then_end, count, first_on, settle=0.05)
        sender.close()
        close_input(listener)
        daemon.stop(timeout=10)
        result["improv_answer"] = _stats(answers)
        result["improv_over_floor_p99_ms"] = (result["improv_answer"]["p99_ms"]
                                              - result["echo_floor"]["p99_ms"])
        result["scheduler_jitter"] = _jitter(daemon.last("stopped"))
    finally:
        _stop(jackd)
    print_table(LIVE_COLUMNS, [
        [name, result[key]["p50_ms"], result[key]["p99_ms"], result[key]["max_ms"],
         result[key]["n"]]
        for name, key in (("bare echo client (floor)", "echo_floor"),
                          ("improv: end-of-call CC -> first answer note", "improv_answer"))],
        rule=False)
    few = min(result["improv_answer"]["n"], result["echo_floor"]["n"]) < P99_LEAST
    result["p99_from_few_round_trips"] = few
    print(f"improv adds at p99: {result['improv_over_floor_p99_ms']:.3f} ms over the floor"
          + (f" (few round trips: a p99 wants {P99_LEAST} or more a row, and the difference"
             " of two is noise, negative as often as not)" if few else "")
          + f"; answered {result['improv_answer']['n']} of {count} ends of call")
    print(f"{result['scheduler_jitter']}")
    if out:
        write_atomically(out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result


def _jitter(stopped: dict | None) -> str:
    """The scheduler's jitter as the daemon's report gives it (its ``stopped`` event)."""
    if not stopped or not stopped.get("jitter_notes"):
        return ""
    return (f"scheduling jitter p50 {stopped['jitter_p50_ms']:.3f} ms, p99 "
            f"{stopped['jitter_p99_ms']:.3f} ms, max {stopped['jitter_max_ms']:.3f} ms "
            f"({stopped['jitter_notes']} notes)")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_soak(minutes: float = 30.0, midi: Path | None = None, every: float = 60.0,
               out: Path | None = None, memory_file: Path | None = None) -> dict:
    """Play a real MIDI file into ``improv run`` in a loop over real JACK ports.

    Every ``every`` seconds print the daemon's RSS, its message-handling latency p99
    (from its status events, :class:`improv.session.Status`), notes in/out, the phrase
    memory's counts, and the notes sounding longer than any note improv plays (stuck
    notes) at the synth it plays into. ``memory_file``: the daemon starts from a copy of
    it (a memory learned before, as a player's over days); the file is left as it is.
    """
    import threading

    import mido

    from improv.generate import BUILTIN_SEED
    from improv.midifile import read_midi
    from improv.ports import close_input, get_backend, open_input, open_output

    cols = read_midi(midi or BUILTIN_SEED)
    notes = list(zip(cols["pitch"].tolist(), cols["start"].tolist(), cols["end"].tolist(),
                     cols["velocity"].tolist(), strict=True))
    jackd = _jack()
    backend = get_backend("jack")
    sounding: dict[int, float] = {}
    lock = threading.Lock()

    def synth(msg):
        with lock:
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = time.monotonic()
            elif msg.type in ("note_on", "note_off"):
                sounding.pop(msg.note, None)
            elif msg.type == "control_change" and msg.control == 123:
                sounding.clear()

    sink = open_input(backend, "soak synth", virtual=True, callback=synth)
    more = ()
    if memory_file:  # a copy: the daemon writes its memory back when it stops
        copy = Path(tempfile.mkdtemp(prefix="improv-soak-")) / Path(memory_file).name
        shutil.copyfile(memory_file, copy)
        more = ("--memory-file", str(copy))
    daemon = Daemon("--api", "jack", "--virtual", "soakimprov", "--output", "soak synth",
                    "--silence", "0.8", "--random-seed", "0", *more, status=True)
    pianist = open_output(backend, "soakimprov in")
    rows = []
    stop_at = time.monotonic() + minutes * 60
    next_row = time.monotonic() + every
    t0 = time.monotonic()
    print(format_head(SOAK_COLUMNS), flush=True)
    i = 0
    try:
        while time.monotonic() < stop_at:
            phrase = [notes[(i + k) % len(notes)] for k in range(12)]
            i += 12
            base = phrase[0][1]
            events = sorted([(s - base, 1, p, v) for p, s, e, v in phrase]
                            + [(max(e - base, s - base), 0, p, 0) for p, s, e, v in phrase])
            start = time.monotonic()
            for t, on, pitch, vel in events:
                time.sleep(max(0.0, start + t - time.monotonic()))
                pianist.send(mido.Message("note_on" if on else "note_off", note=pitch,
                                          velocity=vel if on else 0))
            time.sleep(4.0)  # improv answers
            if time.monotonic() >= next_row:
                next_row += every
                status = daemon.last("status") or {}
                with lock:
                    stuck = sum(time.monotonic() - t > 6.0 for t in sounding.values())
                row = {"minute": (time.monotonic() - t0) / 60,
                       "rss_mb": _rss_mb(daemon.proc.pid),
                       "p99_ms": status.get("latency_p99_ms", float("nan")),
                       "notes_in": status.get("notes_in", 0),
                       "notes_out": status.get("notes_out", 0),
                       "memory": status.get("memory_counts", 0), "stuck": stuck}
                rows.append(row)
                print(format_row(SOAK_COLUMNS, list(row.values())), flush=True)
    finally:
        pianist.close()
        code = daemon.stop(timeout=30)
        time.sleep(0.5)  # its last all-notes-off reaches the synth
        close_input(sink)
        _stop(jackd)
        if memory_file:
            shutil.rmtree(copy.parent, ignore_errors=True)
    result = {"minutes": minutes, "rows": rows, "exit_status": code,
              "sounding_after_exit": len(sounding)}
    print(f"improv exited with status {code}; notes left sounding after exit: {len(sounding)}")
    if out:
        write_atomically(out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result


def _code(i: int) -> list[int]:
    """The i-th message of the input benchmark: note-on/off pairs, each pair a unique
    (channel, note, velocity), so a lost or repeated message can be told apart."""
    pair = i // 2
    channel, note, velocity = pair % 16, (pair // 16) % 128, 1 + (pair // 2048) % 127
    return [(0x90 if i % 2 == 0 else 0x80) | channel, note, velocity]


class _PolledCounter:
    """A python-rtmidi input polled from a thread (no callback), keeping what arrives."""

    def __init__(self, name: str, port: str | None = None):
        import threading

        import rtmidi

        self.port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name, queue_size_limit=1 << 18)
        self.port.ignore_types(sysex=True, timing=True, active_sense=True)
        self.port.open_virtual_port(port or name)
        self.seen: list[tuple[int, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            got = self.port.get_message()
            if got is None:
                time.sleep(0.0005)
            else:
                self.seen.append(tuple(got[0]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        close_rtmidi(self.port)


def _loss(sent: list[tuple[int, ...]], seen: list[tuple[int, ...]]) -> dict[str, int]:
    from collections import Counter

    got = Counter(seen)
    want = Counter(sent)
    index = {m: i for i, m in enumerate(sent)}
    return {"received": len(seen), "lost": sum((want - got).values()),
            "duplicated": sum((got - want).values()),
            "lost_at": sorted(index[m] for m in (want - got))[:50]}


def bench_input(rates: list[int], seconds: float, out: Path | None = None) -> dict:
    """Messages lost and duplicated at a given rate, improv against a reference client.

    A sender plays uniquely coded note-on/off pairs at ``rate`` messages a second into
    ``improv run --passthrough`` and into a "tap" (a plain python-rtmidi client, polled,
    no callback); a second polled client records improv's output. improv's column
    counts end to end (its input, then its passthrough output), so it is an upper
    bound on what its input lost.
    """
    import rtmidi

    jackd = _jack()
    result: dict = {"seconds": seconds, "rows": []}
    print(format_head(INPUT_COLUMNS), flush=True)
    try:
        for rate in rates:
            sink = _PolledCounter("benchin sink")
            tap = _PolledCounter("benchin tap")
            name = f"benchin{rate}"  # a name per row: the last row's may still be going
            daemon = Daemon("--api", "jack", "--virtual", name, "--output", "benchin sink",
                            "--passthrough", "--silence", "600", "--held-keys", "3600",
                            "--answer-notes", "1")
            keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "benchin keys")
            keys.open_virtual_port("keys")
            for target in (f"{name} in:{name} in", "benchin tap:benchin tap"):
                subprocess.run(["jack_connect", "benchin keys:keys", target], check=True)
            time.sleep(0.5)
            sent = []
            t0 = time.monotonic()
            total = int(rate * seconds)
            for i in range(total):
                msg = _code(i)
                keys.send_message(msg)
                sent.append(tuple(msg))
                delay = t0 + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            settle = time.monotonic() + 30
            last = -1
            while time.monotonic() < settle and last != (len(sink.seen), len(tap.seen)):
                last = (len(sink.seen), len(tap.seen))
                time.sleep(1.0)
            daemon.stop(timeout=30)
            close_rtmidi(keys)
            stopped = daemon.last("stopped")
            row = {"rate": rate, "sent": len(sent), "tap": _loss(sent, tap.seen),
                   "improv": _loss(sent, [m for m in sink.seen if m[0] & 0xF0 in (0x80, 0x90)]),
                   "improv_heard": stopped["messages"] if stopped else -1}
            sink.close()
            tap.close()
            result["rows"].append(row)
            print(format_row(INPUT_COLUMNS, [
                rate, seconds, row["sent"], row["tap"]["lost"], row["tap"]["duplicated"],
                row["improv"]["lost"], row["improv"]["duplicated"], row["improv_heard"]]),
                flush=True)
    finally:
        _stop(jackd)
    if out:
        write_atomically(out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result
