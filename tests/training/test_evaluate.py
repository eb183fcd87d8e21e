import json

import numpy as np
import pytest

from improv.cli import main
from training.evaluate import MIN_CONTEXT, score

#: These train small TensorFlow models (seconds each).
pytestmark = pytest.mark.slow


def _notes(n, pitch=60):
    return np.stack([np.full(n, pitch), np.full(n, 0.25), np.full(n, 0.5), np.full(n, 80)],
                    axis=1).astype(np.float32)


def test_score_on_hand_made_predictions():
    notes = [_notes(MIN_CONTEXT + 4)]
    logits = np.zeros((4, 128))
    logits[:, 60] = np.log(3.0)  # p(60) = 3 / 130 for every target
    logits[1, 61] = 10.0  # target 60 is ranked 2nd here
    logits[2, [61, 62, 63, 64, 65]] = 10.0  # ranked 6th: outside the top 5
    preds = [{"pitch": logits, "step": np.full((4, 1), 0.5), "duration": np.full((4, 1), -0.5),
              "first": MIN_CONTEXT}]
    m = score(notes, preds)
    ce_uniform_ish = -np.log(3 / 130)
    assert m["targets"] == 4
    assert m["pitch_top1"] == pytest.approx(2 / 4)
    assert m["pitch_top5"] == pytest.approx(3 / 4)
    assert m["step_mae"] == pytest.approx(0.25)
    assert m["duration_mae"] == pytest.approx(1.0)
    assert m["duration_loss"] == pytest.approx(1.0 + 10 * 0.5)
    ce = np.array([ce_uniform_ish,
                   np.log(126 + 3 + np.exp(10)) - np.log(3),
                   np.log(122 + 3 + 5 * np.exp(10)) - np.log(3),
                   ce_uniform_ish])
    assert m["pitch_ce"] == pytest.approx(ce.mean(), rel=1e-9)


def test_time_bin_heads_are_scored_by_their_median():
    from improv.timebins import bin_values

    values = bin_values(8)
    notes = [_notes(MIN_CONTEXT + 2)]  # true step 0.25 s, duration 0.5 s
    step = np.log(np.array([[0.3, 0.1, 0.05, 0, 0, 0, 0.55, 0], [0, 0, 0.2, 0.2, 0.2, 0, 0, 0.4]])
                  + 1e-12)  # medians: bins 6 and 4 (the first bin where the CDF reaches 1/2)
    preds = [{"pitch": np.zeros((2, 128)), "step": step, "duration": step[::-1],
              "first": MIN_CONTEXT}]
    m = score(notes, preds)
    assert m["step_mae"] == pytest.approx(np.mean(np.abs(values[[6, 4]] - 0.25)), rel=1e-6)
    assert m["duration_mae"] == pytest.approx(np.mean(np.abs(values[[4, 6]] - 0.5)), rel=1e-6)


def test_velocity_head_is_scored_by_its_median():
    notes = [_notes(MIN_CONTEXT + 1)]  # velocity 80
    velocity = np.full((1, 4), -50.0)
    velocity[0, [1, 3]] = np.log([0.6, 0.4])  # bin 1 (velocity 48) holds the median
    preds = [{"pitch": np.zeros((1, 128)), "step": np.full((1, 1), 0.25),
              "duration": np.full((1, 1), 0.5), "velocity": velocity, "first": MIN_CONTEXT}]
    assert score(notes, preds)["velocity_mae"] == pytest.approx(32.0)


def test_short_files_are_not_scored():
    with pytest.raises(ValueError, match="more than 25"):
        score([_notes(10)], [None])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("m") / "tiny"
    code = main(["train", "--preset", "streaming", "--data", str(tiny_data), "--units", "8",
                 "--seq-length", "16", "--epochs", "1", "--batch-size", "16", "--out", str(out),
                 "--checkpoints", str(out.parent / "ckpt"), "--quiet"])
    assert code == 0
    return out


def test_train_command_writes_a_complete_model_folder(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"model.keras", "weights.npz", "card.json", "README.md", "history.json",
            "history.png", "piano_roll.png", "distributions.png"} <= names
    card = json.loads((tiny_model / "card.json").read_text())
    assert card["metrics"]["targets"] > 0 and card["evaluation"]["split"] == "test"
    assert card["data"]["sources"][0]["train"]["files"] > 0
    assert card["training"]["seconds"] > 0
    assert "Held-out metrics" in (tiny_model / "README.md").read_text()


