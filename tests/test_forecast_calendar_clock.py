"""forecast: calendar features on the file's local clock. Times written with UTC offsets
are read as UTC with their offsets kept; a new run's calendar phases are those of the
local wall clock (UTC time plus the row's offset), in training, eval, predict and
`predict --stream`, so a file with offsets forecasts as the same file written in local
time without them. A run saved before the state's "calendar_clock" keeps UTC phases."""
import json
import shutil

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.checkpoint import RunDir

from recurrent_plugins.forecast import calendar as cal
from recurrent_plugins.forecast import predict
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast.task import ForecastTask
from recurrent_plugins.forecast.times import parse_times

# Four weeks of hours in UTC across Berlin's change to summer time (2024-03-31 01:00 UTC):
# +01:00 before it, +02:00 from it on. The values follow the local clock's day.
UTC = np.arange(np.datetime64("2024-03-11T00:00"), np.datetime64("2024-04-08T00:00"),
                np.timedelta64(1, "h"))
CHANGE = np.datetime64("2024-03-31T01:00")
ZONES = np.where(UTC < CHANGE, 60, 120).astype("timedelta64[m]")
LOCAL = UTC + ZONES
SMALL = ["--hidden", "8", "--steps", "3", "--window", "24", "--inputs", "level",
         "--horizon", "4", "--model", "rnn", "--blend", "full",
         "--threads", "1", "--quiet", "--no-plot"]
STREAMED = ["50.5", "49.0", "47.25"]


def offset_text(local, zone):
    minutes = int(zone / np.timedelta64(1, "m"))
    return f"{local}{'+' if minutes >= 0 else '-'}{minutes // 60:02d}:{minutes % 60:02d}"


def values():
    hours = (LOCAL - LOCAL.astype("datetime64[D]")).astype(np.int64) / 60
    noise = np.random.default_rng(0).normal(0, 1, len(UTC))
    return 50 + 10 * np.sin(2 * np.pi * hours / 24) + noise


