import numpy as np
import pytest

from improv.velocitybins import to_velocity_bins, velocity_values


@pytest.mark.parametrize("n", [2, 16, 32, 64])
def test_each_bin_value_lies_in_its_own_bin(n):
    values = velocity_values(n)
    assert values.min() >= 1 and values.max() <= 127
    np.testing.assert_array_equal(to_velocity_bins(values, n), np.arange(n))


def test_bins_cover_every_velocity():
    assert list(to_velocity_bins(np.array([0, 3, 4, 64, 127]), 32)) == [0, 0, 1, 16, 31]
    with pytest.raises(ValueError, match="2-64"):
        velocity_values(1)
