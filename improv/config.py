"""Settings of ``improv run``: defaults, a TOML config file, then flags (flags win).

Every value is checked for type (bools are bools, ints are ints, numbers
finite), then range, before anything opens: a file or flag that fails gives one
:class:`ConfigError` line naming the file and key (see :mod:`improv.checks`).
"""

from __future__ import annotations

import sys
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from improv.checks import check_range, check_types, check_value
from improv.controls import Controls
from improv.errors import ImprovError, InvalidValueError
from improv.flags import flag
from improv.improviser import Settings
from improv.sampling import SamplingConfig
from improv.timing import TimeSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ImprovError, ValueError):
    """A config file is malformed or holds unknown keys or bad values."""


@dataclass(frozen=True)
class RunOptions:
    """Everything ``improv run`` can be told."""

    model: str = flag("", "model folder (default: the shipped one)")
    input: str = flag("", "input port: name, part of a name, or index", names=("--input", "-i"))
    output: str = flag("", "output port: name, part of a name, or index",
                       names=("--output", "-o"))
    clock_input: str = flag("", "a port that sends MIDI clock (clock arriving at --input "
                            "counts too)", metavar="PORT")
    virtual: str = flag("", "open virtual ports NAME in / NAME out (default name: improv)",
                        nargs="?", const="improv", metavar="NAME")
    api: str = flag("", "MIDI back-end", choices=("alsa", "jack", "coremidi", "winmm"))
    channel: int = flag(0, "output channel 0-15")
    voices: int = flag(16, "most notes improv sounds at once")
    synth: bool = flag(False, "play through FluidSynth (no MIDI output unless named)")
    soundfont: str = flag("", "soundfont for FluidSynth (default: see soundfonts/README.md)")
    audio_driver: str = flag("", "FluidSynth audio driver (pulseaudio, alsa, jack, ...; "
                             "file: no live sound)")
    #: Extra FluidSynth settings, e.g. {"audio.file.name": "out.wav"} for the file driver.
    synth_settings: dict = field(default_factory=dict)
    record: str = flag("", "write the session (both parts) to this MIDI file")
    random_seed: int | None = flag(None, "seed of improv's random draws")
    status: bool = flag(True, "print a status line")
    status_every: float = flag(0.0, "seconds between status lines; 0: 0.5 on a terminal, "
                               "else 5", metavar="S")
    settings: Settings = field(default_factory=Settings)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    controls: Controls = field(default_factory=Controls)
    time: TimeSettings = field(default_factory=TimeSettings)

    def __post_init__(self):
        try:
            check_types(self)
            check_range("channel", self.channel, 0, 15)
            check_range("voices", self.voices, 1, 128)
            check_range("status_every", self.status_every, 0, 3600)
            if self.random_seed is not None and self.random_seed < 0:
                raise InvalidValueError(f"random_seed must be >= 0, got {self.random_seed}")
            check_sampling(self.sampling)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


#: Longest step and note improv may play (seconds); the sampler clamps to these.
MAX_SAMPLED_SECONDS = 60.0


def check_sampling(sampling: SamplingConfig) -> None:
    """Caps of the sampling settings (SamplingConfig checks its own types and ranges)."""
    for name in ("max_step", "max_duration"):
        check_range(f"sampling.{name}", getattr(sampling, name), 0, MAX_SAMPLED_SECONDS)
    check_range("sampling.top_k", sampling.top_k, 0, 128)
    for name in ("temperature", "timing_temperature", "velocity_temperature"):
        check_range(f"sampling.{name}", getattr(sampling, name), 0, 100)


def _check_values(cls, values: dict, prefix: str = "") -> None:
    """Check the types of ``values`` for the fields of ``cls`` before building one."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key)
        if hint is not None and hint not in _SECTIONS.values():
            check_value(f"{prefix}{key}", hint, value)


_SECTIONS = {"settings": Settings, "sampling": SamplingConfig, "controls": Controls,
             "time": TimeSettings}
_TOP = {f.name for f in fields(RunOptions)} - set(_SECTIONS)


def section_classes() -> dict[str, type]:
    """The config file's sections (``[time]`` ...) and the settings class of each."""
    return dict(_SECTIONS)


def _build(cls, values: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        _check_values(cls, values, _prefix(cls))
        if "pitch_range" in values:
            values = {**values, "pitch_range": tuple(values["pitch_range"])}
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _prefix(cls) -> str:
    return next((f"{name}." for name, c in _SECTIONS.items() if c is cls), "")


def load_config(path: str | Path) -> RunOptions:
    """Read a TOML config file: top-level keys, plus [settings], [sampling], [controls],
    [time]."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # arrays nested thousands deep
        raise ConfigError(f"{path}: not a config file (nested too deep)") from None
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    unknown = sorted(set(top) - _TOP)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(_TOP | set(_SECTIONS)))}")
    parts = {}
    for name, cls in _SECTIONS.items():
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        parts[name] = _build(cls, section, f"{path} [{name}]")
    return _build(RunOptions, {**top, **parts}, str(path))


def apply_flags(options: RunOptions, flags: dict) -> RunOptions:
    """Return ``options`` with the given (non-None) flag values on top.

    ``flags`` keys are RunOptions fields or ``section.key`` for the sections.
    """
    top, sections = {}, {name: {} for name in _SECTIONS}
    for key, value in flags.items():
        if value is None:
            continue
        if "." in key:
            section, name = key.split(".", 1)
            sections[section][name] = value
        else:
            top[key] = value
    try:
        for name, changes in sections.items():
            if changes:
                _check_values(_SECTIONS[name], changes, f"{name}.")
                top[name] = replace(getattr(options, name), **changes)
        _check_values(RunOptions, {k: v for k, v in top.items() if k not in _SECTIONS})
        return replace(options, **top)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def to_dict(options: RunOptions) -> dict:
    """Return the options as plain data (for printing or a config file)."""
    return asdict(options)
