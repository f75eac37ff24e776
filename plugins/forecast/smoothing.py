"""Learned exponential smoothing (ES-RNN's level and season recursion, Smyl 2020), with
its gradients: the anchor of --model esrnn.

Dimension legend: N rows, H horizon, m season, K origins scored in the loss.

Per value column, in scaled units (additive: scaled values may be negative), with
parameters theta = (a, g, s_0 .. s_{m-1}):

    alpha = sigmoid(a), gamma = sigmoid(g)             level and seasonal smoothing
    S[0:m] = s                                          initial seasonal indices
    l[-1] = y[0] - S[0]
    l[t] = alpha * (y[t] - S[t]) + (1 - alpha) * l[t-1]
    S[t+m] = gamma * (y[t] - l[t]) + (1 - gamma) * S[t]
    forecast from origin t, step k = 1..H:  l[t] + S[t + 1 + (k-1) mod m]

(without a season, m = 1 and S stays 0: simple exponential smoothing). A fit moved on past
the first rows of a series (advance) carries the states the recursion held after them:
S[0:m] the indices of the next m rows, and l[-1] the level of the last row passed
("level"), so that its recursion over the later rows alone repeats, operation for
operation, that over the whole series. The recursion runs over the rows in the forward
pass; loss_and_grad() gives the mean squared error of the H-step forecasts of every
origin of the rows given and its gradient with respect to theta, by reverse-mode
differentiation of the recursion (float64). Both loops over the rows, the recursion and
its reverse pass, are compiled (_smoothing.pyx), operation for operation as Python
statements would run them: the same doubles. fit() learns theta on the
training rows by minimising that multi-step loss (scipy's L-BFGS-B with the analytic
gradient): unlike statsmodels' ETS (ets.py), which maximises the one-step likelihood, the
coefficients are chosen for the run's horizon.
"""
from __future__ import annotations

import json

import numpy as np

from recurrent import schema
from recurrent.memo import Kept, frozen, rows_key

from . import _smoothing, ets

MIN_ROWS = 10  # fewer training rows: no fit
MAX_ITER = 200


def check_fit(fit, where: str) -> None:
    """ValueError unless ``fit`` is a fit as fit_column makes it (a run's saved state
    holds them): its season and finite theta, two coefficients and, with a season, its
    initial indices."""
    schema.check(fit, schema.fields({"season": schema.at_least(1),
                                     "theta": schema.list_of(schema.finite)}), where)
    expected = 2 + (fit["season"] if fit["season"] > 1 else 0)
    schema.check(fit["theta"], schema.list_of(schema.finite, size=expected), f"{where}.theta")


def _sigmoid(v: float) -> float:
    # exp(-v) overflows to inf for a very negative v (coefficients a diverging run's update
    # made huge), giving the sigmoid's limit 0 exactly: no warning is due
    with np.errstate(over="ignore"):
        return float(1.0 / (1.0 + np.exp(-v)))


def _run(y: np.ndarray, theta: np.ndarray, season: int, before: float | None = None):
    """The recursion: (level (N,), S (N+m,), alpha, gamma), from the level ``before`` the
    first row (a moved fit's "level"; None at a series' start: y[0] - S[0])."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    n, m = len(y), season
    alpha, gamma = _sigmoid(theta[0]), _sigmoid(theta[1])
    S = np.zeros(n + m)
    if m > 1:
        S[:m] = theta[2:2 + m]
    level = np.empty(n)
    _smoothing.forward(y, S, level, alpha, gamma, m, before)  # the loop over the rows, compiled
    return level, S, alpha, gamma


def _float64(a: np.ndarray) -> np.ndarray:
    """a itself when a writable contiguous float64 array, else a float64 copy."""
    if (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
            and a.flags.writeable):
        return a
    return np.array(a, dtype=np.float64)


def _season_rows(origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(K, H) index into S of each origin's step k: t + 1 + (k-1) mod m."""
    steps = np.arange(horizon)
    return origins[:, None] + 1 + (steps % max(season, 1))[None, :]


def forecast_table(y: np.ndarray, theta: np.ndarray, season: int, horizon: int,
                   before: float | None = None):
    """y (N,) -> (forecast (N, H) from every row as origin, level (N,), deseasonalised
    (N,): y[t] - S[t], the value without the seasonal index known before row t), the
    recursion started from the level ``before`` (_run)."""
    level, S, _, _ = _run(np.asarray(y, dtype=np.float64), theta, season, before)
    rows = _season_rows(np.arange(len(y)), horizon, season)
    forecast = level[:, None] + (S[rows] if season > 1 else 0.0)
    return forecast, level, y - S[:len(y)]


