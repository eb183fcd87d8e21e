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
    more = train(cfg.replace(epochs=3), tmp_path / "ckpt", resume=True, corpus=corpus, verbose=0)
    assert more.epochs_run == 1
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
