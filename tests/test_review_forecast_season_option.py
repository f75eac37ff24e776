"""--season M that the training rows do not hold twice: refused in one line before the
run exists.

Such a season leaves most training rows without a value one season back (the seasonal
anchors and inputs of the training windows would read row 0 in its place) and, longer
than the training rows, the validation split without a seasonal-naive baseline, while the
test split has one: a run that would look seasonal."""
from __future__ import annotations

import math

from helpers import invoke, ok, one_line_error, write_csv


def _data(tmp_path, n=200):
    rows = [[i, round(20 + 5 * math.sin(2 * math.pi * i / 12) + 0.05 * i, 3)]
            for i in range(n)]
    return write_csv(tmp_path / "seas.csv", ("t", "value"), rows)


TRAIN = ("--window", 8, "--inputs", "level", "--model", "rnn", "--steps", 2, "--hidden", 4,
         "--threads", 1, "--quiet", "--no-plot")


def test_a_season_longer_than_the_training_rows_is_refused(tmp_path):
    data = _data(tmp_path)  # 200 rows: 140 for training at the default fractions
    run = tmp_path / "run"
    for season in (150, 140):
        result = invoke("train", "forecast", "--data", data, "--time-column", "t",
                        "--season", season, *TRAIN, "--out", run)
        one_line_error(result, f"--season {season}", "140 rows")
        assert not run.exists()


def test_a_season_the_training_rows_hold_less_than_twice_is_refused(tmp_path):
    data = _data(tmp_path)  # 140 training rows: seasons of up to 70 rows fit twice
    run = tmp_path / "run"
    for season in (71, 100, 139):
        result = invoke("train", "forecast", "--data", data, "--time-column", "t",
                        "--season", season, *TRAIN, "--out", run)
        one_line_error(result, f"--season {season}", "140 rows", "fewer than two seasons",
                       "at most 70")
        assert not run.exists()


def test_a_season_the_training_rows_hold_is_kept(tmp_path):
    data = _data(tmp_path)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", "--season", 70,
              *TRAIN, "--out", run))
    assert "seasonal_naive (m=70)" in ok(invoke("eval", run, "--split", "valid"))
