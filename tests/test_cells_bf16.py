"""The cell kernels' bf16 path (recurrent/_kernels/{lstm,gru,rnn,lnlstm}.pyx, bf16=True)
against the bf16 reference cells (recurrent.reference.BF16LSTMCell, ...), against the kernel's own
float32 path, and its invariants: inference equal to training's forward, results
independent of the thread count, float64 refused.

Legend: T time, B batch, I input, H hidden.

Tolerances, per result array, as max |error| / max |expected value|:
  BF16_TOL (against the bf16 reference): both round the same operands to bf16, but the
    kernel sums the products in float32 and the reference in float64. Where that moves
    an operand of a later product (h_t, dA) across a bf16 rounding boundary, the two
    round it to neighbouring bf16 values (2^-7 apart, relative) and the difference
    carries through the following steps; BF16_TOL leaves room for a few such flips.
  F32_TOL (against the float32 path): the bf16 rounding itself (up to 2^-8 relative per
    operand) through every product and step. For rnn_relu the forward results only: relu's
    derivative is a step, so a unit whose pre-activation lies within bf16 rounding of 0
    has derivative 0 on one path and 1 on the other, and the gradients differ by whole
    terms (up to 0.26 of the largest here); the bf16 reference, which rounds as the
    kernel does, checks them. For ln_lstm no fixed tolerance: at these random
    initialisations its results move far under bf16-sized changes (rounding only x and
    the weights to bf16 moves exact float64 results by up to 0.47 of the largest value at
    T = 20, the LSTM's by 3e-3), so its distance from the float32 path is bounded by
    SENSITIVITY times that float64 distance, array by array (the other cells measure
    1.3-5 times theirs).
  LN_BF16_TOL (ln_lstm against the bf16 reference): BF16_TOL's rounding flips, carried
    through the same amplification.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from recurrent._kernels import gru, lnlstm, lstm, rnn
from recurrent._kernels import tuning as kernel_tuning
from recurrent.cellbase import LN_EPS
from recurrent.masks import variational_mask, zoneout_mask
from recurrent.reference import (BF16GRUCell, BF16LayerNormLSTMCell, BF16LSTMCell,
                                 BF16RNNReluCell, BF16RNNTanhCell, bf16_matmul, bf16_round,
                                 get_reference_cell)

BF16_TOL = 2e-3
F32_TOL = 2e-2
LN_BF16_TOL = 1e-2
SENSITIVITY = 8
REFERENCE = {"lstm": BF16LSTMCell, "gru": BF16GRUCell, "rnn_tanh": BF16RNNTanhCell,
             "rnn_relu": BF16RNNReluCell, "ln_lstm": BF16LayerNormLSTMCell}
CELLS = tuple(REFERENCE)
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1, "ln_lstm": 4}
LN_PARAMS = ("ln_gain_ih", "ln_gain_hh", "ln_gain_c", "ln_bias_c")

# (T, B, I, H): general, T = 1, B = 1, odd I and H not a multiple of 16, several row and
# gate blocks of the hoisted products (G = 280 for the LSTM, 210 for the GRU, where a
# gate block meets the GRU's two input parts), a longer sequence.
SIZES = [(5, 3, 4, 6), (1, 2, 3, 4), (6, 1, 3, 5), (4, 9, 7, 21), (7, 6, 19, 70),
         (20, 8, 32, 64)]


def _results(name):
    """The names of a cell's results: outputs, final states, gradients."""
    states = ("h", "c") if name in ("lstm", "ln_lstm") else ("h",)
    return (("out",) + tuple(f"{s}_n" for s in states) + ("dx",)
            + tuple(f"d{s}0" for s in states) + ("dw_ih", "dw_hh", "db_ih", "db_hh")
            + (tuple(f"d{kind}" for kind in LN_PARAMS) if name == "ln_lstm" else ()))


