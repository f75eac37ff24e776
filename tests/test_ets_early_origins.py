"""column_components asks statsmodels for the forecasts of the first origins (those whose
season reaches before row 0) on the first rows of the series only: each predict call
filters every row of the results it is called on, so asking the whole series' results
cost (season) x (rows): 17 s for 50,000 hourly rows with a weekly season. Counted by the
rows behind each predict call; the forecasts are those of the whole series' results."""
import numpy as np
import pytest

from recurrent_plugins.forecast import ets

pytest.importorskip("statsmodels", reason="the ets extra (statsmodels) is not installed")


def _series(n, m, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (10 + 3 * np.sin(2 * np.pi * t / m) + np.cumsum(rng.standard_normal(n)) * 0.05
            + rng.standard_normal(n) * 0.3)


def test_early_origins_are_predicted_from_the_first_rows_only(monkeypatch):
    n, m, horizon = 3000, 12, 5
    values = _series(n, m)
    fit = ets.fit(values[:1000, None], m)[0]
    assert "initial_seasonal" in fit
    filtered = ets._filtered
    rows_per_predict = []

    def counting(rows, fit_):
        result = filtered(rows, fit_)
        predict = result.predict

        def counted(*args, **kwargs):
            rows_per_predict.append(len(rows))
            return predict(*args, **kwargs)

        result.predict = counted
        return result

    monkeypatch.setattr(ets, "_filtered", counting)
    forecast, _, _ = ets.column_components(values, fit, horizon)
    assert rows_per_predict, "no origin needed the initial seasonal states"
    assert max(rows_per_predict) <= 2 * m + 2 + horizon, max(rows_per_predict)

    # the same numbers as statsmodels' forecasts from the whole series' results
    whole = filtered(values, fit)
    steps = np.arange(1, horizon + 1)
    early = [o for o in range(n)
             if (o + steps - m * -(-steps // m) < 0).any() and o + horizon < n]
    for o in early:
        np.testing.assert_array_equal(
            forecast[o], np.asarray(whole.predict(start=o + 1, end=o + horizon, dynamic=0)))
