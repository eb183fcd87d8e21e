"""Files improv writes: checked before the work that makes them, written whole or not at all.

:func:`check_outputs` refuses, before a command starts its work, an output in a folder that
does not exist, an output that is a folder, and one path named for two outputs (the second
file would silently replace the first). :func:`replacing` and :func:`write_atomically` write
a file to a temporary file in its folder, flush it to disk and rename it over the old one,
so a full disk, a file-size limit, a Ctrl-C or a crash leaves the old file or the new one,
never half of one (a red-team run, 2026-11-30: ``improv generate --wav`` under a 100 kB
file-size limit left a cut WAV where a good one had been). An existing file keeps its
permissions, and a symbolic link keeps pointing where it did, at the new file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from improv.errors import InvalidValueError, MissingFileError


def check_outputs(*paths: str | Path | None) -> None:
    """Refuse (one line each) an output whose folder is missing, one that is a folder, and a
    path named twice; None entries are outputs not asked for."""
    seen: dict[Path, Path] = {}
    for path in paths:
        if path is None or path == "":
            continue
        path = Path(path)
        if path.is_dir():
            raise InvalidValueError(f"{path}: a folder, not a file to write")
        if not path.resolve().parent.is_dir():
            raise MissingFileError(f"{path}: no such folder {path.parent}")
        key = Path(os.path.realpath(path))
        if key in seen:
            raise InvalidValueError(f"{path}: named for two outputs (the second would "
                                    f"replace the first)")
        seen[key] = path


def _new_file_mode() -> int:
    """The mode a new file gets here (0o666 less the umask), read without changing it."""
    try:
        with open("/proc/self/status") as fh:  # Linux; os.umask() would have to set it
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (with its suffix, for writers that go by
    it) to write the whole file to; when the block ends, it replaces ``path`` (the target of
    a symbolic link), else it is removed."""
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        mode = (stat.S_IMODE(os.stat(target).st_mode) if target.exists()
                else _new_file_mode())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (a str as UTF-8) to ``path`` whole or not at all (:func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
