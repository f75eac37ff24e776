"""The model around the recurrent stack: flat buffer views, gradients by finite differences
(float64), pooling semantics and padding invariance, the Runner."""
import numpy as np
import pytest

from recurrent.conformance import numeric_grad
from recurrent.dropout import Dropout
from recurrent.model import SequenceModel, check_spec
from recurrent.modules import Dense, Embedding
from recurrent.pooling import pool_backward, pool_forward
from recurrent.reference import get_reference_cell

TOKENS = {"input": "tokens", "vocab_size": 7, "embed_dim": 3, "output": "sequence",
          "output_size": 5}


def features_spec(output, size=2):
    return {"input": "features", "input_size": 3, "output": output, "output_size": size}


def test_embedding_gradient_accumulates_repeated_ids():
    rng = np.random.default_rng(0)
    emb = Embedding(6, 4, np.float64, rng)
    ids = np.array([[1, 3, 1], [5, 1, 0]])  # id 1 three times
    probe = rng.standard_normal((2, 3, 4))
    emb.forward(ids)
    emb.backward(probe)
    expected = numeric_grad(lambda: float((emb.forward(ids) * probe).sum()),
                            emb.params()["weight"])
    np.testing.assert_allclose(emb.grads()["weight"], expected, atol=1e-8)
    assert np.all(emb.grads()["weight"][[2, 4]] == 0)  # ids never seen get nothing


def test_embedding_rejects_bad_ids():
    emb = Embedding(4, 2)
    with pytest.raises(ValueError, match="0..3"):
        emb.forward(np.array([0, 4]))
    with pytest.raises(ValueError, match="integer"):
        emb.forward(np.array([0.5]))


def test_dense_gradients():
    rng = np.random.default_rng(1)
    dense = Dense(4, 3, np.float64, rng)
    x = rng.standard_normal((5, 4))
    probe = rng.standard_normal((5, 3))
    dense.forward(x)
    dx = dense.backward(probe)
    loss = lambda: float((dense.forward(x) * probe).sum())  # noqa: E731
    for name in ("weight", "bias"):
        np.testing.assert_allclose(dense.grads()[name], numeric_grad(loss, dense.params()[name]),
                                   atol=1e-8)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), atol=1e-8)


def test_dropout_scales_kept_units_and_backward_uses_the_same_mask():
    drop = Dropout(0.5, np.random.default_rng(2))
    x = np.ones((200, 10))
    y = drop.forward(x)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.35 < (y == 0).mean() < 0.65
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), y)
    drop.training = False
    np.testing.assert_array_equal(drop.forward(x), x)


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
@pytest.mark.parametrize("directions", [1, 2])
def test_pooling_gradient(mode, directions):
    rng = np.random.default_rng(3)
    T, B, H = 4, 3, 2
    out = rng.standard_normal((T, B, directions * H))
    lengths = np.array([4, 2, 1])
    out *= (np.arange(T)[:, None] < lengths)[:, :, None]  # padded steps are zero, as layers emit
    probe = rng.standard_normal((B, directions * H))
    pooled, cache = pool_forward(out, lengths, mode, directions)
    d_out = pool_backward(probe, cache, directions)
    expected = numeric_grad(lambda: float((pool_forward(out, lengths, mode, directions)[0]
                                           * probe).sum()), out)
    valid = (np.arange(T)[:, None] < lengths)[:, :, None]
    np.testing.assert_allclose(d_out * valid, expected * valid, atol=1e-8)
    assert np.all(d_out[~np.broadcast_to(valid, d_out.shape)] == 0)  # nothing flows to padding


