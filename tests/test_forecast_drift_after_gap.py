"""The seasonal_drift anchor (and seasonal_damped's share of it) adds the last seasonal
change to the seasonal naive forecast. From an origin t just after a gap (the rows up to
t unobserved, as at the end of a `predict --data` file whose last cells are blank), the
value known at t is the last observed one, y(L), and the change was taken as y(L) - y(t-m):
two steps of different phases of the season. On a trending 12-step season with its last 5
rows blank the forecast of the next row was 11.05 against 10.60 (the seasonal naive
forecast alone: 10.48). The change is now y(L) - y(L-m)."""
import math

import numpy as np

from recurrent_plugins.forecast import anchors as anc
from recurrent_plugins.forecast import windows as win


def _series(n):
    return np.array([[10 + math.sin(2 * math.pi * i / 12) + 0.01 * i] for i in range(n)])


def test_the_seasonal_change_after_a_gap_is_a_seasonal_difference():
    truth = _series(61)
    values, observed = truth[:60].copy(), np.ones((60, 1), bool)
    observed[55:] = False  # the last 5 rows are blank: the last observed row is 54
    values[55:] = values[54]  # held, as a trailing gap is read
    origins = np.array([59])
    forecast = anc.anchor_forecast(values, win.last_observed(observed), origins, 1, 12,
                                   ["seasonal_drift"])
    # y(48) + (y(54) - y(42)): exact for a linear trend on a fixed season
    assert forecast[0, 0, 0] == np.float64(truth[48, 0] + (truth[54, 0] - truth[42, 0]))
    assert abs(forecast[0, 0, 0] - truth[60, 0]) < 1e-9


def test_without_a_gap_the_change_is_the_origins_own():
    values = _series(60)
    last_seen = win.last_observed(np.ones((60, 1), bool))
    origins = np.array([20, 59])
    change = anc.seasonal_change(values, last_seen, origins, 12)
    assert np.array_equal(change[:, 0], values[origins, 0] - values[origins - 12, 0])
