"""The exported weights load without TensorFlow, and damaged files say what is wrong."""

import json
import subprocess
import sys

import numpy as np
import pytest

from improv.weights import ARRAYS, ModelError, load_weights
from tests.conftest import REPO


def _write(path, units=4, vocab=128, arch="streaming", drop=None, shape_bug=False, bins=0):
    rng = np.random.default_rng(0)
    t = bins or 1
    shapes = {"lstm_kernel": (3, 4 * units), "lstm_recurrent_kernel": (units, 4 * units),
              "lstm_bias": (4 * units,), "pitch_kernel": (units, vocab), "pitch_bias": (vocab,),
              "step_kernel": (units, t), "step_bias": (t,), "duration_kernel": (units, t),
              "duration_bias": (t,), **({"timing_values": (bins,)} if bins else {})}
    arrays = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    if bins:  # seconds: 0 (a chord) and up
        arrays["timing_values"] = np.sort(np.abs(arrays["timing_values"]))
    if shape_bug:
        arrays["pitch_bias"] = arrays["pitch_bias"][:-1]
    if drop:
        del arrays[drop]
    meta = {"format": 1, "arch": arch, "seq_length": 25, "units": units, "vocab_size": vocab,
            "n_features": 3, "timing_bins": bins}
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "weights.npz", meta=np.array(json.dumps(meta)), **arrays)
    return path


def test_loads_without_tensorflow(tmp_path):
    model = _write(tmp_path / "m")
    code = ("import sys; from improv.weights import load_weights; w = load_weights(sys.argv[1]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "print(w.arch, w.units, w['lstm_kernel'].shape)")
    out = subprocess.run([sys.executable, "-c", code, str(model)], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["streaming", "4", "(3,", "16)"]


def test_shipped_default_model_loads():
    w = load_weights(REPO / "models" / "default")
    assert w.arch in ("tutorial", "streaming") and set(ARRAYS) <= set(w.arrays)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="weights.npz: no such file"):
        load_weights(tmp_path)


def test_truncated_file(tmp_path):
    model = _write(tmp_path / "m")
    data = (model / "weights.npz").read_bytes()
    (model / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="weights.npz: damaged or truncated"):
        load_weights(model)


def test_missing_array_and_wrong_shape(tmp_path):
    with pytest.raises(ModelError, match="missing array 'step_bias'"):
        load_weights(_write(tmp_path / "a", drop="step_bias"))
    with pytest.raises(ModelError, match="'pitch_bias' has shape"):
        load_weights(_write(tmp_path / "b", shape_bug=True))
    with pytest.raises(ModelError, match="unknown architecture"):
        load_weights(_write(tmp_path / "c", arch="transformer"))


def test_time_bin_models_need_their_bin_values(tmp_path):
    w = load_weights(_write(tmp_path / "ok", bins=8))
    assert w.timing_bins == 8 and w["step_kernel"].shape == (4, 8)
    with pytest.raises(ModelError, match="missing array 'timing_values'"):
        load_weights(_write(tmp_path / "no_values", bins=8, drop="timing_values"))


def test_sizes_and_times_a_model_cannot_have_are_refused(tmp_path):
    with pytest.raises(ModelError, match="vocab_size 60: must be 128"):
        load_weights(_write(tmp_path / "small", vocab=60))
    path = _write(tmp_path / "negative", bins=8)
    with np.load(path / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["timing_values"] = -arrays["timing_values"] - 0.1
    np.savez(path / "weights.npz", **arrays)
    with pytest.raises(ModelError, match="'timing_values' holds negative times"):
        load_weights(path)


def test_a_velocity_model_needs_four_inputs(tmp_path):
    path = _write(tmp_path / "v", bins=8)
    with np.load(path / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    arrays.update(velocity_kernel=np.zeros((4, 16), np.float32),
                  velocity_bias=np.zeros(16, np.float32),
                  velocity_values=np.arange(16, dtype=np.float32))
    np.savez(path / "weights.npz", meta=np.array(json.dumps({**meta, "velocity_bins": 16})),
             **arrays)
    with pytest.raises(ModelError, match="do not fit"):
        load_weights(path)  # three inputs in its meta, as a velocity model cannot have


def _add_member(npz_path, name, header: dict, body_bytes: int = 0, chunk: int = 1 << 24):
    """Append an .npy member with a hand-written header (and ``body_bytes`` of zeros,
    streamed, so the test itself never holds them in memory)."""
    import io
    import zipfile

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    with zipfile.ZipFile(npz_path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open(f"{name}.npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())
            zeros = bytes(chunk)
            for start in range(0, body_bytes, chunk):
                f.write(zeros[:min(chunk, body_bytes - start)])


def test_a_header_claiming_terabytes_is_refused_before_reading(tmp_path):
    """An array whose header claims 8 TiB gives the model error, not a MemoryError."""
    path = _write(tmp_path / "m", drop="pitch_kernel")
    _add_member(path / "weights.npz", "pitch_kernel",
                {"descr": "<f8", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    with pytest.raises(ModelError, match="'pitch_kernel' has shape"):
        load_weights(path)


def test_an_object_array_is_refused(tmp_path):
    path = _write(tmp_path / "m", drop="pitch_bias")
    _add_member(path / "weights.npz", "pitch_bias",
                {"descr": "|O", "fortran_order": False, "shape": (128,)}, 128 * 8)
    with pytest.raises(ModelError, match="'pitch_bias' has dtype object"):
        load_weights(path)


def test_arrays_a_model_does_not_use_are_never_read(tmp_path):
    """A valid model plus 1 GiB of zeros (1 MB compressed) loads, and the zeros are not
    read: the loading process's peak memory stays far below them."""
    path = _write(tmp_path / "m")
    _add_member(path / "weights.npz", "junk",
                {"descr": "<f4", "fortran_order": False, "shape": (1 << 28,)}, 1 << 30)
    assert (path / "weights.npz").stat().st_size < 10 << 20
    # VmHWM, the peak RSS of this process image: ru_maxrss would carry the peak of the
    # (large, TensorFlow-holding) pytest process the child was forked from.
    code = ("import sys; from improv.weights import load_weights; "
            "w = load_weights(sys.argv[1]); assert 'junk' not in w.arrays; "
            "print(next(line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM')))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert int(out) < 300_000, out  # KiB; reading the junk would need over 1,000,000


def test_an_oversized_array_of_the_right_shape_is_refused(tmp_path, monkeypatch):
    """The size limit holds even where meta and header agree on a huge model."""
    import improv.weights as weights

    monkeypatch.setattr(weights, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(ModelError, match="larger than a model holds"):
        load_weights(_write(tmp_path / "m", units=4, vocab=128))
