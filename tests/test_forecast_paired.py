"""benchmarks/forecast_paired.py's Diebold-Mariano test, against the two forms it reduces
to: at horizon 1 (no lags, HLN factor sqrt((n-1)/n)) the one-sample t-test, and at
horizon 3 the statistic from Bartlett-weighted autocovariances written out by hand."""
import importlib.util
import os
import sys

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("statsmodels")

PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "forecast_paired.py")


@pytest.fixture(scope="module")
def paired():
    sys.path.insert(0, os.path.dirname(PATH))  # its `from _quality import ...`
    try:
        spec = importlib.util.spec_from_file_location("forecast_paired", PATH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.dirname(PATH))
    return module


def test_horizon_one_is_the_one_sample_t_test(paired):
    d = np.random.default_rng(1).normal(0.1, 1.0, 40)
    statistic, p = paired.diebold_mariano(d, 1)
    expected = stats.ttest_1samp(d, 0.0)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-10)


def test_longer_horizon_uses_newey_west_and_the_hln_factor(paired):
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
