"""forecast: a --data file of one row given to a run with calendar features is refused in
one line (its forecast steps are dated by the spacing of the file's rows, which one row
does not have), by predict and by predict --stream alike."""
from __future__ import annotations

import datetime
import json

import numpy as np
from helpers import invoke, ok, one_line_error, write_csv


def test_one_row_with_calendar_features_is_one_line(tmp_path):
    start = datetime.date(2020, 1, 1)
    rng = np.random.default_rng(0)
    rows = [[(start + datetime.timedelta(days=i)).isoformat(),
             f"{100 + 10 * np.sin(2 * np.pi * i / 7) + rng.normal():.3f}"] for i in range(120)]
    data = write_csv(tmp_path / "daily.csv", ["date", "value"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "date", "--window", 1,
              "--season", 1, "--model", "rnn", "--inputs", "level", "--steps", 2,
              "--hidden", 8, "--threads", 1, "--quiet", "--no-plot", "--out", run))
    assert json.loads((run / "config.json").read_text())["task_state"]["calendar"]
    one = write_csv(tmp_path / "one.csv", ["date", "value"], [["2020-06-01", "101.5"]])
    message = "--data needs at least two rows"
    one_line_error(invoke("predict", run, "--data", one), message)
    one_line_error(invoke("predict", run, "--data", one, "--stream"), message)
    two = write_csv(tmp_path / "two.csv", ["date", "value"],
                    [["2020-06-01", "101.5"], ["2020-06-02", "99.0"]])
    ok(invoke("predict", run, "--data", two))
