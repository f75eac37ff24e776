"""forecast: the per-process caches of the data's reading (series.read_series, kept per
file identity) and of the learned smoothing's fit (task.smoothing_fit, kept on the
training rows' scaled values, season and horizon) change no result: repeated and
candidate prepares give the states a cold one gives and fit the smoothing once, a file
changed in any way is read again, the caches stay small, and runs, evaluations and
predictions are the same with the caches as without them."""
import json
import os

import numpy as np
import pytest
from helpers import invoke, ok, write_csv

from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.forecast import smoothing
from recurrent_plugins.forecast import task as ftask
from recurrent_plugins.forecast.task import ForecastTask

ROWS = 240


def rows(seed=0, n=ROWS):
    """[[t, a, b]]: two seasonal (m = 12) series, a few cells blank."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    a = 20 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    b = 5 + 2 * np.cos(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    return [[int(i), "" if i in (50, 51) else f"{x:.4f}", f"{y:.4f}"]
            for i, x, y in zip(t, a, b)]


@pytest.fixture(autouse=True)
def cold():
    """Every test starts (and leaves) with empty caches."""
    dataio._READ.clear()
    ftask._ES_FITS.clear()
    yield
    dataio._READ.clear()
    ftask._ES_FITS.clear()


@pytest.fixture
def counted(monkeypatch):
    """{"fit": n, "read": n}: calls of the real smoothing.fit and of the real reading of
    a file (series._read_series), through wrappers that call them."""
    calls = {"fit": 0, "read": 0}
    real_fit, real_read = smoothing.fit, dataio._read_series

    def fit(*args, **kwargs):
        calls["fit"] += 1
        return real_fit(*args, **kwargs)

    def read(*args, **kwargs):
        calls["read"] += 1
        return real_read(*args, **kwargs)

    monkeypatch.setattr(smoothing, "fit", fit)
    monkeypatch.setattr(dataio, "_read_series", read)
    return calls


def config(data, **extra):
    return {"data": str(data), "time_column": "t", "column": ("a", "b"),
            "forecast_model": "esrnn", **extra}


def as_json(state):
    return json.dumps(state, sort_keys=True)


def test_repeated_prepare_same_state_one_fit(tmp_path, counted):
    data = write_csv(tmp_path / "s.csv", ["t", "a", "b"], rows())
    task = ForecastTask()
    first = task.prepare(config(data))
    assert counted == {"fit": 1, "read": 1}
    again = task.prepare(config(data))
    assert as_json(again) == as_json(first)
    assert counted == {"fit": 1, "read": 1}
    # The candidates of --window auto and --inputs auto: other windows and input modes,
    # the same smoothing fit, the file read once.
    for window in (30, 16, 8):
        for inputs in ("level", "relative"):
            state = task.prepare(config(data, window=window, inputs=inputs))
            assert state["es"] == first["es"]
    assert counted == {"fit": 1, "read": 1}
    # What it depends on does refit: the horizon, the season, the scaler.
    assert task.prepare(config(data, horizon=3))["es"] != first["es"]
    task.prepare(config(data, season=6))
    task.prepare(config(data, scaling="minmax"))
    assert counted["fit"] == 4 and counted["read"] == 1
    # A cold process (no cache) gives the very same state.
    dataio._READ.clear()
    ftask._ES_FITS.clear()
    assert as_json(ForecastTask().prepare(config(data))) == as_json(first)
    assert counted["fit"] == 5 and counted["read"] == 2


def test_smoothing_fit_cache_is_bounded_and_copied(counted):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 2))
    fits = ftask.smoothing_fit(y, 12, 1)
    assert fits == smoothing.fit(y, 12, 1)  # the real fit's result
    fits[0]["theta"][0] = 99.0  # a caller's change does not reach the cache
    assert ftask.smoothing_fit(y, 12, 1) == smoothing.fit(y, 12, 1)
    assert counted["fit"] == 3  # two uncached, one cached
    for k in range(ftask.ES_FITS_KEPT + 3):
        ftask.smoothing_fit(y + k, 1, 1)
    assert len(ftask._ES_FITS) == ftask.ES_FITS_KEPT


def test_changed_file_is_read_again(tmp_path, counted):
    path = tmp_path / "s.csv"
    write_csv(path, ["t", "a", "b"], rows(0))
    source = dataio.resolve_source(str(path))

    def read():
        return dataio.read_series(source, ["a", "b"], "t")

    first = read()
    first.values[:] = 0.0  # the caller's copy: the cache keeps its own
    second = read()
    assert counted["read"] == 1 and second.values[0, 0] != 0.0

    # Other values, same size, the modification time put back: read again.
    stat = os.stat(path)
    text = path.read_bytes()
    changed = text.replace(b",20.", b",21.", 1)
    assert len(changed) == len(text) and changed != text
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns
    third = read()
    assert counted["read"] == 2
    assert third.values[0, 0] == pytest.approx(second.values[0, 0] + 1.0)

    # A row more.
    write_csv(path, ["t", "a", "b"], rows(0, ROWS + 1))
    assert read().values.shape[0] == ROWS + 1 and counted["read"] == 3

    # Another file moved in its place.
    other = tmp_path / "other.csv"
    write_csv(other, ["t", "a", "b"], rows(5, ROWS + 1))
    os.replace(other, path)
    moved = read()
    assert counted["read"] == 4
    expected = dataio._read_series(source, ["a", "b"], "t")
    assert np.array_equal(moved.values, expected.values, equal_nan=True)
    assert np.array_equal(moved.times, expected.times)

    # Other columns or options: read apart.
    assert read().columns == ["a", "b"]
    assert dataio.read_series(source, ["b"], "t").columns == ["b"]


def test_training_data_changed_is_still_refused(tmp_path):
    """A run's data changed after training is found out though its reading is kept."""
    path = tmp_path / "s.csv"
    write_csv(path, ["t", "a", "b"], rows(0))
    task = ForecastTask()
    state = task.prepare(config(path))
    task.load(state, {})
    write_csv(path, ["t", "a", "b"], rows(3))
    with pytest.raises(Exception, match="changed since training"):
        task.load(state, {})


