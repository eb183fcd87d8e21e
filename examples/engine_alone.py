"""The engine alone: load a model, let it hear a phrase, and draw what comes next.

No ports, no threads, no TensorFlow: the NumPy engine (improv.engine) predicts one note
at a time and a Sampler draws from each prediction.

    python examples/engine_alone.py [NOTES]
"""

import sys

import pretty_midi

from improv.engine import NoteModel
from improv.paths import default_model_dir
from improv.sampling import Sampler


def main(count: int = 16) -> None:
    model = NoteModel.load(default_model_dir())
    sampler = Sampler(seed=1)  # the same seed draws the same notes
    # C major, up and down: (pitch, step, duration, velocity) as improv.features defines
    prediction = model.feed_many([(p, 0.25, 0.2, 80) for p in (60, 62, 64, 65, 67, 65, 64, 62)])
    for _ in range(count):
        # model.struck: the notes just struck, whose pitches a note drawn that close avoids
        pitch, step, duration = sampler.sample(prediction, struck=model.struck)
        velocity = sampler.velocity(prediction) or 80
        print(f"{pretty_midi.note_number_to_name(pitch):>4}  step {step:.3f} s  "
              f"held {duration:.3f} s  velocity {velocity}")
        prediction = model.feed(pitch, step, duration, velocity)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
