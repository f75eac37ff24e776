"""Forecast times of a series of business days (weekdays only) step on to the next
weekdays, at the rows' time of day; a daily series with weekends, or too few rows to
tell, steps by its median spacing as before."""
import numpy as np
from helpers import invoke, ok

from recurrent_plugins.forecast.predict import _forecast_times, _local_after, _stepping


def weekdays(start, stop, time_of_day=""):
    days = np.arange(np.datetime64(start), np.datetime64(stop))
    days = days[np.is_busday(days)]
    return (days.astype("datetime64[m]") + np.timedelta64(16 * 60, "m")) if time_of_day \
        else days


def test_business_days_step_on_to_the_next_weekdays():
    times = weekdays("2024-01-01", "2024-03-02")  # ends on Friday 2024-03-01
    later = _forecast_times(times, len(times) - 1, 4)
    assert [str(t) for t in later] == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    at_four = weekdays("2024-01-01", "2024-03-02", time_of_day="16:00")
    assert [str(t) for t in _forecast_times(at_four, len(at_four) - 1, 2)] == [
        "2024-03-04T16:00", "2024-03-05T16:00"]
    # a holiday (a missing weekday) leaves it a business-day series
    holiday = times[times != np.datetime64("2024-02-14")]
    assert str(_forecast_times(holiday, len(holiday) - 1, 1)[0]) == "2024-03-04"


def test_daily_rows_with_weekends_and_too_short_a_span_step_by_a_day():
    daily = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-02"))
    assert str(_forecast_times(daily, len(daily) - 1, 1)[0]) == "2024-03-02"  # Saturday
    short = weekdays("2024-02-26", "2024-03-01")  # Monday to Thursday: no week spanned
    assert str(_forecast_times(short, len(short) - 1, 2)[1]) == "2024-03-02"


def test_a_stream_appends_rows_on_weekdays():
    times = weekdays("2024-01-01", "2024-03-02")
    after = _local_after(times[-1], _stepping(times), np.arange(1, 3))
    assert [str(t) for t in after] == ["2024-03-04", "2024-03-05"]


def test_predict_labels_a_business_day_run_on_weekdays(tmp_path):
    times = weekdays("2024-01-01", "2024-07-01")  # ends on Friday 2024-06-28
    values = 100 + 5 * (np.arange(len(times)) % 5) + np.sin(np.arange(len(times)))
    data = tmp_path / "bd.csv"
    data.write_text("date,value\n" + "".join(f"{t},{v:.3f}\n" for t, v in zip(times, values)))
    ok(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run", "--steps", "2",
              "--window", "8", "--inputs", "level", "--threads", "1", "--quiet", "--no-plot"))
    lines = ok(invoke("predict", tmp_path / "run", "--steps", "3")).splitlines()
    assert [line.split(",")[0] for line in lines[-3:]] == [
        "2024-07-01", "2024-07-02", "2024-07-03"]
