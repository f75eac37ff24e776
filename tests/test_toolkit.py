"""The kernel toolkit (recurrent_toolkit.pxd / recurrent_toolkit.h) is public: a tiny
extension that cimports it, and nothing else of recurrent, is compiled once per session
with the real compiler against the files a wheel ships (setup.py's build_py output, so the
package data is tested too), then each public piece is checked against numpy."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import recurrent

pytest.importorskip("Cython", reason="Cython compiles the test extension (the test extra)")

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free

from recurrent_toolkit cimport (API_VERSION, InputParts, MIN_PARALLEL_FLOPS,
                                add_hidden_grads, add_input_grads, copy_empty_rows, gemm,
                                input_and_weight_grads, kernel_threads, matmul_packed,
                                pack, pack_weights, pack_weights_t, packed_copy, packed_len,
                                project_inputs, project_packed, rc_cpu_level, rc_expf,
                                rc_malloc64, rc_sigmoidf, rc_tanhf, recmat, relu, sigmoid,
                                split, state_before, tanh_, whole_input_part)

cdef extern from *:
    """
    #include "recurrent_toolkit.h"
    #if RECURRENT_TOOLKIT_API_VERSION < 1
    #error "the toolkit's version macro is missing or wrong"
    #endif
    /* a vector-code function compiled per CPU variant through the public macro */
    RK_MULTIVERSION(probe_scale, (float* restrict x, int n, float s), (x, n, s),
                    RK_IVDEP for (int j = 0; j < n; j++) x[j] = rc_tanhf(x[j]) * s;)
    """
    void probe_scale(float* x, int n, float s) nogil


def api_version():
    return API_VERSION


def cpu_level():
    return rc_cpu_level()


def scaled_tanh(float[::1] x, float s):
    probe_scale(&x[0], <int> x.shape[0], s)


def min_parallel_flops():
    return MIN_PARALLEL_FLOPS


def input_parts(int G):
    cdef InputParts parts = whole_input_part(G)
    return parts.count, [parts.first[0], parts.first[1]], parts.column[0]


def float_activations(float x):
    return rc_expf(x), rc_sigmoidf(x), rc_tanhf(x)


def relus(const double[::1] x, double[::1] out):
    cdef Py_ssize_t j
    for j in range(x.shape[0]):
        out[j] = relu(x[j])


def raw_product(const floating[:, ::1] a, const floating[:, ::1] w, floating[:, ::1] c):
    """c (m, G) = a (m, K) @ w (G, K)^T through packed_len, rc_malloc64, pack, recmat, and
    the same through packed_copy into c again with accumulate (so c = 2 a w^T)."""
    cdef int m = <int> a.shape[0], K = <int> a.shape[1], G = <int> w.shape[0]
    cdef floating* P = <floating*> rc_malloc64(packed_len(K, G, &w[0, 0]) * sizeof(floating))
    pack(&w[0, 0], K, G, 1, K, P)
    recmat(m, G, K, &a[0, 0], K, P, &c[0, 0], G, False)
    free(P)
    P = packed_copy(&w[0, 0], K, G, 1, K)
    recmat(m, G, K, &a[0, 0], K, P, &c[0, 0], G, True)
    free(P)


def gemm_nt(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c):
    """c = 2 a @ b^T + c (row-major BLAS)."""
    gemm(False, True, <int> a.shape[0], <int> b.shape[0], <int> a.shape[1], 2, &a[0, 0],
         <int> a.shape[1], &b[0, 0], <int> b.shape[1], 1, &c[0, 0], <int> c.shape[1])


def project_prepacked(floating[:, ::1] dst, const floating[:, ::1] x,
                      const floating[:, ::1] w, const floating[::1] bias, int num_threads):
    cdef int G = <int> w.shape[0], I = <int> w.shape[1]
    cdef floating* wt = pack_weights_t(&w[0, 0], G, I)
    project_packed(&dst[0, 0], <int> dst.shape[1], &x[0, 0], wt, &bias[0], x.shape[0], I,
                   G, num_threads)
    free(wt)


def block_grads(floating[:, ::1] dw_ih, floating[::1] db_ih, floating[:, ::1] dw_hh,
                floating[::1] db_hh, const floating[:, :, ::1] da,
                const floating[:, :, ::1] x, const floating[:, ::1] h0,
                const floating[:, :, ::1] out, int g0, int g1):
    """Gate rows g0:g1 of the weight and bias gradients, through the one-block GEMMs."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1], G = <int> da.shape[2]
    add_input_grads(&dw_ih[g0, 0], &db_ih[g0], &da[0, 0, g0], G, g1 - g0, &x[0, 0, 0], I,
                    T * B)
    add_hidden_grads(&dw_hh[g0, 0], &db_hh[g0], &da[0, 0, g0], G, g1 - g0, &h0[0, 0],
                     &out[0, 0, 0], H, T, B)


