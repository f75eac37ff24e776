# The per-step recurrent product over a W_hh packed once per call (see recmat.h).
from cython cimport floating


cdef extern from "recmat.h" nogil:
    void* rc_malloc64(size_t bytes)  # 64-byte aligned; free() frees it
    int RC_NR_F32
    int RC_NR_F64
    void rc_pack_f32(const float* b, int K, int N, long sk, long sn, float* P)
    void rc_pack_f64(const double* b, int K, int N, long sk, long sn, double* P)
    void rc_recmat_f32(int m, int N, int K, const float* A, long lda, const float* P,
                       float* C, long ldc, int accumulate)
    void rc_recmat_f64(int m, int N, int K, const double* A, long lda, const double* P,
                       double* C, long ldc, int accumulate)


cdef inline Py_ssize_t packed_len(int K, int N, const floating* like) noexcept nogil:
    """Elements of the packed copy of a (K, N) matrix (panels padded to full width)."""
    cdef int nr = RC_NR_F32 if floating is float else RC_NR_F64
    return <Py_ssize_t> ((N + nr - 1) // nr) * nr * K


cdef inline void pack(const floating* b, int K, int N, long sk, long sn,
                      floating* P) noexcept nogil:
    """Pack Bmat (K, N), Bmat[k, n] = b[k * sk + n * sn], for recmat()."""
    if floating is float:
        rc_pack_f32(b, K, N, sk, sn, P)
    else:
        rc_pack_f64(b, K, N, sk, sn, P)


cdef inline void recmat(int m, int N, int K, const floating* A, long lda, const floating* P,
                        floating* C, long ldc, bint accumulate) noexcept nogil:
    """C (m, N) = [C +] A (m, K) @ Bmat (K, N), Bmat packed by pack(). Row strides lda, ldc.
    Every element is computed the same way whatever m: results do not depend on how rows
    are split between threads."""
    if m <= 0:
        return
    if floating is float:
        rc_recmat_f32(m, N, K, A, lda, P, C, ldc, accumulate)
    else:
        rc_recmat_f64(m, N, K, A, lda, P, C, ldc, accumulate)
