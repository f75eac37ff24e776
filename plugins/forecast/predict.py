"""`recurrent predict RUN` for the forecast task: forecast S steps from an origin.

Dimension legend: N rows, C value columns, W window, S forecast steps.

The origin is the last row of the data (the future), or with --origin test the row before
the training data's test split, so the forecast can be set against the test actuals. The
baseline shown beside it is seasonal-naive when the run has a season, else naive; both
see only what was known at the origin.
"""
from __future__ import annotations

import math

import click
import numpy as np

from recurrent.checkpoint import json_text
from recurrent.errors import UserError
from recurrent.predict_api import run_imported, run_word

from . import series as dataio
from . import metrics as fm
from . import plot as fplot
from . import anchors as anc
from . import calendar as cal
from . import windows as win
from .times import period_text

# --steps' bound: far more steps than a recursive roll-out of a model trained on its
# --horizon has any use for, yet few enough that the forecast, its dates and its lines
# fit in memory and are printed without a long wait; a mistyped larger count is refused
# rather than run for hours or take all the memory there is
MAX_STEPS = 1_000_000


def own_data_gone() -> str:
    """What to do when the run's training data is gone and --origin test forecasts it:
    that option refuses --data, so the run itself must learn the new place, which a
    resume with --data saves; the command names the run as the user did (run_word). An
    imported run cannot be resumed: the file must be back where it was, and eval scores
    the test split from a new place."""
    if run_imported():
        return (f"score the test split from its new place with `recurrent eval "
                f"{run_word()} --split test --data NEW` ({run_word()} was made by "
                f"`recurrent import`: it cannot be resumed to save that place for predict)")
    return (f"save its new place in the run with `recurrent train --resume {run_word()} "
            f"--data NEW`")


def _origin(task, state, options, stream=False):
    """(prepared, origin row, first test row or None): the data --data / --origin name,
    and the row forecast from. Every row up to the origin is as known there: a trailing
    gap's interpolated rows lean on the next observation, after the origin, so the
    forecasts read them through prepared.last_seen (windows.known_at, ets.origin_index)
    as eval does. A --data file needs what a forecast reads (windows.history_rows); a
    stream's first file all the rows a new file's states restart on (windows.head_rows),
    so that the rows it appends never change that restart, as they would not for predict
    on the grown file."""
    origin_kind = options.get("origin") or "end"
    recent = options.get("data")
    if options.get("date_order") and not recent:
        raise UserError("--date-order reads the dates of a --data file: give --data")
    if recent:
        if origin_kind == "test":
            raise UserError("--origin test forecasts the training data's test split: "
                            "drop --data")
        prepared = task.load_file(state, dataio.resolve_source(recent), whole_file=True,
                                  restart=stream, date_order=options.get("date_order"))
        test_start = None
    else:
        if origin_kind == "test":  # the gone file's advice: --data is refused here
            task._training_source(state, own_data_gone())
        prepared = task.load(state, {})
        test_start = prepared.ranges["test"][0]
    n = prepared.series.values.shape[0]
    origin = n - 1 if origin_kind == "end" else test_start - 1
    if state.get("calendar") and origin < 1:
        raise UserError(f"this run feeds calendar features ({', '.join(state['calendar'])}) "
                        f"of the forecast steps, dated by the spacing of the rows before "
                        f"them: --data needs at least two rows")
    return prepared, origin, test_start


