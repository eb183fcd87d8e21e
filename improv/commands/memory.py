"""``improv memory show|clear FILE``: look at or empty a memory file (see improv.memory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from improv.filelock import FileLock
from improv.memory import MemoryFileError, NotMemoryFileError, PhraseMemory, check_memory_file


def add_parser(sub) -> None:
    p = sub.add_parser("memory", help="show or clear a phrase memory file",
                       description="A memory file (--memory-file of run and generate) keeps "
                       "what improv learned of a player across sessions. 'show' prints what "
                       "it holds; 'clear' empties it (the file stays, valid and empty).")
    p.add_argument("action", choices=("show", "clear"))
    p.add_argument("file", type=Path, help="the memory file")


def command(args: argparse.Namespace) -> int:
    if args.action == "clear":
        check_memory_file(args.file)  # a folder, a device, a missing folder: one line
        with FileLock(args.file):  # not under a session that would write it back
            if args.file.exists():
                try:
                    PhraseMemory.load(args.file)
                except NotMemoryFileError:  # a MIDI file named by mistake: left alone
                    raise
                except MemoryFileError as exc:  # a damaged file is cleared too, and said so
                    print(f"{exc}; replacing it with an empty memory")
            try:
                PhraseMemory().save(args.file)
            except OSError as exc:
                raise MemoryFileError(f"{args.file}: could not be written "
                                      f"({exc.strerror or exc})") from None
        print(f"cleared {args.file}")
        return 0
    memory = PhraseMemory.load(args.file)  # MemoryFileError: one line, exit 1
    info = memory.describe()
    print(f"{args.file}: {info['notes_player']} notes of the player's and "
          f"{info['notes_own']} of improv's learned; {info['contexts']} contexts "
          f"(longest {info['longest_context']} notes, at most {info['max_order']}); "
          f"typical gap {info['typical_gap_s']:.3f} s")
    return 0
