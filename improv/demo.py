"""``improv demo``: hear improv without a keyboard or a sound card.

A built-in pianist plays phrases of a real performance (the shipped excerpt in
``improv/seeds/``) into the daemon, exactly as a keyboard would, and improv
answers each one in call-response mode. Both parts sound through FluidSynth:
on the speakers where an audio device exists, and always into ``demo.wav``
(rendered from the session's recording, ``demo.mid``).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import mido

from improv.config import RunOptions
from improv.daemon import run
from improv.engine import NoteModel
from improv.generate import BUILTIN_SEED
from improv.key import key_mask
from improv.midifile import MidiReadError, read_midi
from improv.outfile import check_outputs
from improv.outputs import SynthOutput
from improv.paths import default_model_dir
from improv.soundfont import find_soundfont
from improv.synth import (
    SAMPLE_RATE,
    SynthError,
    SynthSettingError,
    peak_dbfs,
    render_normalised,
    write_wav,
)


class DemoPianist:
    """Play phrases of a MIDI file in real time, waiting for each answer in between."""

    name = "built-in pianist"

    def __init__(self, enqueue, phrases: list[list[tuple]], improviser_busy, stop: threading.Event,
                 speed: float = 1.0):
        self.enqueue, self.phrases, self.busy, self.stop = enqueue, phrases, improviser_busy, stop
        self.speed = speed
        self.thread = threading.Thread(target=self._play, name="demo-pianist", daemon=True)
        self.thread.start()

    def _play(self) -> None:
        for phrase in self.phrases:
            events = sorted([(s, 1, p, v) for p, s, e, v in phrase]
                            + [(e, 0, p, 0) for p, s, e, v in phrase])
            t0 = time.monotonic()
            for t, on, pitch, vel in events:
                if self.stop.wait(max(t0 + t / self.speed - time.monotonic(), 0)):
                    return
                self.enqueue(mido.Message("note_on" if on else "note_off", note=pitch,
                                          velocity=vel if on else 0))
            time.sleep(1.5)  # improv hears the silence and answers
            while self.busy() and not self.stop.is_set():
                time.sleep(0.05)
            time.sleep(0.5)
        self.stop.set()

    def close(self) -> None:
        self.stop.set()


def phrases_of(path: Path, size: int = 12) -> list[list[tuple]]:
    """Cut a MIDI file's notes into phrases of ``size`` notes, each starting at 0."""
    cols = read_midi(path)
    notes = list(zip(cols["pitch"].tolist(), cols["start"].tolist(), cols["end"].tolist(),
                     cols["velocity"].tolist(), strict=True))
    out = []
    for i in range(0, len(notes) - size + 1, size):
        chunk = notes[i:i + size]
        t0 = chunk[0][1]
        out.append([(p, s - t0, e - t0, v) for p, s, e, v in chunk])
    return out


def demo(options: RunOptions, wav: Path = Path("demo.wav"), mid: Path = Path("demo.mid"),
         phrases: int = 3, log=None) -> int:
    """Run the demo; return the exit status.

    Sound goes to an audio device when there is one; ``wav`` is written either way, rendered
    from the recording after the session (so it holds exactly what was played, at a level
    set by :func:`~improv.synth.render_normalised`, whatever the live driver was).
    """
    log = log or sys.stderr  # looked up now: a default bound at import goes stale under tests
    check_outputs(wav, mid)
    soundfont = find_soundfont(options.soundfont or None)
    NoteModel.load(options.model or default_model_dir())  # a bad model fails before the banner
    outputs: list = []
    if options.audio_driver == "file":  # the WAV is made from the recording anyway
        where = str(wav)
    else:
        try:
            outputs.append(SynthOutput(soundfont, options.audio_driver or None,
                                       settings=dict(options.synth_settings)))
            where = f"the speakers ({outputs[0].driver}) and {wav}"
        except SynthError as exc:
            # a driver asked for by name must work; and settings must be right
            if options.audio_driver or isinstance(exc, SynthSettingError):
                raise
            where = f"{wav} (no audio device here)"
    print(f"improv demo: a pianist plays {plural(phrases, 'phrase')}, improv answers; "
          f"sound to {where}", file=log, flush=True)
    settings = replace(options.settings, mode="call-response", passthrough=True, silence=1.0)
    options = replace(options, settings=settings, record=str(mid), status=False)
    stop = threading.Event()

    def source(enqueue, improviser):
        def busy() -> bool:  # answering, or about to
            return improviser.scheduler.busy or bool(improviser.call)

        return DemoPianist(enqueue, phrases_of(BUILTIN_SEED)[:phrases], busy, stop)

    before = _identity(mid)
    code = run(options, stop=stop, log=log, source=source,
               outputs=outputs or [_AfterTheSession(wav)])
    try:
        if _identity(mid) == before:  # an older recording, kept: nothing was recorded
            raise MidiReadError("not this session's")
        cols = read_midi(mid)
    except MidiReadError:  # stopped before a note was played
        print(f"improv demo: no notes recorded, so no {wav}", file=log)
        return code
    audio = render_normalised(cols["pitch"], cols["start"], cols["end"], cols["velocity"],
                              soundfont)
    write_wav(wav, audio)
    print(f"improv demo: wrote {mid} and {wav} ({len(audio) / SAMPLE_RATE:.0f} s, peak "
          f"{peak_dbfs(audio):.1f} dBFS)", file=log)
    print(f"improv demo: {in_key(mid)}", file=log)
    return code


#: Pitch-class names, for a key said in words.
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def in_key(recording: Path) -> str:
    """How many of improv's notes in ``recording`` lie in the calls' key: the 7 pitch
    classes the player played most (:func:`improv.key.key_mask`), as a listener hears it."""
    tracks = {t.name: [m.note for m in t if m.type == "note_on" and m.velocity > 0]
              for t in mido.MidiFile(recording).tracks}
    player, answers = tracks.get("player", []), tracks.get("improv", [])
    if not player or not answers:
        return "no answer to judge the key of"
    key = key_mask(player)
    inside = sum(bool(key[p % 12]) for p in answers)
    names = " ".join(PITCH_CLASSES[c] for c in range(12) if key[c])
    return (f"{inside} of improv's {len(answers)} notes in the calls' key ({names}: the 7 "
            "pitch classes the pianist played most)")


def _identity(path: Path) -> tuple[int, int] | None:
    """A file's inode and modification time (None: no file), to tell a new one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class _AfterTheSession:
    """The output named when nothing sounds live: the WAV, rendered once the session ends."""

    def __init__(self, wav: Path):
        self.name = f"{wav} (rendered after the session)"

    def send(self, msg: mido.Message) -> None:
        pass

    def close(self) -> None:
        pass


def plural(n: int, word: str) -> str:
    """Return "1 note", "2 notes"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
