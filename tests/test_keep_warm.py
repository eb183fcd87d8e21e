"""The live loop's idle turns keep the next note's path warm (Improviser.keep_warm): they
change nothing improv plays, and they stop when the player does."""

from __future__ import annotations

import mido
import pytest

from improv.engine import NoteModel
from improv.improviser import KEEP_WARM_EVERY, KEEP_WARM_FOR, Improviser, Settings
from improv.paths import MODELS_DIR, default_model_dir
from improv.sampling import Sampler
from improv.scheduler import Scheduler

CALL = [60, 64, 67, 72, 71, 67, 64, 62]


def _session(model_dir, warm_every: float | None):
    """Play CALL (a note every 0.25 s) and let the silence end it; with ``warm_every``,
    call keep_warm that often in between, as the live loop's idle turns do. Return what
    improv played (who, pitch, start, end, velocity) and how often the memory was read."""
    played = []
    reads = []
    scheduler = Scheduler(lambda msg: None)
    improv = Improviser(NoteModel.load(model_dir), Sampler(seed=3), scheduler,
                        Settings(silence=0.5, answer_notes=16, memory=0.5),
                        on_note=lambda n, who: played.append(
                            (who, n.pitch, round(n.start, 6), round(n.end, 6), n.velocity)))
    keep_warm = improv.memory.keep_warm
    improv.memory.keep_warm = lambda: (reads.append(1), keep_warm())[1]
    t = 100.0

    def idle(until: float) -> None:
        nonlocal t
        while t < until:
            if warm_every is not None:
                improv.keep_warm(t)
            t = round(t + (warm_every or 0.01), 6)

    for pitch in CALL:
        improv.handle(mido.Message("note_on", note=pitch, velocity=80), t)
        idle(t + 0.2)
        improv.handle(mido.Message("note_off", note=pitch), t)
        idle(t + 0.05)
    idle(t + 1.0)
    improv.tick(t)  # the silence ends the call: the answer is drawn now
    improv.close()
    return played, len(reads)


@pytest.mark.parametrize("model_dir", [default_model_dir(), MODELS_DIR / "tutorial-5files"],
                         ids=["streaming", "window"])
def test_keeping_warm_changes_nothing_improv_plays(model_dir):
    cold, none = _session(model_dir, None)
    warm, reads = _session(model_dir, KEEP_WARM_EVERY / 2)
    assert none == 0
    assert sum(who == "improv" for who, *_ in cold) == 16
    assert warm == cold  # the same notes, times and velocities: the same random draws
    assert reads > 0


def test_it_is_done_at_most_every_keep_warm_every_and_stops_after_the_silence():
    improv_reads = []
    improv = Improviser(NoteModel.load(default_model_dir()), Sampler(seed=0),
                        Scheduler(lambda msg: None), Settings(silence=60))
    improv.sampler.keep_warm = lambda logits, key: improv_reads.append(1)
    improv.keep_warm(1.0)
    assert improv_reads == []  # nothing heard yet: nothing to keep warm
    improv.handle(mido.Message("note_on", note=60, velocity=80), 1.0)
    improv.handle(mido.Message("note_off", note=60), 1.1)
    steps = 1000
    for i in range(steps):  # 100 x KEEP_WARM_EVERY, in steps of a tenth of it
        improv.keep_warm(1.1 + i * KEEP_WARM_EVERY / 10)
    assert 0.9 * steps / 10 <= len(improv_reads) <= steps / 10 + 1
    before = len(improv_reads)
    assert improv.playing(1.1 + KEEP_WARM_FOR - 0.01)
    assert not improv.playing(1.1 + KEEP_WARM_FOR + 0.01)
    for i in range(100):  # silence for longer than KEEP_WARM_FOR: nothing more
        improv.keep_warm(1.1 + KEEP_WARM_FOR + 0.01 + i * KEEP_WARM_EVERY)
    assert len(improv_reads) == before
    improv.close()