def _problem(name, T, B, I, H, lengths="full", masks=None, seed=0):
    """Float32 parameters (the cell's init), inputs, initial states, output and
    final-state gradients, lengths: all T ("full"), or in 0..T with row 0 of length 0 and
    the last row full ("empty"); masks None, "recurrent", "zoneout" (0/1 per step, each
    state), "expectation" (zoneout 0.3 everywhere, (1, B, H)) or "both" (recurrent and
    zoneout)."""
    rng = np.random.default_rng(seed)
    cell = get_reference_cell(name)
    n = len(cell.state_names)
    params = {k: np.zeros(s, np.float32) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    states = tuple(rng.normal(scale=0.5, size=(B, H)).astype(np.float32) for _ in range(n))
    d_out = rng.normal(size=(T, B, H)).astype(np.float32)
    d_finals = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in range(n))
    lens = np.full(B, T, np.int64)
    if lengths == "empty":
        lens = rng.integers(0, T + 1, size=B).astype(np.int64)
        lens[0] = 0
        lens[-1] = T
    m = {}
    if masks in ("recurrent", "both"):
        m["recurrent"] = variational_mask(rng, B, H, 0.3, np.float32)
    if masks in ("zoneout", "both"):
        m["zoneout"] = tuple(zoneout_mask(rng, T, B, H, 0.3, np.float32) for _ in range(n))
    if masks == "expectation":
        m["zoneout"] = tuple(np.full((1, B, H), 0.3, np.float32) for _ in range(n))
    return dict(name=name, params=params, x=x, states=states, d_out=d_out,
                d_finals=d_finals, lengths=lens, masks=m or None)


def _gru_biases(params, H):
    """The GRU kernels' bias split: b_ih + [b_hr, b_hz, 0] (3H,) and b_hn (H,)."""
    bias_x = params["bias_ih"].copy()
    bias_x[:2 * H] += params["bias_hh"][:2 * H]
    return bias_x, np.ascontiguousarray(params["bias_hh"][2 * H:])


def _kernel(p, bf16=True, num_threads=1, dtype=np.float32, backward_bf16=None):
    """forward then backward through the cell's kernel, both with ``bf16`` unless
    ``backward_bf16`` gives backward's; every result by name (_results)."""
    name = p["name"]
    bf16_back = bf16 if backward_bf16 is None else backward_bf16
    params = {k: v.astype(dtype) for k, v in p["params"].items()}
    x = p["x"].astype(dtype)
    states = tuple(s.astype(dtype) for s in p["states"])
    d_out = p["d_out"].astype(dtype)
    d_finals = [d.astype(dtype) for d in p["d_finals"]]   # the kernels overwrite them
    T, B, _ = x.shape
    H = states[0].shape[1]
    G = GATES[name] * H
    masks = p["masks"] or {}
    rec = None if "recurrent" not in masks else masks["recurrent"].astype(dtype)
    zone = None if "zoneout" not in masks else tuple(k.astype(dtype) for k in masks["zoneout"])
    lens = p["lengths"]
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    out = np.empty((T, B, H), dtype)
    finals = tuple(np.empty((B, H), dtype) for _ in states)
    dx = np.empty_like(x)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db_ih, db_hh = np.zeros(G, dtype), np.zeros(G, dtype)
    ln_grads = ()
    if name == "ln_lstm":
        ln = tuple(params[kind] for kind in LN_PARAMS)
        xn, nh, gates = (np.empty((T, B, G), dtype) for _ in range(3))
        cells, nc = np.empty((T, B, H), dtype), np.empty((T, B, H), dtype)
        rs_x, rs_h, rs_c = (np.empty((T, B, 4), dtype), np.empty((T, B, 4), dtype),
                            np.empty((T, B), dtype))
        bias = params["bias_ih"] + params["bias_hh"]
        lnlstm.forward(out, xn, nh, gates, cells, nc, rs_x, rs_h, rs_c, *finals, x, *states,
                       w_ih, w_hh, np.zeros(G, dtype), bias, *ln, LN_EPS, lens, num_threads,
                       rec, zone, bf16=bf16)
        dg_ih, acc_ghh = np.zeros(G, dtype), np.zeros((B, G), dtype)
        acc_gc, acc_bc = np.zeros((B, H), dtype), np.zeros((B, H), dtype)
        lnlstm.backward(dx, *d_finals, dw_ih, dw_hh, db_ih, dg_ih, acc_ghh, acc_gc, acc_bc,
                        xn, nh, gates, rs_x, rs_h, rs_c, cells, nc, d_out, x, *states, out,
                        w_ih, w_hh, *ln, lens, num_threads, rec, zone, bf16=bf16_back)
        db_hh = db_ih
        ln_grads = (dg_ih, acc_ghh.sum(axis=0), acc_gc.sum(axis=0), acc_bc.sum(axis=0))
    elif name == "lstm":
        gates, cells = np.empty((T, B, G), dtype), np.empty((T, B, H), dtype)
        bias = params["bias_ih"] + params["bias_hh"]
        lstm.forward(out, gates, cells, *finals, x, *states, w_ih, w_hh, bias, lens,
                     num_threads, rec, zone, bf16=bf16)
        lstm.backward(dx, *d_finals, dw_ih, dw_hh, db_ih, gates, d_out, x, *states, out,
                      cells, w_ih, w_hh, lens, num_threads, rec, zone, bf16=bf16_back)
        db_hh = db_ih
    elif name == "gru":
        cache, work = np.empty((T, B, 4 * H), dtype), np.empty((B, G), dtype)
        bias_x, b_hn = _gru_biases(params, H)
        zone = None if zone is None else zone[0]
        gru.forward(out, *finals, cache, work, x, *states, w_ih, w_hh, bias_x, b_hn, lens,
                    num_threads, rec, zone, bf16=bf16)
        gru.backward(dx, *d_finals, dw_ih, dw_hh, db_ih, db_hh, cache, d_out, x, *states,
                     out, w_ih, w_hh, lens, num_threads, rec, zone, bf16=bf16_back)
    else:
        relu = name == "rnn_relu"
        zone = None if zone is None else zone[0]
        cand = None if zone is None else np.empty((T, B, H), dtype)
        bias = params["bias_ih"] + params["bias_hh"]
        rnn.forward(out, *finals, x, *states, w_ih, w_hh, bias, lens, relu, num_threads, rec,
                    zone, cand, bf16=bf16)
        rnn.backward(dx, *d_finals, dw_ih, dw_hh, db_ih, np.empty((T, B, H), dtype), d_out,
                     x, *states, out, w_ih, w_hh, lens, relu, num_threads, rec, zone, cand,
                     bf16=bf16_back)
        db_hh = db_ih
    return dict(zip(_results(name), (out, *finals, dx, *d_finals, dw_ih, dw_hh, db_ih,
                                     db_hh, *ln_grads)))


