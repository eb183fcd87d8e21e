"""Drive the Improviser from your own code: hand it messages with their times, let time
pass, and take its answer (here from its note callback; its scheduler would play it).

The clock is a FakeClock (improv.fakes), so the answer comes as fast as the model draws
it, the same every run; with time.monotonic and a real port it is the live daemon's core.

    python examples/drive_improviser.py
"""

import mido

from improv.engine import NoteModel
from improv.fakes import FakeClock, Sink
from improv.improviser import Improviser, Settings
from improv.paths import default_model_dir
from improv.sampling import Sampler
from improv.scheduler import Scheduler


def main() -> None:
    clock = FakeClock(0.0)
    answer = []
    improviser = Improviser(
        NoteModel.load(default_model_dir()), Sampler(seed=0),
        Scheduler(Sink(), clock=clock), Settings(silence=0.5, answer_notes=8),
        on_note=lambda note, who: answer.append(note) if who == "improv" else None,
        clock=clock)
    for i, pitch in enumerate((60, 64, 67, 72)):  # the call: a C major arpeggio
        improviser.handle(mido.Message("note_on", note=pitch, velocity=90), 0.25 * i)
        improviser.handle(mido.Message("note_off", note=pitch), 0.25 * i + 0.2)
    improviser.tick(2.0)  # 1.25 s of silence: the call is over, improv answers
    improviser.close()
    print(f"heard {improviser.notes_in} notes, answered {len(answer)}:")
    for note in answer:
        print(f"  pitch {note.pitch:3d} at {note.start:.2f} s for {note.duration:.2f} s, "
              f"velocity {note.velocity}")


if __name__ == "__main__":
    main()