def run_predict(task, state, config, model, options):
    steps = options.get("steps") or state["horizon"]
    origin_kind = options.get("origin") or "end"
    recent = options.get("data")
    window = state["window"]
    prepared, origin, test_start = _origin(task, state, options)
    state = prepared.fitted(state)
    series = prepared.series
    n = series.values.shape[0]
    times, labels = _forecast_labels(series, origin, steps, state.get("time_step"))
    calendar = _calendar(state, series, origin, times)  # (origin + 1 + S, F) or None
    # the first H steps are eval's forecast of the origin (task._scaled_forecasts): the
    # whole prepared rows, read as known at the origin
    if origin_kind == "end":
        _note_trailing_gap(series, prepared.last_seen[origin], origin,
                           recent or state["data_label"])
    positions = _positions(series.times, origin, times)  # (origin + 2,)
    forecast = win.unscale(rollout(model, prepared.scaled, steps, state, calendar,
                                   last_seen=prepared.last_seen, origin=origin,
                                   positions=positions), state["scaler"])  # (S, C)
    baseline, baseline_name = _baseline(state, prepared, origin, steps)  # (S, C)
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
        if series.offsets is not None and times is not None:
            # times written with UTC offsets are drawn on the file's own clock, as the
            # labels print them (_forecast_labels), not in UTC
            history_times = series.times + series.offsets
            forecast_axis = times + _step_zones(series.offsets, origin, steps)
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
            "origin": origin if series.times is None else _row_label(series, origin),
            "steps": steps,
            "time": labels,
            "forecast": _by_column(series.columns, forecast),
            # "name" beside the columns is kept for scripts reading it; a value column
            # called "name" takes that key, so the name is also given on its own
            "baseline": {"name": baseline_name, **_by_column(series.columns, baseline)},
            "baseline_name": baseline_name,
        }
        if actual is not None:
            result["actual"] = _by_column(series.columns, actual)
        yield json_text(result)
        return
    yield ",".join([series.time_column or "step", *series.columns])
    spreads = state["scaler"]["scale"]
    for label, row in zip(labels, forecast):
        yield ",".join([str(label), *(_value_text(v, s) for v, s in zip(row, spreads))])


def _value_text(value: float, spread: float) -> str:
    """One forecast value of the CSV: 6 significant digits, or as many more as it takes
    to show a ten-thousandth of its column's training spread (the scaler's scale), so a
    series far from zero that moves little (a counter near 1e9 changing by tens) does not
    print every step as the same rounded number."""
    value = float(value)
    if not np.isfinite(value) or value == 0 or not spread > 0:
        return f"{value:.6g}"
    digits = math.floor(math.log10(abs(value))) + 1 - math.floor(math.log10(1e-4 * spread))
    return f"{value:.{min(17, max(6, digits))}g}"


def _calendar(state, series, origin, times):
    """(origin + 1 + S, F) calendar features (cal.run_features) of the rows up to the
    origin and of the S forecast steps at ``times`` (S,) (_forecast_labels), each step at
    the UTC offset it is labelled with (_step_zones); None when the run has no cycles."""
    if not state.get("calendar"):
        return None
    zones = None if series.offsets is None else np.concatenate(
        [series.offsets[:origin + 1], _step_zones(series.offsets, origin, len(times))])
    return cal.run_features(state, np.concatenate([series.times[:origin + 1], times]), zones)


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


def _forecast_labels(series, origin, steps, step=None):
    """(times (S,) of the forecast steps (_forecast_times, at the run's ``step``) as the
    series' are, or None; (S,) their labels: the times' text, or step numbers 1..S
    without times). Times written with UTC offsets (series.offsets; the times are UTC)
    step in the file's local time, in which its calendar months are (the 1st at
    00:00+01:00 is the month before's last day in UTC, and month ends in UTC are no one
    day of the month), each step inside the data at its row's offset, those after it at
    the last row's; they are labelled in local time with that offset, as the file writes
    them."""
    if series.times is None or series.offsets is None or len(series.times) < 2:
        times = _forecast_times(series.times, origin, steps, step)
        return times, ([_time_text(t, series.notation) for t in times] if times is not None
                       else list(range(1, steps + 1)))
    local = _forecast_times(series.times + series.offsets, origin, steps, step)  # (S,)
    zones = _step_zones(series.offsets, origin, steps)
    return local - zones, [_local_text(t, z) for t, z in zip(local, zones)]


def _step_zones(offsets, origin, steps):
    """(S,) the UTC offsets of the S steps after row ``origin``: a step inside the data
    at its row's offset (``offsets`` (N,)), those after it at the last row's."""
    return offsets[np.minimum(origin + np.arange(1, steps + 1), len(offsets) - 1)]


def _note_trailing_gap(series, last_seen, origin, label):
    """A note on stderr when a column's last rows are empty: the forecast after them is
    made from its last observation (gap-filled rows held at it), further back than the
    last row the file shows. ``last_seen`` (C,): each column's last observed row."""
    gaps = origin - last_seen  # (C,)
    c = int(np.argmax(gaps))
    if gaps[c] <= 0:
        return
    seen = (f"row {int(last_seen[c]) + 1}" if series.times is None
            else _row_label(series, int(last_seen[c])))
    from recurrent.progress import warn_once
    warn_once(f"note: the last {int(gaps[c])} row(s) of {label} hold no "
              f"{series.columns[c]!r} value: the forecast reads them as gaps held at its "
              f"last observation ({seen}), {int(gaps[c]) + 1} steps before the "
              f"first forecast step")


