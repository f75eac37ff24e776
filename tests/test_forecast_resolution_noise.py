"""check_resolution's "typical change between rows" ignores changes that are float64
noise of their own values: a daily total summed from parts holds still for days, written
as 27.02 one day and 27.020000000000003 the next; those 1e-14 "changes" made the median
change, which any rounding of the scale round trip lost, and a column growing from 27 to
354 was refused as holding a value "so far from the other training values"."""
import numpy as np
import pytest

from recurrent.errors import UserError
from recurrent_plugins.forecast import windows as win


def _check(values):
    values = np.asarray(values, dtype=np.float64)[:, None]
    observed = np.ones(values.shape, bool)
    for kind in ("standard", "minmax"):
        scaler = win.fit_scaler(values, observed, kind, ["y"])
        win.check_resolution(values, observed, scaler, ["y"], np.arange(len(values)) + 2,
                             "data.csv")


def _held_totals():
    rng = np.random.default_rng(0)
    cents, out = 1000, []
    for i in range(200):
        if i % 10 == 0:
            cents += int(rng.integers(0, 2001))
        parts = np.diff(np.sort(np.concatenate([[0, cents], rng.integers(0, cents, 6)])))
        out.append(float(sum(p / 100 for p in parts)))
    return out


def test_a_held_total_with_float_noise_is_not_refused():
    values = _held_totals()
    steps = np.abs(np.diff(values))
    assert np.median(steps[steps > 0]) < 1e-12  # the noise outnumbers the real changes
    _check(values)


def test_a_value_that_drowns_the_rest_is_still_refused():
    values = [10 + np.sin(i / 3) for i in range(120)]
    values[50] = 1e30
    with pytest.raises(UserError, match="lost to rounding"):
        _check(values)
    _check([v * 1e-30 if i != 50 else 1e-30 for i, v in enumerate(values)])
