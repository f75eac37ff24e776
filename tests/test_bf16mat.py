"""The bf16 products (recurrent/_kernels/bf16mat.h through bf16.pyx): C = [C +] A @ B with
A and B rounded to bf16 and float32 sums.

Checked against a numpy reference that rounds both inputs to bf16 by bit manipulation and
sums in float64, within |error| <= K * 2^-24 * sum_k |a_k b_k| (K additions of float32
round-off, the products of bf16 values being exact). Every element is one fixed sequence
of operations, so results do not depend on m, the tile an element falls in, the thread
count or the variant: AVX512_BF16 and portable C give the same bits (a NaN result's
payload aside), compared here with the portable variant forced by
RECURRENT_VECTOR_LEVEL=portable in a subprocess. On a CPU without AVX512_BF16 both sides
of that comparison are the portable variant.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from recurrent import tuning
from recurrent._kernels import bf16

MS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 64)
NS = (1, 15, 16, 17, 100, 1024)
KS = (1, 2, 3, 63, 256, 1000)


def ref_round(x):
    """float32 x rounded to bf16 (as float32): to nearest even, denormals to signed zero,
    NaN kept a NaN."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    tiny = (u & 0x7F800000) == 0
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    r = np.where(tiny, u & 0x80000000, r)
    r = np.where(nan, u | 0x400000, r)
    return (r & 0xFFFF0000).astype(np.uint32).view(np.float32)


def ref_product(a, b):
    """(A @ B in float64 of the bf16-rounded inputs, the error bound of a float32 sum)."""
    a64, b64 = ref_round(a).astype(np.float64), ref_round(b).astype(np.float64)
    k = a.shape[1]
    return a64 @ b64, k * 2.0 ** -24 * (np.abs(a64) @ np.abs(b64))


def random_bits(rng, shape):
    """float32 values of every kind: random bit patterns (NaN, infinities, denormals and
    numbers of any size), denormals and exponents near the float32 limits."""
    bits = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint32)
    kind = rng.integers(0, 4, size=shape)
    exponent = np.choose(kind, [bits >> 23 & 0xFF, np.zeros(shape, np.uint32),
                                np.full(shape, 0xFE, np.uint32),
                                120 + (bits >> 23) % 16]).astype(np.uint32)
    return ((bits & 0x807FFFFF) | exponent << 23).view(np.float32)


def same_bits(x, y):
    """Equal bit for bit, except that any NaN matches any NaN."""
    nan = np.isnan(x)
    return (np.array_equal(nan, np.isnan(y))
            and np.array_equal(x[~nan].view(np.uint32), y[~nan].view(np.uint32)))