def threads(int requested, Py_ssize_t units, double flops):
    return kernel_threads(requested, units, flops)


def parts(Py_ssize_t n, int k):
    return [split(n, k, i) for i in range(k + 1)]


def aligned_address():
    cdef void* p = rc_malloc64(100)
    cdef uintptr_t address = <uintptr_t> p
    free(p)
    return address


def activations(const floating[::1] x, floating[::1] sig, floating[::1] th):
    cdef Py_ssize_t j
    for j in range(x.shape[0]):
        sig[j] = sigmoid(x[j])
        th[j] = tanh_(x[j])


def step_products(const floating[:, ::1] h, const floating[:, ::1] w,
                  floating[:, ::1] a, floating[:, ::1] dh, Py_ssize_t cut):
    """a (m, G) += h (m, H) @ w^T and dh (m, H) = a @ w, rows 0:cut and cut:m in two calls."""
    cdef int m = <int> h.shape[0], H = <int> h.shape[1], G = <int> w.shape[0]
    cdef floating* wt = pack_weights_t(&w[0, 0], G, H)
    cdef floating* wp = pack_weights(&w[0, 0], G, H)
    cdef Py_ssize_t r0
    for r0, r1 in ((0, cut), (cut, m)):
        matmul_packed(<int> (r1 - r0), G, H, &h[r0, 0], H, wt, &a[r0, 0], G, True)
        matmul_packed(<int> (r1 - r0), H, G, &a[r0, 0], G, wp, &dh[r0, 0], H, False)
    free(wt)
    free(wp)


def project(floating[:, ::1] dst, const floating[:, ::1] x, const floating[:, ::1] w,
            const floating[::1] bias, int num_threads):
    return project_inputs(&dst[0, 0], <int> dst.shape[1], &x[0, 0], &w[0, 0], &bias[0],
                          x.shape[0], <int> x.shape[1], <int> w.shape[0], num_threads)


def grads(floating[:, :, ::1] dx, floating[:, ::1] dw_ih, floating[::1] db,
          floating[:, ::1] dw_hh, const floating[:, :, ::1] da,
          const floating[:, :, ::1] x, const floating[:, ::1] h0,
          const floating[:, :, ::1] out, const floating[:, ::1] w_ih, int num_threads):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1], G = <int> w_ih.shape[0]
    return input_and_weight_grads(&dx[0, 0, 0], &dw_ih[0, 0], &db[0], &dw_hh[0, 0], NULL,
                                  &da[0, 0, 0], G, G, whole_input_part(G), &x[0, 0, 0],
                                  &h0[0, 0], &out[0, 0, 0], &w_ih[0, 0], T, B, I, H,
                                  num_threads)


def rows_before(const double[:, :, ::1] seq, const double[:, ::1] first, Py_ssize_t t,
                Py_ssize_t b):
    cdef int H = <int> first.shape[1]
    cdef const double* p = state_before(&seq[0, 0, 0], &first[0, 0], t, first.shape[0], H, b)
    return [p[j] for j in range(H)]


def empty_rows(double[:, ::1] final, const double[:, ::1] first,
               const int64_t[::1] lengths):
    copy_empty_rows(&final[0, 0], &first[0, 0], &lengths[0], final.shape[0],
                    <int> final.shape[1])
'''

BUILD = r'''
import sys
import numpy
import recurrent
from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution

