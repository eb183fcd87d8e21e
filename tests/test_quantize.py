"""Quantize grids, strength and swing on onsets in beats."""

from __future__ import annotations

import numpy as np
import pytest

from improv.quantize import Grid, Quantizer


@pytest.mark.parametrize("text, step, triplet", [
    ("1/8", 0.5, False), ("1/16", 0.25, False), ("1/12", 1 / 3, True), ("16", 0.25, False),
    (" 1/4 ", 1.0, False), ("1/24", 1 / 6, True),
])
def test_grids_parse(text, step, triplet):
    grid = Grid.parse(text)
    assert float(grid.step) == pytest.approx(step) and grid.triplet is triplet
    assert str(grid) == f"1/{grid.denominator}"


@pytest.mark.parametrize("text", ["2/8", "1/0", "1/x", "", "1/128", "eighth"])
def test_bad_grids_say_what_is_expected(text):
    with pytest.raises(ValueError, match="1/8, 1/16 or 1/12"):
        Grid.parse(text)


def test_full_strength_snaps_and_partial_strength_moves_part_way():
    onsets = np.array([0.1, 0.3, 0.62, 1.9])
    snapped = Quantizer(Grid(16)).apply(onsets)
    assert snapped.tolist() == [0.0, 0.25, 0.5, 2.0]
    half = Quantizer(Grid(16), strength=0.5).apply(onsets)
    assert half == pytest.approx([0.05, 0.275, 0.56, 1.95])
    assert Quantizer(Grid(16), strength=0.0).apply(onsets) == pytest.approx(onsets)


def test_triplet_grid():
    assert Quantizer(Grid.parse("1/12")).apply([0.3, 0.7, 1.05]) == pytest.approx(
        [1 / 3, 2 / 3, 1.0])


def test_swing_moves_the_off_step_toward_the_triplet():
    full = Quantizer(Grid(8), swing=1.0)
    assert full.apply([0.0, 0.5, 0.62, 1.0, 1.55]) == pytest.approx(
        [0.0, 2 / 3, 2 / 3, 1.0, 1 + 2 / 3])
    half = Quantizer(Grid(8), swing=0.5)
    assert half.target(0.5) == pytest.approx(0.5 + 0.5 / 6)
    sixteenths = Quantizer(Grid(16), swing=1.0)
    assert sixteenths.target([0.25, 0.75]) == pytest.approx([1 / 3, 5 / 6])


@pytest.mark.parametrize("kwargs, message", [
    ({"strength": 1.5}, "strength must be 0-1"),
    ({"strength": -0.1}, "strength must be 0-1"),
    ({"swing": 2}, "swing must be 0-1"),
    ({"swing": True}, "swing must be 0-1"),
])
def test_quantizer_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Quantizer(Grid(16), **kwargs)


def test_swing_on_triplets_is_refused_and_grid_is_checked():
    with pytest.raises(ValueError, match="already triplets"):
        Quantizer(Grid(12), swing=0.5)
    with pytest.raises(ValueError, match="must be a Grid"):
        Quantizer("1/16")
