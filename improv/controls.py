"""Live controls over MIDI control-change messages, remappable in the config file.

Defaults follow the conventions players know from Magenta's MIDI interface
(a temperature knob, end-of-call, panic, mode): the mod wheel (CC1) sets the
temperature from 0.1 to 2.0; the soft pedal (CC67) ends a call; "all sound
off" (CC120) is panic; CC85 switches between call-response and continue; CC16
(general purpose 1) sets the phrase memory's weight from 0 (off) to 1. Time-keeping
(:mod:`improv.timing`) takes three undefined controllers next to the mode's: CC86 steps
where an answer starts (beat, bar, now), CC87 sets the quantize strength and CC88 the
swing, each 0-1, and CC89 switches the metronome's click on or off.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from improv.checks import check_types
from improv.errors import InvalidValueError

MIN_TEMPERATURE = 0.1
MAX_TEMPERATURE = 2.0


@dataclass(frozen=True)
class Controls:
    """Which CC number does what (-1 turns a control off)."""

    temperature: int = 1
    end_call: int = 67
    panic: int = 120
    mode: int = 85
    #: General purpose controller 1: the phrase memory's weight, 0 (off) to 1.
    memory: int = 16
    #: Where an answer starts when a tempo is known: beat -> bar -> now (a press steps).
    answer_on: int = 86
    #: How far improv's onsets move to the grid (``[time] quantize``), 0-1.
    quantize_strength: int = 87
    #: The swing of the grid's off-steps, 0-1.
    swing: int = 88
    #: The metronome's click on or off (a press switches it).
    metronome: int = 89

    def __post_init__(self):
        check_types(self, "controls.")
        used = {}
        for f in fields(self):
            cc = getattr(self, f.name)
            if not -1 <= cc <= 127:
                raise InvalidValueError(f"controls.{f.name} must be a CC number 0-127 (or -1), "
                                        f"got {cc}")
            if cc in used and cc != -1:
                raise InvalidValueError(f"controls.{f.name} and controls.{used[cc]} both use "
                                        f"CC{cc}")
            used[cc] = f.name
        if self.temperature == 64 or self.end_call == 64:
            raise InvalidValueError("CC64 is the sustain pedal; choose another control")

    def action(self, control: int) -> str | None:
        """Return the name of the control ``control`` is mapped to, or None."""
        for f in fields(self):
            if getattr(self, f.name) == control:
                return f.name
        return None


def cc_to_memory(value: int) -> float:
    """Map a CC value 0-127 linearly onto the memory weight 0-1."""
    return cc_to_unit(value)


def cc_to_unit(value: int) -> float:
    """Map a CC value 0-127 linearly onto 0-1 (memory, quantize strength, swing)."""
    return min(max(value, 0), 127) / 127


def cc_to_temperature(value: int) -> float:
    """Map a CC value 0-127 linearly onto MIN_TEMPERATURE..MAX_TEMPERATURE."""
    return MIN_TEMPERATURE + (MAX_TEMPERATURE - MIN_TEMPERATURE) * min(max(value, 0), 127) / 127
