"""forecast task: metrics against hand-computed values, the naive baselines, season
detection, and the task's evaluation pipeline with a real model whose head outputs zero
(in --difference mode that model IS the naive forecast, so both must score the same)."""
import json
import math

import numpy as np
import pytest

from recurrent.model import SequenceModel
from recurrent.reference import get_reference_cell
from recurrent_plugins.forecast import anchors as anc
from recurrent_plugins.forecast import metrics as fm
from recurrent_plugins.forecast import windows as win
from recurrent_plugins.forecast.predict import rollout
from recurrent_plugins.forecast.task import ForecastTask


def test_column_metrics_by_hand():
    actual = np.array([2.0, 4, 0, 5])
    forecast = np.array([3.0, 2, 1, 5])
    m = fm.column_metrics(actual, forecast, mase_scale=0.5)
    # errors 1, -2, 1, 0
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(math.sqrt(6 / 4))
    # MAPE skips the zero actual: (1/2 + 2/4 + 0/5) / 3
    assert m["mape"] == pytest.approx(100 / 3)
    # sMAPE: 2/5, 4/6, 2/1, 0/10
    assert m["smape"] == pytest.approx(100 * (0.4 + 4 / 6 + 2 + 0) / 4)
    assert m["mase"] == pytest.approx(2.0)


def test_smape_zero_over_zero_counts_as_exact_and_mape_undefined():
    m = fm.column_metrics(np.zeros(3), np.zeros(3), mase_scale=1.0)
    assert m["smape"] == 0.0 and m["mae"] == 0.0
    assert math.isnan(m["mape"])


def test_multi_column_metrics_average_and_mask():
    actual = np.array([[[1.0, 10]], [[2, 20]], [[3, 30]]])  # (B=3, H=1, C=2)
    forecast = actual + np.array([[[1.0, 0]], [[1, 5]], [[100, 5]]])
    mask = np.ones_like(actual, dtype=bool)
    mask[2, 0, 0] = False  # a gap-filled actual: the 100 error must not count
    m = fm.forecast_metrics(actual, forecast, np.array([1.0, 5.0]), ["a", "b"], mask=mask)
    assert m["mae[a]"] == pytest.approx(1.0)
    assert m["mae[b]"] == pytest.approx(10 / 3)
    assert m["mae"] == pytest.approx((1.0 + 10 / 3) / 2)
    assert m["mase[b]"] == pytest.approx(10 / 3 / 5)


def test_naive_scale_uses_observed_consecutive_pairs():
    values = np.array([[1.0], [3], [0], [4], [2]])
    observed = np.array([[True], [True], [False], [True], [True]])
    # pairs (1,3) and (4,2): both differ by 2; pairs touching the gap are skipped
    assert fm.naive_scale(values, observed).tolist() == [2.0]


def test_baseline_forecasts():
    last = np.array([[5.0, -1]])  # (B=1, C=2)
    np.testing.assert_array_equal(fm.naive_forecast(last, 3)[0], [[5, -1]] * 3)
    rows = fm.seasonal_rows(np.array([20, 30]), horizon=5, season=3)
    # h = 1..5: lag = 3, 3, 3, 6, 6 -> same step of the last season seen
    assert rows.tolist() == [[18, 19, 20, 18, 19], [28, 29, 30, 28, 29]]


def test_detect_season():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    seasonal = 0.05 * t + np.sin(2 * np.pi * t / 12) + 0.2 * rng.standard_normal(240)
    assert fm.detect_season(seasonal) == 12
    assert fm.detect_season(rng.standard_normal(240)) == 1  # white noise: no season
    assert fm.detect_season(np.arange(5.0)) == 1  # too short to tell


def zero_head_model(spec):
    model = SequenceModel(spec, cell=get_reference_cell("gru"), hidden_size=4, seed=0)
    model.named_params["head.weight"][...] = 0
    model.named_params["head.bias"][...] = 0
    return model


def test_zero_change_model_scores_exactly_as_the_naive_baseline():
    task = ForecastTask()
    config = {"data": "co2", "window": 8, "horizon": 3, "season": 52}
    state = {**task.prepare(config), "anchors": ["last"] * 3, "seasonal_inputs": False}
    model = zero_head_model(task.model_spec(state, config))
    metrics = task.evaluate(state, "test", config, model.runner())
    baselines = task.baselines(state, "test", config)
    assert set(baselines) == {"naive", "seasonal_naive", "ets"}
    assert baselines["seasonal_naive"]["season"] == 52
    for key in ("rmse", "mae", "mape", "smape", "mase", "loss", "windows"):
        assert metrics[key] == pytest.approx(baselines["naive"][key], rel=1e-5), key
    # The naive baseline's MAE by hand, in ppm, on the observed test actuals.
    prepared = task.load(state, config)
    start, end = prepared.ranges["test"]
    y, seen = prepared.series.values[:, 0], prepared.observed[:, 0]
    errors = []
    for origin in range(start - 1, end - 3):
        last = prepared.filled[prepared.last_seen[origin, 0], 0]
        errors += [abs(y[r] - last) for r in range(origin + 1, origin + 4) if seen[r]]
    assert baselines["naive"]["mae"] == pytest.approx(np.mean(errors))


