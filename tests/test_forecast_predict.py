"""forecast: `recurrent predict RUN` forecasts what `recurrent eval` forecasts from the same
origin, also when the origin falls in a gap (the rows just before it missing), for the
hybrid and esrnn models (their smoothing restarts from the last observed row); the
roll-out beyond the horizon and `predict --stream` continue from it; and the forecast
steps of monthly, month-end, quarterly and yearly dates fall on calendar months."""
import json

import numpy as np
import pytest
from helpers import (check_stream_as_grown_predict, invoke, ok, two_monthly_columns,
                     write_csv)

from recurrent import plugins
from recurrent.checkpoint import RunDir
from recurrent.runs import load_model

from recurrent_plugins.forecast import windows as win
from recurrent_plugins.forecast.predict import _forecast_times, time_step

pytest.importorskip("statsmodels", reason="the hybrid model needs the ets extra")

SMALL = ["--hidden", "8", "--steps", "3", "--window", "12", "--inputs", "level",
         "--horizon", "4", "--threads", "1", "--quiet", "--no-plot"]
ROWS = 160  # splits: train 112 rows, valid 24, test 24 (the first test row is 136)
GAP = (133, 134, 135)  # the last validation rows: --origin test (row 135) lies in the gap


def series_rows(gap=GAP):
    """[[t, value]] of a seasonal (m = 12) trending series, blank at the ``gap`` rows."""
    t = np.arange(ROWS)
    noise = np.random.default_rng(0).normal(0.0, 0.3, ROWS)
    values = 20 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + noise
    return [[int(i), "" if i in gap else f"{v:.4f}"] for i, v in zip(t, values)]


@pytest.fixture(scope="module", params=["hybrid", "esrnn"])
def gap_run(request, tmp_path_factory):
    """(run path, data path) of a small run of the model on the series with the gap."""
    folder = tmp_path_factory.mktemp(f"gap_{request.param}")
    data = write_csv(folder / "gap.csv", ["time", "y"], series_rows())
    run = folder / "run"
    ok(invoke("train", "forecast", "--data", data, "--model", request.param,
              "--out", run, *SMALL))
    return run, data


def eval_forecast(run, origin_of, eval_data=None):
    """(origin row, (H, C) forecast in the original units) of eval's window at the origin
    ``origin_of(origins)`` picks among the test split's (task._scaled_forecasts)."""
    model, info = load_model(RunDir.open(str(run)), "best", 1)
    task = plugins.get_task(info["task"])
    state = info["task_state"]
    prepared = task.load(state, {"eval_data": eval_data} if eval_data else {})
    origin = origin_of(task._origins(state, prepared, "test"))
    forecast = task._scaled_forecasts(state, prepared, np.array([origin]), model.runner())
    return int(origin), win.unscale(forecast, state["scaler"])[0]


def predicted(run, *options):
    result = json.loads(ok(invoke("predict", run, "--json", *options)))
    return result, np.array([result["forecast"]["y"]]).T  # (S, 1)


def test_predict_from_the_test_split_in_a_gap_is_evals_first_test_window(gap_run):
    run, _ = gap_run
    origin, expected = eval_forecast(run, lambda origins: origins[0])
    assert origin == GAP[-1]  # the model's state before the origin is a gap's
    result, forecast = predicted(run, "--origin", "test")
    assert result["origin"] == origin and len(forecast) == 4
    np.testing.assert_allclose(forecast, expected, atol=1e-6, rtol=0)
    # a longer roll-out starts with the same steps, then goes on from them
    result, longer = predicted(run, "--origin", "test", "--steps", 10)
    assert result["time"] == list(range(origin + 1, origin + 11))
    np.testing.assert_allclose(longer[:4], expected, atol=1e-6, rtol=0)
    assert np.isfinite(longer).all()


def test_predict_on_recent_data_ending_in_a_gap_is_evals_window_there(gap_run, tmp_path):
    run, _ = gap_run
    rows = series_rows()[60:]
    recent = write_csv(tmp_path / "recent.csv", ["time", "y"], rows)
    # eval on a recent file, at the origin in the gap; predict on that file cut there
    origin, expected = eval_forecast(
        run, lambda origins: origins[origins == GAP[-1] - 60][0], eval_data=recent)
    cut = write_csv(tmp_path / "cut.csv", ["time", "y"], rows[:GAP[-1] - 60 + 1])
    assert origin == GAP[-1] - 60
    _, forecast = predicted(run, "--data", cut)
    np.testing.assert_allclose(forecast, expected, atol=1e-6, rtol=0)