def rows(times):
    return [[t, f"{v:.4f}"] for t, v in zip(times, values())]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The series written with offsets, and its last ten days (after the change) written
    with offsets, as local times without them, and in UTC (Z)."""
    folder = tmp_path_factory.mktemp("clock")
    tail = slice(len(UTC) - 240, None)
    with_offsets = [offset_text(t, z) for t, z in zip(LOCAL, ZONES)]
    return {"offsets": write_csv(folder / "offsets.csv", ["time", "y"], rows(with_offsets)),
            "tail_offsets": write_csv(folder / "tail_offsets.csv", ["time", "y"],
                                      rows(with_offsets)[tail]),
            "tail_local": write_csv(folder / "tail_local.csv", ["time", "y"],
                                    rows(LOCAL.astype(str))[tail]),
            "tail_utc": write_csv(folder / "tail_utc.csv", ["time", "y"],
                                  rows([f"{t}Z" for t in UTC])[tail])}


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """A run trained on the file with offsets, and a copy of it as saved before the
    clock was recorded (no "calendar_clock")."""
    folder = tmp_path_factory.mktemp("clock_runs")
    new, old = folder / "new", folder / "old"
    ok(invoke("train", "forecast", "--data", files["offsets"], "--time-column", "time",
              "--out", new, *SMALL))
    shutil.copytree(new, old)
    run = RunDir.open(str(old))
    state = dict(run.info()["task_state"])
    del state["calendar_clock"]
    run.update_task_state(state)
    return {"new": new, "old": old}


def state_of(run):
    return RunDir.open(str(run)).info()["task_state"]


def test_phases_on_the_local_clock_are_those_of_the_wall_clock_written_without_offsets():
    texts = [offset_text(t, z) for t, z in zip(LOCAL, ZONES)]
    times, _, offsets = parse_times(list(enumerate(texts, 2)), "time", "f.csv",
                                    offsets=True)
    naive, _ = parse_times(list(enumerate(LOCAL.astype(str), 2)), "time", "f.csv")
    cycles = ["day", "week", "year"]
    local = cal.run_features({"calendar": cycles, "calendar_clock": "local"}, times, offsets)
    assert local.tobytes() == cal.features(naive, cycles).tobytes()
    # a state without the key (saved before it) reads UTC, an hour or two off the wall clock
    utc = cal.run_features({"calendar": cycles}, times, offsets)
    assert utc.tobytes() == cal.features(times, cycles).tobytes()
    assert not np.allclose(utc[:, :2], local[:, :2])
    # times without offsets read the same on either clock
    for clock in cal.CLOCKS:
        same = cal.run_features({"calendar": cycles, "calendar_clock": clock}, naive, None)
        assert same.tobytes() == cal.features(naive, cycles).tobytes()
    assert cal.run_features({"calendar": [], "calendar_clock": "local"}, times, offsets) is None


def test_training_and_eval_read_the_local_clock_and_an_old_run_utc(runs):
    task = ForecastTask()
    new, old = state_of(runs["new"]), state_of(runs["old"])
    assert new["calendar_clock"] == "local" and "day" in new["calendar"]
    cycles = new["calendar"]
    assert task.load(new, {}).calendar.tobytes() == cal.features(LOCAL, cycles).tobytes()
    assert task.load(old, {}).calendar.tobytes() == cal.features(UTC, cycles).tobytes()
    # eval of the old run reads its model on the features it was trained on: UTC
    assert json.loads(ok(invoke("eval", runs["old"], "--json")))["metrics"]["mase"] > 0


def test_predict_forecasts_a_file_with_offsets_as_the_same_local_times_without(runs, files):
    def forecast(run, data):
        result = json.loads(ok(invoke("predict", run, "--data", files[data], "--steps", 30,
                                      "--json")))
        return result["time"], result["forecast"]["y"]
    times, with_offsets = forecast(runs["new"], "tail_offsets")
    assert times[0] == "2024-04-08T02:00+02:00"  # local time after the last row, 01:00
    assert forecast(runs["new"], "tail_local")[1] == with_offsets
    # the run saved before the clock: its phases are UTC's, as the file written in UTC
    assert forecast(runs["old"], "tail_utc")[1] == forecast(runs["old"], "tail_offsets")[1]
    assert forecast(runs["old"], "tail_offsets")[1] != with_offsets


def test_predict_dates_the_calendar_of_forecast_steps_across_a_change_on_the_local_clock(
        files):
    series = dataio.read_series(dataio.resolve_source(files["offsets"]), ["y"], "time")
    origin = int(np.flatnonzero(UTC == CHANGE)[0]) - 3  # steps before and after the change
    times, labels = predict._forecast_labels(series, origin, 6)
    assert labels[1:3] == ["2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00"]
    state = {"calendar": ["day", "week"], "calendar_clock": "local"}
    features = predict._calendar(state, series, origin, times)  # (origin + 1 + 6, 4)
    assert features.tobytes() == cal.features(LOCAL[:origin + 7], state["calendar"]).tobytes()
    old = predict._calendar({"calendar": ["day", "week"]}, series, origin, times)
    assert old.tobytes() == cal.features(UTC[:origin + 7], state["calendar"]).tobytes()


def stream(run, data):
    from click.testing import CliRunner

    from recurrent.cli import cli
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", data,
                                      "--steps", "6"], input="\n".join(STREAMED) + "\n")
    assert result.exit_code == 0, result.output
    return [json.loads(line)["forecast"]["y"] for line in result.stdout.splitlines()]


def test_the_stream_reads_the_local_clock_as_predict_does(runs, files):
    answers = stream(runs["new"], files["tail_offsets"])
    assert len(answers) == len(STREAMED)
    assert stream(runs["new"], files["tail_local"]) == answers
    assert stream(runs["old"], files["tail_utc"]) == stream(runs["old"], files["tail_offsets"])
    # the last answer is predict's on the file grown by the streamed rows
    grown = files["tail_offsets"].replace(".csv", "_grown.csv")
    last = np.datetime64("2024-04-08T01:00")
    with open(files["tail_offsets"]) as f:
        text = f.read()
    text += "".join(f"{offset_text(last + np.timedelta64(k, 'h'), np.timedelta64(120, 'm'))},"
                    f"{v}\n" for k, v in enumerate(STREAMED, 1))
    with open(grown, "w") as f:
        f.write(text)
    expected = json.loads(ok(invoke("predict", runs["new"], "--data", grown, "--steps", 6,
                                    "--json")))["forecast"]["y"]
    np.testing.assert_allclose(answers[-1], expected, rtol=1e-9)


def test_a_calendar_clock_the_task_does_not_know_is_refused_in_one_line(runs, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(runs["new"], bad)
    run = RunDir.open(str(bad))
    run.update_task_state({**run.info()["task_state"], "calendar_clock": "cet"})
    one_line_error(invoke("eval", bad), "calendar_clock")


def test_predict_plots_a_file_with_offsets_on_its_own_clock_as_its_labels(runs, files,
                                                                          tmp_path,
                                                                          monkeypatch):
    """The plot's time axis shows the times predict prints: the file's local times (the
    offsets' wall clock), for the history drawn and for the forecast steps."""
    from recurrent_plugins.forecast import plot
    drawn, save = [], plot._save
    monkeypatch.setattr(plot, "_save", lambda figure, canvas, path: (
        drawn.append(figure), save(figure, canvas, path)))
    png = tmp_path / "forecast.png"
    result = json.loads(ok(invoke("predict", runs["new"], "--data", files["tail_offsets"],
                                  "--steps", 30, "--json", "--plot", png)))
    assert png.stat().st_size > 0 and len(drawn) == 1
    lines = {line.get_label(): np.asarray(line.get_xdata(), "datetime64[m]")
             for line in drawn[0].axes[0].get_lines()}
    history = lines["history"]
    assert history.tobytes() == LOCAL[-len(history):].tobytes()
    labels = np.array([label[:16] for label in result["time"]], "datetime64[m]")
    assert lines["model forecast"].tobytes() == labels.tobytes()
    assert result["time"][0] == "2024-04-08T02:00+02:00"
