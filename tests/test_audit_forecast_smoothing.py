"""Audit (mutation round 3) of plugins/forecast/smoothing.py: the learned smoothing's
multi-step loss on a series small enough to work out by hand."""
import numpy as np
import pytest

from recurrent_plugins.forecast import smoothing


def test_the_loss_scores_every_origin_with_a_full_horizon_by_hand():
    """y = [1, 2, 4, 3], no season, a = 0 so alpha = 1/2:
    l[-1] = y0 = 1, l0 = 1, l1 = 1.5, l2 = 2.75, l3 = 2.875.
    Horizon 1: origins 0, 1, 2 (t + 1 < 4) forecast 1, 1.5, 2.75 for 2, 4, 3:
    errors -1, -2.5, -0.25, loss (1 + 6.25 + 0.0625) / 3 = 2.4375.
    Horizon 2: origins 0, 1 forecast their level twice for (2, 4) and (4, 3):
    errors -1, -3, -2.5, -1.5, loss (1 + 9 + 6.25 + 2.25) / 4 = 4.625."""
    y = np.array([1.0, 2.0, 4.0, 3.0])
    theta = np.array([0.0, 0.0])
    table, level, _ = smoothing.forecast_table(y, theta, 1, 1)
    np.testing.assert_allclose(level, [1.0, 1.5, 2.75, 2.875])
    loss, _ = smoothing.loss_and_grad(y, theta, 1, 1)
    assert loss == pytest.approx(2.4375)
    loss, _ = smoothing.loss_and_grad(y, theta, 1, 2)
    assert loss == pytest.approx(4.625)


def test_the_initial_season_is_the_first_season_less_its_mean():
    """Season 4 starting 1, 2, 3, 6 (mean 3): initial indices -2, -1, 0, 3, beside
    alpha 0.3 and gamma 0.1 as logits log(0.3/0.7) and log(0.1/0.9)."""
    y = np.array([1.0, 2.0, 3.0, 6.0, 5.0, 4.0, 3.0, 2.0])
    theta = smoothing.initial_theta(y, 4)
    np.testing.assert_allclose(theta, [np.log(3 / 7), np.log(1 / 9), -2.0, -1.0, 0.0, 3.0])
    np.testing.assert_allclose(smoothing.initial_theta(y, 1), [np.log(3 / 7), np.log(1 / 9)])


def _series(n, season=4, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / season) + 0.1 * rng.standard_normal(n)


def test_a_season_is_fitted_only_with_two_seasons_and_a_horizon_of_rows():
    """Season 4, horizon 2: the season needs 2 * 4 + 2 + 1 = 11 rows; with 10 the fit
    (still at least MIN_ROWS = 10 rows) is simple exponential smoothing (season 1)."""
    y = _series(11)
    assert smoothing.fit_column(y, 4, 2)["season"] == 4
    assert smoothing.fit_column(y[:10], 4, 2)["season"] == 1
    assert smoothing.fit_column(y[:9], 4, 2) is None  # fewer than MIN_ROWS


def test_a_long_horizon_needs_two_rows_more_than_itself():
    """Horizon 12: at least 12 + 2 = 14 rows (more than MIN_ROWS = 10), else no fit; 14
    rows leave 2 origins with a full horizon, and the fit's loss is finite."""
    y = _series(14, season=1)
    assert smoothing.fit_column(y[:13], 1, 12) is None
    fit = smoothing.fit_column(y, 1, 12)
    assert fit is not None and fit["season"] == 1 and np.isfinite(fit["loss"])
