"""Forecast values so large that their squares overflow float64 (|v| > ~1e154) were read
as any others: training printed a screen of numpy RuntimeWarnings and exited 0, eval
reported rmse inf and naive nan; at 1e308 the error blamed values that "never change".
Refused when read, one line naming the column, value and line."""
import math

import pytest
from helpers import invoke, ok, one_line_error, write_csv

SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--steps", 2, "--hidden", 4,
         "--threads", 1, "--quiet", "--no-plot")


def _series(path, size):
    return write_csv(path, ("t", "value"),
                     [[i, repr(math.sin(i / 5) * size)] for i in range(120)])


@pytest.mark.parametrize("size", [1e200, 1e308])
def test_values_whose_squares_overflow_are_refused(tmp_path, size):
    data = _series(tmp_path / "huge.csv", size)
    result = invoke("train", "forecast", "--data", data, "--time-column", "t", *SMALL,
                    "--out", tmp_path / "run")
    one_line_error(result, "'value'", "rescale")
    assert "RuntimeWarning" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_large_but_safe_values_still_train(tmp_path):
    data = _series(tmp_path / "large.csv", 1e39)
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", *SMALL,
              "--out", tmp_path / "run"))