def loss_and_grad(y: np.ndarray, theta: np.ndarray, season: int, horizon: int):
    """(loss, d loss / d theta): the mean squared error of the H-step forecasts from every
    origin t with t + H < N, against y (N,) float64."""
    y = np.asarray(y, dtype=np.float64)
    n, m = len(y), season
    level, S, alpha, gamma = _run(y, theta, m)
    origins = np.arange(n - horizon)
    targets = y[origins[:, None] + 1 + np.arange(horizon)[None, :]]  # (K, H)
    rows = _season_rows(origins, horizon, m)
    forecast = level[origins][:, None] + (S[rows] if m > 1 else 0.0)
    err = forecast - targets
    loss = float(np.mean(err ** 2))
    d_forecast = 2.0 * err / err.size
    d_level = np.zeros(n)
    d_level[origins] += d_forecast.sum(axis=1)
    d_S = np.zeros(n + m)
    if m > 1:
        np.add.at(d_S, rows, d_forecast)
    return loss, reverse(y, theta, m, level, S, d_level, d_S)


def reverse(y: np.ndarray, theta: np.ndarray, season: int, level: np.ndarray,
            S: np.ndarray, d_level: np.ndarray, d_S: np.ndarray) -> np.ndarray:
    """d / d theta of any function of the recursion's outputs, given its gradients
    d_level (N,) on the levels and d_S (N+m,) on the seasonal indices (both consumed:
    the recursion's reverse pass accumulates into them, in float64: gradients of another
    type are accumulated in a float64 copy and written back once); level and S from
    _run(y, theta, season)."""
    m = season
    alpha, gamma = _sigmoid(theta[0]), _sigmoid(theta[1])
    # the loop over the rows, compiled: float64 contiguous work arrays, copied back into
    # the caller's gradients when they are not already such arrays
    work_level, work_S = _float64(d_level), _float64(d_S)
    d_alpha, d_gamma = _smoothing.backward(
        np.ascontiguousarray(y, dtype=np.float64), np.ascontiguousarray(level, np.float64),
        np.ascontiguousarray(S, np.float64), work_level, work_S, alpha, gamma, m)
    if work_level is not d_level:
        d_level[...] = work_level
    if work_S is not d_S:
        d_S[...] = work_S
    grad = np.zeros(len(theta), dtype=np.float64)
    grad[0] = d_alpha * alpha * (1.0 - alpha)
    grad[1] = d_gamma * gamma * (1.0 - gamma)
    if m > 1:
        grad[2:2 + m] = d_S[:m]
    return grad


def initial_theta(y: np.ndarray, season: int) -> np.ndarray:
    """alpha 0.3, gamma 0.1, the first season's deviations from its mean."""
    theta = np.zeros(2 + (season if season > 1 else 0))
    theta[0], theta[1] = np.log(0.3 / 0.7), np.log(0.1 / 0.9)
    if season > 1:
        first = np.asarray(y[:season], dtype=np.float64)
        theta[2:] = first - first.mean()
    return theta