def _row_label(series, row):
    """The label of a row's time (series.times): in local time with its offset when the
    file wrote one (_local_text)."""
    if series.offsets is None:
        return _time_text(series.times[row], series.notation)
    return _local_text(series.times[row] + series.offsets[row], series.offsets[row])


def _local_text(local, offset):
    """A local time's label with its UTC offset: 2010-01-01T00:00+01:00."""
    seconds = int(offset / np.timedelta64(1, "s"))
    minutes, second = divmod(abs(seconds), 60)
    return (f"{_time_text(local)}{'-' if seconds < 0 else '+'}{minutes // 60:02d}:"
            f"{minutes % 60:02d}{f':{second:02d}' if second else ''}")


def _forecast_times(times, origin, steps, step=None):
    """(S,) times of the forecast steps: real ones inside the data, then extrapolated, in
    the dtype of ``times``: by whole calendar months when the dates step by them
    (_month_steps: monthly, quarterly, yearly dates, month ends included), else by the
    median spacing; by the run's ``step`` (a time_step) where that differs (_stepping).
    None without a time column (or a single row)."""
    if times is None or len(times) < 2:
        return None
    n = len(times)
    rows = origin + np.arange(1, steps + 1)
    inside = np.minimum(rows, n - 1)
    ahead = rows - (n - 1)  # (S,) steps after the last row (<= 0 inside the data)
    later = _times_after(times[n - 1], _stepping(times, step), np.maximum(ahead, 0))
    return np.where(rows < n, times[inside], later)


# business days: a series of dates a day apart that skips weekends (Saturday, Sunday)
BUSINESS_WEEK_DAYS = 7  # rows spanning at least a week, none of them on a weekend


class BusinessDays:
    """The stepping of dates one business day apart (_business_days): the next step is
    the next weekday (numpy's busday_offset), at the rows' time of day."""

    def __init__(self, time_of_day):
        self.time_of_day = time_of_day


def _stepping(times, step=None):
    """How times (two or more) step on after their last: by business days
    (_business_days), else as _spacing says, or, when that spacing is not the run's
    ``step`` (a time_step; a file it accepted since half of its steps are the run's, the
    rest missing rows: steps_by), by the run's step: the model forecasts the next row at
    the run's frequency, not at the file's median spacing."""
    business = _business_days(times)
    if business is not None:
        return business
    spacing = _spacing(times)
    if step is None or same_step(_step_of(spacing, times), step):
        return spacing
    return _run_spacing(times, spacing, step)


def _run_spacing(times, spacing, step):
    """A _spacing of ``times`` at the run's ``step`` (a time_step): whole months at the
    day of month and time of day of the file's months (or of its last row), or the
    step's seconds in the times' unit, or the step's size for numbers."""
    if step["unit"] == "month":
        months = int(round(step["size"]))
        if isinstance(spacing, tuple):
            return months, spacing[1], spacing[2]
        last = times[-1]
        day = last.astype("datetime64[D]")
        first = last.astype("datetime64[M]").astype("datetime64[D]")
        return months, int((day - first).astype(np.int64)) + 1, last - day.astype(last.dtype)
    if step["unit"] == "second":
        seconds = np.timedelta64(int(round(step["size"])), "s")
        in_unit = seconds.astype(np.diff(times[-2:]).dtype)  # the times' unit, if exact
        return in_unit if in_unit == seconds else seconds
    size = step["size"]
    return int(size) if np.issubdtype(times.dtype, np.integer) and size == int(size) else size


def _business_days(times):
    """BusinessDays when datetime64 times are business days: every row on a weekday at one
    time of day, the median step one day, and the rows spanning at least a week (so that
    a daily series would have had a weekend among them); else None. Holidays (a missing
    weekday) leave it so."""
    if not np.issubdtype(times.dtype, np.datetime64) or len(times) < 2:
        return None
    days = times.astype("datetime64[D]")
    time_of_day = times - days.astype(times.dtype)
    step = np.median(np.diff(days).astype(np.int64))
    if (step != 1 or np.any(time_of_day != time_of_day[0])
            or (days[-1] - days[0]).astype(np.int64) < BUSINESS_WEEK_DAYS
            or not np.is_busday(days).all()):
        return None
    return BusinessDays(time_of_day[0])