def test_predict_on_data_ending_in_a_gap_says_how_far_back_it_forecasts_from(gap_run,
                                                                            tmp_path):
    """The file's last rows are empty: the forecast after them is made from the last
    observation, three rows further back than the file's end, and a note says so; a file
    whose last row is observed gets none."""
    run, _ = gap_run
    rows = series_rows()[60:GAP[-1] + 1]
    cut = write_csv(tmp_path / "cut.csv", ["time", "y"], rows)
    result = invoke("predict", run, "--data", cut)
    ok(result)
    assert result.stderr.strip() == (
        f"note: the last 3 row(s) of {cut} hold no 'y' value: the forecast reads them as "
        f"gaps held at its last observation ({GAP[0] - 1}), 4 steps before the first "
        f"forecast step"), result.stderr
    whole = write_csv(tmp_path / "whole.csv", ["time", "y"], series_rows()[60:])
    assert "note" not in invoke("predict", run, "--data", whole).stderr


def test_stream_after_a_gap_bridges_it_as_predict_on_the_grown_file(gap_run, tmp_path):
    run, _ = gap_run
    rows = series_rows()
    first = write_csv(tmp_path / "first.csv", ["time", "y"], rows[:GAP[-1] + 1])
    grown = write_csv(tmp_path / "grown.csv", ["time", "y"], rows[:GAP[-1] + 3])
    from click.testing import CliRunner

    from recurrent.cli import cli
    lines = [v for _, v in rows[GAP[-1] + 1:GAP[-1] + 3]]
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", first,
                                      "--steps", "6"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.splitlines()[-1])
    _, expected = predicted(run, "--data", grown, "--steps", 6)
    np.testing.assert_allclose(answer["forecast"]["y"], expected[:, 0], rtol=1e-9)


def dates(*texts):
    return np.array(texts, dtype="datetime64[D]")


@pytest.mark.parametrize("times, steps, expected", [
    # monthly, on the 1st
    (np.arange("2008-01", "2010-01", dtype="datetime64[M]").astype("datetime64[D]"), 5,
     ["2010-01-01", "2010-02-01", "2010-03-01", "2010-04-01", "2010-05-01"]),
    # month ends stay month ends (February's 28th or 29th)
    (dates("2009-09-30", "2009-10-31", "2009-11-30", "2009-12-31"), 5,
     ["2010-01-31", "2010-02-28", "2010-03-31", "2010-04-30", "2010-05-31"]),
    (dates("2011-09-30", "2011-10-31", "2011-11-30", "2011-12-31"), 3,
     ["2012-01-31", "2012-02-29", "2012-03-31"]),
    # quarterly, at quarter starts and at quarter ends
    (dates("2009-01-01", "2009-04-01", "2009-07-01", "2009-10-01"), 4,
     ["2010-01-01", "2010-04-01", "2010-07-01", "2010-10-01"]),
    (dates("2009-03-31", "2009-06-30", "2009-09-30", "2009-12-31"), 4,
     ["2010-03-31", "2010-06-30", "2010-09-30", "2010-12-31"]),
    # the 30th of every month, February's last day: the day kept, clamped
    (dates("2009-11-30", "2009-12-30", "2010-01-30", "2010-02-28", "2010-03-30"), 3,
     ["2010-04-30", "2010-05-30", "2010-06-30"]),
    # yearly, across a leap year
    (dates("2009-01-01", "2010-01-01", "2011-01-01", "2012-01-01"), 3,
     ["2013-01-01", "2014-01-01", "2015-01-01"]),
])
def test_forecast_times_of_dates_in_whole_months_fall_on_calendar_months(times, steps,
                                                                          expected):
    out = _forecast_times(times, len(times) - 1, steps)
    assert out.dtype == times.dtype
    assert [str(t) for t in out] == expected
    # from an origin inside the data: its real times, then the calendar months
    inside = _forecast_times(times, len(times) - 2, steps + 1)
    assert [str(t) for t in inside] == [str(times[-1]), *expected]


def test_monthly_dates_a_few_days_off_their_day_still_step_by_months():
    """Monthly dates on the 15th, one moved to the 16th and one to the 13th (a date
    moved off a weekend): the forecasts fall on the 15th of the next months, not a
    median 31 days apart drifting through the month; dates of every day of the month are
    not monthly."""
    times = np.arange("2010-01", "2012-01", dtype="datetime64[M]").astype(
        "datetime64[D]") + 14
    times[5] += 1
    times[17] -= 2
    out = _forecast_times(times, len(times) - 1, 24)
    assert [str(t) for t in out[[0, 1, 2, 23]]] == [
        "2012-01-15", "2012-02-15", "2012-03-15", "2013-12-15"]
    assert time_step(times) == {"unit": "month", "size": 1.0}
    assert time_step(times + np.arange(len(times)) % 7)["unit"] == "second"
    times[5] += 2  # the 18th: 3 days off
    assert time_step(times)["unit"] == "month"
    times[5] += 1  # the 19th: 4 days off
    assert time_step(times)["unit"] == "second"


