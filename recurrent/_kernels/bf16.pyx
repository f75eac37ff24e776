"""bf16 matrix products (bf16mat.h) for tests and benchmarks: C = [C +] A @ B with A and B
rounded to bf16 (round to nearest even) and float32 sums, the same bits whatever the
thread count and on either variant (AVX512_BF16 or portable C)."""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport uint16_t, uintptr_t

from ._bf16mat cimport (rc_bf16_mat, rc_bf16_pack, rc_bf16_packed_len, rc_bf16_round,
                        rc_cpu_bf16)
from ._recmat cimport pack as pack_recmat, packed_len, recmat
from ._rows cimport split


def available():
    """Whether the products run on AVX512_BF16: the CPU has it, the build has the variant
    and RECURRENT_VECTOR_LEVEL leaves the AVX-512 level in use."""
    return bool(rc_cpu_bf16())


def instruction_path():
    """The products' code in this process: "avx512_bf16" or "portable"."""
    return "avx512_bf16" if rc_cpu_bf16() else "portable"


def round_bf16(a):
    """float32 array a rounded to bf16 as the products round it, as float32 (the bf16 bits
    in the upper half, zeros below): to nearest even, denormals to signed zero, NaN kept."""
    a = np.asarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"round_bf16 takes a float32 array, not {a.dtype}")
    src = np.ascontiguousarray(a).reshape(-1)
    out = np.empty(src.shape, np.uint32)
    cdef const float[::1] s = src
    cdef unsigned int[::1] o = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(s.shape[0]):
            o[i] = (<unsigned int> rc_bf16_round(s[i])) << 16
    return out.view(np.float32).reshape(a.shape)


def _aligned_uint16(Py_ssize_t n):
    """A zeroed uint16 array of n elements starting on a 64-byte boundary."""
    buf = np.zeros(n + 32, np.uint16)
    cdef uintptr_t address = buf.ctypes.data
    cdef Py_ssize_t skip = ((64 - address % 64) % 64) // 2
    return buf[skip:skip + n]


def _matrix(x, name):
    """x as a 2-D float32 array whose rows are contiguous (a clear error otherwise)."""
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D float32 array, not {x.ndim}-D {x.dtype}")
    return x


def pack(B, trans_b=False):
    """The packed copy (uint16, 64-byte aligned) of B (K, N), or of B.T when trans_b (B is
    then (N, K)), that matmul_packed takes."""
    B = _matrix(B, "B")
    cdef Py_ssize_t K = B.shape[1] if trans_b else B.shape[0]
    cdef Py_ssize_t N = B.shape[0] if trans_b else B.shape[1]
    if K > 2**30 or N > 2**30:
        raise ValueError(f"B's shape {B.shape} is too large")
    packed = _aligned_uint16(rc_bf16_packed_len(<int> K, <int> N))
    cdef const float[:, :] b = B
    cdef uint16_t[::1] P = packed
    cdef long sk = b.strides[1 if trans_b else 0] // 4, sn = b.strides[0 if trans_b else 1] // 4
    if K > 0 and N > 0:
        with nogil:
            rc_bf16_pack(&b[0, 0], sk, sn, <int> K, <int> N, &P[0])
    return packed


