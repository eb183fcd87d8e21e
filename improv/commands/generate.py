"""``improv generate``: continue a seed MIDI file and write the result."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

from improv.commands.common import add_memory, add_sampling, make_sampler, memory_strength
from improv.errors import InvalidValueError
from improv.filelock import FileLock
from improv.outfile import WriteError, check_outputs
from improv.paths import default_model_dir

#: Most notes one run generates (a day of playing at 10 notes a second is 864,000).
MAX_NOTES = 1_000_000


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="continue a seed MIDI file and write the result",
                       description="Continue a seed (a MIDI file, or the built-in excerpt) for N "
                       "notes; write a MIDI file and, with --wav, render it with FluidSynth.")
    p.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    p.add_argument("--seed", type=Path, help="MIDI file to continue (default: built-in excerpt)")
    p.add_argument("-n", "--notes", type=int, default=120, help="notes to generate (default 120)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--wav", type=Path, help="also render to this WAV file")
    p.add_argument("--soundfont", type=Path, help="soundfont for --wav (default: see README)")
    p.add_argument("--include-seed", action="store_true", help="write the seed notes too")
    add_memory(p)
    add_sampling(p)


def command(args) -> int:
    from improv.engine import NoteModel
    from improv.generate import generate, seed_notes, timeline
    from improv.midifile import write_midi

    if not 1 <= args.notes <= MAX_NOTES:
        raise InvalidValueError(f"--notes must be 1-{MAX_NOTES:,}, got {args.notes}")
    sampler = make_sampler(args)
    soundfont = None
    # (and not the memory file's lock: an output of that name would be removed with it)
    check_outputs(args.output, args.wav, args.memory_file,
                  also=(FileLock(args.memory_file).lock_path,) if args.memory_file else (),
                  reads={"the seed": args.seed})
    if args.wav:
        from improv.soundfont import find_soundfont

        soundfont = find_soundfont(args.soundfont)  # fail before generating, not after
    from improv.memory import MemoryFileError, check_memory_file, open_memory

    strength = memory_strength(args)
    model = NoteModel.load(args.model or default_model_dir())
    seed = seed_notes(args.seed)
    memory_file = args.memory_file or None  # "" as in run and the config: no file
    # (held to the end: a session using the file would write over what this learns)
    if memory_file:
        check_memory_file(memory_file)
    with FileLock(memory_file) if memory_file else nullcontext():
        memory = open_memory(memory_file, lambda line: print(f"improv: {line}",
                                                             file=sys.stderr))
        new = generate(model, sampler, seed, args.notes, memory, strength)
        pitch, start, end, velocity = timeline(seed, new, args.include_seed)
        written = write_midi(args.output, pitch, start, end, velocity)  # what was asked first
        if memory_file:
            try:
                memory.save(memory_file)
            except OSError as exc:
                raise MemoryFileError(f"{memory_file}: could not be written "
                                      f"({exc.strerror or exc}); {args.output} was written") \
                    from None
    notes = written.instruments[0].notes  # (a note shorter than a tick is not written)
    count = f"{len(notes)} note" + ("" if len(notes) == 1 else "s")
    print(f"wrote {args.output} ({count}, {written.get_end_time():.1f} s)")
    if args.wav:
        import numpy as np

        from improv.synth import peak_dbfs, render_normalised, write_wav

        # the notes the MIDI file holds (at their times before rounding to its ticks): a
        # note shorter than a tick is neither written nor heard
        pitch, start, end, velocity = (np.array([getattr(n, f) for n in notes]) for f in
                                       ("pitch", "start", "end", "velocity"))
        audio = render_normalised(pitch, start, end, velocity, soundfont)
        try:
            write_wav(args.wav, audio)
        except WriteError as exc:
            raise WriteError(args.wav, exc, f"{args.output} was written") from None
        print(f"wrote {args.wav} (soundfont {soundfont}, peak {peak_dbfs(audio):.1f} dBFS)")
    return 0
