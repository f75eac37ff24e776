"""Mutation audit, round 2: recurrent/selection.py and recurrent/averaging.py behaviour
the existing tests left unpinned.

- --select-by splits NAME:DIRECTION at the LAST colon: forecast metrics are named per
  column ("mase[column]"), and a column name may hold a colon ("mase[t:0]:min").
- --average swa:S: before step S+1 the "average" IS the current parameters, bit for bit
  (module docstring), not the previous ones moved by a full step in float32 arithmetic
  (1.0 + (1e-8 - 1.0) is 0.0 in float32, not 1e-8)."""
import numpy as np
import pytest

from recurrent import averaging, selection


def test_select_by_splits_at_the_last_colon():
    s = selection.parse("mase[t:0]:min")
    assert (s.metric, s.direction) == ("mase[t:0]", "min")
    assert s.score({"mase[t:0]": 0.75, "loss": 1.0}) == 0.75
    up = selection.parse("f1/a:b:max")
    assert (up.metric, up.direction) == ("f1/a:b", "max")
    assert up.score({"f1/a:b": 0.6}) == -0.6 and up.describe(-0.6) == "valid f1/a:b 0.6000"


def test_swa_before_its_start_is_the_current_parameters_exactly():
    avg = averaging.WeightAverage("swa", 2, size=2)
    avg.update(np.array([1.0, -3.0], np.float32), step=1)
    current = np.array([1e-8, 7.0], np.float32)
    avg.update(current, step=2)  # step 2 <= S = 2: not started
    assert avg.count == 0
    np.testing.assert_array_equal(avg.values, current)
    # from step 3 on: the plain mean of the parameters after steps 3, 4
    avg.update(np.array([2.0, 2.0], np.float32), step=3)
    avg.update(np.array([4.0, 0.0], np.float32), step=4)
    assert avg.count == 2
    np.testing.assert_allclose(avg.values, [3.0, 1.0], rtol=1e-7)


def test_ema_is_the_bias_corrected_weighted_mean():
    d = 0.5
    avg = averaging.WeightAverage("ema", d, size=1)
    p = [4.0, 0.0, 2.0]
    for step, v in enumerate(p, 1):
        avg.update(np.array([v], np.float32), step)
    # weights d^(n-i) normalised: 0.25, 0.5, 1 over 1.75
    assert avg.values[0] == pytest.approx((0.25 * 4 + 0.5 * 0 + 1 * 2) / 1.75, rel=1e-6)
