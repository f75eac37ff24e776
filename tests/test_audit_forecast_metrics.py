"""Mutation audit, round 2: plugins/forecast/metrics.py figures the existing tests left
unpinned, each against a hand-worked example.

- MAPE skips only the actuals that ARE zero: negative actuals count, with |y| below.
- sMAPE's denominator is |y| + |f| (Hyndman & Koehler 2006's symmetric form as the module
  defines it), not |y + f|: they differ when the forecast has the other sign.
- With several columns every metric is the MEAN over columns (3 columns: the mean and the
  median differ).
- spread's std is the population one (ddof 0), as its docstring says.
- detect_season: a peak just over min_correlation counts (checked with statsmodels' ACF),
  and the lags searched reach N // 3."""
import math

import numpy as np
import pytest

from recurrent_plugins.forecast import metrics as fm


def test_mape_counts_negative_actuals():
    actual = np.array([-2.0, 4.0, 0.0, -5.0])
    forecast = np.array([-1.0, 2.0, 1.0, -5.0])
    m = fm.column_metrics(actual, forecast, mase_scale=1.0)
    # |e| / |y| over the nonzero actuals: 1/2, 2/4, 0/5 -> mean 1/3
    assert m["mape"] == pytest.approx(100 / 3)


def test_smape_denominator_is_the_sum_of_absolute_values():
    actual = np.array([2.0, 1.0])
    forecast = np.array([-2.0, 1.0])
    m = fm.column_metrics(actual, forecast, mase_scale=1.0)
    # pair 1: 2 * 4 / (2 + 2) = 2; pair 2: 0 -> mean 1 -> 100 %
    assert m["smape"] == pytest.approx(100.0)
    assert m["mae"] == pytest.approx(2.0)


def test_three_columns_are_averaged_not_medianed():
    actual = np.zeros((2, 1, 3))  # (B=2, H=1, C=3)
    forecast = np.array([[[1.0, 2.0, 9.0]], [[1.0, 2.0, 9.0]]])
    m = fm.forecast_metrics(actual, forecast, np.array([1.0, 1.0, 1.0]), ["a", "b", "c"])
    # per-column MAE 1, 2, 9: mean 4 (the median would be 2)
    assert m["mae"] == pytest.approx(4.0)
    assert m["rmse"] == pytest.approx(4.0)
    assert m["mase"] == pytest.approx(4.0)
    assert m["mae[c]"] == pytest.approx(9.0)


def test_spread_is_population_std_and_skips_nan():
    s = fm.spread([1.0, 3.0, float("nan"), 5.0])
    # mean 3, squared deviations 4, 0, 4 over 3 values: variance 8/3
    assert s["mean"] == pytest.approx(3.0)
    assert s["std"] == pytest.approx(math.sqrt(8 / 3))
    assert (s["min"], s["max"]) == (1.0, 5.0)


def test_detect_season_accepts_a_peak_just_over_the_threshold():
    """detect_season's rule written out with statsmodels' ACF of the detrended series: the
    highest local maximum among lags 2..N//3, kept when it reaches min_correlation. Here
    that peak is lag 6 at 0.301: just over the default 0.3, so the season is 6, and
    under a threshold of 0.31 there is none."""
    from statsmodels.tsa.stattools import acf

    rng = np.random.default_rng(5)
    n = 90
    t = np.arange(n)
    y = 0.7 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 1, n) + 0.05 * t
    residual = y - np.polyval(np.polyfit(t, y, 1), t)
    a = acf(residual, nlags=n // 3 + 1, fft=False)
    peaks = [k for k in range(2, n // 3 + 1) if a[k] > a[k - 1] and a[k] >= a[k + 1]]
    best = max(peaks, key=lambda k: a[k])
    assert best == 6 and 0.3 <= a[best] < 0.305
    assert fm.detect_season(y) == 6
    assert fm.detect_season(y, min_correlation=0.31) == 1


def test_detect_season_looks_up_to_a_third_of_the_rows():
    """Lags 2 .. N // 3 by default: 40 rows of a period-12 wave have their peak at lag 12
    (statsmodels' ACF), within 40 // 3 = 13 but past a quarter of the rows (10)."""
    from statsmodels.tsa.stattools import acf

    t = np.arange(40)
    y = np.sin(2 * np.pi * t / 12) + 0.01 * t
    residual = y - np.polyval(np.polyfit(t, y, 1), t)
    a = acf(residual, nlags=14, fft=False)
    assert max(range(2, 14), key=lambda k: a[k]) == 12 and a[12] >= 0.3
    assert fm.detect_season(y) == 12
