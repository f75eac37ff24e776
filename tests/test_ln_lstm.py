"""The layer-normalised LSTM (ln_lstm) beyond what every built-in cell is tested for
(tests/test_kernels.py, test_layers.py, test_reference.py run it with the others):
the same equations written in torch ops with autograd (the bench's torch side,
plugins/bench.py: torch_ln_lstm), stacks trained from the CLI (char-lm, also with
recurrent dropout and zoneout; sentiment, bidirectional), the single-step path, the
exports (ONNX as a Scan, torch as a printed module) and int8 evaluation.

Legend: T time, B batch, I input, H hidden, G = 4H.
"""
import json

import numpy as np
import pytest
from helpers import (bundled_reviews, checkpoint_params, invoke, ok, one_line_error,
                     same_params, write_reviews)

from recurrent.layers import Recurrent
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell
from recurrent_plugins.bench import torch_ln_lstm


def _problem(T, B, I, H, seed):
    """Random float64 parameters (gains and cell shift away from their init), inputs,
    states and output gradients of one ln_lstm cell."""
    rng = np.random.default_rng(seed)
    cell = get_cell("ln_lstm")
    params = {k: np.zeros(s) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    for kind in ("ln_gain_ih", "ln_gain_hh", "ln_gain_c", "ln_bias_c"):
        params[kind] += rng.normal(scale=0.3, size=params[kind].shape)
    x = rng.normal(size=(T, B, I))
    states = tuple(rng.normal(scale=0.5, size=(B, H)) for _ in range(2))
    d_out = rng.normal(size=(T, B, H))
    d_finals = tuple(rng.normal(size=(B, H)) for _ in range(2))
    return params, x, states, d_out, d_finals


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 0, 4]], ids=["full", "lengths"])
def test_matches_the_same_equations_in_torch_autograd_float64(backend, lengths):
    torch = pytest.importorskip("torch", reason="torch not installed")
    T, B, I, H = 5, 4, 6, 12
    params, x, states, d_out, d_finals = _problem(T, B, I, H, seed=3)
    lengths = np.full(B, T, np.int64) if lengths is None else np.array(lengths, np.int64)
    cell = get_cell("ln_lstm") if backend == "fast" else get_reference_cell("ln_lstm")
    out, finals, cache = cell.forward(x, states, params, lengths, 2)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, 2)

    module = torch_ln_lstm(I, H).double()   # the equations in torch ops, autograd
    module.load_state_dict({f"{k}_l0": torch.tensor(v) for k, v in params.items()})
    tx = torch.tensor(x, requires_grad=True)
    ts = tuple(torch.tensor(s, requires_grad=True) for s in states)
    t_out, t_finals = module(tx, ts, lengths)
    loss = (t_out * torch.tensor(d_out)).sum() + sum(
        (f * torch.tensor(d)).sum() for f, d in zip(t_finals, d_finals))
    loss.backward()
    tol = dict(rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tol)
    for got, want in zip(finals, t_finals):
        np.testing.assert_allclose(got, want.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    for got, want in zip(d_states, ts):
        np.testing.assert_allclose(got, want.grad.numpy(), **tol)
    for kind in params:
        np.testing.assert_allclose(grads[kind], getattr(module, f"{kind}_l0").grad.numpy(),
                                   err_msg=kind, **tol)


def test_normalisation_and_cell_shift_do_what_the_equations_say():
    params, x, states, _, _ = _problem(3, 2, 4, 8, seed=1)
    cell = get_cell("ln_lstm")
    lengths = np.full(2, 3, np.int64)
    # LN(x W_ih^T) does not see the scale of x (up to eps in the variance); the LSTM does
    out, _, _ = cell.forward(x, states, params, lengths, 1)
    scaled, _, _ = cell.forward(7.0 * x, states, params, lengths, 1)
    np.testing.assert_allclose(out, scaled, atol=1e-3)
    lstm = get_cell("lstm")
    torch_kinds = {k: params[k] for k in lstm.param_shapes(4, 8)}
    plain, _, _ = lstm.forward(x, states, torch_kinds, lengths, 1)
    plain_scaled, _, _ = lstm.forward(7.0 * x, states, torch_kinds, lengths, 1)
    assert np.abs(plain - plain_scaled).max() > 0.1
    # ln_gain_c = 0: h = o * tanh(b_c) whatever the cell state, o in (0, 1)
    flat = dict(params, ln_gain_c=np.zeros(8))
    out, _, _ = cell.forward(x, states, flat, lengths, 1)
    again, _, _ = cell.forward(x, (states[0], states[1] + 5.0), flat, lengths, 1)
    np.testing.assert_array_equal(out[0], again[0])
    assert np.all(np.sign(out) == np.sign(np.tanh(params["ln_bias_c"]))[None, None])
    assert np.all(np.abs(out) < np.abs(np.tanh(params["ln_bias_c"]))[None, None])


def _float32_and_reference(I, H, seed, edit):
    """An ln_lstm float32 layer with parameters changed by edit(state_dict), and the
    reference cell's float64 layer with the same (float32) values."""
    fast = Recurrent("ln_lstm", I, H, seed=seed)
    params = fast.state_dict()
    edit(params)
    fast.load_state_dict(params)
    ref = Recurrent(get_reference_cell("ln_lstm"), I, H, dtype=np.float64)
    ref.load_state_dict({k: v.astype(np.float64) for k, v in params.items()})
    return fast, ref


@pytest.mark.parametrize("H", [7, 33])
def test_float32_normalises_a_block_of_equal_values_to_exact_zeros(H):
    """Equal rows in every gate block of W_ih and W_hh make each block of x W_ih^T and
    h W_hh^T a block of equal float32 values (and c_t too), ~1e5 here: their LN is 0
    (variance 0, eps in the square root), exactly. A mean that rounds to an ulp off the
    values (the sum of 7 or 33 of them divided by 7 or 33) would come out as +-ulp * rstd
    = +-ulp * 316 instead, O(1) and more at this size."""
    def constant_blocks(params):
        params["weight_ih_l0"][:] = 1000.1
        params["weight_hh_l0"][:] = 1e5 / 3

    fast, ref = _float32_and_reference(5, H, 2, constant_blocks)
    x = 100 * np.random.default_rng(8).standard_normal((4, 3, 5)).astype(np.float32)
    want, (h_want, c_want) = ref(x.astype(np.float64), need_grad=False)
    for need_grad in (True, False):
        out, (h_n, c_n) = fast(x, need_grad=need_grad)
        np.testing.assert_allclose(out, want, atol=1e-6)
        np.testing.assert_allclose(h_n, h_want, atol=1e-6)
        np.testing.assert_allclose(c_n, c_want, atol=1e-6)


@pytest.mark.parametrize("scale", [1e20, 1e30])
def test_float32_normalises_pre_activations_whose_squares_overflow(scale):
    """Weights times 1e20 and 1e30 give pre-activations whose squared deviations overflow
    float32 (above ~1.8e19); LN does not see the scale, so outputs and gradients are those
    of the reference in float64 (for the weights' gradients, relative to their size)."""
    def scaled_weights(params):
        for kind in ("weight_ih_l0", "weight_hh_l0"):
            params[kind] *= scale

    T, B, I, H = 5, 3, 4, 9
    fast, ref = _float32_and_reference(I, H, 4, scaled_weights)
    _float32_as_float64(fast, ref, (T, B, I), (T, B, H))


def _float32_as_float64(layer32, layer64, x_shape, out_shape):
    """A forward and backward of float32 ``layer32`` and float64 ``layer64`` on the same
    random inputs agree to 1e-4: outputs, states, input and parameter gradients (those
    finite)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    d_out = rng.standard_normal(out_shape).astype(np.float32)
    results = []
    for layer, dtype in ((layer32, np.float32), (layer64, np.float64)):
        out, state = layer(x.astype(dtype))
        layer.zero_grad()
        dx, d_state = layer.backward(d_out.astype(dtype))
        results.append((out, *state, dx, *d_state, layer.grads()))
    *got, got_grads = results[0]
    *want, want_grads = results[1]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for kind, g in want_grads.items():
        assert np.isfinite(got_grads[kind]).all(), kind
        np.testing.assert_allclose(got_grads[kind], g, rtol=1e-4,
                                   atol=1e-4 * np.abs(g).max(), err_msg=kind)


def _equal_blocks(params):
    params["weight_ih_l0"][:] = 1000.1
    params["weight_hh_l0"][:] = 1e5 / 3


def _weights_times_1e20(params):
    for kind in ("weight_ih_l0", "weight_hh_l0"):
        params[kind] *= 1e20


def _float32_reference_and_float64(edit):
    """The reference cell's float32 and float64 layers with the same parameters (float32
    values changed by edit(state_dict))."""
    I, H = 5, 7
    _, ref64 = _float32_and_reference(I, H, 2, edit)
    ref32 = Recurrent(get_reference_cell("ln_lstm"), I, H)
    ref32.load_state_dict({k: v.astype(np.float32) for k, v in ref64.state_dict().items()})
    return ref32, ref64


def test_float32_reference_normalises_a_block_of_equal_values_to_exact_zeros():
    """The reference cell run in float32 (reference cells take any float dtype) gives the
    float64 reference's outputs and states where every gate block holds equal values
    ~1e5, whose mean rounds off them (the kernels' case,
    test_float32_normalises_a_block_of_equal_values_to_exact_zeros)."""
    ref32, ref64 = _float32_reference_and_float64(_equal_blocks)
    x = 100 * np.random.default_rng(8).standard_normal((4, 3, 5)).astype(np.float32)
    got, (h_got, c_got) = ref32(x, need_grad=False)
    want, (h_want, c_want) = ref64(x.astype(np.float64), need_grad=False)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(h_got, h_want, atol=1e-6)
    np.testing.assert_allclose(c_got, c_want, atol=1e-6)


def test_float32_reference_normalises_pre_activations_whose_squares_overflow():
    """The reference cell run in float32 gives the float64 reference's outputs and
    gradients when the weights times 1e20 make squared deviations overflow float32 (the
    kernels' case, test_float32_normalises_pre_activations_whose_squares_overflow)."""
    ref32, ref64 = _float32_reference_and_float64(_weights_times_1e20)
    _float32_as_float64(ref32, ref64, (4, 3, 5), (4, 3, 7))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hidden_unit_passes_no_gradient_through_its_normalisations(dtype):
    """With H = 1 each gate block and the cell are blocks of one value, which LN maps to
    the constant 0: nothing reaches x, h_0 or the weights through them, so dx, d h_0 (of
    the rows that run; a row of length 0 passes d h_n on) and the gradients of W_ih and
    W_hh are exactly 0 (as the reference gives), also
    where the vector code could fuse d * g - mean(d * g) into one multiply-add; the
    other results match the float64 reference."""
    T, B, I, H = 6, 5, 3, 1
    params, x, states, d_out, d_finals = _problem(T, B, I, H, seed=11)
    params = {k: v.astype(dtype) for k, v in params.items()}
    lengths = np.array([6, 0, 3, 6, 1], np.int64)
    results = []
    for cell, dt in ((get_cell("ln_lstm"), dtype), (get_reference_cell("ln_lstm"), np.float64)):
        args = [a.astype(dt) for a in (x, *states, d_out, *d_finals)]
        p = {k: v.astype(dt) for k, v in params.items()}
        out, finals, cache = cell.forward(args[0], tuple(args[1:3]), p, lengths, 2)
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dx, d_states = cell.backward(args[3], tuple(args[4:6]), cache, grads, 2)
        results.append((np.array(out), *finals, dx, *d_states, grads))
    (out, h_n, c_n, dx, dh0, dc0, grads), want = results
    for name, got in (("dx", dx), ("d h_0", dh0[lengths > 0]),
                      ("weight_ih", grads["weight_ih"]), ("weight_hh", grads["weight_hh"])):
        assert not got.any(), name
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for got, ref in zip((out, h_n, c_n, dx, dh0, dc0), want[:6]):
        np.testing.assert_allclose(got, ref, **tol)
    for kind, g in want[6].items():
        np.testing.assert_allclose(grads[kind], g, err_msg=kind, **tol)


def test_step_by_step_equals_the_sequence_in_float32():
    # Recurrent.step runs the cache-free kernel one step at a time (StreamPool does too)
    layer = Recurrent("ln_lstm", 5, 16, num_layers=2, seed=4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    out, (h_n, c_n) = layer(x, need_grad=False)
    state = None
    for t in range(6):
        out_t, state = layer.step(x[t], state)
        np.testing.assert_array_equal(out_t, out[t])
    np.testing.assert_array_equal(state[0], h_n)
    np.testing.assert_array_equal(state[1], c_n)


def test_char_lm_trains_with_ln_lstm_and_export_says_what_it_can_do(tmp_path):
    run = tmp_path / "ln"
    ok(invoke("train", "char-lm", "--cell", "ln_lstm", "--hidden", "8", "--embed-dim", "4",
              "--layers", "2", "--seq-len", "12", "--batch-size", "4",
              "--max-chars", "4000", "--threads", "1", "--quiet", "--no-plot",
              "--steps", "3", "--eval-every", "0", "--out", run))
    # ONNX computes it as a Scan, torch as a printed module of its own (tests/
    # test_export.py compares both with the model)
    ok(invoke("export", run, "--format", "onnx"))
    assert (tmp_path / "ln.onnx").exists()
    printed = ok(invoke("export", run, "--format", "torch"))
    assert "class Recurrent(torch.nn.Module):" in printed
    compile(printed, "model.py", "exec")
    pytest.importorskip("safetensors", reason="safetensors not installed")
    ok(invoke("export", run, "--format", "safetensors"))
    ok(invoke("import", f"{run}.safetensors", "--out", tmp_path / "back"))
    with np.load(run / "best.npz") as a, np.load(tmp_path / "back" / "best.npz") as b:
        names = [n for n in a.files if n.startswith("param/")]
        assert any("ln_gain_c_l1" in n for n in names)
        for name in names:
            np.testing.assert_array_equal(a[name], b[name])


def test_char_lm_trains_ln_lstm_with_recurrent_dropout_and_zoneout(tmp_path):
    # the options reach ln_lstm's kernels (tests/test_recurrent_masks.py tests them with
    # every built-in cell); evaluation uses zoneout's expectation: the same each time
    run, plain = tmp_path / "reg", tmp_path / "plain"
    tiny = ("--hidden", "8", "--embed-dim", "4", "--layers", "2", "--seq-len", "12",
            "--batch-size", "4", "--max-chars", "4000", "--threads", "1", "--quiet",
            "--no-plot", "--steps", "3", "--eval-every", "0")
    ok(invoke("train", "char-lm", "--cell", "ln_lstm", "--recurrent-dropout", "0.2",
              "--zoneout", "0.1", *tiny, "--out", run))
    ok(invoke("train", "char-lm", "--cell", "ln_lstm", *tiny, "--out", plain))
    assert not same_params(checkpoint_params(run), checkpoint_params(plain))  # they trained
    first = ok(invoke("eval", run, "--json"))
    assert ok(invoke("eval", run, "--json")) == first
    # int8 inference (tests/test_int8.py compares the kernel with the reference), with
    # zoneout's expectation too: the loss near float32's
    fp32 = json.loads(first)["metrics"]["loss"]
    int8 = json.loads(ok(invoke("eval", run, "--json", "--precision", "int8")))
    assert int8["precision"] == "int8" and int8["metrics"]["loss"] != fp32
    assert int8["metrics"]["loss"] == pytest.approx(fp32, rel=0.01)


def test_sentiment_trains_a_bidirectional_ln_lstm_and_classifies(tmp_path):
    reviews = write_reviews(tmp_path / "reviews.csv", bundled_reviews(40))
    run = tmp_path / "bi"
    ok(invoke("train", "sentiment", "--data", reviews, "--cell", "ln_lstm",
              "--bidirectional", "--layers", "2", "--hidden", "8", "--embed-dim", "6",
              "--batch-size", "16", "--threads", "1", "--quiet", "--no-plot", "--steps", "3",
              "--eval-every", "0", "--ensemble", "1", "--out", run))
    with np.load(run / "best.npz") as a:
        for name in ("ln_gain_hh_l0", "ln_gain_c_l1_reverse", "ln_bias_c_l1_reverse"):
            assert f"param/rnn.{name}" in a.files
    label, probs, text = ok(invoke("predict", run, "a warm and funny film")).split("\t")
    assert label in ("fresh", "rotten") and text == "a warm and funny film\n"
    shares = dict(p.split("=") for p in probs.split())
    assert sorted(shares) == ["fresh", "rotten"]
    assert abs(sum(float(v) for v in shares.values()) - 1) < 2e-3
    ok(invoke("export", run, "--format", "onnx"))
