"""`recurrent predict RUN` for the forecast task: forecast S steps from an origin.

Dimension legend: N rows, C value columns, W window, S forecast steps.

The origin is the last row of the data (the future), or with --origin test the row before
the training data's test split, so the forecast can be set against the test actuals. The
baseline shown beside it is seasonal-naive when the run has a season, else naive; both
see only what was known at the origin.
"""
from __future__ import annotations

import json
import click
import numpy as np

from recurrent.errors import UserError

from . import series as dataio
from . import metrics as fm
from . import plot as fplot
from . import anchors as anc
from . import calendar as cal
from . import windows as win


def _origin(task, state, options, stream=False):
    """(prepared, origin row, first test row or None, history (origin + 1, C) scaled):
    the data --data / --origin name, and every row up to the origin as known there (the
    window, and the seasons before it that a seasonal run's anchors and inputs read).
    A --data file needs the window's rows; a stream's first file all the rows a new
    file's states restart on (windows.head_rows), so that the rows it appends never
    change that restart, as they would not for predict on the grown file."""
    origin_kind = options.get("origin") or "end"
    recent = options.get("data")
    if recent:
        if origin_kind == "test":
            raise UserError("--origin test forecasts the training data's test split: "
                            "drop --data")
        prepared = task.load_file(state, dataio.resolve_source(recent), whole_file=True,
                                  restart=stream)
        test_start = None
    else:
        prepared = task.load(state, {})
        test_start = prepared.ranges["test"][0]
    n = prepared.series.values.shape[0]
    origin = n - 1 if origin_kind == "end" else test_start - 1
    history = win.known_at(prepared.scaled, prepared.last_seen,
                           np.arange(origin + 1)[None, :], np.array([origin]))[0]
    return prepared, origin, test_start, history


def run_predict(task, state, config, model, options):
    steps = options.get("steps") or state["horizon"]
    origin_kind = options.get("origin") or "end"
    recent = options.get("data")
    window = state["window"]
    prepared, origin, test_start, history = _origin(task, state, options)
    state = prepared.fitted(state)
    series = prepared.series
    n = series.values.shape[0]
    times = _forecast_times(series.times, origin, steps)  # (S,) or None
    calendar = None
    if state.get("calendar"):
        calendar = cal.features(np.concatenate([series.times[:origin + 1], times]),
                                state["calendar"])  # (origin + 1 + S, F)
    forecast = win.unscale(rollout(model, history, steps, state, calendar),
                           state["scaler"])  # (S, C)
    baseline, baseline_name = _baseline(state, prepared, origin, steps)  # (S, C)
    labels = [_time_text(t) for t in times] if times is not None else list(range(1, steps + 1))
    actual = None
    if origin_kind == "test":
        stop = min(origin + 1 + steps, n)
        actual = np.full((steps, len(series.columns)), np.nan)
        actual[:stop - origin - 1] = series.values[origin + 1:stop]  # NaN: gap or past the end

    if options.get("plot"):
        history_start = max(0, origin + 1 - max(3 * steps, 2 * window, 150))
        history_times = (series.times if series.times is not None
                         else np.arange(n, dtype=np.float64))
        forecast_axis = times if times is not None else origin + np.arange(1, steps + 1)
        where = "test split" if origin_kind == "test" else "last row"
        fplot.forecast_plot(
            options["plot"], f"{state['data_label'] if not recent else recent}: {steps}-step "
            f"forecast from the {where}", series.columns, series.time_column or "row",
            history_times[history_start:], series.values[history_start:],
            None if test_start is None else test_start - history_start,
            forecast_axis, forecast, baseline, baseline_name)
        click.echo(f"wrote {options['plot']}", err=True)

    if options.get("as_json"):
        result = {
            "columns": series.columns,
            "origin": _time_text(series.times[origin]) if series.times is not None else origin,
            "steps": steps,
            "time": labels,
            "forecast": _by_column(series.columns, forecast),
            "baseline": {"name": baseline_name, **_by_column(series.columns, baseline)},
        }
        if actual is not None:
            result["actual"] = _by_column(series.columns, actual)
        yield json.dumps(result)
        return
    yield ",".join([series.time_column or "step", *series.columns])
    for label, row in zip(labels, forecast):
        yield ",".join([str(label), *(f"{v:.6g}" for v in row)])


def _baseline(state, prepared, origin, steps):
    """Seasonal-naive (when the run has a season and enough history) or naive: (S, C)."""
    at = np.array([origin])
    season = state["season"]
    if season > 1 and origin >= season - 1:
        rows = fm.seasonal_rows(at, steps, season)
        name = f"seasonal naive (m={season})"
    else:
        rows = np.full((1, steps), origin)
        name = "naive (last value)"
    return win.known_at(prepared.filled, prepared.last_seen, rows, at)[0], name


