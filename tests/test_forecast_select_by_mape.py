"""forecast: --select-by mape on a validation split whose observed values of a column are
all 0 (intermittent demand in a quiet spell) would score every evaluation NaN, as MAPE
leaves zero actuals out, so no checkpoint or candidate could be chosen by it. It is
refused before the run directory is made, in one line naming the column; a column with
non-zero validation values still selects by its own MAPE."""
import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

SMALL = ("--window", 8, "--inputs", "level", "--model", "rnn", "--horizon", 7,
         "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")


def _data(tmp_path):
    """200 rows (training 140, validation 30, test 30) of two count columns; ``quiet``
    is 0 on every validation row."""
    rng = np.random.default_rng(7)
    quiet = rng.poisson(0.5, 200).astype(float)
    quiet[140:170] = 0.0
    busy = rng.poisson(3.0, 200).astype(float) + 1
    return write_csv(tmp_path / "counts.csv", ("t", "quiet", "busy"),
                     [[i, q, b] for i, (q, b) in enumerate(zip(quiet, busy))])


@pytest.mark.parametrize("select_by", ["mape:min", "mape[quiet]:min"])
def test_selecting_by_a_mape_that_validation_cannot_score_is_refused(tmp_path, select_by):
    data = _data(tmp_path)
    result = invoke("train", "forecast", "--data", data, "--time-column", "t",
                    "--column", "quiet", "--column", "busy", *SMALL,
                    "--select-by", select_by, "--out", tmp_path / "run")
    one_line_error(result, f"--select-by {select_by}", "'quiet'", "validation")
    assert not (tmp_path / "run").exists()


def test_a_column_with_non_zero_validation_values_selects_by_its_mape(tmp_path):
    data = _data(tmp_path)
    out = ok(invoke("train", "forecast", "--data", data, "--time-column", "t",
                    "--column", "quiet", "--column", "busy", *SMALL,
                    "--select-by", "mape[busy]:min", "--out", tmp_path / "run"))
    assert "best valid mape[busy]" in out and "nan" not in out
