"""The public Python API on inputs it must refuse or treat as their contiguous copies: the
built-in cells called directly, clipping of arrays in any layout, the optimizers'
hyperparameters and saved state, and the gradient a model's backward takes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from recurrent import LSTM, Recurrent, clip_grad_norm, clip_grad_value, optim
from recurrent.clip import total_norm
from recurrent.model import SequenceModel
from recurrent.plugins import get_cell
from recurrent.seq2seq.model import Seq2SeqModel

CELLS = ("lstm", "gru", "rnn_tanh", "ln_lstm")
T, B, I, H = 4, 3, 5, 6


def _cell_call(name, *, state_width=H, input_size=I, length=T):
    """cell, and the arguments of one forward call of it, parameters made for (I, H)."""
    cell = get_cell(name)
    params = Recurrent(name, I, H, seed=0)._unit_params(0)
    x = np.random.default_rng(0).standard_normal((T, B, input_size)).astype(np.float32)
    states = tuple(np.zeros((B, state_width), np.float32) for _ in cell.state_names)
    return cell, (x, states, params, np.full(B, length, np.int64), 1)


# Each of these crashed the process: a state of another width than the parameters' made
# the kernel read its weights (and write its outputs) for that width (SIGSEGV), and infer
# on no rows or no hidden units divided by zero (SIGFPE). Run in a child so that a crash
# fails the test instead of the session.
_CRASHING_CALL = """
import numpy as np
from recurrent import Recurrent
from recurrent.plugins import get_cell
cell = get_cell(NAME)
params = Recurrent(NAME, 5, 6, seed=0)._unit_params(0)
x = np.zeros((4, ROWS, 5), np.float32)
states = tuple(np.zeros((ROWS, WIDTH), np.float32) for _ in cell.state_names)
try:
    cell.METHOD(x, states, params, np.full(ROWS, 4, np.int64), 1)
except ValueError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("rows, width, method, message", [
    (3, 2048, "forward", "params['weight_ih']: expected shape"),
    (0, 6, "infer", "x: expected shape (T, B, I) with B >= 1"),
    (3, 0, "infer", "states: h has shape (3, 0)"),
])
def test_a_cell_refuses_a_call_its_kernel_would_crash_on(name, rows, width, method, message,
                                                          tmp_path):
    script = _CRASHING_CALL.replace("NAME", repr(name)).replace("ROWS", str(rows)) \
        .replace("WIDTH", str(width)).replace("METHOD", method)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env=dict(os.environ, PYTHONSAFEPATH="1"))
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert f"refused: {message}" in done.stdout, done.stdout


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("problem, message", [
    (dict(input_size=I + 3), r"params\['weight_ih'\]: expected shape"),
    (dict(length=T + 1), r"lengths: expected values in 0..4"),
    (dict(length=-1), r"lengths: expected values in 0..4"),
])
def test_a_cell_refuses_what_its_kernel_would_read_past(name, problem, message):
    # the kernels read x for each row's length and I columns of W_ih: past the arrays
    cell, args = _cell_call(name, **problem)
    for method in (cell.forward, cell.infer):
        with pytest.raises(ValueError, match=message):
            method(*args)


@pytest.mark.parametrize("name", CELLS + ("rnn_relu",))
def test_a_sequence_of_no_steps_has_no_gradient(name):
    """T = 0 runs no step, in every precision the cell has: empty outputs, the initial
    states as final ones, zero parameter gradients, and the final states' gradients
    passed through to the initial states (backward's weight gradients read no step)."""
    cell, (x, states, params, lengths, threads) = _cell_call(name)
    states = tuple(np.full_like(s, 0.5) for s in states)
    for precision in cell.precisions:
        keywords = {} if precision == "fp32" else {"precision": precision}
        out, finals, cache = cell.forward(x[:0], states, params, np.zeros(B, np.int64),
                                          threads, **keywords)
        assert out.shape == (0, B, H)
        assert all(np.array_equal(f, s) for f, s in zip(finals, states))
        grads = {kind: np.zeros_like(p) for kind, p in params.items()}
        d_finals = tuple(np.full((B, H), 2.0, np.float32) for _ in states)
        dx, d_states = cell.backward(np.zeros((0, B, H), np.float32), d_finals, cache,
                                     grads, threads, **keywords)
        assert dx.shape == (0, B, I)
        assert all(np.array_equal(d, f) for d, f in zip(d_states, d_finals)), precision
        assert not any(g.any() for g in grads.values()), precision