def test_forecast_times_keep_the_time_of_day_and_the_unit():
    times = np.array(["2009-10-01T06:00", "2009-11-01T06:00", "2009-12-01T06:00"],
                     dtype="datetime64[m]")
    out = _forecast_times(times, 2, 2)
    assert out.dtype == times.dtype
    assert [str(t) for t in out] == ["2010-01-01T06:00", "2010-02-01T06:00"]
    # sub-monthly dates and numbers (years...) step by their median spacing, as before
    weekly = dates("2009-12-17", "2009-12-24", "2009-12-31")
    assert [str(t) for t in _forecast_times(weekly, 2, 2)] == ["2010-01-07", "2010-01-14"]
    numbers = np.array([2007.0, 2008.0, 2009.0])
    assert _forecast_times(numbers, 2, 2).tolist() == [2010.0, 2011.0]


def test_predict_labels_monthly_dates_by_calendar_month(tmp_path):
    months = np.arange("2000-01", "2010-01", dtype="datetime64[M]").astype("datetime64[D]")
    t = np.arange(len(months))
    values = 50 + 0.1 * t + 5 * np.sin(2 * np.pi * t / 12)
    data = write_csv(tmp_path / "monthly.csv", ["month", "y"],
                     [[str(m), f"{v:.4f}"] for m, v in zip(months, values)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--model", "rnn", "--out", run, *SMALL))
    lines = ok(invoke("predict", run, "--steps", 6)).splitlines()
    assert lines[0] == "month,y"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "2010-01-01", "2010-02-01", "2010-03-01", "2010-04-01", "2010-05-01", "2010-06-01"]


def berlin(local: np.ndarray) -> list[str]:
    """Local times (datetime64[m]) as Europe/Berlin writes them: +02:00 from the last
    Sunday of March to the last Sunday of October (for these midnights and hours, the
    months April to October, and the 1st of each), else +01:00."""
    months = local.astype("datetime64[M]").astype(int) % 12 + 1
    return [f"{str(t)}{'+02:00' if 4 <= m <= 10 else '+01:00'}"
            for t, m in zip(local, months)]


def test_predict_labels_monthly_dates_with_utc_offsets_by_local_calendar_month(tmp_path):
    # The 1st of every month at local midnight, with daylight saving: in UTC these are the
    # last day of the month before, at 23:00 or 22:00, which is no calendar-month step.
    months = np.arange("2000-01", "2010-01", dtype="datetime64[M]").astype("datetime64[m]")
    t = np.arange(len(months))
    values = 50 + 0.1 * t + 5 * np.sin(2 * np.pi * t / 12)
    data = write_csv(tmp_path / "monthly.csv", ["month", "y"],
                     [[m, f"{v:.4f}"] for m, v in zip(berlin(months), values)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--model", "rnn", "--out", run, *SMALL))
    lines = ok(invoke("predict", run, "--steps", 3)).splitlines()
    # after the last row, 2009-12-01T00:00+01:00: the next months' 1st, at its offset
    assert [line.split(",")[0] for line in lines[1:]] == [
        "2010-01-01T00:00+01:00", "2010-02-01T00:00+01:00", "2010-03-01T00:00+01:00"]
    # from the test split: the rows' own times and offsets as the file writes them, then
    # the months after the last row
    result = json.loads(ok(invoke("predict", run, "--origin", "test", "--steps", 20,
                                  "--json")))
    test_rows = berlin(months)[-19:]  # the test split: the last 18 rows
    assert result["origin"] == test_rows[0]
    assert result["time"] == [*test_rows[1:], "2010-01-01T00:00+01:00",
                              "2010-02-01T00:00+01:00"]


def test_predict_labels_hourly_times_with_a_utc_offset_in_that_offset(tmp_path):
    hours = np.arange(0, 24 * 12, dtype="timedelta64[h]") + np.datetime64("2021-03-01T00:00")
    t = np.arange(len(hours))
    values = 50 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 1, len(t))
    data = write_csv(tmp_path / "hourly.csv", ["time", "y"],
                     [[f"{h}+02:00", f"{v:.4f}"] for h, v in zip(hours, values)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--model", "rnn", "--out", run, *SMALL))
    result = json.loads(ok(invoke("predict", run, "--steps", 2, "--json")))
    # the last row is 2021-03-12T23:00+02:00 (21:00 in UTC): the next hours, not 22:00
    assert result["origin"] == "2021-03-12T23:00+02:00"
    assert result["time"] == ["2021-03-13T00:00+02:00", "2021-03-13T01:00+02:00"]


def test_stream_of_month_ends_with_a_utc_offset_answers_as_predict_on_the_grown_file(
        tmp_path):
    # Month ends at local midnight, +05:00: in UTC the day before at 19:00, which is no
    # calendar-month step; the appended rows must be dated by local months, as the grown
    # file writes them, for the calendar features (year) of a monthly run.
    rows = [[f"{date}T00:00+05:00", a, b] for date, a, b in two_monthly_columns(84)]
    data = write_csv(tmp_path / "monthly.csv", ["date", "a", "b"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "date", "--column", "a",
              "--column", "b", "--model", "rnn", "--blend", "full", "--out", run, *SMALL))
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert state["calendar"] == ["year"]
    check_stream_as_grown_predict(run, tmp_path, rows[:60], rows[60:66], 3,
                                  lambda row: f"{row[1]},{row[2]}")