def _infer(p, num_threads=1):
    """The kernel's bf16 inference: (out, *final states). The Elman kernel has no infer
    of its own (its forward keeps no cache beyond out): its forward."""
    name = p["name"]
    if name.startswith("rnn"):
        got = _kernel(p, num_threads=num_threads)
        return got["out"], got["h_n"]
    params = p["params"]
    x, states = p["x"], p["states"]
    T, B, _ = x.shape
    H = states[0].shape[1]
    masks = p["masks"] or {}
    rec, zone = masks.get("recurrent"), masks.get("zoneout")
    out = np.empty((T, B, H), x.dtype)
    finals = tuple(np.empty((B, H), x.dtype) for _ in states)
    if name == "lstm":
        lstm.infer(out, *finals, x, *states, params["weight_ih"], params["weight_hh"],
                   params["bias_ih"] + params["bias_hh"], p["lengths"], num_threads, rec,
                   zone, bf16=True)
    elif name == "ln_lstm":
        lnlstm.infer(out, *finals, x, *states, params["weight_ih"], params["weight_hh"],
                     np.zeros(4 * H, x.dtype), params["bias_ih"] + params["bias_hh"],
                     *(params[kind] for kind in LN_PARAMS), LN_EPS, p["lengths"],
                     num_threads, rec, zone, bf16=True)
    else:
        gru.infer(out, *finals, np.empty((B, 3 * H), x.dtype), x, *states,
                  params["weight_ih"], params["weight_hh"], *_gru_biases(params, H),
                  p["lengths"], num_threads, rec, None if zone is None else zone[0],
                  bf16=True)
    return (out, *finals)


def _reference(p):
    """The bf16 reference cell's forward and backward; every result by name."""
    name = p["name"]
    cell = REFERENCE[name]()
    params = p["params"]
    out, finals, cache = cell.forward(p["x"], p["states"], params, p["lengths"],
                                      masks=p["masks"])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(p["d_out"], p["d_finals"], cache, grads)
    return dict(zip(_results(name), (out, *finals, dx, *d_states, grads["weight_ih"],
                                     grads["weight_hh"], grads["bias_ih"], grads["bias_hh"],
                                     *(grads[kind] for kind in LN_PARAMS
                                       if name == "ln_lstm"))))


