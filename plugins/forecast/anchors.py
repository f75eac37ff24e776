"""Anchors and the choices made against the baselines: what the forecast head corrects.

Dimension legend: N rows, C value columns, B windows (origins), H horizon, A anchors.

With --difference the head predicts, for each step h, the change from an anchor forecast
that needs no training; a zero output IS that forecast. The anchors:
  "last"            y(t): the naive forecast;
  "seasonal"        y(t+h - m*ceil(h/m)): the seasonal-naive forecast;
  "seasonal_drift"  seasonal naive plus the last seasonal change y(t) - y(t-m): the naive
                    forecast of the seasonally differenced series (a trending seasonal
                    series such as monthly airline passengers);
  "seasonal_damped" seasonal naive plus a share b[h] of that change, b[h] in [0, 1] per
                    step and column fitted on the training windows (fit_damping): the
                    departure from the last season that fades with the lead time (an
                    hourly temperature's from yesterday's); b = 0 is seasonal naive,
                    b = 1 seasonal_drift;
  "ets"             the forecast of the run's exponential smoothing (ets.py), fitted on the
                    training rows and filtered up to the origin: the anchor of the hybrid
                    model (--model hybrid), which re-levels and re-seasonalises the
                    network's correction as ES-RNN does.
A run whose anchors are seasonal also feeds the seasonal differences y(s) - y(s-m) of the
window as extra input columns (windows.model_inputs), so the model sees what it corrects.

Three choices are made against the baselines, never on test rows:
- choose_anchors, before training: per step, the anchor with the smallest error on the
  training windows, a seasonal one only when clearly better than the last value
  (SEASONAL_MARGIN).
- choose_model, before training (--model auto): among the anchors choose_anchors
  picked (the plain network), the ETS forecast and the mean of the two per step
  ("ets+seasonal"...; averaging forecasts of different kinds is the classic
  combination of the M competitions), and the learned smoothing's forecast ("es"), the
  one with the smallest MASE on the validation windows; the hybrid model when it
  involves ETS, esrnn on "es". Only the anchors are compared (no
  network is trained for it); the rows after the validation split are not read.
- choose_blend, after training: the share w of the head's correction kept,
  forecast = anchor + w * correction, w from BLEND_GRID by the validation MASE; w = 0 is
  the anchor itself, so a model that does not beat its anchor on validation falls back
  to it.
"""
from __future__ import annotations

import numpy as np

from . import ets
from . import smoothing
from . import windows as win
from .metrics import seasonal_rows

ANCHORS = ("last", "seasonal", "seasonal_drift", "seasonal_damped")
UNDAMPED = ANCHORS[:3]  # the anchors without fitted shares
SEASONAL_MARGIN = 0.8  # a seasonal anchor's training error relative to the last value's
BLEND_MODES = ("auto", "full")  # --blend
CHOICES = ("anchors", "ets", "combined", "es")  # the candidates choose_model scores
BLEND_GRID = (1.0, 0.75, 0.5, 0.25, 0.0)  # correction shares tried, the full model first
DAMPING_GRID = np.linspace(0.0, 1.0, 21)  # shares of the seasonal change tried per step


def run_anchors(state: dict) -> list[str] | None:
    """The run's anchor per horizon step, or None when the head predicts levels. Runs
    saved before anchors existed predict changes from the last value."""
    if not state.get("difference", True):
        return None
    return list(state.get("anchors") or ["last"] * int(state["horizon"]))


def uses_ets(state: dict) -> bool:
    """Whether a run's forecasts need its ETS fits (and so statsmodels): the hybrid model
    (ETS-normalised inputs) or an anchor with an "ets" part."""
    return state.get("model") == "hybrid" or any(
        "ets" in anchor.split("+") for anchor in run_anchors(state) or [])


def run_blend(state: dict) -> float:
    """The share of the head's correction a run's forecasts keep (1 until chosen)."""
    return float(state.get("blend", 1.0))


