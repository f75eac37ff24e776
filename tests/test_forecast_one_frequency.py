"""forecast: a series is forecast at one frequency. A file whose rows change frequency
after its training rows (daily, then weekly) is refused at training, and a new file for
eval or predict whose rows step otherwise than the run's data (daily rows for an hourly
run) is refused, in one line each: the model would take a row of one frequency for a
step of the other, and predict would date its forecasts by the wrong step. A few missing
rows do not change a series' frequency."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

SMALL = ["--hidden", "8", "--steps", "2", "--window", "12", "--inputs", "level",
         "--horizon", "3", "--model", "rnn", "--threads", "1", "--quiet", "--no-plot"]


def hourly_rows(start, count, every_hours=1, skip=()):
    """[[time, value]] of a daily-cycle series, one row per ``every_hours`` hours from
    ``start`` (numpy datetime text), without the rows numbered in ``skip``."""
    times = np.datetime64(start, "h") + every_hours * np.arange(count)
    hours = times.astype(np.int64)
    values = 100 + 20 * np.sin(2 * np.pi * hours / 24) + np.random.default_rng(0).normal(
        0, 1, count)
    return [[str(t).replace("T", " ") + ":00", f"{v:.3f}"]
            for i, (t, v) in enumerate(zip(times, values)) if i not in skip]


@pytest.fixture(scope="module")
def hourly_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hourly")
    data = write_csv(folder / "load.csv", ["time", "load"],
                     hourly_rows("2010-01-01T00", 24 * 14, skip=(50, 51, 200)))
    run = folder / "run"
    ok(invoke("train", "forecast", "--data", data, "--out", run, *SMALL))
    return run


def test_a_frequency_change_after_the_training_rows_is_refused(tmp_path):
    days = np.datetime64("2010-01-01") + np.arange(200)
    weeks = days[-1] + 7 * np.arange(1, 120)
    data = write_csv(tmp_path / "mixed.csv", ["date", "sales"],
                     [[str(d), f"{50 + 10 * np.sin(i):.2f}"]
                      for i, d in enumerate(np.concatenate([days, weeks]))])
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run",
                          *SMALL),
                   "'date'", "steps by 1 day in the training rows (lines 2-224)",
                   "by 7 days after them (lines 225-320)", "one frequency")
    assert not (tmp_path / "run").exists()


def test_missing_rows_keep_the_frequency_and_it_is_saved(hourly_run):
    state = json.loads((hourly_run / "config.json").read_text())["task_state"]
    assert state["time_step"] == {"unit": "second", "size": 3600.0}


@pytest.mark.parametrize("command", [["predict"], ["eval"], ["predict", "--stream"]])
def test_a_new_file_of_another_frequency_is_refused(hourly_run, tmp_path, command):
    daily = write_csv(tmp_path / "daily.csv", ["time", "load"],
                      hourly_rows("2010-01-15T00", 60, every_hours=24))
    result = invoke(*command[:1], hourly_run, "--data", daily, *command[1:])
    one_line_error(result, "daily.csv' steps by 1 day, the run's data by 1 hour")


def test_a_new_file_of_the_run_frequency_with_a_missing_row_is_read(hourly_run, tmp_path):
    recent = write_csv(tmp_path / "recent.csv", ["time", "load"],
                       hourly_rows("2010-01-15T00", 48, skip=(30,)))
    lines = ok(invoke("predict", hourly_run, "--data", recent)).splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "time", "2010-01-17T00:00", "2010-01-17T01:00", "2010-01-17T02:00"]


def test_steps_compare_across_units_and_kinds():
    from recurrent_plugins.forecast.predict import same_step, step_text, time_step

    months = np.arange("2010-01", "2011-01", dtype="datetime64[M]").astype("datetime64[D]")
    month_ends = (np.arange("2010-01", "2011-01", dtype="datetime64[M]") + 1).astype(
        "datetime64[D]") - 1
    assert time_step(months) == {"unit": "month", "size": 1.0}
    assert same_step(time_step(months), time_step(month_ends))
    # a monthly file whose days drift is still monthly (30 or 31 days a step)
    assert same_step(time_step(months), time_step(months + np.arange(12) % 2))
    assert not same_step(time_step(months), time_step(months[::3]))
    hours = np.datetime64("2010-01-01T00", "h") + np.arange(5)
    assert same_step(time_step(hours), time_step(hours.astype("datetime64[s]")))
    assert not same_step(time_step(hours), time_step(np.arange(5) * 3600.0))
    assert [step_text(time_step(t)) for t in (hours, months[::3], np.arange(5) * 3600.0,
                                              hours[::2].astype("datetime64[m]"))] == [
        "1 hour", "3 months", "3600 (numbers)", "2 hours"]
