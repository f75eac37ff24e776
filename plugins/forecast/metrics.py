"""Forecast accuracy metrics, the naive baselines and season detection.

Dimension legend: N rows, C value columns, B forecast origins (windows), H horizon.
All metrics are in the series' original units (no scaling).

- RMSE, MAE: the usual, over every (origin, step) pair.
- MAPE: mean |e| / |y| in percent, over the actual values that are not 0 (undefined there:
  a column whose actuals are all 0 has none, and the mean over columns leaves it out).
- sMAPE: mean 2|e| / (|y| + |f|) in percent, a pair with y = f = 0 counting as 0.
- MASE: MAE divided by the in-sample MAE of the one-step naive forecast on the TRAINING
  rows (Hyndman & Koehler 2006, m = 1): below 1 means more accurate than predicting "same
  as the previous step" was in training.
With several columns each metric is computed per column and averaged (the per-column values
are reported too, as "rmse[column]").
"""
from __future__ import annotations

import numpy as np

from recurrent.errors import UserError

METRICS = ("rmse", "mae", "mape", "smape", "mase")


def naive_scale(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(C,) MASE denominators: mean |y_t - y_{t-1}| over consecutive observed pairs.

    values, observed: (N, C) of the training rows only.
    """
    both = observed[1:] & observed[:-1]  # (N-1, C)
    steps = np.abs(np.diff(values, axis=0))  # (N-1, C)
    scale = np.empty(values.shape[1])
    for c in range(values.shape[1]):
        pairs = steps[both[:, c], c]
        scale[c] = pairs.mean() if pairs.size else np.nan
    return scale


def check_scale(scale: np.ndarray, observed: np.ndarray, columns: list[str],
                label: str) -> None:
    """UserError for a column whose MASE denominator (naive_scale of the training rows,
    ``observed`` their (N, C) mask) is undefined or zero: MASE, the metric every choice
    and report rests on, would be NaN."""
    for c, name in enumerate(columns):
        if np.isfinite(scale[c]) and scale[c] > 0:
            continue
        why = ("no two consecutive training rows are both observed"
               if not (observed[1:, c] & observed[:-1, c]).any()
               else "the observed training values never change from one row to the next")
        raise UserError(f"column {name!r} of {label!r}: MASE is scaled by the naive "
                        f"forecast's error on the training rows, but {why}")


def check_mape_selection(chosen, values: np.ndarray, observed: np.ndarray,
                         columns: list[str], label: str) -> None:
    """UserError when --select-by (``chosen``, a recurrent.selection.Selection) picks by
    MAPE ("mape", or "mape[column]") and a column it reads has no non-zero observed value
    among the validation rows (values, observed: (N, C) of those rows): MAPE leaves zero
    actuals out, so it would be NaN at every evaluation and no checkpoint or candidate
    could be chosen by it."""
    named = {"mape": list(columns), **{f"mape[{name}]": [name] for name in columns}}
    for name in named.get(chosen.metric, []):
        c = columns.index(name)
        if not np.any(values[observed[:, c], c] != 0):
            raise UserError(f"--select-by {chosen.text}: every observed value of column "
                            f"{name!r} in the validation split of {label!r} is 0, and MAPE "
                            f"scores non-zero actuals only; select by smape, mase or the "
                            f"loss")


def column_metrics(actual: np.ndarray, forecast: np.ndarray, mase_scale: float) -> dict:
    """Metrics of one column. actual, forecast: 1-D, same length, original units."""
    error = forecast - actual
    abs_error = np.abs(error)
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(forecast)
    smape_terms = np.divide(2 * abs_error, denominator, out=np.zeros_like(abs_error),
                            where=denominator > 0)
    mae = float(abs_error.mean())
    return {
        "rmse": float(np.sqrt(np.mean(error ** 2))),
        "mae": mae,
        "mape": float(100 * np.mean(abs_error[nonzero] / np.abs(actual[nonzero])))
        if nonzero.any() else float("nan"),
        "smape": float(100 * smape_terms.mean()),
        "mase": mae / float(mase_scale) if mase_scale > 0 else float("nan"),
    }


def forecast_metrics(actual: np.ndarray, forecast: np.ndarray, mase_scale: np.ndarray,
                     columns: list[str], mask: np.ndarray | None = None) -> dict:
    """Metrics of (B, H, C) forecasts against (B, H, C) actuals.

    mask (B, H, C) bool selects the pairs that count (actuals that were observed, not
    gap-filled). Returns the column means, plus per-column keys when C > 1.
    """
    if mask is None:
        mask = np.ones(actual.shape, dtype=bool)
    per_column = []
    for c in range(actual.shape[-1]):
        keep = mask[..., c]
        if not keep.any():
            raise ValueError(f"column {columns[c]!r} has no observed actual values to score")
        per_column.append(column_metrics(actual[..., c][keep], forecast[..., c][keep],
                                         mase_scale[c]))
    result = {name: float(np.mean([m[name] for m in per_column])) for name in METRICS}
    # MAPE leaves out what it cannot score, a column of zero actuals as a zero actual:
    # the mean over the columns that have a figure (nan when none has)
    defined = [m["mape"] for m in per_column if not np.isnan(m["mape"])]
    result["mape"] = float(np.mean(defined)) if defined else float("nan")
    if len(columns) > 1:
        for column, m in zip(columns, per_column):
            for name in METRICS:
                result[f"{name}[{column}]"] = m[name]
    return result


def window_mase(actual: np.ndarray, forecast: np.ndarray, mase_scale: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """(B,) each window's share of forecast_metrics' MASE, times B: its absolute errors
    over observed pairs divided by the column's MASE scale and by the column's count of
    observed pairs over all B windows, summed, times B / C. Their mean over the windows is
    that MASE exactly, gaps or not; a window with no observed pair scores 0. actual,
    forecast, mask: (B, H, C)."""
    errors = np.where(mask, np.abs(forecast - actual), 0.0) / np.asarray(mase_scale)
    counts = mask.sum(axis=(0, 1))  # (C,) observed pairs per column over the split
    per_column = errors.sum(axis=1) / np.where(counts, counts, 1)  # (B, C)
    return per_column.sum(axis=1) * len(actual) / actual.shape[-1]


def spread(values) -> dict:
    """Mean, standard deviation (population), minimum and maximum of a list of floats (the
    NaN ones left out, e.g. a MAPE of all-zero actuals), and "count": how many it is over."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"),
                "max": float("nan"), "count": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "max": float(v.max()), "count": int(v.size)}


