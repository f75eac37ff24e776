"""forecast: the learned smoothing's compiled recursions (plugins/forecast/_smoothing.pyx,
behind smoothing._run and smoothing.reverse) are bitwise the pure-Python loops they
replaced (kept here as the reference, with the level before the first row that a fit
moved on past earlier rows starts from); test_forecast_smoothing.py checks the gradient
through them against finite differences."""
import numpy as np
import pytest

from recurrent_plugins.forecast import _smoothing
from recurrent_plugins.forecast import smoothing


# --- the reference: smoothing.py's loops before they were compiled, verbatim ---------

def ref_run(y, theta, season, before=None):
    n, m = len(y), season
    alpha, gamma = smoothing._sigmoid(theta[0]), smoothing._sigmoid(theta[1])
    S = np.zeros(n + m)
    if m > 1:
        S[:m] = theta[2:2 + m]
    level = np.empty(n)
    prev = y[0] - S[0] if before is None else before  # before: a moved fit's level
    for t in range(n):
        prev = alpha * (y[t] - S[t]) + (1.0 - alpha) * prev
        level[t] = prev
        if m > 1:
            S[t + m] = gamma * (y[t] - prev) + (1.0 - gamma) * S[t]
    return level, S, alpha, gamma


def ref_reverse(y, theta, season, level, S, d_level, d_S):
    n, m = len(y), season
    alpha, gamma = smoothing._sigmoid(theta[0]), smoothing._sigmoid(theta[1])
    d_alpha = d_gamma = 0.0
    for t in range(n - 1, -1, -1):
        before = level[t - 1] if t > 0 else y[0] - S[0]
        if m > 1:  # S[t+m] = gamma (y - l[t]) + (1 - gamma) S[t]
            d_gamma += d_S[t + m] * ((y[t] - level[t]) - S[t])
            d_level[t] -= gamma * d_S[t + m]
            d_S[t] += (1.0 - gamma) * d_S[t + m]
        # l[t] = alpha (y - S[t]) + (1 - alpha) l[t-1]
        d_alpha += d_level[t] * ((y[t] - S[t]) - before)
        d_S[t] -= alpha * d_level[t]
        if t > 0:
            d_level[t - 1] += (1.0 - alpha) * d_level[t]
        else:  # l[-1] = y[0] - S[0]
            d_S[0] -= (1.0 - alpha) * d_level[t]
    grad = np.zeros(len(theta), dtype=np.float64)
    grad[0] = d_alpha * alpha * (1.0 - alpha)
    grad[1] = d_gamma * gamma * (1.0 - gamma)
    if m > 1:
        grad[2:2 + m] = d_S[:m]
    return grad


# --- cases -----------------------------------------------------------------------------

SEASONS = [1, 2, 7, 12, 24]
LENGTHS = [1, 2, 3, 5, 11, 24, 25, 49, 200, 1000, 3001]
# (a, g): logits of alpha and gamma, from moderate to the sigmoid's ends (alpha 1e-13,
# 1 - 1e-13, exactly 1.0 and about 4e-18)
LOGITS = [(0.4, -0.7), (-30.0, 30.0), (30.0, -30.0), (40.0, -40.0), (-40.0, 40.0),
          (-2.0, -9.0)]


def series(n, season, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (3.0 * np.sin(2 * np.pi * t / max(season, 2)) + 0.01 * t
            + rng.standard_normal(n) * rng.choice([0.1, 1.0, 50.0]))


def theta_for(season, logits, seed):
    rng = np.random.default_rng(seed + 1)
    return np.concatenate([logits, rng.normal(scale=2.0, size=season if season > 1 else 0)])


def cases():
    for season in SEASONS:
        for n in LENGTHS:
            for i, logits in enumerate(LOGITS):
                yield n, season, logits, 1000 * season + 10 * n + i


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)
    # array_equal calls -0.0 == 0.0: compare the bits too
    assert a.tobytes() == b.tobytes()


def test_the_compiled_module_is_the_extension():
    assert not _smoothing.__file__.endswith(".py")


@pytest.mark.parametrize("season", SEASONS)
def test_run_and_reverse_are_bitwise_the_python_loops(season):
    for n, m, logits, seed in cases():
        if m != season:
            continue
        y, theta = series(n, m, seed), theta_for(m, logits, seed)
        got, want = smoothing._run(y, theta, m), ref_run(y, theta, m)
        for g, w in zip(got[:2], want[:2]):
            assert_same(g, w)
        assert got[2:] == want[2:]
        before = float(np.random.default_rng(seed + 3).normal(scale=5.0))
        for g, w in zip(smoothing._run(y, theta, m, before)[:2],
                        ref_run(y, theta, m, before)[:2]):
            assert_same(g, w)
        level, S = want[0], want[1]
        rng = np.random.default_rng(seed + 2)
        d_level, d_S = rng.standard_normal(n), rng.standard_normal(n + m)
        d_level[rng.random(n) < 0.5] = 0.0  # rows no loss reads
        mine_l, mine_S = d_level.copy(), d_S.copy()
        ref_l, ref_S = d_level.copy(), d_S.copy()
        grad = smoothing.reverse(y, theta, m, level, S, mine_l, mine_S)
        assert_same(grad, ref_reverse(y, theta, m, level, S, ref_l, ref_S))
        assert_same(mine_l, ref_l)  # the gradients consumed in place, the same way
        assert_same(mine_S, ref_S)


