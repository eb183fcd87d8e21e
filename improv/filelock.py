"""One improv at a time on a file: a lock beside it, held while a command works on it.

Two improvs sharing a ``--memory-file`` each wrote what they had learned over the other's
when they stopped: the last to stop won and the other's learning was gone without a word
(a red-team run, 2026-12-01; ``improv generate`` or ``improv memory clear`` against a
running session's file did the same). So ``improv run``, ``improv generate`` and ``improv
memory clear`` hold a :class:`FileLock` on the file for as long as they work on it, and a
second one is refused with one line that names the holder's process.

The lock is an advisory ``flock`` on a hidden file beside the one it guards,
``.NAME.lock``, which holds the holder's process id. The kernel drops it when the process
ends, a crash or ``kill -9`` included, so a stale lock never blocks (a killed process leaves
its file, which the next improv takes over); :meth:`FileLock.release` removes the file. A
lock path that is not a plain file (a symbolic link, which would have the process id written
through it into its target; a pipe; a folder) is refused, never opened through. Where
``fcntl`` is missing (Windows) nothing is locked.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from improv.errors import ImprovError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None


class FileLockError(ImprovError, OSError):
    """A file another process works on, or whose lock cannot be made."""


class FileLock:
    """An exclusive lock on ``path`` (the target of a symbolic link: both names share it);
    ``with FileLock(path):`` holds it for the block, :class:`FileLockError` if it is held."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        target = Path(os.path.realpath(path))
        self.lock_path = target.parent / f".{target.name}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FileLock:
        """Take the lock (once: taking it again is a no-op); FileLockError if another
        process holds it or the lock file cannot be made."""
        if self._fd is not None or fcntl is None:
            return self
        try:
            return self._acquire()
        except BaseException:  # a Ctrl-C or SIGTERM (improv.cli) midway: no lock left held
            self.release()  # (one taken: its file removed; else nothing to undo)
            raise

    def _acquire(self) -> FileLock:
        fd = None  # open and not yet ours (self._fd): closed if anything interrupts
        try:
            while True:
                try:
                    fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                                 | os.O_NONBLOCK, 0o644)
                except OSError as exc:
                    why = ("not a plain file" if exc.errno == errno.ELOOP  # a symbolic link
                           else exc.strerror or exc)
                    raise FileLockError(f"{self.path}: cannot lock it ({self.lock_path}: "
                                        f"{why})") from None
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # a pipe, a device
                    raise FileLockError(f"{self.path}: cannot lock it ({self.lock_path}: "
                                        "not a plain file)")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # BlockingIOError: held
                    raise FileLockError(f"{self.path}: in use by another improv"
                                        f"{_holder(fd)}; stop it first or use another "
                                        "file") from None
                # The holder before may have released it (and removed the file) between our
                # open and our flock: then ours is a lock on a file no one else will open.
                try:
                    mine, there = os.fstat(fd), os.stat(self.lock_path)
                    if (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev):
                        self._fd, fd = fd, None  # ours: release() undoes it from here on
                        break
                except FileNotFoundError:
                    pass
                fd, closing = None, fd
                os.close(closing)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        try:  # (only to name the holder: a second improv's message)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: no lock held, none leaked
            self.release()
            raise FileLockError(f"{self.path}: cannot lock it ({self.lock_path}: "
                                f"{exc.strerror or exc})") from None
        return self

    def release(self) -> None:
        """Give the lock up and remove its file (a no-op if it is not held)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_path)  # removed while held: no one can take it meanwhile
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    """' (process N)' from a held lock file, or '' if it says nothing readable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""
