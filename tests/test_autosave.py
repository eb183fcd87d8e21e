"""The memory file written during a session (improv.autosave), a few contexts a turn."""

import json

import numpy as np
import pytest

from improv.autosave import CONTEXTS_PER_TURN, MemoryAutosave
from improv.memory import PhraseMemory


def _learned(notes: int, seed: int = 0) -> PhraseMemory:
    """A memory that heard a random walk of ``notes`` notes (many contexts)."""
    memory, rng, pitch = PhraseMemory(), np.random.default_rng(seed), 60
    for _ in range(notes):
        pitch = int(np.clip(pitch + rng.integers(-7, 8), 30, 100))
        memory.learn(pitch, float(rng.choice([0.0, 0.1, 0.25])), 0.3)
    return memory


def _text(memory: PhraseMemory) -> str:
    return json.dumps(memory.to_dict(), separators=(",", ":"))


def test_the_text_is_made_a_chunk_at_a_time_and_is_the_file_save_writes(tmp_path):
    memory = _learned(2000)
    contexts = len(memory)
    assert contexts > 5 * CONTEXTS_PER_TURN
    text = memory.file_text(CONTEXTS_PER_TURN)
    yields = 0
    while True:
        try:
            next(text)
            yields += 1
        except StopIteration as done:
            made = done.value
            break
    assert yields == contexts // CONTEXTS_PER_TURN
    assert made == _text(memory)
    memory.save(tmp_path / "m.json")
    assert (tmp_path / "m.json").read_text() == made
    empty = PhraseMemory()
    with pytest.raises(StopIteration) as done:
        next(empty.file_text(CONTEXTS_PER_TURN))
    assert done.value.value == _text(empty)


def test_it_writes_only_when_quiet_and_after_the_memory_learned(tmp_path):
    path = tmp_path / "m.json"
    memory = _learned(2000)
    saver = MemoryAutosave(memory, path, log=pytest.fail)
    saver.saved = -1  # as if the file were older than what the memory holds
    assert not any(saver.step(quiet=False) for _ in range(1000)) and not path.exists()
    turns = [saver.step(quiet=True) for _ in range(len(memory) // CONTEXTS_PER_TURN + 1)]
    assert turns[-1] and not any(turns[:-1])  # spread over the turns, written in the last
    assert path.read_text() == _text(memory) and saver.writes == 1
    assert not any(saver.step(quiet=True) for _ in range(100))  # nothing new: not again
    assert saver.writes == 1


def test_a_note_learned_while_it_encodes_starts_it_over(tmp_path):
    path = tmp_path / "m.json"
    memory = _learned(2000)
    saver = MemoryAutosave(memory, path, log=pytest.fail)
    saver.saved = -1
    for _ in range(3):
        assert not saver.step(quiet=True)
    memory.learn(61, 0.2, 0.2)  # the player plays: the iterator over the table is stale
    assert not saver.step(quiet=False)
    memory.learn(64, 0.2, 0.2)
    while not saver.step(quiet=True):
        pass
    kept = PhraseMemory.load(path)
    assert kept.notes == memory.notes == {"player": 2002, "own": 0}
    assert path.read_text() == _text(memory)


def test_a_failed_write_is_one_line_and_not_tried_again_until_it_learns(tmp_path):
    lines = []
    memory = _learned(50)
    saver = MemoryAutosave(memory, tmp_path / "gone" / "m.json", log=lines.append)
    saver.saved = -1
    assert not any(saver.step(quiet=True) for _ in range(20))
    assert len(lines) == 1 and "could not write the memory" in lines[0]
    memory.learn(60, 0.2, 0.2)
    assert not any(saver.step(quiet=True) for _ in range(20))
    assert len(lines) == 1  # said once
    (tmp_path / "gone").mkdir()
    memory.learn(62, 0.2, 0.2)
    assert any(saver.step(quiet=True) for _ in range(20))
    assert PhraseMemory.load(tmp_path / "gone" / "m.json").notes["player"] == 52
