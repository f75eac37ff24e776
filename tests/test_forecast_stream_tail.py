"""forecast: `predict --stream` and the roll-out beyond the horizon keep a bounded tail of
the rows, the smoothing states moved on past the rows left behind (ets.advance,
smoothing.advance), and forecast bitwise what filtering the whole history gives: the
moved filters repeat the same operations on the same doubles. Checked on the filters
themselves (every kind of ETS fit, a multiplicative fit's fallback, the learned
smoothing) and on real hybrid and esrnn runs against the whole-history stream and
roll-out (kept here as the reference), through a restart on a new file's head, a
trailing gap, a value <= 0, refused lines and calendar features."""
import json

import numpy as np
import pytest
from helpers import invoke, ok, write_csv

from recurrent import plugins
from recurrent.checkpoint import RunDir
from recurrent.errors import UserError
from recurrent.runs import load_model

from recurrent_plugins.forecast import calendar as cal
from recurrent_plugins.forecast import predict
from recurrent_plugins.forecast import smoothing
from recurrent_plugins.forecast import windows as win

pytest.importorskip("statsmodels", reason="the hybrid model needs the ets extra")

from recurrent_plugins.forecast import ets  # noqa: E402

SMALL = ["--hidden", "8", "--steps", "3", "--window", "12", "--inputs", "level",
         "--horizon", "4", "--threads", "1", "--quiet", "--no-plot"]
TRAIN_ROWS = 200  # monthly: train 140 rows (hw_mul wins there), valid 30, test 30
FILE_ROWS = (200, 340)  # the stream's --data file: 140 later rows, the last 2 blank


