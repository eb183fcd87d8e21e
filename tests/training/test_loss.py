import numpy as np

from training.loss import mse_with_positive_pressure


def test_hand_computed_values():
    y_true = np.array([[0.5], [1.0], [0.0]], np.float32)
    y_pred = np.array([[0.25], [-0.5], [0.0]], np.float32)
    # (0.5-0.25)^2 = 0.0625; (1+0.5)^2 + 10*0.5 = 2.25 + 5 = 7.25; 0
    got = np.asarray(mse_with_positive_pressure(y_true, y_pred))
    np.testing.assert_allclose(got, [0.0625, 7.25, 0.0], rtol=1e-6)


def test_no_pressure_for_positive_predictions():
    y_true = np.zeros((4, 1), np.float32)
    y_pred = np.full((4, 1), 2.0, np.float32)
    np.testing.assert_allclose(np.asarray(mse_with_positive_pressure(y_true, y_pred)), 4.0)