def matmul_packed(A, packed, int N, out=None, accumulate=False, int num_threads=1):
    """out (m, N) = [out +] A (m, K) @ B, B (K, N) given as pack(B). A's rows are split
    between num_threads OpenMP threads (contiguous near-equal parts); the result does not
    depend on the split. Returns out (a new array unless given)."""
    A = _matrix(A, "A")
    if N < 0:
        raise ValueError(f"N must be >= 0, not {N}")
    cdef Py_ssize_t m = A.shape[0], K = A.shape[1]
    # strides along an axis of length 0 or 1 are never used: not checked
    if (m > 0 and K > 1 and A.strides[1] != 4) or (m > 1 and A.strides[0] % 4):
        raise ValueError("A's rows must be contiguous float32")
    packed = np.asarray(packed)
    if packed.dtype != np.uint16 or packed.ndim != 1 or packed.shape[0] != rc_bf16_packed_len(<int> K, N):
        raise ValueError(f"packed is not pack() of a ({K}, {N}) matrix")
    if packed.shape[0] and packed.ctypes.data % 64:
        raise ValueError("packed must start on a 64-byte boundary (use pack())")
    if out is None:
        if accumulate:
            raise ValueError("accumulate needs out")
        out = np.empty((m, N), np.float32)
    out = _matrix(out, "out")
    if out.shape != (m, N):
        raise ValueError(f"out has shape {out.shape}, not {(m, N)}")
    if (m > 0 and N > 1 and out.strides[1] != 4) or (m > 1 and out.strides[0] % 4):
        raise ValueError("out's rows must be contiguous float32")
    if m == 0 or N == 0:
        return out
    cdef const float* a_p = <const float*> <uintptr_t> A.ctypes.data
    cdef long lda = A.strides[0] // 4, ldc = out.strides[0] // 4
    cdef float* c_p = <float*> <uintptr_t> out.ctypes.data
    cdef const uint16_t[::1] P = packed
    cdef const uint16_t* p_p = &P[0] if P.shape[0] > 0 else NULL
    cdef int nt = max(1, min(num_threads, <int> m)), k, failed = 0
    cdef int acc = 1 if accumulate else 0
    cdef Py_ssize_t r0, r1
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            r0 = split(m, nt, k)
            r1 = split(m, nt, k + 1)
            if r1 > r0:
                failed += rc_bf16_mat(<int> (r1 - r0), N, <int> K, a_p + r0 * lda, lda,
                                      p_p, c_p + r0 * ldc, ldc, acc) != 0
    if failed:
        raise MemoryError()
    return out


def matmul(A, B, out=None, accumulate=False, trans_b=False, int num_threads=1):
    """out (m, N) = [out +] A (m, K) @ B (K, N) (B.T when trans_b, B being (N, K)) in bf16:
    pack(B) then matmul_packed."""
    B = _matrix(B, "B")
    A = _matrix(A, "A")
    K = B.shape[1] if trans_b else B.shape[0]
    if A.shape[1] != K:
        raise ValueError(f"A {A.shape} and B{'.T' if trans_b else ''} "
                         f"{B.T.shape if trans_b else B.shape} do not chain")
    N = B.shape[0] if trans_b else B.shape[1]
    return matmul_packed(A, pack(B, trans_b), N, out, accumulate, num_threads)


def pack_f32(const float[:, ::1] B):
    """B (K, N) packed (64-byte aligned) for the float32 recurrent product (recmat.h), the
    float32 baseline of the benchmarks (benchmarks/bench_bf16mat.py)."""
    cdef int K = <int> B.shape[0], N = <int> B.shape[1]
    cdef Py_ssize_t n = packed_len(K, N, <float*> NULL)
    buf = np.zeros(n + 16, np.float32)
    cdef uintptr_t address = buf.ctypes.data
    cdef Py_ssize_t skip = ((64 - address % 64) % 64) // 4
    packed = buf[skip:skip + n]
    cdef float[::1] P = packed
    if K > 0 and N > 0:
        pack_recmat(&B[0, 0], K, N, N, 1, &P[0])
    return packed


def recmat_f32(const float[:, ::1] A, const float[::1] packed, int N, float[:, ::1] out):
    """out (m, N) = A (m, K) @ B in float32 through recmat.h, B given as pack_f32(B) (one
    thread): the float32 baseline of the benchmarks."""
    cdef int m = <int> A.shape[0], K = <int> A.shape[1]
    if packed.shape[0] < packed_len(K, N, <float*> NULL) or out.shape[0] != m or out.shape[1] != N:
        raise ValueError("shapes do not match")
    if m > 0 and N > 0:
        with nogil:
            recmat(m, N, K, &A[0, 0], K, &packed[0], &out[0, 0], N, False)
    return np.asarray(out)
