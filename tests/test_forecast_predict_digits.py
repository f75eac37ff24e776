"""forecast: `recurrent predict`'s CSV shows each forecast to a small share of its column's
spread, also for a series far from zero that moves little (a counter near 1.2e9 changing
by tens), whose steps six significant digits would all print as 1.2345e+09; a series near
its own scale keeps six significant digits."""
import json
import math

import numpy as np
import pytest
from helpers import invoke, ok, write_csv

SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--horizon", 7,
         "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")


def _run(tmp_path, offset):
    t = np.arange(140)
    values = offset + np.round(50 * np.sin(2 * np.pi * t / 7) + 5 * np.cos(t))
    data = write_csv(tmp_path / "series.csv", ("t", "value"),
                     [[int(i), repr(float(v))] for i, v in zip(t, values)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", *SMALL,
              "--out", run))
    spread = float(np.std(values[:int(len(values) * 0.7)]))
    rows = ok(invoke("predict", run)).splitlines()[1:]
    exact = json.loads(ok(invoke("predict", run, "--json")))["forecast"]["value"]
    return [r.split(",")[1] for r in rows], exact, spread


@pytest.mark.parametrize("offset", [1.2345e9, 1.2345e11])
def test_csv_forecasts_of_a_series_far_from_zero_resolve_its_changes(tmp_path, offset):
    printed, exact, spread = _run(tmp_path, offset)
    assert len(printed) == len(exact) == 7
    # each printed value is the forecast to a ten-thousandth of the spread
    assert all(abs(float(p) - e) <= 1e-4 * spread for p, e in zip(printed, exact))
    assert len(set(printed)) == len(set(np.round(exact, 2)))  # the steps stay apart


def test_csv_forecasts_of_a_series_near_its_scale_keep_six_digits(tmp_path):
    printed, exact, _ = _run(tmp_path, 100.0)
    assert printed == [f"{e:.6g}" for e in exact]
    assert all(math.isfinite(float(p)) for p in printed)
