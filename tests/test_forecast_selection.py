"""forecast: calendar features from a time column, and the choices made against the
baselines (anchors before training, the blend after it) -- on validation rows, never on
test rows; saved in the run, so that eval and predict use them."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.checkpoint import RunDir
from recurrent.runs import load_model
from recurrent_plugins.forecast import anchors as anc
from recurrent_plugins.forecast import calendar as cal
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast import windows as win
from recurrent_plugins.forecast.task import ForecastTask

SMALL = ["--hidden", "8", "--epochs", "3", "--threads", "1", "--quiet", "--no-plot"]


def test_calendar_phases_of_known_times():
    times = np.array(["2024-01-01T00:00", "2024-01-03T18:00", "2024-07-02T12:00",
                      "2023-12-31T12:00"], dtype="datetime64[m]")
    # 2024-01-01 was a Monday; 2024 has 366 days, 2023 365.
    np.testing.assert_allclose(cal.phases(times, "day"), [0, 0.75, 0.5, 0.5])
    np.testing.assert_allclose(cal.phases(times, "week"), [0, 2.75 / 7, 1.5 / 7, 6.5 / 7])
    np.testing.assert_allclose(cal.phases(times, "year"),
                               [0, 2.75 / 366, 183.5 / 366, 364.5 / 365])
    features = cal.features(times, ["day", "year"])
    assert features.shape == (4, 4)
    np.testing.assert_allclose(features[:, 0], np.sin(2 * np.pi * cal.phases(times, "day")))
    np.testing.assert_allclose(features[:, 3], np.cos(2 * np.pi * cal.phases(times, "year")))
    assert cal.features(times, []) is None


def _every(start, step, n, unit):
    return np.datetime64(start, unit) + np.arange(n) * np.timedelta64(step, unit)


def test_calendar_cycles_follow_the_step_and_the_training_span():
    hourly = _every("2021-01-01T00", 1, 24 * 21, "h")
    assert cal.choose_cycles("auto", hourly, len(hourly)) == ["day", "week"]
    assert cal.choose_cycles("auto", hourly, 24 * 10) == ["day"]  # 10 days: < 2 weeks
    daily = _every("2020-01-01", 1, 3 * 366, "D")
    assert cal.choose_cycles("auto", daily, len(daily)) == ["week", "year"]
    monthly = np.array([f"{2000 + i // 12}-{i % 12 + 1:02d}-01" for i in range(120)],
                       dtype="datetime64[D]")
    assert cal.choose_cycles("auto", monthly, 120) == ["year"]
    assert cal.choose_cycles("auto", monthly, 20) == []  # not two years of training rows
    assert cal.choose_cycles("none", monthly, 120) == []
    assert cal.choose_cycles("auto", np.arange(1700.0, 1800.0), 100) == []  # numbers
    assert cal.choose_cycles("auto", None, 100) == []


def monthly_rows(n=180, seed=0):
    """[[date, value]]: a yearly cycle plus noise, monthly."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 * np.sin(2 * np.pi * t / 12) + 3 * np.cos(4 * np.pi * t / 12) \
        + rng.normal(scale=1.0, size=n) + 50
    return [[f"{2000 + i // 12}-{i % 12 + 1:02d}-01", f"{v:.4f}"] for i, v in zip(t, values)]


def test_a_dated_run_feeds_calendar_features_and_predicts_past_its_horizon(tmp_path):
    path = write_csv(tmp_path / "monthly.csv", ["date", "value"], monthly_rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--horizon", 2, "--out", run,
              "--model", "rnn", *SMALL))
    info = json.loads((run / "config.json").read_text())
    state = info["task_state"]
    assert state["calendar"] == ["year"] and state["season"] == 12
    assert state["seasonal_inputs"]
    assert info["model_spec"]["input_size"] == 2 + 2  # value, seasonal difference, sin, cos
    lines = ok(invoke("predict", run, "--steps", 7)).splitlines()
    assert lines[0] == "date,value" and len(lines) == 8
    assert all(np.isfinite(float(line.split(",")[1])) for line in lines[1:])
    plain = tmp_path / "plain"
    ok(invoke("train", "forecast", "--data", path, "--horizon", 2, "--out", plain,
              "--calendar", "none", "--model", "rnn", *SMALL))
    info = json.loads((plain / "config.json").read_text())
    assert info["task_state"]["calendar"] == [] and info["model_spec"]["input_size"] == 2