def _spacing(times):
    """How times (two or more) step on after their last (_forecast_times): (months per
    step, day of month, time of day) when they step by whole calendar months
    (_month_steps), else their median spacing (for dates a timedelta, truncated to whole
    units). Times that step on by it keep it: steps equal to a median (or to its
    truncation) leave it, and the months' day and time of day stay (numbers that are not
    whole may drift from it by rounding: they feed no calendar features)."""
    months = _month_steps(times)
    if months is not None:
        return months
    spacing = np.diff(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return np.median(spacing.astype(np.int64)).astype(np.int64).astype(spacing.dtype)
    return np.median(spacing)


# a mean Gregorian month, in seconds: how a step of whole months compares with others
MONTH_SECONDS = 30.436875 * 86_400
# steps that differ by at most this share of the larger are one frequency (months of 30
# and of 31 days, a median of a few rows)
STEP_TOLERANCE = 0.05
STEP_UNITS = ("month", "second", "number")
_SPANS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


def time_step(times):
    """How rows of ``times`` step (_spacing), as saved with a run and compared between
    parts of a series and with a new file (same_step): {"unit": "month", "size": months}
    for dates by whole calendar months, {"unit": "second", "size": their median spacing}
    for other dates, {"unit": "number", "size": ...} for numbers; None without times or
    with fewer than two rows."""
    if times is None or len(times) < 2:
        return None
    return _step_of(_spacing(times), times)


def _step_of(spacing, times):
    """time_step of a _spacing of ``times``."""
    if isinstance(spacing, tuple):
        return {"unit": "month", "size": float(spacing[0])}
    if np.issubdtype(times.dtype, np.datetime64):
        return {"unit": "second", "size": float(spacing / np.timedelta64(1, "s"))}
    return {"unit": "number", "size": float(spacing)}


def same_step(a, b) -> bool:
    """Whether two time_step results are one frequency: both dates or both numbers, of
    sizes within STEP_TOLERANCE (a month counted as MONTH_SECONDS)."""
    if (a["unit"] == "number") != (b["unit"] == "number"):
        return False
    x, y = (s["size"] * (MONTH_SECONDS if s["unit"] == "month" else 1) for s in (a, b))
    return abs(x - y) <= STEP_TOLERANCE * max(abs(x), abs(y))


def steps_by(times, step) -> bool:
    """Whether rows of ``times`` (two or more) are at the frequency of ``step`` (a
    time_step, the run's): their median step is it (same_step), or at least half of
    their single steps are. The second covers a short file or part, whose median a
    missing row or a weekend of business days moves (Thursday, Friday, Monday: a median
    of 2 days in daily rows); rows at another frequency have few steps of this one."""
    if same_step(time_step(times), step):
        return True
    if _month_steps(times) is not None:
        steps = [{"unit": "month", "size": float(months)}
                 for months in np.diff(times.astype("datetime64[M]").astype(np.int64))]
    elif np.issubdtype(times.dtype, np.datetime64):
        steps = [{"unit": "second", "size": float(seconds)}
                 for seconds in np.diff(times) / np.timedelta64(1, "s")]
    else:
        steps = [{"unit": "number", "size": float(size)} for size in np.diff(times)]
    return 2 * sum(same_step(single, step) for single in steps) >= len(steps)


def step_text(step) -> str:
    """A time_step for messages: "1 hour", "7 days", "3 months", "1 (numbers)"."""
    size = step["size"]
    if step["unit"] == "number":
        return f"{size:g} (numbers)"
    name = "month"
    if step["unit"] == "second":
        span, name = next(((s, n) for s, n in _SPANS if size >= s and size % s == 0),
                          (1, "second"))
        size = size / span
    return f"{size:g} {name}{'' if size == 1 else 's'}"


def _times_after(last, spacing, ahead):
    """(S,) the times ``ahead`` (S,) >= 0 steps of ``spacing`` (_spacing) after the time
    ``last``, in its dtype (or _stepping's BusinessDays: weekdays after it)."""
    if isinstance(spacing, BusinessDays):
        days = np.busday_offset(last.astype("datetime64[D]"), ahead, roll="forward")
        return (days + spacing.time_of_day).astype(last.dtype)
    if isinstance(spacing, tuple):
        step, day, time_of_day = spacing
        month = last.astype("datetime64[M]") + step * ahead  # (S,)
        first = month.astype("datetime64[D]")
        length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
        return (first + (np.minimum(day, length) - 1) + time_of_day).astype(last.dtype)
    return last + spacing * ahead


def _local_after(last, spacing, ahead, zone=None):
    """_times_after in local time: ``last`` a UTC time of a row written at UTC offset
    ``zone`` (None: a time as written), ``spacing`` that of the local times; UTC times."""
    if zone is None:
        return _times_after(last, spacing, ahead)
    return _times_after(last + zone, spacing, ahead) - zone


# how many days from its month's usual day a row of dates stepping by whole months may
# fall (a date moved off a weekend, a month's last business day): the series still steps
# by months, on the usual day
MONTH_DAY_SLACK = 3


def _month_steps(times):
    """(months per step, day of month, time of day) when datetime64 times step by whole
    calendar months: every row on the same day of its month, that day clamped to the
    month's length (the 31st is every month's last day, the 30th February's last), or
    within MONTH_DAY_SLACK days of the rows' median day (so clamped), at the same time
    of day, each a month or more after the one before; the step is the median number of
    months. Else None (numbers, sub-monthly or irregular dates)."""
    if not np.issubdtype(times.dtype, np.datetime64):
        return None
    month = times.astype("datetime64[M]")
    if np.any(np.diff(month.astype(np.int64)) < 1):
        return None
    first = month.astype("datetime64[D]")
    days = times.astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)  # (N,)
    day_of_month = (days - first).astype(np.int64) + 1  # (N,) 1..31
    time_of_day = times - days.astype(times.dtype)  # (N,) timedelta, in the times' unit
    if np.any(time_of_day != time_of_day[0]):
        return None
    day = int(day_of_month.max())
    if np.any(day_of_month != np.minimum(day, length)):
        day = int(round(float(np.median(day_of_month))))
        if np.any(np.abs(day_of_month - np.minimum(day, length)) > MONTH_DAY_SLACK):
            return None
    step = int(round(float(np.median(np.diff(month.astype(np.int64))))))
    return step, day, time_of_day[0]


