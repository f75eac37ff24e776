"""forecast: CSV layouts that are no single series with one time column, refused or noted
in one line that says what the file holds and what to do. Dates and their times of day in
two columns (Date,Time or date,hour): write them in one cell, the form the refusal shows
(which then reads as times). Several series stacked in one file with an id column (long
format): one file or one column per series. A repeated time without such a column: the
line it repeats. A time column of numbers where spreadsheet serial dates fall, or of dates
written without separators (20100131): a note that they are used as numbers. A first line
of numbers: no header, refused."""
import datetime as dt

import pytest
from helpers import invoke, ok, one_line_error, write_csv

RUN = ("--steps", 2, "--hidden", 8, "--window", 8, "--inputs", "level", "--model", "rnn",
       "--threads", 1, "--quiet")
START = dt.datetime(2006, 12, 16, 17, 24)


def hours(n):
    return [START + dt.timedelta(hours=i) for i in range(n)]


def value(i):
    return f"{2 + (i % 24) / 10 + i / 100:.3f}"


def test_date_and_time_in_two_columns_are_refused_saying_how_to_join_them(tmp_path):
    rows = [[f"{t.day}/{t.month}/{t.year}", f"{t:%H:%M:%S}", value(i)]
            for i, t in enumerate(hours(80))]
    data = write_csv(tmp_path / "power.csv", ["Date", "Time", "Global_active_power"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   "has several columns", "write the dates and times of day of 'Date' and "
                   "'Time' in one cell each")
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "Date",
                          "--column", "Global_active_power", "--out", tmp_path / "run"),
                   "time column 'Date' does not increase at line 3 of",
                   "its time of day is in column 'Time' ('18:24:00'); write date and time "
                   "in one column, such as '16/12/2006 18:24:00', and name that with "
                   "--time-column")
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "Time",
                          "--column", "Global_active_power", "--out", tmp_path / "run"),
                   "has '17:24:00' at line 2: a date needs a year, a month and a day",
                   "write each time with its date in one cell, such as 2010-01-31 17:24:00")
    assert not (tmp_path / "run").exists()
    # the form the refusal shows is read as one hourly time column
    joined = write_csv(tmp_path / "joined.csv", ["datetime", "power"],
                       [[f"{d} {t}", v] for d, t, v in rows])
    ok(invoke("train", "forecast", "--data", joined, *RUN, "--out", tmp_path / "run"))
    predicted = ok(invoke("predict", tmp_path / "run", "--steps", 2)).splitlines()
    assert predicted[1].startswith("2006-12-20T01:24,"), predicted


def test_date_and_hour_number_columns_are_refused_with_the_joined_form(tmp_path):
    rows = [[f"{t:%Y-%m-%d}", t.hour, value(i)] for i, t in enumerate(hours(80))]
    data = write_csv(tmp_path / "dh.csv", ["date", "hour", "load"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "date",
                          "--column", "load", "--out", tmp_path / "run"),
                   "its time of day is in column 'hour' ('18'); write date and time in one "
                   "column, such as '2006-12-16 18:00'")


def test_year_and_month_columns_are_refused_as_a_split_time(tmp_path):
    rows = [[2000 + i // 12, i % 12 + 1, value(i)] for i in range(60)]
    data = write_csv(tmp_path / "ym.csv", ["year", "month", "sales"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "year",
                          "--column", "sales", "--out", tmp_path / "run"),
                   "its time is split over columns 'year' and 'month' ('2000', '2'); write "
                   "one date per row in one column")


@pytest.mark.parametrize("by_date", [False, True])
def test_several_series_in_one_file_are_named_with_their_id_column(tmp_path, by_date):
    """Long format, series after series or interleaved date by date (as M4 and Kaggle
    files are): the refusal names the id column and what to do, not "sort the file"."""
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    rows = [[s, d.isoformat(), value(i)] for s in ("A", "B") for i, d in enumerate(days)]
    if by_date:
        rows.sort(key=lambda row: row[1])
    data = write_csv(tmp_path / "long.csv", ["series_id", "date", "value"], rows)
    first_b = 3 if by_date else 62
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "date",
                          "--column", "value", "--out", tmp_path / "run"),
                   f"does not increase at line {first_b} of",
                   "where column 'series_id' changes from 'A' (line 2) to 'B': the file "
                   "holds several series (long format); forecast each from a file of its "
                   "own rows, or give each series a column and name them with --column")


