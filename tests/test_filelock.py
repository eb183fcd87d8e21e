"""One improv at a time on a memory file (improv.filelock): a second one is refused."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time

import pytest

from improv.cli import main
from improv.filelock import FileLock, FileLockError
from improv.memory import PhraseMemory
from tests.test_memory import MOTIF

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")

HOLD = ("import sys; from improv.filelock import FileLock; "
        "FileLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def learned(tmp_path):
    """A memory file that holds a motif."""
    memory = PhraseMemory()
    for i, pitch in enumerate(MOTIF):
        memory.learn(pitch, 0.25 if i else 0.0, 0.2)
    path = tmp_path / "me.json"
    memory.save(path)
    return path


@pytest.fixture
def holder(learned):
    """Another process holding the memory file's lock until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(learned)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    yield proc
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_lock_is_one_holders_and_goes_with_its_release(tmp_path):
    path = tmp_path / "m.json"
    first = FileLock(path).acquire()
    assert first.held and first.lock_path == tmp_path / ".m.json.lock"
    assert first.acquire() is first  # taking it again: a no-op
    with pytest.raises(FileLockError, match=r"m.json: in use by another improv \(process \d+\)"):
        FileLock(path).acquire()
    first.release()
    assert not first.held and not first.lock_path.exists()  # no file left behind
    with FileLock(path) as second:
        assert second.held
    assert not second.held
    first.release()  # a second release: a no-op


def test_a_link_and_its_target_share_one_lock(tmp_path):
    target = tmp_path / "m.json"
    (tmp_path / "link.json").symlink_to(target)
    with FileLock(target), pytest.raises(FileLockError, match="in use"):
        FileLock(tmp_path / "link.json").acquire()


