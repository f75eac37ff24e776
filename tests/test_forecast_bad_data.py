"""forecast on awkward data: a split without an observed value, a MASE without a scale
and a training file edited since training are each a one-line error before anything is
written; a value <= 0 after the training rows of a multiplicative ETS fit is forecast from
its additive fallback; NaN metrics are JSON null."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.errors import UserError
from recurrent_plugins.forecast import ets

SMALL = ["--hidden", "8", "--steps", "5", "--threads", "1", "--quiet", "--no-plot",
         "--time-column", "t", "--window", "8", "--inputs", "level"]


def seasonal_rows(n=120, seed=1):
    """[[t, y]]: a positive series with a trend and a multiplicative 12-step season."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = (50 + 0.5 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 0.5, n)
    return [[int(a), float(b)] for a, b in zip(t, y)]


def train(tmp_path, name, rows, *options):
    path = write_csv(tmp_path / f"{name}.csv", ["t", "y"], rows)
    run = tmp_path / name
    return invoke("train", "forecast", "--data", path, "--out", run, *SMALL, *options), run


def ets_kind(run):
    with open(run / "config.json") as f:
        return json.load(f)["task_state"]["ets"][0]["kind"]


@pytest.mark.parametrize("blank, split", [(range(84, 102), "valid"), (range(102, 120), "test")])
def test_a_split_without_a_value_is_refused_before_the_run_is_made(tmp_path, blank, split):
    rows = seasonal_rows()
    for i in blank:
        rows[i][1] = ""
    result, run = train(tmp_path, "gap", rows)
    one_line_error(result, "column 'y'", f"has no value in the {split} split", "nothing to score")
    assert not run.exists()


def test_eval_of_training_windows_without_an_observed_target_is_refused(tmp_path):
    """The training split holds values only in rows before the first training window's
    targets (its first --window rows): eval --split train has nothing to score there and
    says so in one line, as for a split without a value."""
    rows = seasonal_rows()
    for row in rows[4:84]:  # the training rows are 0-83; the window is 8
        row[1] = ""
    result, run = train(tmp_path, "early", rows)
    ok(result)
    for extra in ([], ["--json"]):
        one_line_error(invoke("eval", run, "--split", "train", *extra), "column 'y'",
                       "has no value in the train split's forecast targets (lines 10-85)",
                       "nothing to score")
    ok(invoke("eval", run))


def test_eval_data_without_a_value_after_the_head_rows_is_refused(tmp_path):
    result, run = train(tmp_path, "r", seasonal_rows())
    ok(result)
    rows = seasonal_rows()[:60]
    for row in rows[12:]:  # past the rows that restart the smoothing states
        row[1] = ""
    recent = write_csv(tmp_path / "recent.csv", ["t", "y"], rows)
    one_line_error(invoke("eval", run, "--data", recent), "has no value in the test split")


def test_mase_without_a_scale_is_refused(tmp_path):
    rows = seasonal_rows()
    for row in rows[:84:2]:  # no two consecutive training rows observed
        row[1] = ""
    result, run = train(tmp_path, "alt", rows)
    one_line_error(result, "MASE is scaled by the naive forecast's error",
                   "no two consecutive training rows are both observed")
    assert not run.exists()


def test_an_edited_training_file_of_the_same_length_is_refused(tmp_path):
    rows = seasonal_rows()
    result, run = train(tmp_path, "edit", rows)
    ok(result)
    before = json.loads(ok(invoke("eval", run, "--json")))
    rows[110][1] = 99999.0
    path = write_csv(tmp_path / "edit.csv", ["t", "y"], rows)
    for command in (["eval", run], ["predict", run]):
        one_line_error(invoke(*command), "changed since training", "same 120 rows")
    # as new data it is read and scored
    report = json.loads(ok(invoke("eval", run, "--data", path, "--json")))
    assert report["metrics"]["mase"] != before["metrics"]["mase"]


@pytest.mark.parametrize("edit, what", [("value", "same 120 rows"),
                                        ("rows", "100 rows, was 120")])
def test_a_resume_on_an_edited_training_file_says_to_restore_it(tmp_path, edit, what):
    """train --resume reads the run's own file: an edit is one line that says to restore
    it (--data cannot change on resume), and the run's files stay as they were."""
    rows = seasonal_rows()
    result, run = train(tmp_path, "edit", rows)
    ok(result)
    edited = rows[:100] if edit == "rows" else [*rows[:110], [110, 99999.0], *rows[111:]]
    write_csv(tmp_path / "edit.csv", ["t", "y"], edited)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    one_line_error(invoke("train", "--resume", run, "--steps", "10"),
                   "changed since training", what, "restore it as it was to train")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before