def test_calendar_features_differ_by_the_month_of_each_window_step():
    task = ForecastTask()
    config = {"data": "co2", "window": 8, "horizon": 1}
    state = task.prepare(config)
    assert state["calendar"] == ["year"]
    prepared = task.load(state, config)
    origins = np.array([100, 126])  # half a year apart (weekly rows)
    x = win.model_inputs(prepared.scaled, prepared.last_seen, origins, state,
                         prepared.calendar)  # (W, B, 1 + 2)
    phase = cal.phases(prepared.series.times[origins], "year")
    np.testing.assert_allclose(x[-1, :, -2], np.sin(2 * np.pi * phase), atol=1e-6)
    np.testing.assert_allclose(x[-1, :, -1], np.cos(2 * np.pi * phase), atol=1e-6)
    with pytest.raises(ValueError, match="calendar"):
        win.model_inputs(prepared.scaled, prepared.last_seen, origins, state)


def test_choose_blend_keeps_the_share_that_fits():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(50, 2, 1))
    anchor = np.zeros_like(actual)
    observed = np.ones(actual.shape, dtype=bool)
    scale = np.ones(1)
    assert anc.choose_blend(actual, anchor, actual, observed, scale) == 1.0
    assert anc.choose_blend(2 * actual, anchor, actual, observed, scale) == 0.5
    noise = rng.normal(size=actual.shape)
    assert anc.choose_blend(noise, anchor, np.zeros_like(actual), observed, scale) == 0.0
    assert anc.choose_blend(np.zeros_like(actual), anchor, actual, observed, scale) == 1.0


def _trained(tmp_path, rows, *options):
    path = write_csv(tmp_path / "data.csv", ["date", "value"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, *options, *SMALL))
    return path, run


