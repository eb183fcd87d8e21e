"""What a training run is given, checked before TensorFlow's import: the config's ranges, the
replicas, the model folder and the checkpoint folder (no TensorFlow: the fast tier)."""

import json
import sys

import pytest

from improv.cli import main
from improv.errors import InvalidValueError
from improv.trainconfig import (
    MAX_SEED,
    TrainConfig,
    check_checkpoints,
    check_model_folder,
    check_replicas,
)


@pytest.mark.parametrize("changes,message", [
    ({"seed": -1}, "seed must be 0-4294967295, got -1"),
    ({"seed": 99999999999999}, "seed must be 0-4294967295"),
    ({"batch_size": 100000000}, "batch_size must be at most 65536")])
def test_seed_and_batch_size_ranges(changes, message):
    with pytest.raises(InvalidValueError, match=message):
        TrainConfig(**changes)
    assert TrainConfig(seed=MAX_SEED, batch_size=65536).seed == MAX_SEED


def test_more_replicas_than_a_batch_is_refused():
    check_replicas(16, 16)
    with pytest.raises(InvalidValueError, match="100 replicas need a batch of at least 100"):
        check_replicas(100, 16)


def test_model_folder_destinations(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidValueError, match="a file, not a model folder"):
        check_model_folder(tmp_path / "file")
    with pytest.raises(InvalidValueError, match="is a file, not a folder"):
        check_model_folder(tmp_path / "file" / "m")
    with pytest.raises(InvalidValueError, match="cannot be written here"):
        check_model_folder("/proc/nope")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")  # replaced whole: refused
    with pytest.raises(InvalidValueError, match="a folder of other files"):
        check_model_folder(tmp_path / "notes")
    (tmp_path / "m" / "ck").mkdir(parents=True)
    with pytest.raises(InvalidValueError, match="holds .*ck, which the new model folder"):
        check_model_folder(tmp_path / "m", keep=(tmp_path / "m" / "ck",))
    check_model_folder(tmp_path / "new" / "deeper")  # made when written
    (tmp_path / "empty").mkdir()
    check_model_folder(tmp_path / "empty")
    (tmp_path / "notes" / "card.json").write_text("{}")
    # a model folder, but with a file of the user's that replacing it whole would lose
    with pytest.raises(InvalidValueError, match="also holds mine.txt, which a model folder "
                                                "replaced whole would lose"):
        check_model_folder(tmp_path / "notes")
    (tmp_path / "notes" / "mine.txt").unlink()
    for name in ("README.md", "history.json", "history.png", "model.keras", "weights.npz"):
        (tmp_path / "notes" / name).write_text("x")
    check_model_folder(tmp_path / "notes")  # a model folder's own files: replaced
    (tmp_path / "notes" / ".DS_Store").write_text("x")  # junk
    (tmp_path / "notes" / ".README.md.abcd1234.tmp.md").write_text("x")  # a cut rewrite's
    check_model_folder(tmp_path / "notes")
    for name in ("screenshot.png", ".notes", ".git/HEAD", "samples.png/take.mid"):
        path = tmp_path / "notes" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
        with pytest.raises(InvalidValueError, match=f"also holds {name.split('/')[0]}"):
            check_model_folder(tmp_path / "notes")
        path.unlink()
        if path.parent != tmp_path / "notes":
            path.parent.rmdir()


def test_a_checkpoint_is_continued_with_resume_or_not_at_all(tmp_path):
    check_checkpoints(tmp_path / "ck", resume=False)
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text("{}")
    check_checkpoints(tmp_path / "ck", resume=False)  # no checkpoint yet
    (tmp_path / "ck" / "state.json").write_text("{}")
    with pytest.raises(InvalidValueError, match="holds a checkpoint .*state.json.* add "
                                                "--resume to continue it, or name another"):
        check_checkpoints(tmp_path / "ck", resume=False)
    check_checkpoints(tmp_path / "ck", resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidValueError, match="a file, not a checkpoint folder"):
        check_checkpoints(tmp_path / "file", resume=True)


@pytest.mark.parametrize("flags,message", [
    (["--out", "{tmp}/file"], "file: a file, not a model folder"),
    (["--out", "/dev/full/x"], "/dev/full is a file, not a folder"),
    (["--checkpoints", "{tmp}/file"], "file: a file, not a checkpoint folder"),
    (["--checkpoints", "{tmp}/ck"], "holds a checkpoint (last.keras)"),
    (["--cpu-replicas", "100", "--strategy", "mirrored"], "100 replicas need a batch"),
    (["--seed", "-1"], "seed must be 0-")])
def test_train_refuses_before_the_run(tmp_path, capsys, flags, message):
    """One line each, before the data is read or TensorFlow imported (``--out FILE`` was a
    traceback after the whole training)."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "last.keras").write_text("a checkpoint")
    (tmp_path / "data").mkdir()
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    defaults = {"--out": str(tmp_path / "m"), "--checkpoints": str(tmp_path / "new")}
    for flag, value in defaults.items():
        if flag not in flags:
            flags += [flag, value]
    tf_before = "tensorflow" in sys.modules
    assert main(["train", "--data", str(tmp_path / "data"), "--batch-size", "16", "--quiet",
                 *flags]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("improv: error:") and message in err[0], err
    assert tf_before or "tensorflow" not in sys.modules
    assert (tmp_path / "ck" / "last.keras").read_text() == "a checkpoint"
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("text", ["{bad", '{"seed": "x"}', "[1]"])
def test_export_of_a_damaged_config_is_one_line(tmp_path, capsys, text):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text(text)
    assert main(["export", str(tmp_path / "ck"), str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json: damaged, not a training config" in err[0]
    assert not (tmp_path / "m").exists()


def test_export_to_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    (tmp_path / "exfile").write_text("x")
    assert main(["export", str(tmp_path / "ck"), str(tmp_path / "exfile")]) == 1
    assert "exfile: a file, not a model folder" in capsys.readouterr().err
    assert (tmp_path / "exfile").read_text() == "x"


def test_resume_keeps_the_checkpoints_learning_rate_unless_one_is_given(tmp_path):
    """``--resume`` alone took the preset's rate (0.005) over the 3e-4 the run was started
    with, silently (a review); a --learning-rate given applies (training.train)."""
    import json

    from improv.commands.train import _checkpoint_learning_rate

    ck = tmp_path / "ck"
    ck.mkdir()
    assert _checkpoint_learning_rate(ck, 0.005) == 0.005  # no checkpoint: the preset's
    (ck / "config.json").write_text(json.dumps({"learning_rate": 3e-4}))
    assert _checkpoint_learning_rate(ck, 0.005) == 0.005  # a config alone: no checkpoint
    (ck / "last.keras").write_bytes(b"")
    assert _checkpoint_learning_rate(ck, 0.005) == 3e-4
    (ck / "config.json").write_text('{"learning_rate": 1}')  # JSON's 1 is an int
    assert _checkpoint_learning_rate(ck, 0.005) == 1.0
    for damaged in ("{bad", '{"learning_rate": "fast"}', '{"learning_rate": -1.0}', "[]",
                    '{"learning_rate": Infinity}'):
        (ck / "config.json").write_text(damaged)
        assert _checkpoint_learning_rate(ck, 0.005) == 0.005  # named when the run resumes