def anchor_forecast(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                    horizon: int, season: int, anchors: list[str],
                    state: dict | None = None) -> np.ndarray:
    """(B, H, C) the anchor forecast of every step, from what was known at each origin.
    A step's anchor "a+b" is the mean of anchors a and b (COMBINED). The "ets" anchor
    needs the run's ``state`` (its fits and scaler)."""
    last = win.known_at(scaled, last_seen, origins[:, None], origins)  # (B, 1, C)
    out = np.repeat(last, horizon, axis=1)  # (B, H, C)
    kinds = {part for a in anchors for part in a.split("+")}
    if kinds == {"last"}:
        return out
    parts = {"last": out.copy()}
    if "ets" in kinds:
        parts["ets"] = ets.forecast_at(scaled, last_seen, origins, state)  # (B, H, C)
    if "es" in kinds:
        parts["es"] = smoothing.forecast_at(scaled, last_seen, origins, state)
    if kinds & {"seasonal", "seasonal_drift", "seasonal_damped"}:
        seasonal = parts["last"]
        if season > 1:
            rows = seasonal_rows(origins, horizon, season)  # (B, H)
            seasonal = win.lagged(scaled, last_seen, rows, origins)  # (B, H, C)
        parts["seasonal"] = seasonal
        if kinds & {"seasonal_drift", "seasonal_damped"} and season > 1:
            drift = seasonal_change(scaled, last_seen, origins, season)[:, None, :]
            parts["seasonal_drift"] = seasonal + drift
            if "seasonal_damped" in kinds:
                parts["seasonal_damped"] = seasonal + np.asarray(state["damping"]) * drift
        else:
            parts["seasonal_drift"] = parts["seasonal_damped"] = seasonal
    for h, kind in enumerate(anchors):
        names = kind.split("+")
        out[:, h] = sum(parts[name][:, h] for name in names) / len(names)
    return out


def seasonal_change(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                    season: int) -> np.ndarray:
    """(B, C) the last seasonal change known at each origin, y(L) - y(L-m) with L the
    origin's last observed row of the column (the origin t itself when it is observed).
    With a gap just before the origin the value known at t is y(L), so the change is
    taken one season back from L: y(t-m) is a row of another phase of the season (rows
    before the first take row 0)."""
    columns = np.arange(scaled.shape[1])
    last = last_seen[origins]  # (B, C)
    rows = np.where(last >= 0, last, origins[:, None])
    return scaled[rows, columns] - scaled[np.maximum(rows - season, 0), columns]


def fit_damping(scaled: np.ndarray, observed: np.ndarray, origins: np.ndarray,
                horizon: int, season: int) -> list[list[float]]:
    """(H, C) the share b of the last seasonal change that seasonal_damped adds to the
    seasonal-naive forecast: per step and column, the DAMPING_GRID value with the smallest
    mean absolute error over the given (training) windows' observed targets (ties keep
    the smaller share). scaled, observed (N, C) gap-filled; rows past the targets unread."""
    columns = scaled.shape[1]
    if season <= 1:
        return [[0.0] * columns for _ in range(horizon)]
    last_seen = win.last_observed(observed)
    rows = win.target_rows(origins, horizon)
    actual, keep = scaled[rows], observed[rows]  # (B, H, C)
    seasonal = win.lagged(scaled, last_seen, seasonal_rows(origins, horizon, season),
                          origins)  # (B, H, C)
    drift = seasonal_change(scaled, last_seen, origins, season)[:, None, :]  # (B, 1, C)
    errors = np.stack([np.where(keep, np.abs(seasonal + b * drift - actual), 0.0).sum(axis=0)
                       for b in DAMPING_GRID])  # (G, H, C)
    return DAMPING_GRID[np.argmin(errors, axis=0)].tolist()