@pytest.mark.parametrize("data,season", [("co2", 52), ("sunspots", 11)])
def test_zero_change_model_with_seasonal_anchors_scores_as_seasonal_naive(data, season):
    task = ForecastTask()
    config = {"data": data, "window": 8, "horizon": 3, "season": season}
    state = {**task.prepare(config), "anchors": ["seasonal"] * 3, "seasonal_inputs": True}
    model = zero_head_model(task.model_spec(state, config))
    metrics = task.evaluate(state, "test", config, model.runner())
    seasonal = task.baselines(state, "test", config)["seasonal_naive"]
    for key in ("rmse", "mae", "mase", "windows"):
        assert metrics[key] == pytest.approx(seasonal[key], rel=1e-5), key


def test_anchors_are_chosen_per_step_on_the_training_windows():
    t = np.arange(600)
    season = 24
    # A clean daily cycle: seasonal naive is exact, the last value is not.
    scaled = np.sin(2 * np.pi * t / season)[:, None]
    observed = np.ones_like(scaled, dtype=bool)
    origins = np.arange(40, 500)
    assert anc.choose_anchors(scaled, observed, origins, 3, season) == ["seasonal"] * 3
    # A trend added to the cycle: last year's change must be carried forward.
    trending = scaled + 0.01 * t[:, None]
    assert anc.choose_anchors(trending, observed, origins, 2, season) == \
        ["seasonal_drift"] * 2
    # A random walk: nothing beats the last value.
    walk = np.cumsum(np.random.default_rng(0).normal(size=600))[:, None]
    assert anc.choose_anchors(walk, observed, origins, 2, season) == ["last"] * 2
    assert anc.choose_anchors(walk, observed, origins, 2, 1) == ["last"] * 2


def _cycle_with_anomaly(phi, n=3000, season=24, seed=0):
    """A daily cycle plus an AR(1) anomaly of coefficient phi: the anomaly against the
    last season fades as phi ** h."""
    rng = np.random.default_rng(seed)
    anomaly = np.zeros(n)
    for t in range(1, n):
        anomaly[t] = phi * anomaly[t - 1] + rng.normal()
    return (20 * np.sin(2 * np.pi * np.arange(n) / season) + anomaly)[:, None]


def test_damped_shares_follow_the_fading_anomaly_and_its_bounds_are_the_seasonal_anchors():
    season, horizon = 24, 6
    scaled = _cycle_with_anomaly(0.7)
    observed = np.ones_like(scaled, dtype=bool)
    origins = np.arange(48, 2900)
    damping = np.array(anc.fit_damping(scaled, observed, origins, horizon, season))
    assert damping.shape == (horizon, 1)
    # The least-absolute-error share of y(t) - y(t-m) is about phi ** h.
    np.testing.assert_allclose(damping[:, 0], 0.7 ** np.arange(1, horizon + 1), atol=0.08)
    assert np.all(np.diff(damping[:, 0]) <= 0)
    anchors = anc.choose_anchors(scaled, observed, origins, horizon, season, damping)
    assert anchors[:3] == ["seasonal_damped"] * 3
    # Those shares beat both seasonal anchors on the windows they were fitted on.
    errors = anc.anchor_errors(scaled, observed, origins, horizon, season, damping)
    damped = anc.ANCHORS.index("seasonal_damped")
    assert np.all(errors[damped] < errors[anc.ANCHORS.index("seasonal")])
    assert np.all(errors[damped] < errors[anc.ANCHORS.index("seasonal_drift")])
    # Share 0 is seasonal naive, share 1 the seasonal drift, exactly.
    last_seen = win.last_observed(observed)
    args = (scaled, last_seen, origins, horizon, season)
    for share, kind in ((0.0, "seasonal"), (1.0, "seasonal_drift")):
        state = {"damping": [[share]] * horizon}
        np.testing.assert_array_equal(
            anc.anchor_forecast(*args, ["seasonal_damped"] * horizon, state),
            anc.anchor_forecast(*args, [kind] * horizon))
    # Without a season there is nothing to damp.
    assert anc.fit_damping(scaled, observed, origins, 2, 1) == [[0.0], [0.0]]


def test_the_kind_of_model_is_chosen_on_the_undamped_anchors():
    season, horizon = 24, 3
    scaled = _cycle_with_anomaly(0.7)
    observed = np.ones_like(scaled, dtype=bool)
    train, valid = np.arange(48, 2000), np.arange(2000, 2900)
    damping = anc.fit_damping(scaled, observed, train, horizon, season)
    refined = anc.choose_anchors(scaled, observed, train, horizon, season, damping)
    plain = anc.choose_anchors(scaled, observed, train, horizon, season, damping,
                               kinds=anc.UNDAMPED)
    assert "seasonal_damped" in refined and "seasonal_damped" not in plain
    state = {"horizon": horizon, "season": season, "damping": damping}
    model, anchors, errors = anc.choose_model(scaled, observed, valid, plain, state,
                                              np.ones(1), refined=refined)
    assert (model, anchors) == ("rnn", refined)
    last_seen = win.last_observed(observed)
    forecast = anc.anchor_forecast(scaled, last_seen, valid, horizon, season, plain)
    actual = scaled[win.target_rows(valid, horizon)]
    assert errors["anchors"] == pytest.approx(np.abs(forecast - actual).mean())