def test_pooling_values():
    out = np.arange(24, dtype=np.float64).reshape(3, 2, 4)  # T=3, B=2, D*H=4 (D=2, H=2)
    lengths = np.array([2, 3])
    last, _ = pool_forward(out, lengths, "last", 2)
    # forward half at the last valid step, reverse half at step 0
    np.testing.assert_array_equal(last, [[8, 9, 2, 3], [20, 21, 6, 7]])
    mean, _ = pool_forward(out, lengths, "mean", 2)
    np.testing.assert_array_equal(mean[0], (out[0, 0] + out[1, 0]) / 2)
    mx, _ = pool_forward(-out, lengths, "max", 2)
    np.testing.assert_array_equal(mx, -out[0])


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
@pytest.mark.parametrize("directions", [1, 2])
def test_a_row_of_length_0_pools_to_zeros_and_gets_no_gradient(mode, directions):
    rng = np.random.default_rng(4)
    out = rng.standard_normal((3, 2, directions * 2))  # padding not zero: not read either
    lengths = np.array([0, 2])
    pooled, cache = pool_forward(out, lengths, mode, directions)
    assert np.all(pooled[0] == 0)
    np.testing.assert_array_equal(pooled[1], pool_forward(out[:, 1:], lengths[1:], mode,
                                                          directions)[0][0])
    d_out = pool_backward(np.ones_like(pooled), cache, directions)
    assert np.all(d_out[:, 0] == 0) and np.isfinite(d_out).all()


def make_model(spec, cell="lstm", **kw):
    kw.setdefault("hidden_size", 4)
    return SequenceModel(spec, cell=get_reference_cell(cell), dtype=np.float64, seed=5, **kw)


def test_flat_buffer_holds_every_parameter_as_named_views():
    model = make_model(TOKENS, num_layers=2, bidirectional=True)
    offsets = sorted(model.layout.values())
    position = 0
    for offset, shape in offsets:
        assert offset == position
        position += int(np.prod(shape))
    assert position == model.params.size == model.grads.size
    assert list(model.layout)[:2] == ["embedding.weight", "rnn.weight_ih_l0"]
    assert "rnn.weight_hh_l1_reverse" in model.layout and list(model.layout)[-1] == "head.bias"
    for name, view in model.named_params.items():
        assert np.shares_memory(view, model.params), name
    for name, array in model.rnn.params().items():
        assert np.shares_memory(array, model.params), name
    for name, array in model.rnn.grads().items():
        assert np.shares_memory(array, model.grads), name
    # writing into the flat buffer changes what the model computes
    x = np.array([[1, 2], [3, 4], [0, 6]])
    before, _ = model.forward(x)
    model.named_params["rnn.weight_hh_l0"][...] += 0.5
    after, _ = model.forward(x)
    assert not np.allclose(before, after)