def test_round_matches_reference():
    rng = np.random.default_rng(0)
    x = np.concatenate([random_bits(rng, 100000),
                        np.array([0.0, -0.0, 1.0, 1.00390625, 1.0 + 2 ** -8 + 2 ** -9,
                                  np.inf, -np.inf, np.nan, 3.4e38, 1e-40, -1e-45],
                                 np.float32)])
    got = bf16.round_bf16(x)
    assert same_bits(got, ref_round(x))
    assert np.isnan(got).sum() == np.isnan(x).sum()
    # ties to even: 1 + 2^-8, halfway between 1 and 1 + 2^-7, goes to 1; just above, up
    assert got[-8] == 1.0 and got[-7] == 1.0 + 2 ** -7
    assert bf16.round_bf16(x.reshape(100011 // 3, 3)).shape == (100011 // 3, 3)


@pytest.mark.parametrize("K", KS)
def test_product_within_bound_and_independent_of_m(K):
    """Every shape of MS x NS for this K: the first m rows of a 64-row product are the
    m-row product bit for bit, and within the bound of the float64 reference."""
    rng = np.random.default_rng(K)
    for N in NS:
        a = rng.standard_normal((64, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        full = bf16.matmul(a, b)
        want, bound = ref_product(a, b)
        assert np.all(np.abs(full - want) <= bound), (N, K)
        for m in MS:
            assert same_bits(bf16.matmul(a[:m], b), full[:m]), (m, N, K)


def test_rounding_happens():
    """Inputs are rounded to bf16 before the products: 1 + 2^-9 (rounds to 1) times 1."""
    a = np.full((3, 4), 1.0 + 2 ** -9, np.float32)
    b = np.ones((4, 5), np.float32)
    assert np.array_equal(bf16.matmul(a, b), np.full((3, 5), 4.0, np.float32))


@pytest.mark.parametrize("m", (17, 64, 203))
def test_threads_give_the_same_bits(m):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, 300), dtype=np.float32)
    b = rng.standard_normal((300, 100), dtype=np.float32)
    one = bf16.matmul(a, b, num_threads=1)
    assert same_bits(bf16.matmul(a, b, num_threads=2), one)
    assert same_bits(bf16.matmul(a, b, num_threads=3), one)


def test_accumulate_adds_in_float32():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((9, 63), dtype=np.float32)
    b = rng.standard_normal((63, 17), dtype=np.float32)
    c0 = rng.standard_normal((9, 17), dtype=np.float32)
    out = c0.copy()
    assert bf16.matmul(a, b, out=out, accumulate=True) is out
    assert same_bits(out, c0 + bf16.matmul(a, b))
    fresh = c0.copy()  # without accumulate, out's old values are overwritten
    bf16.matmul(a, b, out=fresh)
    assert same_bits(fresh, bf16.matmul(a, b))


def test_trans_b_and_strided_b():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((7, 63), dtype=np.float32)
    b = rng.standard_normal((63, 33), dtype=np.float32)
    want = bf16.matmul(a, b)
    assert same_bits(bf16.matmul(a, np.ascontiguousarray(b.T), trans_b=True), want)
    assert same_bits(bf16.matmul(a, b.T, trans_b=True), want)  # a transposed view
    wide = np.zeros((63, 66), np.float32)
    wide[:, ::2] = b
    assert same_bits(bf16.matmul(a, wide[:, ::2]), want)


def test_rows_of_zeros():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 100), dtype=np.float32)
    a[[0, 4, 8]] = 0.0
    b = rng.standard_normal((100, 40), dtype=np.float32)
    c = bf16.matmul(a, b)
    assert np.array_equal(c[[0, 4, 8]].view(np.uint32), np.zeros((3, 40), np.uint32))
    c0 = rng.standard_normal((9, 40), dtype=np.float32)
    out = c0.copy()
    bf16.matmul(a, b, out=out, accumulate=True)
    assert np.array_equal(out[[0, 4, 8]], c0[[0, 4, 8]])


def test_nan_and_inf_propagate():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 37), dtype=np.float32)
    b = np.abs(rng.standard_normal((37, 20), dtype=np.float32)) + 0.5
    a[0, 3] = np.nan
    a[1, 5] = np.inf
    a[2, 5], a[2, 6] = np.inf, -np.inf  # inf - inf
    a[3, 7] = 3e38                       # finite, but the sum overflows
    a[3, 8] = 3e38
    b[:, 19] = 0.0                       # inf * 0
    c = bf16.matmul(a, b)
    assert np.isnan(c[0]).all()
    assert np.isposinf(c[1, :19]).all() and np.isnan(c[1, 19])
    assert np.isnan(c[2]).all()
    assert np.isposinf(c[3, :19]).all() and c[3, 19] == 0
    assert np.isfinite(c[4]).all()


def ref_pack(b):
    """The packed layout of B (K, N) (bf16mat.h): panel p, pair row kk, column j, element e
    holds the bf16 bits of B[2kk + e, 16p + j], zero past K and past N."""
    k, n = b.shape
    k2, npanel = (k + 1) // 2, (n + 15) // 16
    full = np.zeros((2 * k2, 16 * npanel), np.uint32)
    full[:k, :n] = ref_round(b).view(np.uint32) >> 16
    # (2 k2, np, 16) -> (np, k2, 16, 2)
    return full.reshape(k2, 2, npanel, 16).transpose(2, 0, 3, 1).reshape(-1).astype(np.uint16)


def pack_operands(rng):
    """(B, trans_b, B (K, N) as a plain array) of odd and even shapes, of values of every
    kind, given as is, transposed (contiguous or a view) and with column strides."""
    out = []
    for k, n in ((1, 1), (3, 17), (63, 33), (64, 16), (257, 100), (2, 1024)):
        b = random_bits(rng, (k, n))
        out.append((b, False, b))
        out.append((np.ascontiguousarray(b.T), True, b))
        out.append((b.T, True, b))  # B^T as a transposed view: unit steps down K
        wide = np.zeros((k, 3 * n), np.float32)
        wide[:, ::3] = b
        out.append((wide[:, ::3], False, b))
    return out