def anchor_errors(scaled: np.ndarray, observed: np.ndarray, origins: np.ndarray,
                  horizon: int, season: int, damping=None) -> np.ndarray:
    """(A, H) mean absolute error of every anchor (ANCHORS order) per step over the given
    windows' observed targets; seasonal_damped with ``damping`` (H, C), or fitted on the
    same windows. scaled (N, C) gap-filled; rows past the targets unread."""
    last_seen = win.last_observed(observed)
    rows = win.target_rows(origins, horizon)  # (B, H)
    actual, keep = scaled[rows], observed[rows]  # (B, H, C)
    if damping is None:
        damping = fit_damping(scaled, observed, origins, horizon, season)
    errors = []
    for kind in ANCHORS:
        forecast = anchor_forecast(scaled, last_seen, origins, horizon, season,
                                   [kind] * horizon, {"damping": damping})
        err = np.where(keep, np.abs(forecast - actual), 0.0).sum(axis=(0, 2))
        errors.append(err / np.maximum(keep.sum(axis=(0, 2)), 1))
    return np.stack(errors)


def choose_anchors(scaled: np.ndarray, observed: np.ndarray, origins: np.ndarray,
                   horizon: int, season: int, damping=None, kinds=ANCHORS) -> list[str]:
    """Per step, the anchor among ``kinds`` with the smallest mean absolute error on the
    given (training) windows' observed targets, a seasonal one only when its error is at
    most SEASONAL_MARGIN times the last value's; "last" without a season. seasonal_damped
    uses ``damping`` (H, C) or shares fitted on the same windows. scaled, observed (N, C)
    gap-filled, rows after the windows' targets unread."""
    if season <= 1:
        return ["last"] * horizon
    errors = anchor_errors(scaled, observed, origins, horizon, season, damping)  # (A, H)
    errors = np.where(np.isin(ANCHORS, kinds)[:, None], errors, np.inf)
    best = np.argmin(errors, axis=0)
    # A seasonal anchor must be clearly better than the last value: a cycle that is not a
    # fixed season (sunspots' 11 years or so) barely beats it and makes a worse model.
    clear = errors[best, np.arange(horizon)] <= SEASONAL_MARGIN * errors[0]
    return [ANCHORS[i] if ok else "last" for i, ok in zip(best, clear)]


def model_targets(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                  state: dict, dtype=np.float32) -> np.ndarray:
    """The head's training targets (B, H*C) float32 (or ``dtype``), step-major: levels,
    or the change from each step's anchor."""
    horizon = state["horizon"]
    targets = scaled[win.target_rows(origins, horizon)]  # (B, H, C)
    anchors = run_anchors(state)
    if anchors is not None:
        targets = targets - anchor_forecast(scaled, last_seen, origins, horizon,
                                            state["season"], anchors, state)
    return np.ascontiguousarray(targets.reshape(len(origins), -1), dtype=dtype)


def restarted(state: dict, filled: np.ndarray) -> dict:
    """A run's state for a series other than its training data (a recent file, as eval
    and predict --data read it), from its rows ``filled`` (N, C) original units,
    gap-filled: the smoothing its forecasts read (the ETS fits of the hybrid model or an
    "ets" anchor, the learned smoothing "es") restarted on the series' first
    windows.head_rows(state) rows (ets.restart, smoothing.restart), rows that are never
    a forecast target. The stored states belong to the training rows' first row and
    would forecast another series from the wrong level and seasonal phase. A run that
    reads no smoothing keeps its state."""
    head = np.asarray(filled, dtype=np.float64)[:win.head_rows(state)]
    if "es" in state:
        state = {**state, "es": restarted_es(state, head)}
    if uses_ets(state) and state.get("ets"):
        state = {**state, "ets": ets.restart(state["ets"], head)}
    return state


def restarted_es(state: dict, head: np.ndarray) -> list:
    """The learned smoothing's states restarted on a new series' first rows ``head``
    (original units, gap-filled), scaled as the run scales its inputs."""
    return smoothing.restart(state["es"], win.scale(head, state["scaler"]))


