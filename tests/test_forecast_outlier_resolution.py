"""One value many orders of magnitude beyond the rest of the training rows (1e30 among
values near 10) made the standard scaler's mean and spread so large that every other value
was lost to float64 rounding: eval printed the naive baseline forecasting 0 for a series
near 10 (mae 9.96, mape 100) and a MASE of 0.0000 for the model and naive "tied", as if
both were perfect. Refused at training, one line naming the value and its line."""
import math

from helpers import invoke, ok, one_line_error, write_csv

SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--steps", 2, "--hidden", 4,
         "--threads", 1, "--quiet", "--no-plot", "--time-column", "t")


def _rows(outlier):
    return [[i, repr(outlier if i == 50 else math.sin(i / 3) + 10)] for i in range(120)]


def test_a_value_that_drowns_the_rest_in_rounding_is_refused(tmp_path):
    data = write_csv(tmp_path / "spike.csv", ("t", "y"), _rows(1e30))
    result = invoke("train", "forecast", "--data", data, *SMALL, "--out", tmp_path / "run")
    one_line_error(result, "'y'", "1e+30 at line 52", "lost to rounding")
    assert not (tmp_path / "run").exists()


def test_a_large_spike_that_keeps_the_rest_exact_still_trains(tmp_path):
    data = write_csv(tmp_path / "spike.csv", ("t", "y"), _rows(1e6))
    ok(invoke("train", "forecast", "--data", data, *SMALL, "--out", tmp_path / "run"))
    ok(invoke("eval", tmp_path / "run"))
