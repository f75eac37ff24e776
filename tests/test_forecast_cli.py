"""forecast task end to end through the CLI: train on the bundled sunspots, eval (also on a
new file), predict (CSV, JSON, recursive roll-out, --data, the PNG), every bad-input path
as a one-line error, and the default run's quality (MASE < 1, better than naive)."""
import errno
import json
import os
import struct
import sys

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, sunspot_rows, write_csv

from recurrent.extras import install_hint
from recurrent.matplotlib_agg import figure_classes
from recurrent_plugins.forecast import predict as fpredict
from recurrent_plugins.forecast import series as dataio

SMALL = ["--hidden", "8", "--epochs", "2", "--threads", "1", "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def sunspots():
    """[[year, value]] of the bundled series."""
    return sunspot_rows()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small run on the bundled sunspots, horizon 2, window and inputs chosen."""
    path = tmp_path_factory.mktemp("forecast") / "run"
    ok(invoke("train", "forecast", "--horizon", 2, "--out", path, *SMALL))
    return path


def png_size(path):
    """(width, height) of a PNG, checking the signature and the IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


def test_eval_reports_metrics_beside_both_baselines(run):
    report = json.loads(ok(invoke("eval", run, "--json")))
    metrics, baselines = report["metrics"], report["baselines"]
    assert set(baselines) == {"naive", "seasonal_naive", "ets"}
    assert baselines["seasonal_naive"]["season"] == 11
    for name in ("rmse", "mae", "mape", "smape", "mase", "loss"):
        assert np.isfinite(metrics[name]) and metrics[name] > 0
        assert np.isfinite(baselines["naive"][name])
    assert metrics["windows"] == baselines["naive"]["windows"] == 46 - 2 + 1
    *lines, blank, paired, chosen = ok(invoke("eval", run)).splitlines()
    assert chosen.startswith("chosen on validation: --inputs ")  # the auto options' choice
    # under the report, the paired tests of the model against each baseline
    from recurrent.report import paired_line
    assert blank == "" and [paired] == paired_line(report["paired"])
    assert set(report["paired"]) == set(baselines)
    for name, result in report["paired"].items():
        assert result["test"] == "Diebold-Mariano" and result["metric"] == "mase"
        assert result["items"] == metrics["windows"] and result["unit"] == "windows"
        assert result["difference"] == pytest.approx(
            metrics["mase"] - baselines[name]["mase"], abs=1e-9)
        assert 0.0 <= result["p"] <= 1.0
    # the validation split chose the checkpoint: no paired tests there
    valid = json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))
    assert "paired" not in valid
    assert "paired over" not in ok(invoke("eval", run, "--split", "valid"))
    window = json.loads((run / "config.json").read_text())["task_state"]["window"]
    assert lines[1] == f"45 windows: {window} past steps -> 2 forecast step(s) of sunspots"
    table = lines[lines.index("") + 1:]
    assert table[0].split() == ["metric", "model", "naive", "seasonal_naive", "(m=11)",
                                "ets", *baselines["ets"]["model"].split()]
    predictors = [metrics, baselines["naive"], baselines["seasonal_naive"], baselines["ets"]]
    *rows, leader = table[1:]
    assert [row.split() for row in rows] == [
        [name, *(f"{m[name]:.4f}" for m in predictors)]
        for name in ("rmse", "mae", "mape", "smape", "mase", "loss")]
    # then who has the best MASE (recurrent/report.py: leader_line, tested on its own)
    from recurrent.report import leader_line
    assert [leader] == leader_line(metrics, baselines, "mase", True, names={
        "seasonal_naive": "seasonal_naive (m=11)",
        "ets": f"ets {baselines['ets']['model']}"})


def test_eval_on_a_new_file_uses_the_saved_scaler(run, sunspots, tmp_path):
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], sunspots[-80:])
    report = json.loads(ok(invoke("eval", run, "--data", recent, "--json")))
    state = json.loads((run / "config.json").read_text())["task_state"]
    # the file's first rows start the seasonal states (two seasons and two) and hold what
    # the first scored window reads (the window, and a season before it for seasonal inputs)
    reads = state["window"] + (state["season"] if state.get("seasonal_inputs") else 0)
    head = max(reads, 2 * state["season"] + 2)
    assert report["metrics"]["windows"] == 80 - head - 2 + 1
    assert report["baselines"]["naive"]["windows"] == 80 - head - 2 + 1
    missing = write_csv(tmp_path / "other.csv", ["year", "spots"], sunspots[-80:])
    one_line_error(invoke("eval", run, "--data", missing),
                   "column 'sunspots' not found in")


