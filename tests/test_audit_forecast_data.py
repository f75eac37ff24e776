"""Audit (mutation round 3) of plugins/forecast's reading side (series.py, times.py,
calendar.py): value checks, gap filling and date parsing on small CSV files whose
expected results are worked out by hand."""
import numpy as np
import pytest

from recurrent.errors import UserError
from recurrent_plugins.forecast import series as dataio


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def read(path, columns=None, time_column=None, date_order=None):
    return dataio.read_series(dataio.resolve_source(path), columns, time_column, date_order)


@pytest.mark.parametrize("value", ["2e150", "-2e150", "-1e300"])
def test_values_beyond_the_limit_are_refused_whatever_their_sign(tmp_path, value):
    """|value| > 1e150 overflows the sums of squares: refused for a negative value too."""
    path = write(tmp_path, f"t,v\n1,1\n2,{value}\n3,2\n")
    with pytest.raises(UserError, match="beyond 1e\\+150"):
        read(path, time_column="t")


def test_values_at_the_limit_are_read(tmp_path):
    path = write(tmp_path, "t,v\n1,1\n2,-1e150\n3,1e150\n")
    np.testing.assert_array_equal(read(path, time_column="t").values[:, 0],
                                  [1.0, -1e150, 1e150])


def _series(values, lines=None):
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    n, c = values.shape
    return dataio.Series(label="s", columns=[f"v{i}" for i in range(c)], values=values,
                         times=None, time_column=None,
                         lines=np.arange(2, n + 2) if lines is None else np.asarray(lines))


def test_a_column_of_two_equal_values_and_gaps_is_constant():
    """Observed values 3 and 3 (a gap between): constant, nothing to forecast; 3 and 4
    is not."""
    with pytest.raises(UserError, match="is constant \\(every value is 3\\)"):
        dataio.check_values(_series([3.0, np.nan, 3.0]), fill=True)
    dataio.check_values(_series([3.0, np.nan, 4.0]), fill=True)


def test_a_split_whose_only_value_is_its_last_row_has_something_to_score():
    """Rows 0-3 train, 4-6 valid: valid observes only row 6 (its last row): accepted;
    with row 6 missing too, the valid split has no value and is refused."""
    values = [1.0, 2.0, 3.0, 4.0, np.nan, np.nan, 7.0]
    dataio.check_splits(_series(values), {"train": (0, 4), "valid": (4, 7)})
    values[6] = np.nan
    with pytest.raises(UserError, match="no value in the valid split \\(lines 6-8\\)"):
        dataio.check_splits(_series(values), {"train": (0, 4), "valid": (4, 7)})


def test_a_column_named_twice_is_read_once(tmp_path):
    """--column v --column v means the one column v: one value column, not two copies
    (which would give the model a duplicated input and score v twice)."""
    path = write(tmp_path, "t,v,w\n1,1,5\n2,2,6\n3,4,7\n")
    series = read(path, columns=["v", "v"], time_column="t")
    assert series.columns == ["v"]
    np.testing.assert_array_equal(series.values, [[1.0], [2.0], [4.0]])
    series = read(path, columns=["w", "v", "w"], time_column="t")
    assert series.columns == ["w", "v"]
    np.testing.assert_array_equal(series.values, [[5.0, 1.0], [6.0, 2.0], [7.0, 4.0]])


def _lines(texts):
    return [(k + 2, t) for k, t in enumerate(texts)]


def test_a_first_number_of_12_does_not_decide_the_day_month_order():
    """12/01/2010 and 12/02/2010 read as 12 January and 12 February or as 1 and 2 December:
    12 is a valid month, so no row decides it. Without --date-order that is an error; with
    mdy they are 1 and 2 December, with dmy 12 January and 12 February."""
    from recurrent_plugins.forecast.times import parse_times
    texts = _lines(["12/01/2010", "12/02/2010"])
    with pytest.raises(UserError, match="read as day/month or month/day in every row"):
        parse_times(texts, "d", "f.csv")
    times, order = parse_times(texts, "d", "f.csv", "mdy")
    assert order == "mdy" and [str(t) for t in times] == ["2010-12-01", "2010-12-02"]
    times, order = parse_times(texts, "d", "f.csv", "dmy")
    assert order == "dmy" and [str(t) for t in times] == ["2010-01-12", "2010-02-12"]


def test_dashed_day_month_year_dates_follow_the_date_order():
    """01-02-2010 (dashes, no time of day): its trailing -2010 is a year, not a UTC
    offset, so the column is a day/month column: with --date-order dmy it is 1 February
    and 1 March, with mdy 2 and 3 January, and without the option it is refused."""
    from recurrent_plugins.forecast.times import parse_times
    texts = _lines(["01-02-2010", "01-03-2010"])
    times, _ = parse_times(texts, "d", "f.csv", "dmy")
    assert [str(t) for t in times] == ["2010-02-01", "2010-03-01"]
    times, _ = parse_times(texts, "d", "f.csv", "mdy")
    assert [str(t) for t in times] == ["2010-01-02", "2010-01-03"]
    with pytest.raises(UserError, match="--date-order dmy or mdy"):
        parse_times(texts, "d", "f.csv")


def test_a_step_that_does_not_divide_the_day_gives_no_season():
    """7-hourly rows over 20 days: the shortest cycle longer than a step is the day,
    24 / 7 = 3.43 steps, not a whole number to 5% (|3.43 - 3| > 0.15): no season, and
    the week (24 steps exactly) is not tried instead. 6-hourly: 4 per day; 8-hourly: 3."""
    from recurrent_plugins.forecast.calendar import calendar_season
    start = np.datetime64("2020-01-01T00", "h")
    for hours, expected in ((7, None), (6, 4), (8, 3)):
        times = start + np.arange(0, 20 * 24, hours).astype("timedelta64[h]")
        assert calendar_season(times, len(times)) == expected, hours


def test_blanks_around_a_time_cell_are_ignored(tmp_path):
    """" 2010-01-02" and "2010-01-03 " are dates like "2010-01-01" (blanks around a cell
    are not part of its format); a cell of blanks only is an empty time."""
    path = write(tmp_path, "t,v\n2010-01-01,1\n 2010-01-02,2\n2010-01-03 ,3\n")
    series = read(path, time_column="t")
    assert [str(t) for t in series.times] == ["2010-01-01", "2010-01-02", "2010-01-03"]
    path = write(tmp_path, "t,v\n1,1\n   ,2\n3,3\n", name="blank.csv")
    with pytest.raises(UserError, match="time column 't' is empty at line 3"):
        read(path, time_column="t")


def test_empty_lines_are_not_rows(tmp_path):
    """An empty line between rows is no row at all (not a row of missing values): three
    values, all observed, with the file line of each row."""
    path = write(tmp_path, "v\n1\n\n2\n3\n\n")
    series = read(path)
    np.testing.assert_array_equal(series.values[:, 0], [1.0, 2.0, 3.0])
    assert series.observed.all()
    assert series.lines.tolist() == [2, 4, 5]


def test_a_short_row_lacks_its_trailing_values(tmp_path):
    """Row "2,2" of a t,v,w file has no w: w is missing there (NaN), not an error."""
    path = write(tmp_path, "t,v,w\n1,1,5\n2,2\n3,3,7\n")
    series = read(path, columns=["w"], time_column="t")
    np.testing.assert_array_equal(series.observed[:, 0], [True, False, True])
    assert series.values[0, 0] == 5.0 and series.values[2, 0] == 7.0
