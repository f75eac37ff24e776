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
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "d",
                          "--model", "esrnn", "--loss", "binary_cross_entropy", *SMALL),
                   "--es-train joint", "--loss mse")
    assert not (tmp_path / "d").exists()
    # Weight averaging covers the network only, not the smoothing it trains with.
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "e",
                          "--model", "esrnn", "--average", "ema:0.9", *SMALL),
                   "--average", "the task's own parameters",
                   "use --average off, or --es-train first (keeps them fixed)")
    assert not (tmp_path / "e").exists()
    ok(invoke("train", "forecast", "--data", path, "--out", tmp_path / "f",
              "--model", "esrnn", "--es-train", "first", "--average", "ema:0.9", *SMALL))


def test_joint_training_moves_the_smoothing_and_eval_uses_the_learned_values(tmp_path):
    """--es-train joint: the smoothing's theta leaves the fit it started from, the best
    checkpoint holds it and the run's state is that checkpoint's; eval scores with it.
    --es-train first: the fit stays as it was, and no checkpoint holds a task part."""
    from recurrent.checkpoint import RunDir, load_arrays
    from recurrent.runs import load_model
    path = write_csv(tmp_path / "q.csv", ["date", "value"], quarterly_rows())
    runs = {}
    for mode in ("joint", "first"):
        runs[mode] = tmp_path / mode
        ok(invoke("train", "forecast", "--data", path, "--out", runs[mode], "--window", 8,
                  "--horizon", 4, "--model", "esrnn", "--es-train", mode, *SMALL))
    states = {m: json.loads((r / "config.json").read_text())["task_state"]
              for m, r in runs.items()}
    fitted = smoothing.fit(np.asarray(ForecastTask().load(states["first"], {}).scaled[
        :states["first"]["split_ends"][0]]), 4, 4)
    assert states["first"]["es"] == fitted and states["first"]["es_train"] == "first"
    best = load_arrays(str(runs["joint"] / "best.npz"))[0]
    assert [k for k in best if k.startswith("task")] == ["task/es.0"]
    assert states["joint"]["es"][0]["theta"] == [float(v) for v in best["task/es.0"]]
    assert np.abs(best["task/es.0"] - np.float32(fitted[0]["theta"])).max() > 1e-4
    assert not any(k.startswith("task") for k in load_arrays(
        str(runs["first"] / "best.npz"))[0])
    # eval reads the learned values (load_model folds the checkpoint's into the state)
    model, info = load_model(RunDir.open(str(runs["joint"])))
    assert info["task_state"]["es"] == states["joint"]["es"]
    report = json.loads(ok(invoke("eval", runs["joint"], "--json")))
    task = ForecastTask()
    mine = task.evaluate(info["task_state"], "test", {}, model.runner())
    assert report["metrics"]["mase"] == pytest.approx(mine["mase"], rel=1e-12)
    fit_state = {**info["task_state"], "es": fitted}
    assert task.evaluate(fit_state, "test", {}, model.runner())["mase"] != \
        pytest.approx(mine["mase"], rel=1e-9)


def joint_run(tmp_path, gaps=True):
    """A two-column seasonal series (m=4) with gaps, prepared for --model esrnn
    --es-train joint: (task, state, prepared)."""
    a, b = seasonal_series(n=90, seed=1), seasonal_series(n=90, seed=2)[::-1] * 0.5
    rows = [[f"{u:.6f}", f"{v:.6f}"] for u, v in zip(a, b)]
    if gaps:
        rows[17][0] = rows[18][0] = rows[40][1] = ""  # gaps: windows read known values
    path = write_csv(tmp_path / "two.csv", ["a", "b"], rows)
    task = ForecastTask()
    state = task.prepare({"data": path, "column": ("a", "b"), "window": 6, "horizon": 3,
                          "season": 4, "forecast_model": "esrnn", "es_train": "joint"})
    return task, state, task.load(state, {})


