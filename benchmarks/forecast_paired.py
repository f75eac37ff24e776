"""Whether a forecast run and a baseline differ on the test split by more than the split's
noise: both forecast the same windows, so the comparison is paired. Per run and
baseline (naive, seasonal naive, ETS): each one's MASE, and the Diebold-Mariano test of
equal accuracy on the windows' absolute errors (Diebold & Mariano 1995), with the
small-sample correction of Harvey, Leybourne & Newbold (1997).

Each test window (one per forecast origin) gives a loss per forecaster: its absolute
errors over the window's H steps and every column, scaled by the run's MASE scale and
averaged (with every target observed, the run's test MASE is the mean of these over
the windows; windows without an observed target are left out). The differences
of the model's and the baseline's losses are autocorrelated up to lag H-1, since
neighbouring windows share H-1 targets: their mean is tested with statsmodels' HAC
(Newey-West) variance with H-1 lags, and the statistic scaled by HLN's factor and read
against Student's t with n-1 degrees of freedom, n the number of windows. A negative
difference is the model's advantage.

    recurrent train forecast --data D.csv --time-column time --horizon H --seed S --out RUN_S
    python benchmarks/forecast_paired.py RUN_0 RUN_1 RUN_2
"""
from __future__ import annotations

import numpy as np
from _quality import finished_runs
from scipy.stats import t as student_t

from recurrent.config import TrainingConfig


def window_losses(state, prepared, origins, scaled_forecast) -> np.ndarray:
    """(B,) each window's mean absolute error over its observed targets, in MASE units
    (NaN for a window none of whose targets was observed: gaps the series' file had)."""
    import recurrent_plugins.forecast.windows as win
    rows = win.target_rows(origins, state["horizon"])  # (B, H)
    errors = np.abs(win.unscale(scaled_forecast, state["scaler"]) - prepared.filled[rows])
    errors /= np.asarray(state["mase_scale"])  # (B, H, C)
    observed = prepared.observed[rows]
    counts = observed.sum(axis=(1, 2))
    return np.where(observed, errors, 0.0).sum(axis=(1, 2)) / np.where(counts, counts, np.nan)


def diebold_mariano(differences: np.ndarray, horizon: int) -> tuple[float, float]:
    """(statistic, two-sided p) of the test that the mean of ``differences`` is 0, with a
    Newey-West variance of horizon-1 lags and the HLN correction."""
    import statsmodels.api as sm
    n = len(differences)
    fit = sm.OLS(differences, np.ones(n)).fit(cov_type="HAC",
                                              cov_kwds={"maxlags": horizon - 1})
    statistic = float(fit.tvalues[0]) * np.sqrt(
        (n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    return statistic, float(2 * student_t.sf(abs(statistic), df=n - 1))


def main(argv=None):
    task, runs = finished_runs(__doc__, "forecast", argv)
    for model, info in runs:
        state = info["task_state"]
        prepared = task.load(state, TrainingConfig(info["config"]))
        origins = task._origins(state, prepared, "test")
        ours = window_losses(state, prepared, origins,
                             task._scaled_forecasts(state, prepared, origins, model.runner()))
        scored = ~np.isnan(ours)  # the windows with an observed target
        ours = ours[scored]
        parts = [f"seed {info['config'].get('seed')}: {len(ours)} test windows, "
                 f"h={state['horizon']}, model {ours.mean():.3f}"]
        for name, (forecast, _) in task._baseline_forecasts(state, prepared,
                                                            origins).items():
            theirs = window_losses(state, prepared, origins, forecast)[scored]
            difference = ours - theirs
            if not np.any(difference):
                parts.append(f"{name} {theirs.mean():.3f} (identical)")
                continue
            statistic, p = diebold_mariano(difference, state["horizon"])
            parts.append(f"{name} {theirs.mean():.3f} (difference {difference.mean():+.3f},"
                         f" DM {statistic:+.2f}, p = {p:.3f})")
        print("; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
