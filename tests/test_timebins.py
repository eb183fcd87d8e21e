import numpy as np
import pytest

from improv.timebins import FIRST_EDGE, LAST_EDGE, bin_edges, bin_values, to_bins


@pytest.mark.parametrize("n", [3, 16, 48])
def test_each_bin_value_lies_in_its_own_bin(n):
    assert len(bin_edges(n)) == n - 1 and np.all(np.diff(bin_edges(n)) > 0)
    np.testing.assert_array_equal(to_bins(bin_values(n), n), np.arange(n))


def test_chords_and_long_times_take_the_end_bins():
    assert list(to_bins(np.array([0.0, FIRST_EDGE / 2, FIRST_EDGE, LAST_EDGE, 60.0]), 48)) == \
        [0, 0, 1, 47, 47]
    assert bin_values(48)[0] == 0.0


def test_bins_are_equally_wide_in_log_time():
    ratios = np.diff(np.log(bin_edges(48)))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-4)


def test_too_few_bins():
    with pytest.raises(ValueError, match="at least 3"):
        bin_edges(2)