def test_a_value_at_or_below_zero_after_the_training_rows(tmp_path):
    """A multiplicative fit (training rows positive) meets a zero in the test split, then
    a negative value in a new file: the run trains, evaluates and predicts, the forecasts
    from that value on coming from the fit's additive fallback."""
    rows = seasonal_rows()
    rows[110][1] = 0.0
    result, run = train(tmp_path, "zero", rows, "--model", "hybrid")
    ok(result)
    assert ets_kind(run) == "hw_mul"
    report = json.loads(ok(invoke("eval", run, "--json")))
    assert np.isfinite(report["metrics"]["mase"])
    assert np.isfinite(report["baselines"]["ets"]["mase"])
    recent = seasonal_rows()[60:]
    recent[-5][1] = -3.0
    recent = write_csv(tmp_path / "recent.csv", ["t", "y"], recent)
    report = json.loads(ok(invoke("eval", run, "--data", recent, "--json")))
    assert np.isfinite(report["baselines"]["ets"]["mase"])
    ok(invoke("predict", run, "--data", recent))


def test_the_fallback_takes_over_at_the_first_value_at_or_below_zero():
    values = np.array([v for _, v in seasonal_rows()])
    fit = ets.fit_column(values[:84], 12)
    assert fit["kind"] == "hw_mul" and fit["fallback"]["kind"] == "hw_add"
    own = {k: v for k, v in fit.items() if k != "fallback"}
    changed = values.copy()
    changed[100] = 0.0
    parts = ets.column_components(changed, fit, 3)
    before = ets.column_components(values, fit, 3)
    for whole, mul, add, clean in zip(parts, ets.column_components(changed[:100], own, 3),
                                      ets.column_components(changed, fit["fallback"], 3),
                                      before):
        np.testing.assert_array_equal(whole[:100], mul)  # nothing before it changes
        np.testing.assert_array_equal(whole[:100], clean[:100])
        np.testing.assert_array_equal(whole[100:], add[100:])
    with pytest.raises(UserError, match="has no additive fallback"):
        ets.column_components(changed, own, 3)


def test_a_new_file_with_a_value_at_or_below_zero_restarts_on_the_rows_before_it():
    """A new file's first rows restart the states: the multiplicative fit's on the rows
    before the value <= 0 (not the training states), the fallback's on them all."""
    values = np.array([v for _, v in seasonal_rows(200)])
    fit = ets.fit_column(values[:84], 12)
    head = values[120:150].copy()
    clean = ets.restart([fit], head[:, None])[0]
    head[26] = 0.0
    moved = ets.restart([fit], head[:, None])[0]
    assert moved["fallback"] != fit["fallback"]  # restarted on the head
    # the rows before the zero are deseasonalised about as the clean restart has them
    _, _, deseason = ets.column_components(head, moved, 1)
    _, _, reference = ets.column_components(values[120:150], clean, 1)
    np.testing.assert_allclose(deseason[14:26], reference[14:26], rtol=0.1)
    # a fit without the fallback says so in one line, even at the very first row
    own = {k: v for k, v in fit.items() if k != "fallback"}
    head[0] = 0.0
    with pytest.raises(UserError, match="has no additive fallback"):
        ets.restart([own], head[:, None])


def test_undefined_metrics_are_json_null(tmp_path):
    rows = seasonal_rows()
    for row in rows[102:]:
        row[1] = 0.0  # MAPE is undefined on all-zero actuals
    result, run = train(tmp_path, "zeros", rows)
    ok(result)
    text = ok(invoke("eval", run, "--json"))

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    report = json.loads(text, parse_constant=refuse)
    assert report["metrics"]["mape"] is None and report["metrics"]["mase"] > 0
    # predict's actual values past the end of the data are null too
    text = ok(invoke("predict", run, "--origin", "test", "--steps", 30, "--json"))
    actual = json.loads(text, parse_constant=refuse)["actual"]["y"]
    assert actual[:18] == [0.0] * 18 and actual[18:] == [None] * 12


def test_a_file_of_one_row_is_counted_as_one_row(tmp_path):
    """The refusal of too few rows says "1 row", for training and for eval --data."""
    data = write_csv(tmp_path / "one.csv", ["value"], [[1.5]])
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   f"too few rows in {data!r}: 1 row, but --window 30")
    rows = write_csv(tmp_path / "rows.csv", ["value"], [[1.0 + (i % 7)] for i in range(80)])
    ok(invoke("train", "forecast", "--data", rows, "--window", 8, "--steps", 2, "--threads", 1,
              "--quiet", "--no-plot", "--out", tmp_path / "run"))
    one_line_error(invoke("eval", tmp_path / "run", "--data", data),
                   f"too few rows in {data!r}: 1 row, but the model's")
