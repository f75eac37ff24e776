"""forecast: a MAPE over actuals that are all 0 (intermittent demand in a quiet spell) is
undefined, as MAPE leaves zero actuals out; `recurrent eval` and `eval --backtest` print
it as nan and say why in one line, which a report with a defined MAPE does not hold. A
column without a figure is left out of the mean over columns, as an origin without one is
out of the backtest's spread, and the report names what was left out."""
import json

import numpy as np
from helpers import invoke, ok, write_csv

SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--horizon", 7,
         "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")
NOTE = "MAPE leaves zero actuals out"


def _run(tmp_path, quiet_test):
    """200 rows of counts (test split: the last 30), all 0 there with ``quiet_test``."""
    rng = np.random.default_rng(7)
    y = rng.poisson(0.5, 200).astype(float)
    if quiet_test:
        y[170:] = 0.0
    data = write_csv(tmp_path / "counts.csv", ("t", "count"), [[i, v] for i, v in enumerate(y)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", *SMALL,
              "--out", run))
    return run


def test_an_undefined_mape_is_explained(tmp_path):
    run = _run(tmp_path, quiet_test=True)
    for args in ([], ["--backtest", 3]):
        out = ok(invoke("eval", run, *args))
        mape = next(line for line in out.splitlines() if line.startswith("mape "))
        assert "nan" in mape
        assert sum(NOTE in line for line in out.splitlines()) == 1, out


def test_a_defined_mape_has_no_note(tmp_path):
    out = ok(invoke("eval", _run(tmp_path, quiet_test=False)))
    assert NOTE not in out and "nan" not in out


def _two_column_run(tmp_path):
    """Column a: counts, all 0 in the test split (its last 30 rows); column b: counts
    of at least 1."""
    rng = np.random.default_rng(7)
    a, b = rng.poisson(0.5, 200).astype(float), rng.poisson(5, 200) + 1.0
    a[170:] = 0.0
    data = write_csv(tmp_path / "two.csv", ("t", "a", "b"),
                     [[i, x, y] for i, (x, y) in enumerate(zip(a, b))])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", "--column", "a",
              "--column", "b", *SMALL, "--out", run))
    return run


def test_a_column_of_zeros_is_left_out_of_the_mean_in_eval_and_backtest(tmp_path):
    """MAPE leaves out what it cannot score at every level: zero actuals in a column, a
    column whose actuals are all 0 in the mean over columns (as the backtest leaves an
    origin without a figure out of its spread), and the report says which column."""
    run = _two_column_run(tmp_path)
    report = json.loads(ok(invoke("eval", run, "--json")))
    for name, values in {"model": report["metrics"], **report["baselines"]}.items():
        assert values["mape[a]"] is None, name  # strict JSON: nan is null
        assert values["mape"] == values["mape[b]"], name
    out = ok(invoke("eval", run))
    notes = [line for line in out.splitlines() if NOTE in line]
    assert notes == ["mape[a] nan: its actuals are all 0 here, and MAPE leaves zero actuals "
                     "out; mape is the mean over the other columns"], out
    backtest = json.loads(ok(invoke("eval", run, "--backtest", 3, "--json")))["backtest"]
    model = backtest["forecasters"]["model"]
    assert model["mape"]["count"] == 3 and model["mape[a]"]["count"] == 0
    assert model["mape"]["mean"] == model["mape[b]"]["mean"]
    out = ok(invoke("eval", run, "--backtest", 3))
    notes = [line for line in out.splitlines() if NOTE in line]
    assert len(notes) == 1 and notes[0].startswith("mape[a] at 0 of 3 origins only"), out


def test_a_backtest_says_over_how_many_origins_its_mape_is(tmp_path):
    """Origins whose actuals are all 0 have no MAPE: the spread is over the others, and
    the report says how many those are."""
    rng = np.random.default_rng(7)
    y = rng.poisson(0.5, 200).astype(float)
    y[170:185], y[185:] = 0.0, np.maximum(y[185:], 1.0)
    data = write_csv(tmp_path / "counts.csv", ("t", "count"), [[i, v] for i, v in enumerate(y)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", *SMALL, "--out", run))
    backtest = json.loads(ok(invoke("eval", run, "--backtest", 10, "--json")))["backtest"]
    count = backtest["forecasters"]["model"]["mape"]["count"]
    assert 0 < count < 10 and backtest["forecasters"]["model"]["mase"]["count"] == 10
    out = ok(invoke("eval", run, "--backtest", 10))
    assert (f"mape over {count} of 10 origins: the actuals are all 0 at the others, and "
            f"{NOTE}") in out.splitlines()
    assert "mape over" not in ok(invoke("eval", run))
