"""Paired tests of a model against a baseline scored on the same items of a split: whether
the difference between them is larger than the split's sampling noise.

A task's optional ``paired`` (protocols.Task) returns, per baseline, the dict ``result``
builds; `recurrent eval` prints them in one line under the report (report.paired_line) and
as "paired" in its --json output.

- mcnemar: classification, each item right or wrong: McNemar's exact test, a two-sided
  binomial test of the 1:1 split of the items only one of the two gets right (scipy).
- diebold_mariano: forecasts, a loss per forecast window: the Diebold-Mariano test of a
  zero mean loss difference (Diebold & Mariano 1995), with a Newey-West variance of
  horizon-1 lags, since windows that share targets have correlated losses (statsmodels'
  HAC), and the small-sample correction of Harvey, Leybourne & Newbold (1997), read
  against Student's t with n-1 degrees of freedom. At horizon 1 it is the one-sample
  t-test of the differences.
"""
from __future__ import annotations

import numpy as np


def result(test: str, metric: str, difference: float, p: float, items: int,
           unit: str) -> dict:
    """One baseline's entry: the test's name, the metric the difference is in, the model's
    score minus the baseline's, the two-sided p-value, and the number of paired items and
    what they are (e.g. "texts", "windows")."""
    return {"test": test, "metric": metric, "difference": float(difference),
            "p": float(p), "items": int(items), "unit": unit}


def mcnemar(model_right: np.ndarray, baseline_right: np.ndarray) -> float:
    """Two-sided p of McNemar's exact test on two (N,) bool arrays: item i right or wrong.
    1.0 when no item is right for only one of them."""
    from scipy.stats import binomtest
    only_model = int(np.sum(model_right & ~baseline_right))
    only_baseline = int(np.sum(~model_right & baseline_right))
    split = only_model + only_baseline
    return float(binomtest(only_model, split).pvalue) if split else 1.0


def diebold_mariano_available() -> bool:
    """The test's variance comes from statsmodels (the forecast task's ets extra)."""
    try:
        import statsmodels.api  # noqa: F401
    except ImportError:
        return False
    return True


def diebold_mariano(differences: np.ndarray, horizon: int) -> tuple[float, float]:
    """(statistic, two-sided p) for (N,) loss differences of windows ``horizon`` steps
    long (N >= 2). Differences all equal have no variance: then (0, 1) if they are 0,
    else (+-inf, 0). HLN's factor is clipped at 0: with too few windows for the horizon
    (n + 1 - 2h + h(h-1)/n <= 0) the test says nothing (statistic 0, p 1)."""
    import statsmodels.api as sm
    from scipy.stats import t as student_t
    differences = np.asarray(differences, dtype=np.float64)
    n = len(differences)
    if np.ptp(differences) == 0.0:
        mean = float(differences[0])
        return (0.0, 1.0) if mean == 0.0 else (float(np.copysign(np.inf, mean)), 0.0)
    fit = sm.OLS(differences, np.ones(n)).fit(cov_type="HAC",
                                              cov_kwds={"maxlags": horizon - 1})
    factor = (n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n
    statistic = float(fit.tvalues[0]) * np.sqrt(max(factor, 0.0))
    return statistic, float(2 * student_t.sf(abs(statistic), df=n - 1))