def _bf16_tol(name):
    """The tolerance against the bf16 reference (module docstring)."""
    return LN_BF16_TOL if name == "ln_lstm" else BF16_TOL


def _relative_error(got, expected):
    """max |got - expected| / max |expected| (0 for two all-zero arrays)."""
    scale = np.abs(expected).max(initial=0.0)
    error = np.abs(got.astype(np.float64) - expected).max(initial=0.0)
    return error / scale if scale > 0 else error


def _assert_near_float32(got, p, what):
    """``got`` (the bf16 path's results for problem ``p``) against the float32 path's, as
    the module docstring says (F32_TOL; rnn_relu's forward results only; ln_lstm relative
    to its own sensitivity)."""
    name = p["name"]
    f32 = _kernel(p, bf16=False)
    if name == "rnn_relu":
        got, f32 = ({k: r[k] for k in ("out", "h_n")} for r in (got, f32))
    if name != "ln_lstm":
        _assert_close(got, f32, F32_TOL, what)
        return
    exact = _kernel(p, bf16=False, dtype=np.float64)
    rounded = _kernel(dict(p, x=bf16_round(p["x"]),
                           params={k: bf16_round(v) if k.startswith("weight") else v
                                   for k, v in p["params"].items()}),
                      bf16=False, dtype=np.float64)
    for result in got:
        bound = SENSITIVITY * max(_relative_error(rounded[result], exact[result]), 1e-6)
        error = _relative_error(got[result], f32[result])
        assert error <= bound, f"{what}: {result} off by {error:.2e}, over {bound:.2e}"


def _assert_close(got, expected, tol, what):
    assert got.keys() == expected.keys(), what
    for name in got:
        assert got[name].shape == expected[name].shape, (what, name)
        assert np.isfinite(got[name]).all(), (what, name)
        error = _relative_error(got[name], expected[name])
        assert error <= tol, f"{what}: {name} off by {error:.2e} (relative), over {tol:.0e}"


def test_reference_rounds_to_nearest_even_bf16():
    ulp = 2.0 ** -7   # bf16 spacing in [1, 2)
    x = np.array([1 + ulp / 2, 1 + 3 * ulp / 2, 1 + ulp / 2 + 2.0 ** -20, -(1 + ulp / 4),
                  np.inf, -np.inf, 1e-40, -1e-40, 3.4e38, 0.0], np.float32)
    expected = np.array([1, 1 + 2 * ulp, 1 + ulp, -1, np.inf, -np.inf, 0.0, -0.0, np.inf, 0.0],
                        np.float32)
    got = bf16_round(x)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    assert np.isnan(bf16_round(np.array([np.nan], np.float32))).all()
    # the product sums the rounded operands exactly: 1.00390625 rounds to 1
    a = np.array([[1 + ulp / 2, 1.0]], np.float32)
    assert bf16_matmul(a, np.ones((2, 1), np.float32))[0, 0] == 2.0


