"""Calendar features from a time column: where each row falls in the day, week and year.

Dimension legend: N rows, P cycles encoded, F = 2P feature columns.

A cycle is encoded as sin and cos of its phase (midnight, Monday 00:00 and 1 January
00:00 are phase 0), so its end meets its start. Which cycles a series gets
(choose_cycles) follows its dates: a cycle at least twice the typical step between rows
(hourly data: the day and the week; daily: the week and the year; weekly and monthly: the
year; yearly: none, every row would fall at the same phase), and only when the training
rows span at least MIN_CYCLES of it, so that every phase was seen in training. Numeric
time columns (years, unix seconds, row numbers) get none: what their numbers mean is
unknown.

The phases are read on a run's clock (run_features, the task state's "calendar_clock"):
"local", new runs', reads times written with UTC offsets on the file's local wall clock
(each row's UTC time plus its offset), so a series that follows a local clock (demand,
traffic) keeps its daily phase across a daylight-saving change; "utc", runs saved
before the key existed, reads their UTC times, as those runs were trained. Times written
without offsets read the same on both clocks. Choosing the cycles and the season reads
steps and spans, durations, on the UTC times.
"""
from __future__ import annotations

import numpy as np

CALENDAR_MODES = ("auto", "none")  # --calendar
CLOCKS = ("utc", "local")  # the task state's "calendar_clock"
CLOCK = "local"  # new runs' clock; a state without the key is read on "utc"
CYCLES = {"day": 1.0, "week": 7.0, "year": 365.2425}  # name -> length in days
MIN_CYCLES = 2.0
_DAY_US = 86_400_000_000
_MONDAY = np.datetime64("1970-01-05", "D")  # phase 0 of the week


def _days(times: np.ndarray) -> np.ndarray:
    """(N,) float64 days since 1970-01-01 00:00 of datetime64 times."""
    return times.astype("datetime64[us]").astype(np.int64) / _DAY_US


def choose_cycles(mode: str | None, times: np.ndarray | None, train_end: int) -> list[str]:
    """The cycles to encode for --calendar ``mode`` given the series' times (module
    docstring); [] for "none", numbers or no time column. Reads the training rows only."""
    if mode == "none" or times is None or not np.issubdtype(times.dtype, np.datetime64):
        return []
    days = _days(times[:train_end])
    if days.size < 2:
        return []
    step = float(np.median(np.diff(days)))
    span = float(days[-1] - days[0])
    # Two rows per cycle at least: a cycle barely longer than the step (the year of yearly
    # rows) puts every row at nearly the same phase, a constant input.
    return [name for name, length in CYCLES.items()
            if 2 * step <= length and span >= MIN_CYCLES * length]


def calendar_season(times: np.ndarray | None, train_end: int) -> int | None:
    """The season the dates imply, as the usual frequency of a series: the steps in the
    shortest cycle longer than a step (hourly: 24 per day, half-hourly 48, daily: 7 per
    week, weekly: 52 per year, monthly 12, quarterly 4), if the training rows span it at
    least MIN_CYCLES times and it holds a whole number of steps (to 5%); else None.
    Reads the training rows only."""
    if times is None or not np.issubdtype(times.dtype, np.datetime64) or train_end < 2:
        return None
    days = _days(times[:train_end])
    step = float(np.median(np.diff(days)))
    span = float(days[-1] - days[0])
    for length in CYCLES.values():
        if step < length:
            steps = length / step
            season = int(round(steps))
            if span >= MIN_CYCLES * length and season >= 2 \
                    and abs(steps - season) <= 0.05 * season:
                return season
            return None
    return None


def phases(times: np.ndarray, cycle: str) -> np.ndarray:
    """(N,) float64 in [0, 1): where each datetime64 time falls in ``cycle``."""
    if cycle == "day":
        days = _days(times)
        return days - np.floor(days)
    if cycle == "week":
        since = _days(times) - _days(np.array([_MONDAY]))[0]
        return np.mod(since, 7.0) / 7.0
    if cycle == "year":
        years = times.astype("datetime64[Y]")
        start = _days(years.astype("datetime64[D]"))
        length = _days((years + 1).astype("datetime64[D]")) - start
        return (_days(times) - start) / length
    raise ValueError(f"unknown cycle {cycle!r}; known: {', '.join(CYCLES)}")


def features(times: np.ndarray | None, cycles: list[str]) -> np.ndarray | None:
    """(N, 2P) float64: sin and cos of each cycle's phase, cycle by cycle; None when there
    are no cycles."""
    if not cycles:
        return None
    columns = []
    for cycle in cycles:
        angle = 2 * np.pi * phases(times, cycle)
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1)


def run_clock(state: dict) -> str:
    """The clock a run's calendar phases are read on: its "calendar_clock", or "utc" for
    runs saved before the key existed (so their features stay as trained)."""
    return state.get("calendar_clock", "utc")


def clock_times(times: np.ndarray, offsets: np.ndarray | None, clock: str) -> np.ndarray:
    """(N,) the times the phases are read from: on the "local" clock the rows' local wall
    clock, ``times`` (UTC) plus ``offsets`` (N,) timedelta64, each row's UTC offset; else,
    or for times written without offsets (None), ``times`` as they are."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown calendar clock {clock!r}; known: {', '.join(CLOCKS)}")
    if clock == "utc" or offsets is None:
        return times
    return times + offsets


def run_features(state: dict, times: np.ndarray | None,
                 offsets: np.ndarray | None) -> np.ndarray | None:
    """(N, 2P) features (or None) of a run's cycles (state["calendar"]) for rows at UTC
    ``times`` (N,) written at UTC ``offsets`` (N,) (None: written without), on the run's
    clock (run_clock): what training, eval and predict all feed the model."""
    cycles = state.get("calendar", [])
    if not cycles:
        return None
    return features(clock_times(times, offsets, run_clock(state)), cycles)
