"""Mutation audit, round 2: recurrent/paired.py figures that the existing tests left
unpinned, each checked against an independent, written-out computation.

- diebold_mariano's number of cosines B is LLSW's ceil(0.41 n^(2/3)) (capped by n / 2H),
  not a nearby constant: at n = 44 windows of horizon 1 the rule gives 0.41 * 44^(2/3) =
  5.11, so B = 6 (0.4 would give 4.99 -> 5 and another p-value).
- resampled_t tests J = 2 splits (1 degree of freedom).
- the blocked cosine matrix (long splits) gives the same statistic as the whole one."""
import math

import numpy as np
import pytest
from scipy import stats

from recurrent import paired


def _ewc_p(d, b):
    """Two-sided p of the EWC-based Diebold-Mariano test with B cosines, written out with
    plain loops (Lazarus, Lewis, Stock & Watson 2018, eq. for the EWC estimator)."""
    n = len(d)
    mean = sum(d) / n
    lam = [math.sqrt(2 / n) * sum((d[t] - mean) * math.cos(math.pi * j * (t + 0.5) / n)
                                  for t in range(n)) for j in range(1, b + 1)]
    statistic = math.sqrt(n) * mean / math.sqrt(sum(x * x for x in lam) / b)
    return 2 * stats.t.sf(abs(statistic), df=b)


def test_diebold_mariano_cosines_follow_the_041_rule_where_it_rounds_up():
    # n = 44, H = 1: n // 2H = 22 is not binding; 0.41 * 44**(2/3) = 5.110 -> B = 6
    assert 0.41 * 44 ** (2 / 3) == pytest.approx(5.110, abs=1e-3)
    d = np.random.default_rng(7).normal(0.3, 1.0, 44)
    assert paired.diebold_mariano(d, 1) == pytest.approx(_ewc_p(d, 6), rel=1e-10)
    assert paired.diebold_mariano(d, 1) != pytest.approx(_ewc_p(d, 5), rel=1e-6)


def test_diebold_mariano_cosines_capped_by_windows_over_twice_the_horizon():
    # n = 44, H = 4: n // 2H = 5 < 6, so B = 5
    d = np.random.default_rng(8).normal(0.3, 1.0, 44)
    assert paired.diebold_mariano(d, 4) == pytest.approx(_ewc_p(d, 5), rel=1e-10)


def test_resampled_t_with_two_splits_is_the_corrected_t_with_one_degree_of_freedom():
    """J = 2 is enough for the test (module docstring: J >= 2): differences 0.01 and
    0.03, n_test / n_train = 0.25: mean 0.02, s^2 = 0.0002, corrected variance
    (1/2 + 1/4) * 0.0002 = 0.00015, t = 0.02 / sqrt(0.00015) = 1.633 on 1 df."""
    t = 0.02 / math.sqrt(0.00015)
    assert paired.resampled_t(np.array([0.01, 0.03]), 0.25) == pytest.approx(
        2 * stats.t.sf(t, df=1), rel=1e-9)
    assert paired.resampled_t(np.array([0.01]), 0.25) is None


def test_diebold_mariano_in_blocks_of_cosines_is_the_whole_statistic(monkeypatch):
    """The cosine matrix is built a block of rows at a time on long splits; with blocks
    forced small (8 rows: 400 windows take B = ceil(0.41 * 400^(2/3)) = 23 cosines, in
    blocks 0-8 and 8-23) the p-value is still the EWC test's, written out here with
    numpy over the whole (B, n) matrix."""
    monkeypatch.setattr(paired, "COSINE_BLOCK", 1, raising=False)
    d = np.random.default_rng(11).normal(0.05, 1.0, 400)
    n, b = 400, 23
    assert math.ceil(0.41 * n ** (2 / 3)) == b
    cos = np.cos(np.pi * np.arange(1, b + 1)[:, None] * (np.arange(n) + 0.5)[None, :] / n)
    lam = math.sqrt(2 / n) * (cos @ (d - d.mean()))
    statistic = math.sqrt(n) * d.mean() / math.sqrt(np.mean(lam ** 2))
    assert paired.diebold_mariano(d, 1) == pytest.approx(
        2 * stats.t.sf(abs(statistic), df=b), rel=1e-10)