def test_predict_prints_a_forecast_after_the_data(run):
    lines = ok(invoke("predict", run, "--steps", 7)).splitlines()
    assert lines[0] == "year,sunspots"
    assert [line.split(",")[0] for line in lines[1:]] == [str(y) for y in range(2009, 2016)]
    values = [float(line.split(",")[1]) for line in lines[1:]]
    assert all(np.isfinite(values))
    # Default steps = the horizon.
    assert len(ok(invoke("predict", run)).splitlines()) == 1 + 2


def test_predict_json_from_the_test_split_has_the_actuals(run, sunspots):
    result = json.loads(ok(invoke("predict", run, "--steps", 5, "--origin", "test", "--json")))
    assert result["origin"] == 1962 and result["time"] == [1963, 1964, 1965, 1966, 1967]
    assert result["actual"]["sunspots"] == [v for y, v in sunspots if 1963 <= y <= 1967]
    assert result["baseline"]["name"] == "seasonal naive (m=11)"
    # seasonal naive copies the same year of the last cycle: 1963 <- 1952, ...
    assert result["baseline"]["sunspots"] == [v for y, v in sunspots if 1952 <= y <= 1956]
    assert len(result["forecast"]["sunspots"]) == 5


def test_predict_json_names_the_baseline_beside_a_column_called_name(sunspots, tmp_path):
    """A value column called "name" takes the baseline's "name" key; baseline_name keeps
    the baseline's name."""
    path = write_csv(tmp_path / "named.csv", ["year", "name"], sunspots)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "year", "--out", run,
              *SMALL))
    result = json.loads(ok(invoke("predict", run, "--steps", 2, "--json")))
    assert result["baseline_name"].startswith("seasonal naive (m=")
    assert len(result["baseline"]["name"]) == 2 and result["columns"] == ["name"]


def test_predict_from_recent_data(run, sunspots, tmp_path):
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], sunspots[100:140])
    lines = ok(invoke("predict", run, "--data", recent, "--steps", 3)).splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1840", "1841", "1842"]
    # The forecast depends on the history given.
    other = write_csv(tmp_path / "other.csv", ["year", "sunspots"], sunspots[110:150])
    assert ok(invoke("predict", run, "--data", other, "--steps", 3)).splitlines()[1:] != lines[1:]


def test_predict_plot_is_a_valid_png(run, tmp_path):
    path = tmp_path / "forecast.png"
    result = invoke("predict", run, "--steps", 20, "--origin", "test", "--plot", path)
    ok(result)
    width, height = png_size(path)
    assert width > 100 and height > 100 and path.stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.png"]  # no temp file left


@pytest.mark.skipif(figure_classes() is None, reason="matplotlib not installed")
def test_predict_plot_gets_the_mode_of_the_other_files_the_cli_writes(run, tmp_path):
    previous = os.umask(0o022)
    try:
        ok(invoke("predict", run, "--steps", 3, "--plot", tmp_path / "f.png"))
    finally:
        os.umask(previous)
    assert (tmp_path / "f.png").stat().st_mode & 0o777 == 0o644  # as config.json, last.npz


def test_predict_plot_without_matplotlib(run, tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    path = tmp_path / "forecast.png"
    one_line_error(invoke("predict", run, "--plot", path),
                   "plotting needs matplotlib, which is not installed: "
                   f"{install_hint('plot')}")
    assert not path.exists()


def test_predict_errors(run, sunspots, tmp_path):
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], sunspots[-40:])
    one_line_error(invoke("predict", run, "--data", recent, "--origin", "test"),
                   "--origin test forecasts the training data's test split")
    short = write_csv(tmp_path / "short.csv", ["year", "sunspots"], sunspots[-10:])
    one_line_error(invoke("predict", run, "--data", short), "too few rows")
    one_line_error(invoke("predict", run, "--data", tmp_path / "nope.csv"), "not found")
    one_line_error(invoke("predict", run, "--plot", tmp_path / "no-dir" / "f.png"),
                   "does not exist")


