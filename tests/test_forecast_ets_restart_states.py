"""forecast: a new file (eval or predict --data) restarts the ETS states on its first rows,
statsmodels estimating them with the fitted coefficients held fixed. That estimate is
unconstrained: on a multiplicative season near 0 for most of its phases (sales on one day
of the week) it can hold negative seasonal indices and indices of millions. Such states
are not used (the fit keeps the training states with the level moved, as for a file too
short to restart on), so the ETS baseline of the run's own training file read as a new
file stays within the series' range."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, series_run

from recurrent_plugins.forecast import ets

pytest.importorskip("statsmodels", reason="the ETS baseline needs the ets extra")

SMALL = ("--window", 8, "--inputs", "level", "--model", "hybrid", "--horizon", 7,
         "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")


def _series():
    """200 daily rows: about 5 on the day of the week whose phase peaks, 1e-6 else."""
    rng = np.random.default_rng(3)
    t = np.arange(200)
    return 1e-6 + (np.sin(2 * np.pi * t / 7) > 0.8) * 5.0 * np.exp(rng.normal(0, .1, 200))


def test_a_new_file_never_restarts_a_multiplicative_season_below_zero(tmp_path):
    y = _series()
    data, run = series_run(tmp_path, "sales", "sales", y, *SMALL)
    fit = json.loads((run / "config.json").read_text())["task_state"]["ets"][0]
    assert fit["kind"] == "hw_mul"
    own = json.loads(ok(invoke("eval", run, "--json")))["baselines"]["ets"]
    new = json.loads(ok(invoke("eval", run, "--data", data, "--json")))["baselines"]["ets"]
    assert new["rmse"] < y.max()  # no forecast far beyond the series
    assert new["mase"] < 2 * own["mase"] + 0.1
    moved = ets.restart([fit], y[:16, None])[0]  # the first rows a new file restarts on
    assert moved["initial_level"] > 0 and min(moved["initial_seasonal"]) > 0