@pytest.mark.parametrize("name", CELLS)
def test_a_cell_backward_refuses_gradients_of_the_wrong_shape(name):
    cell, args = _cell_call(name)
    n = len(cell.state_names)
    grads = {kind: np.zeros_like(p) for kind, p in args[2].items()}
    for d_out, d_finals, message in [
            (np.ones((T, B, H - 1), np.float32), (None,) * n, "d_out: expected shape"),
            (np.ones((T, B, H), np.float32), (np.ones((B, 2 * H), np.float32),) * n,
             "d_final_states: expected None or shape")]:
        _, _, cache = cell.forward(*args)
        with pytest.raises(ValueError, match=message):
            cell.backward(d_out, d_finals, cache, grads, 1)
    _, _, cache = cell.forward(*args)
    short = dict(grads, weight_hh=np.zeros((1, H), np.float32))  # added into in place
    with pytest.raises(ValueError, match=r"grads\['weight_hh'\]: expected shape"):
        cell.backward(np.ones((T, B, H), np.float32), (None,) * n, cache, short, 1)


def _layouts(a):
    """The values of ``a`` (2-D) in other memory layouts."""
    return {"fortran": np.asfortranarray(a),
            "transposed": np.ascontiguousarray(a.T).T,
            "strided": np.repeat(a, 2, axis=1)[:, ::2]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 3.0])
def test_clipping_any_layout_gives_the_contiguous_results_bitwise(dtype, norm_type):
    base = (np.random.default_rng(1).standard_normal((7, 9)) * 3).astype(dtype)
    ref = base.copy()
    ref_norm = clip_grad_norm([ref], 0.5, norm_type)
    for name, g in _layouts(base).items():
        g = g.copy(order="K") if name != "strided" else g
        assert total_norm([g], norm_type) == ref_norm, name
        assert clip_grad_norm([g], 0.5, norm_type) == ref_norm, name
        assert np.array_equal(g, ref), name
    ref = base.copy()
    clip_grad_value([ref], 0.5)
    for name, g in _layouts(base).items():
        clip_grad_value([g], 0.5)
        assert np.array_equal(g, ref), name


@pytest.mark.parametrize("kwargs, name", [(dict(max_norm=None), "max_norm"),
                                          (dict(max_norm=1.0, norm_type=None), "norm_type")])
def test_clipping_names_an_argument_that_is_not_a_number(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: expected a number, got None$"):
        clip_grad_norm([np.ones(3, np.float32)], **kwargs)


INF = float("inf")


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=INF)), (optim.SGD, dict(lr="0.1")), (optim.SGD, dict(momentum=INF)),
    (optim.SGD, dict(dampening=float("nan"))), (optim.SGD, dict(weight_decay=INF)),
    (optim.Adam, dict(eps=INF)), (optim.AdamW, dict(weight_decay=INF)),
    (optim.RMSProp, dict(momentum=INF)), (optim.RMSProp, dict(eps=INF)),
])
def test_optimizer_refuses_hyperparameters_that_are_not_finite(cls, kwargs):
    # an infinite one turns the parameters into NaN or infinity at the first step
    kwargs = {"lr": 0.1, **kwargs}
    with pytest.raises(ValueError):
        cls(np.ones(4, np.float32), np.ones(4, np.float32), **kwargs)


@pytest.mark.parametrize("lr", [float("nan"), -0.1, INF, "x"])
def test_optimizer_step_refuses_a_rate_that_is_not_finite_and_leaves_the_parameters(lr):
    params = np.ones(4, np.float32)
    opt = optim.Adam(params, np.ones(4, np.float32), lr=0.1)
    with pytest.raises(ValueError, match="step: lr must be a finite number >= 0"):
        opt.step(lr)
    assert np.all(params == 1) and opt.step_count == 0


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSProp])
@pytest.mark.parametrize("change, message", [
    (lambda s: {"step_count": np.int64(-1)}, "'step_count' must be an integer >= 0"),
    (lambda s: {"step_count": np.array([1, 2])}, "'step_count' must be an integer >= 0"),
    (lambda s: {n: np.full(4, np.nan) for n in s}, "contains NaN or infinity"),
    (lambda s: {n: np.full(4, 1e300) for n in s}, "too large for float32"),
    (lambda s: {n: np.ones(4, complex) for n in s}, "expected a float array"),
])
def test_optimizer_load_state_dict_refuses_values_no_run_saves(cls, change, message):
    # each made the next step raise deep inside (ZeroDivisionError) or fill the
    # parameters with NaN
    params = np.ones(4, np.float32)
    source = cls(params.copy(), np.ones(4, np.float32), lr=0.1)
    source.step()
    state = {**source.state_dict(), **change(cls.buffer_names)}
    target = cls(params, np.ones(4, np.float32), lr=0.1)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert target.step_count == 0


@pytest.mark.parametrize("cls", [optim.Adam, optim.RMSProp])
def test_optimizer_load_state_dict_refuses_a_negative_average_of_squares(cls):
    source = cls(np.ones(4, np.float32), np.ones(4, np.float32), lr=0.1)
    source.step()
    state = {name: -np.abs(value) if name in cls.squares else value
             for name, value in source.state_dict().items()}
    target = cls(np.ones(4, np.float32), np.ones(4, np.float32), lr=0.1)
    with pytest.raises(ValueError, match="holds negative values"):
        target.load_state_dict(state)


