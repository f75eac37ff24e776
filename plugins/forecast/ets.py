"""Exponential smoothing (ETS) by statsmodels: the classical baseline of every forecast
report, and the anchor of the hybrid model (--model hybrid).

Dimension legend: N rows, C value columns, B origins, H horizon, m season.

fit() fits, per value column, on the TRAINING rows only (the caller slices them), the
candidates statsmodels users compare: simple exponential smoothing ("ses", ETS(A,N,N)),
Holt-Winters additive ("hw_add", ETS(A,A,A)) and, when every training value is positive,
multiplicative ("hw_mul", ETS(M,A,M)), both with the run's season when the training rows
hold two of them (else Holt's linear trend, "holt", ETS(A,A,N)); the one with the smallest
AIC is kept. A fit is a small JSON-able dict: the model, its smoothing parameters and its
initial states. It is cached per training rows and season (recurrent.cache), and saved in
the run's state, so eval and predict filter with the very parameters chosen in training.
statsmodels cannot run a multiplicative model through a value <= 0, which later rows may
hold though the training rows are positive: a multiplicative fit also carries the best
additive one of the same training rows ("fallback"), and forecasts from the first such
value on come from it (column_components), so no forecast depends on a row after its
origin, nor the fit on any row after the training ones.

components() filters a whole series through a fit (statsmodels' ETSModel.smooth with the
fitted parameters and the initial states held fixed: no refit, nothing estimated from the
rows being filtered) and returns, for every row taken as a forecast origin, the ETS
forecast of the next H steps made from the states known at that row, plus the level and
the deseasonalised value of every row (the hybrid's inputs). advance() moves fits on past
the first rows of a series: their initial states become the states statsmodels' filter
held after those rows ("continued"), and filtering the later rows alone from them repeats
the filter's operations on the same doubles, so the components of the later rows are
those of the whole series (a stream or a long roll-out filters a bounded tail of rows).

statsmodels and pandas are the optional extra `ets`; without them the report
says so in one line (missing_note) and the ETS hybrid (--model hybrid) is not offered.
"""
from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np

from recurrent import cache, schema
from recurrent.errors import UserError
from recurrent.extras import install_hint
from recurrent.memo import Kept, frozen, rows_key

FORMAT = 2  # of the cached fits (recurrent.cache)
NAMESPACE = "forecast-ets"
SPECS = {
    "ses": {"error": "add"},
    "holt": {"error": "add", "trend": "add"},
    "hw_add": {"error": "add", "trend": "add", "seasonal": "add"},
    "hw_mul": {"error": "mul", "trend": "add", "seasonal": "mul"},
}
MIN_ROWS = 10  # fewer training rows: no ETS fit


def check_fit(fit, where: str) -> None:
    """ValueError unless ``fit`` is a fit as _fit_one makes it (a run's saved state
    holds them): its kind, its smoothing coefficients and the initial states that kind
    has, finite, and a multiplicative fit's additive fallback, if any."""
    schema.check(fit, schema.fields({"kind": schema.one_of(*SPECS),
                                     "season": schema.at_least(1),
                                     "smoothing": dict, "initial_level": schema.finite},
                                    {"fallback": dict}), where)
    spec = SPECS[fit["kind"]]
    names = ["smoothing_level"] + [f"smoothing_{part}" for part in ("trend", "seasonal")
                                   if part in spec]
    schema.check(fit["smoothing"], schema.fields(dict.fromkeys(names, schema.finite)),
                 f"{where}.smoothing")
    if "trend" in spec:
        schema.check(fit, schema.fields({"initial_trend": schema.finite}), where)
    if "seasonal" in spec:
        schema.check(fit, schema.fields({"initial_seasonal": schema.list_of(
            schema.finite, size=fit["season"])}), where)
    if "fallback" in fit:
        if fit["kind"] != "hw_mul" or fit["fallback"].get("kind") == "hw_mul":
            raise ValueError(f"{where}.fallback: only a multiplicative fit has one, and "
                             f"it is additive")
        check_fit(fit["fallback"], f"{where}.fallback")