def test_a_repeated_time_names_the_line_it_repeats(tmp_path):
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    rows = [[d.isoformat(), value(i)] for i, d in enumerate(days)]
    data = write_csv(tmp_path / "stacked.csv", ["date", "value"], rows + rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   "does not increase at line 62 of",
                   "'2020-01-01' again, as at line 2 (a file of several series needs a "
                   "file per series; else remove duplicate times)")


def time_notes(data, out) -> list[str]:
    """The "note: time ..." lines of a forecast training on ``data`` into ``out``."""
    result = invoke("train", "forecast", "--data", data, *RUN, "--out", out)
    ok(result)
    return [line for line in result.stderr.splitlines() if line.startswith("note: time")]


def test_spreadsheet_serial_dates_are_noted_as_used_as_numbers(tmp_path):
    rows = [[40179 + i, value(i)] for i in range(80)]
    data = write_csv(tmp_path / "serial.csv", ["date", "value"], rows)
    assert time_notes(data, tmp_path / "run") == [
        f"note: time column 'date' of {data!r} holds numbers from 40179 to 40258, used as "
        f"numbers (no calendar features, forecasts labelled with numbers); if they are "
        f"spreadsheet serial dates (40179 is 2010-01-01 in Excel), format the column as "
        f"dates (2010-01-31) before saving the CSV"]
    years = write_csv(tmp_path / "years.csv", ["year", "value"],
                      [[1900 + i, value(i)] for i in range(80)])
    assert time_notes(years, tmp_path / "run2") == []


