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

import errno
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
        if path.exists() and not path.is_file():  # a device, a pipe, /dev/stdout: written
            continue  # into as they are (replacing)
        folder = path.resolve().parent
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            why = ("a read-only file system" if os.statvfs(folder).f_flag & os.ST_RDONLY
                   else "permission denied")
            raise InvalidValueError(f"{path}: cannot be written here ({why})")
        longest = _name_max(folder) - len(_temporary_name(Path(os.path.realpath(path)), ""))
        if len(os.fsencode(Path(os.path.realpath(path)).name)) > longest:
            # (found only at the end, it lost the work: a red-team run, 2026-12-01)
            raise InvalidValueError(f"{path}: too long a name to write safely here (at most "
                                    f"{longest} bytes)")
        key = Path(os.path.realpath(path))
        if key in seen:
            raise InvalidValueError(f"{path}: named for two outputs (the second would "
                                    f"replace the first)")
        seen[key] = path


def _temporary_name(target: Path, name: str | None = None) -> bytes:
    """The name :func:`replacing` writes ``target`` under first (with ``name`` for the
    target's name; mkstemp's random part is 8 characters)."""
    name = target.name if name is None else name
    return os.fsencode(f".{name}.XXXXXXXX.tmp{target.suffix}")


def _name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _umask() -> int:
    """The process's umask: read where Linux tells, else set and put back (os.umask() sets
    it, for a moment, for every thread: only where /proc cannot say)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: str | Path, devices: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (with its suffix, for writers that go by
    it) to write the whole file to; when the block ends, it replaces ``path`` (the target of
    a symbolic link), else it is removed. A device or a pipe (``/dev/null``, ``/dev/stdout``)
    is yielded as it is, to be written into: a file put in its place would replace it.
    With ``devices=False`` such a path is refused (OSError) instead: a file that must stay
    a file (a memory file that became a pipe mid-session held improv's exit until
    something read the pipe: a red-team run, 2026-12-01)."""
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        if not devices:
            raise OSError(errno.EINVAL, "not a file (a folder, a device or a pipe)")
        yield Path(path)
        return
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)  # (_temporary_name)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "r+b") as fh:  # (Windows flushes a file open for writing only)
            os.fsync(fh.fileno())
        if target.exists():  # its mode, and (for root, who may) its owner
            old = os.stat(target)
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                os.chown(tmp, old.st_uid, old.st_gid)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: str | bytes, devices: bool = True) -> None:
    """Write ``data`` (a str as UTF-8) to ``path`` whole or not at all (:func:`replacing`)."""
    with replacing(path, devices) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
