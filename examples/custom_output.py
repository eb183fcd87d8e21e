"""A custom output: anything with ``name``, ``send(msg)`` and ``close()`` can take improv's
notes (a port, FluidSynth, a logger, a light show). Here it prints the notes it plays,
in a whole live Session driven in-process: fake keys play a call, a fake clock lets the
silence pass, the Session answers into the custom output.

    python examples/custom_output.py
"""

import time

import pretty_midi

from improv.config import RunOptions
from improv.fakes import FakeClock, FakeKeys
from improv.improviser import Settings
from improv.session import Session


class PrintingOutput:
    """Print each note improv starts."""

    name = "printer"

    def __init__(self):
        self.notes = 0

    def send(self, msg) -> None:
        if msg.type == "note_on" and msg.velocity > 0:
            self.notes += 1
            print(f"improv plays {pretty_midi.note_number_to_name(msg.note)} "
                  f"(velocity {msg.velocity})")

    def close(self) -> None:
        print(f"output closed after {self.notes} notes")


def main() -> None:
    clock, keys, out = FakeClock(), FakeKeys(), PrintingOutput()
    options = RunOptions(random_seed=0, status=False,
                         settings=Settings(silence=0.5, answer_notes=6, gap=0.1))
    with Session(options, source=keys, outputs=[out], clock=clock) as session:
        for pitch in (62, 65, 69, 72):  # the call: D minor
            keys.note(pitch)
            session.step()
            clock.advance(0.2)
            keys.note(pitch, 0)
            session.step()
        while out.notes < 6:  # let the fake time pass until the answer has sounded
            clock.advance(0.005)
            session.step()
            time.sleep(0.005)  # real time, more or less: the scheduler's thread keeps up


if __name__ == "__main__":
    main()
