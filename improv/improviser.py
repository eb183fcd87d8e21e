"""The musical brain of the daemon: what improv does with each message and when it plays.

Data flows one way: message → :class:`~improv.tracker.NoteTracker` →
:class:`~improv.window.NoteWindow` → :class:`~improv.engine.NoteModel` →
:class:`~improv.sampling.Sampler` → :class:`~improv.scheduler.Scheduler` → outputs.

Modes:

- ``call-response``: the player plays a phrase; once no key is held and a
  silence passes (``silence`` seconds, or adaptive: 3 times the call's median
  gap between onsets, within 0.6-3 s) or the end-call control comes, improv
  answers with as many notes as the call had (``answer_notes`` to fix it).
  Playing again while improv answers stops the answer (``barge_in``).
  Never deaf: panic, end-call and the player's CC120/CC123 release every held
  key; a key held with no note or pedal input for ``held_keys`` seconds (0:
  twice the silence threshold, at least ``MIN_HELD_KEYS``) is taken as released,
  since a lost note-off would otherwise keep the call open for good. Before any
  answer, every note still waiting behind a held key goes to the model.
- ``continue``: improv keeps playing, continuing whatever is in the window: its
  own notes and the player's as they arrive.

Time (:mod:`improv.timing`): MIDI clock messages go to the :class:`~improv.timing.TimeKeeper`
and nowhere else (they are not the player's input: no silence, held-key or call counts
them); every note-on of the player is an onset for it. When a tempo is known (MIDI clock,
``[time] tempo``, or the onsets when asked for), an answer starts on the next beat (or bar)
at least ``gap`` plus :data:`~improv.timing.ENGINE_LEAD` after the call ends, its notes are
queued in beats (the scheduler re-times them when the tempo moves) and their onsets are
quantized if a grid is set; continue mode does the same with a clock or a fixed tempo. A
transport stop ends improv's sounding notes and clears its queue at once, and continue
mode waits for start or continue. Without a tempo everything is timed in seconds, as it
always was.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, replace

import mido
import numpy as np

from improv.autosave import AUTOSAVE_AFTER, MemoryAutosave
from improv.beatout import BeatSender
from improv.checks import check_range, check_types
from improv.controls import Controls, cc_to_memory, cc_to_temperature, cc_to_unit
from improv.engine import NoteModel
from improv.errors import InvalidValueError
from improv.features import CHORD_SECONDS
from improv.filelock import FileLock
from improv.flags import flag
from improv.key import KeyTracker
from improv.memory import DEFAULT_STRENGTH, check_memory_file, open_memory
from improv.note import Note
from improv.sampling import Sampler
from improv.scheduler import Scheduler
from improv.timing import ANSWER_ON, CLOCK_TYPES, ENGINE_LEAD, TimeKeeper
from improv.tracker import NoteTracker
from improv.window import NoteWindow

logger = logging.getLogger(__name__)

MODES = ("call-response", "continue")
#: Seconds after a switch control's last value of 64 or more when the same value again is a
#: new press (a button that sends 127 alone); a pedal's sweep sends its values ms apart.
SWITCH_AGAIN = 0.3
#: Message times this far ahead of the improviser's clock are of another clock (said once).
CLOCK_SKEW = 3600.0
MAX_CHORD = 6
#: Shortest automatic held-key limit: a sustained chord of a slow piece lasts a few
#: seconds, and a key is only taken as released after this long with no input at all.
MIN_HELD_KEYS = 5.0
#: Most notes continue mode queues per tick: with lookahead capped at MAX_LOOKAHEAD and
#: chords capped at MAX_CHORD, a tick's work stays bounded whatever the model draws.
MAX_NOTES_PER_TICK = 64
#: Upper limits of the time settings (seconds): beyond them a value is a mistake, and
#: an infinite one used to stop answers for good or run the main loop forever.
MAX_SILENCE = 600.0
MAX_GAP = 10.0
MAX_LOOKAHEAD = 10.0
MAX_HELD_KEYS = 3600.0
#: While the player has played within KEEP_WARM_FOR seconds, the live loop's idle turns
#: run what the next note drawn will run, at most every KEEP_WARM_EVERY seconds
#: (:meth:`Improviser.keep_warm`).
KEEP_WARM_FOR = 10.0
KEEP_WARM_EVERY = 0.002
#: The player's own "all sound off" and "all notes off": both release every held key.
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123


@dataclass(frozen=True)
class Settings:
    """How improv plays along (every field is also a config-file key)."""

    mode: str = flag("call-response", "answer each phrase, or keep playing", choices=MODES)
    silence: float = flag(0.0, "seconds of silence that end a call; 0: adaptive")
    answer_notes: int = flag(0, "notes per answer; 0: as many as the call")
    max_answer_notes: int = 64
    gap: float = flag(0.1, "seconds between the end of a call and the answer")
    barge_in: bool = flag(True, "stop an answer when the player plays again")
    passthrough: bool = flag(False, "send the player's notes to the output too")
    velocity: int = flag(0, "velocity of improv's notes; 0: the model's, else the player's "
                         "median")
    lookahead: float = flag(1.0, "continue mode: seconds of music kept queued", metavar="S")
    held_keys: float = flag(0.0, "a key held this long with no input is taken as released "
                            "(a lost note-off); 0: twice the silence, at least 5 s", metavar="S")
    memory: float = flag(DEFAULT_STRENGTH, "weight of the phrase memory, 0-1: 0 the model "
                         "alone, 0.5 as tuned, 1 mostly the player's own material", metavar="S")
    memory_file: str = flag("", "keep what the memory learns in FILE across sessions "
                            f"(written at exit and after {AUTOSAVE_AFTER:g} s of silence)",
                            metavar="FILE")

    def __post_init__(self):
        check_types(self, "settings.")
        if self.mode not in MODES:
            raise InvalidValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        check_range("settings.silence", self.silence, 0, MAX_SILENCE)
        check_range("settings.gap", self.gap, 0, MAX_GAP)
        check_range("settings.held_keys", self.held_keys, 0, MAX_HELD_KEYS)
        check_range("settings.memory", self.memory, 0, 1)
        if not 0 < self.lookahead <= MAX_LOOKAHEAD:
            raise InvalidValueError(f"settings.lookahead must be > 0 and <= {MAX_LOOKAHEAD:g} "
                                    f"seconds, got {self.lookahead!r}")
        if self.answer_notes < 0 or self.max_answer_notes < 1:
            raise InvalidValueError("answer_notes must be >= 0 and max_answer_notes >= 1")
        check_range("settings.answer_notes", self.answer_notes, 0, 1024)
        check_range("settings.max_answer_notes", self.max_answer_notes, 1, 1024)
        if not 0 <= self.velocity <= 127:
            raise InvalidValueError(f"velocity must be 0-127, got {self.velocity}")


class Improviser:
    """Listen, decide and play. Feed it messages and clock ticks from one thread."""

    def __init__(self, model: NoteModel, sampler: Sampler, scheduler: Scheduler,
                 settings: Settings | None = None, controls: Controls | None = None,
                 passthrough=None, on_note=None, log=None, clock=time.monotonic,
                 time_keeper: TimeKeeper | None = None, beat_sender: BeatSender | None = None):
        self.model, self.sampler, self.scheduler = model, sampler, scheduler
        self.beat_sender = beat_sender  # clock out and metronome, on the timeline in use
        self.settings = settings or Settings()
        self.controls = controls or Controls()
        # each switch CC held: the time and value of its last value >= 64
        self._pressed: dict[int, tuple[float, int]] = {}
        self.passthrough = passthrough  # callable(msg) for the player's notes, or None
        self.on_note = on_note  # callable(note, who) for recording, or None
        self.log = log or (lambda text: None)  # callable(str) for what the controls did
        # and for errors (without a log: the logging module's)
        self._error = log or (lambda text: logger.error("improv: %s", text))
        self.clock = clock
        self.time = time_keeper or TimeKeeper(now=clock())
        self.tracker = NoteTracker()
        self.window = NoteWindow(size=max(model.seq_length, 256))
        self.prediction = None
        # The player's notes and improv's own, learned as they reach the model; and the
        # key they are in, which the memory and the sampler lean towards.
        # The memory file is improv's alone until close() has written it (improv.filelock).
        self._memory_lock = None
        if self.settings.memory_file:
            check_memory_file(self.settings.memory_file)
            self._memory_lock = FileLock(self.settings.memory_file).acquire()
        try:
            self.memory = open_memory(self.settings.memory_file or None, self.log)
            self._autosave = (MemoryAutosave(self.memory, self.settings.memory_file, self.log)
                              if self.settings.memory_file else None)
        except BaseException:  # (the lock goes with what failed: no stale holder here)
            if self._memory_lock is not None:
                self._memory_lock.release()
            raise
        self.key = KeyTracker()
        self.call: list[float] = []  # onsets of the current call
        self.velocities: deque[int] = deque(maxlen=64)
        self._threshold: float | None = None  # silence that ends the call; None: recompute
        self.last_input = -np.inf
        self.answers = 0
        self.notes_in = 0
        self.notes_out = 0
        self.messages = 0  # messages handed to handle()
        self.listener_errors = 0  # on_note calls that raised
        self._skew_told = False
        self.repeats = 0  # note-ons heard twice (one strike delivered again), dropped
        self.keys_released = 0  # held keys taken as released (timeout, panic, end of call...)
        self._continue_last = None  # continue mode: start time of the last note played
        self._continue_beats = False  # ... in beats (a clock or a fixed tempo), else seconds
        self._shifted = 0.0  # the scheduler's shifts (after stalls) already followed
        self._shifted_beats = 0.0
        self.transport_stops = 0  # transport stops that silenced improv
        self._chord = 0  # continue mode: notes in a row with step 0
        self._next_warm = -np.inf

    # -- input ------------------------------------------------------------------------
    def handle(self, msg: mido.Message, t: float | None = None) -> None:
        """Take one message from the player, received at clock time ``t``."""
        if t is None:
            t = self.clock()
        else:  # a time given by the caller: of this clock, and finite
            t = float(t)
            if not math.isfinite(t):  # it would reach the model's state, for good
                raise InvalidValueError(f"handle: the time must be finite, got {t!r}")
            if not self._skew_told and t > self.clock() + CLOCK_SKEW:
                self._skew_told = True  # (time.time() stamps against time.monotonic)
                self._error(f"handle: message times run {t - self.clock():.0f} s ahead of "
                            "the improviser's clock: no call will end; stamp them with that "
                            "clock")
        kind = msg.type
        if kind in CLOCK_TYPES:  # the beat clock's, not the player's: not counted as input
            self._clock_message(msg, t)
            return
        self.messages += 1
        if kind == "control_change" and msg.control in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            self.release_keys(t, f"CC{msg.control}")
        if kind == "control_change" and self._control(msg, t):
            return
        if kind in ("note_on", "note_off") or (kind == "control_change" and msg.control == 64):
            if self.tracker.is_repeat(msg, t):  # one strike delivered twice: one note
                self.repeats += 1
                return
            if self.settings.passthrough and self.passthrough is not None:
                self.passthrough(msg)
            self.last_input = t  # the silence that ends a call counts from here
            if kind == "note_on" and msg.velocity > 0:
                self._note_on(msg, t)
            for note in self.tracker.handle(msg, t):
                self.window.add(note)
                self._tell(note, "player")
            self._feed_ready()

    def _note_on(self, msg, t: float) -> None:
        self.notes_in += 1
        self.time.onset(t, msg.velocity)
        self.call.append(t)
        if len(self.call) > 4 * self.settings.max_answer_notes:  # a call with no end in sight
            del self.call[:-self.settings.max_answer_notes]
        self.velocities.append(msg.velocity)
        self._threshold = None
        if self.settings.mode == "call-response" and self.settings.barge_in:
            if self.scheduler.busy:
                self.scheduler.cancel()

    def _control(self, msg, t: float) -> bool:
        action = self.controls.action(msg.control)
        if action is None:
            return False
        # A switch acts on a press: its value rising to 64 or more. One press of a
        # continuous pedal sends many values over 64 (CC89 swept 0-127-0 switched the
        # click 4 times; held, then let go, or resting at 126/127, it must not act again);
        # a button in trigger mode sends the same value alone each press: that value again,
        # SWITCH_AGAIN after it, is a press.
        held = self._pressed.pop(msg.control, None)
        if msg.value >= 64:
            self._pressed[msg.control] = (t, msg.value)
        press = msg.value >= 64 and (held is None or (
            msg.value == held[1] and t - held[0] >= SWITCH_AGAIN))
        if action == "temperature":
            self.sampler.config = replace(self.sampler.config,
                                          temperature=cc_to_temperature(msg.value))
            self.log(f"temperature {self.temperature:.2f}")
        elif action == "memory":
            self.settings = replace(self.settings, memory=cc_to_memory(msg.value))
            self.log(f"memory {self.settings.memory:.2f}")
        elif action == "end_call" and press:
            self._answer(self.clock())  # releases held keys first
            self.log("end of call")  # after: printing is no reason to answer later
        elif action == "panic":
            self.log("panic")
            self.panic()
        elif action == "mode" and press:
            mode = MODES[(MODES.index(self.settings.mode) + 1) % len(MODES)]
            self.set_mode(mode)
        elif action == "answer_on" and press:
            now = self.time.settings.answer_on
            self.time.update(answer_on=ANSWER_ON[(ANSWER_ON.index(now) + 1) % len(ANSWER_ON)])
            self.log(f"answers start on {self.time.settings.answer_on}")
        elif action == "metronome" and press:
            if self.beat_sender is not None:
                self.beat_sender.set_metronome(not self.beat_sender.metronome)
                self._sync_time(self.clock(), force=True)
                self.log(f"metronome {'on' if self.beat_sender.metronome else 'off'}")
        elif action in ("quantize_strength", "swing"):
            try:
                self.time.update(**{action: cc_to_unit(msg.value)})
                self.log(f"{action.replace('_', ' ')} {cc_to_unit(msg.value):.2f}")
            except ValueError as exc:  # swing on a triplet grid, or with no grid
                self.log(f"{action.replace('_', ' ')} unchanged: {exc}")
        return True

    def _clock_message(self, msg, t: float) -> None:
        """A MIDI clock message: to the beat clock; a transport stop silences improv."""
        event = self.time.midi(msg, t)
        if event is None:
            return
        if event.kind == "stop":
            # At once, from this thread: note-offs for everything sounding, queue cleared.
            self.scheduler.cancel()
            self.transport_stops += 1
            self.log("transport stopped")
        elif self.scheduler.beats_pending:  # start, continue, song position: beats renumbered
            self.scheduler.cancel()
        self._continue_last = None

    def playing(self, now: float) -> bool:
        """Whether the player played within the last KEEP_WARM_FOR seconds."""
        return now - self.last_input <= KEEP_WARM_FOR

    def keep_warm(self, now: float) -> None:
        """Run what the next note runs (a step of the model, its state put back; the phrase
        memory's reading of the notes so far; the sampler's filters), changing nothing and
        drawing nothing, at most every KEEP_WARM_EVERY seconds while the player plays: the
        live loop calls this when it has nothing else to do.

        Left cold between the player's notes, that code and its data made the call's last
        note and the answer's first slow: in ``improv bench live`` (300 ends of call, one
        every ~50 ms; 2026-11-30) they took 1.04 ms p50, 1.58 ms p99 from the end-of-call
        control's arrival to the answer's send (0.06 ms warm in-process), and 90 of 300
        answers came a JACK period after the echo floor's. With this and the session's
        timer slack (before POLL_PLAYING): 0.62-0.72 ms p50, 1.0-1.46 ms p99. The cost, on
        an improv hearing a note every 0.25 s: 26% of a core instead of 13% before all three
        (22% with this and the slack alone); nothing after KEEP_WARM_FOR seconds of silence."""
        if now < self._next_warm or not self.playing(now) or self.prediction is None:
            return
        self._next_warm = now + KEEP_WARM_EVERY
        self.model.keep_warm()
        if self.settings.memory > 0:
            self.memory.keep_warm()
        self.sampler.keep_warm(self.prediction.logits, self.key.mask)

    def _feed_ready(self) -> None:
        for pitch, step, duration, velocity in self.window.ready(self.tracker.earliest_start):
            self.prediction = self.model.feed(pitch, step, duration, velocity)
            self.memory.learn(pitch, step, duration)
            self.key.push(pitch)

    def release_keys(self, t: float, why: str = "") -> int:
        """Take every held key (and pedal) as released at ``t``; their notes go to the
        model. Return how many notes that ended. ``why`` is logged when keys were held."""
        held = self.tracker.keys_down
        ended = self.tracker.flush(t)
        for note in ended:
            self.window.add(note)
            self._tell(note, "player")
        self._feed_ready()
        if held:
            self.keys_released += held
            if why:
                self.log(f"{held} held key(s) taken as released ({why})")
        return len(ended)

    def held_key_limit(self) -> float:
        """Seconds a key may stay held with no input before it is taken as released."""
        if self.settings.held_keys > 0:
            return self.settings.held_keys
        return max(2 * self.silence_threshold(), MIN_HELD_KEYS)

    # -- output -----------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return self.sampler.config.temperature

    def set_mode(self, mode: str) -> None:
        """Switch mode; whatever improv was playing stops."""
        self.settings = replace(self.settings, mode=mode)
        self.scheduler.cancel()
        self.log(f"mode {mode}")
        self._continue_last = None
        self._continue_beats = False

    def panic(self) -> None:
        """Silence everything improv plays, release held keys, forget the current call."""
        self.scheduler.panic()
        self.release_keys(self.clock())
        self.call.clear()
        self._continue_last = None

    def silence_threshold(self) -> float:
        """Seconds of silence that end the current call."""
        if self.settings.silence > 0:
            return self.settings.silence
        if self._threshold is None:  # once per note, not on every 2 ms tick
            gaps = np.diff(self.call)
            gaps = gaps[gaps > 0.03]  # chord tones are not gaps
            typical = float(np.median(gaps)) if len(gaps) else 0.5
            self._threshold = float(np.clip(3 * typical, 0.6, 3.0))
        return self._threshold

    def _tell(self, note: Note, who: str) -> None:
        """Hand ``on_note`` a note; one that raises is logged, not let through: mid-answer
        it left the call open, so every later silence answered it again."""
        if self.on_note is None:
            return
        try:
            self.on_note(note, who)
        except Exception as exc:
            self.listener_errors += 1
            if self.listener_errors <= 3:
                self._error(f"on_note: {exc!r}")

    def _player_velocity(self) -> int:
        return int(np.median(self.velocities)) if self.velocities else 80

    def _next_note(self) -> tuple[int, float, float, int]:
        """Draw the next note (pitch, step, duration, velocity) and feed it back.

        The velocity is the setting's if one is set, else the model's (a model with
        a velocity head follows the player's dynamics), else the player's median.
        """
        if self.prediction is None:  # nothing heard yet: start from middle C
            self.prediction = self.model.feed(60, 0.0, 0.5, self._player_velocity())
        note = self._draw()
        self._feed_back(*note)
        return note

    def _draw(self, after_silence: bool = False) -> tuple[int, float, float, int]:
        """Draw the next note from the current prediction, without feeding it back.
        ``after_silence``: it starts after a silence (an answer's first note, whatever
        step is drawn, unless the call was ended at once), so no pitch was struck just before
        it (:meth:`Sampler.sample`)."""
        if self.prediction is None:  # nothing heard yet: start from middle C
            self.prediction = self.model.feed(60, 0.0, 0.5, self._player_velocity())
        prediction, memory, strength, key = (self.prediction, self.memory,
                                             self.settings.memory, self.key.mask)
        struck = () if after_silence else self.model.struck
        # the step is drawn with the memory's chance of a chord tone mixed in, then the
        # pitch from the memory's guess for the step drawn (a chord tone or not)
        pitch, step, duration = self.sampler.sample(
            memory.mix_rhythm(prediction, strength), key, struck,
            lambda p, step: memory.mix(p, strength, key, step))
        velocity = (self.settings.velocity or self.sampler.velocity(prediction)
                    or self._player_velocity())
        return pitch, step, duration, velocity

    def _feed_back(self, pitch: int, step: float, duration: float, velocity: int) -> None:
        """Let the model (and the phrase memory and the key) hear a note improv plays."""
        self.prediction = self.model.feed(pitch, step, duration, velocity)
        self.memory.learn(pitch, step, duration, own=True)
        self.key.push(pitch)

    def _after(self, last_start: float, step: float, second: float = 1.0) -> float:
        """Start of the next note: ``step`` after the last; chords are step 0, but never
        more than MAX_CHORD notes at one instant (a model stuck on step 0 must not pile up).
        ``second``: the length of a second in the units of the times (beats: 1 / period)."""
        self._chord = self._chord + 1 if step < 0.01 * second else 0
        if self._chord >= MAX_CHORD:
            self._chord = 0
            return last_start + 0.1 * second
        return last_start + step

    def _play(self, pitch: int, start: float, duration: float, velocity: int) -> None:
        self.scheduler.play(pitch=pitch, start=start, duration=duration, velocity=velocity)
        self.window.push(pitch=pitch, start=start, duration=duration, velocity=velocity)
        self.notes_out += 1
        self._tell(Note(pitch=pitch, start=start, end=start + duration, velocity=velocity),
                   "improv")

    def _play_beats(self, pitch: int, beat: float, beats: float, velocity: int,
                    line) -> None:
        """Queue a note in beats (``line``: the timeline in use, for the window and the
        recording, which keep seconds)."""
        beat = self.scheduler.play_beats(pitch=pitch, start=beat, duration=beats,
                                         velocity=velocity)  # whole beats later if stale
        start, duration = line.time_at(beat), beats * line.period
        self.window.push(pitch=pitch, start=start, duration=duration, velocity=velocity)
        self.notes_out += 1
        self._tell(Note(pitch=pitch, start=start, end=start + duration, velocity=velocity),
                   "improv")

    def _sync_time(self, now: float, force: bool = False):
        """Hand the scheduler the timeline in use if it may have moved; return it.

        Notes queued in beats whose numbers changed meaning (a new source, a transport
        start) are dropped: they would fall at arbitrary times."""
        if not force and not self.time.due(now):
            return self.scheduler.timeline
        line, renumbered = self.time.refresh(now)
        if renumbered and self.scheduler.beats_pending:
            self.scheduler.cancel()
            self._continue_last = None
        self.scheduler.set_timeline(line)
        if self.beat_sender is not None:
            self.beat_sender.set_timeline(line, renumbered, self.time.beat.bar_offset(now),
                                          running=not self.time.halted(now), now=now)
        return line

    def _answer(self, t: float) -> None:
        """Play an answer to the current call, starting ``gap`` after ``t`` (with a tempo:
        on the next beat or bar after that, and timed in beats)."""
        # The call is over: held keys and the pedal too, so every note still waiting
        # behind a held one reaches the model before it answers.
        self.release_keys(t, "end of call")
        if not self.call and not self.window.rows:
            return
        count = self.settings.answer_notes or len(self.call) or 8
        count = int(min(max(count, 1), self.settings.max_answer_notes))
        self._chord = 0
        # The first note sounds after a silence, unless the end-call control came within a
        # chord's time of the last input with no gap: then it may sound with what was struck.
        quiet = t + self.settings.gap - self.last_input >= CHORD_SECONDS
        line = self._sync_time(t, force=True)
        if line is not None:
            if self.call and self.time.source(t).value != "clock":
                self.time.beat.downbeat(self.call[0])  # bars count from the call's start
            self._answer_in_beats(t, line, count, quiet)
            return
        start = t + self.settings.gap
        for i in range(count):
            # Each note is queued before the model hears it: the first one can go out
            # while the rest are still being drawn (end-of-call to answer, bench live).
            pitch, step, duration, velocity = self._draw(after_silence=not i and quiet)
            if i:
                start = self._after(start, step)
            self._play(pitch, start, duration, velocity)
            # The model hears the first note at the step drawn, not after the silence it
            # really follows: fed the real gap (over a second), its answers' rhythm moved
            # away from the real continuations' (in-process, 134 validation calls of 48
            # notes x 3 draws, 32-note answers: step overlap 0.886 against 0.922,
            # durations 0.879 against 0.928): a long rest reads to it as a section's end.
            self._feed_back(pitch, step, duration, velocity)
        self.call.clear()
        self.answers += 1

    def _answer_in_beats(self, t: float, line, count: int, quiet: bool) -> None:
        """The answer on the beat: onsets kept in beats from the first, quantized if asked."""
        second = 1.0 / line.period
        beat = 0.0
        shifted = self.scheduler.shifted_beats
        for i in range(count):
            pitch, step, duration, velocity = self._draw(after_silence=not i and quiet)
            if i:
                # The notes queued so far moved by whole beats (one was stale): so do these.
                beat += self.scheduler.shifted_beats - shifted
                shifted = self.scheduler.shifted_beats
                beat = self._after(beat, step * second, second)
            else:  # its beat chosen once its note is drawn, from the time it is now: a
                # loaded machine can hold the main loop up for tens of ms on the way
                now = max(t, self.clock())
                first = self.time.answer_start(
                    now, max(t + self.settings.gap - now, 0.0) + ENGINE_LEAD)
                beat = first[1] if first is not None else line.beat_at(now + self.settings.gap)
            self._play_beats(pitch, self.time.shape(beat), duration * second, velocity, line)
            self._feed_back(pitch, step, duration, velocity)
        self.call.clear()
        self.answers += 1

    def tick(self, t: float | None = None) -> None:
        """Let time pass: end a call after its silence; keep continue mode fed."""
        t = self.clock() if t is None else t
        if self.tracker.keys_down and t - self.last_input >= self.held_key_limit():
            self.release_keys(t, f"no input for {t - self.last_input:.1f} s")
        if (self.scheduler.beats_pending or (self.beat_sender and self.beat_sender.active)
                or (self.settings.mode == "continue" and self._continue_beats)):
            self._sync_time(t)  # the tempo moved: the notes (and pulses) to come follow it
        if self.settings.mode == "call-response":
            if (self.call and self.tracker.keys_down == 0 and not self.scheduler.busy
                    and t - self.last_input >= self.silence_threshold()):
                self._answer(t)
            return
        if self._continue_on_beats(t):
            return
        shifted = self.scheduler.shifted
        if self._continue_last is not None and shifted != self._shifted:
            self._continue_last += shifted - self._shifted  # the queue moved after a stall
        self._shifted = shifted
        for _ in range(MAX_NOTES_PER_TICK):
            last = self._continue_last
            if last is not None and last >= t + self.settings.lookahead:
                break
            pitch, step, duration, velocity = self._next_note()
            if self._continue_last is None or self._continue_last + step < t:
                start = t + self.settings.gap  # (re)starting: no notes in the past
            else:
                start = self._after(self._continue_last, step)
            self._play(pitch, start, duration, velocity)
            self._continue_last = start

    def autosave(self, t: float) -> bool:
        """Write the memory file a little at a time (with ``memory_file`` set) once the
        player has been silent for AUTOSAVE_AFTER seconds and nothing of improv's sounds
        (:mod:`improv.autosave`); return True in the turn the file is written."""
        if self._autosave is None:
            return False
        quiet = (t - self.last_input >= AUTOSAVE_AFTER and not self.tracker.keys_down
                 and not self.scheduler.busy)
        return self._autosave.step(quiet)

    def _continue_on_beats(self, t: float) -> bool:
        """Continue mode on a clock or a fixed tempo: keep ``lookahead`` seconds of notes
        queued in beats; paused while the transport is stopped. Return False when there
        is no such tempo (continue in seconds)."""
        source = self.time.source(t).value
        on_beats = source in ("clock", "fixed") or (source == "none" and self.time.stopped)
        if on_beats != self._continue_beats:  # seconds <-> beats: start afresh
            self.scheduler.cancel()
            self._continue_last, self._continue_beats = None, on_beats
            self._shifted, self._shifted_beats = self.scheduler.shifted, \
                self.scheduler.shifted_beats
        if not on_beats:
            return False
        # Paused while the clock's transport is stopped; a stopped clock gone (a DAW sends
        # no pulses once stopped) leaves a fixed tempo to go on (TimeKeeper.halted).
        if self.time.halted(t) or (source == "none" and self.time.stopped):
            return True
        line = self._sync_time(t)
        if line is None:
            return True
        shifted = self.scheduler.shifted_beats
        if self._continue_last is not None and shifted != self._shifted_beats:
            self._continue_last += shifted - self._shifted_beats  # moved after a stall
        self._shifted_beats = shifted
        second = 1.0 / line.period
        now, ahead = line.beat_at(t), line.beat_at(t + self.settings.lookahead)
        for _ in range(MAX_NOTES_PER_TICK):
            last = self._continue_last
            if last is not None and last >= ahead:
                break
            pitch, step, duration, velocity = self._next_note()
            if last is None or last + step * second < now:  # (re)starting: on a beat
                first = self.time.beat.next_beat(t, self.settings.gap + ENGINE_LEAD)
                beat = first[1] if first is not None else now
            else:
                beat = self._after(last, step * second, second)
            self._play_beats(pitch, self.time.shape(beat), duration * second, velocity, line)
            self._continue_last = beat
        return True

    def close(self) -> bool:
        """End every note improv started; keep the memory in ``memory_file`` if one is set.
        Return False if it could not be written (one line says why)."""
        self.scheduler.close()
        if self._memory_lock is None:
            return True
        try:
            self.memory.save(self.settings.memory_file)
        except OSError as exc:
            self.log(f"could not write the memory to {self.settings.memory_file}: "
                     f"{exc.strerror or exc}")
            return False
        finally:
            self._memory_lock.release()
            self._memory_lock = None  # (written once: a second close writes nothing)
        return True