def _forecast_times(times, origin, steps):
    """(S,) times of the forecast steps: real ones inside the data, then extrapolated by
    the median spacing. None without a time column (or a single row)."""
    if times is None or len(times) < 2:
        return None
    n = len(times)
    spacing = np.diff(times)
    if np.issubdtype(times.dtype, np.datetime64):
        step = np.median(spacing.astype(np.int64)).astype(np.int64).astype(spacing.dtype)
    else:
        step = np.median(spacing)
    rows = origin + np.arange(1, steps + 1)
    inside = np.minimum(rows, n - 1)
    return np.where(rows < n, times[inside], times[n - 1] + step * (rows - (n - 1)))


def _time_text(t):
    if isinstance(t, np.datetime64):
        return str(np.datetime_as_string(t))
    t = float(t)
    return int(t) if t.is_integer() else round(t, 9)


def _by_column(columns, values):
    return {name: [None if np.isnan(v) else float(v) for v in values[:, c]]
            for c, name in enumerate(columns)}


def rollout(model, history_scaled: np.ndarray, steps: int, state: dict,
            calendar: np.ndarray | None = None) -> np.ndarray:
    """Forecast ``steps`` values after a history: history_scaled (K, C) -> (S, C) scaled.

    The history holds at least the window (and, for a seasonal run, a season or more before
    it). H steps come from one model call; beyond H the forecasts are appended to the
    history and the model runs again from the new last row. A run with calendar features
    needs ``calendar`` (K + S, F) or longer: the features of the history's rows and
    the forecast steps' (calendar.py).
    """
    history = np.asarray(history_scaled, dtype=np.float64)
    produced = 0
    while produced < steps:
        origin = np.array([history.shape[0] - 1])
        seen = np.repeat(np.arange(history.shape[0])[:, None], history.shape[1], axis=1)
        x = win.model_inputs(history, seen, origin, state, calendar)
        outputs, _ = model.forward(x)  # (1, H*C)
        forecast = anc.model_forecasts(outputs, history, seen, origin, state)[0]  # (H, C)
        history = np.concatenate([history, forecast])
        produced += forecast.shape[0]
    return history[history.shape[0] - produced:][:steps]


def forecast_stream(task, state, model, options):
    """answer(line) for `predict RUN --stream`: each line is the next row's values (one
    number per column, comma-separated), appended after the data's last row (--data,
    --origin as in predict); the answer is the forecast of the --steps rows after it in
    the original units, as `predict` would give on the data with those rows appended:
    {"values": [...], "forecast": {column: [...]}}. A line that is not one finite number
    per column raises UserError and is not appended."""
    if options.get("plot"):
        raise UserError("--plot draws one forecast: it does not go with --stream")
    steps = options.get("steps") or state["horizon"]
    prepared, origin, _, history = _origin(task, state, options, stream=True)
    state = prepared.fitted(state)
    columns = prepared.series.columns
    # rows the model's inputs and anchors read back from the origin: the window and a season
    # (the hybrid's ETS filters the whole history, so it keeps every row)
    keep = (1 << 62 if win.hybrid_model(state)
            else state["window"] + max(int(state["season"]), 1) + 1)
    times = prepared.series.times
    # each appended row is one median spacing after the last (as predict's future steps)
    recent = {"history": history[-keep:],
              "times": None if times is None else times[:origin + 1][-keep:]}

    def answer(line):
        values = _parse_row(line, columns)
        row = win.scale(values[None, :], state["scaler"])  # (1, C)
        history = np.concatenate([recent["history"], row])[-keep:]
        row_times = calendar = None
        if recent["times"] is not None:
            last = len(recent["times"]) - 1
            row_times = np.concatenate([recent["times"],
                                        _forecast_times(recent["times"], last, 1)])[-keep:]
        if state.get("calendar"):
            future = _forecast_times(row_times, len(row_times) - 1, steps)
            calendar = cal.features(np.concatenate([row_times, future]), state["calendar"])
        forecast = win.unscale(rollout(model, history, steps, state, calendar),
                               state["scaler"])
        recent["history"], recent["times"] = history, row_times
        return {"values": values.tolist(), "forecast": _by_column(columns, forecast)}

    return answer


def _parse_row(line, columns):
    """(C,) float64 from "v1,v2,...", one finite number per column, or UserError."""
    parts = [p.strip() for p in line.split(",")]
    try:
        values = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        values = None
    if values is None or len(values) != len(columns) or not np.isfinite(values).all():
        raise UserError(f"expected {len(columns)} finite number"
                        f"{'s' if len(columns) > 1 else ''} ({', '.join(columns)}), "
                        f"comma-separated, got {line[:60]!r}")
    return values
