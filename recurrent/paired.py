"""Paired tests of a model against a baseline scored on the same items of a split: whether
the difference between them is larger than the split's sampling noise.

A task's optional ``paired`` (protocols.Task) returns, per baseline, the dict ``result``
builds; `recurrent eval` prints them in one line under the report of the test split
(report.paired_line) and as "paired" in its --json output.

- mcnemar: classification, each item right or wrong: McNemar's exact test, a two-sided
  binomial test of the 1:1 split of the items only one of the two gets right (scipy).
- t_test: one loss difference per item, the items independent: the two-sided one-sample
  t-test of a zero mean (scipy). For forecasts this is the Diebold-Mariano test (Diebold &
  Mariano 1995) with the Harvey-Leybourne-Newbold correction at horizon 1; windows of H
  steps are tested only every H-th, so that no two share a target: overlapping windows'
  losses are correlated, and the usual corrections for that (a HAC variance of H-1 lags
  with HLN's factor) reject far more often than they should on splits of a few dozen
  windows (the simulation is in benchmarks/README.md).
"""
from __future__ import annotations

import numpy as np


def result(test: str, metric: str, difference: float, p: float | None, items: int,
           unit: str) -> dict:
    """One baseline's entry: the test's name, the metric the difference is in, the model's
    score minus the baseline's, the two-sided p-value (None: too few items for a test),
    and the number of items the test used and what they are (e.g. "texts")."""
    return {"test": test, "metric": metric, "difference": float(difference),
            "p": None if p is None else float(p), "items": int(items), "unit": unit}


def mcnemar(model_right: np.ndarray, baseline_right: np.ndarray) -> float:
    """Two-sided p of McNemar's exact test on two (N,) bool arrays: item i right or wrong.
    1.0 when no item is right for only one of them."""
    from scipy.stats import binomtest
    only_model = int(np.sum(model_right & ~baseline_right))
    only_baseline = int(np.sum(~model_right & baseline_right))
    split = only_model + only_baseline
    return float(binomtest(only_model, split).pvalue) if split else 1.0


def disjoint_windows(count: int, horizon: int) -> np.ndarray:
    """(count,) bool: the windows a forecast test uses, every ``horizon``-th from the
    first, of ``count`` windows at consecutive origins: no two of them share a target."""
    chosen = np.zeros(count, dtype=bool)
    chosen[::horizon] = True
    return chosen


def t_test(differences: np.ndarray) -> float | None:
    """Two-sided p of the one-sample t-test that the mean of (N,) independent differences
    is 0; 1.0 when every difference is 0 (identical losses); None when there is no
    variance to test with (fewer than 2 items, or all equal and not 0)."""
    from scipy.stats import ttest_1samp
    differences = np.asarray(differences, dtype=np.float64)
    if differences.size and not np.any(differences):
        return 1.0
    if differences.size < 2 or np.ptp(differences) == 0.0:
        return None
    return float(ttest_1samp(differences, 0.0).pvalue)