def test_gradients_of_the_hybrids_smoothing_through_the_network_match_finite_differences(
        tmp_path):
    """The whole chain of --es-train joint in float64: theta -> the smoothing's level,
    season and forecast -> the network's inputs and its targets (y - anchor) -> a small
    float64 LSTM -> mse; joint.theta_grads with the model's input gradient against
    central differences of that loss."""
    from recurrent.model import SequenceModel
    from recurrent.plugins import get_loss
    from recurrent_plugins.forecast import joint
    from recurrent_plugins.forecast import windows as win
    task, state, prepared = joint_run(tmp_path)
    assert state["model"] == "esrnn" and win.hybrid_model(state)
    model = SequenceModel(task.model_spec(state, {}), cell="lstm", hidden_size=5,
                          dtype=np.float64, seed=3)
    loss_fn = get_loss("mse")
    origins = np.array([9, 16, 18, 19, 33, 41, 47])  # windows over and after the gaps
    theta = {k: v.astype(np.float64) for k, v in joint.trained_params(state).items()}
    assert sorted(theta) == ["es.0", "es.1"] and len(theta["es.0"]) == 6
    for value in theta.values():  # alpha and gamma away from the sigmoid's flat ends
        value[:2] = [0.4, -0.7]

    def batch(values):
        now = joint.with_params(state, values)
        x = win.model_inputs(prepared.scaled, prepared.last_seen, origins, now,
                             prepared.calendar, dtype=np.float64)
        y = anc.model_targets(prepared.scaled, prepared.last_seen, origins, now,
                              dtype=np.float64)
        return now, x, y

    def loss(values):
        _, x, y = batch(values)
        outputs, _ = model.forward(x, need_grad=False)
        return loss_fn.value_and_grad(outputs, y)[0]

    now, x, y = batch(theta)
    outputs, _ = model.forward(x)
    _, d_outputs = loss_fn.value_and_grad(outputs, y)
    d_inputs = model.backward(d_outputs)
    grads = joint.theta_grads(prepared.scaled, prepared.last_seen, origins, now, d_outputs,
                              d_inputs)
    eps = 1e-6
    for name, value in theta.items():
        assert grads[name].shape == value.shape
        for i in range(len(value)):
            up, down = value.copy(), value.copy()
            up[i] += eps
            down[i] -= eps
            fd = (loss({**theta, name: up}) - loss({**theta, name: down})) / (2 * eps)
            assert grads[name][i] == pytest.approx(fd, rel=1e-5, abs=1e-10), (name, i)
        assert np.all(np.abs(grads[name][:2]) > 1e-8)  # alpha and gamma both matter


def test_the_gradient_through_the_inputs_alone_and_the_anchor_alone_both_count(tmp_path):
    """Neither path of joint.theta_grads is idle: the inputs' part and the anchor's
    part are each non-zero and they add up to the whole."""
    from recurrent_plugins.forecast import joint
    _, state, prepared = joint_run(tmp_path, gaps=False)
    origins = np.arange(8, 40)
    rng = np.random.default_rng(0)
    d_outputs = rng.normal(size=(len(origins), 3 * 2))
    d_inputs = rng.normal(size=(6, len(origins), ForecastTask().model_spec(
        state, {})["input_size"]))
    both = joint.theta_grads(prepared.scaled, prepared.last_seen, origins, state,
                             d_outputs, d_inputs)
    anchor = joint.theta_grads(prepared.scaled, prepared.last_seen, origins, state,
                               d_outputs, None)
    inputs = joint.theta_grads(prepared.scaled, prepared.last_seen, origins, state,
                               0 * d_outputs, d_inputs)
    for name in both:
        assert np.abs(anchor[name]).max() > 1e-6 and np.abs(inputs[name]).max() > 1e-6
        np.testing.assert_allclose(anchor[name] + inputs[name], both[name], rtol=1e-9,
                                   atol=1e-12)
