"""Keep the phrase memory's file up to date while improv runs.

``--memory-file`` is written when improv stops. A crash, a power cut or a ``kill -9`` would
lose everything learned since it started, so :class:`MemoryAutosave` also writes it during
the session: once the player has been silent for :data:`AUTOSAVE_AFTER` seconds and nothing
of improv's is queued or sounding, a few contexts a turn of the live loop
(:meth:`improv.memory.PhraseMemory.file_text`), then the whole file at once, atomically.
A note learned meanwhile starts it over at the next silence. (In continue mode improv
always has notes queued: there the file is written at exit only.)

Writing a full memory (100 000 counts, 44 000 contexts, a 2 MB file) in one go holds the
live loop for about 0.4 s; :data:`CONTEXTS_PER_TURN` at a time, about 0.5 ms a turn (4 ms
at most, measured 2026-11-30), and 3 ms for the write itself (fsync included, this disk).
"""

from __future__ import annotations

from pathlib import Path

from improv.memory import PhraseMemory, write_memory_file

#: Seconds of silence before the memory file is written (the keep-warm time is over by then:
#: improviser.KEEP_WARM_FOR).
AUTOSAVE_AFTER = 10.0
#: Contexts encoded per turn of the live loop.
CONTEXTS_PER_TURN = 100


class MemoryAutosave:
    """Write ``memory`` to ``path`` in the quiet turns of a session; ``log(text)`` hears
    of a failure (once, until a write succeeds again)."""

    def __init__(self, memory: PhraseMemory, path: str | Path, log=print):
        self.memory, self.path, self.log = memory, Path(path), log
        self.saved = memory.changes  # the state the file holds (read from it, or nothing)
        self.writes = 0
        self._text = None  # the file being encoded, a generator
        self._encoding = 0  # memory.changes when it started
        self._failed = False

    def step(self, quiet: bool) -> bool:
        """Do one turn's work; ``quiet``: the player has been silent long enough and nothing
        of improv's sounds. Return True when the file was written in this turn."""
        memory = self.memory
        if not quiet or memory.changes == self.saved:
            self._text = None
            return False
        if self._text is None or self._encoding != memory.changes:
            self._text, self._encoding = memory.file_text(CONTEXTS_PER_TURN), memory.changes
        try:
            next(self._text)
            return False
        except StopIteration as done:
            text = done.value
        self._text = None
        self.saved = self._encoding  # a failure is not tried again until the memory learns
        try:
            write_memory_file(self.path, text)
        except OSError as exc:
            if not self._failed:
                self.log(f"could not write the memory to {self.path}: {exc.strerror or exc}")
            self._failed = True
            return False
        self._failed = False
        self.writes += 1
        return True
