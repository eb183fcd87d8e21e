"""Play notes through FluidSynth: offline rendering to audio and WAV files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from improv.errors import ImprovError
from improv.outfile import replacing

#: Live gain (FluidSynth's own default, 0.2, is quiet). Measured with TimGM6mb on real
#: performances: gain 0.6 peaked at -29 to -17 dBFS, 2.0 at -19 to -7 dBFS; 1.5 keeps the
#: loudest of them near -9 dBFS, with room for louder playing. ``--gain`` changes it.
DEFAULT_GAIN = 1.5
#: Offline renders are made at this gain, then scaled to TARGET_PEAK_DBFS: 2.0 is loud enough
#: to keep 16-bit resolution and left every performance we tried at least 6 dB from clipping
#: (a render that clips is made again at half the gain).
RENDER_GAIN = 2.0
#: Peak level of every WAV improv writes (demo.wav, generate --wav).
TARGET_PEAK_DBFS = -3.0
SAMPLE_RATE = 44100


class SynthError(ImprovError, RuntimeError):
    """FluidSynth is missing or could not load a soundfont."""


class SynthSettingError(SynthError, ValueError):
    """A FluidSynth setting (``[synth_settings]``) that FluidSynth does not have or refuses."""


def import_fluidsynth():
    """Return the ``fluidsynth`` module, or say which package provides the library."""
    try:
        import fluidsynth
    except ImportError as exc:  # pyfluidsynth raises ImportError when libfluidsynth is absent
        raise SynthError(
            f"FluidSynth is not available ({exc}); install the library "
            "(Debian/Ubuntu: apt-get install libfluidsynth3; macOS: brew install fluid-synth) "
            "and the Python package (pip install pyfluidsynth)") from None
    return fluidsynth


def new_synth(soundfont: str | Path, samplerate: float = SAMPLE_RATE, gain: float = DEFAULT_GAIN,
              program: int = 0, channel: int = 0):
    """Return a FluidSynth ``Synth`` with ``soundfont`` loaded on ``channel`` as ``program``."""
    fluidsynth = import_fluidsynth()
    synth = fluidsynth.Synth(samplerate=float(samplerate), gain=gain)
    sfid = synth.sfload(str(soundfont))
    if sfid == -1:
        synth.delete()
        raise SynthError(f"{soundfont}: FluidSynth could not load this soundfont")
    synth.program_select(channel, sfid, 0, program)
    return synth


def render(pitch, start, end, velocity, soundfont: str | Path, samplerate: int = SAMPLE_RATE,
           gain: float = RENDER_GAIN, tail: float = 1.0, program: int = 0) -> np.ndarray:
    """Render notes offline; return int16 stereo audio of shape ``(frames, 2)``.

    The audio lasts until the last note ends plus ``tail`` seconds of release.
    """
    synth = new_synth(soundfont, samplerate, gain, program)
    try:
        events = sorted(
            # note-offs first at a tie
            [(float(e), 0, int(p), 0) for p, e in zip(pitch, end, strict=True)]
            + [(float(s), 1, int(p), int(np.clip(v, 1, 127)))
               for p, s, v in zip(pitch, start, velocity, strict=True)])
        total = int(round(((max(end) if len(events) else 0.0) + tail) * samplerate))
        chunks, done = [], 0
        for time, is_on, key, vel in events:
            frame = int(round(time * samplerate))
            if frame > done:
                chunks.append(synth.get_samples(frame - done))
                done = frame
            if is_on:
                synth.noteon(0, key, vel)
            else:
                synth.noteoff(0, key)
        if total > done:
            chunks.append(synth.get_samples(total - done))
    finally:
        synth.delete()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio.astype(np.int16).reshape(-1, 2)


def peak_dbfs(audio: np.ndarray) -> float:
    """Return the peak level of int16 audio in dBFS (-inf for silence)."""
    peak = float(np.abs(audio.astype(np.int32)).max()) if audio.size else 0.0
    return 20 * np.log10(peak / 32768) if peak else float("-inf")


def normalise(audio: np.ndarray, target_dbfs: float = TARGET_PEAK_DBFS) -> np.ndarray:
    """Scale int16 audio so that its peak is ``target_dbfs``; silence stays silent."""
    peak = float(np.abs(audio.astype(np.int32)).max()) if audio.size else 0.0
    if not peak:
        return audio
    scale = 32768 * 10 ** (target_dbfs / 20) / peak
    return np.clip(np.round(audio * scale), -32768, 32767).astype(np.int16)


def render_normalised(pitch, start, end, velocity, soundfont: str | Path,
                      samplerate: int = SAMPLE_RATE) -> np.ndarray:
    """Render notes (see :func:`render`) and scale them to peak at ``TARGET_PEAK_DBFS``."""
    gain = RENDER_GAIN
    while True:
        audio = render(pitch, start, end, velocity, soundfont, samplerate, gain=gain)
        if gain < 0.05 or not (np.abs(audio.astype(np.int32)) >= 32767).any():
            return normalise(audio)
        gain /= 2  # clipped: the shape of the peak is lost, so render again quieter


def write_wav(path: str | Path, audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> Path:
    """Write int16 stereo ``audio`` (shape (frames, 2)) as a WAV file."""
    audio = np.asarray(audio)
    if audio.dtype != np.int16 or audio.ndim != 2 or audio.shape[1] != 2:
        # cast silently, float samples in -1..1 were written as silence, and mono as
        # stereo at half its length
        raise ValueError(f"write_wav takes int16 stereo samples of shape (frames, 2), got "
                         f"{audio.dtype} of shape {audio.shape}")
    path = Path(path)
    # open() first: wave.open(name) on a bad path leaves a half-built Wave_write whose
    # __del__ prints "Exception ignored ... AttributeError" after the real error.
    with replacing(path) as tmp, open(tmp, "wb") as fh, wave.open(fh, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(samplerate)
        wav.writeframes(np.ascontiguousarray(audio, dtype="<i2").tobytes())
    return path