def test_choices_never_read_the_test_rows(tmp_path):
    rows = monthly_rows()
    path, run = _trained(tmp_path, rows, "--model", "rnn")
    info = RunDir.open(str(run)).info()
    # the state is pointed at edited copies of the data below: without the digest of
    # the file it was trained on, which would refuse them
    state = {k: v for k, v in info["task_state"].items() if k != "data_sha256"}
    assert state["blend"] in anc.BLEND_GRID
    assert state["anchors"] in (["seasonal"], ["seasonal_damped"])
    valid_end = state["split_ends"][1]
    task = ForecastTask()
    model, _ = load_model(RunDir.open(str(run)), threads=1)
    # Test rows replaced twice: by the seasonal-naive continuation (where the anchor
    # alone is exact, so a choice made on them would drop the correction) and by noise.
    values = np.array([float(v) for _, v in rows])
    repeat = values.copy()
    for r in range(valid_end, len(values)):
        repeat[r] = repeat[r - 12]
    noise = values.copy()
    noise[valid_end:] = np.random.default_rng(1).normal(scale=100, size=len(values) - valid_end)
    auto = task.prepare({"data": path})  # --model auto: chosen on the validation rows
    assert auto["model"] in ("hybrid", "esrnn", "rnn")
    assert set(auto["model_choice"]) == {"ets", "anchors", "combined", "es"}
    for name, changed in (("repeat", repeat), ("noise", noise)):
        other = write_csv(tmp_path / f"{name}.csv", ["date", "value"],
                          [[d, f"{v:.4f}"] for (d, _), v in zip(rows, changed)])
        config = {"data": other, "horizon": 1, "forecast_model": "rnn",
                  "window": state["window"], "inputs": state["inputs"]}
        prepared = task.prepare(config)
        # (the data's digest, data_sha256, is of the whole file: not a choice)
        same = {k: v for k, v in prepared.items()
                if k not in ("data", "data_label", "data_sha256")}
        before = {k: state[k] for k in same}
        assert same == before, name
        other_auto = task.prepare({"data": other})
        assert {k: v for k, v in other_auto.items()
                if k not in ("data", "data_label", "data_sha256")} \
            == {k: v for k, v in auto.items()
                if k not in ("data", "data_label", "data_sha256")}, name
        moved = {**state, "data": str(dataio.resolve_source(other).path)}
        assert task.after_training({k: v for k, v in moved.items() if k != "blend"}, {},
                                   model.runner())["blend"] == state["blend"], name
    # On the "repeat" test rows the anchor alone is exact: a choice made there is 0.
    moved = {**state, "data": str(dataio.resolve_source(str(tmp_path / "repeat.csv")).path)}
    prepared = task.load(moved, {})
    origins = task._origins(moved, prepared, "test")
    full = task._scaled_forecasts({**moved, "blend": 1.0}, prepared, origins, model.runner())
    anchor = anc.anchor_forecast(prepared.scaled, prepared.last_seen, origins, 1, 12,
                                 state["anchors"], state)
    target = prepared.scaled[win.target_rows(origins, 1)]
    assert anc.choose_blend(full - anchor, anchor, target,
                            np.ones(target.shape, dtype=bool), np.ones(1)) == 0.0


def test_the_report_names_what_the_correction_is_added_to():
    from recurrent_plugins.forecast.report import anchor_label
    assert anchor_label(["ets"] * 3) == "ETS forecast"
    assert anchor_label(["es"]) == "learned ES forecast"
    # --model auto's combined candidate is a hybrid run whose anchor is not ETS alone
    assert anchor_label(["ets+seasonal", "ets+last"]) == \
        "mean of the ETS forecast and the plain anchor"
    assert anchor_label(["seasonal", "last"]) == anchor_label(["ets", "last"]) == "anchor"


def test_eval_and_predict_use_the_saved_blend(tmp_path):
    path, run = _trained(tmp_path, monthly_rows(), "--model", "rnn")
    config_file = run / "config.json"
    info = json.loads(config_file.read_text())
    assert info["task_state"]["blend_mode"] == "auto"
    # With no correction kept the model IS its anchor, here seasonal naive.
    info["task_state"]["blend"] = 0.0
    info["task_state"]["anchors"] = ["seasonal"]
    config_file.write_text(json.dumps(info))
    report = json.loads(ok(invoke("eval", run, "--json")))
    assert report["metrics"]["mase"] == pytest.approx(
        report["baselines"]["seasonal_naive"]["mase"], rel=1e-6)
    assert "model = anchor + 0.0000 x the network's correction" in ok(invoke("eval", run))
    forecast = json.loads(ok(invoke("predict", run, "--origin", "test", "--json")))
    assert forecast["forecast"]["value"] == pytest.approx(forecast["baseline"]["value"])
    full = tmp_path / "full"
    ok(invoke("train", "forecast", "--data", path, "--out", full, "--blend", "full", *SMALL))
    state = json.loads((full / "config.json").read_text())["task_state"]
    assert state["blend_mode"] == "full" and "blend" not in state


