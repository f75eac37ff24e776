"""The plain-numpy reference cells: gradients by finite differences, lengths semantics,
step equivalence, dtype handling. (Their agreement with torch is in test_torch_parity.py.)"""
import numpy as np
import pytest

from conftest import CELL_NAMES
from recurrent.layout import GATE_ORDER, STATE_NAMES
from recurrent.reference import CELLS, get_reference_cell

T, B, I, H = 4, 3, 3, 4


def make_inputs(cell, rng, dtype=np.float64, T=T, B=B):
    params = {kind: rng.uniform(-0.6, 0.6, shape).astype(dtype)
              for kind, shape in cell.param_shapes(I, H).items()}
    x = rng.standard_normal((T, B, I)).astype(dtype)
    states = tuple(0.5 * rng.standard_normal((B, H)).astype(dtype) for _ in cell.state_names)
    return x, states, params


def weighted_loss(cell, x, states, params, lengths, d_out, d_finals):
    """A scalar whose gradient w.r.t. (out, final states) is (d_out, d_finals)."""
    out, finals, _ = cell.forward(x, states, params, lengths, 1)
    return np.sum(out * d_out) + sum(np.sum(f * d) for f, d in zip(finals, d_finals))


@pytest.mark.parametrize("lengths", [[4, 4, 4], [4, 1, 3], [4, 0, 3]],
                         ids=["full", "lengths", "zero-length"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradients_match_central_differences(name, lengths, rng):
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    lengths = np.array(lengths, np.int64)
    d_out = rng.standard_normal((T, B, H))
    d_finals = tuple(rng.standard_normal((B, H)) for _ in states)

    out, finals, cache = cell.forward(x, states, params, lengths, 1)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, 1)

    def numeric(array):
        g = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            saved = array[idx]
            array[idx] = saved + 1e-6
            plus = weighted_loss(cell, x, states, params, lengths, d_out, d_finals)
            array[idx] = saved - 1e-6
            minus = weighted_loss(cell, x, states, params, lengths, d_out, d_finals)
            array[idx] = saved
            g[idx] = (plus - minus) / 2e-6
        return g

    np.testing.assert_allclose(dx, numeric(x), rtol=1e-6, atol=1e-8)
    for analytic, state in zip(d_states, states):
        np.testing.assert_allclose(analytic, numeric(state), rtol=1e-6, atol=1e-8)
    for kind in params:
        np.testing.assert_allclose(grads[kind], numeric(params[kind]), rtol=1e-6, atol=1e-8,
                                   err_msg=kind)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_rows_past_their_length_keep_state_and_output_zero(name, rng):
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    lengths = np.array([4, 2, 1])
    out, finals, _ = cell.forward(x, states, params, lengths, 1)
    for b, n in enumerate(lengths):
        alone_out, alone_finals, _ = cell.forward(
            x[:n, b:b + 1].copy(), tuple(s[b:b + 1] for s in states), params,
            np.array([n]), 1)
        np.testing.assert_allclose(out[:n, b], alone_out[:, 0], rtol=1e-12)
        assert np.all(out[n:, b] == 0)
        for f, a in zip(finals, alone_finals):
            np.testing.assert_allclose(f[b], a[0], rtol=1e-12)


def _cell_and_gradients_in(name, rng):
    """A reference cell, its inputs and random gradients of its outputs and final states."""
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    d_out = rng.standard_normal((T, B, H))
    d_finals = tuple(rng.standard_normal((B, H)) for _ in states)
    return cell, x, states, params, d_out, d_finals


def _run_both_ways(cell, x, states, params, lengths, d_out, d_finals):
    """forward then backward with fresh gradients: (out, finals, dx, d_states, grads)."""
    out, finals, cache = cell.forward(x, states, params, lengths, 1)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, 1)
    return out, finals, dx, d_states, grads


