"""forecast time columns: the formats CSV files have, one format and one day/month order per
column, UTC offsets, and a one-line error naming the line and the value for everything else."""
import re

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.errors import UserError
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast.times import parse_times


def parse(values, date_order=None):
    return parse_times([(i + 2, v) for i, v in enumerate(values)], "t", "f.csv", date_order)


def dates(*texts):
    return np.array(texts, dtype="datetime64")


# ---- formats --------------------------------------------------------------------------------

def test_slashes_with_year_first_and_a_time():
    times, order = parse(["2010/01/01 00:00", "2010/01/01 01:00", "2010/01/02 23:30"])
    np.testing.assert_array_equal(times, dates("2010-01-01T00:00", "2010-01-01T01:00",
                                               "2010-01-02T23:30"))
    assert times.dtype == np.dtype("datetime64[m]") and order is None


def test_month_first_us_dates():
    times, order = parse(["01/30/2010", "01/31/2010", "02/01/2010"])
    np.testing.assert_array_equal(times, dates("2010-01-30", "2010-01-31", "2010-02-01"))
    assert times.dtype == np.dtype("datetime64[D]") and order == "mdy"


def test_utc_offsets_are_normalised_to_utc():
    times, _ = parse(["2010-01-01 00:00:00+00:00", "2010-01-01 02:00:00+01:00",
                      "2010-01-01 01:30:00-01:00"])
    np.testing.assert_array_equal(times, dates("2010-01-01T00:00", "2010-01-01T01:00",
                                               "2010-01-01T02:30"))
    times, _ = parse(["2010-01-01T00:00:00Z", "2010-01-01T00:00:01Z"])
    assert times.dtype == np.dtype("datetime64[s]")


def test_unix_seconds_are_numbers():
    times, order = parse(["1262304000", "1262307600", "1262311200.5"])
    assert times.dtype == np.float64 and order is None
    np.testing.assert_array_equal(times, [1262304000, 1262307600, 1262311200.5])


def test_iso_dates_and_months_and_month_names():
    assert parse(["1958-03-29", "1958-04-05"])[0].dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(parse(["2010-01", "2010-02"])[0],
                                  dates("2010-01-01", "2010-02-01"))
    np.testing.assert_array_equal(parse(["Jan 2010", "Feb 2010"])[0],
                                  dates("2010-01-01", "2010-02-01"))


def test_quarters_and_iso_weeks_are_dates():
    for quarters in (["2009-Q4", "2010-Q1", "2010-Q2"], ["2009Q4", "2010q1", "2010Q2"],
                     ["Q4 2009", "Q1 2010", "Q2 2010"]):
        times, order = parse(quarters)
        np.testing.assert_array_equal(times, dates("2009-10-01", "2010-01-01", "2010-04-01"))
        assert times.dtype == np.dtype("datetime64[D]") and order is None
    np.testing.assert_array_equal(parse(["2009-W53", "2010-W01", "2010-W02"])[0],
                                  dates("2009-12-28", "2010-01-04", "2010-01-11"))
    np.testing.assert_array_equal(parse(["2010-W01-3", "2010-W02-3"])[0],
                                  dates("2010-01-06", "2010-01-13"))
    with pytest.raises(UserError, match=re.escape("'2010-W53' at line 3: neither a number "
                                                  "nor a date (Invalid week: 53)")):
        parse(["2010-W52", "2010-W53"])


def test_a_quarterly_file_trains_with_its_season_and_labels_forecasts(tmp_path):
    rows = [[f"{2000 + i // 4}-Q{i % 4 + 1}", f"{100 + i + 10 * (i % 4 == 1):.1f}"]
            for i in range(60)]
    path = write_csv(tmp_path / "gdp.csv", ["quarter", "gdp"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--window", 8, "--hidden", 8, "--steps",
              2, "--threads", 1, "--quiet", "--no-plot", "--out", run))
    assert "seasonal_naive (m=4)" in ok(invoke("eval", run))
    lines = ok(invoke("predict", run, "--steps", 2)).splitlines()
    assert lines[0] == "quarter,gdp"
    assert lines[1].startswith("2015-Q1,") and lines[2].startswith("2015-Q2,")
    # the forecasts written in the file's notation: appended, the file reads as one format
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines[1:]) + "\n")
    times = dataio.read_series(dataio.resolve_source(path), ["gdp"], "quarter").times
    assert times[-1] == np.datetime64("2015-04-01") and len(times) == 62


