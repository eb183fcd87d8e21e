"""Tiny real training runs: a loadable model, checkpoints, resume, Ctrl-C, export."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from improv.corpus import find_midi_files, load_corpus
from improv.trainconfig import TrainConfig
from tests.conftest import REPO
from training.export import export_model, weights_to_arrays
from training.train import TrainingInterrupted, train

#: These train small TensorFlow models (seconds each).
pytestmark = pytest.mark.slow

TINY = dict(seq_length=16, units=8, batch_size=16, epochs=2, patience=2)


@pytest.fixture(scope="module")
def corpus(tiny_data):
    return load_corpus(find_midi_files(tiny_data), progress=False)


@pytest.mark.parametrize("arch,bins,velocity,embedding", [
    ("tutorial", 0, 0, 0), ("streaming", 0, 0, 0), ("streaming", 12, 8, 0),
    ("streaming", 12, 8, 6)])
def test_tiny_run_gives_a_loadable_model(tmp_path, tiny_data, corpus, arch, bins, velocity,
                                         embedding):
    cfg = TrainConfig(arch=arch, data=(str(tiny_data),), timing_bins=bins,
                      velocity_bins=velocity, pitch_embedding=embedding,
                      interval_embedding=embedding // 2, **TINY)
    result = train(cfg, tmp_path / "ckpt", corpus=corpus, verbose=0)
    assert result.epochs_run == 2 and len(result.history["loss"]) == 2
    assert result.examples_per_second > 0 and result.stopped_by == "epoch limit"
    assert (tmp_path / "ckpt" / "best.keras").is_file()
    out = export_model(result.model, cfg, tmp_path / "model", {"data": {}})
    loaded = keras.models.load_model(out / "model.keras", compile=False)
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, cfg.n_features)).astype(np.float32)
    if embedding:
        x = {"pitches": rng.integers(0, 128, (2, 16)).astype(np.int32),
             "intervals": rng.integers(0, 50, (2, 16)).astype(np.int32),
             "notes": x[..., 1:]}
    want = result.model(x)
    got = loaded(x)
    for head in want:
        np.testing.assert_allclose(got[head], want[head], atol=1e-6)
    card = json.loads((out / "card.json").read_text())
    assert card["arch"] == arch and card["config"]["units"] == 8
    arrays = weights_to_arrays(result.model, cfg)
    npz = np.load(out / "weights.npz")
    np.testing.assert_array_equal(npz["lstm_kernel"], arrays["lstm_kernel"])
    assert npz["step_kernel"].shape == (8, bins or 1)
    assert np.isfinite(result.history["step_loss"]).all()


def test_resume_continues_from_the_checkpoint(tmp_path, tiny_data, corpus):
    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    train(cfg, tmp_path / "ckpt", corpus=corpus, verbose=0)
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 2
    more = train(cfg.replace(epochs=3, learning_rate=0.001), tmp_path / "ckpt", resume=True,
                 corpus=corpus, verbose=0)
    assert more.epochs_run == 1
    # the new learning rate is the optimizer's, as config.json and the card say (the reloaded
    # optimizer kept the checkpoint's)
    assert float(more.model.optimizer.learning_rate) == pytest.approx(0.001)
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["learning_rate"] == 0.001
    assert len(more.history["loss"]) == 3  # the two earlier epochs are kept
    # a resume that asks for another model is refused before any work (it made a model
    # whose card and weights disagreed)
    from improv.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=f"its model has units {cfg.units} "):
        train(cfg.replace(units=2 * cfg.units), tmp_path / "ckpt", resume=True, corpus=corpus,
              verbose=0)


class _CtrlC(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise KeyboardInterrupt


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path, tiny_data, corpus, monkeypatch):
    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    real_fit = keras.Model.fit

    def fit_then_interrupt(self, *args, callbacks=(), **kwargs):
        return real_fit(self, *args, callbacks=[*callbacks, _CtrlC()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_then_interrupt)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(cfg, tmp_path / "ckpt", corpus=corpus, verbose=0)
    assert keras.models.load_model(tmp_path / "ckpt" / "last.keras", compile=False)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 0


def test_mirrored_strategy_on_two_cpu_replicas(tmp_path, tiny_data):
    """The tf.distribute path, in a fresh process (devices are fixed at TF start)."""
    code = f"""
