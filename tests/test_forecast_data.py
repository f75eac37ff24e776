"""forecast task: CSV reading, gap filling, splits, the scaler (no leakage), windows, and the
task state on the bundled series. No model here: see test_forecast_cli.py for end to end."""
import gzip
import os
import re

import numpy as np
import pytest
from helpers import sunspot_rows, write_csv

from recurrent.errors import UserError
from recurrent_plugins.forecast import anchors
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast import windows as win
from recurrent_plugins.forecast.task import ForecastTask


def read(path, columns=None, time_column=None):
    return dataio.read_series(dataio.resolve_source(str(path)), columns, time_column)


# ---- bundled data ---------------------------------------------------------------------------

def test_bundled_series_are_the_documented_ones():
    sun = dataio.read_series(dataio.resolve_source("sunspots"), None, None)
    assert sun.columns == ["sunspots"] and sun.time_column == "year"
    assert sun.values.shape == (309, 1)
    assert sun.times[0] == 1700 and sun.times[-1] == 2008
    assert sun.values[0, 0] == 5 and sun.values[-1, 0] == 2.9
    co2 = dataio.read_series(dataio.resolve_source("co2"), None, None)
    assert co2.values.shape == (2284, 1)
    assert int((~co2.observed).sum()) == 59
    assert str(co2.times[0]) == "1958-03-29" and str(co2.times[-1]) == "2001-12-29"
    assert np.all(np.diff(co2.times).astype(int) == 7)


def test_gzip_file_and_missing_markers(tmp_path):
    path = tmp_path / "s.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        f.write("t,v\n1,1.5\n2,NA\n3,\n4,nan\n5,2.5\n")
    series = read(path, time_column="t")
    assert series.columns == ["v"]
    np.testing.assert_array_equal(series.observed[:, 0], [True, False, False, False, True])
    assert series.lines.tolist() == [2, 3, 4, 5, 6]


# ---- error paths (each a one-line UserError) --------------------------------------------------

@pytest.mark.parametrize("rows, columns, pattern", [
    ([["1", "x"]], ["v"], "column 'v' is not numeric: 'x' at line 3"),
    ([["1", "2"]], ["nope"], "column 'nope' not found in"),
    ([["1", "inf"]], ["v"], "non-finite value 'inf'"),
])
def test_bad_columns(tmp_path, rows, columns, pattern):
    path = write_csv(tmp_path / "d.csv", ["t", "v"], [["0", "1"], *rows])
    with pytest.raises(UserError, match=pattern) as info:
        read(path, columns, "t")
    assert "\n" not in str(info.value)


def test_column_not_found_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["when", "a", "b"], [["1", "2", "3"]])
    with pytest.raises(UserError, match="columns found: 'when', 'a', 'b'"):
        read(path, ["c"])


@pytest.mark.parametrize("header", [["Date", "sales"], ["sales", "timestamp"],
                                    ["year", "count"]])
def test_a_two_column_file_with_a_time_header_needs_no_options(tmp_path, header):
    times = ["2010-01-01", "2010-02-01", "2010-03-01"] if header[0] == "Date" else [
        "1", "2", "3"]
    rows = [[t, v] if header[0] in ("Date", "year") else [v, t]
            for t, v in zip(times, ["4", "5", "7"])]
    series = read(write_csv(tmp_path / "d.csv", header, rows))
    time_name = next(h for h in header if h.lower() in dataio.TIME_NAMES)
    assert series.time_column == time_name
    assert series.columns == [h for h in header if h != time_name]
    assert series.values[:, 0].tolist() == [4.0, 5.0, 7.0]