def test_an_extended_run_compares_checkpoints_on_the_whole_correction(tmp_path):
    # A finished run's blend (here no correction kept) must not judge the checkpoints of
    # its extension: with it every evaluation would score the anchor alone, the same
    # loss each time, and the extension's training could never reach best.npz.
    path, run = _trained(tmp_path, monthly_rows(), "--model", "rnn")
    config_file = run / "config.json"
    info = json.loads(config_file.read_text())
    info["task_state"]["blend"] = 0.0
    config_file.write_text(json.dumps(info))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["kind"] == "eval" for r in records)
    ok(invoke("train", "--resume", run, "--epochs", "6"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    extension = [r["metrics"]["loss"] for r in records if r["kind"] == "eval"][first:]
    assert len(extension) >= 3 and len(set(extension)) == len(extension)
    assert "blend" in json.loads(config_file.read_text())["task_state"]  # chosen again


def test_a_refused_extension_leaves_the_finished_run_as_it_was(tmp_path):
    # training_state takes the blend out only once the resume's setup went through: a
    # resume refused in it (the data changed) must not drop the finished run's blend
    rows = monthly_rows()
    path, run = _trained(tmp_path, rows, "--model", "rnn")
    before = (run / "config.json").read_bytes()
    assert "blend" in json.loads(before)["task_state"]
    edited = [list(r) for r in rows]
    edited[3][1] = float(edited[3][1]) + 1.0
    write_csv(path, ["date", "value"], edited)
    one_line_error(invoke("train", "--resume", run, "--epochs", "6"),
                   "changed since training")
    assert (run / "config.json").read_bytes() == before


def test_predict_on_a_new_file_reads_a_real_season_back_or_refuses(tmp_path):
    # A seasonal anchor reads y(t - m): a file shorter than the window and the season
    # before it used to read its first row instead, a forecast no longer file gives.
    rows = monthly_rows()
    _, run = _trained(tmp_path, rows, "--model", "rnn", "--window", "8")
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert state["season"] == 12 and state["seasonal_inputs"]
    reads = 8 + 12

    def forecast(n):
        path = write_csv(tmp_path / f"last{n}.csv", ["date", "value"], rows[-n:])
        return json.loads(ok(invoke("predict", run, "--data", path, "--json")))["forecast"]

    assert forecast(reads) == forecast(reads + 15) == forecast(60)
    path = write_csv(tmp_path / "short.csv", ["date", "value"], rows[-(reads - 1):])
    one_line_error(invoke("predict", run, "--data", path), "too few rows",
                   f"need at least {reads}")


def test_the_season_dates_imply():
    def season(start, step, n, unit, train=None):
        times = _every(start, step, n, unit)
        return cal.calendar_season(times, train or n)
    assert season("2021-01-01T00", 1, 24 * 30, "h") == 24
    assert season("2021-01-01T00:00", 30, 48 * 30, "m") == 48
    assert season("2021-01-01", 1, 60, "D") == 7
    assert season("2000-01-03", 7, 3 * 53, "D") == 52
    monthly = np.array([f"{2000 + i // 12}-{i % 12 + 1:02d}-01" for i in range(60)],
                       dtype="datetime64[D]")
    assert cal.calendar_season(monthly, 60) == 12
    assert cal.calendar_season(monthly, 18) is None  # not two years of training rows
    quarterly = np.array([f"{1990 + i // 4}-{3 * (i % 4) + 1:02d}-01" for i in range(40)],
                         dtype="datetime64[D]")
    assert cal.calendar_season(quarterly, 40) == 4
    assert cal.calendar_season(np.arange(1821.0, 1900.0), 79) is None  # numeric years
    assert cal.calendar_season(None, 79) is None


def test_the_season_whose_seasonal_naive_fits_the_training_rows_is_kept():
    from recurrent_plugins.forecast import metrics as fm
    t = np.arange(240)
    rng = np.random.default_rng(0)
    # A 3-step cycle on a wandering level: a season back is closer than a year back.
    level = np.cumsum(rng.normal(scale=0.5, size=240))
    assert fm.choose_season(5 * np.sin(2 * np.pi * t / 3) + level, [3, 12]) == 3
    # A yearly shape: a year back repeats it, three months back does not.
    yearly = np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=240)
    assert fm.choose_season(yearly, [3, 12]) == 12
    walk = np.cumsum(rng.normal(size=240))
    assert fm.choose_season(walk, [1, 12]) == 1
    assert fm.choose_season(walk[:20], [12]) == 1  # 12 does not fit twice into 20 rows


def test_with_a_start_the_season_is_chosen_on_the_rows_from_there_on():
    from recurrent_plugins.forecast import metrics as fm
    t = np.arange(300)
    rng = np.random.default_rng(2)
    # Noise whose 28-step shape repeats in the first 200 rows, then a clean 7-step cycle:
    # the early rows favour 28, the later ones 7 (a daily series' summer, then autumn).
    early = np.tile(rng.normal(size=28), 8)[:200]
    late = np.sin(2 * np.pi * t[200:] / 7)
    values = np.concatenate([early, late])
    assert fm.choose_season(values[:200], [28, 7]) == 28
    assert fm.choose_season(values, [28, 7], start=200) == 7
    # only the rows from start on are scored, each forecast from the rows before it
    changed = values.copy()
    changed[:200 - 28] = 100.0
    assert fm.choose_season(changed, [28, 7], start=200) == 7
    # seasons that do not fit twice into the rows before start are skipped
    assert fm.choose_season(values, [28], start=50) == 1


def test_a_monthly_file_takes_the_yearly_season_when_it_forecasts_better(tmp_path):
    t = np.arange(180)
    rng = np.random.default_rng(1)
    # A wandering level, a yearly and a 3-month cycle, noise: autocorrelation's highest
    # peak is at 24 months, but a year back forecasts the training rows better.
    values = np.cumsum(rng.normal(scale=0.5, size=180)) + np.sin(2 * np.pi * t / 12) \
        + np.sin(2 * np.pi * t / 3) + rng.normal(size=180)
    rows = [[f"{2000 + i // 12}-{i % 12 + 1:02d}-01", f"{v:.4f}"] for i, v in zip(t, values)]
    path = write_csv(tmp_path / "monthly.csv", ["date", "value"], rows)
    task = ForecastTask()
    from recurrent_plugins.forecast import metrics as fm
    train_end = task.prepare({"data": path})["split_ends"][0]
    assert fm.detect_season(values[:train_end]) != 12
    assert task.prepare({"data": path})["season"] == 12
    assert task.prepare({"data": path, "season": 3})["season"] == 3
    plain = write_csv(tmp_path / "plain.csv", ["value"], [[r[1]] for r in rows])
    assert task.prepare({"data": plain})["season"] == fm.detect_season(values[:train_end])


def test_a_dated_run_takes_the_season_the_validation_rows_favour(tmp_path):
    # Daily rows: a 28-day shape in the training rows, a clean week after them (a
    # summer's demand, then an autumn's); the validation rows decide, the test rows not.
    rng = np.random.default_rng(3)
    train_end, n = 140, 200
    values = np.concatenate([np.tile(rng.normal(size=28), 5) * 5 + 50,
                             50 + 5 * np.sin(2 * np.pi * np.arange(train_end, n) / 7)])
    days = np.arange("2012-01-01", "2012-12-31", dtype="datetime64[D]")[:n]
    task = ForecastTask()
    seasons = []
    for name, changed in (("a", values), ("b", np.r_[values[:170], values[170:] * 3])):
        path = write_csv(tmp_path / f"{name}.csv", ["date", "value"],
                         [[str(d), f"{v:.4f}"] for d, v in zip(days, changed)])
        state = task.prepare({"data": path, "forecast_model": "rnn", "window": 8,
                              "inputs": "level"})
        assert state["split_ends"][:2] == [train_end, 170]
        seasons.append(state["season"])
    assert seasons == [7, 7]
    from recurrent_plugins.forecast import metrics as fm
    assert fm.choose_season(values[:train_end], [28, 7]) == 28  # the training rows' pick
