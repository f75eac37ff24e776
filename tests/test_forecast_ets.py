"""forecast: the exponential-smoothing (ETS) baseline, fitted by statsmodels on the training
rows only and filtered through the data up to each origin with the fitted parameters."""
import json
import sys

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

pytest.importorskip("statsmodels", reason="the ETS baseline needs the ets extra")

from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # noqa: E402

from recurrent.extras import install_hint  # noqa: E402
from recurrent_plugins.forecast import ets  # noqa: E402
from recurrent_plugins.forecast.task import ForecastTask  # noqa: E402

SMALL = ["--hidden", "8", "--epochs", "2", "--threads", "1", "--quiet", "--no-plot"]


def monthly_rows(n=144, seed=0, growth=0.01):
    """[[date, value]]: a positive, growing series with a multiplicative yearly cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = (100 * np.exp(growth * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12))
              + rng.normal(scale=2.0, size=n))
    return [[f"{2000 + i // 12}-{i % 12 + 1:02d}-01", f"{v:.4f}"] for i, v in zip(t, values)]


def test_the_fit_never_sees_validation_or_test_rows(tmp_path):
    rows = monthly_rows()
    changed = [list(r) for r in rows]
    for r in changed[-40:]:  # the validation and test rows (15% each of 144 = 22 + 22)
        r[1] = f"{float(r[1]) * 3 + 50:.4f}"
    task = ForecastTask()
    states = [task.prepare({"data": write_csv(tmp_path / f"{name}.csv", ["date", "value"],
                                              data), "time_column": "date", "window": 12})
              for name, data in (("a", rows), ("b", changed))]
    assert states[0]["split_ends"][0] <= len(rows) - 40
    assert states[0]["ets"] == states[1]["ets"]
    fit = states[0]["ets"][0]
    assert fit["kind"] in ("hw_add", "hw_mul") and fit["season"] == 12
    # ...and it is the fit statsmodels makes of the training rows themselves.
    train = np.array([float(r[1]) for r in rows[:states[0]["split_ends"][0]]])
    assert ets.fit_column(train, 12) == fit


def test_forecasts_from_every_origin_are_statsmodels_forecasts_from_the_rows_so_far():
    rng = np.random.default_rng(1)
    t = np.arange(120)
    values = 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(size=120)
    for kind in ("hw_add", "hw_mul", "holt", "ses"):
        fit = ets._fit_one(values[:80], kind, 12)
        forecast, level, _ = ets.column_components(values, fit, 5)
        for origin in (13, 40, 79, 100, 114):
            # A model smoothing only the rows up to the origin, with the same parameters
            # and initial states: what was known there.
            known = ets._filtered(values[:origin + 1], fit)
            np.testing.assert_allclose(forecast[origin], known.forecast(5), rtol=1e-9)
            assert level[origin] == pytest.approx(np.asarray(known.states)[-1, 0])
    # The training rows' filtered states are those of statsmodels' own fit.
    fit = ets._fit_one(values[:80], "hw_add", 12)
    refit = ETSModel(values[:80], error="add", trend="add", seasonal="add",
                     seasonal_periods=12, initialization_method="known",
                     initial_level=fit["initial_level"], initial_trend=fit["initial_trend"],
                     initial_seasonal=np.array(fit["initial_seasonal"]))
    smoothed = refit.smooth([fit["smoothing"][n] for n in refit.param_names])
    np.testing.assert_allclose(ets.column_components(values, fit, 1)[0][:79, 0],
                               np.asarray(smoothed.fittedvalues)[1:80], rtol=1e-9)


def test_candidates_follow_the_series():
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(size=100)) - 20  # no season, some values negative
    assert ets._candidates(walk, 12) == ["ses", "hw_add"]
    assert ets._candidates(walk, 1) == ["ses", "holt"]
    assert ets._candidates(np.abs(walk) + 1, 12) == ["ses", "hw_add", "hw_mul"]
    assert ets._candidates(np.abs(walk[:20]) + 1, 12) == ["ses", "holt"]  # < 2 seasons
    assert ets.fit_column(walk[:5], 1) is None


def test_every_report_shows_the_ets_baseline_on_the_same_origins(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["date", "value"], monthly_rows())
    run = tmp_path / "run"
    result = invoke("train", "forecast", "--data", path, "--out", run, "--window", 12,
                    "--horizon", 3, *SMALL[:-2], "--no-plot")
    ok(result)
    assert "baseline ets" in result.stdout + result.stderr
    report = json.loads(ok(invoke("eval", run, "--json")))
    assert report["baselines"]["ets"]["model"].startswith("hw_")
    assert report["baselines"]["ets"]["mase"] < report["baselines"]["naive"]["mase"]
    text = ok(invoke("eval", run))
    assert "ets hw_" in text
    # --model auto compared the ETS forecast with the plain anchors on the validation
    # windows: the very MASE the validation report shows for the ETS baseline.
    state = json.loads((run / "config.json").read_text())["task_state"]
    valid = json.loads(ok(invoke("eval", run, "--json", "--split", "valid")))["baselines"]
    choice = state["model_choice"]
    assert choice["ets"] == pytest.approx(valid["ets"]["mase"], rel=1e-9)
    assert set(choice) == {"anchors", "ets", "combined", "es"}
    best = min(choice, key=choice.get)
    assert state["model"] == {"anchors": "rnn", "es": "esrnn"}.get(best, "hybrid")
    assert best in ("anchors", "es") or "ets" in state["anchors"][0]
    assert f"--model auto took {state['model']}" in text
    back = json.loads(ok(invoke("eval", run, "--backtest", 4, "--json")))["backtest"]
    assert set(back["forecasters"]) == {"model", "naive", "seasonal_naive", "ets"}
    assert "ets hw_" in ok(invoke("eval", run, "--backtest", 4))


def test_without_statsmodels_the_report_says_how_to_get_it(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "m.csv", ["date", "value"], monthly_rows())
    run = tmp_path / "run"
    # statsmodels not importable, as on an install without the ets extra
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
    assert not ets.available()
    result = invoke("train", "forecast", "--data", path, "--out", run, "--window", 12,
                    *SMALL)
    ok(result)
    assert result.stderr.count(install_hint("ets")) == 1
    info = json.loads((run / "config.json").read_text())
    assert "ets" not in info["task_state"]
    text = ok(invoke("eval", run))
    assert text.count(ets.missing_note()) == 1 and "ets hw" not in text
    # --json keeps stdout for the JSON: the same note goes to stderr
    for json_eval in (["--json"], ["--backtest", 4, "--json"]):
        result = invoke("eval", run, *json_eval)
        shown = json.loads(ok(result))
        assert "ets" not in shown.get("baselines", shown.get("backtest", {}).get("forecasters"))
        assert result.stderr.strip() == ets.missing_note()


def test_a_run_fitted_with_statsmodels_is_read_without_it(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "m.csv", ["date", "value"], monthly_rows())
    plain, hybrid = tmp_path / "plain", tmp_path / "hybrid"
    ok(invoke("train", "forecast", "--data", path, "--out", plain, "--window", 12,
              "--model", "rnn", *SMALL))
    ok(invoke("train", "forecast", "--data", path, "--out", hybrid, "--window", 12,
              "--model", "hybrid", *SMALL))
    assert "ets" in json.loads((plain / "config.json").read_text())["task_state"]
    # statsmodels not importable, as on an install without the ets extra
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
    text = ok(invoke("eval", plain))  # the model needs no ETS: only its baseline goes
    assert text.count(ets.missing_note()) == 1 and "ets hw" not in text
    assert "ets" not in json.loads(ok(invoke("eval", plain, "--json")))["baselines"]
    one_line_error(invoke("eval", hybrid), "forecasts from exponential smoothing")
    one_line_error(invoke("predict", hybrid), "forecasts from exponential smoothing")


def test_the_hybrid_corrects_the_ets_forecast_and_predicts_past_its_horizon(tmp_path):
    from recurrent_plugins.forecast import anchors as anc

    path = write_csv(tmp_path / "m.csv", ["date", "value"], monthly_rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, "--window", 12,
              "--horizon", 3, "--model", "hybrid", *SMALL))
    info = json.loads((run / "config.json").read_text())
    state = info["task_state"]
    assert state["model"] == "hybrid" and state["anchors"] == ["ets"] * 3
    # inputs: value, seasonal difference, ETS remainder, calendar sin and cos
    assert info["model_spec"]["input_size"] == 5
    # Without the network's correction the hybrid is its ETS baseline, exactly.
    task = ForecastTask()
    prepared = task.load(state, {})
    origins = task._origins(state, prepared, "test")
    zero = np.zeros((len(origins), 3), dtype=np.float32)
    anchor = anc.model_forecasts(zero, prepared.scaled, prepared.last_seen, origins, state)
    ets_forecast = task._baseline_forecasts(state, prepared, origins)["ets"][0]
    np.testing.assert_allclose(anchor, ets_forecast, rtol=1e-12, atol=1e-12)
    report = json.loads(ok(invoke("eval", run, "--json")))
    if state["blend"] == 0:
        assert report["metrics"]["mase"] == pytest.approx(report["baselines"]["ets"]["mase"])
    lines = ok(invoke("predict", run, "--steps", 7)).splitlines()
    assert len(lines) == 8 and all(np.isfinite(float(x.split(",")[1])) for x in lines[1:])


def test_hybrid_needs_ets_and_differences(tmp_path, monkeypatch):
    from helpers import one_line_error
    path = write_csv(tmp_path / "m.csv", ["date", "value"], monthly_rows())
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "a",
                          "--model", "hybrid", "--no-difference", *SMALL),
                   "--model hybrid", "--no-difference")
    plain = tmp_path / "plain"
    ok(invoke("train", "forecast", "--data", path, "--out", plain, "--window", 12,
              "--model", "rnn", *SMALL))
    state = json.loads((plain / "config.json").read_text())["task_state"]
    assert state["model"] == "rnn" and "ets" not in state["anchors"]
    assert "ets" in state  # the baseline is there all the same
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "b",
                          "--model", "hybrid", *SMALL), install_hint("ets"))
    assert not (tmp_path / "b").exists()
    ok(invoke("train", "forecast", "--data", path, "--out", tmp_path / "c", "--window", 12,
              *SMALL))  # the default chooses without ETS: the plain rnn or esrnn
    state = json.loads((tmp_path / "c" / "config.json").read_text())["task_state"]
    assert state["model"] in ("rnn", "esrnn") and "ets" not in state["model_choice"]
    assert not any("ets" in a for a in state["anchors"])


def test_a_combined_anchor_is_the_mean_of_its_parts():
    from recurrent_plugins.forecast import anchors as anc
    task = ForecastTask()
    state = task.prepare({"data": "co2", "window": 8, "horizon": 3})
    prepared = task.load(state, {})
    origins = task._origins(state, prepared, "valid")
    args = (prepared.scaled, prepared.last_seen, origins, 3, state["season"])
    combined = anc.anchor_forecast(*args, ["ets+last", "ets+seasonal", "seasonal_drift"],
                                   state)
    ets_only = anc.anchor_forecast(*args, ["ets"] * 3, state)
    np.testing.assert_allclose(combined[:, 0], (ets_only[:, 0] + anc.anchor_forecast(
        *args, ["last"] * 3)[:, 0]) / 2)
    np.testing.assert_allclose(combined[:, 1], (ets_only[:, 1] + anc.anchor_forecast(
        *args, ["seasonal"] * 3)[:, 1]) / 2)
    np.testing.assert_allclose(combined[:, 2], anc.anchor_forecast(
        *args, ["seasonal_drift"] * 3)[:, 2])


def test_an_origin_inside_a_gap_forecasts_from_the_last_observed_row(tmp_path):
    from recurrent_plugins.forecast import windows as win
    rows = monthly_rows()
    gap = range(120, 124)  # rows 120-123 missing: origins 120-122 lie inside the gap
    task = ForecastTask()
    forecasts = []
    for after in (0.0, 500.0):  # the first value after the gap, changed
        data = [[d, "" if i in gap else (f"{float(v) + after:.4f}" if i == 124 else v)]
                for i, (d, v) in enumerate(rows)]
        path = write_csv(tmp_path / f"gap{after}.csv", ["date", "value"], data)
        state = task.prepare({"data": path, "time_column": "date", "window": 12,
                              "horizon": 3})
        prepared = task.load(state, {})
        origins = np.array([119, 120, 122])
        forecasts.append(ets.forecast_at(prepared.scaled, prepared.last_seen, origins,
                                         state))
    # What was known at origins 120 and 122 does not depend on row 124...
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    # ...and is the forecast made at row 119, the last observed one, further ahead.
    table = ets.scaled_components(prepared.scaled, state, 3 + 4)[0]
    np.testing.assert_allclose(forecasts[0][1], table[119, 1:4])
    np.testing.assert_allclose(forecasts[0][2], table[119, 3:6])
    np.testing.assert_allclose(forecasts[0][0], table[119, :3])
    assert win.last_observed(prepared.observed)[122, 0] == 119


def test_a_recent_file_restarts_the_states_from_its_first_window(tmp_path):
    rows = monthly_rows()
    path = write_csv(tmp_path / "m.csv", ["date", "value"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, "--window", 30,
              "--model", "hybrid", *SMALL))
    # A recent file starting in another month, at another level than training did.
    recent = write_csv(tmp_path / "recent.csv", ["date", "value"], rows[-67:])
    report = json.loads(ok(invoke("eval", run, "--data", recent, "--json")))
    base = report["baselines"]
    assert base["ets"]["mase"] < min(base["seasonal_naive"]["mase"], base["naive"]["mase"])
    assert report["metrics"]["mase"] < base["naive"]["mase"]
    # The restart reads the file's first rows only (the first window's, and a season
    # before it for seasonal inputs): never a forecast target.
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert _head(state) > 30
    _restart_reads_only_the_head(tmp_path, run, rows[-67:], recent, _head(state))


def _reads(state):
    """The rows a forecast reads: its window, and a season before it when the seasonal
    differences are inputs."""
    return state["window"] + (state["season"] if state.get("seasonal_inputs") else 0)


def _head(state):
    """A new file's first rows, never forecast targets: what a forecast reads, or two
    seasons and two to restart the seasonal states, whichever is more."""
    return max(_reads(state), 2 * state["season"] + 2)


def _restart_reads_only_the_head(tmp_path, run, rows, recent, head):
    """The ETS states a new file restarts from change with its first ``head`` rows only
    (and differ from the training ones): every later row doubled leaves them as they
    were."""
    state = json.loads((run / "config.json").read_text())["task_state"]
    changed = [list(r) for r in rows]
    for r in changed[head:]:
        r[1] = f"{float(r[1]) * 2:.4f}"
    other = write_csv(tmp_path / "other.csv", ["date", "value"], changed)
    fits = [ForecastTask().load(state, {"eval_data": f}).ets for f in (recent, other)]
    assert fits[0] == fits[1] and fits[0] != state["ets"]


@pytest.mark.parametrize("window", [8, 16])
def test_a_short_window_restarts_a_new_file_on_two_seasons(tmp_path, window):
    rows = monthly_rows()
    path = write_csv(tmp_path / "m.csv", ["date", "value"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, "--window", window,
              "--model", "hybrid", *SMALL))
    # A file starting in another month: a window's rows hold less than a season, so the
    # states restart on its first rows (2 x 12 + 2, or the first window and the season
    # before it if more), which are never forecast targets.
    state = json.loads((run / "config.json").read_text())["task_state"]
    head = _head(state)
    assert head == {8: 26, 16: 28}[window] and state["seasonal_inputs"]
    recent = write_csv(tmp_path / "recent.csv", ["date", "value"], rows[-67:])
    report = json.loads(ok(invoke("eval", run, "--data", recent, "--json")))
    base = report["baselines"]
    assert report["metrics"]["windows"] == 67 - head - 1 + 1
    assert base["ets"]["mase"] < min(base["seasonal_naive"]["mase"], base["naive"]["mase"])
    _restart_reads_only_the_head(tmp_path, run, rows[-67:], recent, head)
    # fewer rows than the restart and a horizon: one line naming what needs them
    short = write_csv(tmp_path / "short.csv", ["date", "value"], rows[-head:])
    one_line_error(invoke("eval", run, "--data", short), "too few rows",
                   f"first {head} rows (the window among them), which start its seasonal "
                   f"states, and horizon 1 need at least {head + 1}")
    # predict restarts on the rows it has, which must hold what its forecast reads (the
    # window and the season before it); a stream needs the restart's rows in its first
    # file, so that the rows it appends never change the restart (as predict on the
    # grown file)
    reads = _reads(state)
    ok(invoke("predict", run, "--data", write_csv(tmp_path / "reads.csv", ["date", "value"],
                                                   rows[-reads:])))
    one_line_error(invoke("predict", run, "--data", write_csv(
        tmp_path / "fewer.csv", ["date", "value"], rows[-reads + 1:])), "too few rows",
        f"window {window} and the season of 12 rows before it, which its seasonal "
        f"forecast reads, need at least {reads}")
    one_line_error(invoke("predict", run, "--data", write_csv(
        tmp_path / "no_head.csv", ["date", "value"], rows[-head + 1:]), "--stream"),
        "too few rows", f"which start its seasonal states, need at least {head}")


def test_a_restart_holds_two_seasons_and_what_a_fit_needs():
    from recurrent_plugins.forecast import windows as win
    assert win.head_rows({"window": 8, "season": 12}) == 26
    assert win.head_rows({"window": 30, "season": 12}) == 30
    # with the seasonal differences as inputs, the first window's rows and a season more
    assert win.head_rows({"window": 30, "season": 12, "seasonal_inputs": True}) == 42
    assert win.history_rows({"window": 30, "season": 12, "seasonal_inputs": True}) == 42
    assert win.history_rows({"window": 8, "season": 12, "anchors": ["seasonal_damped"]}) == 13
    assert win.history_rows({"window": 8, "season": 12, "anchors": ["last", "ets+seasonal"]}) == 13
    assert win.history_rows({"window": 8, "season": 12, "anchors": ["last", "ets"]}) == 8
    assert win.head_rows({"window": 8, "season": 3}) == ets.MIN_ROWS  # 2 x 3 + 2 < 10
    assert win.head_rows({"window": 8, "season": 1}) == 8  # nothing seasonal to restart


def test_a_report_without_an_ets_fit_says_why(tmp_path):
    # 13 rows: 9 training rows, fewer than an ETS fit needs; the baseline was left out
    # without a word, as if the run had none
    path = write_csv(tmp_path / "short.csv", ["t", "y"],
                     [[i, 10 + (i % 3)] for i in range(13)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "t", "--out", run,
              "--window", 2, "--model", "rnn", *SMALL))
    assert ets.available()
    text = ok(invoke("eval", run))
    assert text.count(ets.unfitted_note()) == 1 and "ets hw" not in text
    assert "ets" not in json.loads(ok(invoke("eval", run, "--json")))["baselines"]


def test_a_run_trained_without_statsmodels_says_so_for_a_new_file(tmp_path, monkeypatch):
    # its training rows get ETS fitted when read; a new file has none to fit on, and the
    # report must not blame the rows
    rows = monthly_rows()
    path = write_csv(tmp_path / "m.csv", ["date", "value"], rows)
    recent = write_csv(tmp_path / "recent.csv", ["date", "value"], rows[-60:])
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)
        ok(invoke("train", "forecast", "--data", path, "--out", run, "--window", 12,
                  "--model", "rnn", *SMALL))
    assert ets.available()
    text = ok(invoke("eval", run, "--data", recent))
    assert text.count(ets.unsaved_note()) == 1 and ets.unfitted_note() not in text
    assert "ets hw" in ok(invoke("eval", run))  # its own rows: fitted when read
