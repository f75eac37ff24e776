"""recurrent/paired.py's tests, the forecast windows' losses they compare, and
report.paired_line.

- t_test is scipy's one-sample t-test, with its degenerate cases made explicit; tested on
  every H-th window (disjoint_windows), a difference of none holds the test's 5% size on
  window means of noise where overlapping windows would not.
- McNemar: the exact binomial test of the items only one side gets right.
- window_mase: the windows' losses average to forecast_metrics' MASE, gaps or not."""
import numpy as np
import pytest
from scipy import stats

from recurrent import paired
from recurrent.report import paired_line
from recurrent_plugins.forecast import metrics as fm


def test_t_test_is_the_one_sample_t_test_with_its_degenerate_cases():
    d = np.random.default_rng(1).normal(0.1, 1.0, 40)
    assert paired.t_test(d) == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-12)
    assert paired.t_test(np.zeros(5)) == 1.0  # identical losses
    assert paired.t_test(np.full(5, 0.3)) is None  # no variance to test with
    assert paired.t_test(np.array([0.2])) is None
    assert paired.t_test(np.array([])) is None


def test_disjoint_windows_share_no_target():
    chosen = paired.disjoint_windows(16, 7)
    assert np.flatnonzero(chosen).tolist() == [0, 7, 14]
    assert paired.disjoint_windows(5, 1).all()


@pytest.mark.parametrize("windows, horizon", [(16, 7), (49, 7), (96, 12), (27, 52)])
def test_no_difference_is_rejected_about_as_often_as_the_level_says(windows, horizon):
    # window means of i.i.d. target-level differences: the windows overlap as a
    # forecast split's do, and the model and the baseline are equally good
    rng = np.random.default_rng(windows * 100 + horizon)
    chosen = paired.disjoint_windows(windows, horizon)
    draws, rejected = 2000, 0
    for _ in range(draws):
        targets = rng.standard_normal(windows + horizon - 1)
        d = np.convolve(targets, np.ones(horizon) / horizon, mode="valid")
        p = paired.t_test(d[chosen])
        rejected += p is not None and p < 0.05
    tested = chosen.sum() >= 2
    assert (0.03 <= rejected / draws <= 0.07) if tested else rejected == 0


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
    tests = {"naive": paired.result("Diebold-Mariano", "mase", -0.22791, 0.0494, 16, "windows"),
             "ets": paired.result("Diebold-Mariano", "mase", 0.0485, 0.8441, 16, "windows"),
             "seasonal_naive": paired.result("Diebold-Mariano", "mase", -0.5, 0.0002, 16,
                                             "windows"),
             "twin": paired.result("Diebold-Mariano", "mase", 0.0, 1.0, 16, "windows"),
             "short": paired.result("Diebold-Mariano", "mase", 0.1, None, 16, "windows")}
    assert paired_line(tests) == [
        "paired over the split's 16 windows, model - baseline in mase (Diebold-Mariano): "
        "naive -0.2279 (p 0.049), ets +0.0485 (p 0.844), seasonal_naive -0.5000 "
        "(p < 0.001), twin +0.0000 (identical), short +0.1000 (no test); p < 0.05: more "
        "than this split's noise"]
    assert paired_line({}) == []
