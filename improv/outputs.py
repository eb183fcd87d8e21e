"""Where improv's notes go: a MIDI port, FluidSynth live, or both."""

from __future__ import annotations

import os
import sys

import mido

from improv.quiet import quiet_stderr
from improv.synth import DEFAULT_GAIN, SynthError, SynthSettingError, import_fluidsynth

#: Audio drivers tried, in order, when none is named.
AUDIO_DRIVERS = {"linux": ("pulseaudio", "pipewire", "alsa", "jack"),
                 "darwin": ("coreaudio",), "win32": ("wasapi", "dsound")}


class PortOutput:
    """Send messages to a mido output port (channel set by the scheduler)."""

    def __init__(self, port, wanted: str = ""):
        self.port = port
        self.name = port.name
        # the name asked for ("" for a virtual port): a named port is watched under it; it
        # is reopened by its full name, ``name``
        self.wanted = wanted

    def send(self, msg: mido.Message) -> None:
        self.port.send(msg)

    def reopen(self, port):
        """Replace a port whose other end went away with a fresh connection; return the old
        port, for the caller to close (outside the lock it sends under: improv.portclose
        waits before a close on JACK)."""
        old, self.port, self.name = self.port, port, port.name
        return old

    def close(self) -> None:
        self.port.close()


def apply_settings(synth, settings: dict) -> None:
    """Set FluidSynth settings (``[synth_settings]``), each read back: a name FluidSynth
    does not have, or a value it refuses (out of its range, or of another type), raises
    :class:`SynthSettingError` (FluidSynth itself would only log it and go on without). A
    whole number for a setting that takes a real one (``"synth.gain" = 1``) is taken as one."""
    for key, value in settings.items():
        synth.setting(key, value)
        got = synth.get_setting(key)
        if got is None:
            raise SynthSettingError(f"[synth_settings]: FluidSynth has no setting {key!r}")
        if isinstance(value, int) and not isinstance(value, bool) and not _same(got, value):
            synth.setting(key, float(value))
            got = synth.get_setting(key)
        if not _same(got, value):
            raise SynthSettingError(
                f"[synth_settings]: FluidSynth refused {key} = {value!r} (out of its range, or "
                f"not a {type(got).__name__}); it keeps {got!r}")


def _same(got, value) -> bool:
    """Whether FluidSynth's read-back ``got`` is ``value`` (strings: it reads back at most
    31 characters; numbers: to its 6 decimals)."""
    if isinstance(value, str):
        return isinstance(got, str) and (got == value or len(got) >= 31
                                          and value.startswith(got))
    if isinstance(got, str) or not isinstance(value, (int, float)):
        return False
    return abs(got - value) <= 1e-6 * max(1.0, abs(value))


class SynthOutput:
    """Play messages through FluidSynth with an audio driver.

    FluidSynth's ``start`` reports success even when the driver failed, so the
    driver object is checked instead.
    """

    def __init__(self, soundfont, driver: str | None = None, gain: float = DEFAULT_GAIN,
                 settings: dict | None = None):
        fluidsynth = import_fluidsynth()
        tried = [driver] if driver else list(AUDIO_DRIVERS.get(sys.platform, ("alsa",)))
        os.environ.setdefault("JACK_NO_START_SERVER", "1")  # probe JACK, never launch one
        for name in tried:
            with quiet_stderr():  # a failed probe is expected; we say what failed below
                synth = fluidsynth.Synth(gain=gain)
                try:
                    apply_settings(synth, settings or {})
                except SynthSettingError:
                    synth.delete()
                    raise
                synth.start(driver=name)
            if getattr(synth, "audio_driver", None):
                break
            synth.delete()
        else:
            raise SynthError(
                f"no audio device: FluidSynth could not open {', '.join(tried)}; name a driver "
                "with --audio-driver (e.g. jack with a running JACK server), or use --output to "
                "send MIDI to another synth")
        sfid = synth.sfload(str(soundfont))
        if sfid == -1:
            synth.delete()
            raise SynthError(f"{soundfont}: FluidSynth could not load this soundfont")
        for channel in range(16):
            synth.program_select(channel, sfid, 0, 0)
        self.synth, self.driver, self.name = synth, name, f"FluidSynth ({name})"

    def send(self, msg: mido.Message) -> None:
        s = self.synth
        if msg.type == "note_on":
            s.noteon(msg.channel, msg.note, msg.velocity)
        elif msg.type == "note_off":
            s.noteoff(msg.channel, msg.note)
        elif msg.type == "control_change":
            s.cc(msg.channel, msg.control, msg.value)

    def close(self) -> None:
        self.synth.delete()
