"""Time-ordered splits, the scaler, and sliding windows.

Dimension legend: N rows, C value columns, W window (input steps), H horizon (output steps),
B windows in a batch.

A window is named by its origin t, the index of its last input row: inputs are rows
t-W+1 .. t, targets rows t+1 .. t+H. A window belongs to the split holding all its targets;
its inputs may reach back into earlier splits (the past is known at forecast time), never
forwards. Splits are consecutive row ranges [0, train_end), [train_end, valid_end),
[valid_end, N): nothing is shuffled across them.
"""
from __future__ import annotations

import math

import numpy as np

from recurrent.errors import UserError
from recurrent.figures import counted

from . import ets
from . import smoothing

SCALINGS = ("standard", "minmax")
INPUT_MODES = ("auto", "level", "relative")  # --inputs; runs save level or relative
TREND_SHARE = 0.5  # --inputs auto: relative when a line explains this much of the variance
# --window auto: a candidate run per window length, the longest first; a state prepared on
# its own (not through a training run) takes the first.
WINDOWS = (30, 16, 8)
HELD_OUT = 0.15  # the default share of the rows in the validation and in the test split


def parse_window(text) -> int | str:
    """--window's value: "auto" or a whole number of past steps, at least 1 (ValueError
    otherwise, with the reason)."""
    if text is None or str(text).strip().lower() == "auto":
        return "auto"
    try:
        window = int(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a whole number of steps nor auto") from None
    if window < 1:
        raise ValueError(f"{window} is below 1")
    return window


def resolve_window(window) -> int:
    """The window of a task state: --window auto (left to the candidate runs) as a state
    prepared on its own takes it, WINDOWS[0]; a number as given."""
    window = parse_window(window)
    return WINDOWS[0] if window == "auto" else window


def split_ends(n: int, window: int, horizon: int, valid_fraction: float,
               test_fraction: float, label: str = "the data") -> tuple[int, int]:
    """(train_end, valid_end) for N rows; at least one window in every split."""
    if valid_fraction + test_fraction > 0.9:
        raise UserError(f"--valid-fraction {valid_fraction} + --test-fraction {test_fraction} "
                        f"leave too little for training (their sum must be at most 0.9)")
    train_end, valid_end = _ends(n, horizon, valid_fraction, test_fraction)
    if train_end - window - horizon + 1 < 1:
        raise UserError(f"too few rows in {label}: {counted(n, 'row')}, but --window "
                        f"{window} and --horizon {horizon} need at least "
                        f"{_rows_needed(window, horizon, valid_fraction, test_fraction)} "
                        f"(training, validation and test windows)")
    return train_end, valid_end


def _rows_needed(window: int, horizon: int, valid_fraction: float,
                 test_fraction: float) -> int:
    """The fewest rows from which on every row count leaves a training window. The
    validation and test rows are rounded shares of the rows, so one more row can take a
    training row away (44 rows at 0.15 and 0.15 keep 30, 43 keep 31): the smallest
    count that fits is not enough to say "at least". Beyond ``bound`` the training rows
    are at least n (1 - fractions) - 2 horizon - 1 and always fit; below it, the first
    count from which every count up to the bound fits."""
    def slack(n):  # training rows beyond what one window needs (negative: it does not fit)
        return _ends(n, horizon, valid_fraction, test_fraction)[0] - (window + horizon)
    # the validation and test rows are each at most horizon + n * fraction + 0.5, so
    # from (window + 3 * horizon + 1) / share rows on the training rows always fit
    share = 1.0 - valid_fraction - test_fraction  # at least 0.1: checked before
    bound = max(window + 3 * horizon,
                int(math.ceil((window + 3 * horizon + 1) / share)) + 1)
    # counting down from the bound one row at a time, as long as each count fits: one
    # row less takes at most one training row away, so a count with s rows to spare
    # vouches for the s counts below it, which are skipped (a horizon of 10**20 would
    # otherwise be counted down row by row)
    need = bound
    while need > 1:
        spare = slack(need - 1)
        if spare < 0:
            break
        need = max(1, need - 1 - spare)
    return need


def _ends(n: int, horizon: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    # A split needs at least H target rows to hold one window.
    n_test = max(horizon, int(round(n * test_fraction)))
    n_valid = max(horizon, int(round(n * valid_fraction)))
    return n - n_test - n_valid, n - n_test


def split_ranges(train_end: int, valid_end: int, n: int) -> dict:
    """{split: (start, end)}: the row range whose rows are the targets of each split."""
    return {"train": (0, train_end), "valid": (train_end, valid_end), "test": (valid_end, n)}


def history_rows(state: dict) -> int:
    """How many rows up to and including an origin its forecast reads: the window, and
    a season further back for the seasonal differences fed as inputs (window + m) or
    for a seasonal anchor (m + 1; anchors.py). lagged takes row 0 for rows before the
    first, which only the earliest training windows rely on; a new file's must not."""
    window, season = int(state["window"]), int(state.get("season", 1))
    if season <= 1:
        return window
    if seasonal_inputs(state):
        return window + season
    anchors = state.get("anchors") or [] if state.get("difference", True) else []
    if any(part.startswith("seasonal") for anchor in anchors for part in anchor.split("+")):
        return max(window, season + 1)
    return window


def head_rows(state: dict) -> int:
    """How many first rows a new file (eval or predict --data) must hold to start its
    smoothing states (ets.restart, smoothing.restart), rows that are never a forecast
    target: the rows a forecast reads (history_rows), or what a seasonal restart needs
    (ets.restart_rows) if that is more. Fewer rows would leave the seasonal states at
    the phase of the training rows' start, which a file starting elsewhere in the season
    does not share."""
    season = int(state.get("season", 1))
    return (max(history_rows(state), ets.restart_rows(season)) if season > 1
            else state["window"])


def window_origins(start: int, end: int, window: int, horizon: int) -> np.ndarray:
    """Origins of every window whose H targets lie in rows [start, end): (B,) int64."""
    first = max(start - 1, window - 1)
    last = end - horizon - 1
    return np.arange(first, last + 1, dtype=np.int64)


def fit_scaler(values: np.ndarray, observed: np.ndarray, kind: str,
               columns: list[str]) -> dict:
    """Per-column scaler fitted on the given rows' OBSERVED values (gap fills excluded).

    values (N, C) and observed (N, C) hold only the training rows: the caller slices them,
    which is what keeps validation and test data out of the scaler.
    standard: (v - mean) / std; minmax: (v - min) / (max - min), so training data is in [0, 1].
    """
    if kind not in SCALINGS:
        raise UserError(f"unknown scaling {kind!r}; known: {', '.join(SCALINGS)}")
    center, scale = [], []
    for c, name in enumerate(columns):
        column = values[observed[:, c], c]
        if column.size == 0:
            raise UserError(f"column {name!r} has no values in the training split")
        if kind == "standard":
            lo, spread = float(column.mean()), float(column.std())
        else:
            lo, spread = float(column.min()), float(column.max() - column.min())
        if spread == 0.0:
            raise UserError(f"column {name!r} is constant in the training split "
                            f"(every value is {column[0]:g}): nothing to learn from")
        center.append(lo)
        scale.append(spread)
    return {"kind": kind, "center": center, "scale": scale}


NOISE = 2.0 ** -40  # a change below this share of its values is float64 noise (~1e-12)


def check_resolution(values: np.ndarray, observed: np.ndarray, scaler: dict,
                     columns: list[str], lines: np.ndarray, label: str) -> None:
    """UserError for a training column so wide (one value many orders of magnitude beyond
    the rest, such as 1e30 among values near 10) that scaling loses its typical change
    between rows to float64 rounding: every forecast and baseline is computed in scaled
    units, where such a column's ordinary values are all one number (a naive forecast of
    10 would read as 0). values, observed (N, C): the training rows; lines (N,) their
    file lines."""
    center, spread = np.asarray(scaler["center"]), np.asarray(scaler["scale"])
    for c, name in enumerate(columns):
        rows = np.flatnonzero(observed[:, c])
        column = values[rows, c]
        pairs = observed[1:, c] & observed[:-1, c]
        steps = np.abs(np.diff(values[:, c]))[pairs]
        # Changes that are float64 noise of their own values (a total summed from parts,
        # 27.02 then 27.020000000000003) are no change: counted, they would make the
        # typical change of a column that mostly holds still 1e-14, below any rounding.
        size = np.maximum(np.abs(values[1:, c]), np.abs(values[:-1, c]))[pairs]
        steps = steps[steps > NOISE * size]
        if column.size < 2 or steps.size == 0:
            continue
        back = (column - center[c]) / spread[c] * spread[c] + center[c]
        lost = float(np.max(np.abs(back - column)))
        typical = float(np.median(steps))
        if lost > 1e-3 * typical:
            far = rows[int(np.argmax(np.abs(column - np.median(column))))]
            raise UserError(
                f"column {name!r} of {label!r}: {values[far, c]:g} at line "
                f"{int(lines[far])} is so far from the other training values that, scaled "
                f"with them, their typical change between rows ({typical:g}) is lost to "
                f"rounding (look for a misplaced or mis-scaled value)")


def check_inputs_range(values: np.ndarray, observed: np.ndarray, scaler: dict,
                       columns: list[str], lines: np.ndarray, label: str,
                       ranges: dict) -> None:
    """UserError for a value of the file (in practice a validation or test row: the
    training rows' own spread bounds theirs) that, scaled with the training rows' scaler,
    lies beyond what the model's float32 inputs hold. The inputs take differences of two
    scaled values (relative and seasonal inputs), so half of float32's range is the limit.
    Checked before training: model_inputs would refuse it only at the first evaluation,
    or at eval and predict of a run that trained. values, observed (N, C): every row;
    lines (N,) their file lines; ranges: split_ranges, naming the row's split."""
    limit = float(np.finfo(np.float32).max) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.abs(scale(values, scaler))
    beyond = observed & (size > limit)
    if not beyond.any():
        return
    row, c = (int(i) for i in np.argwhere(beyond)[0])
    split = next(name for name, (start, end) in ranges.items() if start <= row < end)
    split = {"valid": "validation"}.get(split, split)
    raise UserError(f"column {columns[c]!r} of {label!r}: {values[row, c]:g} at line "
                    f"{int(lines[row])} (a {split} row) is so far from the training values "
                    f"that, scaled with them, it overflows the model's float32 inputs (look "
                    f"for a misplaced or mis-scaled value)")


def scale(values: np.ndarray, scaler: dict) -> np.ndarray:
    """(..., C) original units -> (..., C) scaled units."""
    return (values - np.asarray(scaler["center"])) / np.asarray(scaler["scale"])


# unscale's zero: a result within this many ulps of |product| + |center| is an original 0
ROUND_TRIP_ULPS = 4


def unscale(values: np.ndarray, scaler: dict) -> np.ndarray:
    """(..., C) scaled units -> (..., C) original units. A result within the float64
    rounding of the round trip (a few ulps of the center and the product it cancels) is
    exactly 0: an original 0, scaled and back, would otherwise return as a residue such
    as -6.9e-18, which sMAPE (y = f = 0 counts 0) scores as a 200% miss and a
    multiplicative ETS fit (values <= 0) reads as either sign. An infinite result stays
    infinite (its residue bound is infinite too)."""
    center = np.asarray(scaler["center"])
    product = values * np.asarray(scaler["scale"])
    result = product + center
    residue = ROUND_TRIP_ULPS * np.finfo(np.float64).eps * (np.abs(product) + np.abs(center))
    return np.where(np.isfinite(result) & (np.abs(result) <= residue), 0.0, result)


def last_observed(observed: np.ndarray) -> np.ndarray:
    """(N, C) int64: the last row at or before each row where the column was observed, -1
    when there is none yet."""
    rows = np.arange(observed.shape[0])[:, None]
    return np.maximum.accumulate(np.where(observed, rows, -1), axis=0)


def known_at(values: np.ndarray, last_seen: np.ndarray, rows: np.ndarray,
             origins: np.ndarray) -> np.ndarray:
    """values[rows] as they were known at each origin: (B, K, C).

    rows (B, K) are all <= their origin. A gap filled by interpolation borrows the next
    observed value, which lies in the future when that observation comes after the origin:
    such trailing gaps hold the origin's last observed value instead, so no window ever
    sees past its origin. values (N, C) gap-filled; last_seen (N, C) from last_observed().
    """
    return values[known_rows(last_seen, rows, origins), np.arange(values.shape[1])]


def known_rows(last_seen: np.ndarray, rows: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """(B, K, C) the row known_at reads for each of rows (B, K) and column: the row
    itself, or the origin's last observed row of the column when the row is a trailing
    gap."""
    last = last_seen[origins]  # (B, C)
    stale = (rows[:, :, None] > last[:, None, :]) & (last[:, None, :] >= 0)  # (B, K, C)
    return np.where(stale, last[:, None, :], rows[:, :, None])


def input_rows(origins: np.ndarray, window: int) -> np.ndarray:
    """(B, W) row index of every input step."""
    return origins[:, None] + np.arange(1 - window, 1)[None, :]


def resolve_inputs(mode: str | None, train_filled: np.ndarray) -> str:
    """The input mode of a task state. A training run never prepares one with --inputs
    auto (it trains a candidate of each mode: ForecastTask.candidates); a state prepared
    on its own resolves auto as a guess: "relative" when a least-squares line explains at
    least TREND_SHARE of the training rows' variance (mean over columns: a trending
    series such as co2 would leave the level range seen in training), else "level".
    Other modes are kept."""
    if mode not in (None, "auto"):
        return mode
    t = np.arange(train_filled.shape[0], dtype=np.float64)
    shares = []
    for column in train_filled.T:
        residual = column - np.polyval(np.polyfit(t, column, 1), t)
        shares.append(1.0 - residual.var() / column.var())
    return "relative" if float(np.mean(shares)) >= TREND_SHARE else "level"


def relative_inputs(state: dict) -> bool:
    """Whether a run feeds windows relative to their last value (--inputs relative)."""
    return state.get("inputs", "level") == "relative"


def input_windows(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                  window: int, relative: bool = False, dtype=np.float32) -> np.ndarray:
    """scaled (N, C) -> x (W, B, C) float32 (or ``dtype``), C-contiguous, time-major, as
    known at origin.

    ``relative`` subtracts each window's last value: the model sees the window's shape, not
    its level (a trending series then never leaves the range seen in training).
    """
    inputs = known_at(scaled, last_seen, input_rows(origins, window), origins)  # (B, W, C)
    if relative:
        inputs = inputs - inputs[:, -1:, :]
    return np.ascontiguousarray(inputs.transpose(1, 0, 2), dtype=dtype)


def target_rows(origins: np.ndarray, horizon: int) -> np.ndarray:
    """(B, H) row index of every target."""
    return origins[:, None] + np.arange(1, horizon + 1)[None, :]


def seasonal_inputs(state: dict) -> bool:
    """Whether the model's input has the window's seasonal differences as extra columns
    (runs whose anchors are seasonal: anchors.py)."""
    return bool(state.get("seasonal_inputs", False))


def lagged(scaled: np.ndarray, last_seen: np.ndarray, rows: np.ndarray,
           origins: np.ndarray) -> np.ndarray:
    """known_at for rows that may lie before the first row: those take row 0 (no history
    is older; only the earliest training windows of a long season reach there)."""
    return known_at(scaled, last_seen, np.maximum(rows, 0), origins)


def hybrid_offset(state: dict) -> int:
    """The first of the hybrid model's C input columns (model_inputs' order)."""
    columns = len(state["columns"])
    return 2 * columns if seasonal_inputs(state) else columns


def hybrid_model(state: dict) -> bool:
    """Whether a run is a hybrid model (--model hybrid: an ETS anchor; esrnn: the learned
    smoothing's), whose inputs are normalised by the smoothing's level and seasonal
    index."""
    return state.get("model", "rnn") in ("hybrid", "esrnn")


def smoothing_components(scaled: np.ndarray, state: dict):
    """(forecast (N, H, C), level (N, C), deseasonalised (N, C)) scaled, of the hybrid's
    smoothing: the learned one (esrnn) or ETS (hybrid)."""
    if state.get("model") == "esrnn":
        return smoothing.components(scaled, state["es"], int(state["horizon"]))
    return ets.scaled_components(scaled, state)


def advanced(state: dict, scaled: np.ndarray) -> dict:
    """The run's state for the rows after ``scaled`` (K, C), the first rows of a series:
    the smoothing the hybrid model reads (smoothing_components) moved on past them
    (smoothing.advance, ets.advance), so that its forecasts from the later rows alone are
    those from the whole series. Other models read no smoothing state."""
    if state.get("model") == "esrnn":
        return {**state, "es": smoothing.advance(state["es"], scaled)}
    if hybrid_model(state):
        return {**state, "ets": ets.advance(state["ets"], unscale(scaled, state["scaler"]))}
    return state


def model_inputs(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                 state: dict, calendar: np.ndarray | None = None,
                 dtype=np.float32) -> np.ndarray:
    """The run's model input for these origins: (W, B, C), then with seasonal inputs C
    more columns, y(s) - y(s-m) of every window step s, then for the hybrid model C more,
    every step's deseasonalised value less the ETS level at the origin (ES-RNN's
    per-window normalisation, additive in scaled units), then with calendar cycles their
    features (calendar.py) of every window step: calendar (N, F) holds them per row.
    float32, or ``dtype`` (float64 for the gradient checks)."""
    with np.errstate(over="ignore"):  # a value beyond dtype's range: checked below
        x = _model_inputs(scaled, last_seen, origins, state, calendar, dtype)
    if np.isinf(x).any():  # the inputs are finite or NaN (a gap before any observation)
        raise UserError(f"the data holds values far outside the range the run was trained "
                        f"on: scaled as in training they overflow the model's "
                        f"{np.dtype(dtype).name} inputs (look for a misplaced or mis-scaled "
                        f"value)")
    return x


def _model_inputs(scaled, last_seen, origins, state, calendar, dtype):
    """model_inputs before the range check."""
    window = state["window"]
    x = input_windows(scaled, last_seen, origins, window, relative_inputs(state), dtype)
    parts = [x]
    rows = input_rows(origins, window)
    if seasonal_inputs(state):
        diff = (known_at(scaled, last_seen, rows, origins)
                - lagged(scaled, last_seen, rows - state["season"], origins))  # (B, W, C)
        parts.append(diff.transpose(1, 0, 2).astype(dtype))
    if hybrid_model(state):
        _, level, deseasonalised = smoothing_components(scaled, state)
        remainder = (known_at(deseasonalised, last_seen, rows, origins)
                     - known_at(level, last_seen, origins[:, None], origins))  # (B, W, C)
        parts.append(remainder.transpose(1, 0, 2).astype(dtype))
    if state.get("calendar"):
        if calendar is None:
            raise ValueError("this run's inputs have calendar features: pass calendar")
        parts.append(calendar[rows].transpose(1, 0, 2).astype(dtype))  # (W, B, F)
    if len(parts) == 1:
        return x
    return np.ascontiguousarray(np.concatenate(parts, axis=2))