def test_predict_steps_beyond_the_bound_are_refused(run):
    """--steps takes at most fpredict.MAX_STEPS, as --help says: a larger count (one
    mistyped with extra zeros) is refused in one line before any roll-out starts."""
    bound = fpredict.MAX_STEPS
    assert f"at most {bound}" in " ".join(ok(invoke("predict", run, "--help")).split())
    for steps in (bound + 1, 10 ** 8):
        one_line_error(invoke("predict", run, "--steps", steps), "--steps",
                       f"{steps} is not in the range 1<=x<={bound}")


@pytest.mark.skipif(figure_classes() is None, reason="matplotlib not installed")
def test_predict_plot_on_a_full_disk_is_said_once(run, tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def full(self, f, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(FigureCanvasAgg, "print_png", full)
    path = tmp_path / "f.png"
    result = invoke("predict", run, "--steps", 3, "--plot", path)
    one_line_error(result, f"cannot write {path}: {os.strerror(errno.ENOSPC)}")
    assert result.stderr.count("cannot write") == 1 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("rows, options, pattern", [
    ([[i, "x" if i == 50 else i % 7] for i in range(100)], [],
     "column 'v' is not numeric: 'x' at line 52"),
    ([[i, i % 7] for i in range(100)], ["--column", "w"],
     "column 'w' not found in"),
    ([[i, i % 7] for i in range(10)], [],
     "too few rows in"),
    ([[i, 4.5] for i in range(100)], [],
     "is constant (every value is 4.5): nothing to forecast"),
    ([[i, "" if i == 20 else i % 7] for i in range(100)], ["--no-fill"],
     "1 missing values (first at line 22); drop --no-fill"),
    ([[100 - i, i % 7] for i in range(100)], [],
     "time column 't' does not increase at line 3"),
])
def test_train_rejects_bad_data_in_one_line(tmp_path, rows, options, pattern):
    path = write_csv(tmp_path / "bad.csv", ["t", "v"], rows)
    result = invoke("train", "forecast", "--data", path, "--time-column", "t", *options,
                    "--out", tmp_path / "run", *SMALL)
    one_line_error(result, pattern)
    assert not (tmp_path / "run").exists()


def test_train_error_messages_for_files(tmp_path):
    one_line_error(invoke("train", "forecast", "--data", tmp_path / "absent.csv", *SMALL),
                   "not found (bundled series: co2, sunspots)")
    one_line_error(invoke("train", "forecast", "--data", "co2", "--no-fill", *SMALL),
                   "column 'co2' of 'co2' has 59 missing values")
    path = write_csv(tmp_path / "two.csv", ["a", "b"], [[1, 2]] * 5)
    one_line_error(invoke("train", "forecast", "--data", path, *SMALL),
                   "has several columns ('a', 'b'); choose with --column")


def test_several_columns_are_forecast_together(tmp_path, sunspots):
    # Two real series side by side (sunspots and the gappy weekly CO2): a shapes test.
    co2 = dataio.read_series(dataio.resolve_source("co2"), None, None).values[:, 0]
    rows = [[y, s, "" if np.isnan(c) else c] for (y, s), c in zip(sunspots, co2[:309])]
    path = write_csv(tmp_path / "two.csv", ["year", "spots", "co2"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "year", "--column", "spots",
              "--column", "co2", "--window", 10, "--horizon", 3, "--scaling", "minmax",
              "--out", run, *SMALL))
    config = json.loads((run / "config.json").read_text())
    assert json.dumps(config).count('"output_size": 6') == 1  # H * C
    report = json.loads(ok(invoke("eval", run, "--json")))
    metrics = report["metrics"]
    assert {"mase[spots]", "mase[co2]"} <= set(metrics)
    assert metrics["mase"] == pytest.approx((metrics["mase[spots]"] + metrics["mase[co2]"]) / 2)
    # the paired tests' differences are those of the column-mean MASE, co2's gaps and all
    for name, result in report["paired"].items():
        assert result["difference"] == pytest.approx(
            metrics["mase"] - report["baselines"][name]["mase"], abs=1e-9)
    # the last three: a blank line, the paired tests and the input mode chosen
    *lines, _, paired, _ = ok(invoke("eval", run)).splitlines()
    assert paired.startswith("paired over the split's ")
    assert "(the mean over columns)" in lines[2]
    start = next(i for i, line in enumerate(lines) if line.startswith("column "))
    header, *rows = lines[start:]
    assert header.split()[:3] == ["column", "metric", "model"]
    assert len(rows) == 2 * 5  # a labelled block of the five metrics per value column
    for block, column in zip((rows[:5], rows[5:]), ("spots", "co2")):
        assert block[0].split()[0] == column and not block[1].startswith(column)
        for row, name in zip(block, ("rmse", "mae", "mape", "smape", "mase")):
            cells = row.split()[1:] if row.startswith(column) else row.split()
            assert cells[:2] == [name, f"{metrics[name + '[' + column + ']']:.4f}"]
    # the backtest's figures are those column means too, and its header says so
    header = ok(invoke("eval", run, "--backtest", 2)).splitlines()[1]
    assert header.endswith("over origins, each origin's figure the mean over columns")
    lines = ok(invoke("predict", run, "--steps", 5)).splitlines()
    assert lines[0] == "year,spots,co2" and len(lines) == 6


def test_default_run_beats_naive(tmp_path):
    """`recurrent train forecast` with no data options: MASE < 1 on the test split, and the
    loss curve written beside the run when matplotlib is there."""
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--out", run, "--threads", "1", "--quiet"))
    if figure_classes() is not None:
        width, height = png_size(run / "loss.png")
        assert width > 100 and height > 100
    report = json.loads(ok(invoke("eval", run, "--json")))
    assert report["metrics"]["mase"] < 1.0
    assert report["metrics"]["mae"] < report["baselines"]["naive"]["mae"]
    assert report["metrics"]["mae"] < report["baselines"]["seasonal_naive"]["mae"]


def test_relative_inputs_make_forecasts_shift_with_the_level(tmp_path):
    """--inputs relative with --difference: a series raised by 50 ppm gets the same forecast
    raised by 50 ppm (the model sees only shapes: why co2's trend cannot push it off range)."""
    co2 = dataio.read_series(dataio.resolve_source("co2"), None, None)
    dates = [str(t) for t in co2.times[:400]]
    values = ["" if np.isnan(v) else v for v in co2.values[:400, 0]]
    path = write_csv(tmp_path / "co2.csv", ["date", "co2"], list(zip(dates, values)))
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "date", "--window", 20,
              "--horizon", 4, "--inputs", "relative", "--out", run, *SMALL))
    # 80 rows: the window and the season of 52 weeks before it, which the seasonal
    # anchors and inputs read; they hold gaps, filled in both files alike
    recent = co2.values[250:330, 0]
    rows = [(d, "" if np.isnan(v) else f"{v:.1f}") for d, v in zip(dates[250:330], recent)]
    raised = [(d, v and f"{float(v) + 50:.1f}") for d, v in rows]
    assert sum(v == "" for _, v in rows) > 0
    base = json.loads(ok(invoke("predict", run, "--data", write_csv(
        tmp_path / "a.csv", ["date", "co2"], rows), "--steps", 9, "--json")))
    high = json.loads(ok(invoke("predict", run, "--data", write_csv(
        tmp_path / "b.csv", ["date", "co2"], raised), "--steps", 9, "--json")))
    assert base["time"] == high["time"] and len(base["time"]) == 9
    np.testing.assert_allclose(np.array(high["forecast"]["co2"]) - base["forecast"]["co2"],
                               50.0, atol=1e-3)