def test_rollout_beyond_the_horizon_repeats_the_last_value_for_a_zero_model():
    task = ForecastTask()
    config = {"data": "sunspots", "window": 5, "horizon": 2}
    state = task.prepare(config)
    model = zero_head_model(task.model_spec(state, config))
    window = np.linspace(-1, 1, 5)[:, None]  # (W, C)
    out = rollout(model.runner(), window, 7, {**state, "anchors": ["last", "last"]})
    np.testing.assert_allclose(out[:, 0], np.ones(7))
    levels = rollout(model.runner(), window, 3, {**state, "difference": False})
    np.testing.assert_allclose(levels[:, 0], np.zeros(3))


@pytest.mark.parametrize("loss, metric, power", [("mae", "mae", 1), ("mse", "rmse", 2)])
def test_the_validation_loss_is_the_training_loss(tmp_path, loss, metric, power):
    """The "loss" evaluate() reports picks the best checkpoint, so it must be the loss
    training minimises (docs/plugins-tasks.md): with --loss mae the mean absolute error in
    scaled units, not the squared one. On a gapless series and the standard scaler, that
    is the original units' metric divided by the column's scale (squared for mse)."""
    from helpers import invoke, ok, sunspot_rows, write_csv
    from recurrent.checkpoint import RunDir
    from recurrent.runs import load_model
    data = write_csv(tmp_path / "spots.csv", ["year", "spots"], sunspot_rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "year", "--loss", loss,
              "--model", "rnn", "--window", 8, "--inputs", "level", "--hidden", 4,
              "--steps", 3, "--threads", 1, "--quiet", "--no-plot", "--out", run))
    metrics = json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))["metrics"]
    _, info = load_model(RunDir.open(str(run)))
    scale = info["task_state"]["scaler"]["scale"][0]
    assert metrics["loss"] == pytest.approx((metrics[metric] / scale) ** power, rel=1e-9)


@pytest.mark.parametrize("loss, scaling", [("mae", ()), ("binary_cross_entropy",
                                                          ("--scaling", "minmax"))])
def test_a_run_saved_before_valid_loss_is_scored_by_mse_in_eval_and_on_resume(tmp_path, loss,
                                                                                scaling):
    """A run saved before the state recorded "valid_loss" chose its best checkpoint by the
    scaled mse whatever its --loss: eval reports that loss, and a resumed run compares its
    new evaluations with that best on the same loss. A --loss that refuses some scaled
    targets (binary_cross_entropy with training rows scaled into [0, 1], accepted then)
    is still evaluated; resuming it is refused in one line, before the run changes, as a
    new run with it is."""
    import shutil
    from helpers import invoke, ok, one_line_error, sunspot_rows, write_csv
    from recurrent.checkpoint import RunDir
    data = write_csv(tmp_path / "spots.csv", ["year", "spots"], sunspot_rows())
    run, old = tmp_path / "run", tmp_path / "old"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "year", "--loss", "mae",
              "--model", "rnn", "--window", 8, "--inputs", "level", "--hidden", 4, *scaling,
              "--no-difference", "--steps", 3, "--threads", 1, "--quiet", "--no-plot",
              "--out", run))
    shutil.copytree(run, old)
    config_file = old / "config.json"
    info = json.loads(config_file.read_text())
    info["task_state"].pop("valid_loss", None)
    info["config"]["loss"] = loss
    config_file.write_text(json.dumps(info))
    scale = info["task_state"]["scaler"]["scale"][0]

    def mse_of(metrics):
        return (metrics["rmse"] / scale) ** 2

    new_metrics = json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))["metrics"]
    assert new_metrics["loss"] == pytest.approx(new_metrics["mae"] / scale, rel=1e-9)
    metrics = json.loads(ok(invoke("eval", old, "--split", "valid", "--json")))["metrics"]
    assert metrics["loss"] == pytest.approx(mse_of(metrics), rel=1e-9)
    assert "; loss = mse on scaled values" in ok(invoke("eval", old))
    assert "; loss = --loss (mse by default)" in ok(invoke("eval", run))
    before = {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()}
    resume = invoke("train", "forecast", "--resume", old, "--steps", 5, "--eval-every", 1,
                    "--quiet")
    if loss == "binary_cross_entropy":
        one_line_error(resume, "--loss binary_cross_entropy does not fit task 'forecast'",
                       "can be evaluated and predicted with, not trained further")
        assert {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()} == before
        return
    ok(resume)
    records = [json.loads(line) for line in (old / "metrics.jsonl").read_text().splitlines()]
    resumed = [r["metrics"] for r in records if r.get("kind") == "eval" and r["step"] > 3]
    assert len(resumed) == 2
    for metrics in resumed:
        assert metrics["loss"] == pytest.approx(mse_of(metrics), rel=1e-9)