def monthly_values(n=420, seed=0):
    """A positive, growing series with a multiplicative yearly cycle (m = 12)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (100 * np.exp(0.004 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
            * np.exp(rng.normal(scale=0.02, size=n)))


def monthly_rows(start, stop, blank=()):
    values = monthly_values()
    return [[f"{2000 + i // 12}-{i % 12 + 1:02d}-01", "" if i in blank else f"{values[i]:.4f}"]
            for i in range(start, stop)]


def stream_lines():
    """The lines streamed after the file: its values, a refused line in the middle (a
    word, two numbers, one far out of range), a 0 (a multiplicative fit's fallback
    takes over) and a negative value."""
    lines = [f"{v:.4f}" for v in monthly_values()[FILE_ROWS[1]:FILE_ROWS[1] + 75]]
    lines[6], lines[25], lines[40], lines[41], lines[55] = "x", "1,2", "0", "-5", "1e300"
    return lines


# --- the reference: the stream and the roll-out before the bounded tail, verbatim ------

def reference_rollout(model, history_scaled, steps, state, calendar=None, last_seen=None,
                      origin=None, positions=None):
    history = np.asarray(history_scaled, dtype=np.float64)
    if origin is None:
        origin = history.shape[0] - 1
    if last_seen is None:
        last_seen = np.repeat(np.arange(history.shape[0])[:, None], history.shape[1], axis=1)
    forecast = predict._model_call(model, history, last_seen, origin, state, calendar)
    if steps <= forecast.shape[0]:
        return forecast[:steps]
    if positions is None:
        positions = np.arange(origin + 2, dtype=np.float64)
    history = np.concatenate([predict._bridged(history[:origin + 1], last_seen[origin],
                                               positions, forecast[0]), forecast])
    produced = forecast.shape[0]
    while produced < steps:
        last = history.shape[0] - 1
        seen = np.repeat(np.arange(history.shape[0])[:, None], history.shape[1], axis=1)
        forecast = predict._model_call(model, history, seen, last, state, calendar)
        history = np.concatenate([history, forecast])
        produced += forecast.shape[0]
    return history[origin + 1:][:steps]


def reference_stream(task, state, model, options):
    steps = options.get("steps") or state["horizon"]
    prepared, origin, _ = predict._origin(task, state, options, stream=True)
    state = prepared.fitted(state)
    columns = prepared.series.columns
    times = prepared.series.times
    recent = {"history": prepared.scaled[:origin + 1],
              "last": prepared.last_seen[origin],
              "times": None if times is None else times[:origin + 1]}
    head = prepared.ranges["test"][0] if options.get("data") else 0

    def answer(line):
        values = predict._parse_row(line, columns)
        row = win.scale(values[None, :], state["scaler"])
        last = len(recent["history"]) - 1
        row_times = calendar = None
        if recent["times"] is not None:
            row_times = np.concatenate([recent["times"],
                                        predict._forecast_times(recent["times"], last, 1)])
        history = predict._bridged(recent["history"], recent["last"],
                                   predict._positions(row_times, last, None if row_times is None
                                                      else row_times[-1:]), row[0], head)
        history = np.concatenate([history, row])
        if state.get("calendar"):
            future = predict._forecast_times(row_times, len(row_times) - 1, steps)
            calendar = cal.features(np.concatenate([row_times, future]), state["calendar"])
        forecast = win.unscale(reference_rollout(model, history, steps, state, calendar),
                               state["scaler"])
        recent["history"], recent["times"] = history, row_times
        recent["last"] = np.full(len(columns), len(history) - 1)
        return {"values": values.tolist(), "forecast": predict._by_column(columns, forecast)}

    return answer


# --- the filters moved on ------------------------------------------------------------

def assert_same(got, want):
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.tobytes() == w.tobytes()


@pytest.mark.parametrize("kind", ["ses", "holt", "hw_add", "hw_mul"])
def test_an_ets_fit_moved_on_filters_the_later_rows_as_the_whole_series(kind):
    values = monthly_values(300)
    fit = ets._fit_one(values[:140], kind, 12)
    whole = ets.column_components(values, fit, 5)

    def assert_moved_on(moved, cut):
        # from the second season on: before it a series' start reads statsmodels' own
        # forecasts and each row's own seasonal state (_seasonal_indices)
        start = max(cut, 12)
        assert_same([a[start - cut:] for a in ets.column_components(values[cut:], moved, 5)],
                    [a[start:] for a in whole])

    for cut in (2, 5, 12, 13, 150, 280):  # inside and after the first season
        moved = ets.advance([fit], values[:cut, None])[0]
        assert moved["continued"] and moved["smoothing"] == fit["smoothing"]
        assert_moved_on(moved, cut)
        # moved on in two goes as in one
        twice = ets.advance(ets.advance([fit], values[:cut // 2 + 1, None]),
                            values[cut // 2 + 1:cut + 3, None])[0]
        assert_moved_on(twice, cut + 3)
    # a fit that did not move on is a series' start: its forecasts differ
    assert not np.array_equal(ets.column_components(values[150:], fit, 5)[0], whole[0][150:])


def test_a_multiplicative_fit_moved_on_hands_the_rows_after_a_zero_to_its_fallback():
    values = monthly_values(300)
    fit = ets.fit_column(values[:140], 12)
    assert fit["kind"] == "hw_mul" and fit["fallback"]["kind"] == "hw_add"
    values[200] = 0.0
    whole = ets.column_components(values, fit, 5)
    for cut in (150, 186, 200, 201, 250):  # the zero after, at, just before the cut
        moved = ets.advance([fit], values[:cut, None])[0]
        # past the zero the fallback alone moves on; before it, both
        assert moved["kind"] == ("hw_add" if cut > 200 else "hw_mul")
        assert ("fallback" in moved) == (cut <= 200)
        assert_same(ets.column_components(values[cut:], moved, 5), [a[cut:] for a in whole])


def test_a_single_row_is_not_moved_past():
    fit = ets._fit_one(monthly_values(100), "holt", 12)
    assert ets.advance([fit, None], np.zeros((0, 2))) == [fit, None]
    with pytest.raises(ValueError, match="single row"):
        ets.advance([fit], np.ones((1, 1)))


@pytest.mark.parametrize("season", [1, 7, 12])
def test_the_learned_smoothing_moved_on_runs_the_later_rows_as_the_whole_series(season):
    rng = np.random.default_rng(season)
    scaled = np.stack([np.sin(np.arange(300) * 2 * np.pi / 12) + rng.normal(0, .2, 300),
                       rng.normal(0, 1, 300)], axis=1)
    theta = [0.3, -1.2, *rng.normal(0, .5, season if season > 1 else 0)]
    fits = [{"season": season, "theta": theta}, None]
    whole = smoothing.components(scaled, fits, 6)
    for cut in (1, 7, 100, 299):
        moved = smoothing.advance(fits, scaled[:cut])
        assert moved[1] is None and moved[0]["theta"][:2] == theta[:2]
        assert_same(smoothing.components(scaled[cut:], moved, 6), [a[cut:] for a in whole])
        twice = smoothing.advance(smoothing.advance(fits, scaled[:cut // 2]),
                                  scaled[cut // 2:cut])
        assert twice == moved
    assert smoothing.advance(fits, scaled[:0]) is fits


# --- real runs ---------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["hybrid", "esrnn"])
def run(request, tmp_path_factory):
    """(model, task, state, run path, data path) of a small run of the model on monthly
    rows, and a later file ending in a gap."""
    folder = tmp_path_factory.mktemp(f"tail_{request.param}")
    train = write_csv(folder / "train.csv", ["month", "y"], monthly_rows(0, TRAIN_ROWS))
    path = folder / "run"
    ok(invoke("train", "forecast", "--data", train, "--model", request.param,
              "--out", path, *SMALL))
    data = write_csv(folder / "later.csv", ["month", "y"],
                     monthly_rows(*FILE_ROWS, blank=(FILE_ROWS[1] - 2, FILE_ROWS[1] - 1)))
    model, info = load_model(RunDir.open(str(path)), "best", 1)
    state = info["task_state"]
    assert state["model"] == request.param and state["calendar"] == ["year"]
    if request.param == "hybrid":
        assert state["ets"][0]["kind"] == "hw_mul" and "fallback" in state["ets"][0]
    return model.runner(), plugins.get_task("forecast"), state, path, data


def answers(answer, lines):
    out = []
    for line in lines:
        try:
            out.append(answer(line))
        except UserError as e:
            out.append(str(e))
    return out


@pytest.mark.parametrize("on_file", [True, False])
def test_the_stream_forecasts_what_the_whole_history_gives(run, on_file, monkeypatch):
    model, task, state, _, data = run
    options = {"data": data if on_file else None, "steps": 10}  # the horizon is 4
    lines = stream_lines()
    want = answers(reference_stream(task, state, model, options), lines)
    moved, rows_read = [], []
    advanced, model_call = win.advanced, predict._model_call

    def spy_advanced(state_, scaled):
        moved.append(advanced(state_, scaled))
        return moved[-1]

    def spy_model_call(model_, scaled, *args):
        rows_read.append(len(scaled))
        return model_call(model_, scaled, *args)

    monkeypatch.setattr(win, "advanced", spy_advanced)
    monkeypatch.setattr(predict, "_model_call", spy_model_call)
    got = answers(predict.forecast_stream(task, state, model, options), lines)
    assert [type(a) for a in got] == [type(a) for a in want]
    assert sum(isinstance(a, str) for a in got) == 3  # x, 1,2 and 1e300 refused
    assert "far outside" in got[55] and "expected 1 finite number" in got[6]
    assert got == want  # every forecast bitwise
    # the states moved on at the start and every few lines (the hybrid's past the 0 as
    # its fallback alone); the model read a bounded tail
    assert len(moved) >= 3
    if state["model"] == "hybrid":
        kinds = [s["ets"][0]["kind"] for s in moved]
        assert kinds[0] == "hw_mul" and kinds[-1] == "hw_add"
    assert max(rows_read) <= 2 * predict._kept_rows(state) + 1 + 10


def test_a_stream_whose_states_stay_put_is_told_apart(run, monkeypatch):
    """The comparison above sees a tail filtered from states that did not move on."""
    model, task, state, _, data = run
    options = {"data": data, "steps": 4}
    lines = stream_lines()[:30]
    want = answers(reference_stream(task, state, model, options), lines)
    monkeypatch.setattr(win, "advanced", lambda state_, scaled: state_)
    assert answers(predict.forecast_stream(task, state, model, options), lines) != want


@pytest.mark.parametrize("where", [("--data", "file"), ("--origin", "test")])
def test_a_long_roll_out_forecasts_what_the_whole_history_gives(run, where, monkeypatch):
    _, _, _, path, data = run
    option = [where[0], data if where[1] == "file" else "test"]
    got = json.loads(ok(invoke("predict", path, "--json", "--steps", 90, *option)))
    monkeypatch.setattr(predict, "rollout", reference_rollout)
    want = json.loads(ok(invoke("predict", path, "--json", "--steps", 90, *option)))
    assert got == want