def hourly_rows(days=24, seed=0):
    """[[time, value]]: hourly values with a strong daily cycle (m = 24), a weekly swing,
    a slow AR(1) level and noise: seasonal naive is hard to beat and naive is far worse."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    t = np.arange(n)
    level = np.zeros(n)
    for i in range(1, n):
        level[i] = 0.98 * level[i - 1] + rng.normal(scale=0.3)
    values = (10 * np.sin(2 * np.pi * t / 24) + 4 * np.sin(4 * np.pi * t / 24)
              + 2 * np.sin(2 * np.pi * t / 168) + level + rng.normal(scale=0.5, size=n))
    start = np.datetime64("2021-01-01T00:00")
    return [[str(start + np.timedelta64(int(i), "h")), f"{v:.4f}"] for i, v in zip(t, values)]


@pytest.mark.parametrize("horizon", [1, 24])
def test_default_run_beats_both_baselines_on_a_strong_daily_cycle(tmp_path, horizon):
    """Default options on hourly data with a daily cycle: the model corrects the seasonal
    anchor the training rows chose and beats seasonal naive and naive at h=1 and h=m."""
    path = write_csv(tmp_path / "hourly.csv", ["time", "load"], hourly_rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "time", "--horizon",
              horizon, "--out", run, "--threads", "1", "--quiet", "--no-plot"))
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert state["season"] == 24 and state["seasonal_inputs"]
    report = json.loads(ok(invoke("eval", run, "--json")))
    mase = report["metrics"]["mase"]
    assert mase < report["baselines"]["seasonal_naive"]["mase"]
    assert mase < report["baselines"]["naive"]["mase"]


def test_backtest_reports_mean_and_spread_over_origins(run):
    report = json.loads(ok(invoke("eval", run, "--backtest", 4, "--json")))
    result = report["backtest"]
    assert result["origins"] == 4 and len(result["origin_rows"]) == 4
    assert result["origin_rows"] == sorted(result["origin_rows"])
    forecasters = result["forecasters"]
    assert set(forecasters) == {"model", "naive", "seasonal_naive", "ets"}
    for name, values in forecasters.items():
        for metric in ("rmse", "mae", "mape", "smape", "mase", "loss"):
            s = values[metric]
            assert s["min"] <= s["mean"] <= s["max"] and s["std"] >= 0, (name, metric)
    # The first and last origins are the test split's first and last windows' (its
    # targets start at row 263 of 309); with every window as an origin the mean MAE is the
    # split's MAE (each window has the same number of targets).
    whole = json.loads(ok(invoke("eval", run, "--json")))
    assert result["origin_rows"][0] == 262
    last = len(sunspot_rows()) - 2 - 1
    assert result["origin_rows"][-1] == last
    every = json.loads(ok(invoke("eval", run, "--backtest", whole["metrics"]["windows"],
                                 "--json")))["backtest"]["forecasters"]["model"]
    assert every["mae"]["mean"] == pytest.approx(whole["metrics"]["mae"], rel=1e-9)
    text = ok(invoke("eval", run, "--backtest", 3)).splitlines()
    assert text[1].startswith("rolling origin: 3 forecast origins over the test split")
    assert text[3].split()[:2] == ["metric", "model"]
    assert [row.split()[0] for row in text[4:]] == ["rmse", "mae", "mape", "smape", "mase",
                                                    "loss"]


@pytest.mark.parametrize("n,fragment", [(1, "--backtest 1: need at least 2"),
                                        (0, "--backtest 0: need at least 2"),
                                        (-3, "--backtest -3: need at least 2"),
                                        (46, "--backtest 46: the test split has only 45")])
def test_backtest_bad_n_is_one_line(run, n, fragment):
    one_line_error(invoke("eval", run, "--backtest", n), fragment)


def test_backtest_of_a_file_with_one_origin_is_refused_without_asking_for_one(
        run, sunspots, tmp_path):
    from recurrent_plugins.forecast import windows as win
    state = json.loads((run / "config.json").read_text())["task_state"]
    # the rows a new file starts its states on, then one window's horizon of targets
    data = write_csv(tmp_path / "one.csv", ["year", "sunspots"],
                     sunspots[-(win.head_rows(state) + state["horizon"]):])
    assert json.loads(ok(invoke("eval", run, "--data", data, "--json")))[
        "metrics"]["windows"] == 1
    result = invoke("eval", run, "--data", data, "--backtest", 2)
    # the file is named (it has no test split), and since --backtest 1 is refused too,
    # the refusal does not ask for at most 1
    one_line_error(result, f"--backtest 2: {data!r} has 1 forecast origin ",
                   "without --backtest")
    assert "at most" not in result.stderr


def test_backtest_refused_for_a_task_without_it(tmp_path):
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--steps", 1, "--out", run, "--hidden", 8, "--quiet",
              "--no-plot", "--threads", 1))
    one_line_error(invoke("eval", run, "--backtest", 3), "has no --backtest")


def test_eval_of_the_last_checkpoint_says_so(run):
    """--checkpoint last: the header and the JSON name the parameters evaluated (a blend
    share printed below is the one chosen for the best)."""
    first = ok(invoke("eval", run, "--checkpoint", "last")).splitlines()[0]
    assert first.endswith("split test, the last checkpoint (--checkpoint last)"), first
    assert "checkpoint" not in ok(invoke("eval", run)).splitlines()[0]
    assert json.loads(ok(invoke("eval", run, "--checkpoint", "last", "--json")))[
        "checkpoint"] == "last"
    backtest = ok(invoke("eval", run, "--checkpoint", "last", "--backtest", 2))
    assert backtest.splitlines()[0].endswith("(--checkpoint last)")


def test_eval_data_counts_the_windows_the_run_trained_on(run, sunspots, tmp_path):
    """`eval --data` on a file holding the run's training rows counts the windows of its
    training split (train_overlap) and says their scores are not held out; a file of the
    rows after them has none; the same values at other times are other windows."""
    train_end = json.loads((run / "config.json").read_text())["task_state"]["split_ends"][0]
    whole = write_csv(tmp_path / "whole.csv", ["year", "sunspots"], sunspots)
    report = json.loads(ok(invoke("eval", run, "--data", whole, "--json")))
    # the file's windows are its last ones, one per origin: those whose targets end
    # before the validation split are the run's training windows
    trained = report["metrics"]["windows"] - (len(sunspots) - train_end)
    assert 0 < trained and report["metrics"]["train_overlap"] == trained
    text = ok(invoke("eval", run, "--data", whole))
    assert (f"note: {trained} of the {report['metrics']['windows']} windows are in the "
            f"run's training split (as the model reads them): their scores are not "
            f"held-out scores") in text.splitlines()
    later = write_csv(tmp_path / "later.csv", ["year", "sunspots"], sunspots[train_end:])
    report = json.loads(ok(invoke("eval", run, "--data", later, "--json")))
    assert report["metrics"]["train_overlap"] == 0
    assert "training split" not in ok(invoke("eval", run, "--data", later))
    shifted = write_csv(tmp_path / "shifted.csv", ["year", "sunspots"],
                        [[year + 1000, value] for year, value in sunspots])
    report = json.loads(ok(invoke("eval", run, "--data", shifted, "--json")))
    assert report["metrics"]["train_overlap"] == 0


def test_backtest_of_a_data_file_counts_the_origins_the_run_trained_on(run, sunspots,
                                                                        tmp_path):
    """`eval --data FILE --backtest N` on a file holding the run's training rows counts
    the origins whose window is one of its training split (train_overlap, as eval --data
    counts windows) and says their scores are not held out; a file of the rows after the
    training split has none."""
    state = json.loads((run / "config.json").read_text())["task_state"]
    train_end, horizon = state["split_ends"][0], state["horizon"]
    whole = write_csv(tmp_path / "whole.csv", ["year", "sunspots"], sunspots)
    back = json.loads(ok(invoke("eval", run, "--data", whole, "--backtest", 3,
                                "--json")))["backtest"]
    # the file's rows are the training data's: an origin whose targets all come before
    # the validation split forecasts a training window
    trained = sum(origin + horizon < train_end for origin in back["origin_rows"])
    assert 0 < trained < 3 and back["train_overlap"] == trained
    lines = ok(invoke("eval", run, "--data", whole, "--backtest", 3)).splitlines()
    assert lines[1] == (f"note: {trained} of the 3 origins are in the run's training split "
                        f"(as the model reads them): their scores are not held-out scores")
    later = write_csv(tmp_path / "later.csv", ["year", "sunspots"], sunspots[train_end:])
    back = json.loads(ok(invoke("eval", run, "--data", later, "--backtest", 3,
                                "--json")))["backtest"]
    assert back["train_overlap"] == 0
    assert "training split" not in ok(invoke("eval", run, "--data", later, "--backtest", 3))


def test_a_split_without_a_season_of_history_says_why_seasonal_naive_is_left_out(tmp_path):
    """With a window shorter than the season, the training split's first windows have no
    season before their origin: eval and eval --backtest on it leave the seasonal naive
    baseline out and say so in a line (on stderr beside --json), which the test split,
    whose windows all have one, does not print."""
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--window", 8, "--inputs", "level", "--horizon", 2,
              "--out", run, *SMALL))
    assert json.loads((run / "config.json").read_text())["task_state"]["season"] == 11
    note = ("seasonal naive (m=11): left out, the split's first windows have fewer than 11 "
            "rows up to their origin, no season to copy")
    for backtest in ([], ["--backtest", 3]):
        result = invoke("eval", run, "--split", "train", *backtest, "--json")
        shown = json.loads(ok(result))
        assert "seasonal_naive" not in shown.get("baselines",
                                                 shown.get("backtest", {}).get("forecasters"))
        assert note in result.stderr.splitlines()
        assert note in ok(invoke("eval", run, "--split", "train", *backtest)).splitlines()
        test = ok(invoke("eval", run, *backtest))
        assert "seasonal_naive (m=11)" in test and "left out" not in test
