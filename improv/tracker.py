"""Turn note_on/note_off messages into notes, the way a pianist means them.

- ``note_on`` with velocity 0 is a ``note_off``.
- While the sustain pedal (CC64 >= 64) is down on a channel, released keys keep
  sounding; they end when the pedal comes up, or when the same key is struck again.
- Striking a key that is already down ends the old note there and starts a new one. The
  same note-on again within ``REPEAT_SECONDS`` is the same event delivered twice, not a new
  strike: callers ask :meth:`NoteTracker.is_repeat` before handing a message over (the
  improviser then drops it whole: no onset, no passthrough).
- A ``note_off`` for a key that is not down is ignored. Other messages are ignored.
"""

from __future__ import annotations

from itertools import chain

from improv.note import Note

SUSTAIN_CC = 64
#: A note-on for a key struck this recently at the same velocity is the same event heard
#: twice: JACK hands a client that missed a cycle its events again (seen here 6 us apart,
#: clock pulses at improv's input), while a key cannot be struck again without coming up
#: first, which no hand or action does within a millisecond. (Messages recovered from a
#: swallowed SysEx share one arrival time, improv.midiin: two note-ons of one key at one
#: velocity among them, with no note-off between, would be taken as one.)
REPEAT_SECONDS = 0.001


class NoteTracker:
    """Follow keys and pedal; return each note when it has ended."""

    def __init__(self):
        self._down: dict[tuple[int, int], tuple[float, int]] = {}  # (channel, pitch) -> start, vel
        self._sustained: dict[tuple[int, int], tuple[float, int]] = {}
        self._pedal: set[int] = set()  # channels with the sustain pedal down

    @property
    def keys_down(self) -> int:
        """Keys physically held (pedal-sustained notes not counted)."""
        return len(self._down)

    @property
    def sounding(self) -> int:
        """Notes still sounding: held keys and pedal-sustained ones."""
        return len(self._down) + len(self._sustained)

    @property
    def earliest_start(self) -> float | None:
        """Start of the oldest note still sounding (None if none)."""
        return min(chain(self._down.values(), self._sustained.values()), default=(None,))[0]

    def is_repeat(self, msg, t: float) -> bool:
        """Whether ``msg`` is a note-on repeating one that struck its key (still down, same
        velocity) less than :data:`REPEAT_SECONDS` before ``t``."""
        if msg.type != "note_on" or msg.velocity == 0:
            return False
        down = self._down.get((msg.channel, msg.note))
        return down is not None and down[1] == msg.velocity and 0 <= t - down[0] < REPEAT_SECONDS

    def handle(self, msg, t: float) -> list[Note]:
        """Take one mido message received at time ``t``; return the notes it ended."""
        kind = msg.type
        if kind == "note_on" and msg.velocity > 0:
            return self._press(msg.channel, msg.note, msg.velocity, t)
        if kind in ("note_on", "note_off"):
            return self._release(msg.channel, msg.note, t)
        if kind == "control_change" and msg.control == SUSTAIN_CC:
            if msg.value >= 64:
                self._pedal.add(msg.channel)
                return []
            self._pedal.discard(msg.channel)
            return self._end_sustained(msg.channel, t)
        return []

    def _press(self, channel: int, pitch: int, velocity: int, t: float) -> list[Note]:
        key = (channel, pitch)
        ended = []
        old = self._down.pop(key, None) or self._sustained.pop(key, None)
        if old is not None:  # re-struck: the old note ends where the new one starts
            ended.append(Note(pitch=pitch, start=old[0], end=max(t, old[0]), velocity=old[1],
                              channel=channel))
        self._down[key] = (t, velocity)
        return ended

    def _release(self, channel: int, pitch: int, t: float) -> list[Note]:
        key = (channel, pitch)
        held = self._down.pop(key, None)
        if held is None:
            return []
        if channel in self._pedal:
            self._sustained[key] = held
            return []
        return [Note(pitch=pitch, start=held[0], end=max(t, held[0]), velocity=held[1],
                     channel=channel)]

    def _end_sustained(self, channel: int, t: float) -> list[Note]:
        keys = [k for k in self._sustained if k[0] == channel]
        ended = [Note(pitch=k[1], start=self._sustained[k][0],
                      end=max(t, self._sustained[k][0]), velocity=self._sustained[k][1],
                      channel=channel) for k in keys]
        for k in keys:
            del self._sustained[k]
        return sorted(ended, key=lambda n: (n.start, n.pitch))

    def release_sustained(self, t: float) -> list[Note]:
        """End every pedal-sustained note at ``t`` (keys still held are kept)."""
        ended = []
        for channel in {k[0] for k in self._sustained}:
            ended += self._end_sustained(channel, t)
        return ended

    def flush(self, t: float) -> list[Note]:
        """End every sounding note at ``t``, as if all keys and pedals came up."""
        ended = [Note(pitch=k[1], start=v[0], end=max(t, v[0]), velocity=v[1], channel=k[0])
                 for k, v in self._down.items()]
        self._down.clear()
        self._pedal.clear()
        return sorted(ended + self.release_sustained(t), key=lambda n: (n.start, n.pitch))
