"""forecast: a MAPE over actuals that are all 0 (intermittent demand in a quiet spell) is
undefined, as MAPE leaves zero actuals out; `recurrent eval` and `eval --backtest` print
it as nan and say why in one line, which a report with a defined MAPE does not hold."""
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
