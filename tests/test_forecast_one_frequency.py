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


def business_days(count, end):
    """[[date, value]] of ``count`` business days (Monday to Friday) ending on ``end``."""
    days = np.arange(np.datetime64(end) - 3 * count, np.datetime64(end) + 1)
    days = days[np.is_busday(days)][-count:]
    values = 50 + 10 * np.sin(np.arange(count) / 3)
    return [[str(d), f"{v:.3f}"] for d, v in zip(days, values)]


def test_business_days_are_one_frequency_in_a_short_part_or_file(tmp_path):
    """Daily rows without weekends: a part or a file of a few rows whose median step a
    weekend moves (Thursday, Friday, Monday: 2 days) is still at the run's frequency,
    at training (one validation and one test row, Friday and Monday) and for predict
    --data (three rows)."""
    options = ["--window", "2", "--horizon", "1", "--inputs", "level", "--model", "rnn",
               "--hidden", "8", "--steps", "1", "--threads", "1", "--quiet", "--no-plot"]
    data = write_csv(tmp_path / "bdays.csv", ["date", "value"],
                     business_days(56, "2023-03-20"))  # a Monday
    ok(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run", *options,
              "--valid-fraction", "0.02", "--test-fraction", "0.02"))
    state = json.loads((tmp_path / "run" / "config.json").read_text())["task_state"]
    assert state["split_ends"][1:] == [55, 56]  # the last two rows: Friday, Monday
    assert state["time_step"] == {"unit": "second", "size": 86400.0}
    recent = write_csv(tmp_path / "recent.csv", ["date", "value"],
                       business_days(3, "2023-03-27"))  # Thursday, Friday, Monday
    assert ok(invoke("predict", tmp_path / "run", "--data", recent)).startswith("date,")


def test_a_short_file_steps_by_the_run_when_half_its_steps_do():
    from recurrent_plugins.forecast.predict import steps_by, time_step

    monthly = time_step(np.arange("2010-01", "2012-01", dtype="datetime64[M]"))
    # three months, one missing between them: a median of 1.5, rounded to 2 months
    assert steps_by(np.array(["2012-01", "2012-02", "2012-04"], "datetime64[M]"), monthly)
    assert not steps_by(np.array(["2012-01", "2012-03", "2012-05"], "datetime64[M]"),
                        monthly)
    daily = time_step(np.datetime64("2010-01-01") + np.arange(30))
    weekly = np.datetime64("2011-01-03") + 7 * np.arange(10)
    assert not steps_by(weekly, daily)
    # fewer daily steps than weekly ones: a file that changes frequency
    assert not steps_by(np.concatenate([weekly[0] - np.arange(4)[::-1], weekly[1:]]), daily)


def test_monthly_dates_with_utc_offsets_step_by_months_on_their_clock(tmp_path):
    """Local midnights of the 1st written with offsets (+01:00 in winter, +02:00 in
    summer) step by whole months on the file's clock, as predict dates them; in UTC they
    fall on the last evening of the month before, whose steps are no whole months."""
    def rows(first_month, count):
        out = []
        for i in range(first_month, first_month + count):
            month = np.datetime64("2010-01") + i
            summer = 4 <= int(str(month)[5:7]) <= 9
            out.append([f"{month}-01T00:00:00{'+02:00' if summer else '+01:00'}",
                        f"{100 + 10 * np.sin(2 * np.pi * i / 12):.3f}"])
        return out
    data = write_csv(tmp_path / "monthly.csv", ["time", "value"], rows(0, 96))
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--out", run, *SMALL))
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert state["time_step"] == {"unit": "month", "size": 1.0}
    # a recent file of two years and two months, to February 2019: forecast for March
    recent = write_csv(tmp_path / "recent.csv", ["time", "value"], rows(84, 26))
    assert "2019-03-01" in ok(invoke("predict", run, "--data", recent, "--steps", "1"))


def test_a_new_file_missing_every_third_row_is_labelled_at_the_run_frequency(hourly_run,
                                                                          tmp_path):
    """A file missing every third row steps by 1 and 2 hours in turn: it is at the run's
    frequency (half its steps are an hour), but its median step is 1.5 hours. The
    forecasts are the next rows at the run's step, labelled an hour apart after the last
    row, not at the file's median spacing."""
    recent = write_csv(tmp_path / "recent.csv", ["time", "load"],
                       hourly_rows("2010-01-15T00", 88, skip=range(2, 88, 3)))
    with open(recent, encoding="utf-8") as f:
        assert f.read().splitlines()[-1].startswith("2010-01-18 15:00,")
    result = json.loads(ok(invoke("predict", hourly_run, "--data", recent, "--json")))
    assert result["time"] == ["2010-01-18T16:00", "2010-01-18T17:00", "2010-01-18T18:00"]


def test_a_short_monthly_file_with_a_missing_month_steps_by_the_run():
    from recurrent_plugins.forecast.predict import _forecast_times, time_step

    monthly = time_step(np.arange("2010-01", "2012-01", dtype="datetime64[M]"))
    ends = np.array(["2012-01-31", "2012-02-29", "2012-04-30"], "datetime64[D]")
    assert [str(t) for t in _forecast_times(ends, 2, 2, monthly)] == [
        "2012-05-31", "2012-06-30"]