def test_another_processs_lock_refuses_clear_and_generate_and_leaves_the_file(learned, holder,
                                                                              tmp_path, capsys):
    """Two improvs on one file: the last to write would silently undo the other's work."""
    before = learned.read_bytes()
    out = tmp_path / "o.mid"
    for args in (["memory", "clear", str(learned)],
                 ["generate", "-o", str(out), "-n", "5", "--memory-file", str(learned)]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by another improv (process {holder.pid})" in err
    assert learned.read_bytes() == before and not out.exists()
    assert main(["memory", "show", str(learned)]) == 0  # reading is fine


def test_a_running_sessions_file_is_refused_before_anything_opens(learned, holder):
    from improv.config import RunOptions
    from improv.fakes import FakeClock, FakeKeys, Sink
    from improv.improviser import Settings
    from improv.session import Session
    from tests.conftest import REPO

    sink = Sink("out")
    opts = RunOptions(model=str(REPO / "models" / "tutorial-5files"), status=False,
                      settings=Settings(memory_file=str(learned)))
    with pytest.raises(FileLockError, match="in use"):
        Session(opts, source=FakeKeys(), outputs=[sink], clock=FakeClock(),
                log=io.StringIO()).open()
    assert not sink.messages


def test_a_killed_holder_leaves_no_lock(learned, capsys):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(learned)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    assert main(["memory", "clear", str(learned)]) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert main(["memory", "clear", str(learned)]) == 0  # the kernel dropped the lock
    assert json.loads(learned.read_text())["notes"] == {"player": 0, "own": 0}


def test_the_improviser_holds_the_lock_until_it_has_written_the_file(learned):
    from improv.engine import NoteModel
    from improv.improviser import Improviser, Settings
    from improv.sampling import Sampler
    from improv.scheduler import Scheduler
    from tests.conftest import REPO

    def improviser():
        return Improviser(NoteModel.load(REPO / "models" / "tutorial-5files"), Sampler(),
                          Scheduler(lambda msg: None), Settings(memory_file=str(learned)))

    first = improviser()
    with pytest.raises(FileLockError, match="in use"):
        improviser()
    with pytest.raises(FileLockError, match="in use"):
        FileLock(learned).acquire()
    assert first.close()
    improviser().close()  # free again
    assert not FileLock(learned).lock_path.exists()


@pytest.mark.parametrize("kind", ["link", "pipe", "folder"])
def test_a_lock_path_that_is_no_plain_file_is_refused_and_not_written_through(learned, kind,
                                                                             capsys):
    """A link planted at the lock's path had the process id written into its target."""
    import os

    thesis = learned.parent / "thesis.txt"
    thesis.write_text("my precious thesis")
    lock = FileLock(learned).lock_path
    if kind == "link":
        lock.symlink_to(thesis)
    elif kind == "pipe":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    before = learned.read_bytes()
    assert main(["memory", "clear", str(learned)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot lock it" in err
    assert "not a plain file" in err or kind == "folder"
    assert thesis.read_text() == "my precious thesis" and learned.read_bytes() == before
    assert lock.is_symlink() or lock.exists()  # left for its owner to look at


def test_an_output_named_as_the_memory_files_lock_is_refused(learned, capsys):
    """Its release would remove the output that was reported as written."""
    lock = FileLock(learned).lock_path
    assert main(["generate", "-o", str(lock), "-n", "5", "--memory-file", str(learned)]) == 1
    assert "named for two outputs" in capsys.readouterr().err
    assert not lock.exists()


def test_a_lock_whose_pid_cannot_be_written_is_not_kept(learned, monkeypatch):
    """A full disk as the holder's pid is written: one line, and no lock left held."""
    import errno
    import os

    def full(fd, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    lock = FileLock(learned)
    with monkeypatch.context() as m:
        m.setattr(os, "ftruncate", full)
        with pytest.raises(FileLockError, match="cannot lock it .*No space left on device"):
            lock.acquire()
    assert not lock.held and not lock.lock_path.exists()
    with FileLock(learned):  # free
        pass


def test_a_recording_named_as_the_memory_files_lock_is_refused(learned):
    from improv.config import RunOptions
    from improv.fakes import FakeClock, FakeKeys, Sink
    from improv.improviser import Settings
    from improv.session import Session
    from tests.conftest import REPO

    opts = RunOptions(model=str(REPO / "models" / "tutorial-5files"), status=False,
                      record=str(FileLock(learned).lock_path),
                      settings=Settings(memory_file=str(learned)))
    with pytest.raises(ValueError, match="named for two outputs"):
        Session(opts, source=FakeKeys(), outputs=[Sink("out")], clock=FakeClock(),
                log=io.StringIO()).open()


def test_the_longest_memory_file_name_that_can_be_written_is_taken(tmp_path, capsys):
    """The lock's name is checked only against the outputs' names: a 236-byte memory file
    name (its temporary file's name is 255 bytes) was refused by generate alone."""
    path = tmp_path / ("a" * 231 + ".json")
    out = tmp_path / "o.mid"
    assert main(["generate", "-o", str(out), "-n", "5", "--memory-file", str(path)]) == 0
    assert PhraseMemory.load(path).notes["own"] == 5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_generate_ended_by_a_signal_gives_its_lock_back_and_writes_nothing(learned, tmp_path,
                                                                           sig):
    """``timeout``, a closed terminal: SIGTERM and SIGHUP end an offline command as Ctrl-C
    does (improv.cli). They killed it where it stood, its lock file left behind."""
    before = learned.read_bytes()
    lock = FileLock(learned).lock_path
    out = tmp_path / "long.mid"
    # (under nohup, as a CI run may be, SIGHUP is ignored, and improv leaves an ignored one
    # alone: the child starts with the default, as from a terminal)
    proc = subprocess.Popen([sys.executable, "-m", "improv", "generate", "-o", str(out),
                             "--notes", "1000000", "--memory-file", str(learned)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    def taken() -> bool:  # the lock file names its holder once the lock is taken
        try:
            return lock.read_text() == f"{proc.pid}\n"
        except OSError:
            return False

    try:  # the lock is taken once the model is loaded; a million notes take minutes
        deadline = time.monotonic() + 60
        while not taken() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert taken(), proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert err == f"improv: stopped by {sig.name}\n"
    assert not lock.exists()
    assert learned.read_bytes() == before and not out.exists()


@pytest.mark.parametrize("step", ["stat", "ftruncate"])
def test_a_lock_interrupted_while_taken_is_not_left_held(learned, monkeypatch, step):
    """A Ctrl-C or SIGTERM (raised as KeyboardInterrupt) between the flock and the end of
    acquire(): the flock stayed held on a file descriptor nothing would close (and, once
    taken, the lock file stayed), so the next command was refused while this one lived."""
    import improv.filelock as filelock

    real = getattr(filelock.os, step)
    calls = []

    def interrupted(*args, **kwargs):
        if not calls:
            calls.append(args)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    lock = FileLock(learned)
    monkeypatch.setattr(filelock.os, step, interrupted)
    with pytest.raises(KeyboardInterrupt):
        lock.acquire()
    monkeypatch.undo()
    assert calls and not lock.held
    if step == "ftruncate":  # it was ours by then: its file goes with it
        assert not lock.lock_path.exists()
    with FileLock(learned) as again:  # not refused: nothing holds it
        assert again.held
