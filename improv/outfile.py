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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from improv.errors import ImprovError, InvalidValueError, MissingFileError


class WriteError(ImprovError, OSError):
    """A file that could not be written (a full disk, a file-size limit, ``/dev/full``):
    one line, the old file left as it was (:func:`replacing`). ``done``: what the command
    did write before it, said after the error."""

    def __init__(self, path: str | Path, error: OSError, done: str = ""):
        super().__init__(error.errno, error.strerror or str(error))
        self.path, self.done = path, done

    def __str__(self) -> str:
        return (f"{self.path}: could not be written ({self.strerror})"
                + (f"; {self.done}" if self.done else ""))


#: Bytes :func:`replacing`'s temporary name adds to a file's name and suffix:
#: ``.NAME.XXXXXXXX.tmpSUFFIX`` (mkstemp's random part is 8 characters).
TEMPORARY_EXTRA = len(".." + "X" * 8 + ".tmp")


def check_outputs(*paths: str | Path | None, also: tuple[str | Path, ...] = (),
                  reads: Mapping[str, str | Path | None]
                  | Iterable[tuple[str, str | Path]] = ()) -> None:
    """Refuse (one line each) an output whose folder is missing, one that is a folder, one
    that cannot be written there (permission, a read-only file system, a name too long for
    its temporary file), and a path named twice; None entries are outputs not asked for.
    ``also``: files a command writes besides (a memory file's lock): an output named as
    one of them is refused too. ``reads``: files the command reads, by what they are ("the
    seed": a path or None; or such pairs): an output that is one of them, by any name, is
    refused (a red-team run, 2026-12-02: ``generate --seed s.mid --wav s.mid`` replaced the
    seed with the WAV; ``evaluate --json`` a data file or the model's own)."""
    seen: dict[Path, Path] = {Path(os.path.realpath(p)): Path(p) for p in also}
    reads = [(what, read) for what, read in (reads.items() if isinstance(reads, Mapping)
                                             else reads) if read]
    for path in paths:
        if path is None or path == "":
            continue
        path = Path(path)
        if path.is_dir():
            raise InvalidValueError(f"{path}: a folder, not a file to write")
        for what, read in reads if path.is_file() else ():
            if _same_file(path, read):
                raise InvalidValueError(f"{path}: that is {what} ({read}), which improv reads; "
                                        "name another file to write")
        if not path.resolve().parent.is_dir():
            raise MissingFileError(f"{path}: no such folder {path.parent}")
        if path.exists() and not path.is_file():  # a device, a pipe, /dev/stdout: written
            continue  # into as they are (replacing)
        key = Path(os.path.realpath(path))
        if not os.access(key.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            why = "a read-only file system" if _read_only(key.parent) else "permission denied"
            raise InvalidValueError(f"{path}: cannot be written here ({why})")
        longest = _name_max(key.parent) - TEMPORARY_EXTRA - len(os.fsencode(key.suffix))
        if len(os.fsencode(key.name)) > longest:
            # (found only at the end, it lost the work: a red-team run, 2026-12-01)
            raise InvalidValueError(f"{path}: too long a name to write safely here (at most "
                                    f"{longest} bytes)")
        if key in seen:
            raise InvalidValueError(f"{path}: named for two outputs (the second would "
                                    f"replace the first)")
        seen[key] = path


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file (a link, a hard link, another spelling)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is missing: not one file
        return False


def _name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes (255 where the
    system cannot say: Windows has no pathconf)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return 255


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only (False where the system
    cannot say)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


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
        try:
            yield Path(path)
        except OSError as exc:  # /dev/full
            raise _write_error(path, exc) from exc
        return
    target = Path(os.path.realpath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}",
                                   dir=target.parent)  # (TEMPORARY_EXTRA)
    except OSError as exc:
        raise _write_error(path, exc) from exc
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
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a file-size limit: one line, not a bug
            raise _write_error(path, exc) from exc
        raise


def _write_error(path: str | Path, error: OSError) -> OSError:
    """``error`` as a :class:`WriteError` of ``path`` (one of improv's own as it is)."""
    return error if isinstance(error, ImprovError) else WriteError(path, error)


def write_atomically(path: str | Path, data: str | bytes, devices: bool = True) -> None:
    """Write ``data`` (a str as UTF-8) to ``path`` whole or not at all (:func:`replacing`)."""
    with replacing(path, devices) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
