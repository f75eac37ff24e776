"""recurrent used as a Python library: copies of a model, and the model's argument checks."""
import copy

import numpy as np
import pytest

from recurrent import optim
from recurrent.model import SequenceModel

FEATURES = {"input": "features", "input_size": 3, "output": "last", "output_size": 2}
TOKENS = {"input": "tokens", "vocab_size": 7, "embed_dim": 4, "output": "sequence",
          "output_size": 3}


def _inputs(spec, rng):
    if spec["input"] == "tokens":
        return rng.integers(0, spec["vocab_size"], size=(5, 3))
    return rng.standard_normal((5, 3, spec["input_size"])).astype(np.float32)


def _sgd_step(model, x, d_outputs):
    """One plain SGD step through the model's flat buffers; the outputs before it."""
    model.zero_grad()
    y, _ = model.forward(x)
    model.backward(d_outputs)
    optim.SGD(model.params, model.grads, lr=0.5).step()
    model.params_changed()
    return y


@pytest.mark.parametrize("make_copy", [copy.deepcopy], ids=["deepcopy"])
@pytest.mark.parametrize("spec", [FEATURES, TOKENS], ids=["features", "tokens"])
def test_a_copied_model_trains_as_the_original_does(make_copy, spec):
    # The copy's flat buffers must be its modules' storage, as the original's are: copied
    # array by array, the optimizer updated a buffer the layers never read and backward
    # added into gradients the buffer did not hold (training the copy did nothing).
    rng = np.random.default_rng(0)
    model = SequenceModel(spec, cell="lstm", hidden_size=5, num_layers=2, seed=3)
    twin = make_copy(model)
    for name, array in twin.rnn.params().items():
        assert np.shares_memory(array, twin.params), name
    assert not np.shares_memory(twin.params, model.params)
    x = _inputs(spec, rng)
    y, _ = model.forward(x)
    d_outputs = rng.standard_normal(y.shape).astype(np.float32)
    original_before = model.params.copy()

    _sgd_step(twin, x, d_outputs)
    np.testing.assert_array_equal(model.params, original_before)  # the original untouched
    _sgd_step(model, x, d_outputs)
    np.testing.assert_array_equal(twin.grads, model.grads)
    assert np.abs(twin.grads).sum() > 0
    np.testing.assert_array_equal(twin.params, model.params)
    np.testing.assert_array_equal(twin.forward(x)[0], model.forward(x)[0])
    assert not np.array_equal(twin.forward(x)[0], y)  # the step changed what it computes


def test_a_shallow_copy_shares_the_model():
    model = SequenceModel(FEATURES, hidden_size=4, seed=0)
    same = copy.copy(model)
    assert same.params is model.params and same.rnn is model.rnn
    for name, array in model.rnn.params().items():
        assert np.shares_memory(array, model.params), name


@pytest.mark.parametrize("kwargs, message", [
    (dict(dtype="bogus"), "dtype: expected float32 or float64, got 'bogus'"),
    (dict(seed=-1), "seed: expected None, an integer >= 0 or a sequence of them, got -1"),
    (dict(seed=1.5), "seed: expected None, an integer >= 0"),
    (dict(seed="x"), "seed: expected None, an integer >= 0"),
], ids=["dtype", "seed-negative", "seed-float", "seed-str"])
def test_model_constructor_names_a_bad_dtype_or_seed(kwargs, message):
    # as the layers do (recurrent.LSTM(..., seed=-1)): a one-line ValueError naming the
    # argument, not numpy's TypeError or an unnamed "expected non-negative integer"
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        SequenceModel(FEATURES, hidden_size=4, **kwargs)


@pytest.mark.parametrize("x_t", [3, [[1, 2], [3, 4]]], ids=["scalar", "2d"])
def test_token_model_step_names_the_shape_it_takes(x_t):
    model = SequenceModel(TOKENS, hidden_size=4, seed=0)
    with pytest.raises(ValueError, match=r"^x_t: expected token ids of shape \(B,\), got shape"):
        model.step(x_t)
    y, _ = model.step(np.array([1, 2]))  # (B,) ids: the forward pass's outputs at t = 0
    np.testing.assert_allclose(y, model.forward(np.array([[1, 2]]), need_grad=False)[0][0],
                               rtol=1e-6, atol=1e-6)