def restart_rows(season: int) -> int:
    """How many first rows of a new file restart a seasonal fit's states (restart):
    two seasons and two rows, and at least MIN_ROWS."""
    return max(MIN_ROWS, 2 * season + 2)


def missing_note() -> str:
    """The line that says what a run without statsmodels lacks and how to install it."""
    return f"ETS baseline and --model hybrid need statsmodels: {install_hint('ets')}"


def unfitted_note() -> str:
    """The line that says why a report with statsmodels installed has no ETS baseline."""
    return (f"ETS baseline: left out, no ETS model could be fitted to the training rows "
            f"(fewer than {MIN_ROWS} in a column, or no candidate converged)")


def unsaved_note() -> str:
    """The line that says why a report lacks the ETS baseline when the run was trained
    without statsmodels: it saved no fits to restart on a new file."""
    return ("ETS baseline: left out, this run was trained without statsmodels and holds "
            "no ETS fits to carry to a new file (train it again with statsmodels)")


def available() -> bool:
    """Whether statsmodels (and pandas, which it needs) can be imported."""
    try:
        import statsmodels.tsa.exponential_smoothing.ets  # noqa: F401
    except ImportError:
        return False
    return True


def _model(values: np.ndarray, kind: str, season: int, **init):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    spec = dict(SPECS[kind])
    if "seasonal" in spec:
        spec["seasonal_periods"] = season
    return ETSModel(np.asarray(values, dtype=np.float64), **spec, **init)


def _candidates(values: np.ndarray, season: int) -> list[str]:
    seasonal = season > 1 and len(values) >= 2 * season + 2
    kinds = ["ses", "hw_add" if seasonal else "holt"]
    if seasonal and np.all(values > 0):
        kinds.append("hw_mul")
    return kinds


def _fit_one(values: np.ndarray, kind: str, season: int) -> dict | None:
    """One candidate fitted by maximum likelihood; the seasonal ones start from
    statsmodels' heuristic initial states (estimating m initial seasonal states too often
    stalls the optimiser at a poor optimum), the others from estimated ones."""
    tries = ["heuristic", "estimated"] if "seasonal" in SPECS[kind] else ["estimated"]
    for init in tries:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = _model(values, kind, season, initialization_method=init).fit(
                    disp=False)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if not np.isfinite(result.aic):
            continue
        params = dict(zip(result.param_names, np.asarray(result.params, dtype=float)))
        fit = {"kind": kind, "season": int(season) if "seasonal" in SPECS[kind] else 1,
               "aic": float(result.aic),
               # the smoothing coefficients; the initial states are kept apart below
               "smoothing": {k: v for k, v in params.items() if not k.startswith("initial_")},
               "initial_level": float(result.initial_level)}
        if "trend" in SPECS[kind]:
            fit["initial_trend"] = float(result.initial_trend)
        if "seasonal" in SPECS[kind]:
            fit["initial_seasonal"] = [float(v) for v in np.ravel(result.initial_seasonal)]
        return fit
    return None