import json, sys
from improv.trainconfig import TrainConfig
from training.train import train
cfg = TrainConfig(arch="tutorial", data=({str(tiny_data)!r},), seq_length=16, units=8,
                  batch_size=16, epochs=1)
r = train(cfg, {str(tmp_path / 'ckpt')!r}, strategy_name="mirrored", cpu_replicas=2, verbose=0)
print(json.dumps({{"replicas": r.replicas, "loss": r.history["loss"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and np.isfinite(out["loss"][0])


def _free_ports(n):
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_strategy_two_processes_on_localhost(tmp_path, tiny_data):
    """MultiWorkerMirroredStrategy driven by TF_CONFIG: two workers, one chief writes."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    code = f"""
import json
from improv.trainconfig import TrainConfig
from training.train import train
cfg = TrainConfig(arch="tutorial", data=({str(tiny_data)!r},), seq_length=16, units=8,
                  batch_size=16, epochs=1)
import sys
r = train(cfg, sys.argv[1], verbose=0)
print(json.dumps({{"replicas": r.replicas, "loss": r.history["loss"]}}))
"""
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / f"ckpt{index}")], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            results.append(p.communicate(timeout=300))
    finally:  # only if one hung or failed: never leave a worker behind
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = []
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert [o["replicas"] for o in outs] == [2, 2]
    assert outs[0]["loss"] == pytest.approx(outs[1]["loss"])  # one model, trained together
    assert (tmp_path / "ckpt0" / "last.keras").is_file()  # the chief saves
    assert not (tmp_path / "ckpt1" / "last.keras").exists()  # the other worker does not


def test_a_resumed_run_counts_every_session(tmp_path, tiny_data, corpus, capsys):
    """The run's epochs, examples and seconds add up over its sessions: a resume of a
    finished run trains nothing, and its card said 0 epochs in 0 s (a review). An export of
    its checkpoints gives them too (its card had no training at all)."""
    from improv.cli import main
    from improv.errors import InvalidValueError
    from training.train import RunState, read_state

    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    ckpt = tmp_path / "ckpt"
    first = train(cfg, ckpt, corpus=corpus, verbose=0)
    state = read_state(ckpt / "state.json")
    assert state.epoch == first.epochs == first.epochs_run == 2
    assert state.examples > 0 and state.seconds > 0
    assert state.seconds == pytest.approx(first.train_seconds)
    more = train(cfg.replace(epochs=3), ckpt, resume=True, corpus=corpus, verbose=0)
    assert (more.epochs_run, more.epochs) == (1, 3)
    assert more.train_seconds > first.train_seconds and more.examples_per_second > 0
    done = train(cfg.replace(epochs=3), ckpt, resume=True, corpus=corpus, verbose=0)
    assert (done.epochs_run, done.epochs) == (0, 3)
    assert done.train_seconds == pytest.approx(more.train_seconds)
    assert done.examples_per_second == pytest.approx(more.examples_per_second)
    out = tmp_path / "exported"
    assert main(["export", str(ckpt), str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["epochs_run"] == 3
    assert card["training"]["seconds"] == round(more.train_seconds, 1)
    assert card["training"]["examples_per_second"] == round(more.examples_per_second, 1)
    assert card["final_epoch"] == {k: v[-1] for k, v in more.history.items()}
    assert "- Training: 3 epochs in" in (out / "README.md").read_text()
    # a state.json of before these were kept reads as none of them; a damaged one is refused
    old = json.loads((ckpt / "state.json").read_text())
    del old["examples"], old["seconds"]
    (ckpt / "state.json").write_text(json.dumps(old))
    assert read_state(ckpt / "state.json") == RunState(3, old["history"])
    for bad in ({"seconds": "x"}, {"seconds": -1}, {"examples": 1.5}, {"seconds": float("nan")},
                {"examples": 10 ** 400}, {"seconds": 1e308}, {"epoch": 10 ** 400}):
        (ckpt / "state.json").write_text(json.dumps({**old, **bad}))
        with pytest.raises(InvalidValueError, match="state.json: cannot resume"):
            read_state(ckpt / "state.json")
    capsys.readouterr()
    assert main(["export", str(ckpt), str(out)]) == 0  # the weights all the same, said
    said = capsys.readouterr().err
    assert "state.json is unreadable or damaged; the card leaves the training out" in said
    assert "training" not in json.loads((out / "card.json").read_text())


def test_resume_keeps_a_better_best_and_counts_the_patience(tmp_path, tiny_data, corpus):
    """A resumed run starts from its history's best: a blank one let its first epoch, worse
    or not, replace best.keras, and gave early stopping a fresh patience."""
    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    ckpt = tmp_path / "ckpt"
    train(cfg, ckpt, corpus=corpus, verbose=0)
    state = json.loads((ckpt / "state.json").read_text())
    state["history"][cfg.monitor] = [1e-9, 1.0]  # a best no epoch beats, one epoch ago
    (ckpt / "state.json").write_text(json.dumps(state))
    best = (ckpt / "best.keras").read_bytes()
    more = train(cfg.replace(epochs=6), ckpt, resume=True, corpus=corpus, verbose=0)
    assert (ckpt / "best.keras").read_bytes() == best
    assert more.epochs_run == 1 and more.stopped_by == "early stopping"  # patience 2


def test_a_checkpoint_is_not_replaced_without_resume(tmp_path, tiny_data, corpus):
    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "last.keras").write_text("a checkpoint")
    from improv.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="add --resume to continue it"):
        train(cfg, tmp_path / "ckpt", corpus=corpus, verbose=0)
    assert (tmp_path / "ckpt" / "last.keras").read_text() == "a checkpoint"
    with pytest.raises(InvalidValueError, match="100 replicas need a batch"):
        train(cfg, tmp_path / "other", cpu_replicas=100, corpus=corpus, verbose=0)


def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, tiny_data, corpus):
    import zipfile

    from improv.errors import InvalidValueError

    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(cfg.to_dict()))
    good_state = json.dumps({"epoch": 2, "history": {"loss": [2.0, 1.0]}})
    for name, state, keras_file, message in [
            ("garbage", good_state, b"garbage\n", "last.keras: cannot resume, "),
            ("epoch x", '{"epoch": "x", "history": {}}', None, "state.json: cannot resume, "),
            ("a zip of junk", good_state, "zip", "last.keras: cannot resume, ")]:
        (ckpt / "state.json").write_text(state)
        if keras_file == "zip":
            with zipfile.ZipFile(ckpt / "last.keras", "w") as z:
                z.writestr("config.json", "junk")
        elif keras_file:
            (ckpt / "last.keras").write_bytes(keras_file)
        with pytest.raises(InvalidValueError, match=message) as info:
            train(cfg, ckpt, resume=True, corpus=corpus, verbose=0)
        assert "\n" not in str(info.value), name


def _checkpoint(folder, cfg, names=("best.keras", "last.keras")):
    from training.model import build_model, compile_model

    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    model = compile_model(build_model(cfg), cfg)
    for name in names:
        model.save(folder / name)
    return model


def test_export_replaces_an_older_model_folder_whole(tmp_path, tiny_data, monkeypatch, capsys):
    """The new folder whole or the old one untouched: an export over an older model left its
    history and plots beside the new model, and a failed one a cut model.keras."""
    import errno

    import training.export
    from improv.cli import main
    from improv.outfile import WriteError

    cfg = TrainConfig(arch="tutorial", data=(str(tiny_data),), **TINY)
    model = _checkpoint(tmp_path / "ck", cfg)
    out = tmp_path / "models" / "m"
    assert main(["export", str(tmp_path / "ck"), str(out)]) == 0
    (out / "history.png").write_bytes(b"the older model's")
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    real_savez = np.savez

    def full_disk(path, **arrays):
        real_savez(path, **arrays)
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(training.export.np, "savez", full_disk)
    with pytest.raises(WriteError, match="m: could not be written .File too large"):
        export_model(model, cfg, out, {})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert [p.name for p in out.parent.iterdir()] == ["m"]  # no work folder left
    monkeypatch.undo()
    export_model(model, cfg, out, {"description": "new"})
    assert not (out / "history.png").exists()
    assert json.loads((out / "card.json").read_text())["name"] == "m"
    assert [p.name for p in out.parent.iterdir()] == ["m"]
    # a damaged best.keras: the last one, said; both damaged: one line
    capsys.readouterr()
    (tmp_path / "ck" / "best.keras").write_text("garbage")
    assert main(["export", str(tmp_path / "ck"), str(out)]) == 0
    assert "best.keras: cannot load the Keras model" in capsys.readouterr().err
    assert "exported from" in json.loads((out / "card.json").read_text())["description"]
    (tmp_path / "ck" / "last.keras").write_text("garbage")
    assert main(["export", str(tmp_path / "ck"), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "last.keras: cannot load the Keras model" in err[0]


def test_a_signal_during_the_swap_waits_for_its_end(tmp_path, monkeypatch):
    """A SIGTERM or Ctrl-C as a rename returns: between moving the older model folder aside
    and moving the new one in, it removed the older one with the work folder (a review);
    after them, it left the older one's files in a hidden folder (a red-team run). The
    signal now waits until the swap and its clean-up are done, then acts."""
    import signal

    import training.export
    from training.export import building

    out = tmp_path / "m"
    out.mkdir()
    (out / "model.keras").write_text("older")  # (no card: no README to render again)
    real_rename = os.rename

    def interrupted_after(src, dst):
        real_rename(src, dst)
        if len(os.listdir(tmp_path)) == 1:  # the older folder moved aside: only work is left
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, in this thread (os.kill may reach
            # another, whose Python handler then runs later)

    monkeypatch.setattr(training.export.os, "rename", interrupted_after)
    # (a run started in the background by a shell ignores SIGINT, as a CI-like one did)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), building(out) as new:
            (new / "model.keras").write_text("new")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert (out / "model.keras").read_text() == "new"  # the swap was finished
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no work folder left


def test_a_file_that_cannot_be_written_in_the_new_folder_names_the_model_folder(tmp_path):
    """A full disk as the card was written named the work folder's file, gone by then, and
    lost the line that says the checkpoints are kept (a review)."""
    import errno

    from improv.outfile import WriteError
    from training.export import building

    out = tmp_path / "m"
    with pytest.raises(WriteError) as err, building(out, done="the checkpoints are kept") as new:
        raise WriteError(new / "README.md", OSError(errno.ENOSPC, "No space left on device"))
    assert str(err.value) == (f"{out}: could not be written (No space left on device); the "
                              "checkpoints are kept")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_resume_refuses_checkpoints_it_would_replace_or_fail_on_after_the_run(tmp_path):
    """best.keras without last.keras: a resume started afresh and replaced it; a damaged
    best.keras: a traceback after the whole run, when it was read (a red-team run)."""
    import zipfile

    from improv.errors import InvalidValueError
    from training.train import _check_resumable

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "best.keras").write_bytes(b"a model")
    with pytest.raises(InvalidValueError, match="holds best.keras but no last.keras to resume "
                                                "from; improv export it, or name another"):
        _check_resumable(ck, TrainConfig())
    (ck / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    (ck / "state.json").write_text(json.dumps({"epoch": 1, "history": {"loss": [1.0]}}))
    zipfile.ZipFile(ck / "last.keras", "w").close()
    (ck / "best.keras").write_text("garbage")
    with pytest.raises(InvalidValueError, match="best.keras: cannot resume, the file is "
                                                "missing or damaged .not a Keras file"):
        _check_resumable(ck, TrainConfig())
    (ck / "best.keras").unlink()
    assert _check_resumable(ck, TrainConfig()) == TrainConfig()