def naive_forecast(last: np.ndarray, horizon: int) -> np.ndarray:
    """Last known value repeated: last (B, C) -> (B, H, C)."""
    return np.repeat(last[:, None, :], horizon, axis=1)


def seasonal_rows(origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Rows the seasonal-naive forecast copies: the same step of the last season seen,
    f(t+h) = y(t+h - m*ceil(h/m)). -> (B, H), every row <= its origin t.

    Needs origins >= season - 1 (a full season of history); the caller checks.
    """
    steps = np.arange(1, horizon + 1)
    lag = season * -(-steps // season)  # m * ceil(h / m)
    return origins[:, None] + steps[None, :] - lag[None, :]


def detect_season(values: np.ndarray, min_correlation: float = 0.3) -> int:
    """Season length of a 1-D series by autocorrelation, or 1 when there is none.

    A least-squares line is removed first (a trend would make every lag look correlated);
    the season is the lag with the highest local maximum of the autocorrelation function
    among lags 2 .. N // 3, if that maximum reaches ``min_correlation``.
    """
    n = values.shape[0]
    max_lag = min(n // 3, n - 2)
    if max_lag < 3:
        return 1
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, values, 1)
    residual = values - (slope * t + intercept)
    residual = residual - residual.mean()
    power = float(residual @ residual)
    if power == 0.0:
        return 1
    acf = np.array([residual[:n - k] @ residual[k:] / power for k in range(max_lag + 2)])
    peaks = [k for k in range(2, max_lag + 1) if acf[k] > acf[k - 1] and acf[k] >= acf[k + 1]]
    if not peaks:
        return 1
    best = max(peaks, key=lambda k: acf[k])
    return int(best) if acf[best] >= min_correlation else 1


def seasonal_error(values: np.ndarray, season: int) -> float:
    """Mean |y_t - y_{t-m}| of a 1-D series: how well the one-season-back value forecasts
    it (m = 1: the last value)."""
    return float(np.mean(np.abs(values[season:] - values[:-season])))


def choose_season(values: np.ndarray, candidates, start: int = 0) -> int:
    """Among candidate season lengths, the one whose seasonal-naive forecast has the
    smallest mean absolute error on the rows of ``values`` (1-D) from ``start`` on, each
    forecast from the rows before it (start 0: all of them; the forecast task passes the
    rows up to the end of the validation split and the validation split's first row).
    Seasons that do not fit twice into the rows before ``start`` (all rows when start is
    0) are skipped, and 1 is the answer when none is left."""
    before = start or len(values)
    usable = [m for m in dict.fromkeys(candidates) if 1 <= m <= before // 2]
    return min(usable, key=lambda m: (seasonal_error(values[max(start - m, 0):], m), m)
               ) if usable else 1