def fit_column(y: np.ndarray, season: int, horizon: int) -> dict | None:
    """theta learned on one column's training rows (1-D, scaled units), without a season
    (m = 1) when the rows hold fewer than two seasons and a horizon, None when they are
    fewer than MIN_ROWS or the horizon + 2."""
    from scipy.optimize import minimize
    y = np.asarray(y, dtype=np.float64)
    m = season if season > 1 and len(y) >= 2 * season + horizon + 1 else 1
    if len(y) < max(MIN_ROWS, horizon + 2) or not np.all(np.isfinite(y)):
        return None
    result = minimize(lambda th: loss_and_grad(y, th, m, horizon), initial_theta(y, m),
                      jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    theta = np.asarray(result.x, dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        return None
    return {"season": int(m), "alpha": _sigmoid(theta[0]), "gamma": _sigmoid(theta[1]),
            "theta": [float(v) for v in theta], "loss": float(result.fun)}


def fit(train_scaled: np.ndarray, season: int, horizon: int) -> list:
    """Per column of train_scaled (N_train, C): fit_column."""
    return [fit_column(train_scaled[:, c], season, horizon)
            for c in range(train_scaled.shape[1])]


def restart(fits: list, head: np.ndarray) -> list:
    """The fits moved to a series that starts elsewhere (a recent file given to eval or
    predict --data), from its first rows head (K, C) scaled, K = windows.head_rows (rows
    that are never a forecast target): the learned coefficients are kept, the initial
    seasonal indices become the head's first season's deviations from its mean (the
    learned ones belong to the phase of the training rows' first row); with fewer rows
    than a season they are kept."""
    moved = []
    for c, f in enumerate(fits):
        if f is None or f["season"] <= 1 or len(head) < f["season"]:
            moved.append(f)
            continue
        first = np.asarray(head[:f["season"], c], dtype=np.float64)
        theta = [*f["theta"][:2], *(float(v) for v in first - first.mean())]
        moved.append({**f, "theta": theta})
    return moved


def advance(fits: list, rows: np.ndarray) -> list:
    """The fits moved on past ``rows`` (K, C) scaled, the first rows of the series they
    run over (K may be 0): the coefficients kept, S[0:m] the indices the recursion holds
    for the next m rows and "level" its level at the last of these rows, so that the
    recursion over the rows after them alone gives the levels, indices and forecasts the
    recursion over all the rows gives there (the same operations on the same doubles).
    Made for forecasts (components): components_grad differentiates the recursion from
    a series' start."""
    if len(rows) == 0:
        return fits
    moved = []
    for c, f in enumerate(fits):
        if f is None:
            moved.append(None)
            continue
        m = int(f["season"])
        level, S, _, _ = _run(rows[:, c], np.asarray(f["theta"]), m, f.get("level"))
        ahead = S[len(rows):len(rows) + m] if m > 1 else []
        moved.append({**f, "theta": [*f["theta"][:2], *(float(v) for v in ahead)],
                      "level": float(level[-1])})
    return moved


_MEMO = Kept(4)


def components(scaled: np.ndarray, fits: list, horizon: int):
    """scaled (N, C) -> (forecast (N, H, C), level (N, C), deseasonalised (N, C)) under
    the learned fits; a column without a fit keeps its last value as forecast and level.
    Memoised on the rows' bytes (training calls it per batch); the arrays are
    read-only, shared by every caller."""
    scaled = np.ascontiguousarray(scaled, dtype=np.float64)
    key = (rows_key(scaled), json.dumps(fits, sort_keys=True), horizon)
    if key not in _MEMO:
        forecast = np.repeat(scaled[:, None, :], horizon, axis=1)
        level, deseason = scaled.copy(), scaled.copy()
        for c, f in enumerate(fits):
            if f is not None:
                fc, lv, ds = forecast_table(scaled[:, c], np.asarray(f["theta"]),
                                            f["season"], horizon, f.get("level"))
                forecast[:, :, c], level[:, c], deseason[:, c] = fc, lv, ds
        _MEMO[key] = frozen((forecast, level, deseason))
    return _MEMO.get(key)


def components_grad(scaled: np.ndarray, fits: list, d_forecast: np.ndarray,
                    d_level: np.ndarray, d_deseason: np.ndarray) -> list:
    """Per column, d / d theta (float64; None for a column without a fit) of a function
    of components(scaled, fits, K)'s outputs, from its gradients on them: d_forecast
    (N, K, C), d_level (N, C) and d_deseason (N, C)."""
    scaled = np.asarray(scaled, dtype=np.float64)
    n, steps = scaled.shape[0], d_forecast.shape[1]
    grads = []
    for c, f in enumerate(fits):
        if f is None:
            grads.append(None)
            continue
        y, m, theta = scaled[:, c], int(f["season"]), np.asarray(f["theta"], np.float64)
        level, S, _, _ = _run(y, theta, m)
        d_l = d_level[:, c] + d_forecast[:, :, c].sum(axis=1)
        d_S = np.zeros(n + m)
        if m > 1:  # forecast[t, k] = l[t] + S[t + 1 + k mod m]; deseasonalised = y - S
            np.add.at(d_S, _season_rows(np.arange(n), steps, m), d_forecast[:, :, c])
            d_S[:n] -= d_deseason[:, c]
        grads.append(reverse(y, theta, m, level, S, d_l, d_S))
    return grads


def forecast_at(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                state: dict) -> np.ndarray:
    """(B, H, C) scaled: the learned smoothing's forecast of each origin's H targets as
    known at the origin (an origin inside a gap forecasts from the last observed row, as
    ets.origin_forecasts does). The recursion runs from the first of the rows given."""
    return ets.origin_forecasts(lambda h: components(scaled, state["es"], h)[0],
                                last_seen, origins, int(state["horizon"]))