@pytest.mark.parametrize("spec, cell, bidirectional", [
    (TOKENS, "lstm", False),
    (features_spec("last"), "gru", True),
    (features_spec("mean"), "rnn_tanh", True),
    (features_spec("max"), "lstm", False),
], ids=["tokens-sequence-lstm", "last-gru-bi", "mean-rnn-bi", "max-lstm"])
def test_whole_model_gradient_by_finite_differences(spec, cell, bidirectional):
    model = make_model(spec, cell, num_layers=2, bidirectional=bidirectional)
    rng = np.random.default_rng(6)
    T, B = 4, 3
    lengths = np.array([4, 2, 3])
    if spec["input"] == "tokens":
        x = rng.integers(0, spec["vocab_size"], (T, B))
    else:
        x = rng.standard_normal((T, B, spec["input_size"]))
    y, _ = model.forward(x, lengths=lengths)
    probe = rng.standard_normal(y.shape)
    model.zero_grad()
    model.backward(probe)
    analytic = model.grads.copy()
    numeric = numeric_grad(lambda: float((model.forward(x, lengths=lengths)[0] * probe).sum()),
                           model.params)
    np.testing.assert_allclose(analytic, numeric, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("output", ["last", "mean", "max", "sequence"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_a_rows_result(output, bidirectional):
    model = make_model(features_spec(output), "gru", bidirectional=bidirectional)
    rng = np.random.default_rng(7)
    short = rng.standard_normal((3, 1, 3))
    alone, _ = model.forward(short)
    batch = rng.standard_normal((6, 2, 3)) * 10  # garbage past the short row's length
    batch[:3, 0] = short[:, 0]
    together, _ = model.forward(batch, lengths=np.array([3, 6]))
    if output == "sequence":
        np.testing.assert_allclose(together[:3, 0], alone[:, 0], atol=1e-12)
        assert np.all(together[3:, 0] == 0)
    else:
        np.testing.assert_allclose(together[0], alone[0], atol=1e-12)


def test_last_pooling_of_bidirectional_layer_is_h_n():
    model = make_model(features_spec("last"), "lstm", bidirectional=True, num_layers=2)
    model.head.params()["weight"][...] = np.eye(2, 8)  # read the pooled vector's first 2 units
    model.head.params()["bias"][...] = 0
    x = np.random.default_rng(8).standard_normal((5, 3, 3))
    lengths = np.array([5, 1, 3])
    out, _ = model.rnn.forward(x, lengths=lengths)
    pooled, _ = pool_forward(out, lengths, "last", 2)
    _, (h_n, _) = model.rnn.forward(x, lengths=lengths)
    np.testing.assert_allclose(pooled, np.concatenate([h_n[-2], h_n[-1]], axis=1), atol=1e-12)


def test_step_equals_forward_and_runner_is_eval_mode():
    model = make_model(TOKENS, "lstm", num_layers=2, dropout=0.5)
    x = np.random.default_rng(9).integers(0, 7, (5, 2))
    runner = model.runner()
    full, _ = runner.forward(x)
    assert model.training  # restored
    again, _ = runner.forward(x)
    np.testing.assert_array_equal(full, again)  # no dropout in eval mode
    state = None
    for t in range(5):
        y_t, state = runner.step(x[t], state)
        np.testing.assert_allclose(y_t, full[t], atol=1e-12)
    train_out, _ = model.forward(x)
    assert not np.allclose(train_out, full)  # dropout is active in training mode


def test_reseeding_dropout_reproduces_masks():
    model = make_model(TOKENS, "rnn_tanh", num_layers=2, dropout=0.3)
    x = np.random.default_rng(10).integers(0, 7, (4, 3))
    model.reseed_dropout((1, 7))
    a, _ = model.forward(x)
    b, _ = model.forward(x)
    model.reseed_dropout((1, 7))
    c, _ = model.forward(x)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, c)


def test_state_dict_round_trip_and_errors():
    a, b = make_model(TOKENS), SequenceModel(TOKENS, cell=get_reference_cell("lstm"),
                                             hidden_size=4, dtype=np.float64, seed=99)
    assert not np.allclose(a.params, b.params)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.params, b.params)
    bad = a.state_dict()
    bad["head.bias"] = np.zeros(3)
    with pytest.raises(ValueError, match="head.bias"):
        b.load_state_dict(bad)


def test_nested_sequences_of_different_lengths_name_the_argument():
    """Token ids, features and output gradients given as lists whose rows differ in
    length: the error names the argument (numpy's own names none)."""
    message = "expected an array, got nested sequences of different lengths"
    with pytest.raises(ValueError, match=f"^x: {message}$"):
        make_model(TOKENS).forward([[1, 2], [3]])
    with pytest.raises(ValueError, match=f"^x: {message}$"):
        make_model(features_spec("last")).forward([[[0.0] * 3], [[0.0] * 2]])
    model = make_model(features_spec("last"))
    model.forward(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=f"^d_outputs: {message}$"):
        model.backward([[0.0] * 2, [0.0]])


def test_backward_after_the_parameters_changed_is_refused_before_any_gradient():
    """An optimizer step (params_changed()) between forward and backward: the model's
    backward refuses before the head adds its gradients, rather than mixing new weights
    with the old pass's activations."""
    model = make_model(features_spec("last"))
    model.forward(np.ones((3, 2, 3)))
    model.params[:] *= 0.5
    model.params_changed()
    with pytest.raises(ValueError, match="^backward: the parameters changed"):
        model.backward(np.ones((2, 2)))
    assert not model.grads.any()


def test_bad_specs():
    with pytest.raises(ValueError, match="input"):
        check_spec({"input": "pixels", "output": "sequence", "output_size": 2})
    with pytest.raises(ValueError, match="vocab_size"):
        check_spec({"input": "tokens", "embed_dim": 2, "output": "last", "output_size": 2})
    with pytest.raises(ValueError, match="output"):
        check_spec({"input": "features", "input_size": 2, "output": "first", "output_size": 2})
    with pytest.raises(ValueError, match="needs the whole"):
        make_model(features_spec("mean")).step(np.zeros((1, 3)))