include = recurrent.get_include()
ext = Extension("toolkit_probe", ["toolkit_probe.pyx"],
                include_dirs=[include, numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O0"])
dist = Distribution({"ext_modules": cythonize([ext], include_path=[include], quiet=True)})
command = dist.get_command_obj("build_ext")
command.inplace = True
dist.run_command("build_ext")
print(include)
'''


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """The test extension, built against a build_py copy of the package (what a wheel
    holds); the copy is also the only recurrent its build can import."""
    tmp = tmp_path_factory.mktemp("toolkit")
    shipped = tmp / "shipped"
    copied = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(shipped)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stderr
    build = tmp / "build"
    build.mkdir()
    (build / "toolkit_probe.pyx").write_text(PROBE)
    env = dict(os.environ, PYTHONPATH=str(shipped), PYTHONSAFEPATH="1")
    built = subprocess.run([sys.executable, "-c", BUILD], cwd=build, env=env,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    include = built.stdout.strip().splitlines()[-1]
    assert Path(include) == shipped / "recurrent" / "_kernels"
    path = next(build.glob("toolkit_probe*.so"))
    spec = importlib.util.spec_from_file_location("toolkit_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_holds_the_public_headers():
    include = Path(recurrent.get_include())
    assert (include / "recurrent_toolkit.h").is_file()
    assert (include / "recurrent_toolkit.pxd").is_file()
    text = (include / "recurrent_toolkit.h").read_text()
    assert f"#define RECURRENT_TOOLKIT_API_VERSION {recurrent.TOOLKIT_API_VERSION}\n" in text


def test_version_and_vector_code(probe):
    from recurrent._kernels import activations
    assert probe.api_version() == recurrent.TOOLKIT_API_VERSION
    assert {3: "avx512", 2: "avx2", 0: "portable"}[probe.cpu_level()] == \
        activations.vector_level()
    assert probe.aligned_address() % 64 == 0
    x = np.linspace(-3, 3, 37, dtype=np.float32)
    expected = np.tanh(x.astype(np.float64)) * 2
    probe.scaled_tanh(x, 2.0)
    np.testing.assert_allclose(x, expected, rtol=2e-6, atol=1e-7)


def test_thread_rule_and_row_slices(probe):
    assert probe.threads(4, 100, 1e9) == 4
    assert probe.threads(4, 3, 1e9) == 3          # never more than the pieces of work
    assert probe.threads(4, 100, 1e5) == 1        # too little work to wake a thread
    assert probe.threads(1, 100, 1e9) == 1
    assert probe.parts(10, 3) == [0, 3, 6, 10]
    assert probe.parts(2, 4) == [0, 0, 1, 1, 2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_activations(probe, dtype):
    x = np.concatenate([np.linspace(-30, 30, 301), [np.nan]]).astype(dtype)
    sig, th = np.empty_like(x), np.empty_like(x)
    probe.activations(x, sig, th)
    exact = x.astype(np.float64)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(sig[:-1], 1 / (1 + np.exp(-exact[:-1])), rtol=tol, atol=1e-30)
    np.testing.assert_allclose(th[:-1], np.tanh(exact[:-1]), rtol=tol, atol=1e-30)
    assert np.isnan(sig[-1]) and np.isnan(th[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_step_products_do_not_depend_on_the_row_split(probe, rng, dtype):
    m, H, G = 11, 37, 4 * 37
    h = rng.standard_normal((m, H)).astype(dtype)
    w = rng.standard_normal((G, H)).astype(dtype)
    a0 = rng.standard_normal((m, G)).astype(dtype)
    results = []
    for cut in (0, 1, 6, m):
        a, dh = a0.copy(), np.full((m, H), np.nan, dtype)
        probe.step_products(h, w, a, dh, cut)
        results.append((a, dh))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0][0], a0 + h @ w.T, rtol=tol, atol=tol)
    np.testing.assert_allclose(results[0][1], results[0][0] @ w, rtol=tol, atol=tol * 10)
    for a, dh in results[1:]:
        assert np.array_equal(a, results[0][0]) and np.array_equal(dh, results[0][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hoisted_projection_and_weight_gradients(probe, rng, dtype):
    T, B, I, H = 5, 3, 6, 4
    G = 4 * H
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih = rng.standard_normal((G, I)).astype(dtype)
    bias = rng.standard_normal(G).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    projected = {}
    for nt in (1, 2):
        dst = np.empty((T * B, G), dtype)
        assert probe.project(dst, x.reshape(T * B, I), w_ih, bias, nt) == 0
        projected[nt] = dst
    np.testing.assert_allclose(projected[1], x.reshape(T * B, I) @ w_ih.T + bias,
                               rtol=tol, atol=tol)
    assert np.array_equal(projected[1], projected[2])

    da = rng.standard_normal((T, B, G)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    out = rng.standard_normal((T, B, H)).astype(dtype)
    dx, dw_ih, db = np.empty((T, B, I), dtype), np.ones((G, I), dtype), np.ones(G, dtype)
    dw_hh = np.ones((G, H), dtype)
    assert probe.grads(dx, dw_ih, db, dw_hh, da, x, h0, out, w_ih, 2) == 0
    flat = da.reshape(T * B, G)
    h_prev = np.concatenate([h0[None], out[:-1]]).reshape(T * B, H)
    np.testing.assert_allclose(dx.reshape(T * B, I), flat @ w_ih, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw_ih, 1 + flat.T @ x.reshape(T * B, I), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw_hh, 1 + flat.T @ h_prev, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, 1 + flat.sum(axis=0), rtol=tol, atol=tol)


def test_state_rows_and_empty_rows(probe, rng):
    T, B, H = 3, 4, 2
    seq, first = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    assert probe.rows_before(seq, first, 0, 2) == list(first[2])
    assert probe.rows_before(seq, first, 2, 1) == list(seq[1, 1])
    final = np.zeros((B, H))
    probe.empty_rows(final, first, np.array([0, 3, 0, 1]))
    assert np.array_equal(final[[0, 2]], first[[0, 2]]) and not final[[1, 3]].any()


def test_the_remaining_public_names(probe, rng):
    assert probe.min_parallel_flops() == 20_000_000
    assert probe.threads(2, 10, probe.min_parallel_flops()) == 2
    assert probe.threads(2, 10, probe.min_parallel_flops() - 1) == 1
    assert probe.input_parts(12) == (1, [0, 12], 0)
    e, s, t = probe.float_activations(0.5)
    assert e == pytest.approx(np.exp(0.5), rel=1e-6)
    assert s == pytest.approx(1 / (1 + np.exp(-0.5)), rel=1e-6)
    assert t == pytest.approx(np.tanh(0.5), rel=1e-6)
    x = np.array([-2.0, 0.0, 3.0, np.nan])
    r = np.empty_like(x)
    probe.relus(x, r)
    assert np.array_equal(r[:3], [0.0, 0.0, 3.0]) and np.isnan(r[3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raw_packing_gemm_and_one_block_gradients(probe, rng, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-12
    a = rng.standard_normal((7, 19)).astype(dtype)
    w = rng.standard_normal((21, 19)).astype(dtype)
    c = np.full((7, 21), np.nan, dtype)
    probe.raw_product(a, w, c)
    np.testing.assert_allclose(c, 2 * a @ w.T, rtol=tol, atol=tol)
    c = np.ones((7, 21), dtype)
    probe.gemm_nt(a, w, c)
    np.testing.assert_allclose(c, 1 + 2 * a @ w.T, rtol=tol, atol=tol)

    T, B, I, H, G = 4, 3, 5, 6, 24
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih = rng.standard_normal((G, I)).astype(dtype)
    bias = rng.standard_normal(G).astype(dtype)
    dst = np.empty((T * B, G), dtype)
    probe.project_prepacked(dst, x.reshape(T * B, I), w_ih, bias, 2)
    np.testing.assert_allclose(dst, x.reshape(T * B, I) @ w_ih.T + bias, rtol=tol, atol=tol)

    da = rng.standard_normal((T, B, G)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    out = rng.standard_normal((T, B, H)).astype(dtype)
    dw_ih, db_ih = np.zeros((G, I), dtype), np.zeros(G, dtype)
    dw_hh, db_hh = np.zeros((G, H), dtype), np.zeros(G, dtype)
    probe.block_grads(dw_ih, db_ih, dw_hh, db_hh, da, x, h0, out, 8, 20)
    flat = da.reshape(T * B, G)[:, 8:20]
    h_prev = np.concatenate([h0[None], out[:-1]]).reshape(T * B, H)
    np.testing.assert_allclose(dw_ih[8:20], flat.T @ x.reshape(T * B, I), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw_hh[8:20], flat.T @ h_prev, rtol=tol, atol=tol)
    np.testing.assert_allclose(db_ih[8:20], flat.sum(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(db_hh, db_ih, rtol=0, atol=0)
    assert not dw_ih[:8].any() and not dw_hh[20:].any()
