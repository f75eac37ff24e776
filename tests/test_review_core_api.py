"""The public library API at its edges: argument checks that give one-line errors instead of
silent wrong results, and norms that stay finite for finite gradients."""
import math

import numpy as np
import pytest

import recurrent
from recurrent import optim
from recurrent.model import SequenceModel
from recurrent.step import clip_gradients

FEATURES = {"input": "features", "input_size": 3, "output_size": 2}


def test_dir_lists_the_lazy_names():
    names = dir(recurrent)
    for name in ("LSTM", "GRU", "RNN", "Recurrent", "clip_grad_norm", "StreamPool"):
        assert name in names


@pytest.mark.parametrize("clip_value", [1.0, None])
def test_clip_gradients_norm_is_finite_for_large_float32_gradients(clip_value):
    # Squares of 1e20 overflow float32, the norm itself (1.41e20) does not.
    grads = np.array([1e20, 1e20, 3.0], np.float32)
    norm, _ = clip_gradients(grads, clip_norm=None, clip_value=clip_value)
    assert norm == pytest.approx(math.sqrt(2e40 + 9.0), rel=1e-6)
    from recurrent.clip import total_norm
    assert total_norm([np.array([1e20], np.float32), np.array([1e20], np.float32)]) \
        == pytest.approx(math.sqrt(2) * 1e20, rel=1e-6)


@pytest.mark.parametrize("output", ["sequence", "last"])
def test_model_backward_refuses_a_gradient_of_the_wrong_shape(output):
    model = SequenceModel(dict(FEATURES, output=output), hidden_size=8, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 3)).astype(np.float32)
    y, _ = model(x)
    wrong = np.ones(y.shape[-2:] if output == "sequence" else (1, 2), np.float32)
    with pytest.raises(ValueError, match=r"d_outputs: expected shape"):
        model.backward(wrong)
    model.backward(np.ones_like(y))   # the forward pass is still there to differentiate


def test_layer_refuses_values_beyond_float32():
    layer = recurrent.LSTM(3, 16, seed=0)
    with pytest.raises(ValueError, match="x: has values too large for float32"):
        layer(np.full((5, 2, 3), 1e39))
    out, _ = layer(np.ones((5, 2, 3)))
    with pytest.raises(ValueError, match="d_out: has values too large for float32"):
        layer.backward(np.full(out.shape, -1e39))


def test_load_state_dict_refuses_values_beyond_float32():
    layer = recurrent.GRU(3, 16, seed=0)
    state = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    state["weight_ih_l0"][0, 0] = 1e39
    with pytest.raises(ValueError, match="weight_ih_l0 has values too large for float32"):
        layer.load_state_dict(state)
    assert np.isfinite(layer.params()["weight_ih_l0"]).all()
    model = SequenceModel(dict(FEATURES, output="last"), hidden_size=8)
    state = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    state["head.bias"][0] = -1e300
    with pytest.raises(ValueError, match="head.bias has values too large"):
        model.load_state_dict(state)


NAN = float("nan")


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(momentum=NAN)), (optim.SGD, dict(weight_decay=NAN)),
    (optim.Adam, dict(eps=NAN)), (optim.Adam, dict(weight_decay=NAN)),
    (optim.AdamW, dict(weight_decay=NAN)), (optim.RMSProp, dict(momentum=NAN)),
    (optim.RMSProp, dict(eps=NAN)), (optim.RMSProp, dict(weight_decay=NAN)),
    (optim.Adam, dict(betas=0.9)),
])
def test_optimizer_refuses_bad_hyperparameters(cls, kwargs):
    params, grads = np.ones(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError):
        cls(params, grads, lr=0.1, **kwargs)


def test_optimizer_refuses_lists():
    with pytest.raises(ValueError, match="numpy arrays"):
        optim.SGD([1.0, 2.0], [0.0, 0.0], lr=0.1)


@pytest.mark.parametrize("drop", ["step_count", "exp_avg_sq"])
def test_optimizer_load_state_dict_checks_everything_first(drop):
    source = optim.Adam(np.ones(3, np.float32), np.ones(3, np.float32), lr=0.1)
    source.step()
    state = {k: np.copy(v) for k, v in source.state_dict().items()}
    del state[drop]
    target = optim.Adam(np.ones(3, np.float32), np.ones(3, np.float32), lr=0.1)
    with pytest.raises(ValueError, match=f"lacks '{drop}'"):
        target.load_state_dict(state)
    assert target.step_count == 0 and not target.buffers["exp_avg"].any()


@pytest.mark.parametrize("forget_bias", [NAN, "1"])
def test_forget_bias_must_be_a_finite_number(forget_bias):
    with pytest.raises(ValueError, match="forget_bias: expected a finite number"):
        recurrent.LSTM(3, 16, forget_bias=forget_bias)


@pytest.mark.parametrize("seed", [-1, "x", 1.5])
def test_bad_seed_is_named(seed):
    with pytest.raises(ValueError, match="seed: expected"):
        recurrent.LSTM(3, 16, seed=seed)
