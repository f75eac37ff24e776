"""recurrent/paired.py's tests, the forecast windows' losses they compare, and
report.paired_line.

- diebold_mariano: the EWC statistic written out by hand; its degenerate cases; and, with
  no real difference, a 5% test rejects about 5% of the time on window means of noise
  (the windows overlapping as a forecast split's do), also when the noise persists.
- McNemar: the exact binomial test of the items only one side gets right.
- resampled_t: Nadeau & Bengio's corrected statistic written out by hand.
- window_mase: the windows' losses average to forecast_metrics' MASE, gaps or not."""
import math

import numpy as np
import pytest
from scipy import stats

from recurrent import paired
from recurrent.report import paired_line
from recurrent_plugins.forecast import metrics as fm


def test_diebold_mariano_is_the_ewc_statistic_against_t_with_b_degrees_of_freedom():
    d = np.random.default_rng(1).normal(0.2, 1.0, 60)
    n, h = len(d), 3
    b = min(n // (2 * h), math.ceil(0.41 * n ** (2 / 3)))  # 10 and 7: 7 cosines
    e = d - d.mean()
    lam = [math.sqrt(2 / n) * sum(e[t] * math.cos(math.pi * j * (t + 0.5) / n)
                                  for t in range(n)) for j in range(1, b + 1)]
    statistic = math.sqrt(n) * d.mean() / math.sqrt(sum(x * x for x in lam) / b)
    assert paired.diebold_mariano(d, h) == pytest.approx(
        2 * stats.t.sf(abs(statistic), df=b), rel=1e-10)
    assert paired.diebold_mariano(-d, h) == pytest.approx(paired.diebold_mariano(d, h))


def test_diebold_mariano_degenerate_cases():
    assert paired.diebold_mariano(np.zeros(10), 2) == 1.0  # identical forecasts
    assert paired.diebold_mariano(np.full(10, 1e-13), 2) == 1.0
    assert paired.diebold_mariano(np.full(10, 0.3), 2) is None  # no variance
    assert paired.diebold_mariano(np.arange(7.0), 4) is None  # fewer than 2H windows
    assert paired.diebold_mariano(np.array([0.1, np.nan, 0.3, 0.2]), 1) is None
    assert paired.diebold_mariano(np.array([]), 1) is None


@pytest.mark.parametrize("windows, horizon, persistence", [
    (46, 1, 0.0), (22, 1, 0.3), (16, 7, 0.0), (49, 7, 0.3), (96, 12, 0.0), (31, 4, 0.3)])
def test_no_difference_is_rejected_about_as_often_as_the_level_says(windows, horizon,
                                                                    persistence):
    # window means of AR(1) target-level differences: the model and the baseline are
    # equally good, and the windows overlap as a forecast split's do
    rng = np.random.default_rng(windows * 100 + horizon)
    draws, rejected = 2000, 0
    for _ in range(draws):
        noise = rng.standard_normal(windows + horizon - 1)
        targets = np.empty_like(noise)
        targets[0] = noise[0]
        for i in range(1, len(noise)):
            targets[i] = persistence * targets[i - 1] + math.sqrt(1 - persistence ** 2) * noise[i]
        p = paired.diebold_mariano(np.convolve(targets, np.ones(horizon) / horizon, "valid"),
                                   horizon)
        rejected += p < 0.05
    assert 0.03 <= rejected / draws <= 0.08


def test_mcnemar_is_the_exact_test_of_the_discordant_items():
    rng = np.random.default_rng(3)
    a, b = rng.random(200) < 0.8, rng.random(200) < 0.7
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert paired.mcnemar(a, b) == pytest.approx(
        stats.binomtest(only_a, only_a + only_b).pvalue, rel=1e-10)
    assert paired.mcnemar(a, b) == paired.mcnemar(b, a)
    assert paired.mcnemar(a, a) == 1.0  # no discordant item
    # 20 items right only by one side, none by the other: p = 2 * 0.5**20
    right = np.array([True] * 20 + [False] * 5)
    assert paired.mcnemar(right, np.zeros(25, bool)) == pytest.approx(2 * 0.5 ** 20)


@pytest.mark.parametrize("split", [1, 2, 3, 10, 11, 99, 400, 2001, 7777])
def test_mcnemar_equals_scipys_binomial_test_at_every_split(split):
    for only_model in sorted({0, 1, split // 3, split // 2, (split + 1) // 2, split - 1,
                              split}):
        model = np.array([True] * only_model + [False] * (split - only_model) + [True] * 4)
        baseline = np.array([False] * only_model + [True] * (split - only_model) + [True] * 4)
        assert paired.mcnemar(model, baseline) == pytest.approx(
            stats.binomtest(only_model, split).pvalue, rel=1e-10, abs=1e-300)


def test_resampled_t_is_the_corrected_statistic_against_t_with_j_minus_1_df():
    d = np.array([0.004, -0.011, 0.009, 0.002, 0.015, -0.003, 0.007, 0.001])
    share = 0.125
    mean = sum(d) / len(d)
    s2 = sum((x - mean) ** 2 for x in d) / (len(d) - 1)
    statistic = mean / math.sqrt((1 / len(d) + share) * s2)
    p = paired.resampled_t(d, share)
    assert p == pytest.approx(2 * stats.t.sf(abs(statistic), df=len(d) - 1), rel=1e-10)
    # the correction widens the plain t-test's variance s2 / J, so p only grows
    assert p > stats.ttest_1samp(d, 0.0).pvalue
    assert paired.resampled_t(-d, share) == pytest.approx(p)
    assert paired.resampled_t(np.zeros(5), share) == 1.0
    assert paired.resampled_t(np.full(5, 0.01), share) is None  # no variance
    # differences of 4-decimal figures: constant, but not bit for bit
    assert paired.resampled_t(np.array([0.7686 - 0.7639, 0.7733 - 0.7686, 0.8047 - 0.8]),
                              share) is None
    assert paired.resampled_t(np.array([0.01]), share) is None  # one split
    assert paired.resampled_t(np.array([0.0]), share) is None


def test_window_losses_average_to_the_split_mase_with_gaps_and_columns():
    rng = np.random.default_rng(4)
    actual = rng.normal(10, 2, (30, 4, 2))
    forecast = actual + rng.normal(0, 1, actual.shape)
    mask = rng.random(actual.shape) < 0.7
    mask[5] = False  # a window with nothing observed scores 0
    scale = np.array([1.5, 0.4])
    losses = fm.window_mase(actual, forecast, scale, mask)
    assert losses[5] == 0.0
    expected = fm.forecast_metrics(actual, forecast, scale, ["a", "b"], mask=mask)["mase"]
    assert losses.mean() == pytest.approx(expected, rel=1e-12)


def test_paired_line_names_every_baseline_with_its_difference_and_p():
    def dm(difference, p, same=False):
        return paired.result("Diebold-Mariano", "mase", difference, p, 16, "windows", same)
    tests = {"naive": dm(-0.22791, 0.0494), "ets": dm(0.0485, 0.8441),
             "seasonal_naive": dm(-0.5, 0.0002), "twin": dm(3e-15, 1.0, same=True),
             "short": dm(0.1, None)}
    assert paired_line(tests) == [
        "paired over the split's 16 windows, model - baseline in mase (Diebold-Mariano): "
        "naive -0.2279 (p 0.049), ets +0.0485 (p 0.844), seasonal_naive -0.5000 "
        "(p < 0.001), twin +0.0000 (identical), short +0.1000 (no test); p < 0.05: more "
        "than this split's noise"]
    assert paired_line({}) == []


def test_an_even_split_of_disagreements_is_not_called_identical():
    # 28 texts: 3 only the model gets right, 3 others only the baseline; McNemar's p is 1
    # (scipy's binomtest of 3 in 6), but the two disagree on 6 texts
    from scipy.stats import binomtest
    model = np.array([True] * 3 + [False] * 3 + [True] * 11 + [False] * 11)
    baseline = np.array([False] * 3 + [True] * 3 + [True] * 11 + [False] * 11)
    p = paired.mcnemar(model, baseline)
    assert p == binomtest(3, 6).pvalue == 1.0
    line = paired_line({"bow": paired.result(
        "McNemar", "accuracy", model.mean() - baseline.mean(), p, 28, "texts",
        same=bool(np.array_equal(model, baseline)))})[0]
    assert "bow +0.0000 (p 1.000)" in line
    assert paired.identical(np.zeros(5)) and not paired.identical(np.array([0.0, 1.0]))


def test_a_p_just_below_005_does_not_print_as_005():
    # 67 texts only one side gets right, 25 of them the baseline's: McNemar's p is 0.0498
    # (scipy's binomtest), which the line's "p < 0.05" reading must still call below it;
    # 0.050 itself and 0.0504 stay above
    from scipy.stats import binomtest
    model = np.array([True] * 42 + [False] * 25 + [True] * 100 + [False] * 33)
    baseline = np.array([False] * 42 + [True] * 25 + [True] * 100 + [False] * 33)
    p = paired.mcnemar(model, baseline)
    assert p == pytest.approx(binomtest(25, 67).pvalue, rel=1e-12)
    assert 0.0495 <= p < 0.05

    def mcnemar(p):
        return paired.result("McNemar", "accuracy", model.mean() - baseline.mean(), p,
                             len(model), "texts", same=False)
    [line] = paired_line({"nb": mcnemar(p), "at": mcnemar(0.05), "over": mcnemar(0.0504)})
    assert "nb +0.0850 (p < 0.05), at +0.0850 (p 0.050), over +0.0850 (p 0.050);" in line
