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