def fit_column(values: np.ndarray, season: int) -> dict | None:
    """The candidate with the smallest AIC on one column's training rows (1-D), or None
    when there are too few rows or no candidate fits."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < MIN_ROWS or not np.all(np.isfinite(values)):
        return None
    fits = [f for f in (_fit_one(values, k, season) for k in _candidates(values, season))
            if f is not None]
    if not fits:
        return None
    best = min(fits, key=lambda f: f["aic"])
    additive = [f for f in fits if f["kind"] != "hw_mul"]
    if best["kind"] == "hw_mul" and additive:  # for values <= 0 after the training rows
        best = {**best, "fallback": min(additive, key=lambda f: f["aic"])}
    return best


def fit(train_values: np.ndarray, season: int) -> list[dict | None]:
    """Per column of train_values (N_train, C): fit_column, cached by the training rows'
    bytes and the season (the cache key holds nothing of the rows after them)."""
    train_values = np.ascontiguousarray(train_values, dtype=np.float64)
    key = {"format": FORMAT, "season": int(season), "shape": list(train_values.shape),
           "sha256": hashlib.sha256(train_values.tobytes()).hexdigest()}
    stored = cache.load(NAMESPACE, key)
    if stored is not None and "fits" in stored:
        try:
            return json.loads(str(stored["fits"]))
        except ValueError:
            pass
    fits = [fit_column(train_values[:, c], season) for c in range(train_values.shape[1])]
    cache.store(NAMESPACE, key, {"fits": np.array(json.dumps(fits))})
    return fits


def _smoothing(values: np.ndarray, fit: dict, raw: bool):
    """statsmodels' ETSModel.smooth of ``values`` (1-D) under a fit: its smoothing
    parameters and initial states held fixed; its results, or with ``raw`` its (fitted
    values, states)."""
    init = {"initialization_method": "known", "initial_level": fit["initial_level"]}
    if "initial_trend" in fit:
        init["initial_trend"] = fit["initial_trend"]
    if "initial_seasonal" in fit:
        init["initial_seasonal"] = np.asarray(fit["initial_seasonal"])
    model = _model(values, fit["kind"], fit["season"], **init)
    params = [fit["smoothing"][name] for name in model.param_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.smooth(params, return_raw=raw)


def _filtered(values: np.ndarray, fit: dict):
    """statsmodels' smoothing results of ``values`` (1-D) under a fit, for its fitted
    values and predictions."""
    return _smoothing(values, fit, raw=False)


def _states(values: np.ndarray, fit: dict) -> np.ndarray:
    """(N, k) float64 the states statsmodels' filter holds after each row of ``values``
    (1-D) under a fit: level[, trend][, seasonal], those of the results (_filtered)
    without building them (they estimate the covariance of the parameters by a numerical
    Hessian: a dozen more filters of every row)."""
    return np.asarray(_smoothing(values, fit, raw=True)[1], dtype=np.float64)


def advance(fits: list, rows: np.ndarray) -> list:
    """The fits moved on past ``rows`` (K, C) original units, the first rows of the series
    they filter (none, or at least two: statsmodels' filter of a single row writes its
    states over the initial ones it is still reading): the smoothing coefficients kept,
    the initial states those the filter held after the last of them, marked "continued".
    A multiplicative fit whose rows hold a value <= 0 gives every later row to its
    fallback (column_components): it moves on as that fallback alone."""
    if len(rows) == 0:
        return fits
    if len(rows) < 2:
        raise ValueError("advance: statsmodels cannot filter a single row")
    return [None if f is None else _advance_column(f, rows[:, c]) for c, f in enumerate(fits)]


def _advance_column(fit: dict, values: np.ndarray) -> dict:
    """advance() of one column's fit."""
    if fit["kind"] != "hw_mul":
        return _advance_states(fit, values)
    if _positive_rows(values, fit) < len(values):
        return _advance_column(fit["fallback"], values)
    own = {k: v for k, v in fit.items() if k != "fallback"}
    fallback = ({"fallback": _advance_column(fit["fallback"], values)} if "fallback" in fit
                else {})
    return {**_advance_states(own, values), **fallback}


def _advance_states(fit: dict, values: np.ndarray) -> dict:
    """One fit's initial states moved on past ``values`` (advance): the level, trend and
    last m seasonal states of statsmodels' filter, the oldest first (as initial_seasonal
    is given)."""
    states = _states(values, fit)  # (K, k)
    moved = {**fit, "initial_level": float(states[-1, 0]), "continued": True}
    if "initial_trend" in fit:
        moved["initial_trend"] = float(states[-1, 1])
    if "initial_seasonal" in fit:
        seasonal = np.concatenate([fit["initial_seasonal"], states[:, -1]])[-fit["season"]:]
        moved["initial_seasonal"] = [float(v) for v in seasonal]
    return moved


def restart(fits: list, head: np.ndarray) -> list:
    """The fits moved to a series that starts elsewhere (a recent file given to eval or
    predict --data), from its first rows head (K, C) original units, K =
    windows.head_rows (what a forecast reads, or two seasons and two rows): never a
    forecast target. The smoothing coefficients are kept; the initial states are
    statsmodels' estimate on the head with those coefficients fixed, or, when the head
    holds fewer than two seasons, the training ones with the level shifted so that the
    one-step forecast of the first row is its value."""
    moved = []
    for c, fit in enumerate(fits):
        moved.append(None if fit is None else _restart_column(fit, head[:, c]))
    return moved