def test_pack_matches_reference_layout():
    """Every layout of B packs to the reference bits: the vectorised packing (a gather
    for column strides other than 1) and the portable one alike."""
    for i, (given, trans_b, b) in enumerate(pack_operands(np.random.default_rng(6))):
        assert np.array_equal(bf16.pack(given, trans_b=trans_b), ref_pack(b)), i


_VARIANT_RUN = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_bf16mat import variant_products
from recurrent._kernels import bf16
print(bf16.instruction_path())
np.savez(sys.argv[1], *variant_products())
"""


def variant_products():
    """Products over finite data and over values of every kind (denormals, NaN, infinities,
    overflowing sums), and packed copies of B, for the variant comparison."""
    rng = np.random.default_rng(5)
    out = []
    for m, n, k in ((9, 100, 63), (64, 1024, 256), (17, 33, 1000), (3, 16, 3)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out.append(bf16.matmul(a, b))
        out.append(bf16.matmul(random_bits(rng, (m, k)), random_bits(rng, (k, n))))
        c0 = random_bits(rng, (m, n))
        out.append(bf16.matmul(a * 1e-19, b * 1e-19, out=c0, accumulate=True))  # denormals
    # packed copies of B (uint16 bits, NaN payloads included)
    out.extend(bf16.pack(given, trans_b=trans_b) for given, trans_b, _ in pack_operands(rng))
    return out


def test_portable_and_avx512_bf16_give_the_same_bits(tmp_path):
    """The portable variant (forced in a subprocess) against this process's: AVX512_BF16
    where the CPU has it, else the portable one too."""
    isa, vector_code = tuning.machine_key()["isa"], tuning.machine_key()["vector_code"]
    own = "avx512_bf16" if "avx512_bf16" in isa and vector_code == "avx512" else "portable"
    assert bf16.instruction_path() == own
    assert bf16.available() == (own == "avx512_bf16")
    env = dict(os.environ, PYTHONSAFEPATH="1", RECURRENT_VECTOR_LEVEL="portable")
    path = tmp_path / "portable.npz"
    done = subprocess.run([sys.executable, "-c", _VARIANT_RUN, str(path),
                           os.path.dirname(__file__)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["portable"]
    portable = np.load(path)
    here = variant_products()
    for i, got in enumerate(here):
        if got.dtype == np.uint16:
            assert np.array_equal(portable[f"arr_{i}"], got), i
        else:
            assert same_bits(portable[f"arr_{i}"], got), i


def test_bad_input_is_refused():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="do not chain"):
        bf16.matmul(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="float32"):
        bf16.matmul(a.astype(np.float64), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        bf16.matmul(a, np.ones((4, 2), np.float32), out=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="accumulate needs out"):
        bf16.matmul(a, np.ones((4, 2), np.float32), accumulate=True)
    with pytest.raises(ValueError, match="packed"):
        bf16.matmul_packed(a, bf16.pack(np.ones((4, 40), np.float32)), 2)


def test_empty_shapes_and_row_strides():
    """K = 0 gives zeros; m = 0 or N = 0 an empty result; rows may be any stride apart."""
    assert np.array_equal(bf16.matmul(np.ones((3, 0), np.float32), np.ones((0, 5), np.float32)),
                          np.zeros((3, 5), np.float32))
    assert bf16.matmul(np.ones((0, 4), np.float32), np.ones((4, 5), np.float32)).shape == (0, 5)
    assert bf16.matmul(np.ones((2, 4), np.float32), np.ones((4, 0), np.float32)).shape == (2, 0)
    rng = np.random.default_rng(6)
    a = rng.standard_normal((9, 20), dtype=np.float32)
    b = rng.standard_normal((20, 18), dtype=np.float32)
    want = bf16.matmul(a, b)
    assert same_bits(bf16.matmul(a[::-1], b), want[::-1])
    wide = np.zeros((9, 40), np.float32)
    bf16.matmul(a, b, out=wide[:, 3:21])
    assert same_bits(wide[:, 3:21], want) and not wide[:, 21:].any() and not wide[:, :3].any()
    with pytest.raises(ValueError, match="contiguous"):
        bf16.matmul(a[:, ::2], b[:10])