@pytest.mark.parametrize("first, notation, later, text", [
    ("2010-Q1", "{y}-Q{q}", "2011-10-01", "2011-Q4"),
    ("2010q1", "{y}q{q}", "2011-07-01", "2011q3"),
    ("Q1 2010", "Q{q} {y}", "2011-04-01", "Q2 2011"),
    ("2010-W01", "{y}-W{w:02d}", "2011-01-03", "2011-W01"),
    ("2010W05", "{y}W{w:02d}", "2010-12-27", "2010W52"),
    ("2010-W01-3", "{y}-W{w:02d}-{d}", "2010-01-13", "2010-W02-3"),
    ("2010-01-01", None, None, None),
])
def test_quarters_and_weeks_are_labelled_as_the_file_writes_them(first, notation, later,
                                                                  text):
    from recurrent_plugins.forecast.times import period_notation, period_text
    assert period_notation(first) == notation
    if notation is not None:
        assert period_text(np.datetime64(later), notation) == text


def test_bundled_co2_dates_are_unchanged():
    co2 = dataio.read_series(dataio.resolve_source("co2"), None, None)
    expected = np.array([str(t) for t in co2.times], dtype="datetime64")  # numpy's own parse
    assert co2.times.dtype == expected.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(co2.times, expected)


# ---- day/month order: one for the whole column -----------------------------------------------

def test_a_day_above_12_in_any_row_makes_the_column_day_first():
    times, order = parse(["30/01/2010", "31/01/2010", "01/02/2010", "02/02/2010"])
    assert order == "dmy"
    np.testing.assert_array_equal(times[2:], dates("2010-02-01", "2010-02-02"))


def test_ambiguous_column_needs_the_option():
    column = ["01/01/2010", "01/02/2010", "01/03/2010"]
    with pytest.raises(UserError, match="read as day/month or month/day in every row: write "
                                        "them year first .* or say which with "
                                        "--date-order dmy or mdy") as info:
        parse(column)
    assert "\n" not in str(info.value)
    times, order = parse(column, "dmy")
    np.testing.assert_array_equal(times, dates("2010-01-01", "2010-02-01", "2010-03-01"))
    times, order = parse(column, "mdy")
    np.testing.assert_array_equal(times, dates("2010-01-01", "2010-01-02", "2010-01-03"))


def test_option_contradicted_by_a_row_names_it():
    with pytest.raises(UserError, match=r"'01/13/2010' at line 4, which is not day/month/year "
                                        r"\(--date-order dmy\)"):
        parse(["01/11/2010", "01/12/2010", "01/13/2010"], "dmy")


# ---- mixed and bad columns --------------------------------------------------------------------

@pytest.mark.parametrize("values, pattern", [
    (["13/01/2010", "01/14/2010"], "mixes day/month orders: '13/01/2010' at line 2 is day "
                                   "first, '01/14/2010' at line 3 is month first"),
    (["2010-01-01", "2010-01-02 00:00"], "mixes date formats: '2010-01-02 00:00' at line 3 is "
                                         "not written like '2010-01-01' at line 2"),
    (["2010-01-01", "01/02/2010"], "mixes date formats: '01/02/2010' at line 3"),
    (["2010-01-01", "2011", "2012-01-01"], "mixes dates and numbers: '2010-01-01' at line 2, "
                                           "'2011' at line 3"),
    (["2020-01-01", "soon", "2020-01-03"], "'soon' at line 3: neither a number nor a date"),
    # a totals row under years, a comment line over dates: named as no date, not as a
    # date among numbers or as the one format the other rows break
    (["1700", "1701", "Total"], "'Total' at line 4: neither a number nor a date"),
    (["# exported", "2010-01-01", "2010-01-02"], "'# exported' at line 2: neither a number "
                                                 "nor a date"),
    (["2010-02-28", "2010-02-30"], "'2010-02-30' at line 3: neither a number nor a date "
                                   "(day is out of range for month)"),
    (["10:00", "11:00"], "'10:00' at line 2: a date needs a year, a month and a day"),
    (["2010-01-01 10:00 EST", "2010-01-01 11:00 EST"], "unknown time zone name"),
    (["2010-01-01 01:00:00+01:00", "2010-01-01 00:00:00+00:00"], "does not increase at line 3"),
    (["nan", "2", "3"], "'nan' at line 2: a time must be finite"),
    (["1", "inf"], "'inf' at line 3: a time must be finite"),
])
def test_bad_columns_name_the_line_and_the_value(values, pattern):
    with pytest.raises(UserError, match=re.escape(pattern)) as info:
        parse(values)
    assert "\n" not in str(info.value) and "'t' of 'f.csv'" in str(info.value) \
        or "does not increase" in str(info.value)


