"""forecast: the learned smoothing of --model esrnn (ES-RNN's level and season recursion,
plugins/forecast/smoothing.py): its gradients, its fit on the training rows only, and the
model built on it."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent_plugins.forecast import anchors as anc
from recurrent_plugins.forecast import smoothing
from recurrent_plugins.forecast.task import ForecastTask

SMALL = ["--hidden", "8", "--epochs", "2", "--threads", "1", "--quiet", "--no-plot"]


def seasonal_series(n=60, season=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / season) + 0.03 * t
            + 0.2 * rng.standard_normal(n)).astype(np.float64)


@pytest.mark.parametrize("season, horizon", [(4, 1), (4, 3), (4, 9), (1, 2), (7, 7)])
def test_gradients_of_alpha_gamma_and_the_initial_season_match_finite_differences(
        season, horizon):
    y = seasonal_series(season=max(season, 2))
    rng = np.random.default_rng(season * 10 + horizon)
    # coefficients away from the sigmoid's flat ends, random initial seasonal indices
    theta = np.concatenate([[0.4, -0.7], rng.normal(scale=0.5, size=season if season > 1
                                                    else 0)])
    loss, grad = smoothing.loss_and_grad(y, theta, season, horizon)
    assert grad.dtype == np.float64 and grad.shape == theta.shape
    eps = 1e-6
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = eps
        fd = (smoothing.loss_and_grad(y, theta + step, season, horizon)[0]
              - smoothing.loss_and_grad(y, theta - step, season, horizon)[0]) / (2 * eps)
        assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-9), i
    # gradients reach every parameter: alpha, gamma (with a season) and each index
    assert np.all(np.abs(grad[:2 if season > 1 else 1]) > 1e-8)
    if season > 1:
        assert np.all(np.abs(grad[2:]) > 1e-8)


def test_the_forecast_is_the_recursion_run_up_to_the_origin():
    y = seasonal_series(n=40)
    theta = np.array([0.1, -1.0, 0.5, 0.2, -0.3, -0.4])
    table, level, _ = smoothing.forecast_table(y, theta, 4, 6)
    for origin in (0, 7, 22, 39):
        short, short_level, _ = smoothing.forecast_table(y[:origin + 1], theta, 4, 6)
        np.testing.assert_allclose(table[origin], short[origin], rtol=1e-12)
        assert level[origin] == pytest.approx(short_level[origin])


def test_learning_lowers_the_loss_of_the_starting_point():
    y = seasonal_series(n=80)
    fit = smoothing.fit_column(y, 4, 4)
    start = smoothing.loss_and_grad(y, smoothing.initial_theta(y, 4), 4, 4)[0]
    flat = smoothing.loss_and_grad(y, np.zeros(6), 4, 4)[0]  # no seasonal indices
    assert fit["loss"] < 0.95 * start and fit["loss"] < 0.6 * flat
    assert 0 < fit["alpha"] < 1 and 0 <= fit["gamma"] < 1
    assert fit["loss"] == pytest.approx(
        smoothing.loss_and_grad(y, np.asarray(fit["theta"]), 4, 4)[0])
    assert smoothing.fit_column(y[:8], 4, 4) is None  # too few rows


def quarterly_rows(n=120, seed=0):
    t = np.arange(n)
    values = seasonal_series(n=n, season=4, seed=seed) * 10 + 100
    return [[f"{2000 + i // 4}-{3 * (i % 4) + 1:02d}-01", f"{v:.4f}"]
            for i, v in zip(t, values)]


def test_the_smoothing_never_sees_validation_or_test_rows(tmp_path):
    rows = quarterly_rows()
    changed = [list(r) for r in rows]
    for r in changed[-36:]:  # the validation and test rows (15% each of 120 = 18 + 18)
        r[1] = f"{float(r[1]) * 3 + 50:.4f}"
    task = ForecastTask()
    states = [task.prepare({"data": write_csv(tmp_path / f"{name}.csv", ["date", "value"],
                                              data), "time_column": "date", "window": 8,
                            "horizon": 4, "forecast_model": "esrnn"})
              for name, data in (("a", rows), ("b", changed))]
    assert states[0]["split_ends"][0] <= len(rows) - 36
    assert states[0]["es"] == states[1]["es"]
    assert states[0]["es"][0]["season"] == 4 and states[0]["anchors"] == ["es"] * 4


def test_esrnn_corrects_the_learned_forecast(tmp_path):
    path = write_csv(tmp_path / "q.csv", ["date", "value"], quarterly_rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, "--window", 8,
              "--horizon", 4, "--model", "esrnn", *SMALL))
    info = json.loads((run / "config.json").read_text())
    state = info["task_state"]
    assert state["model"] == "esrnn"
    # inputs: value, seasonal difference, the smoothing's remainder, calendar sin and cos
    assert info["model_spec"]["input_size"] == 5
    task = ForecastTask()
    prepared = task.load(state, {})
    origins = task._origins(state, prepared, "test")
    zero = np.zeros((len(origins), 4), dtype=np.float32)
    anchor = anc.model_forecasts(zero, prepared.scaled, prepared.last_seen, origins, state)
    table = smoothing.components(prepared.scaled, state["es"], 4)[0]
    np.testing.assert_allclose(anchor, table[origins], rtol=1e-12)
    text = ok(invoke("eval", run))
    assert "learned ES forecast" in text
    lines = ok(invoke("predict", run, "--steps", 9)).splitlines()
    assert len(lines) == 10 and all(np.isfinite(float(x.split(",")[1])) for x in lines[1:])
    # A recent file starts the recursion at its own first rows: the initial seasonal
    # indices are its first season's (restart), the learned coefficients the run's.
    recent = write_csv(tmp_path / "recent.csv", ["date", "value"], quarterly_rows()[-30:])
    lines = ok(invoke("predict", run, "--data", recent)).splitlines()
    assert len(lines) == 5 and all(np.isfinite(float(x.split(",")[1])) for x in lines[1:])
    moved = smoothing.restart(state["es"], prepared.scaled[1:9])
    assert moved[0]["theta"][:2] == state["es"][0]["theta"][:2]
    np.testing.assert_allclose(moved[0]["theta"][2:], prepared.scaled[1:5, 0]
                               - prepared.scaled[1:5, 0].mean())
    report = json.loads(ok(invoke("eval", run, "--data", recent, "--json")))
    assert np.isfinite(report["metrics"]["mase"])


def test_esrnn_bad_input_is_one_line(tmp_path):
    path = write_csv(tmp_path / "q.csv", ["date", "value"], quarterly_rows())
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "a",
                          "--model", "esrnn", "--no-difference", *SMALL),
                   "--model esrnn", "--no-difference")
    assert not (tmp_path / "a").exists()
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "b",
                          "--model", "es-rnn", *SMALL), "--model")
    short = write_csv(tmp_path / "short.csv", ["date", "value"], quarterly_rows(n=12))
    one_line_error(invoke("train", "forecast", "--data", short, "--out", tmp_path / "c",
                          "--window", 2, "--model", "esrnn", *SMALL),
                   "--model esrnn", "too few rows", "--model rnn")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
