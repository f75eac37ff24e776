# Row-block helpers shared by the cell kernels: how work is split between threads, the
# hoisted input projection before the time loop, and the weight-gradient GEMMs after it.
# Legend: T time, B batch, I input, H hidden, G gate rows; "TB" = T * B stacked rows.
from cython cimport floating

from ._blas cimport gemm
from ._recmat cimport recmat


# The hoisted GEMMs (input projection, dx, weight gradients) are cut into blocks whose
# size depends on the problem only, never on the thread count: OpenBLAS may round an
# element differently depending on the GEMM's shape, so a thread-dependent split would
# make 1 and 2 threads disagree in the last bit. Threads then share the blocks.
cdef enum:
    ROW_PARTS = 16    # about 16 blocks of T*B rows (projection, dx)
    GATE_PARTS = 8    # about 8 blocks of G gate rows (weight gradients)
    ALIGN = 16


cdef inline Py_ssize_t split(Py_ssize_t n, int parts, int k) noexcept nogil:
    """Start of part k when n items are cut into `parts` contiguous, near-equal parts."""
    return (n * k) // parts


cdef inline Py_ssize_t _block(Py_ssize_t n, int parts) noexcept nogil:
    cdef Py_ssize_t b = (n + parts - 1) // parts
    b = ((b + ALIGN - 1) // ALIGN) * ALIGN
    return b if b > 0 else 1


cdef inline Py_ssize_t row_block(Py_ssize_t rows) noexcept nogil:
    """Rows per block of the T*B-row GEMMs (a function of the size only)."""
    return _block(rows, ROW_PARTS)


cdef inline Py_ssize_t gate_block(Py_ssize_t gates) noexcept nogil:
    """Gate rows per block of the weight-gradient GEMMs (a function of the size only)."""
    return _block(gates, GATE_PARTS)


cdef inline Py_ssize_t num_blocks(Py_ssize_t n, Py_ssize_t block) noexcept nogil:
    return (n + block - 1) // block


cdef inline int hoist_threads(int requested, Py_ssize_t blocks, double flops) noexcept nogil:
    """Threads for a hoisted product of `flops` in `blocks` blocks. Below about a
    millisecond of work, waking a second thread costs more than it saves (and on a busy
    machine it may wait a whole scheduler slice), so small products stay on one thread."""
    if flops < 2e7 or requested < 1:
        return 1
    return <int> min(<Py_ssize_t> requested, blocks)


cdef inline void project_rows(floating* dst, int ldd, const floating* x, int I,
                              const floating* w_ih_t, int G, const floating* bias,
                              Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dst[r0:r1, :G] = x[r0:r1] (n, I) @ W_ih^T (I, G) + bias (G,).  dst row stride ldd;
    w_ih_t is W_ih^T packed for recmat (a block of a few hundred rows keeps x in L2)."""
    cdef Py_ssize_t r, j
    recmat(<int> (r1 - r0), G, I, x + r0 * I, I, w_ih_t, dst + r0 * ldd, ldd, False)
    for r in range(r0, r1):
        for j in range(G):
            dst[r * ldd + j] += bias[j]


cdef inline void add_colsum(floating* db, const floating* d, int ldd, Py_ssize_t rows,
                            int ncols) noexcept nogil:
    """db (ncols,) += sum over rows of d[:, :ncols] (row stride ldd)."""
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(ncols):
            db[j] += d[r * ldd + j]


cdef inline void add_input_grads(floating* dw_ih, floating* db, const floating* d, int ldd,
                                 int ng, const floating* x, int I,
                                 Py_ssize_t TB) noexcept nogil:
    """ng rows of the input-side gradients, d pointing at their first column of dA (TB, .):
    dW_ih[rows] (ng, I) += dA[:, rows]^T (ng, TB) @ X (TB, I);  db[rows] += column sums."""
    gemm(True, False, ng, I, <int> TB, 1, d, ldd, x, I, 1, dw_ih, I)
    add_colsum(db, d, ldd, TB, ng)


cdef inline void add_hidden_grads(floating* dw_hh, floating* db, const floating* d, int ldd,
                                  int ng, const floating* h0, const floating* out, int H,
                                  Py_ssize_t T, Py_ssize_t B) noexcept nogil:
    """ng rows of the recurrent-side gradients: dW_hh[rows] (ng, H) += sum_t dA_t^T h_{t-1},
    where h_{-1} = h0 (B, H) and h_{t-1} = out[t-1]. Rows past their length have dA = 0, so
    whatever out holds there does not matter. db (if not NULL) += column sums."""
    gemm(True, False, ng, H, <int> B, 1, d, ldd, h0, H, 1, dw_hh, H)
    gemm(True, False, ng, H, <int> ((T - 1) * B), 1, d + B * ldd, ldd, out, H, 1, dw_hh, H)
    if db != NULL:
        add_colsum(db, d, ldd, T * B, ng)
