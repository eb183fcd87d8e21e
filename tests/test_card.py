"""Model cards: read, written with their Markdown, rendered from what they hold."""

from __future__ import annotations

import json

from improv.card import read_card, render_card, write_card
from tests.conftest import REPO


def test_a_folder_without_a_card_reads_as_empty(tmp_path):
    assert read_card(tmp_path) == {}


def test_write_then_read_round_trips_and_renders_markdown(tmp_path):
    card = {"name": "tiny", "arch": "streaming", "description": "a test model",
            "config": {"units": 8, "seq_length": 16}, "parameters": 1234}
    write_card(tmp_path, card)
    assert read_card(tmp_path) == card
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Model card: tiny") and "a test model" in text
    assert "LSTM(8), sequence length 16, 1,234 parameters" in text


def test_the_shipped_cards_render_as_shipped():
    for folder in ("default", "tutorial-5files"):
        model = REPO / "models" / folder
        card = json.loads((model / "card.json").read_text())
        assert render_card(card, model) == (model / "README.md").read_text()


def test_the_phrase_memory_rows_and_the_draws_are_rendered():
    metrics = {"pitch_ce": 2.6, "pitch_top1": 0.3, "pitch_top5": 0.65, "key_mass": 0.881,
               "step_mae": 0.06, "duration_mae": 0.14, "targets": 1000}
    row = {"pitch_overlap": 0.8, "pitch_class_overlap": 0.9, "interval_overlap": 0.87,
           "step_overlap": 0.85, "duration_overlap": 0.9, "pitch_kl": 0.1, "repeat_rate": 0.01,
           "longest_run": 2.0, "distinct_pitches": 28.0, "step_std": 0.2, "key_overlap": 0.7,
           "out_of_key": 0.135, "motif_reuse": 0.013}
    played = {**metrics, "key_mass": 0.938, "strength": 0.5}
    card = {"name": "tiny", "parameters": 1234, "metrics": {**metrics, "memory": played},
            "music": {"pieces": 70, "seed_notes": 50, "generate_notes": 200, "draws": 8,
                      "real": {"repeat_rate": 0.03, "longest_run": 1.6, "distinct_pitches": 28.6,
                               "step_std": 0.15, "out_of_key": 0.101, "motif_reuse": 0.064},
                      "summary": {"0.9": row},
                      "memory": {"strength": 0.5, "summary": {"0.9": {**row,
                                                                      "motif_reuse": 0.092}}}}}
    text = render_card(card)
    lines = text.splitlines()
    held = [line for line in lines if line.startswith("| **tiny** with the phrase memory (0.5)")]
    assert len(held) == 2 and "| 0.938 |" in held[0] and held[1].endswith("| 0.092 |")
    assert "means of 8 draws" in text
    assert next(line for line in lines if line.startswith("| real continuation")).endswith(
        "| 10.1% | 0.064 |")
    del card["metrics"]["memory"]["strength"]  # a card edited by hand: no traceback
    card["music"]["memory"]["strength"] = 0.8  # not improv's own strength
    lines = render_card(card).splitlines()
    assert sum(line.startswith("| **tiny** with the phrase memory |") for line in lines) == 1
    assert sum(line.startswith("| **tiny** with the phrase memory (0.8) |") for line in lines) == 1