@pytest.mark.parametrize("unit", ["days", "months"])
def test_dates_written_without_separators_are_noted_as_used_as_numbers(tmp_path, unit):
    """YYYYMMDD and YYYYMM numbers are used as numbers, so that 20100131 is followed by
    20100132: a note says so and how to write them as dates."""
    if unit == "days":
        dates = [dt.date(2010, 1, 1) + dt.timedelta(days=i) for i in range(80)]
        cells, first = [f"{d:%Y%m%d}" for d in dates], "2010-01-01"
    else:
        dates = [dt.date(2010 + i // 12, i % 12 + 1, 1) for i in range(80)]
        cells, first = [f"{d:%Y%m}" for d in dates], "2010-01"
    data = write_csv(tmp_path / "compact.csv", ["date", "value"],
                     [[c, value(i)] for i, c in enumerate(cells)])
    assert time_notes(data, tmp_path / "run") == [
        f"note: time column 'date' of {data!r} holds numbers from {cells[0]} to "
        f"{cells[-1]}, used as numbers (no calendar features, forecasts labelled with "
        f"numbers); if they are dates written without separators ({cells[0]} is {first}), "
        f"write them as dates ({first}) before saving the CSV"]
    # a step count in the same range that passes a month's last day reads as no date
    counter = write_csv(tmp_path / "counter.csv", ["time", "value"],
                        [[int(cells[0]) + i, value(i)] for i in range(80)])
    assert time_notes(counter, tmp_path / "run2") == []


def test_blank_lines_among_the_rows_of_a_series_without_times_are_noted(tmp_path):
    """Without a time column each row is the next step: a blank line among the rows (a
    spreadsheet's empty cell of a one-column file) is skipped with a note, at training and
    for a file given to eval or predict; trailing blank lines and a file with times get
    none."""
    lines = [value(i) for i in range(80)]
    lines[40] = lines[41] = ""
    data = tmp_path / "gaps.csv"
    data.write_text("value\n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    note = (f"note: data file {str(data)!r} has 2 blank lines among its rows (first: line "
            f"42), skipped; without a time column each row is the next step: write NA on a "
            f"blank line that is a missing value to have it filled in place")
    run = tmp_path / "run"
    for args in (("train", "forecast", "--data", data, *RUN, "--out", run),
                 ("eval", run, "--data", data), ("predict", run, "--data", data)):
        result = invoke(*args)
        ok(result)
        assert [line for line in result.stderr.splitlines()
                if line.startswith("note: data")] == [note], (args, result.stderr)
    result = invoke("predict", run)  # the run's own data: noted at training
    ok(result)
    assert "note: data" not in result.stderr, result.stderr
    rows = [f"{t:%Y-%m-%d %H:%M},{value(i)}" for i, t in enumerate(hours(80))]
    dated = tmp_path / "dated.csv"
    dated.write_text("date,value\n" + "\n".join(rows[:40] + [""] + rows[40:]) + "\n",
                     encoding="utf-8")
    result = invoke("train", "forecast", "--data", dated, *RUN, "--out", tmp_path / "run2")
    ok(result)
    assert "note: data" not in result.stderr, result.stderr


DATA_AS_HEADER = " holds dates and numbers like the rows below it: it looks like data, not " \
    "column names (the first line is always read as the header); add a line of column " \
    "names above it (such as 'date,value')"
DAYS = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(80)]
MONTHS = [dt.date(1949 + i // 12, i % 12 + 1, 1) for i in range(80)]


@pytest.mark.parametrize("header, stamps, refusal", [
    # a first line of numbers: read as a header, a one-column file's first value would
    # name the column and be lost
    ("value", None, " ('2.000') holds numbers, not column names; add a line of column "
                    "names above it (such as 'value', or 'time,value')"),
    # a date and a number: a row like the others, not a file of several columns
    ("date,value", [f"{d:%Y-%m-%d}" for d in DAYS], " ('2020-01-01,2.000')" + DATA_AS_HEADER),
    # months written without a day are dates of data too
    ("date,value", [f"{m:%Y-%m}" for m in MONTHS], " ('1949-01,2.000')" + DATA_AS_HEADER),
    ("date,value", [f"{m:%b %Y}" for m in MONTHS], " ('Jan 1949,2.000')" + DATA_AS_HEADER),
])
@pytest.mark.parametrize("with_header", [False, True])
def test_a_file_without_a_header_is_refused_as_data(tmp_path, header, stamps, refusal,
                                                     with_header):
    """A headerless file's first row is refused as column names, saying what it holds and
    what to add; the same rows under a header train."""
    rows = [value(i) if stamps is None else f"{stamps[i]},{value(i)}" for i in range(80)]
    data = tmp_path / "values.csv"
    data.write_text(f"{header}\n" * with_header + "\n".join(rows) + "\n", encoding="utf-8")
    result = invoke("train", "forecast", "--data", data, *RUN, "--out", tmp_path / "run")
    if with_header:
        ok(result)
        return
    one_line_error(result, f"data file {str(data)!r} has no header: line 1{refusal}")
    assert not (tmp_path / "run").exists()


def test_date_column_names_over_numbers_are_a_header(tmp_path):
    """Column names that are dates (one column per day) over rows of numbers are a
    header: the file is read, its several columns left to --column."""
    data = write_csv(tmp_path / "wide.csv", ["2020-01-01", "2020-01-02"],
                     [[value(i), value(i + 1)] for i in range(80)])
    result = invoke("train", "forecast", "--data", data, *RUN, "--column", "2020-01-02",
                    "--out", tmp_path / "run")
    ok(result)


def test_unsorted_rows_with_other_columns_are_not_taken_for_several_series(tmp_path):
    """Other columns that differ between two swapped rows (a flag, a measurement not
    forecast) are no id: the refusal says to sort the file."""
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    rows = [[d.isoformat(), value(i), i % 3, f"{50 + i * 0.37:.2f}"]
            for i, d in enumerate(days)]
    rows[20], rows[21] = rows[21], rows[20]
    data = write_csv(tmp_path / "swapped.csv", ["date", "value", "flag", "humidity"], rows)
    result = invoke("train", "forecast", "--data", data, "--time-column", "date",
                    "--column", "value", "--out", tmp_path / "run")
    one_line_error(result, "does not increase at line 23 of",
                   "(sort the file by time and remove duplicate times)")
    assert "several series" not in result.stderr


def test_the_time_column_given_as_the_value_column_is_refused(tmp_path):
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    data = write_csv(tmp_path / "d.csv", ["date", "value"],
                     [[d.isoformat(), value(i)] for i, d in enumerate(days)])
    one_line_error(invoke("train", "forecast", "--data", data, "--time-column", "date",
                          "--column", "date", "--out", tmp_path / "run"),
                   "column 'date' is both the time column and a value column")
    assert not (tmp_path / "run").exists()
