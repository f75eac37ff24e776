"""Paired tests of a model against a baseline scored on the same items of a split: whether
the difference between them is larger than the split's sampling noise.

A task's optional ``paired`` (protocols.Task) returns, per baseline, the dict ``result``
builds; `recurrent eval` prints them in one line under the report of the test split
(report.paired_line) and as "paired" in its --json output.

- mcnemar: classification, each item right or wrong: McNemar's exact test, a two-sided
  binomial test of the 1:1 split of the items only one of the two gets right (scipy).
- diebold_mariano: forecasts, one loss difference per forecast window: the test of a zero
  mean difference (Diebold & Mariano 1995) with the equal-weighted cosine (EWC) estimate
  of the differences' long-run variance and Student's t with B degrees of freedom
  (fixed-smoothing asymptotics: Lazarus, Lewis, Stock & Watson 2018; for this test
  Coroneo & Iacone 2020). Windows H steps long share targets, so their differences are
  correlated over H-1 lags and often beyond; the usual HAC variance with H-1 lags and
  the Harvey-Leybourne-Newbold factor rejects far more often than its level on splits of
  a few dozen windows, and testing every H-th window alone makes the verdict depend on
  which window comes first (benchmarks/README.md has both measurements). B is
  min(floor(n / 2H), ceil(0.41 n^(2/3))) cosines (at least 1), so the estimate reads
  frequencies below the windows' overlap and, per LLSW's rule, few enough for persistent
  errors; a split of fewer than 2H windows gets no test.
- resampled_t: one score difference per random train/test split of the same data, the
  model and the baseline refitted on each: the t-test of a zero mean difference with
  Nadeau & Bengio's (2003) corrected variance, (1/J + n_test/n_train) s^2 over J splits.
  The splits' training sets overlap, so their differences are correlated; the plain t-test
  (variance s^2 / J) then rejects far more often than its level, while the corrected one
  stays near it in Nadeau & Bengio's simulations (Bouckaert & Frank 2004 compare the
  two). Used by benchmarks/sentiment_resplit.py.
"""
from __future__ import annotations

import numpy as np

IDENTICAL = 1e-12  # differences this small are rounding: equal scores, or no variance
COSINE_BLOCK = 1 << 21  # numbers of diebold_mariano's cosine matrix made at once (16 MB;
# at least 8 rows a block, so more when one row holds more than 2^18 windows)


def identical(d) -> bool:
    """Every difference 0 up to rounding: the two sides scored the same."""
    d = np.asarray(d, dtype=np.float64)
    return d.size > 0 and bool(np.all(np.abs(d) <= IDENTICAL))


def _untestable(d: np.ndarray, minimum: int) -> bool:
    """Fewer than ``minimum`` differences, a missing one, or no variance up to rounding."""
    return d.size < minimum or not np.all(np.isfinite(d)) or np.ptp(d) <= IDENTICAL


def result(test: str, metric: str, difference: float, p: float | None, items: int,
           unit: str, same: bool | None = None) -> dict:
    """One baseline's entry: the test's name, the metric the difference is in, the model's
    score minus the baseline's, the two-sided p-value (None: too few items for a test),
    the number of items the test used and what they are (e.g. "texts"), and whether the
    two scored every item the same ("identical"; a p of 1 alone does not say it: McNemar
    gives 1 whenever the items only one side gets right split evenly). ``same`` None
    (not known) leaves "identical" out."""
    out = {"test": test, "metric": metric, "difference": float(difference),
           "p": None if p is None else float(p), "items": int(items), "unit": unit}
    if same is not None:
        out["identical"] = bool(same)
    return out


def mcnemar(model_right: np.ndarray, baseline_right: np.ndarray) -> float:
    """Two-sided p of McNemar's exact test on two (N,) bool arrays: item i right or wrong.
    1.0 when no item is right for only one of them. Under the null the items only one
    side gets right split as Binomial(n, 1/2), symmetric, so the two-sided p is twice the
    smaller tail, from scipy.special's binomial CDF (the p of scipy.stats' binomtest,
    without importing scipy.stats into every sentiment eval)."""
    from scipy.special import bdtr
    only_model = int(np.sum(model_right & ~baseline_right))
    only_baseline = int(np.sum(~model_right & baseline_right))
    split = only_model + only_baseline
    if not split:
        return 1.0
    return min(1.0, 2.0 * float(bdtr(min(only_model, only_baseline), split, 0.5)))


def diebold_mariano(differences: np.ndarray, horizon: int) -> float | None:
    """Two-sided p of the test that (N,) loss differences of consecutive forecast windows
    ``horizon`` steps long have a zero mean (module docstring); 1.0 when every difference
    is 0 (to 1e-12: identical forecasts); None when there is nothing to test with (fewer
    than 2 * horizon windows, or no variance)."""
    from scipy.stats import t as student_t
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    if identical(d):
        return 1.0
    if _untestable(d, max(2, 2 * horizon)):
        return None
    cosines = max(1, min(n // (2 * horizon), int(np.ceil(0.41 * n ** (2 / 3)))))
    t = np.arange(n) + 0.5
    centred = d - d.mean()
    # The (B, n) cosines a block of rows at a time: B grows as n^(2/3), so the whole
    # matrix would hold n^(5/3) numbers. Blocks of a
    # multiple of 8 rows (the last one 8 or more) on one BLAS thread give each row the
    # sum the whole matrix gives on one thread (OpenBLAS's gemv takes rows 4 at a time).
    from .threads import single_threaded_blas
    projections = np.empty(cosines)  # (B,)
    rows = max(8, COSINE_BLOCK // n // 8 * 8)
    edges = [*range(0, cosines - rows + 1, rows), cosines] if cosines > rows else [0, cosines]
    with single_threaded_blas():
        for start, stop in zip(edges[:-1], edges[1:]):
            k = np.arange(start + 1, stop + 1)
            frequencies = np.pi * k[:, None] * t[None, :] / n  # (rows, n)
            projections[start:stop] = np.cos(frequencies) @ centred
    projections = np.sqrt(2.0 / n) * projections  # (B,)
    variance = float(np.mean(projections ** 2))
    if variance <= 0.0:
        return None
    statistic = np.sqrt(n) * d.mean() / np.sqrt(variance)
    return float(2 * student_t.sf(abs(statistic), df=cosines))


def resampled_t(differences: np.ndarray, test_share: float) -> float | None:
    """Two-sided p of the corrected resampled t-test (module docstring) that J >= 2
    per-split differences have a zero mean; ``test_share`` is n_test / n_train of each
    split. 1.0 when every difference is 0 (to 1e-12); None when J < 2 or no variance."""
    from scipy.stats import t as student_t
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2:
        return None
    if identical(d):
        return 1.0
    if _untestable(d, 2):
        return None
    variance = (1.0 / d.size + float(test_share)) * float(np.var(d, ddof=1))
    return float(2 * student_t.sf(abs(d.mean()) / np.sqrt(variance), df=d.size - 1))
