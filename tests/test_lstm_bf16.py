"""The LSTM kernel's bf16 path (recurrent/_kernels/lstm.pyx, bf16=True) against the bf16
reference (recurrent.reference.BF16LSTMCell), against the kernel's own float32 path, and
its invariants: inference equal to training's forward, results independent of the thread
count, float64 refused.

Legend: T time, B batch, I input, H hidden, G = 4H.

Tolerances, per result array, as max |error| / max |expected value|:
  BF16_TOL (against the bf16 reference): both round the same operands to bf16, but the
    kernel sums the products in float32 and the reference in float64. Where that moves
    an operand of a later product (h_t, dA) across a bf16 rounding boundary, the two
    round it to neighbouring bf16 values (2^-7 apart, relative) and the difference
    carries through the following steps; BF16_TOL leaves room for a few such flips.
  F32_TOL (against the float32 path): the bf16 rounding itself (up to 2^-8 relative per
    operand) through every product and step.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from recurrent._kernels import lstm
from recurrent._kernels import tuning as kernel_tuning
from recurrent.masks import variational_mask, zoneout_mask
from recurrent.reference import BF16LSTMCell, LSTMCell, bf16_matmul, bf16_round

BF16_TOL = 2e-3
F32_TOL = 2e-2
RESULTS = ("out", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db")

# (T, B, I, H): general, T = 1, B = 1, odd I and H not a multiple of 16, several row and
# gate blocks of the hoisted products (G = 280), a longer sequence.
SIZES = [(5, 3, 4, 6), (1, 2, 3, 4), (6, 1, 3, 5), (4, 9, 7, 21), (7, 6, 19, 70),
         (20, 8, 32, 64)]


def _problem(T, B, I, H, lengths="full", masks=None, seed=0):
    """Float32 parameters (the LSTM's init), inputs, initial states, output and final-state
    gradients, lengths: all T ("full"), or in 0..T with row 0 of length 0 and the last row
    full ("empty"); masks None, "recurrent", "zoneout" (0/1 per step, each state),
    "expectation" (zoneout 0.3 everywhere, (1, B, H)) or "both" (recurrent and zoneout)."""
    rng = np.random.default_rng(seed)
    cell = LSTMCell()
    params = {k: np.zeros(s, np.float32) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    h0, c0 = (rng.normal(scale=0.5, size=(B, H)).astype(np.float32) for _ in range(2))
    d_out = rng.normal(size=(T, B, H)).astype(np.float32)
    dh_n, dc_n = (rng.normal(size=(B, H)).astype(np.float32) for _ in range(2))
    lens = np.full(B, T, np.int64)
    if lengths == "empty":
        lens = rng.integers(0, T + 1, size=B).astype(np.int64)
        lens[0] = 0
        lens[-1] = T
    m = {}
    if masks in ("recurrent", "both"):
        m["recurrent"] = variational_mask(rng, B, H, 0.3, np.float32)
    if masks in ("zoneout", "both"):
        m["zoneout"] = tuple(zoneout_mask(rng, T, B, H, 0.3, np.float32) for _ in range(2))
    if masks == "expectation":
        m["zoneout"] = tuple(np.full((1, B, H), 0.3, np.float32) for _ in range(2))
    return dict(params=params, x=x, h0=h0, c0=c0, d_out=d_out, dh_n=dh_n, dc_n=dc_n,
                lengths=lens, masks=m or None)


def _kernel(p, bf16=True, num_threads=1, dtype=np.float32):
    """forward then backward through the kernel; every result by name (RESULTS)."""
    params = {k: v.astype(dtype) for k, v in p["params"].items()}
    x, h0, c0 = (p[k].astype(dtype) for k in ("x", "h0", "c0"))
    T, B, _ = x.shape
    H = h0.shape[1]
    masks = p["masks"] or {}
    rec = masks.get("recurrent")
    zone = masks.get("zoneout")
    out, cells = np.empty((T, B, H), dtype), np.empty((T, B, H), dtype)
    gates = np.empty((T, B, 4 * H), dtype)
    h_n, c_n = np.empty((B, H), dtype), np.empty((B, H), dtype)
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    bias = params["bias_ih"] + params["bias_hh"]
    lstm.forward(out, gates, cells, h_n, c_n, x, h0, c0, w_ih, w_hh, bias, p["lengths"],
                 num_threads, rec, zone, bf16=bf16)
    dx = np.empty_like(x)
    dh, dc = p["dh_n"].astype(dtype), p["dc_n"].astype(dtype)
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(4 * H, dtype)
    lstm.backward(dx, dh, dc, dw_ih, dw_hh, db, gates, p["d_out"].astype(dtype), x, h0, c0,
                  out, cells, w_ih, w_hh, p["lengths"], num_threads, rec, zone, bf16=bf16)
    return dict(out=out, h_n=h_n, c_n=c_n, dx=dx, dh0=dh, dc0=dc, dw_ih=dw_ih, dw_hh=dw_hh,
                db=db)


def _infer(p, num_threads=1):
    """The kernel's bf16 inference: (out, h_n, c_n)."""
    x, h0 = p["x"], p["h0"]
    T, B, _ = x.shape
    H = h0.shape[1]
    masks = p["masks"] or {}
    out, h_n, c_n = np.empty((T, B, H), np.float32), np.empty((B, H), np.float32), \
        np.empty((B, H), np.float32)
    params = p["params"]
    lstm.infer(out, h_n, c_n, x, h0, p["c0"], params["weight_ih"], params["weight_hh"],
               params["bias_ih"] + params["bias_hh"], p["lengths"], num_threads,
               masks.get("recurrent"), masks.get("zoneout"), bf16=True)
    return out, h_n, c_n


def _reference(p):
    """The bf16 reference cell's forward and backward; every result by name (RESULTS)."""
    cell = BF16LSTMCell()
    params = p["params"]
    out, (h_n, c_n), cache = cell.forward(p["x"], (p["h0"], p["c0"]), params, p["lengths"],
                                          masks=p["masks"])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, (dh0, dc0) = cell.backward(p["d_out"], (p["dh_n"], p["dc_n"]), cache, grads)
    assert np.array_equal(grads["bias_ih"], grads["bias_hh"])
    return dict(out=out, h_n=h_n, c_n=c_n, dx=dx, dh0=dh0, dc0=dc0, dw_ih=grads["weight_ih"],
                dw_hh=grads["weight_hh"], db=grads["bias_ih"])


def _relative_error(got, expected):
    """max |got - expected| / max |expected| (0 for two all-zero arrays)."""
    scale = np.abs(expected).max(initial=0.0)
    error = np.abs(got.astype(np.float64) - expected).max(initial=0.0)
    return error / scale if scale > 0 else error


def _assert_close(got, expected, tol, what):
    for name in RESULTS:
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
def test_matches_bf16_reference_and_float32(size, lengths):
    p = _problem(*size, lengths=lengths)
    got = _kernel(p)
    _assert_close(got, _reference(p), BF16_TOL, "bf16 reference")
    _assert_close(got, _kernel(p, bf16=False), F32_TOL, "float32 path")
    # a row of length 0 runs no step: its final state is its initial one, its gradients
    # pass through
    empty = p["lengths"] == 0
    assert np.array_equal(got["h_n"][empty], p["h0"][empty])
    assert np.array_equal(got["c_n"][empty], p["c0"][empty])
    assert np.array_equal(got["dh0"][empty], p["dh_n"][empty])
    assert not got["out"][:, empty].any() and not got["dx"][:, empty].any()


@pytest.mark.parametrize("masks", ["recurrent", "zoneout", "expectation", "both"])
def test_masks_match_bf16_reference(masks):
    p = _problem(6, 5, 7, 21, lengths="empty", masks=masks, seed=3)
    got = _kernel(p)
    _assert_close(got, _reference(p), BF16_TOL, f"bf16 reference, {masks}")
    _assert_close(got, _kernel(p, bf16=False), F32_TOL, f"float32 path, {masks}")


def test_products_are_bf16():
    """The bf16 path follows the bf16 reference, not float32 arithmetic: on average its
    error against the bf16 reference is a small fraction of the float32 path's."""
    p = _problem(20, 8, 32, 64, lengths="empty", seed=1)
    expected = _reference(p)
    bf16, f32 = _kernel(p), _kernel(p, bf16=False)
    for name in RESULTS:
        bf16_error = np.abs(bf16[name] - expected[name]).mean()
        f32_error = np.abs(f32[name] - expected[name]).mean()
        assert bf16_error < 0.1 * f32_error, (name, bf16_error, f32_error)


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
def test_infer_equals_forward_bitwise(size, masks, small_infer_chunks):
    p = _problem(*size, lengths="empty", masks=masks, seed=2)
    trained = _kernel(p)
    out, h_n, c_n = _infer(p)
    assert np.array_equal(out, trained["out"])
    assert np.array_equal(h_n, trained["h_n"])
    assert np.array_equal(c_n, trained["c_n"])


@pytest.mark.parametrize("masks", [None, "both"])
@pytest.mark.parametrize("size", [(4, 9, 7, 21), (7, 6, 19, 70), (3, 5, 40, 130)])
def test_one_and_two_threads_bitwise(size, masks, every_region_threaded):
    p = _problem(*size, lengths="empty", masks=masks, seed=4)
    one, two = _kernel(p, num_threads=1), _kernel(p, num_threads=2)
    for name in RESULTS:
        assert np.array_equal(one[name], two[name]), name
    assert all(np.array_equal(a, b) for a, b in zip(_infer(p, 1), _infer(p, 2)))


_VARIANT_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from test_lstm_bf16 import BF16_TOL, _assert_close, _infer, _kernel, _problem, _reference
from recurrent._kernels import activations
for size, masks in [((5, 3, 4, 6), None), ((7, 6, 19, 70), "both")]:
    p = _problem(*size, lengths="empty", masks=masks)
    got = _kernel(p)
    _assert_close(got, _reference(p), BF16_TOL, "bf16 reference")
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
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    chosen, status = result.stdout.split()
    assert status == "ok"
    assert chosen == level or (level == "avx2" and chosen == "portable")  # CPU without AVX2


def test_float64_refused():
    p = _problem(3, 2, 4, 5)
    with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
        _kernel(p, dtype=np.float64)
    x = p["x"].astype(np.float64)
    out, h_n, c_n = np.zeros((3, 2, 5)), np.zeros((2, 5)), np.zeros((2, 5))
    params = {k: v.astype(np.float64) for k, v in p["params"].items()}
    with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
        lstm.infer(out, h_n, c_n, x, p["h0"].astype(np.float64), p["c0"].astype(np.float64),
                   params["weight_ih"], params["weight_hh"], params["bias_ih"], p["lengths"],
                   1, bf16=True)
    assert not out.any() and not h_n.any()
    # backward refuses too, given a float64 cache made without bf16
    gates = np.empty((3, 2, 20))
    cells = np.empty((3, 2, 5))
    lstm.forward(out, gates, cells, h_n, c_n, x, p["h0"].astype(np.float64),
                 p["c0"].astype(np.float64), params["weight_ih"], params["weight_hh"],
                 params["bias_ih"], p["lengths"], 1)
    dw_ih, dw_hh, db = (np.zeros_like(params["weight_ih"]), np.zeros_like(params["weight_hh"]),
                        np.zeros(20))
    with pytest.raises(ValueError, match="bf16=True takes float32 arrays, got float64"):
        lstm.backward(np.empty_like(x), np.zeros((2, 5)), np.zeros((2, 5)), dw_ih, dw_hh, db,
                      gates, np.ones((3, 2, 5)), x, p["h0"].astype(np.float64),
                      p["c0"].astype(np.float64), out, cells, params["weight_ih"],
                      params["weight_hh"], p["lengths"], 1, bf16=True)
    assert not dw_ih.any() and not dw_hh.any() and not db.any()