def _positions(times, origin, forecast_times):
    """(origin + 2,) float64 positions on the time axis (series.time_positions) of the
    rows up to the origin and of the first forecast step: where a trailing gap's rows
    lie between the last observation and that step (_bridged)."""
    both = (None if times is None or forecast_times is None
            else np.concatenate([times[:origin + 1], forecast_times[:1]]))
    return dataio.positions(both, origin + 2)


def _time_text(t, notation=None):
    """A time's label: a date in the file's quarter or week notation (series.notation)
    when it has one, else ISO 8601; a number as it is."""
    if isinstance(t, np.datetime64):
        return (period_text(t, notation) if notation is not None
                else str(np.datetime_as_string(t)))
    t = float(t)
    return int(t) if t.is_integer() else round(t, 9)


def _by_column(columns, values):
    return {name: [None if np.isnan(v) else float(v) for v in values[:, c]]
            for c, name in enumerate(columns)}


def rollout(model, history_scaled: np.ndarray, steps: int, state: dict,
            calendar: np.ndarray | None = None, last_seen: np.ndarray | None = None,
            origin: int | None = None, positions: np.ndarray | None = None) -> np.ndarray:
    """Forecast ``steps`` values after an origin: history_scaled (K, C) -> (S, C) scaled.

    The history holds the rows up to the origin (row ``origin``, by default the last)
    and maybe rows after it, on which no forecast depends: at least the window (and, for a
    seasonal run, a season or more before it), gap-filled, with ``last_seen`` (K, C)
    their last observed rows (windows.last_observed; by default every row observed).
    The first H steps are one model call at the origin, as eval makes it
    (task._scaled_forecasts): an origin in a gap forecasts from what was known there.
    Beyond H the forecasts are appended after the origin and the model runs again from
    the new last row, every row then taken as observed: a gap before the origin is
    bridged from the last observation to the first forecast step (_bridged), as filling
    a file with those steps appended would do, by ``positions`` (origin + 2,) on the
    time axis (default: row numbers). A run with calendar features needs ``calendar``
    (origin + 1 + S, F) or longer: the features of the rows up to the origin and of the
    forecast steps (calendar.py). The calls after the first read a bounded tail of the
    history (_bounded): their cost does not grow with it, their forecasts are the same.
    """
    history = np.asarray(history_scaled, dtype=np.float64)
    if origin is None:
        origin = history.shape[0] - 1
    if last_seen is None:
        last_seen = np.repeat(np.arange(history.shape[0])[:, None], history.shape[1], axis=1)
    forecast = _model_call(model, history, last_seen, origin, state, calendar)  # (H, C)
    if steps <= forecast.shape[0]:
        return forecast[:steps]
    if positions is None:
        positions = np.arange(origin + 2, dtype=np.float64)
    history = np.concatenate([_bridged(history[:origin + 1], last_seen[origin],
                                       positions, forecast[0]), forecast])
    # one array for every step (a list of each call's small array fragments the heap)
    out = np.empty((steps + forecast.shape[0], forecast.shape[1]), dtype=forecast.dtype)
    out[:forecast.shape[0]] = forecast
    produced = forecast.shape[0]
    left = 0  # rows left behind (_bounded): calendar's rows are the history's from there
    while produced < steps:
        drop, history, state = _bounded(history, state, _kept_rows(state))
        left += drop
        last = history.shape[0] - 1
        seen = np.repeat(np.arange(history.shape[0])[:, None], history.shape[1], axis=1)
        forecast = _model_call(model, history, seen, last, state,
                               None if calendar is None else calendar[left:])
        history = np.concatenate([history, forecast])
        out[produced:produced + forecast.shape[0]] = forecast
        produced += forecast.shape[0]
    return out[:steps]


