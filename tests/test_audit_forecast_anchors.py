"""Mutation audit, round 2: plugins/forecast/anchors.py choices the existing tests left
unpinned, against errors written out by hand.

- choose_anchors keeps the last value unless a seasonal anchor's training error is at most
  SEASONAL_MARGIN = 0.8 of the last value's: a seasonal anchor only 15% better is not
  "clearly better" and is not chosen; ``kinds`` limits the anchors compared.
- anchor_errors divide by the count of observed targets over windows AND columns.
- fit_damping: ties keep the smaller share; gap-filled targets do not count.
- scaled_mase and choose_blend (validation MASE; ties keep the full correction) by hand."""
import numpy as np
import pytest

from recurrent_plugins.forecast import anchors as anc

# season 2, horizon 1: a real-valued series with a weak alternation
Y = np.array([-0.9, -2.1, -0.6, -1.2, -1.5, -1.0, -0.2, 0.1, 1.8, 0.6, 1.6, -0.9])
ORIGINS = np.arange(3, 11)  # every origin has two seasons of history; targets t + 1


def _hand_errors():
    t = ORIGINS
    target = Y[t + 1]
    last = np.mean(np.abs(Y[t] - target))
    seasonal = np.mean(np.abs(Y[t - 1] - target))  # y(t + 1 - 2)
    change = Y[t] - Y[t - 2]  # the last seasonal change
    drift = np.mean(np.abs(Y[t - 1] + change - target))
    damped = min(np.mean(np.abs(Y[t - 1] + b * change - target))
                 for b in np.linspace(0, 1, 21))
    return last, seasonal, drift, damped


def test_anchor_errors_by_hand():
    errors = anc.anchor_errors(Y[:, None], np.ones((12, 1), bool), ORIGINS, 1, 2)
    np.testing.assert_allclose(errors[:, 0], _hand_errors(), rtol=1e-12)


def test_a_seasonal_anchor_only_15_percent_better_is_not_chosen():
    last, *seasonal = _hand_errors()
    assert 0.8 < min(seasonal) / last < 0.9  # better than the last value, not clearly
    assert anc.choose_anchors(Y[:, None], np.ones((12, 1), bool), ORIGINS, 1, 2) == ["last"]
    # a threshold the damped anchor clears: chosen when only it is compared with "last"
    errors = anc.anchor_errors(Y[:, None], np.ones((12, 1), bool), ORIGINS, 1, 2)
    assert errors[3, 0] == pytest.approx(min(seasonal))


# a clearly alternating series: every seasonal anchor clears the margin, the damped one best
Y2 = np.array([1.3, -2.2, 3.7, -1.3, 0.4, -2.0, 1.4, -1.9, 0.4, -1.8, 2.2, -0.4])


def test_choose_anchors_compares_only_the_kinds_it_is_given():
    t = ORIGINS
    target = Y2[t + 1]
    last = np.mean(np.abs(Y2[t] - target))
    seasonal = np.mean(np.abs(Y2[t - 1] - target))
    change = Y2[t] - Y2[t - 2]
    drift = np.mean(np.abs(Y2[t - 1] + change - target))
    damped = min(np.mean(np.abs(Y2[t - 1] + b * change - target))
                 for b in np.linspace(0, 1, 21))
    assert damped < seasonal < 0.8 * last and seasonal < drift
    observed = np.ones((12, 1), bool)
    assert anc.choose_anchors(Y2[:, None], observed, ORIGINS, 1, 2) == ["seasonal_damped"]
    assert anc.choose_anchors(Y2[:, None], observed, ORIGINS, 1, 2,
                              kinds=anc.UNDAMPED) == ["seasonal"]


def test_anchor_errors_average_over_every_observed_target_of_every_column():
    """Two columns, the second's last target a gap: each step's error is the sum over
    windows and columns of the observed targets' absolute errors over their count (8 + 7
    = 15), here for the last-value anchor."""
    values = np.stack([Y, Y2], axis=1)
    observed = np.ones((12, 2), bool)
    observed[11, 1] = False  # the target of origin 10 only: no origin reads it
    t = ORIGINS
    errors = np.abs(values[t] - values[t + 1])  # (B, C) last-value errors
    expected = (errors[:, 0].sum() + errors[:-1, 1].sum()) / 15
    got = anc.anchor_errors(values, observed, ORIGINS, 1, 2)
    assert got[0, 0] == pytest.approx(expected, rel=1e-12)