@pytest.mark.parametrize("season", [1, 7])
def test_non_finite_values_go_through_as_in_the_loops(season):
    y = series(300, season, 5)
    y[[3, 100]] = np.nan
    y[200] = np.inf
    theta = theta_for(season, (0.3, -1.0), 5)
    got, want = smoothing._run(y, theta, season), ref_run(y, theta, season)
    assert_same(got[0], want[0])
    assert_same(got[1], want[1])
    d_level, d_S = np.ones(300), np.ones(300 + season)
    a, b = d_level.copy(), d_S.copy()
    assert_same(smoothing.reverse(y, theta, season, want[0], want[1], a, b),
                ref_reverse(y, theta, season, want[0], want[1], d_level, d_S))


def test_strided_and_float32_inputs_are_read_as_float64_and_gradients_updated_in_place():
    table = np.random.default_rng(3).standard_normal((500, 3))
    y = table[:, 1]  # a column: not contiguous
    theta = theta_for(12, (0.1, -2.0), 3)
    level, S, _, _ = ref_run(y, theta, 12)
    assert_same(smoothing._run(y, theta, 12)[0], level)
    assert_same(smoothing._run(y.astype(np.float32), theta, 12)[0],
                ref_run(y.astype(np.float32), theta, 12)[0])
    grads = np.random.default_rng(4).standard_normal((512, 2))
    d_level, d_S = grads[:500, 0], grads[:, 1]  # columns: not contiguous
    ref_l, ref_S = d_level.copy(), d_S.copy()
    want = ref_reverse(y, theta, 12, level, S, ref_l, ref_S)
    assert_same(smoothing.reverse(y, theta, 12, level, S, d_level, d_S), want)
    assert_same(grads[:500, 0], ref_l)  # updated in place, as the loop did
    assert_same(grads[:, 1], ref_S)


def test_an_empty_series_fails_as_the_loop_did():
    with pytest.raises(IndexError):
        smoothing._run(np.zeros(0), np.array([0.0, 0.0]), 1)
    with pytest.raises(IndexError):
        ref_run(np.zeros(0), np.array([0.0, 0.0]), 1)
    # reverse over no rows: nothing to accumulate
    grad = smoothing.reverse(np.zeros(0), np.array([0.1, 0.2]), 1, np.zeros(0), np.zeros(1),
                             np.zeros(0), np.zeros(1))
    assert_same(grad, np.zeros(2))


def test_shapes_that_do_not_match_are_refused_not_read_out_of_bounds():
    y = np.ones(10)
    with pytest.raises(ValueError):
        _smoothing.forward(y, np.zeros(10), np.empty(10), 0.5, 0.5, 4)  # S (N+m,)
    with pytest.raises(ValueError):
        _smoothing.forward(y, np.zeros(14), np.empty(9), 0.5, 0.5, 4)
    with pytest.raises(ValueError):
        _smoothing.backward(y, np.ones(10), np.zeros(14), np.ones(10), np.ones(12), 0.5,
                            0.5, 4)


@pytest.fixture
def python_loops(monkeypatch):
    """smoothing.py with its loops back in Python (the reference)."""
    def use():
        monkeypatch.setattr(smoothing, "_run", ref_run)
        monkeypatch.setattr(smoothing, "reverse", ref_reverse)
    return use


@pytest.mark.parametrize("season, horizon", [(1, 1), (1, 5), (2, 3), (7, 7), (12, 30),
                                             (24, 24)])
def test_loss_and_grad_fit_and_components_are_bitwise_the_python_loops(
        season, horizon, python_loops):
    rng = np.random.default_rng(season + horizon)
    scaled = np.stack([series(400, season, 1), series(400, season, 2)], axis=1)
    theta = theta_for(season, (0.2, -1.5), 7)
    fits = [{"season": season, "theta": [float(v) for v in theta]}, None]
    d_forecast = rng.standard_normal((400, horizon + 2, 2))
    d_level, d_deseason = rng.standard_normal((400, 2)), rng.standard_normal((400, 2))

    def outputs():
        smoothing._MEMO.clear()
        loss, grad = smoothing.loss_and_grad(scaled[:, 0], theta, season, horizon)
        comps = smoothing.components(scaled, fits, horizon)
        grads = smoothing.components_grad(scaled, fits, d_forecast, d_level, d_deseason)
        fit = smoothing.fit_column(scaled[:300, 1], season, horizon)
        return loss, grad, comps, grads, fit

    mine = outputs()
    python_loops()
    ref = outputs()
    smoothing._MEMO.clear()
    assert mine[0] == ref[0]
    assert_same(mine[1], ref[1])
    for a, b in zip(mine[2], ref[2]):
        assert_same(a, b)
    assert mine[3][1] is None and ref[3][1] is None
    assert_same(mine[3][0], ref[3][0])
    assert mine[4] == ref[4]  # the fit: L-BFGS-B takes the same path