@pytest.mark.parametrize("name", CELL_NAMES)
def test_a_row_of_length_zero_runs_no_step(name, rng):
    cell, x, states, params, d_out, d_finals = _cell_and_gradients_in(name, rng)
    lengths = np.array([4, 0, 2])
    out, finals, dx, d_states, grads = _run_both_ways(cell, x, states, params, lengths,
                                                      d_out, d_finals)
    assert np.all(out[:, 1] == 0) and np.all(dx[:, 1] == 0)
    for f, s, ds, d in zip(finals, states, d_states, d_finals):
        np.testing.assert_array_equal(f[1], s[1])     # final state = initial state
        np.testing.assert_array_equal(ds[1], d[1])    # d initial state = d final state
    # the row adds nothing to the parameter gradients: the batch without it gives them
    rows = [0, 2]
    *_, rest = _run_both_ways(cell, x[:, rows], tuple(s[rows] for s in states), params,
                              lengths[rows], d_out[:, rows], tuple(d[rows] for d in d_finals))
    for k in params:
        np.testing.assert_allclose(grads[k], rest[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradient_past_length_is_ignored_and_state_gradient_passes_through(name, rng):
    cell, x, states, params, d_out, d_finals = _cell_and_gradients_in(name, rng)
    lengths = np.array([4, 2, 1])

    def run(d_out):
        return _run_both_ways(cell, x, states, params, lengths, d_out, d_finals)[2:]

    dx, d_states, grads = run(d_out)
    noisy = d_out.copy()
    noisy[2:, 1] = 1e3          # past row 1's length
    noisy[1:, 2] = -1e3         # past row 2's length
    dx2, d_states2, grads2 = run(noisy)
    np.testing.assert_array_equal(dx, dx2)
    for a, b in zip(d_states + tuple(grads.values()), d_states2 + tuple(grads2.values())):
        np.testing.assert_array_equal(a, b)
    assert np.all(dx[2:, 1] == 0) and np.all(dx[1:, 2] == 0)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_loop_of_steps_equals_sequence(name, rng):
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    out, finals, _ = cell.forward(x, states, params, np.full(B, T), 1)
    carried = states
    for t in range(T):
        carried = cell.step(x[t], carried, params)
        np.testing.assert_allclose(carried[0], out[t], rtol=1e-12)
    for f, c in zip(finals, carried):
        np.testing.assert_allclose(f, c, rtol=1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_float32_runs_in_float32_and_agrees_with_float64(name, rng):
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    full = np.full(B, T)
    out64, finals64, cache64 = cell.forward(x, states, params, full, 1)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    params32 = {k: f32(v) for k, v in params.items()}
    out32, finals32, cache32 = cell.forward(f32(x), tuple(map(f32, states)), params32, full, 1)
    assert out32.dtype == np.float32 and all(f.dtype == np.float32 for f in finals32)
    np.testing.assert_allclose(out32, out64, atol=1e-5)
    grads32 = {k: np.zeros_like(v) for k, v in params32.items()}
    dx32, _ = cell.backward(f32(np.ones((T, B, H))), (None,) * len(states), cache32, grads32, 1)
    assert dx32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32.values())


@pytest.mark.parametrize("name", CELL_NAMES)
def test_inputs_are_never_modified(name, rng):
    cell = get_reference_cell(name)
    x, states, params = make_inputs(cell, rng)
    before = [a.copy() for a in (x, *states, *params.values())]
    _, _, cache = cell.forward(x, states, params, np.array([4, 2, 3]), 1)
    d_out = np.ones((T, B, H))
    d_finals = tuple(np.ones((B, H)) for _ in states)
    cell.backward(d_out, d_finals, cache, {k: np.zeros_like(v) for k, v in params.items()}, 1)
    for a, b in zip(before, (x, *states, *params.values())):
        np.testing.assert_array_equal(a, b)
    assert np.all(d_out == 1) and all(np.all(d == 1) for d in d_finals)


def test_gates_follow_layout_and_extreme_inputs_stay_finite(rng):
    # A forget gate saturated open and an input gate closed keep the LSTM cell state as is:
    # this pins the i, f, g, o order of recurrent/layout.py.
    cell = get_reference_cell("lstm")
    x, states, params = make_inputs(cell, rng, T=1)
    params["weight_ih"][:] = 0
    params["weight_hh"][:] = 0
    params["bias_hh"][:] = 0
    bias = params["bias_ih"]
    bias[:] = 0
    bias[0:H] = -50.0       # i closed
    bias[H:2 * H] = 50.0    # f open
    _, (h, c), _ = cell.forward(x, states, params, np.full(B, 1), 1)
    np.testing.assert_allclose(c, states[1], atol=1e-12)
    # Huge pre-activations: sigmoid written without overflow, results finite.
    with np.errstate(over="raise"):
        for name in CELL_NAMES:
            c2 = get_reference_cell(name)
            x2, s2, p2 = make_inputs(c2, rng)
            out, _, _ = c2.forward(1e4 * x2, s2, p2, np.full(B, T), 1)
            assert np.isfinite(out).all()


def test_registry_of_reference_cells():
    assert set(CELLS) == set(GATE_ORDER)
    for name, cell in CELLS.items():
        assert cell.name == name
        assert cell.state_names == STATE_NAMES[name]
        assert cell.num_gates == len(GATE_ORDER[name])
        G = cell.num_gates * H
        torch_kinds = {"weight_ih": (G, I), "weight_hh": (G, H), "bias_ih": (G,),
                       "bias_hh": (G,)}
        ln_kinds = {"ln_gain_ih": (G,), "ln_gain_hh": (G,), "ln_gain_c": (H,),
                    "ln_bias_c": (H,)} if name == "ln_lstm" else {}
        assert cell.param_shapes(I, H) == {**torch_kinds, **ln_kinds}
    with pytest.raises(ValueError, match="known: gru, ln_lstm, lstm, rnn_relu, rnn_tanh"):
        get_reference_cell("peephole")


def test_default_init_is_torch_uniform(rng):
    cell = get_reference_cell("gru")
    params = {k: np.zeros(s) for k, s in cell.param_shapes(I, 16).items()}
    cell.init_params(params, 16, rng)
    for p in params.values():
        assert np.abs(p).max() <= 0.25 and np.abs(p).max() > 0.2   # U(-1/sqrt(16), 1/sqrt(16))
