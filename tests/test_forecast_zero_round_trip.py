"""forecast: every forecast is scored and printed in original units after the scaling's
round trip, (v - center) / scale * scale + center, which can return an original 0 as a
float64 residue such as -6.9e-18. sMAPE counts a pair with y = f = 0 as 0, so the round
trip returns such residues as exactly 0: the naive forecast from a zero row of a zero
target scores 0, and the baselines' sMAPE is the hand computation's."""
import json

import numpy as np
from helpers import invoke, ok, series_run

from recurrent_plugins.forecast import windows as win

HORIZON = 10
SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--horizon", HORIZON,
         "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")


def _series():
    """200 rows of a weekly wave with noise, exactly 0 on every tenth row."""
    rng = np.random.default_rng(0)
    t = np.arange(200)
    y = 3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, len(t))
    y[::10] = 0.0
    return y


def _smape(actual, forecast):
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.zeros_like(actual)
    np.divide(2 * np.abs(forecast - actual), denominator, out=terms, where=denominator > 0)
    return 100 * terms.mean()


def test_smape_counts_a_zero_forecast_of_a_zero_target_as_zero(tmp_path):
    y = _series()
    _, run = series_run(tmp_path, "zeros", "value", y, *SMALL)
    report = json.loads(ok(invoke("eval", run, "--json")))
    scaler = json.loads((run / "config.json").read_text())["task_state"]["scaler"]
    center, spread = scaler["center"][0], scaler["scale"][0]
    assert (0.0 - center) / spread * spread + center != 0.0  # the residue this is about

    test = len(y) - round(0.15 * len(y))  # the first test row
    origins = np.arange(test - 1, len(y) - HORIZON)
    targets = np.stack([y[o + 1:o + 1 + HORIZON] for o in origins])
    naive = np.repeat(y[origins][:, None], HORIZON, axis=1)
    assert ((naive == 0) & (targets == 0)).any()  # zero forecasts of zero targets
    baselines = report["baselines"]
    assert baselines["naive"]["windows"] == len(origins)
    np.testing.assert_allclose(baselines["naive"]["smape"], _smape(targets, naive),
                               rtol=1e-9)
    assert win.unscale(np.array([[(0.0 - center) / spread]]), scaler)[0, 0] == 0.0


def test_unscale_keeps_infinite_and_nan_values():
    """Only a round-trip residue becomes 0: an infinite or NaN value (a diverged model's
    forecast) stays infinite or NaN rather than passing as a forecast of 0."""
    y = _series()
    scaler = win.fit_scaler(y[:140, None], np.ones((140, 1), dtype=bool), "standard",
                            ["value"])
    scaled = np.array([[np.inf], [-np.inf], [np.nan], [(0.0 - scaler["center"][0])
                                                       / scaler["scale"][0]]])
    back = win.unscale(scaled, scaler)[:, 0]
    assert back[0] == np.inf and back[1] == -np.inf and np.isnan(back[2])
    assert back[3] == 0.0
