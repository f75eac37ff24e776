"""Audit (mutation round 3) of plugins/forecast/joint.py and smoothing.restart: which runs
train the smoothing jointly, the smoothing's share of a blended anchor and its gradient,
and moving the fits to a new file's first rows. Expected values are worked out by hand or
by finite differences of the smoothing's own forecast table (smoothing.forecast_table)."""
import numpy as np

from recurrent_plugins.forecast import joint, smoothing


def test_runs_saved_without_es_train_keep_the_fitted_smoothing():
    """Only --model esrnn with es_train "joint" trains theta; a state that records no
    es_train (a run made before the option) is "first": no trained parameters."""
    fit = {"season": 1, "alpha": 0.5, "gamma": 0.5, "theta": [0.0, 0.0], "loss": 1.0}
    assert not joint.joint({"model": "esrnn"})
    assert not joint.joint({"model": "esrnn", "es_train": "first"})
    assert joint.joint({"model": "esrnn", "es_train": "joint"})
    assert not joint.joint({"model": "rnn", "es_train": "joint"})
    assert joint.trained_params({"model": "esrnn", "es": [fit]}) == {}
    params = joint.trained_params({"model": "esrnn", "es_train": "joint", "es": [fit, None]})
    assert list(params) == ["es.0"] and params["es.0"].dtype == np.float32


def test_the_smoothing_share_of_each_anchor():
    """"es": 1, "es+last": 1/2, "last": 0, "es+last+ets": 1/3."""
    state = {"horizon": 4, "anchors": ["es", "es+last", "last", "es+last+ets"]}
    np.testing.assert_allclose(joint.es_weights(state), [1.0, 0.5, 0.0, 1 / 3])


def test_theta_gradient_of_a_blended_anchor_matches_finite_differences():
    """Anchors es, es+last, last over 3 steps (weights 1, 1/2, 0), no gaps, the anchor
    path only (no inputs): d loss / d theta is sum_{b,k} d_out[b, k] * w[k] *
    d table[origin_b, k] / d theta, checked by central differences of forecast_table."""
    rng = np.random.default_rng(0)
    n, horizon, season = 30, 3, 4
    y = np.sin(np.arange(n) * np.pi / 2) + 0.1 * rng.standard_normal(n)
    theta = np.array([0.3, -0.5, 0.2, -0.1, 0.4, -0.5])
    fit = {"season": season, "theta": list(theta), "alpha": 0.5, "gamma": 0.5, "loss": 0.0}
    state = {"model": "esrnn", "es_train": "joint", "horizon": horizon,
             "anchors": ["es", "es+last", "last"], "es": [fit]}
    origins = np.array([5, 11, 20])
    d_out = rng.standard_normal((len(origins), horizon))  # (B, H*C), C = 1
    last_seen = np.arange(n)[:, None]
    grads = joint.theta_grads(y[:, None], last_seen, origins, state, d_out, None)
    weights = np.array([1.0, 0.5, 0.0])

    def f(th):
        table = smoothing.forecast_table(y, th, season, horizon)[0]  # (N, H)
        return float(np.sum(d_out * weights[None, :] * table[origins]))

    eps = 1e-6
    expected = np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps)
                         for e in np.eye(len(theta))])
    np.testing.assert_allclose(grads["es.0"], expected, rtol=1e-6, atol=1e-9)


def test_restart_takes_a_head_of_exactly_one_season():
    """A head of 4 rows holds one whole season of 4: the initial indices become its
    deviations from its mean (1, 3, 5, 7 -> -3, -1, 1, 3); alpha and gamma stay. With
    3 rows (less than a season) the learned indices are kept."""
    fit = {"season": 4, "alpha": 0.4, "gamma": 0.2,
           "theta": [0.1, -0.2, 9.0, 9.0, 9.0, 9.0], "loss": 0.5}
    head = np.array([[1.0], [3.0], [5.0], [7.0]])
    (moved,) = smoothing.restart([fit], head)
    assert moved["theta"] == [0.1, -0.2, -3.0, -1.0, 1.0, 3.0]
    assert moved["alpha"] == 0.4 and moved["gamma"] == 0.2
    (kept,) = smoothing.restart([fit], head[:3])
    assert kept["theta"] == fit["theta"]