@pytest.mark.parametrize("lengths", ["full", "empty"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", CELLS)
def test_matches_bf16_reference_and_float32(name, size, lengths):
    p = _problem(name, *size, lengths=lengths)
    got = _kernel(p)
    _assert_close(got, _reference(p), _bf16_tol(name), "bf16 reference")
    _assert_near_float32(got, p, "float32 path")
    # a row of length 0 runs no step: its final state is its initial one, its gradients
    # pass through
    empty = p["lengths"] == 0
    for s, state, d_final in zip(("h", "c"), p["states"], p["d_finals"]):
        assert np.array_equal(got[f"{s}_n"][empty], state[empty])
        assert np.array_equal(got[f"d{s}0"][empty], d_final[empty])
    assert not got["out"][:, empty].any() and not got["dx"][:, empty].any()


@pytest.mark.parametrize("masks", ["recurrent", "zoneout", "expectation", "both"])
@pytest.mark.parametrize("name", CELLS)
def test_masks_match_bf16_reference(name, masks):
    p = _problem(name, 6, 5, 7, 21, lengths="empty", masks=masks, seed=3)
    got = _kernel(p)
    _assert_close(got, _reference(p), _bf16_tol(name), f"bf16 reference, {masks}")
    _assert_near_float32(got, p, f"float32 path, {masks}")


@pytest.mark.parametrize("name", CELLS)
def test_products_are_bf16(name):
    """The bf16 path follows the bf16 reference, not float32 arithmetic: on average its
    error against the bf16 reference is a small fraction of the float32 path's."""
    p = _problem(name, 20, 8, 32, 64, lengths="empty", seed=1)
    expected = _reference(p)
    bf16, f32 = _kernel(p), _kernel(p, bf16=False)
    for result in expected:
        bf16_error = np.abs(bf16[result] - expected[result]).mean()
        f32_error = np.abs(f32[result] - expected[result]).mean()
        assert bf16_error < 0.1 * f32_error, (result, bf16_error, f32_error)


@pytest.fixture
def small_infer_chunks():
    """Inference projects the inputs a step or two at a time (the smallest
    infer_chunk_bytes), so the chunked projection is exercised by small problems."""
    from recurrent import tuning
    tuning.ensure()
    saved = kernel_tuning.current()
    kernel_tuning.apply(dict(saved, infer_chunk_bytes=4096))
    yield
    kernel_tuning.apply(saved)


@pytest.mark.parametrize("masks", [None, "both", "expectation"])
@pytest.mark.parametrize("size", [(5, 3, 4, 6), (6, 1, 3, 5), (7, 6, 19, 70)])
@pytest.mark.parametrize("name", ["lstm", "gru", "ln_lstm"])
def test_infer_equals_forward_bitwise(name, size, masks, small_infer_chunks):
    p = _problem(name, *size, lengths="empty", masks=masks, seed=2)
    trained = _kernel(p)
    inferred = _infer(p)
    for result, value in zip(("out", "h_n", "c_n"), inferred):
        assert np.array_equal(value, trained[result]), result


@pytest.mark.parametrize("masks", [None, "both"])
@pytest.mark.parametrize("size", [(4, 9, 7, 21), (7, 6, 19, 70), (3, 5, 40, 130)])
@pytest.mark.parametrize("name", CELLS)
def test_one_and_two_threads_bitwise(name, size, masks, every_region_threaded):
    p = _problem(name, *size, lengths="empty", masks=masks, seed=4)
    one, two = _kernel(p, num_threads=1), _kernel(p, num_threads=2)
    for result in one:
        assert np.array_equal(one[result], two[result]), result
    assert all(np.array_equal(a, b) for a, b in zip(_infer(p, 1), _infer(p, 2)))


_VARIANT_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from test_cells_bf16 import (CELLS, _assert_close, _bf16_tol, _infer, _kernel, _problem,
                             _reference)
from recurrent._kernels import activations
for name in CELLS:
    for size, masks in [((5, 3, 4, 6), None), ((7, 6, 19, 70), "both")]:
        p = _problem(name, *size, lengths="empty", masks=masks)
        got = _kernel(p)
        _assert_close(got, _reference(p), _bf16_tol(name), name + " bf16 reference")
        assert all(np.array_equal(a, got[k]) for a, k in zip(_infer(p), ("out", "h_n", "c_n")))
print(activations.vector_level(), "ok")
"""


@pytest.mark.parametrize("level", ["avx2", "portable"])
def test_lower_vector_variants_match_bf16_reference(level):
    """RECURRENT_VECTOR_LEVEL=avx2 or portable (a subprocess: the level is read once) runs
    the portable bf16 products and the lower gate-pass variants: the same agreement with
    the bf16 reference, and inference still equals training's forward."""
    env = dict(os.environ, RECURRENT_VECTOR_LEVEL=level, PYTHONSAFEPATH="1")
    result = subprocess.run([sys.executable, "-c", _VARIANT_CHECK, os.path.dirname(__file__)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    chosen, status = result.stdout.split()
    assert status == "ok"
    assert chosen == level or (level == "avx2" and chosen == "portable")  # CPU without AVX2


@pytest.mark.parametrize("name", CELLS)
def test_float64_refused(name):
    """Every kernel call refuses bf16 with float64 arrays: forward, backward given a
    float64 cache made without bf16, and inference, which writes nothing."""
    p = _problem(name, 3, 2, 4, 5)
    with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
        _kernel(p, dtype=np.float64)
    with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
        _kernel(p, bf16=False, backward_bf16=True, dtype=np.float64)
    if not name.startswith("rnn"):
        p64 = dict(p, x=p["x"].astype(np.float64),
                   states=tuple(s.astype(np.float64) for s in p["states"]),
                   params={k: v.astype(np.float64) for k, v in p["params"].items()})
        with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
            _infer(p64)