def _kept_rows(state):
    """How many rows up to its origin a forecast of a stream or a roll-out reads at
    most: the window and a season before it (windows.history_rows), and one more row.
    The hybrid model reads its smoothing on the window's rows only, after more than a
    season of these rows (ets.column_components: a multiplicative fit's rows before a
    value <= 0 that are no more than a season are the naive forecast's)."""
    return state["window"] + max(int(state["season"]), 1) + 1


def _bounded(history, state, keep):
    """(rows dropped, history, state) for forecasts from the last row of history (K, C)
    scaled: as they are, or, once history holds more than twice ``keep`` rows, its last
    keep rows and the state with the hybrid's smoothing moved on past the rows before
    them (windows.advanced), which gives the same forecasts from the last row when they
    read at most keep rows (_kept_rows). Leaving many rows behind at once keeps the
    moves rare: each filters the rows it leaves behind."""
    if len(history) <= 2 * keep:
        return 0, history, state
    drop = len(history) - keep
    return drop, history[drop:], win.advanced(state, history[:drop])


def _model_call(model, scaled, last_seen, origin, state, calendar):
    """(H, C) scaled: the model's forecast at row ``origin`` of scaled, last_seen (K, C)
    (task._scaled_forecasts for one origin)."""
    at = np.array([origin])
    x = win.model_inputs(scaled, last_seen, at, state, calendar)
    outputs, _ = model.forward(x)  # (1, H*C)
    return anc.model_forecasts(outputs, scaled, last_seen, at, state)[0]


def _bridged(history, last, positions, after, first=0):
    """history (K, C) gap-filled with the rows after each column's last observed row
    ``last`` (C,) (a trailing gap) interpolated linearly in time between that row's value
    and ``after`` (C,), the value of the next row (K): series.fill_gaps' filling once
    that row is known. positions (K + 1,) on the time axis. Rows before ``first`` (the
    start of the data's last fill segment: a new file's head rows, filled apart) are
    kept as they are, as fill_gaps keeps them. A column not observed yet (last -1) is
    kept as it is."""
    out = np.array(history, dtype=np.float64)
    k = out.shape[0]
    for c in range(out.shape[1]):
        seen = int(last[c])
        if seen < 0 or seen >= k - 1:
            continue
        gap = np.arange(max(seen + 1, first), k)
        out[gap, c] = np.interp(positions[gap], positions[[seen, k]],
                                [out[seen, c], after[c]])
    return out


