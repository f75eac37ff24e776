"""Mutation audit, round 2: plugins/forecast/windows.py model inputs and splits, against
indices worked out by hand.

- model_inputs with seasonal inputs: the window's values y(s), s = t-W+1 .. t, then the
  seasonal differences y(s) - y(s-m), a row before the first taking row 0 (lagged).
- the hybrid model's extra columns: deseasonalised values less the level at the origin.
- split_ends rounds the validation and test row counts (n * fraction, to the nearest),
  at least H each.
- --inputs auto: "relative" when a line explains at least half the variance (the mean
  share over columns), checked against scipy's r^2."""
import numpy as np

from recurrent_plugins.forecast import windows as win

Y = np.array([3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, -6.0])


def test_model_inputs_with_seasonal_differences_by_hand():
    scaled = Y[:, None]
    last_seen = win.last_observed(np.ones((8, 1), bool))
    state = {"window": 3, "season": 2, "seasonal_inputs": True, "horizon": 1,
             "columns": ["y"]}
    origins = np.array([2, 6])
    x = win.model_inputs(scaled, last_seen, origins, state, dtype=np.float64)
    assert x.shape == (3, 2, 2)  # (W, B, C + C seasonal)
    # origin 2: rows 0, 1, 2; lags -2, -1, 0 -> rows 0, 0, 0
    np.testing.assert_array_equal(x[:, 0, 0], [3.0, -1.0, 4.0])
    np.testing.assert_array_equal(x[:, 0, 1], [3.0 - 3.0, -1.0 - 3.0, 4.0 - 3.0])
    # origin 6: rows 4, 5, 6; lags 2, 3, 4
    np.testing.assert_array_equal(x[:, 1, 0], [-5.0, 9.0, 2.0])
    np.testing.assert_array_equal(x[:, 1, 1], [-5.0 - 4.0, 9.0 - 1.0, 2.0 + 5.0])


def test_relative_inputs_subtract_the_windows_last_value():
    scaled = Y[:, None]
    last_seen = win.last_observed(np.ones((8, 1), bool))
    x = win.input_windows(scaled, last_seen, np.array([4]), 3, relative=True,
                          dtype=np.float64)
    np.testing.assert_array_equal(x[:, 0, 0], [4.0 + 5.0, 1.0 + 5.0, 0.0])


def test_split_ends_round_the_fractions():
    # 97 rows, 15% valid and 15% test: 14.55 -> 15 rows each (not 14)
    assert win.split_ends(97, 5, 2, 0.15, 0.15) == (67, 82)
    # a fraction smaller than the horizon's rows: H rows
    assert win.split_ends(40, 3, 6, 0.1, 0.1) == (28, 34)


def test_hybrid_inputs_are_deseasonalised_values_less_the_level_at_the_origin(monkeypatch):
    """The hybrid model's extra columns (ES-RNN's per-window normalisation): every window
    step's deseasonalised value less the smoothing's level AT THE ORIGIN t (not the row
    before it). The smoothing is replaced by known arrays, so only the assembly is
    checked: level[r] = 100 r, deseasonalised[r] = r."""
    n = 8
    level = (100.0 * np.arange(n))[:, None]
    deseasonalised = np.arange(n, dtype=np.float64)[:, None]
    monkeypatch.setattr(win, "smoothing_components",
                        lambda scaled, state: (None, level, deseasonalised))
    scaled = Y[:, None]
    last_seen = win.last_observed(np.ones((n, 1), bool))
    state = {"window": 3, "season": 1, "horizon": 1, "columns": ["y"], "model": "hybrid"}
    x = win.model_inputs(scaled, last_seen, np.array([4, 6]), state, dtype=np.float64)
    assert x.shape == (3, 2, 2)
    np.testing.assert_array_equal(x[:, 0, 1], [2.0 - 400, 3.0 - 400, 4.0 - 400])
    np.testing.assert_array_equal(x[:, 1, 1], [4.0 - 600, 5.0 - 600, 6.0 - 600])


def test_inputs_auto_is_relative_from_half_the_variance_explained_by_a_line():
    """resolve_inputs' guess: "relative" when a least-squares line explains at least
    TREND_SHARE = 0.5 of the training rows' variance, that share being scipy's r^2 of the
    line for one column. r^2 = 0.58 is relative, r^2 = 0.48 level."""
    from scipy import stats

    t = np.arange(40.0)
    rising = 0.5 * t + np.random.default_rng(1).normal(0, 5.0, 40)
    weaker = 0.5 * t + np.random.default_rng(44).normal(0, 8.0, 40)
    assert 0.55 < stats.linregress(t, rising).rvalue ** 2 < 0.6
    assert 0.45 < stats.linregress(t, weaker).rvalue ** 2 < 0.5
    assert win.resolve_inputs("auto", rising[:, None]) == "relative"
    assert win.resolve_inputs("auto", weaker[:, None]) == "level"
    # two columns: the mean of their shares (0.58 and 0.48: 0.53) decides
    assert win.resolve_inputs("auto", np.stack([rising, weaker], axis=1)) == "relative"
    # with a trendless column (share about 0.02) the mean is under 0.5: level
    flat = np.random.default_rng(3).normal(0, 1.0, 40)
    assert stats.linregress(t, flat).rvalue ** 2 < 0.1
    assert win.resolve_inputs("auto", np.stack([rising, flat], axis=1)) == "level"
    assert win.resolve_inputs("level", rising[:, None]) == "level"