def _forecast_doc_list(start, end):
    """The backticked names docs/forecast.md lists between ``start`` and ``end``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "forecast.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    first = text.index(start)
    listed = text[first:text.index(end, first)]
    return {name.lower() for name in re.findall(r"`([^`]+)`", listed)}


def test_the_documented_time_headers_and_missing_markers_are_the_read_ones():
    # docs/forecast.md lists every header taken as the time column and every cell text
    # read as missing: a name left out there is one a user cannot know the reader takes
    assert _forecast_doc_list("one of which is headed", "(any case)") == dataio.TIME_NAMES
    assert _forecast_doc_list("Missing cells (empty,", "any case)") | {""} \
        == dataio.MISSING_MARKERS


def test_several_columns_need_a_choice(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(UserError, match="several columns .* choose with --column"):
        read(path)


@pytest.mark.parametrize("times, pattern", [
    (["1", "3", "2"], "does not increase at line 4"),
    (["1", "1", "2"], "does not increase at line 3"),
    (["2020-01-01", "soon", "2020-01-03"], "'soon' at line 3: neither a number nor a date"),
    (["1", "", "3"], "empty at line 3"),
])
def test_bad_time_columns(tmp_path, times, pattern):
    path = write_csv(tmp_path / "d.csv", ["t", "v"], [[t, i] for i, t in enumerate(times)])
    with pytest.raises(UserError, match=pattern):
        read(path, time_column="t")


def test_iso_datetimes_parse(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["t", "v"],
                     [["2020-01-01T00:00", 1], ["2020-01-01T06:00", 2], ["2020-01-01T12:00", 3]])
    series = read(path, time_column="t")
    assert np.issubdtype(series.times.dtype, np.datetime64)
    assert (series.times[1] - series.times[0]) == np.timedelta64(6, "h")


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(UserError, match="not found .*bundled series: co2, sunspots"):
        dataio.resolve_source(str(tmp_path / "absent.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="is empty"):
        read(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("t,v\n")
    with pytest.raises(UserError, match="no data rows"):
        read(header_only)
    with pytest.raises(UserError, match="is a directory"):
        read(tmp_path)
    bad_gzip = tmp_path / "bad.csv.gz"
    bad_gzip.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot decompress .* not gzip data"):
        read(bad_gzip)


def test_constant_column_and_no_fill(tmp_path):
    constant = read(write_csv(tmp_path / "c.csv", ["v"], [[3]] * 10))
    with pytest.raises(UserError, match="'v' .* is constant \\(every value is 3\\)"):
        dataio.check_values(constant, fill=True)
    gappy = read(write_csv(tmp_path / "g.csv", ["v"], [[1], [""], [3], [""], [2]]))
    dataio.check_values(gappy, fill=True)  # gaps are fine when filled
    with pytest.raises(UserError, match="2 missing values \\(first at line 3\\); drop --no-fill"):
        dataio.check_values(gappy, fill=False)
    empty_column = read(write_csv(tmp_path / "e.csv", ["v"], [[""], [""]]))
    with pytest.raises(UserError, match="has no values"):
        dataio.check_values(empty_column, fill=True)


def test_too_few_rows_names_the_minimum():
    with pytest.raises(UserError, match="40 rows, but --window 30 and --horizon 2 need at "
                                        "least 46"):
        win.split_ends(40, 30, 2, 0.15, 0.15)
    with pytest.raises(UserError, match="leave too little for training"):
        win.split_ends(1000, 30, 2, 0.5, 0.45)
    # and 46 really is enough: one training window, H target rows in valid and test
    train_end, valid_end = win.split_ends(46, 30, 2, 0.15, 0.15)
    assert len(win.window_origins(0, train_end, 30, 2)) == 1
    assert len(win.window_origins(train_end, valid_end, 30, 2)) >= 1
    assert len(win.window_origins(valid_end, 46, 30, 2)) >= 1


# ---- filling, splits, windows ----------------------------------------------------------------

def test_gaps_interpolate_in_time_not_across_splits(tmp_path):
    # times 0,1,3,4,5,6: the gap at t=3 lies between t=1 (2.0) and t=4 (8.0): 2 + 6 * 2/3.
    path = write_csv(tmp_path / "d.csv", ["t", "v"],
                     [[0, 1], [1, 2], [3, ""], [4, 8], [5, ""], [6, 100]])
    series = read(path, time_column="t")
    filled = dataio.fill_gaps(series, [6])
    np.testing.assert_allclose(filled[:, 0], [1, 2, 6, 8, 54, 100])
    # With a split ending after row 4 the gap at t=5 may not borrow the next split's 100.
    filled = dataio.fill_gaps(series, [5, 6])
    np.testing.assert_allclose(filled[:, 0], [1, 2, 6, 8, 8, 100])


def test_windows_are_time_ordered_and_splits_do_not_overlap():
    origins = {name: win.window_origins(start, end, 4, 2)
               for name, (start, end) in win.split_ranges(20, 26, 32).items()}
    assert origins["train"].tolist() == list(range(3, 18))  # inputs from row 0, targets < 20
    assert origins["valid"].tolist() == list(range(19, 24))  # targets 20..25
    assert origins["test"].tolist() == list(range(25, 30))  # targets 26..31
    scaled = np.arange(32, dtype=np.float64)[:, None] * np.array([[1.0, -1.0]])  # (N, C)
    last_seen = win.last_observed(np.ones_like(scaled, dtype=bool))
    x = win.input_windows(scaled, last_seen, origins["test"], 4)  # (W, B, C)
    assert x.shape == (4, 5, 2) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[:, 0, 0], [22, 23, 24, 25])
    np.testing.assert_array_equal(x[:, 0, 1], [-22, -23, -24, -25])
    relative = win.input_windows(scaled, last_seen, origins["test"], 4, relative=True)
    np.testing.assert_array_equal(relative[:, 0, 0], [-3, -2, -1, 0])  # shape, not level
    np.testing.assert_array_equal(relative, x - x[-1:])
    levels = anchors.model_targets(scaled, last_seen, origins["test"],
                                   {"horizon": 2, "difference": False})
    np.testing.assert_array_equal(levels[0], [26, -26, 27, -27])  # step-major (h * C + c)
    state = {"horizon": 2, "season": 1}  # changes from the last value
    changes = anchors.model_targets(scaled, last_seen, origins["test"], state)
    np.testing.assert_array_equal(changes[0], [1, -1, 2, -2])
    decoded = anchors.model_forecasts(changes[:1], scaled, last_seen, origins["test"][:1], state)
    np.testing.assert_array_equal(decoded[0], [[26, -26], [27, -27]])


def test_inputs_never_see_past_their_origin():
    # Row 3 and 4 are gaps; interpolation fills them from row 5 (= 50). A window ending at
    # row 4 must hold row 2's value instead: row 5 is its future.
    values = np.array([[0.0], [1], [2], [np.nan], [np.nan], [50], [6]])
    observed = ~np.isnan(values)
    filled = values.copy()
    filled[3:5, 0] = [18, 34]  # what time interpolation gives
    last_seen = win.last_observed(observed)
    assert last_seen[:, 0].tolist() == [0, 1, 2, 2, 2, 5, 6]
    x = win.input_windows(filled, last_seen, np.array([4, 6]), 3)
    np.testing.assert_array_equal(x[:, 0, 0], [2, 2, 2])  # origin 4: gaps held at row 2
    np.testing.assert_array_equal(x[:, 1, 0], [34, 50, 6])  # origin 6: gaps are the past


def test_scalers():
    values = np.array([[1.0, 10], [3, 10], [5, 40], [7, np.nan]])
    observed = ~np.isnan(values)
    standard = win.fit_scaler(values, observed, "standard", ["a", "b"])
    assert standard["center"] == [4.0, 20.0]
    np.testing.assert_allclose(standard["scale"], [np.sqrt(5.0), np.sqrt(200.0)])
    minmax = win.fit_scaler(values, observed, "minmax", ["a", "b"])
    assert minmax["center"] == [1.0, 10.0] and minmax["scale"] == [6.0, 30.0]
    scaled = win.scale(np.nan_to_num(values), minmax)
    np.testing.assert_allclose(scaled[:3], [[0, 0], [1 / 3, 0], [2 / 3, 1]])
    np.testing.assert_allclose(win.unscale(scaled, minmax), np.nan_to_num(values))
    with pytest.raises(UserError, match="'b' is constant in the training split"):
        win.fit_scaler(values[:2], observed[:2], "standard", ["a", "b"])


# ---- the task state: no leakage --------------------------------------------------------------

def test_scaler_is_fitted_on_the_training_rows_only(tmp_path):
    rows = sunspot_rows()
    task = ForecastTask()
    config = {"data": write_csv(tmp_path / "a.csv", ["year", "sunspots"], rows),
              "time_column": "year"}
    state = task.prepare(config)
    train_end, valid_end, n = state["split_ends"]
    assert (train_end, valid_end, n) == (217, 263, 309)
    train = np.array([v for _, v in rows[:train_end]])
    assert state["scaler"]["center"] == pytest.approx([train.mean()])
    assert state["scaler"]["scale"] == pytest.approx([train.std()])
    assert state["mase_scale"] == pytest.approx([np.abs(np.diff(train)).mean()])
    # Change every validation and test value wildly: the training-side state is unchanged.
    changed = rows[:train_end] + [[t, v * 100 + 7] for t, v in rows[train_end:]]
    config["data"] = write_csv(tmp_path / "b.csv", ["year", "sunspots"], changed)
    other = task.prepare(config)
    for key in ("scaler", "mase_scale", "season", "split_ends"):
        assert other[key] == state[key], key
    # ... while one changed training value does move the scaler.
    changed = [[rows[0][0], 500.0]] + rows[1:]
    config["data"] = write_csv(tmp_path / "c.csv", ["year", "sunspots"], changed)
    assert task.prepare(config)["scaler"] != state["scaler"]


def test_minmax_state_maps_training_rows_into_unit_interval():
    task = ForecastTask()
    state = task.prepare({"data": "sunspots", "scaling": "minmax"})
    prepared = task.load(state, {})
    train_end = state["split_ends"][0]
    assert prepared.scaled[:train_end].min() == 0.0 and prepared.scaled[:train_end].max() == 1.0
    assert prepared.scaled[train_end:].max() > 1.0  # the 1957 maximum lies in later splits


def test_batches_shapes_and_train_only_shuffle():
    task = ForecastTask()
    config = {"data": "sunspots", "window": 12, "horizon": 3, "batch_size": 50}
    state = {**task.prepare(config), "seasonal_inputs": False}
    assert task.model_spec(state, config) == {"input": "features", "input_size": 1,
                                              "output": "last", "output_size": 3}
    seasonal = {**state, "seasonal_inputs": True}
    assert task.model_spec(seasonal, config)["input_size"] == 2
    train = list(task.batches(state, "train", config, np.random.default_rng(0)))
    total = sum(b["x"].shape[1] for b in train)
    assert total == state["split_ends"][0] - 12 - 3 + 1
    assert all(b["x"].shape[0] == 12 and b["y"].shape[1] == 3 for b in train)
    assert train[0]["x"].dtype == np.float32 and train[0]["lengths"] is None
    test = list(task.batches(state, "test", config, np.random.default_rng(0)))
    # Test windows come in time order: the last input of window b+1 is one row later.
    x = test[0]["x"][:, :, 0]
    np.testing.assert_array_equal(x[-1, 1:-1], x[-2, 2:])


def test_season_is_detected_on_the_bundled_series():
    task = ForecastTask()
    assert task.prepare({"data": "sunspots"})["season"] == 11  # the solar cycle
    assert task.prepare({"data": "co2", "window": 60})["season"] == 52  # weeks per year
    assert task.prepare({"data": "sunspots", "season": 1})["season"] == 1


@pytest.mark.parametrize("data,mode", [("sunspots", "level"), ("co2", "relative")])
def test_inputs_auto_is_relative_for_a_trending_series(data, mode):
    task = ForecastTask()
    assert task.prepare({"data": data})["inputs"] == mode
    assert task.prepare({"data": data, "inputs": "auto"})["inputs"] == mode
    for explicit in ("level", "relative"):
        assert task.prepare({"data": data, "inputs": explicit})["inputs"] == explicit


def test_resolve_inputs_by_the_share_of_variance_a_line_explains():
    t = np.arange(200.0)
    noise = np.random.default_rng(0).normal(size=200)
    assert win.resolve_inputs("auto", (t + noise)[:, None]) == "relative"
    assert win.resolve_inputs(None, (0.001 * t + noise)[:, None]) == "level"
    assert win.resolve_inputs("level", (t + noise)[:, None]) == "level"
