"""Find MIDI files, split them by piece, and load their notes (with a cache).

A data source is a folder of ``.mid``/``.midi`` files (searched recursively) or
a MAESTRO-style CSV. Files are grouped into pieces so that one composition
never lands in two splits: an ASAP-style ``metadata.csv`` next to the files
(columns ``composer``, ``title``, ``midi_performance``) or a MAESTRO CSV
(``canonical_composer``, ``canonical_title``, ``midi_filename``) names the
piece of each file; otherwise every file is its own piece. A CSV ``split``
column is used as given; else the split follows a hash of the piece name, so
it does not depend on which other files are present.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import multiprocessing
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from improv.errors import ImprovError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MIDI_SUFFIXES = (".mid", ".midi")
#: Share of pieces (by hash bucket out of 100) in validation and test.
VALIDATION_PERCENT = 10
TEST_PERCENT = 10
_CACHE_VERSION = "1"


class DataError(ImprovError, ValueError):
    """A data source is missing, empty or malformed."""


@dataclass(frozen=True)
class MidiFile:
    """One MIDI file of a data source and the split its piece belongs to."""

    path: Path
    piece: str
    split: str
    source: str


@dataclass
class Corpus:
    """Notes of many files; ``notes[i]`` is an ``(n, 4)`` array of
    pitch, step, duration, velocity for ``files[i]``."""

    files: list[MidiFile] = field(default_factory=list)
    notes: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def split(self, name: str) -> "Corpus":
        """Return the part of the corpus in split ``name``."""
        keep = [i for i, f in enumerate(self.files) if f.split == name]
        return Corpus([self.files[i] for i in keep], [self.notes[i] for i in keep], [])

    @property
    def n_notes(self) -> int:
        return int(sum(len(n) for n in self.notes))

    def summary(self) -> dict:
        """Count files and notes per split and skipped files."""
        out = {}
        for name in SPLITS:
            part = self.split(name)
            out[name] = {"files": len(part.files), "pieces": len({f.piece for f in part.files}),
                         "notes": part.n_notes}
        out["skipped"] = len(self.skipped)
        return out


def split_for_piece(piece: str) -> str:
    """Return the split of ``piece`` from a stable hash of its name."""
    # (a file name that is not UTF-8 comes as surrogates: hashed as its own bytes)
    bucket = int(hashlib.sha1(piece.encode("utf-8", "surrogateescape")).hexdigest(), 16) % 100
    if bucket < VALIDATION_PERCENT:
        return "validation"
    if bucket < VALIDATION_PERCENT + TEST_PERCENT:
        return "test"
    return "train"


def _piece_name(composer: str, title: str) -> str:
    # ASAP lists "Toccata_repeat" and "Toccata" as the same composition.
    title = re.sub(r"_(no_)?repeat$", "", title)
    return f"{composer}/{title}"


def _normalise_split(value: str, where: str) -> str:
    value = value.strip().lower()
    value = {"valid": "validation", "val": "validation", "dev": "validation"}.get(value, value)
    if value not in SPLITS:
        raise DataError(f"{where}: unknown split {value!r} (expected one of {', '.join(SPLITS)})")
    return value


def _files_from_csv(csv_path: Path, source: str) -> list[MidiFile]:
    root = csv_path.parent
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as exc:
        raise DataError(f"{csv_path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{csv_path}: not a CSV file ({exc})") from None
    if not rows:
        raise DataError(f"{csv_path}: no rows")
    cols = rows[0].keys()
    path_col = next((c for c in ("midi_filename", "midi_performance") if c in cols), None)
    if path_col is None:
        raise DataError(f"{csv_path}: needs a 'midi_filename' or 'midi_performance' column")
    comp_col = next((c for c in ("canonical_composer", "composer") if c in cols), None)
    title_col = next((c for c in ("canonical_title", "title") if c in cols), None)
    files = []
    for i, row in enumerate(rows, start=2):
        if not any(row.values()):  # a row of empty fields, as spreadsheets leave at the end
            continue
        if None in row.values() or not row[path_col]:  # a short row, or no file in it
            raise DataError(f"{csv_path}:{i}: fewer columns than the header, or no file")
        rel = row[path_col]
        piece = _piece_name(row[comp_col], row[title_col]) if comp_col and title_col else rel
        piece = f"{source}:{piece}" if not (comp_col and title_col) else piece
        split = (_normalise_split(row["split"], f"{csv_path}:{i}") if row.get("split")
                 else split_for_piece(piece))
        files.append(MidiFile(root / rel, piece, split, source))
    return files


def find_midi_files(source: str | Path) -> list[MidiFile]:
    """List the MIDI files of a folder or CSV, each with its piece and split."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    name = source.stem if source.is_file() else source.name
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise DataError(f"{source}: expected a folder of MIDI files or a CSV")
        files = _files_from_csv(source, name)
    else:
        on_disk = sorted(p for p in source.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES
                         and p.is_file())
        listed = {}
        meta = source / "metadata.csv"
        if meta.is_file():
            try:
                listed = {f.path.resolve(): f for f in _files_from_csv(meta, name)}
            except DataError as exc:  # the files are still there: split by their names
                logger.warning("improv: warning: %s; ignored, so the pieces and splits come "
                               "from the file names", exc)
                listed = {}
        files = []
        for p in on_disk:
            known = listed.get(p.resolve())
            if known is None:
                piece = f"{name}:{p.relative_to(source).as_posix()}"
                known = MidiFile(p, piece, split_for_piece(piece), name)
            files.append(known)
    if not files:
        raise DataError(f"{source}: no MIDI files (.mid/.midi) found")
    return files