def _restart_column(fit: dict, head: np.ndarray) -> dict:
    """restart() of one column's fit. A multiplicative fit restarts on the head's rows
    before its first value <= 0 (with none, it keeps its states: column_components gives
    every row to the fallback), its additive fallback on the whole head."""
    if fit["kind"] == "hw_mul":
        positive = _positive_rows(head, fit)  # the multiplicative fit's rows of the head
        fallback = {"fallback": _restart_column(fit["fallback"], head)} if "fallback" in fit \
            else {}
        own = {k: v for k, v in fit.items() if k != "fallback"}
        if positive == 0:  # every row is the fallback's (column_components)
            return {**own, **fallback}
        return {**_restart_states(own, head[:positive]), **fallback}
    return _restart_states(fit, head)


def _positive_rows(values: np.ndarray, fit: dict) -> int:
    """How many first rows of ``values`` a multiplicative fit filters: those before the
    first value <= 0 (all when there is none). UserError when there is one and the fit has
    no additive fallback to take over from it."""
    bad = np.flatnonzero(np.asarray(values) <= 0)
    if not bad.size:
        return len(values)
    if "fallback" not in fit:
        raise UserError("this run's multiplicative exponential smoothing (hw_mul) cannot "
                        "run through a value <= 0, and it has no additive fallback (the "
                        "run predates it, or no additive model fitted its training rows)")
    return int(bad[0])


def _restart_states(fit: dict, head: np.ndarray) -> dict:
    """One fit's initial states moved to a series that starts with ``head`` (restart)."""
    seasonal = "initial_seasonal" in fit
    if len(head) >= (restart_rows(fit["season"]) if seasonal else MIN_ROWS):
        model = _model(head, fit["kind"], fit["season"], initialization_method="estimated")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with model.fix_params(fit["smoothing"]):
                    result = model.fit(disp=False)
            moved = {**fit, "initial_level": float(result.initial_level)}
            if "initial_trend" in fit:
                moved["initial_trend"] = float(result.initial_trend)
            if seasonal:
                moved["initial_seasonal"] = [float(v)
                                             for v in np.ravel(result.initial_seasonal)]
            if _usable_states(moved):
                return moved
        except (ValueError, np.linalg.LinAlgError):
            pass
    # Fewer than two seasons, or no usable estimate: the training states, the level moved
    # to the first row.
    y0 = float(head[0])
    rows = np.full(max(fit["season"], 1) + 1, y0)  # statsmodels filters at least a season
    predicted = float(np.asarray(_filtered(rows, fit).fittedvalues)[0])
    base = fit["initial_level"] + fit.get("initial_trend", 0.0)
    if fit["kind"] == "hw_mul" and base != 0:
        shift = (y0 - predicted) / (predicted / base)  # in level units
    else:
        shift = y0 - predicted
    return {**fit, "initial_level": fit["initial_level"] + shift}


def _usable_states(fit: dict) -> bool:
    """Whether a restarted fit's initial states can start its filter: finite, and for a
    multiplicative fit a positive level and positive seasonal indices. statsmodels'
    estimate on a new file's first rows is unconstrained: on a season that is near 0 for
    most of its phases it can return negative indices, which turn the sign of every
    forecast of their phase, and indices of millions."""
    states = [fit["initial_level"], fit.get("initial_trend", 0.0),
              *fit.get("initial_seasonal", [])]
    if not np.all(np.isfinite(states)):
        return False
    if fit["kind"] != "hw_mul":
        return True
    return fit["initial_level"] > 0 and all(v > 0 for v in fit.get("initial_seasonal", []))


