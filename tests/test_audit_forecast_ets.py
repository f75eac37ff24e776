"""Mutation audit, round 2: plugins/forecast/ets.origin_forecasts, the ETS baseline's and
anchor's reading of its table of forecasts, against a hand-built table.

table(depth) -> (N, depth, C) holds, per row taken as origin, its forecasts 1..depth steps
ahead. An origin whose column is observed reads its own row, steps 1..H; an origin inside
a gap reads the column's last observed row s, steps (t - s) + 1 .. (t - s) + H: the same
target rows t + 1 .. t + H, forecast from what was known."""
import numpy as np

from recurrent_plugins.forecast import ets
from recurrent_plugins.forecast import windows as win


def _table(n, columns):
    def table(depth):
        rows = np.arange(n)[:, None, None]
        steps = np.arange(1, depth + 1)[None, :, None]
        cols = np.arange(columns)[None, None, :]
        return rows * 1000.0 + steps * 10.0 + cols  # row r, step k, column c: r k c
    return table


def test_origin_forecasts_read_the_last_observed_row_further_ahead():
    observed = np.ones((8, 2), bool)
    observed[4:6, 1] = False  # column 1: rows 4 and 5 are a gap, last observed row 3
    last_seen = win.last_observed(observed)
    origins = np.array([3, 4, 5])
    got = ets.origin_forecasts(_table(8, 2), last_seen, origins, horizon=2)
    expected = np.empty((3, 2, 2))
    for b, t in enumerate(origins):
        for h in range(2):
            expected[b, h, 0] = t * 1000 + (h + 1) * 10 + 0  # observed: its own row
            s = 3 if t in (4, 5) else t
            expected[b, h, 1] = s * 1000 + (t - s + h + 1) * 10 + 1
    np.testing.assert_array_equal(got, expected)