def model_forecasts(outputs: np.ndarray, scaled: np.ndarray, last_seen: np.ndarray,
                    origins: np.ndarray, state: dict, blend: float | None = None) -> np.ndarray:
    """Head outputs (B, H*C) -> scaled forecasts (B, H, C): model_targets inverted, the
    correction scaled by the run's blend (or ``blend`` when given)."""
    horizon = state["horizon"]
    forecasts = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), horizon, -1)
    anchors = run_anchors(state)
    if anchors is not None:
        w = run_blend(state) if blend is None else blend
        forecasts = w * forecasts + anchor_forecast(scaled, last_seen, origins, horizon,
                                                    state["season"], anchors, state)
    return forecasts


def scaled_mase(forecast: np.ndarray, actual: np.ndarray, observed: np.ndarray,
                scale: np.ndarray) -> float:
    """Mean over columns of the mean absolute error of (B, H, C) forecasts against the
    actual values (scaled units, observed ones only), each column divided by ``scale``
    (C,): the MASE when scale is the MASE denominator in scaled units."""
    err = np.abs(forecast - actual) / scale
    return float(np.mean([err[..., c][observed[..., c]].mean()
                          for c in range(err.shape[-1])]))


def choose_model(scaled: np.ndarray, observed: np.ndarray, origins: np.ndarray,
                 anchors: list[str], state: dict, scale: np.ndarray,
                 refined: list[str] | None = None) -> tuple[str, list[str], dict]:
    """(model "hybrid", "esrnn" or "rnn", its anchors, {"anchors": MASE[, "ets": MASE,
    "combined": MASE][, "es": MASE]}): the given (plain) anchors, the ETS forecast and
    their per-step mean (when the state has ETS fits), the learned smoothing's forecast
    (when it has those fits, "es"), whichever has the smallest MASE on the windows at
    ``origins`` (the validation windows; ties keep the earlier). The anchors returned
    for the plain and combined candidates are built from ``refined`` when given (the
    plain anchors with seasonal_damped steps: the kind of model is chosen on the
    undamped ones, see docs/forecast.md). scaled, observed (N, C) gap-filled rows up to
    the windows' last target; state holds horizon, season, scaler, ets, es and damping;
    scale (C,) the MASE denominators in scaled units."""
    horizon, season = state["horizon"], state["season"]
    last_seen = win.last_observed(observed)
    rows = win.target_rows(origins, horizon)
    actual, keep = scaled[rows], observed[rows]

    def candidates(plain):
        out = {"anchors": list(plain)}
        if state.get("ets") and any(f is not None for f in state["ets"]):
            out["ets"] = ["ets"] * horizon
            out["combined"] = [f"ets+{a}" for a in plain]
        if state.get("es") and any(f is not None for f in state["es"]):
            out["es"] = ["es"] * horizon
        return out

    compared = candidates(anchors)
    errors = {}
    for name, kinds in compared.items():
        forecast = anchor_forecast(scaled, last_seen, origins, horizon, season, kinds, state)
        errors[name] = scaled_mase(forecast, actual, keep, scale)
    best = min(errors, key=lambda name: (errors[name], list(compared).index(name)))
    model = {"anchors": "rnn", "es": "esrnn"}.get(best, "hybrid")
    return model, candidates(refined or anchors)[best], errors


def choose_blend(corrections: np.ndarray, anchor: np.ndarray, actual: np.ndarray,
                 observed: np.ndarray, scale: np.ndarray) -> float:
    """The share w in BLEND_GRID with the smallest mean absolute error of anchor +
    w * corrections against the actual values (all (B, H, C), scaled units, observed ones
    only), each column's error divided by ``scale`` (C,) as MASE does; ties keep the
    larger w."""
    best, best_error = BLEND_GRID[0], np.inf
    for w in BLEND_GRID:
        error = scaled_mase(anchor + w * corrections, actual, observed, scale)
        if error < best_error - 1e-12:
            best, best_error = w, error
    return best