def column_components(values: np.ndarray, fit: dict, horizon: int):
    """values (N,) gap-filled original units -> (forecast (N, H), level (N,),
    deseasonalised (N,)): row o of forecast is the ETS forecast of rows o+1..o+H made from
    the states filtered up to row o; deseasonalised[t] is y(t) without the seasonal index
    the states held before row t (y - s, or y / s for a multiplicative season). A series
    of at most one season of rows (a short --data history) gets the naive forecast, the
    values as level and as deseasonalised values. A multiplicative fit gives the rows
    from the first value <= 0 on to its additive fallback (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    first = _positive_rows(values, fit) if fit["kind"] == "hw_mul" else len(values)
    if first < len(values):
        parts = column_components(values, fit["fallback"], horizon)
        if first:  # the rows before it: the multiplicative fit's, filtered up to there
            own = {k: v for k, v in fit.items() if k != "fallback"}
            for whole, head in zip(parts, column_components(values[:first], own, horizon)):
                whole[:first] = head
        return parts
    n = len(values)
    if n <= fit.get("season", 1):
        # statsmodels cannot filter fewer rows than a season: the naive forecast stands in
        return (np.repeat(np.asarray(values, dtype=np.float64)[:, None], horizon, axis=1),
                np.asarray(values, dtype=np.float64), np.asarray(values, dtype=np.float64))
    states = _states(values, fit)  # (N, k): level[, trend][, season]
    level = states[:, 0]
    trend = states[:, 1] if "initial_trend" in fit else np.zeros(n)
    steps = np.arange(1, horizon + 1)
    forecast = level[:, None] + trend[:, None] * steps[None, :]  # (N, H)
    deseasonalised = np.asarray(values, dtype=np.float64).copy()
    if "initial_seasonal" in fit:
        m = fit["season"]
        rows = np.arange(n)[:, None] + steps[None, :] - m * -(-steps // m)[None, :]  # (N, H)
        index, before = _seasonal_indices(fit, states[:, -1], rows)
        multiplicative = fit["kind"] == "hw_mul"
        forecast = forecast * index if multiplicative else forecast + index
        if not fit.get("continued"):
            _predict_early(forecast, values, fit, rows)
        deseasonalised = deseasonalised / before if multiplicative else deseasonalised - before
    return forecast, level, deseasonalised


def _seasonal_indices(fit: dict, seasonal: np.ndarray, rows: np.ndarray):
    """(index (N, H), before (N,)) from the seasonal states (N,) after each row: the
    state each origin's forecast step reads (that of row ``rows`` (N, H), the last one
    of the step's phase) and the one each row's value is deseasonalised by (that of the
    row a season before). A continued fit's initial seasonal states are those of the
    season of rows before row 0, read as any other row's; at a series' start the first
    season's rows read their own instead and the origins reaching before row 0 row 0's
    (_predict_early replaces their forecasts)."""
    n, m = len(seasonal), fit["season"]
    if fit.get("continued"):
        known = np.concatenate([fit["initial_seasonal"], seasonal])  # row r at r + m
        return known[rows + m], known[:n]
    before = seasonal[np.maximum(np.arange(n) - m, 0)]
    before[:m] = seasonal[:m] if n else before[:m]
    return seasonal[np.maximum(rows, 0)], before


def _predict_early(forecast: np.ndarray, values: np.ndarray, fit: dict, rows: np.ndarray):
    """forecast (N, H) in place: the origins whose season reaches before row 0 (a few at
    a series' start; rows (N, H) from column_components) need the initial seasonal
    states, so their forecasts are statsmodels' own from that origin. Each predict call
    runs the filter over every row it was given, so they are asked of the first rows
    alone (the filter is causal: the same states there), not of the whole series (m
    calls over N rows)."""
    n, horizon = forecast.shape
    early = [o for o in np.flatnonzero((rows < 0).any(axis=1)) if o + horizon < n]
    if early:
        head = _filtered(values[:max(early[-1] + horizon + 1, 2 * fit["season"] + 2)], fit)
        for o in early:
            forecast[o] = np.asarray(head.predict(start=o + 1, end=o + horizon, dynamic=0))


_MEMO = Kept(4)


def components(filled: np.ndarray, fits: list, horizon: int):
    """filled (N, C) original units -> (forecast (N, H, C), level (N, C), deseasonalised
    (N, C)), per column by column_components; a column without a fit keeps its last value
    as forecast and level. Memoised on the rows' bytes (training calls it per batch); the
    arrays are read-only, shared by every caller."""
    filled = np.ascontiguousarray(filled, dtype=np.float64)
    key = (rows_key(filled), json.dumps(fits, sort_keys=True), horizon)
    if key not in _MEMO:
        n, columns = filled.shape
        forecast = np.repeat(filled[:, None, :], horizon, axis=1)
        level, deseason = filled.copy(), filled.copy()
        for c in range(columns):
            if fits[c] is not None:
                f, lv, d = column_components(filled[:, c], fits[c], horizon)
                forecast[:, :, c], level[:, c], deseason[:, c] = f, lv, d
        _MEMO[key] = frozen((forecast, level, deseason))
    return _MEMO.get(key)


def scaled_components(scaled: np.ndarray, state: dict, horizon: int | None = None):
    """components() of a run's scaled rows (N, C), in scaled units: forecast (N, H, C),
    level (N, C), deseasonalised (N, C). The run's state holds the fits and the scaler;
    ``horizon`` defaults to the run's."""
    from .windows import unscale  # windows imports this module
    center = np.asarray(state["scaler"]["center"])
    spread = np.asarray(state["scaler"]["scale"])
    # the original values as every other reader gets them back (an original 0 as 0)
    forecast, level, deseason = components(unscale(scaled, state["scaler"]), state["ets"],
                                           int(horizon or state["horizon"]))
    return (forecast - center) / spread, (level - center) / spread, (deseason - center) / spread


def forecast_at(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                state: dict) -> np.ndarray:
    """(B, H, C) scaled: the ETS forecast of each origin's H targets as known at the
    origin (origin_forecasts). scaled, last_seen (N, C)."""
    return origin_forecasts(lambda h: scaled_components(scaled, state, h)[0], last_seen,
                            origins, int(state["horizon"]))


def origin_forecasts(table, last_seen: np.ndarray, origins: np.ndarray,
                     horizon: int) -> np.ndarray:
    """(B, H, C): each origin's forecast of its H targets read from table(steps) ->
    (N, steps, C), the forecast of every row taken as origin. An origin inside a gap
    forecasts from the states of the column's last observed row (the gap's interpolated
    rows lean on the next observation, which lies after the origin), that many steps
    further ahead."""
    index, depth = origin_index(last_seen, origins, horizon)
    return table(depth)[index]


def origin_index(last_seen: np.ndarray, origins: np.ndarray, horizon: int):
    """(index, depth): origin_forecasts' forecasts are table(depth)[index], index a
    tuple of (B, 1, C) rows, (B, H, C) steps and (1, 1, C) columns into the (N, depth, C)
    table (depth = H + the longest gap)."""
    rows = np.arange(len(last_seen))[:, None]
    lags = np.where(last_seen >= 0, rows - last_seen, 0)  # (N, C) rows since observed
    longest = int(lags.max()) if lags.size else 0  # one table for every origin
    lag = lags[origins]  # (B, C)
    start = origins[:, None] - lag  # (B, C) the row forecast from
    steps = lag[:, None, :] + np.arange(horizon)[None, :, None]  # (B, H, C)
    columns = np.arange(last_seen.shape[1])[None, None, :]
    return (start[:, None, :], steps, columns), horizon + longest


def with_fits(state: dict, fits: list | None) -> dict:
    """A run's state with the ETS fits of the data being read (restarted at a new file's
    first rows: restart), for the hybrid's anchor and inputs."""
    if "ets" not in state or fits is None or fits is state["ets"]:
        return state
    return {**state, "ets": fits}


def describe(fits: list) -> str:
    """A short label of the chosen models: "hw_mul (m=12)", one per distinct choice."""
    labels = []
    for f in fits:
        if f is None:
            continue
        label = f["kind"] + (f" (m={f['season']})" if f.get("season", 1) > 1 else "")
        if label not in labels:
            labels.append(label)
    return ", ".join(labels) or "none"