def test_evaluate_writes_json(tiny_model, tiny_data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tiny_model), "--data", str(tiny_data), "--split", "all",
                 "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    for key in ("pitch_ce", "pitch_top1", "pitch_top5", "step_mae", "duration_mae", "step_loss",
                "duration_loss", "loss", "targets", "by_source"):
        assert key in result
    assert result["targets"] == 24 * (200 - MIN_CONTEXT)
    assert 0 <= result["pitch_top1"] <= result["pitch_top5"] <= 1
    assert "pitch CE" in capsys.readouterr().out


def test_evaluate_music_without_tensorflow(tiny_model, tiny_data, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / "music.json"
    code = ("import sys; from improv.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "evaluate", str(tiny_model), "--music",
                           "--data", str(tiny_data), "--split", "all", "--max-files", "4",
                           "--temperatures", "0", "1.5", "--seed-notes", "30",
                           "--generate-notes", "60", "--json", str(out), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["pieces"] == 4 and set(result["temperatures"]) == {"0.0", "1.5"}
    greedy = result["temperatures"]["0.0"]
    assert 0 <= greedy["compare"]["pitch"]["overlap"] <= 1
    assert len(greedy["pieces"]) == 4
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "temperature" in proc.stdout


def test_evaluate_music_draws_go_into_the_card(tiny_model, tiny_data, tmp_path, capsys):
    import shutil

    model = tmp_path / "tiny"
    shutil.copytree(tiny_model, model)
    out = tmp_path / "music.json"
    assert main(["evaluate", str(model), "--music", "--data", str(tiny_data), "--split", "all",
                 "--max-files", "3", "--temperatures", "1.0", "--seed-notes", "30",
                 "--generate-notes", "40", "--draws", "2", "--update-card", "--json", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "means of 2 draws" in printed
    assert "the memory's change at 1.0 (with - without, +- standard error): step ov " in printed
    result = json.loads(out.read_text())
    assert len(result["temperatures"]["1.0"]["draws"]) == 2
    assert set(result["memory"]["difference"]["1.0"]) >= {"step_overlap", "motif_reuse"}
    card = json.loads((model / "card.json").read_text())
    assert card["music"]["draws"] == 2 and set(card["music"]["memory"]["summary"]) == {"1.0"}
    readme = (model / "README.md").read_text()
    assert "means of 2 draws" in readme
    assert "with the phrase memory (0.5), as improv plays" in readme


@pytest.mark.corpus
def test_evaluate_music_on_the_shipped_model(tmp_path):
    """The shipped model on a small subset of the real test split."""
    out = tmp_path / "music.json"
    assert main(["evaluate", "--music", "--max-files", "2", "--temperatures", "0.8",
                 "--generate-notes", "60", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    row = result["temperatures"]["0.8"]
    assert result["pieces"] == 2 and row["compare"]["pitch"]["overlap"] > 0.2
    assert 0 <= row["signatures"]["repeat_rate"] < 0.5


def test_key_mass_is_the_probability_on_the_context_key():
    """Context: 64 notes of C major's 7 classes; the model puts 0.8 on C4, the rest evenly
    over the 127 other pitches, so the mass on the key is 0.8 + 0.2 * 74 / 127 (75 of the
    128 pitches are in those 7 classes, C4 among them)."""
    c_major = [60, 62, 64, 65, 67, 69, 71]
    n = 64 + 2
    pitches = np.array((c_major * 10)[:64] + [60, 61], np.float32)
    notes = [np.stack([pitches, np.full(n, 0.25), np.full(n, 0.5), np.full(n, 80)], axis=1)]
    p = np.full((2, 128), 0.2 / 127)
    p[:, 60] = 0.8
    preds = [{"pitch": np.log(p), "step": np.full((2, 1), 0.25),
              "duration": np.full((2, 1), 0.5), "first": 64}]
    in_key = sum(1 for q in range(128) if q % 12 in (0, 2, 4, 5, 7, 9, 11))
    assert in_key == 75
    m = score(notes, preds)
    assert m["key_mass"] == pytest.approx(0.8 + 0.2 * (in_key - 1) / 127)
    assert m["real_in_key"] == pytest.approx(1 / 2)  # C4 is in the key, C#4 is not