def test_read_cache_is_bounded(tmp_path):
    for k in range(dataio.READ_KEPT + 3):
        path = write_csv(tmp_path / f"s{k}.csv", ["t", "a", "b"], rows(k, 30))
        dataio.read_series(dataio.resolve_source(path), ["a"], "t")
    assert len(dataio._READ) == dataio.READ_KEPT


SMALL = ["--hidden", "8", "--steps", "3", "--horizon", "2", "--threads", "1", "--quiet",
         "--no-plot", "--time-column", "t", "--column", "a", "--column", "b"]


def run_outputs(data, run):
    """(config.json, metrics.jsonl without times, eval --json, predict --json) of a run
    trained with every candidate of --window auto and --inputs auto."""
    ok(invoke("train", "forecast", "--data", data, "--out", run, *SMALL))
    with open(os.path.join(run, "config.json")) as f:
        saved = as_json({k: v for k, v in json.load(f).items() if k != "version"})
    with open(os.path.join(run, "metrics.jsonl")) as f:
        metrics = [as_json({k: v for k, v in json.loads(line).items() if k != "time"})
                   for line in f]
    evaluated = {k: v for k, v in json.loads(ok(invoke("eval", run, "--json"))).items()
                 if k != "run"}
    predicted = ok(invoke("predict", run, "--steps", "7", "--json"))
    return saved, metrics, evaluated, predicted


def test_runs_identical_without_caches(tmp_path, monkeypatch, counted):
    data = write_csv(tmp_path / "s.csv", ["t", "a", "b"], rows(2))
    cached = run_outputs(data, str(tmp_path / "cached"))
    assert counted["fit"] == 1  # six candidates, one fit
    monkeypatch.setattr(ftask._ES_FITS, "size", 0)
    monkeypatch.setattr(dataio._READ, "size", 0)
    dataio._READ.clear()
    ftask._ES_FITS.clear()
    fits, reads = counted["fit"], counted["read"]
    uncached = run_outputs(data, str(tmp_path / "uncached"))
    assert counted["fit"] - fits == 6 and counted["read"] - reads > 6
    assert cached == uncached
