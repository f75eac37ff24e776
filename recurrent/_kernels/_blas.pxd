# Row-major GEMM over scipy's BLAS (scipy.linalg.cython_blas), for float and double.
#
# BLAS is column-major; a row-major (m, n) matrix with row stride ld is the same memory as a
# column-major (n, m) matrix with leading dimension ld. So the row-major product
# C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the operands,
# keep each operand's transpose flag. Sub-blocks of a larger row-major array are passed as
# a pointer to their first element plus the big array's row stride.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, all row-major."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef Py_ssize_t i, j
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # empty product: C = beta * C (BLAS wants valid leading dimensions even here)
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = 0 if beta == 0 else beta * c[i * ldc + j]
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)
