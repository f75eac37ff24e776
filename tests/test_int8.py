"""int8 inference (issue 17, recurrent/quant.py): the kernels against the numpy reference
of the same arithmetic (recurrent/reference.py), and against float32 within the error
the quantisation allows."""
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import expected_int8_path

pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")

from recurrent import StreamPool  # noqa: E402
from recurrent._kernels import int8 as kernel  # noqa: E402
from recurrent.layers import Recurrent  # noqa: E402
from recurrent.quant import QuantizedWeight, int8_error_bound, quantize_rows  # noqa: E402
from recurrent.reference import get_reference_cell, int8_sums  # noqa: E402

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu", "ln_lstm")
TORCH_CELLS = CELLS[:4]   # torch.nn's equations: no layer normalisation
# (rows, K, N): rows not a multiple of the 4-row tile, K odd (padded pair), N not a
# multiple of the 16-output tile, a single row, a layer's real sizes, and rows long
# enough to be taken in several blocks (qmat.h rc_q_row_block), the last one short
PRODUCTS = ((1, 1, 1), (3, 7, 9), (13, 64, 17), (33, 129, 100), (64, 256, 1024),
            (101, 1023, 40))


def _rows(rng, m, K):
    """Rows of very different scales, one of them all zeros (scale 0)."""
    a = rng.standard_normal((m, K)).astype(np.float32)
    a *= rng.uniform(1e-3, 30, (m, 1)).astype(np.float32)
    a[m // 2] = 0
    return a


def test_quantisation_and_integer_sums_equal_the_reference_bit_for_bit(rng):
    for m, K, N in PRODUCTS:
        a = _rows(rng, m, K)
        q, scale = kernel.quantize_rows(a)
        ref_q, ref_scale = quantize_rows(a)
        assert q.shape == (m, K + K % 2) and not q[:, K:].any()
        np.testing.assert_array_equal(q[:, :K], ref_q)
        np.testing.assert_array_equal(scale.view(np.int32), ref_scale.view(np.int32))
        assert np.abs(ref_q).max() <= 127
        w = QuantizedWeight(rng.standard_normal((N, K)).astype(np.float32))
        np.testing.assert_array_equal(kernel.matmul_int32(q, w.packed, N, K),
                                      int8_sums(ref_q, w.q))


def test_sums_stay_exact_where_the_shifted_partial_sums_pass_the_int32_range(rng):
    """Full-range values over a long row: every sum_k qa qw fits in int32, but the VNNI
    variant's unsigned form sum_k (qa + 128) qw does not (255 x 127 x K > 2^31 for K above
    66,311); its correction must still give the exact sums, as every variant does."""
    K = 70_001
    a = np.where(rng.random((3, K)) < 0.5, 1.0, -1.0).astype(np.float32)
    a[1] = 1.0                                    # qa = 127 everywhere: qa + 128 = 255
    w = np.where(rng.random((17, K)) < 0.5, 1.0, -1.0).astype(np.float32)
    w[0], w[16] = -1.0, 1.0                       # qw = -127, 127 everywhere
    q, _ = kernel.quantize_rows(a)
    ref_q, _ = quantize_rows(a)
    qw = QuantizedWeight(w)
    want = int8_sums(ref_q, qw.q)
    assert want[1, 0] == -127 * 127 * K and want[1, 16] == 127 * 127 * K
    np.testing.assert_array_equal(kernel.matmul_int32(q, qw.packed, 17, K), want)


_PORTABLE_CHECK = r"""
import numpy as np
from recurrent._kernels import activations, int8 as kernel
from recurrent.layers import Recurrent
from recurrent.quant import QuantizedWeight, quantize_rows
from recurrent.reference import int8_sums
rng = np.random.default_rng(5)
a = rng.standard_normal((11, 37)).astype(np.float32)
# rows so small that 127 / max overflows float32 (below ~3.7e-37) quantise to zeros, as
# zero rows do, in every variant and in numpy
a[3], a[7] = 1e-38 * a[3], 2e-37
# rows holding infinity or NaN (in a vector's lanes, in the scalar tail): zeros, scale NaN
a[5, 2], a[9, 34] = np.inf, np.nan
q, s = kernel.quantize_rows(a)
w = QuantizedWeight(rng.standard_normal((45, 37)).astype(np.float32))
assert np.array_equal(q[:, :37], quantize_rows(a)[0]) and np.abs(q).max() <= 127
assert not q[3].any() and not q[7].any() and s[3] == s[7] == 0
assert not q[5].any() and not q[9].any() and np.isnan(s[5]) and np.isnan(s[9])
assert np.array_equal(s.view(np.int32), quantize_rows(a)[1].view(np.int32))
assert np.array_equal(kernel.matmul_int32(q, w.packed, 45, 37), int8_sums(q[:, :37], w.q))
q, _ = kernel.quantize_rows(rng.standard_normal((101, 1023)).astype(np.float32))
w = QuantizedWeight(rng.standard_normal((40, 1023)).astype(np.float32))
assert np.array_equal(kernel.matmul_int32(q, w.packed, 40, 1023), int8_sums(q[:, :1023], w.q))
outs = []
for cell, options in (("lstm", {}), ("gru", {}), ("ln_lstm", {}), ("lstm", {"zoneout": 0.3})):
    layer = Recurrent(cell, 6, 10, seed=2, precision="int8", **options)
    x = rng.standard_normal((5, 7, 6)).astype(np.float32)
    outs.append(layer(x, lengths=[5, 0, 3, 1, 5, 2, 4], need_grad=False)[0])
# every tile and padding: rows 1..20 (8-row tiles over two panels, then 8, 4 and 1 rows),
# K 1..70 (each remainder of the pairs, the quads and the u8 conversion's 32-value
# vectors), N 1..80 (partial and odd last panels of 8 and of 16 outputs)
shapes = np.random.default_rng(6)
for m, K, N in shapes.integers(1, (21, 71, 81), (300, 3)):
    q, _ = kernel.quantize_rows(shapes.standard_normal((m, K)).astype(np.float32))
    w = QuantizedWeight(shapes.standard_normal((N, K)).astype(np.float32))
    assert np.array_equal(kernel.matmul_int32(q, w.packed, N, K), int8_sums(q[:, :K], w.q)), (
        m, K, N)
np.save(__import__("sys").argv[1], np.concatenate([o.ravel() for o in outs]))
# the dequantising stores alone: relu passes the pre-activations through unrounded, so an
# Elman relu layer's outputs are the products' float results, bias and accumulation
# included, over rows and columns of every tile (H = 37: a partial last panel), a zero
# row, and a row of huge values whose scale times the weights' overflows (infinite
# products; zero sums keep the base), which then carries infinity and NaN on
layer = Recurrent("rnn_relu", 70, 37, seed=4, precision="int8")
layer.load_state_dict({k: v * 1e6 if k.startswith("weight_ih") else v
                       for k, v in layer.state_dict().items()})
x = rng.standard_normal((3, 21, 70)).astype(np.float32)
x[:, 4], x[:, 9] = 0, 3e38 * np.sign(x[:, 9])
relu = layer(x, need_grad=False)[0]
assert np.isinf(relu).any() and np.isnan(relu).any() and np.isfinite(relu[:, :9]).all()
np.save(__import__("sys").argv[1] + ".relu.npy", relu)
print(activations.vector_level(), kernel.instruction_path())
"""


def test_every_variant_gives_the_same_sums_and_outputs(tmp_path):
    """The portable C tile (CPUs without AVX2), the AVX2 one (CPUs without VNNI), the
    AVX-VNNI one (where this CPU and build have it) and this CPU's best (AVX-512 VNNI
    where it has it) against the reference sums, and their whole outputs against each
    other: equal up to the gate passes' vector rounding (the sums and their
    dequantisation are the same operations in all)."""
    results, relu = {}, {}
    for level in ("portable", "avx2", "avx_vnni", "best"):
        env = dict(os.environ, PYTHONSAFEPATH="1")
        env.pop("RECURRENT_VECTOR_LEVEL", None)  # "best": the CPU's own, whatever this run set
        if level != "best":
            env["RECURRENT_VECTOR_LEVEL"] = level
        path = tmp_path / f"{level}.npy"
        done = subprocess.run([sys.executable, "-c", _PORTABLE_CHECK, str(path)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        vector_code, products = done.stdout.split()
        assert (vector_code, products) == {
            "portable": ("portable", "portable"), "avx2": ("avx2", "avx2"),
            "avx_vnni": ("avx2", expected_int8_path("avx2"))}.get(level, (
                vector_code, products)), done.stdout
        results[level] = np.load(path)
        relu[level] = np.load(f"{path}.relu.npy")
        if level == "best":  # the widest variant runs where it can
            assert products == expected_int8_path(vector_code)
    for level in ("portable", "avx2", "avx_vnni"):
        np.testing.assert_allclose(results[level], results["best"], atol=2e-6)
    for level in ("portable", "avx2", "avx_vnni"):  # NaN equal to NaN
        np.testing.assert_array_equal(relu[level], relu["best"], strict=True)


def _within_4_ulp(got, want, where=None):
    """|got - want| at most 4 float32 ulp of want's magnitude (at least 1): the int8 sums
    are exact, so kernel and reference differ by float32 rounding alone."""
    ulp = np.finfo(np.float32).eps * max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 4 * ulp, where


def _pair(cell, I, H, seed, **kwargs):
    """A fast layer in int8 and a reference-cell layer with the same parameters."""
    fast = Recurrent(cell, I, H, seed=seed, precision="int8", **kwargs)
    ref = Recurrent(get_reference_cell(cell), I, H, seed=seed, precision="int8", **kwargs)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


@pytest.mark.parametrize("cell", CELLS)
def test_one_kernel_step_matches_the_reference_within_float32_rounding(cell, rng):
    """One step from a given state, both directions, a row of length 0: x_t and h_{t-1}
    quantise to the same int8 values and the sums are exact, so the kernel and the numpy
    reference differ only by the float32 rounding of the dequantisation order and the
    gate passes: within 4 ulp of the outputs' magnitude (2 seen)."""
    B, I, H = 7, 13, 21
    fast, ref = _pair(cell, I, H, 1, bidirectional=True)
    x = rng.standard_normal((1, B, I)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (2, B, H)).astype(np.float32)
    c0 = rng.uniform(-2, 2, (2, B, H)).astype(np.float32)
    state = (h0, c0) if cell in ("lstm", "ln_lstm") else h0
    lengths = [1, 0, 1, 1, 1, 1, 1]
    out, _ = fast(x, state=state, lengths=lengths, need_grad=False)
    want, _ = ref(x, state=state, lengths=lengths, need_grad=False)
    _within_4_ulp(out, want)
    assert not out[:, 1].any()


@pytest.mark.parametrize("cell", CELLS)
def test_each_step_from_the_kernels_own_state_matches_the_reference(cell, rng):
    """A sequence taken one step at a time, each step from the state the kernel reached
    (with zoneout, and a row that stops): the kernel's step against the reference's from
    the same state, within float32 rounding as in the one-step test. Compared this way
    no difference carries over from step to step: the float32 rounding of the two
    (1e-7) can move a value of h across a rounding boundary of its quantisation, and an
    LN-LSTM's normalisations amplify such a move over the following steps (0.028 after
    nine steps at random weights, seen), which the whole-sequence test below must
    tolerate for the other cells."""
    T, B, I, H = 12, 5, 13, 21
    fast, ref = _pair(cell, I, H, 2, zoneout=0.3)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    state = tuple(rng.uniform(-1, 1, (1, B, H)).astype(np.float32)
                  for _ in fast.cell.state_names)
    for t in range(T):
        given = state if len(state) > 1 else state[0]
        lengths = [1, 1, 0 if t >= 5 else 1, 1, 1]
        out, new = fast(x[t:t + 1], state=given, lengths=lengths, need_grad=False)
        want, want_new = ref(x[t:t + 1], state=given, lengths=lengths, need_grad=False)
        new, want_new = (new, want_new) if len(state) > 1 else ((new,), (want_new,))
        for got, expected in zip((out,) + tuple(new), (want,) + tuple(want_new)):
            _within_4_ulp(got, expected, t)
        state = tuple(new)


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_kernel_sequences_match_the_reference_at_any_thread_count(cell, rng,
                                                                  every_region_threaded):
    """Stacked, bidirectional, with lengths (0 included): the kernel against the numpy
    reference of the same arithmetic, and bitwise equal at 1 and 2 threads (every region
    split, however small). Tolerance: the gate passes differ by float32 rounding (1e-6
    relative), which can move a value of h across a rounding boundary of its
    quantisation: one step of 1/127 of the row's max-abs times a weight (<= 1/sqrt(H)),
    4e-4 here, carried on by the recurrence. (The LN-LSTM amplifies such a move: the
    step-by-step test above compares it; the thread test below splits it.)"""
    T, B, I, H = 9, 7, 13, 21
    fast, ref = _pair(cell, I, H, 1, num_layers=2, bidirectional=True)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([9, 0, 4, 1, 9, 7, 2])
    out, state = fast(x, lengths=lengths, need_grad=False)
    ref_out, ref_state = ref(x, lengths=lengths, need_grad=False)
    np.testing.assert_allclose(out, ref_out, atol=2e-3)
    for got, want in zip(np.atleast_3d(state) if cell != "lstm" else state,
                         np.atleast_3d(ref_state) if cell != "lstm" else ref_state):
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert not out[:, 1].any()  # a row of length 0 outputs zeros ...
    fast.num_threads = 2
    out2, state2 = fast(x, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(np.asarray(state2), np.asarray(state))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_batch_taken_in_several_chunks_matches_the_reference(cell, rng,
                                                              every_region_threaded):
    """Rows whose pre-activations pass one chunk (int8.pyx CHUNK_BYTES: H = 1024 makes
    chunks of 64 rows, so 150 rows are three on one thread, the last short, and two on
    each of two threads) against the numpy reference, with lengths, and bitwise equal at
    1 and 2 threads. Tolerance as in the test above."""
    T, B, I, H = 3, 150, 5, 1024
    fast, ref = _pair(cell, I, H, 3)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = rng.integers(0, T + 1, B)
    fast.num_threads = 1
    out, state = fast(x, lengths=lengths, need_grad=False)
    ref_out, _ = ref(x, lengths=lengths, need_grad=False)
    np.testing.assert_allclose(out, ref_out, atol=2e-3)
    fast.num_threads = 2
    out2, state2 = fast(x, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(np.asarray(state2), np.asarray(state))


@pytest.mark.parametrize("cell", CELLS)
def test_threads_that_split_the_batch_give_bitwise_the_outputs_of_one(
        cell, every_region_threaded, rng):
    """Every parallel region on 2 threads, however small: each thread quantises and
    multiplies its own batch rows, through its own slice of the products' scratch (the
    VNNI variant's u8 rows, sized for the longer of the x and h rows), so the outputs are
    bitwise those of one thread. Inputs wider and narrower than the state, an odd batch
    (uneven split) and one giving each thread 8-row tiles. Threads sharing memory differ
    only where they run at the same time: long sequences and each 2-thread run repeated,
    so that they do even where other processes hold a core part of the time."""
    for I, H, B in ((70, 9, 17), (9, 70, 17), (66, 66, 18)):
        layer = Recurrent(cell, I, H, seed=1, precision="int8", bidirectional=True)
        x = rng.standard_normal((1000, B, I)).astype(np.float32)
        lengths = rng.integers(500, 1001, B)
        layer.num_threads = 1
        want = layer(x, lengths=lengths, need_grad=False)[0]
        layer.num_threads = 2
        for _ in range(2):
            np.testing.assert_array_equal(layer(x, lengths=lengths, need_grad=False)[0], want)


@pytest.mark.parametrize("cell", CELLS)
def test_masks_match_the_reference_and_threads_split_them_bitwise(cell, rng,
                                                                   every_region_threaded):
    """infer_int8 called with the masks every cell kernel takes (recurrent/masks.py): a
    recurrent-dropout mask and zoneout values that differ by step, row and unit, for
    each state. Step by step from the kernel's own state (as the test above), the kernel
    against the numpy reference within float32 rounding; the whole sequence bitwise
    equal at 1 and 2 threads, and different from the sequence without masks."""
    T, B, I, H = 9, 7, 13, 21
    fast, ref = _pair(cell, I, H, 5)
    params = fast._unit_params(0)
    qparams, ref_qparams = fast.cell.quantize(params), ref.cell.quantize(params)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    states = tuple(rng.uniform(-1, 1, (B, H)).astype(np.float32)
                   for _ in fast.cell.state_names)
    lengths = np.array([9, 0, 4, 1, 9, 7, 2], np.int64)
    rec = ((rng.random((B, H)) < 0.8) / 0.8).astype(np.float32)
    zone = tuple(rng.random((T, B, H)).astype(np.float32) for _ in states)
    for masks in ({"recurrent": rec, "zoneout": zone}, {"recurrent": rec},
                  {"zoneout": zone}):
        state = states
        for t in range(T):
            step = {kind: m if kind == "recurrent" else tuple(k[t:t + 1] for k in m)
                    for kind, m in masks.items()}
            left = np.minimum(np.maximum(lengths - t, 0), 1)
            out, new = fast.cell.infer_int8(x[t:t + 1], state, qparams, left, 1, masks=step)
            want, want_new = ref.cell.infer_int8(x[t:t + 1], state, ref_qparams, left, 1,
                                                 masks=step)
            for got, expected in zip((out,) + tuple(new), (want,) + tuple(want_new)):
                _within_4_ulp(got, expected, (masks.keys(), t))
            state = tuple(new)
    masks = {"recurrent": rec, "zoneout": zone}
    out, finals = fast.cell.infer_int8(x, states, qparams, lengths, 1, masks=masks)
    plain, _ = fast.cell.infer_int8(x, states, qparams, lengths, 1)
    assert np.abs(plain - out).max() > 0.05   # the masks were applied
    out2, finals2 = fast.cell.infer_int8(x, states, qparams, lengths, 2, masks=masks)
    np.testing.assert_array_equal(out2, out)
    for got, expected in zip(finals2, finals):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cell", CELLS)
def test_a_layer_with_zoneout_evaluates_in_int8_as_the_reference_does(cell, rng):
    """A layer trained with zoneout evaluates with its expectation, s_t = p s_{t-1} +
    (1 - p) candidate_t, in int8 as in float32. Cells without layer normalisation: the
    kernel against the reference layer, and near float32 (their int8 error stays small
    at random weights; the LN-LSTM's is compared step by step above)."""
    T, B, I, H = 20, 6, 16, 32
    fast, ref = _pair(cell, I, H, 6, num_layers=2, zoneout=0.5)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    out, _ = fast(x, need_grad=False)
    if cell != "ln_lstm":   # its whole sequences: see the step-by-step test
        np.testing.assert_allclose(out, ref(x, need_grad=False)[0], atol=2e-3)
    fast.precision = "fp32"
    fp32, _ = fast(x, need_grad=False)
    unzoned = Recurrent(cell, I, H, num_layers=2, precision="int8")
    unzoned.load_state_dict(fast.state_dict())
    assert np.abs(unzoned(x, need_grad=False)[0] - out).max() > 0.05   # zoneout applied
    if cell != "ln_lstm":
        assert np.abs(out - fp32).max() < 0.01


def test_a_cell_whose_infer_int8_takes_no_masks_is_refused_with_zoneout(rng):
    """A plugin's infer_int8 without the masks keyword cannot run a zoneout layer's
    evaluation: refused when the precision is set, naming the cell; without zoneout the
    cell runs int8 as before."""
    from recurrent_plugins.cells import LSTMCell

    class NoMasks(LSTMCell):
        def __init__(self):
            super().__init__()
            self.name = "lstm_no_masks"

        def infer_int8(self, x, states, qparams, lengths, num_threads):
            return super().infer_int8(x, states, qparams, lengths, num_threads)

    with pytest.raises(ValueError, match="cell 'lstm_no_masks'.s infer_int8.. takes no "
                                         "masks, which a layer with zoneout passes"):
        Recurrent(NoMasks(), 4, 6, zoneout=0.1, precision="int8")
    layer = Recurrent(NoMasks(), 4, 6, seed=1, precision="int8")
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    want = Recurrent("lstm", 4, 6, seed=1, precision="int8")(x, need_grad=False)[0]
    np.testing.assert_array_equal(layer(x, need_grad=False)[0], want)


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_a_zero_sum_of_rows_whose_scales_overflow_gives_the_bias_not_nan(cell):
    """Input rows and weight rows holding one huge value each (1e30), in different
    columns: the scales' product (1e30 / 127)^2 overflows float32, but every quantised sum
    of the input part is 0 (the other values quantise to 0), so each of those products
    is 0 (not 0 * inf = NaN) and the pre-activations are the biases plus the recurrent
    part: finite, as in float32."""
    T, B, I, H = 3, 5, 4, 6
    fast, ref = _pair(cell, I, H, 2)
    params = fast.state_dict()
    params["weight_ih_l0"][:] = 1e-3
    params["weight_ih_l0"][:, 0] = 1e30
    x = np.full((T, B, I), 1e-3, np.float32)
    x[:, :, 1] = 1e30
    for layer in (fast, ref):
        layer.load_state_dict(params)
    out, _ = fast(x, need_grad=False)
    want, _ = ref(x, need_grad=False)
    assert np.isfinite(out).all() and np.isfinite(want).all()
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    fast.num_threads = 2
    np.testing.assert_array_equal(fast(x, need_grad=False)[0], out)


@pytest.mark.parametrize("H", (6, 20))
def test_a_state_that_overflows_stays_non_finite(H, rng):
    """An Elman relu RNN whose h overflows float32 (recurrent weights far too large: a
    diverged model): after the step where float32's outputs turn infinite, every int8
    output row holds a non-finite value too (a row holding infinity or NaN quantises to
    scale NaN, and its products are NaN), never finite values from a state read as
    zeros; the kernels quantise such rows as numpy does, bit for bit."""
    a = rng.standard_normal((4, 37)).astype(np.float32)
    a[0, 3], a[1, 36], a[2, 20] = np.inf, -np.inf, np.nan
    q, scale = kernel.quantize_rows(a)
    ref_q, ref_scale = quantize_rows(a)
    assert not q[:3].any() and np.isnan(scale[:3]).all() and np.isfinite(scale[3])
    np.testing.assert_array_equal(q[:, :37], ref_q)
    np.testing.assert_array_equal(scale.view(np.int32), ref_scale.view(np.int32))
    T, B, I = 12, 3, 4
    layer = Recurrent("rnn_relu", I, H, seed=0)
    params = layer.state_dict()
    params["weight_ih_l0"] = np.abs(params["weight_ih_l0"])
    params["weight_hh_l0"] = np.abs(params["weight_hh_l0"]) * 1e6
    params["bias_ih_l0"][:] = 1
    layer.load_state_dict(params)
    x = np.ones((T, B, I), np.float32)
    want, _ = layer(x, need_grad=False)
    overflowed = ~np.isfinite(want).all(axis=(1, 2))            # (T,)
    assert overflowed.any() and not overflowed[0]
    t0 = int(np.argmax(overflowed))
    layer.precision = "int8"
    got, _ = layer(x, need_grad=False)
    assert np.isfinite(got[:t0 - 1]).all()
    assert (~np.isfinite(got[t0 + 1:])).any(axis=2).all()


def _documented_bound(a, w):
    """The bound of recurrent/quant.py's docstring built term by term: per output (i, g),
    sum over k of |a_ik| dw_g + |w_gk| da_i + da_i dw_g, where a row quantised to
    q = rint(x * 127 / max|x|) with step max|x| / 127 is within half a step of itself."""
    a = np.asarray(a, np.float64)
    w = np.asarray(w, np.float64)
    da = np.abs(a).max(axis=1) / 127 / 2
    dw = np.abs(w).max(axis=1) / 127 / 2
    terms = (np.abs(a)[:, None, :] * dw[None, :, None]
             + np.abs(w)[None, :, :] * da[:, None, None]
             + (da[:, None] * dw[None, :])[:, :, None])           # (m, G, K)
    return terms.sum(axis=2)


def _quantised_product(a, w):
    """The kernels' int8 product of a (m, K) and w (G, K): the exact int32 sums, dequantised
    in float64 so that only the quantisation's error is in it."""
    q, scale = kernel.quantize_rows(a)
    qw = QuantizedWeight(w)
    sums = kernel.matmul_int32(q, qw.packed, w.shape[0], w.shape[1]).astype(np.float64)
    return sums * scale.astype(np.float64)[:, None] * qw.scale.astype(np.float64)[None, :]


def test_int8_error_bound_is_the_documented_bound_holds_and_is_tight():
    """int8_error_bound against the bound built here; the true error of the kernels' int8
    products never above it; and not loose: with few terms per output (K 2..8) the largest
    error of 20 random draws is more than half the bound. Measured (seeds 0-9, 32x32
    outputs, 20 draws): 0.85-0.91 of the bound for K=2, 0.77-0.87 for 3, 0.72-0.76 for 5,
    0.60-0.69 for 8 (0.51 for 16, 0.29 for 64: random rounding errors partly cancel)."""
    rng = np.random.default_rng(0)
    for m, K, G in ((1, 1, 1), (5, 7, 3), (9, 33, 17), (4, 129, 40)):
        a = _rows(rng, m, K)
        w = rng.standard_normal((G, K)).astype(np.float32)
        w[G // 3] *= 1e-3
        want = _documented_bound(a, w)
        got = int8_error_bound(a, w)
        assert got.shape == (m, G)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert not got[m // 2].any()    # the zero row of _rows: scale 0, exact
    for K in (2, 3, 5, 8, 33, 64):
        worst = 0.0
        for _ in range(20):
            a = rng.standard_normal((32, K)).astype(np.float32)
            a *= rng.uniform(1e-3, 30, (32, 1)).astype(np.float32)
            w = rng.standard_normal((32, K)).astype(np.float32)
            bound = int8_error_bound(a, w)
            err = np.abs(_quantised_product(a, w)
                         - a.astype(np.float64) @ w.astype(np.float64).T)
            # the bound is exact arithmetic; the quantisation's float32 steps round, so
            # allow 1e-6 of it (no error above the bound at all was seen)
            assert np.all(err <= bound * (1 + 1e-6)), float(np.max(err / bound))
            worst = max(worst, float(np.max(err / bound)))
        if K <= 8:
            assert worst > 0.5, (K, worst)


def test_int8_error_bound_holds_for_rows_quantised_to_zeros(rng):
    """Rows of values so small that 127 / max overflows float32 (below ~3.7e-37), of the
    activations or of the weights, quantise to zeros (scale 0): their products are 0, so
    the error is the whole |a @ w.T|, which half a step per value does not cover; the
    bound still holds there, and is unchanged for the other rows."""
    a = rng.standard_normal((4, 9)).astype(np.float32)
    w = rng.standard_normal((5, 9)).astype(np.float32)
    a[1] *= np.float32(1e-38)
    w[3] *= np.float32(3e-38)
    assert not quantize_rows(a)[1][1] and not quantize_rows(w)[1][3]
    err = np.abs(_quantised_product(a, w) - a.astype(np.float64) @ w.astype(np.float64).T)
    bound = int8_error_bound(a, w)
    assert err[1].min() > 0 and err[:, 3].min() > 0
    assert np.all(err <= bound * (1 + 1e-6)), float(np.max(err / bound))
    rows, cols = np.array([0, 2, 3]), np.array([0, 1, 2, 4])
    np.testing.assert_allclose(bound[np.ix_(rows, cols)],
                               _documented_bound(a[rows], w[cols]), rtol=1e-12, atol=0)


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_one_step_is_within_the_quantisation_bound_of_float32(cell, rng):
    """One step from a random state: every pre-activation is off by at most
    int8_error_bound (x and h products), so h is off by at most that times the
    activations' slopes (sigmoid 1/4, tanh and relu 1; LSTM through c), plus float32
    rounding."""
    B, I, H = 6, 24, 32
    layer = Recurrent(cell, I, H, seed=3)
    params = {k[:-3]: v for k, v in layer.state_dict().items()}
    x = rng.standard_normal((1, B, I)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (1, B, H)).astype(np.float32)
    c0 = rng.uniform(-2, 2, (1, B, H)).astype(np.float32)
    state = (h0, c0) if cell == "lstm" else h0
    want, _ = layer(x, state=state, need_grad=False)
    layer.precision = "int8"
    got, _ = layer(x, state=state, need_grad=False)
    e = (int8_error_bound(x[0], params["weight_ih"])
         + int8_error_bound(h0[0], params["weight_hh"]))           # (B, G)
    blocks = np.split(e, layer.cell.num_gates, axis=1)
    if cell == "lstm":
        e_i, e_f, e_g, e_o = blocks
        e_c = np.abs(c0[0]) * e_f / 4 + e_i / 4 + e_g
        bound = e_o / 4 + e_c
    elif cell == "gru":
        e_r, e_z, e_n = blocks  # n = tanh(ax_n + r * ah_n): |ah_n| from the float32 step
        ah_n = h0[0] @ params["weight_hh"][2 * H:].T + params["bias_hh"][2 * H:]
        e_n_total = e_n + np.abs(ah_n) * e_r / 4
        bound = e_n_total + 2 * e_z / 4   # h = (1 - z) n + z h: |n - h| <= 2
    else:
        bound = blocks[0]
    err = np.abs(got[0] - want[0])
    assert np.all(err <= bound + 1e-5), float(np.max(err - bound))
    assert err.max() > 0   # it did run in int8


@pytest.mark.parametrize("cell", ("lstm", "gru"))
def test_sequences_stay_close_to_float32(cell, rng):
    """Over 50 steps and 2 layers the outputs stay within 0.01 of float32: the error of a
    step (at most a few 1e-3 at these sizes by int8_error_bound, 1e-3 seen) does not pile
    up, the gates contract it (seen: 1e-3 for the LSTM, 4e-3 for the GRU)."""
    T, B, I, H = 50, 8, 32, 64
    layer = Recurrent(cell, I, H, seed=4, num_layers=2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    want, _ = layer(x, need_grad=False)
    layer.precision = "int8"
    got, _ = layer(x, need_grad=False)
    assert np.abs(got - want).max() < 0.01


def test_weights_are_quantised_once_and_again_when_they_change(rng):
    """The int8 weights are kept until params_changed() counts a change: load_state_dict
    and a training step count theirs; code writing into the arrays itself calls it."""
    layer = Recurrent("lstm", 5, 8, seed=0, precision="int8")
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    first, _ = layer(x, need_grad=False)
    kept = layer._int8_params(0)
    assert layer._int8_params(0) is kept      # unchanged parameters: the same int8 form
    layer.params()["weight_hh_l0"][0, 0] += 0.5   # written in place ...
    layer.params_changed()                         # ... and said so
    changed, _ = layer(x, need_grad=False)
    assert layer._int8_params(0) is not kept
    fresh = Recurrent("lstm", 5, 8, seed=0, precision="int8")
    fresh.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(changed, fresh(x, need_grad=False)[0])
    assert not np.array_equal(changed, first)
    kept = fresh._int8_params(0)
    fresh.load_state_dict(Recurrent("lstm", 5, 8, seed=1).state_dict())
    assert fresh._int8_params(0) is not kept


def test_a_training_step_counts_as_a_change(rng):
    from recurrent.model import SequenceModel
    from recurrent.optim import SGD
    from recurrent.plugins import get_loss
    from recurrent.step import train_step
    spec = {"input": "tokens", "vocab_size": 7, "embed_dim": 4, "output": "sequence",
            "output_size": 7}
    model = SequenceModel(spec, hidden_size=6)
    x = rng.integers(0, 7, (5, 2))
    version = model.rnn.params_version
    train_step(model, get_loss("cross_entropy"), SGD(model.params, model.grads), x,
               rng.integers(0, 7, (5, 2)), None, None, 0.5)
    assert model.rnn.params_version > version


def test_int8_is_refused_where_it_does_not_apply(rng):
    layer = Recurrent("gru", 4, 6, precision="int8")
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="precision int8 is for inference"):
        layer(x)   # need_grad=True: training stays float32
    with pytest.raises(ValueError, match="needs a float32 layer"):
        Recurrent("gru", 4, 6, dtype=np.float64, precision="int8")
    with pytest.raises(ValueError, match="expected one of fp32, int8"):
        layer.precision = "int4"
    Recurrent("lstm", 4, 6, recurrent_dropout=0.2, precision="int8")   # off in inference
    peephole = pytest.importorskip("recurrent_peephole",
                                   reason="the example plugin recurrent-peephole is not "
                                          "installed")
    with pytest.raises(ValueError, match="cell 'peephole_lstm' has no int8 path"):
        Recurrent(peephole.PeepholeLSTMCell(), 4, 6, precision="int8")


@pytest.mark.parametrize("cell, options", [("lstm", {}), ("gru", {}), ("ln_lstm", {}),
                                           ("lstm", {"zoneout": 0.3}),
                                           ("ln_lstm", {"zoneout": 0.3})])
def test_a_stream_pool_in_int8_steps_as_the_layer_runs_the_sequence(cell, options, rng):
    """Streams advanced in any interleaving give, bit for bit, the int8 layer's outputs
    for each whole sequence (the same per-row arithmetic, zoneout's blend included),
    while the layer stays fp32."""
    T, I, H = 6, 5, 12
    layer = Recurrent(cell, I, H, num_layers=2, seed=7, **options)
    pool = StreamPool(layer, 8, precision="int8")
    assert layer.precision == "fp32" and pool.precision == "int8"
    xs = rng.standard_normal((T, 3, I)).astype(np.float32)
    for i in range(3):
        pool.open(i)
    ys = np.zeros((T, 3, H), np.float32)
    steps = [0, 0, 0]
    order = [0, 1, 0, 2, 2, 1] * T
    while min(steps) < T:
        ids = [i for i in dict.fromkeys(order[:2]) if steps[i] < T] or \
              [i for i in range(3) if steps[i] < T][:1]
        order = order[2:] + order[:2]
        out = pool.step_arrays(ids, np.stack([xs[steps[i], i] for i in ids]))
        for i, y in zip(ids, out):
            ys[steps[i], i] = y
            steps[i] += 1
    layer.precision = "int8"
    want, _ = layer(xs, need_grad=False)
    np.testing.assert_array_equal(ys, want)
    with pytest.raises(ValueError, match="expected one of fp32, int8"):
        StreamPool(layer, 2, precision="bf8")


_UNALIGNED_CHECK = r"""
import copy
import numpy as np
from recurrent._kernels import int8 as kernel
from recurrent.layers import Recurrent
from recurrent.quant import QuantizedWeight
from recurrent.reference import int8_sums
rng = np.random.default_rng(3)
w = QuantizedWeight(rng.standard_normal((40, 64)).astype(np.float32))
q, _ = kernel.quantize_rows(rng.standard_normal((9, 64)).astype(np.float32))
# the packed weights 16 bytes off a 32-byte boundary (where numpy may put a copy)
buf = np.zeros(w.packed.size + 32, np.int16)
skip = ((32 - buf.ctypes.data % 32) % 32 + 16) // 2
shifted = buf[skip:skip + w.packed.size]
shifted[:] = w.packed
assert shifted.ctypes.data % 32 == 16
assert np.array_equal(kernel.matmul_int32(q, shifted, 40, 64), int8_sums(q[:, :64], w.q))
# a layer copied after its int8 weights were made runs them, with the same results
layer = Recurrent("lstm", 64, 130, seed=2, precision="int8")
x = rng.standard_normal((5, 5, 64)).astype(np.float32)
out = layer(x, need_grad=False)[0]
for _ in range(8):
    assert np.array_equal(copy.deepcopy(layer)(x, need_grad=False)[0], out)
copies = [copy.deepcopy(w) for _ in range(16)]
assert all(c.packed.ctypes.data % 64 == 0 and np.array_equal(c.packed, w.packed)
           for c in copies)
print("ok")
"""


@pytest.mark.parametrize("level", ["avx2", "best"])
def test_copied_or_unaligned_packed_weights_do_not_crash(level):
    """copy.deepcopy of a layer after int8 inference copied its packed weights to
    wherever numpy put them (16-byte aligned), and the AVX2 / VNNI tiles read them with
    aligned 256-bit loads: a segmentation fault. The tiles load unaligned and a copied
    QuantizedWeight packs again on a 64-byte boundary."""
    env = dict(os.environ, PYTHONSAFEPATH="1")
    if level != "best":
        env["RECURRENT_VECTOR_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", _UNALIGNED_CHECK], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], (done.returncode,
                                                                    done.stderr[-2000:])
