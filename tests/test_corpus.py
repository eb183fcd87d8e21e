
import pytest

from improv.corpus import DataError, find_midi_files, load_corpus, split_for_piece, tutorial_files
from tests.conftest import DATA, write_midi


def test_folder_is_searched_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_midi(tmp_path / "a" / "one.mid", [(60, 0, 1, 90)])
    write_midi(tmp_path / "a" / "b" / "two.MIDI", [(62, 0, 1, 90)])
    (tmp_path / "notes.txt").write_text("not midi")
    files = find_midi_files(tmp_path)
    assert sorted(f.path.name for f in files) == ["one.mid", "two.MIDI"]
    assert all(f.split in ("train", "validation", "test") for f in files)


@pytest.mark.corpus
def test_split_is_deterministic_and_by_piece():
    files = find_midi_files(DATA / "maestro-asap")
    again = find_midi_files(DATA / "maestro-asap")
    assert [f.split for f in files] == [f.split for f in again]
    by_piece = {}
    for f in files:
        by_piece.setdefault(f.piece, set()).add(f.split)
    assert all(len(s) == 1 for s in by_piece.values()), "a piece is split across sets"
    assert len(by_piece) < len(files)  # several performances share a piece
    assert {f.split for f in files} == {"train", "validation", "test"}


@pytest.mark.corpus
def test_same_piece_same_split_across_sources():
    pieces = {}
    for src in ("maestro-asap", "asap-ecompetition"):
        for f in find_midi_files(DATA / src):
            pieces.setdefault(f.piece, set()).add(f.split)
    assert all(len(s) == 1 for s in pieces.values())


def test_split_rule_proportions():
    splits = [split_for_piece(f"piece {i}") for i in range(5000)]
    assert 0.08 < splits.count("validation") / 5000 < 0.12
    assert 0.08 < splits.count("test") / 5000 < 0.12


def test_maestro_csv_split_column(tmp_path):
    write_midi(tmp_path / "x.midi", [(60, 0, 1, 90)])
    write_midi(tmp_path / "y.midi", [(62, 0, 1, 90)])
    (tmp_path / "maestro.csv").write_text(
        "canonical_composer,canonical_title,split,midi_filename\n"
        "Bach,Fugue,train,x.midi\nBach,Prelude,validation,y.midi\n")
    files = find_midi_files(tmp_path / "maestro.csv")
    assert [(f.path.name, f.split, f.piece) for f in files] == [
        ("x.midi", "train", "Bach/Fugue"), ("y.midi", "validation", "Bach/Prelude")]


def test_bad_csv_split(tmp_path):
    (tmp_path / "m.csv").write_text("midi_filename,split\nx.mid,holdout\n")
    with pytest.raises(DataError, match="unknown split 'holdout'"):
        find_midi_files(tmp_path / "m.csv")


def test_no_midi_and_missing_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no MIDI files"):
        find_midi_files(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        find_midi_files(tmp_path / "absent")


def test_unreadable_files_are_skipped_and_counted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IMPROV_CACHE", str(tmp_path / "cache"))
    write_midi(tmp_path / "good.mid", [(60, 0, 1, 90), (64, 1, 2, 90)])
    (tmp_path / "corrupt.mid").write_bytes(b"MThd\x00\x00garbage")
    (tmp_path / "empty.mid").write_bytes(b"")
    write_midi(tmp_path / "drums.mid", [(36, 0, 0.1, 100)], drum=True)
    corpus = load_corpus(find_midi_files(tmp_path), progress=False)
    assert [f.path.name for f in corpus.files] == ["good.mid"]
    assert sorted(p.name for p, _ in corpus.skipped) == ["corrupt.mid", "drums.mid", "empty.mid"]
    assert corpus.summary()["skipped"] == 3
    assert capsys.readouterr().err.count("warning: skipped") == 3


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPROV_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "d"
    src.mkdir()
    write_midi(src / "a.mid", [(60, 0, 1, 90)])
    first = load_corpus(find_midi_files(src), progress=False)
    assert len(list((tmp_path / "cache" / "notes").glob("*.npy"))) == 1
    write_midi(src / "a.mid", [(60, 0, 1, 90), (61, 1, 2, 90)])  # new size: new key
    second = load_corpus(find_midi_files(src), progress=False)
    assert first.n_notes == 1 and second.n_notes == 2


@pytest.mark.corpus
def test_tutorial_files_are_the_first_training_files():
    files = tutorial_files(DATA / "maestro-asap", 5)
    assert len(files) == 5 and all(f.split == "train" for f in files)
    assert all("Bach/Fugue" in f.path.as_posix() for f in files)


@pytest.mark.parametrize("content", [b"midi_filename,split\n\xff\xfe.mid,train\n",
                                     b"midi_filename,canonical_composer,canonical_title\n"
                                     b"a.mid\n"])
def test_a_damaged_csv_is_one_line(tmp_path, content):
    csv_path = tmp_path / "list.csv"
    csv_path.write_bytes(content)
    with pytest.raises(DataError, match="list.csv"):
        find_midi_files(csv_path)


@pytest.mark.parametrize("damage", [b"\x93NUMPY damaged", b""])
def test_a_damaged_cache_entry_is_read_again(tmp_path, monkeypatch, real_midi, damage):
    from improv.corpus import MidiFile

    monkeypatch.setenv("IMPROV_CACHE", str(tmp_path / "cache"))
    files = [MidiFile(real_midi, "Bach/Fugue", "train", "test")]
    first = load_corpus(files, workers=1, progress=False)
    (entry,) = (tmp_path / "cache").rglob("*.npy")
    entry.write_bytes(damage)
    again = load_corpus(files, workers=1, progress=False)
    assert len(again.files) == 1 and (again.notes[0] == first.notes[0]).all()


def test_a_row_of_empty_fields_is_skipped(tmp_path, real_midi):
    import shutil

    shutil.copy(real_midi, tmp_path / "a.mid")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("midi_filename,split\na.mid,test\n,\n")
    (only,) = find_midi_files(csv_path)
    assert only.split == "test"