def test_damping_ties_keep_the_smaller_share():
    """Rows 1..6 repeat every 2 rows, so every window's last seasonal change is 0 and every
    share b scores the same: the tie keeps b = 0 (seasonal naive), as documented."""
    y = np.array([5.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 4.0])
    shares = anc.fit_damping(y[:, None], np.ones((8, 1), bool), np.arange(3, 7), 1, 2)
    assert shares == [[0.0]]


def test_damping_is_fitted_on_observed_targets_only():
    """The last target (row 11) is a gap whose fill is far off (100): the share b is the
    grid value with the smallest absolute error over the 7 windows with an observed target,
    written out here; counting the fill would pull b elsewhere."""
    values = Y2.copy()
    values[11] = 100.0  # a gap fill, never observed
    observed = np.ones((12, 1), bool)
    observed[11] = False
    t = ORIGINS[:-1]  # origin 10's only target is the gap
    change = values[t] - values[t - 2]
    grid = np.linspace(0, 1, 21)
    errors = [np.sum(np.abs(values[t - 1] + b * change - values[t + 1])) for b in grid]
    best = grid[int(np.argmin(errors))]
    shares = anc.fit_damping(values[:, None], observed, ORIGINS, 1, 2)
    assert shares[0][0] == pytest.approx(best)
    everything = ORIGINS
    change_all = values[everything] - values[everything - 2]
    with_fill = grid[int(np.argmin([np.sum(np.abs(values[everything - 1] + b * change_all
                                                  - values[everything + 1])) for b in grid]))]
    assert with_fill != pytest.approx(best)  # the example tells the two apart


def test_scaled_mase_by_hand():
    """Mean over columns of each column's mean |error| over its observed pairs, divided by
    that column's scale: column a errors 1, 3 (scale 2) -> 1; column b error 2 on its one
    observed pair (the other, error 40, is a gap), scale 4 -> 0.5; mean 0.75."""
    actual = np.zeros((2, 1, 2))
    forecast = np.array([[[1.0, 2.0]], [[-3.0, 40.0]]])
    observed = np.array([[[True, True]], [[True, False]]])
    assert anc.scaled_mase(forecast, actual, observed, np.array([2.0, 4.0])) == \
        pytest.approx((1.0 + 0.5) / 2)


def test_choose_blend_by_validation_mase_and_ties_keep_the_full_correction():
    anchor = np.zeros((3, 2, 1))
    actual = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 2.0]).reshape(3, 2, 1)
    observed = np.ones_like(actual, bool)
    scale = np.array([1.0])
    # a correction twice the truth: w = 0.5 is exact
    assert anc.choose_blend(2 * actual, anchor, actual, observed, scale) == 0.5
    # no correction at all: every w scores the same, the full model (w = 1) is kept
    assert anc.choose_blend(np.zeros_like(actual), anchor, actual, observed, scale) == 1.0
    # a correction of the wrong sign: the anchor alone (w = 0)
    assert anc.choose_blend(-actual, anchor, actual, observed, scale) == 0.0


def test_the_last_value_anchor_at_a_gap_is_the_last_observed_value():
    """An origin inside a trailing gap: the gap's fill (interpolated towards the next
    observation, which comes after the origin) is not known there, so the "last" anchor
    is the last OBSERVED value (row 2's 3.0), not the fill (10.0)."""
    scaled = np.array([1.0, 2.0, 3.0, 10.0, 5.0, 6.0])[:, None]
    observed = np.array([True, True, True, False, True, True])[:, None]
    last_seen = anc.win.last_observed(observed)
    got = anc.anchor_forecast(scaled, last_seen, np.array([3, 4]), 2, 1, ["last", "last"])
    np.testing.assert_array_equal(got[:, :, 0], [[3.0, 3.0], [5.0, 5.0]])


def test_a_seasonal_anchor_exactly_at_the_margin_is_chosen():
    """"At most SEASONAL_MARGIN times": integer errors make the boundary exact. Origins
    3..6 of this series: the last value misses by 7 + 6 + 1 + 6 = 20 (mean 5), the
    seasonal naive by 3 + 1 + 7 + 5 = 16 (mean 4 = 0.8 * 5, exactly in floating point)."""
    y = np.array([3.0, 1.0, 0.0, 4.0, -3.0, 3.0, 4.0, -2.0])
    t = np.arange(3, 7)
    assert np.abs(y[t] - y[t + 1]).tolist() == [7.0, 6.0, 1.0, 6.0]
    assert np.abs(y[t - 1] - y[t + 1]).tolist() == [3.0, 1.0, 7.0, 5.0]
    assert 0.8 * 5.0 == 4.0
    assert anc.choose_anchors(y[:, None], np.ones((8, 1), bool), t, 1, 2,
                              kinds=("last", "seasonal")) == ["seasonal"]