# ---- through the CLI: the order chosen in training is the one used later ------------------------

def test_cli_date_order_is_kept_for_later_files(tmp_path):
    days = np.arange("2010-01-01", "2010-03-12", dtype="datetime64[D]")
    rows = [[f"{d.item().day:02d}/{d.item().month:02d}/{d.item().year}", f"{np.sin(i / 4):.4f}"]
            for i, d in enumerate(days)]
    path = write_csv(tmp_path / "d.csv", ["when", "v"], rows)
    small = ["--time-column", "when", "--window", 5, "--hidden", 8, "--steps", 1,
             "--threads", 1, "--quiet", "--no-plot"]
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, *small, "--out", run))
    # The last 12 rows alone are ambiguous (days 1-11 of March); the run knows they are dmy.
    recent = write_csv(tmp_path / "recent.csv", ["when", "v"], rows[-11:])
    lines = ok(invoke("predict", run, "--data", recent, "--steps", 2)).splitlines()
    assert lines[1].startswith("2010-03-12,") and lines[2].startswith("2010-03-13,")
    result = invoke("train", "forecast", "--data", recent, *small, "--out", tmp_path / "r2")
    one_line_error(result, "say which with --date-order dmy or mdy")
    # A run trained on ISO dates given such a file: predict is told the order; both
    # orders read as dates here, the order changes the forecast's time labels.
    iso = write_csv(tmp_path / "iso.csv", ["when", "v"],
                    [[f"2010-01-{d:02d}", v] for d, (_, v) in enumerate(rows[:31], 1)])
    iso_run = tmp_path / "iso_run"
    ok(invoke("train", "forecast", "--data", iso, *small, "--out", iso_run))
    one_line_error(invoke("predict", iso_run, "--data", recent), "write them year first",
                   "--date-order dmy or mdy")
    lines = ok(invoke("predict", iso_run, "--data", recent, "--date-order", "dmy",
                      "--steps", 1)).splitlines()
    assert lines[1].startswith("2010-03-12,")
    one_line_error(invoke("predict", iso_run, "--date-order", "dmy"),
                   "--date-order reads the dates of a --data file: give --data")


def test_a_file_against_the_runs_date_order_names_the_run_not_an_option(tmp_path):
    """A run trained on day-first dates reads later files day first; a file that is month
    first is refused naming the run's order and how to read it otherwise (the user gave
    no --date-order), and predict --date-order mdy then reads it."""
    days = np.arange("2010-01-01", "2010-03-12", dtype="datetime64[D]")
    values = [f"{np.sin(i / 4):.4f}" for i in range(len(days))]
    rows = [[f"{d.item().day:02d}/{d.item().month:02d}/{d.item().year}", v]
            for d, v in zip(days, values)]
    path = write_csv(tmp_path / "d.csv", ["when", "v"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "when", "--window", 5,
              "--hidden", 8, "--steps", 1, "--threads", 1, "--quiet", "--no-plot",
              "--out", run))
    us = write_csv(tmp_path / "us.csv", ["when", "v"],
                   [[f"{d.item().month:02d}/{d.item().day:02d}/{d.item().year}", v]
                    for d, v in list(zip(days, values))[-20:]])
    for command in (["predict", run, "--data", us], ["eval", run, "--data", us]):
        result = invoke(*command)
        one_line_error(result, "which is not day/month/year (the order of the run's training "
                       "dates; write the dates year first (2010-01-31), or read them with "
                       "predict --date-order mdy)")
        assert "(--date-order dmy)" not in result.stderr
    lines = ok(invoke("predict", run, "--data", us, "--date-order", "mdy",
                      "--steps", 1)).splitlines()
    assert lines[1].startswith("2010-03-12,")