def _s2s_batch():
    rng = np.random.default_rng(0)
    x = np.stack([rng.integers(3, 7, (5, 3)), rng.integers(3, 6, (5, 3))], axis=2)
    x[0, :, 1] = 1
    return x


def _models():
    spec = {"input": "features", "input_size": I, "output": "sequence", "output_size": 2}
    # enough rows that summing them in another order changes the last bits
    x = np.random.default_rng(0).standard_normal((8, 16, I)).astype(np.float32)
    yield SequenceModel(spec, hidden_size=H, seed=0), x
    s2s = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 6, "embed_dim": 3,
           "attention": "general", "bos": 1, "eos": 2, "output": "sequence",
           "output_size": 6}
    yield Seq2SeqModel(s2s, hidden_size=4, seed=0), _s2s_batch()


@pytest.mark.parametrize("which", [0, 1], ids=["sequence_model", "seq2seq"])
def test_model_backward_of_a_fortran_order_gradient_is_bitwise_the_contiguous_one(which):
    model, x = list(_models())[which]
    out, _ = model.forward(x)
    d = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    model.zero_grad()
    model.forward(x)
    model.backward(d)
    expected = model.grads.copy()
    model.zero_grad()
    model.forward(x)
    model.backward(np.asfortranarray(d))
    assert np.array_equal(model.grads, expected)


@pytest.mark.parametrize("which", [0, 1], ids=["sequence_model", "seq2seq"])
@pytest.mark.parametrize("bad, message", [
    (lambda d: d[:, :1], "expected shape"),       # would broadcast over the rows
    (lambda d: d[:1], "expected shape"),          # would broadcast over the steps
    (lambda d: d.astype(complex), "expected real numbers"),
])
def test_model_backward_refuses_a_gradient_it_would_misread(which, bad, message):
    model, x = list(_models())[which]
    out, _ = model.forward(x)
    d = np.ones(out.shape, np.float32)
    with pytest.raises(ValueError, match=f"d_outputs: {message}"):
        model.backward(bad(d))
    model.backward(d)  # the forward pass is still there to differentiate



def _grads_after(module, x, d, change=None, **kwargs):
    """module's gradients from one forward/backward pair, ``change`` applied to the
    caller's inputs in between."""
    module.zero_grad()
    module.forward(x, **kwargs)
    if change is not None:
        change()
    module.backward(d)
    grads = module.grads
    return {k: v.copy() for k, v in (grads().items() if callable(grads) else
                                     {"all": grads}.items())}


@pytest.mark.parametrize("bidirectional", [False, True])
def test_changing_a_layers_inputs_after_forward_leaves_its_gradients(bidirectional):
    # backward read the caller's x and initial state, kept by reference
    layer = LSTM(I, H, num_layers=2, bidirectional=bidirectional, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    state = tuple(rng.standard_normal((layer.num_layers * layer.num_directions, B, H))
                  .astype(np.float32) for _ in range(2))
    d = rng.standard_normal((T, B, layer.num_directions * H)).astype(np.float32)
    expected = _grads_after(layer, x, d, state=state)
    x2, state2 = x.copy(), tuple(s.copy() for s in state)

    def change():
        x2[:] = 0
        for s in state2:
            s[:] = 0
    assert all(np.array_equal(expected[k], v)
               for k, v in _grads_after(layer, x2, d, change, state=state2).items())


@pytest.mark.parametrize("spec", [
    {"input": "features", "input_size": I, "output": "last", "output_size": 2},
    {"input": "tokens", "vocab_size": 7, "embed_dim": 4, "output": "last", "output_size": 2},
], ids=["features", "tokens"])
def test_changing_a_models_inputs_after_forward_leaves_its_gradients(spec):
    # the features reached the first cell by reference; the token ids the embedding
    model = SequenceModel(spec, hidden_size=H, seed=0)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 7, (T, B)).astype(np.intp) if spec["input"] == "tokens"
         else rng.standard_normal((T, B, I)).astype(np.float32))
    d = rng.standard_normal((B, 2)).astype(np.float32)
    expected = _grads_after(model, x, d)["all"]
    x2 = x.copy()

    def change():
        x2[:] = x2[::-1]
    assert np.array_equal(_grads_after(model, x2, d, change)["all"], expected)


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_an_integer_beyond_float_range_is_refused_as_not_finite(value):
    from recurrent.optim import SGD
    p, g = np.zeros(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        SGD(p, g, lr=value)
    with pytest.raises(ValueError, match="momentum and weight_decay must be finite"):
        SGD(p, g, lr=0.1, momentum=value)
