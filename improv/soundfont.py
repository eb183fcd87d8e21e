"""Find the soundfont to play with.

Looked for in this order: the name given (``--soundfont``), ``$IMPROV_SOUNDFONT``,
``.sf2`` files in the checkout's ``soundfonts/`` folder, the ``TimGM6mb.sf2``
that pretty_midi ships, then common system locations.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from improv.errors import ImprovError
from improv.paths import REPO_ROOT

SOUNDFONTS_DIR = REPO_ROOT / "soundfonts"
SYSTEM_PLACES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)


class SoundfontError(ImprovError, FileNotFoundError):
    """No usable soundfont was found, or the one named is not a soundfont."""


def check_soundfont(path: str | Path) -> Path:
    """Return ``path`` if it is a readable SoundFont 2 file; raise SoundfontError if not."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise SoundfontError(f"{path}: cannot read the soundfont ({exc.strerror})") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundfontError(f"{path}: not a SoundFont 2 (.sf2) file")
    # The RIFF header gives the file's size: a copy cut short passed the check above and
    # failed only when FluidSynth loaded it, after a whole demo session.
    want, have = int.from_bytes(head[4:8], "little") + 8, path.stat().st_size
    if have < want:
        raise SoundfontError(f"{path}: cut short ({have:,} bytes of {want:,}); copy it again")
    return path


def _pretty_midi_soundfont() -> Path | None:
    try:
        import pretty_midi
    except ImportError:
        return None
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def candidates() -> list[tuple[str, Path]]:
    """Return every place a default soundfont is looked for, with where it came from."""
    places: list[tuple[str, Path]] = []
    env = os.environ.get("IMPROV_SOUNDFONT")
    if env:
        places.append(("$IMPROV_SOUNDFONT", Path(env)))
    local = sorted(glob.glob(str(SOUNDFONTS_DIR / "*.sf2")))
    places += ([("soundfonts/", Path(p)) for p in local]
               or [("soundfonts/", SOUNDFONTS_DIR / "*.sf2")])
    pm = _pretty_midi_soundfont()
    if pm is not None:
        places.append(("pretty_midi", pm))
    places += [("system", Path(p)) for p in SYSTEM_PLACES]
    return places


def find_soundfont(name: str | Path | None = None) -> Path:
    """Return the soundfont to use: ``name`` if given (it must be valid), else the first
    valid candidate. The error lists every place looked at."""
    if name:
        return check_soundfont(name)
    looked = []
    for origin, path in candidates():
        try:
            return check_soundfont(path)
        except SoundfontError as exc:
            looked.append(f"{origin}: {exc}")
            if origin == "$IMPROV_SOUNDFONT":  # a named soundfont must not be skipped silently
                raise SoundfontError(f"$IMPROV_SOUNDFONT names a bad soundfont: {exc}") from None
    raise SoundfontError("no soundfont found; looked at:\n  " + "\n  ".join(looked)
                         + "\nname one with --soundfont FILE.sf2 or $IMPROV_SOUNDFONT "
                         "(e.g. apt-get install fluid-soundfont-gm)")