def forecast_stream(task, state, model, options):
    """answer(line) for `predict RUN --stream`: each line is the next row's values (one
    number per column, comma-separated), appended after the data's last row (--data,
    --origin as in predict); the answer is the forecast of the --steps rows after it in
    the original units, as `predict` would give on the data with those rows appended:
    {"values": [...], "forecast": {column: [...]}}. A line that is not one finite number
    per column raises UserError and is not appended. The stream keeps a bounded tail of
    the rows (_bounded, _stream_tail): a line costs the same however many came before."""
    if options.get("plot"):
        raise UserError("--plot draws one forecast: it does not go with --stream")
    steps = options.get("steps") or state["horizon"]
    prepared, origin, _ = _origin(task, state, options, stream=True)
    columns = prepared.series.columns
    keep = _kept_rows(state)
    times = prepared.series.times
    # Each appended row is one step after the last (as predict's future steps:
    # _forecast_times) by the spacing of the rows up to the origin, which is also the
    # spacing of those rows with the appended ones (_stepping); a single row has none,
    # and the stream no time axis. Times written with UTC offsets step in local time,
    # the appended rows at the origin row's offset (as predict's: _forecast_labels),
    # which their calendar features read too (recent["zones"]).
    offsets = prepared.series.offsets
    zone = None if times is None or offsets is None else offsets[origin]
    spacing = None if times is None or origin < 1 else _stepping(
        times[:origin + 1] if zone is None else times[:origin + 1] + offsets[:origin + 1],
        state.get("time_step"))
    # The rows up to the origin, gap-filled, and each column's last observed row: a
    # trailing gap is bridged to the first appended row (as filling the grown file
    # would), then every row is observed. A --data file's head rows are filled apart
    # from the rows after them (task._read): a trailing gap among them holds its last
    # value in the grown file too, so the bridge starts at "first".
    last = prepared.last_seen[origin]
    recent = {"history": prepared.scaled[:origin + 1], "last": last,
              "times": None if spacing is None else times[:origin + 1],
              "zones": None if spacing is None or zone is None else offsets[:origin + 1],
              "first": prepared.ranges["test"][0] if options.get("data") else 0,
              "state": prepared.fitted(state)}
    observed = last[last >= 0]  # the first line bridges gaps from these rows: they stay
    recent = _stream_tail(recent, max(keep, origin + 1 - int(observed.min(initial=origin))))

    def answer(line):
        values = _parse_row(line, columns)
        row = win.scale(values[None, :], state["scaler"])  # (1, C)
        last = len(recent["history"]) - 1
        row_times = row_zones = calendar = None
        if recent["times"] is not None:
            step = _local_after(recent["times"][-1], spacing, np.ones(1, np.int64), zone)
            row_times = np.concatenate([recent["times"], step])
            row_zones = _appended_zones(recent["zones"], zone, 1)
        history = _bridged(recent["history"], recent["last"],
                           _positions(row_times, last, None if row_times is None
                                      else row_times[-1:]), row[0], recent["first"])
        history = np.concatenate([history, row])
        if state.get("calendar"):
            future = _local_after(row_times[-1], spacing, np.arange(1, steps + 1), zone)
            calendar = cal.run_features(state, np.concatenate([row_times, future]),
                                        _appended_zones(row_zones, zone, steps))
        forecast = win.unscale(rollout(model, history, steps, recent["state"], calendar),
                               state["scaler"])
        recent.update(_stream_tail({**recent, "history": history, "times": row_times,
                                    "zones": row_zones,
                                    "last": np.full(len(columns), len(history) - 1)}, keep))
        return {"values": values.tolist(), "forecast": _by_column(columns, forecast)}

    return answer


def _appended_zones(zones, zone, count):
    """The rows' UTC offsets ``zones`` (K,) with ``count`` more at ``zone`` (the offset
    appended rows and forecast steps step in); None for times without offsets."""
    if zones is None:
        return None
    return np.concatenate([zones, np.full(count, zone, dtype=zones.dtype)])


def _stream_tail(recent, keep):
    """A stream's rows (forecast_stream's recent: "history" (K, C) scaled, "last" (C,)
    each column's last observed row, "times" (K,) or None, "zones" (K,) their UTC offsets
    or None, "first" the first row of the last fill segment, "state" the run's state
    from the first row on) bounded as rollout bounds its history (_bounded), the row
    numbers counted from the first row kept."""
    drop, history, state = _bounded(recent["history"], recent["state"], keep)
    if not drop:
        return recent
    last = recent["last"]
    return {"history": history, "state": state, "last": np.where(last >= 0, last - drop, -1),
            "times": None if recent["times"] is None else recent["times"][drop:],
            "zones": None if recent["zones"] is None else recent["zones"][drop:],
            "first": max(recent["first"] - drop, 0)}


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
