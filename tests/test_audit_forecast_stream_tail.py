"""Audit (mutation testing) of the forecast stream's bounded tail (predict.py
forecast_stream, _stream_tail) and of the smoothing moved on (windows.advanced,
smoothing.advance, ets.advance): a first file whose column ends in a gap longer than the
tail the stream keeps still has that gap bridged to the first streamed row, as predict on
the grown file fills it; a model that reads no smoothing leaves it where it is; the fits
moved on are still fits (their saved-state checks accept them)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import (check_stream_as_grown_predict, invoke, ok, two_monthly_columns,
                     write_csv)

from recurrent.checkpoint import RunDir
from recurrent.cli import cli

from recurrent_plugins.forecast import predict
from recurrent_plugins.forecast import smoothing
from recurrent_plugins.forecast import windows as win


@pytest.fixture(scope="module")
def rnn_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit_tail")
    data = write_csv(path / "m.csv", ["date", "a", "b"], two_monthly_columns(140)[:120])
    out = path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "date",
              "--column", "a", "--column", "b", "--horizon", 3, "--model", "rnn",
              "--window", 8, "--inputs", "level",
              "--blend", "full", "--steps", 4, "--quiet", "--no-plot", "--threads", 1,
              "--out", out))
    return out


def test_a_trailing_gap_longer_than_the_kept_tail_is_bridged_as_in_the_grown_file(
        rnn_run, tmp_path):
    state = RunDir.open(str(rnn_run)).info()["task_state"]
    keep = predict._kept_rows(state)
    rows = two_monthly_columns(140)
    n, gap = 100, keep + 10  # column a misses its last `gap` rows, more than the tail
    assert n > 2 * (gap + 1) and gap + 1 < n - win.head_rows(state)
    first = [list(r) for r in rows[:n]]
    for r in first[-gap:]:
        r[1] = ""
    added = rows[n:n + 2]
    check_stream_as_grown_predict(rnn_run, tmp_path, first, added, 5,
                                    lambda row: f"{row[1]},{row[2]}")


def test_a_model_reading_no_smoothing_keeps_its_state_as_it_is():
    """windows.advanced moves the smoothing of the hybrid and esrnn models only: an rnn
    run's ETS fits (kept for the report's baseline) stay as they are."""
    pytest.importorskip("statsmodels", reason="the ets extra")
    from recurrent_plugins.forecast import ets
    t = np.arange(120)
    values = 100 + 10 * np.sin(2 * np.pi * t / 12) + 0.5 * t
    fit = ets._fit_one(values[:100], "hw_add", 12)
    scaler = {"center": [100.0], "scale": [10.0]}
    state = {"model": "rnn", "ets": [fit], "scaler": scaler, "window": 8, "season": 12}
    rows = win.scale(values[:50, None], scaler)
    assert win.advanced(state, rows) is state
    hybrid = {**state, "model": "hybrid"}
    assert win.advanced(hybrid, rows)["ets"][0]["continued"]


@pytest.mark.parametrize("season", [1, 4])
def test_learned_smoothing_moved_on_is_still_a_fit(season):
    rng = np.random.default_rng(season)
    theta = [0.3, -1.2, *rng.normal(0, .5, season if season > 1 else 0)]
    fits = [{"season": season, "theta": theta}, None]
    moved = smoothing.advance(fits, rng.normal(0, 1, (30, 2)))
    assert moved[1] is None and len(moved[0]["theta"]) == len(theta)
    smoothing.check_fit(moved[0], "es[0]")


def test_ets_fits_moved_on_are_still_fits():
    pytest.importorskip("statsmodels", reason="the ets extra")
    from recurrent_plugins.forecast import ets
    t = np.arange(120)
    values = 100 + 10 * np.sin(2 * np.pi * t / 12) + 0.5 * t
    for kind in ("ses", "holt", "hw_add", "hw_mul"):
        fit = ets._fit_one(values[:100], kind, 12)
        moved = ets.advance([fit], values[:30, None])[0]
        ets.check_fit(moved, "ets[0]")
        assert set(moved) == set(fit) | {"continued"}


def test_a_stream_from_a_single_dated_row_steps_on_from_it(tmp_path):
    """A first file of one row has no spacing to step on by: the streamed rows are placed
    by row number (as predict on the grown file, whose rows are evenly spaced, places
    them), with no error."""
    hours = np.arange(np.datetime64("2024-01-01T00"), np.datetime64("2024-01-15T00"),
                      np.timedelta64(1, "h"))
    t = np.arange(len(hours))
    values = 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.01 * t
    rows = [(str(d), f"{v:.4f}") for d, v in zip(hours, values)]
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data",
              write_csv(tmp_path / "hourly.csv", ["time", "load"], rows[:-3]),
              "--horizon", 2, "--window", 1, "--season", 1, "--model", "rnn",
              "--calendar", "none", "--steps", 3, "--quiet", "--no-plot", "--threads", 1,
              "--out", run))
    one = write_csv(tmp_path / "one.csv", ["time", "load"], rows[-3:-2])
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", one,
                                      "--steps", "3"],
                                input="".join(f"{v}\n" for _, v in rows[-2:]))
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    for k, answer in enumerate(answers, 1):
        grown = write_csv(tmp_path / f"grown{k}.csv", ["time", "load"], rows[-3:-2 + k or None])
        expected = json.loads(ok(invoke("predict", run, "--data", grown, "--steps", 3,
                                        "--json")))
        np.testing.assert_allclose(answer["forecast"]["load"], expected["forecast"]["load"],
                                   rtol=1e-9)


def test_numbers_step_on_by_their_median_spacing_not_their_mean():
    """A numeric time axis with one long step (a gap in the years) steps on by the usual
    step, in predict's future times and in a stream's appended rows alike."""
    years = np.array([2000.0, 2001.0, 2002.0, 2003.0, 2010.0])
    assert predict._spacing(years) == 1.0
    assert predict._forecast_times(years, 4, 3).tolist() == [2011.0, 2012.0, 2013.0]
    assert predict._times_after(years[-1], predict._spacing(years),
                                np.arange(1, 3)).tolist() == [2011.0, 2012.0]


@pytest.mark.parametrize("kind", ["hw_add", "hw_mul"])
def test_deseasonalised_rows_read_the_state_of_a_season_before_their_own_at_first(kind):
    """ets.column_components at a series' start (_seasonal_indices): row t's value
    without the seasonal state filtered a season before it; the first season's rows,
    which have none in the series, without their own."""
    pytest.importorskip("statsmodels", reason="the ets extra")
    from recurrent_plugins.forecast import ets
    m, t = 12, np.arange(80)
    values = 100 + 10 * np.sin(2 * np.pi * t / m) + 0.5 * t
    fit = ets._fit_one(values[:60], kind, m)
    seasonal = ets._states(values, fit)[:, -1]
    before = np.concatenate([seasonal[:m], seasonal[:-m]])
    _, _, deseasonalised = ets.column_components(values, fit, 3)
    expected = values / before if kind == "hw_mul" else values - before
    np.testing.assert_array_equal(deseasonalised, expected)