def _cache_dir() -> Path:
    base = os.environ.get("IMPROV_CACHE") or Path.home() / ".cache" / "improv"
    path = Path(base) / "notes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_key(path: Path) -> str:
    st = path.stat()
    ident = f"{_CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(ident.encode()).hexdigest()


def note_array(notes) -> np.ndarray:
    """Return a note table's (pitch, step, duration, velocity) as float32 ``(n, 4)``."""
    return notes[["pitch", "step", "duration", "velocity"]].to_numpy(np.float32)


def _load_one(path: Path) -> tuple[np.ndarray | None, str | None]:
    from improv.notetable import MidiReadError, midi_to_notes

    try:
        cached = _cache_dir() / f"{_cache_key(path)}.npy"
        if cached.exists():
            try:
                return np.load(cached), None
            except (ValueError, EOFError, OSError):  # a damaged or empty cache entry (a
                pass  # crash before it reached the disk): read the MIDI file again
        arr = note_array(midi_to_notes(path))
        tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, cached)
        return arr, None
    except (MidiReadError, OSError) as exc:
        return None, str(exc)


def load_corpus(files: list[MidiFile], workers: int | None = None,
                progress: bool = True) -> Corpus:
    """Parse ``files`` (cached by path, size and mtime); skip unreadable ones with a warning."""
    from tqdm import tqdm

    workers = workers or min(4, os.cpu_count() or 1)
    corpus = Corpus()
    paths = [f.path for f in files]
    bar = dict(total=len(paths), desc="Reading MIDI", unit="file", disable=not progress,
               file=sys.stderr)
    if workers > 1 and len(paths) > 8:
        # spawn, not fork: forking a process that runs other threads (TensorFlow's, a MIDI
        # client's) can leave a child stuck on a lock that was held at the fork
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers) as pool:
            results = list(tqdm(pool.imap(_load_one, paths, chunksize=4), **bar))
    else:
        results = [_load_one(p) for p in tqdm(paths, **bar)]
    for f, (arr, err) in zip(files, results, strict=True):
        if arr is None:
            corpus.skipped.append((f.path, err))
            logger.warning("warning: skipped %s", err)
        else:
            corpus.files.append(f)
            corpus.notes.append(arr)
    return corpus


def tutorial_files(source: str | Path, count: int = 5) -> list[MidiFile]:
    """Return the first ``count`` training files in path order, as the tutorial takes
    ``filenames[:5]``."""
    train = [f for f in find_midi_files(source) if f.split == "train"]
    return sorted(train, key=lambda f: str(f.path))[:count]
