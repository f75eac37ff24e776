"""Review of the forecast task as a user drives it: files with unnamed or non-comma
columns, a run with calendar features given numeric times, UTC offsets written after a
blank, and `predict --stream` against `predict --data` when the stream's first file ends
in a gap."""

import pytest
from helpers import (check_stream_as_grown_predict, invoke, ok, one_line_error,
                     two_monthly_columns, write_csv)

from recurrent.checkpoint import RunDir
from recurrent.errors import UserError
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast import windows as win
from recurrent_plugins.forecast.times import parse_times


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-column monthly run with calendar features and the network's whole
    correction (so that its inputs show in the forecast)."""
    path = tmp_path_factory.mktemp("review_forecast")
    data = write_csv(path / "m.csv", ["date", "a", "b"], two_monthly_columns(120))
    out = path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "date",
              "--column", "b", "--column", "a",
              "--horizon", 3, "--model", "rnn", "--window", 8, "--inputs", "level",
              "--blend", "full", "--steps", 4, "--quiet", "--no-plot", "--threads", 1,
              "--out", out))
    return out


def read(path, text, columns=None, time_column=None):
    path.write_text(text, encoding="utf-8")
    return dataio.read_series(dataio.resolve_source(str(path)), columns, time_column)


def test_stream_from_a_file_ending_in_a_gap_answers_as_predict_on_the_grown_file(run,
                                                                                tmp_path):
    state = RunDir.open(str(run)).info()["task_state"]
    head = win.head_rows(state)
    rows = two_monthly_columns(120)
    first = [list(r) for r in rows[:head]]
    for r in first[-2:]:  # the last two head rows miss column a
        r[1] = ""
    added = rows[head:head + 2]
    check_stream_as_grown_predict(run, tmp_path, first, added, 4,
                                    lambda row: f"{row[2]},{row[1]}")  # columns b, a


def test_unnamed_columns_are_left_out_of_the_default_columns(tmp_path):
    # pandas' to_csv writes its index under an empty name
    series = read(tmp_path / "index.csv", ",date,v\n0,2020-01-01,1\n1,2020-01-02,2\n")
    assert series.columns == ["v"] and series.time_column == "date"
    # a trailing separator on every line (spreadsheet exports)
    series = read(tmp_path / "trailing.csv", "date,v,\n2020-01-01,1,\n2020-01-02,2,\n")
    assert series.columns == ["v"] and series.time_column == "date"


def test_semicolon_or_tab_separated_file_is_refused_as_such(tmp_path):
    for separator, name in ((";", "semicolon"), ("\t", "tab")):
        text = f"date{separator}v\n2020-01-01{separator}1\n2020-01-02{separator}2\n"
        with pytest.raises(UserError, match=f"{name}-separated"):
            read(tmp_path / "x.csv", text)


def test_run_with_calendar_features_refuses_numeric_times(run, tmp_path):
    assert RunDir.open(str(run)).info()["task_state"]["calendar"]
    rows = [[str(i), a, b] for i, (_, a, b) in enumerate(two_monthly_columns(120)[:40])]
    data = write_csv(tmp_path / "numbers.csv", ["date", "a", "b"], rows)
    one_line_error(invoke("predict", run, "--data", data), "calendar", "numbers")
    one_line_error(invoke("eval", run, "--data", data), "calendar", "numbers")


def test_utc_offset_after_a_blank_may_change_sign():
    texts = [(2, "2021-10-31 00:00:00 +00:00"), (3, "2021-10-31 01:00:00 -01:00"),
             (4, "2021-10-31 03:00:00 +00:00")]
    times, _ = parse_times(texts, "t", "f.csv")
    assert [str(t) for t in times] == ["2021-10-31T00:00", "2021-10-31T02:00",
                                       "2021-10-31T03:00"]


def test_a_directory_named_like_a_bundled_series_does_not_hide_it(tmp_path, monkeypatch):
    # `recurrent train forecast --data co2 --out co2` made the directory co2, and each
    # candidate, resolving "co2" again, failed: "data path is a directory"
    from recurrent_plugins.forecast import series
    monkeypatch.chdir(tmp_path)
    (tmp_path / "co2").mkdir()
    assert series.resolve_source("co2").bundled == "co2"
    (tmp_path / "sunspots").write_text("t,v\n1,2\n")  # a file of that name is the user's
    assert series.resolve_source("sunspots").bundled is None
