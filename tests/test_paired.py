"""recurrent/paired.py's tests against forms they reduce to, and report.paired_line.

Diebold-Mariano: at horizon 1 (no lags, HLN factor sqrt((n-1)/n)) it is the one-sample
t-test; at horizon 3 the statistic from Bartlett-weighted autocovariances written out by
hand. McNemar: the exact binomial test of the items only one side gets right."""
import numpy as np
import pytest
from scipy import stats

from recurrent import paired
from recurrent.report import paired_line

needs_statsmodels = pytest.mark.skipif(not paired.diebold_mariano_available(),
                                       reason="the Diebold-Mariano variance needs statsmodels")


@needs_statsmodels
def test_diebold_mariano_at_horizon_one_is_the_one_sample_t_test():
    d = np.random.default_rng(1).normal(0.1, 1.0, 40)
    statistic, p = paired.diebold_mariano(d, 1)
    expected = stats.ttest_1samp(d, 0.0)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-10)


@needs_statsmodels
def test_diebold_mariano_uses_newey_west_and_the_hln_factor():
    d = np.cumsum(np.random.default_rng(2).normal(0.05, 1.0, 60)) * 0.1 + 0.3
    n, h = len(d), 3
    e = d - d.mean()
    gamma = [np.sum(e[k:] * e[:n - k]) / n for k in range(h)]
    variance = gamma[0] + 2 * sum((1 - k / h) * gamma[k] for k in range(1, h))
    expected = d.mean() / np.sqrt(variance / n) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic, p = paired.diebold_mariano(d, h)
    assert statistic == pytest.approx(expected, rel=1e-10)
    assert p == pytest.approx(2 * stats.t.sf(abs(expected), df=n - 1), rel=1e-10)
    assert paired.diebold_mariano(-d, h)[0] == pytest.approx(-expected, rel=1e-10)


@needs_statsmodels
def test_diebold_mariano_without_variance_or_with_too_few_windows():
    assert paired.diebold_mariano(np.zeros(10), 2) == (0.0, 1.0)
    assert paired.diebold_mariano(np.full(10, -0.5), 2) == (-np.inf, 0.0)
    # 3 windows of horizon 4: HLN's factor is negative, the test says nothing
    assert paired.diebold_mariano(np.array([0.1, 0.5, 0.2]), 4) == (0.0, 1.0)


def test_mcnemar_is_the_exact_test_of_the_discordant_items():
    rng = np.random.default_rng(3)
    a, b = rng.random(200) < 0.8, rng.random(200) < 0.7
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert paired.mcnemar(a, b) == pytest.approx(
        stats.binomtest(only_a, only_a + only_b).pvalue, rel=1e-12)
    assert paired.mcnemar(a, b) == pytest.approx(paired.mcnemar(b, a), rel=1e-12)
    assert paired.mcnemar(a, a) == 1.0  # no discordant item
    # 20 items right only by one side, none by the other: p = 2 * 0.5**20
    right = np.array([True] * 20 + [False] * 5)
    assert paired.mcnemar(right, np.zeros(25, bool)) == pytest.approx(2 * 0.5 ** 20)


def test_paired_line_names_every_baseline_with_its_difference_and_p():
    tests = {"naive": paired.result("Diebold-Mariano", "mase", -0.22791, 0.0494, 16, "windows"),
             "ets": paired.result("Diebold-Mariano", "mase", 0.0485, 0.8441, 16, "windows")}
    assert paired_line(tests) == [
        "paired over the split's 16 windows, model - baseline in mase (Diebold-Mariano): "
        "naive -0.2279 (p 0.049), ets +0.0485 (p 0.844); p < 0.05: more than this "
        "split's noise"]
    assert paired_line({}) == []
