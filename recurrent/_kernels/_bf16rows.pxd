# The hoisted products of a cell kernel's bf16 path (lstm.pyx bf16=True), the bf16
# counterparts of _rows.pxd's project_packed and input_and_weight_grads: every product
# through rc_bf16_mat (bf16mat.h: operands rounded to bf16, float32 accumulation), bias
# and bias-gradient sums in float32. Blocks are _rows.pxd's (sizes only), and every
# element of an rc_bf16_mat product is computed the same way whatever rows share the call,
# so results are bitwise the same for any thread count.
# Legend: T time, B batch, I input, H hidden, G gate rows; "TB" = T * B stacked rows.
from cython.parallel cimport prange, threadid
from libc.stdint cimport uint16_t
from libc.stdlib cimport free
from libc.string cimport memcpy

from ._bf16mat cimport rc_bf16_mat, rc_bf16_pack, rc_bf16_packed_len
from ._recmat cimport rc_malloc64
from ._rows cimport (add_bias_rows, add_colsum, gate_block, kernel_threads, num_blocks,
                     row_block)


cdef extern from "recmat.h" nogil:
    # P[k * 16 + j] = w[j * ld + k] for k < K, j < nrows (<= 16), zero for j >= nrows
    void rc_transpose16_f32(const float* w, long ld, int nrows, int K, float* P)


cdef inline uint16_t* bf16_packed(const float* b, long ld_k, long ld_n, int K,
                                  int N) noexcept nogil:
    """Bmat (K, N), Bmat[k, n] = b[k * ld_k + n * ld_n], rounded to bf16 and packed for
    rc_bf16_mat in 64-byte aligned memory; NULL when out of memory. The caller frees it."""
    cdef uint16_t* P = <uint16_t*> rc_malloc64(rc_bf16_packed_len(K, N) * sizeof(uint16_t))
    if P != NULL and K > 0:
        rc_bf16_pack(b, ld_k, ld_n, K, N, P)
    return P


cdef inline int bf16_project(float* dst, int ldd, const float* x, const uint16_t* w_ih_t,
                             const float* bias, Py_ssize_t TB, int I, int G,
                             int num_threads) noexcept nogil:
    """dst[:, :G] (TB, G; row stride ldd) = X (TB, I) @ W_ih^T (I, G) + bias (G,), the
    product in bf16 (w_ih_t: W_ih^T from bf16_packed), the bias added after it in float32;
    row blocks shared by up to num_threads threads. Returns -1 when out of memory, else 0."""
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t k, r0, r1
    cdef int failed = 0
    for k in prange(nrb, num_threads=kernel_threads(num_threads, nrb, 2.0 * TB * I * G),
                    schedule="dynamic", chunksize=1):
        r0 = k * rb
        r1 = min(r0 + rb, TB)
        if rc_bf16_mat(<int> (r1 - r0), G, I, x + r0 * I, I, w_ih_t, dst + r0 * ldd, ldd,
                       0) != 0:
            failed += 1
        else:
            add_bias_rows(dst, ldd, bias, G, r0, r1)
    return -1 if failed else 0


cdef inline void transposed_columns(float* dst, const float* d, int ldd, Py_ssize_t rows,
                                    int ncols) noexcept nogil:
    """dst (ncols, rows) = d[:, :ncols]^T, d (rows, .) of row stride ldd: a block of dA's
    columns as the rows of rc_bf16_mat's A operand. Tile by tile of 16 x 16: recmat.h's
    in-register transpose into a (16, 16) panel, whose rows are 16 consecutive values of a
    dst row (a column walk down d, whose rows are often a multiple of 4 KB apart, would
    evict its own cache lines)."""
    cdef float panel[16 * 16]
    cdef Py_ssize_t r0
    cdef int j0, k, nr, nj
    for r0 in range(0, rows, 16):
        nr = <int> min(16, rows - r0)
        for j0 in range(0, ncols, 16):
            nj = min(16, ncols - j0)
            # panel[k * 16 + i] = d[(r0 + i) * ldd + j0 + k]
            rc_transpose16_f32(d + r0 * ldd + j0, ldd, nr, nj, panel)
            if nr == 16:
                for k in range(nj):
                    memcpy(dst + (j0 + k) * rows + r0, panel + k * 16, 16 * sizeof(float))
            else:
                for k in range(nj):
                    memcpy(dst + (j0 + k) * rows + r0, panel + k * 16, nr * sizeof(float))


cdef inline int bf16_input_and_weight_grads(float* dx, float* dw_ih, float* dw_hh, float* db,
                                            const float* da, int G, const float* x,
                                            const float* h0, const float* out,
                                            const float* w_ih, Py_ssize_t T, Py_ssize_t B,
                                            int I, int H, int num_threads) noexcept nogil:
    """After the backward time loop, from dA (TB, G) the gradient of the pre-activations,
    in blocks shared by up to num_threads threads, every product in bf16:
        dx (TB, I)     = dA @ W_ih (G, I)                                       (written)
        dW_ih (G, I)  += dA^T @ X;   db (G,) += column sums of dA (float32)
        dW_hh (G, H)  += dA_0^T @ h0 + dA[B:]^T @ out[:T-1] (h_{t-1} of every step)
    A block of gate rows transposes its columns of dA into its thread's (rows, TB) float32
    buffer, A of both its weight-gradient products; X, h0, out[:T-1] and W_ih are packed
    once. Returns -1 when out of memory, else 0."""
    cdef Py_ssize_t TB = T * B
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t gb = gate_block(G), ngb = num_blocks(G, gb)
    cdef Py_ssize_t k, r0, r1, g0, g1
    cdef int nt = kernel_threads(num_threads, nrb + ngb, 2.0 * TB * G * (2 * I + H))
    cdef int failed = 0
    cdef float* dat
    # (gb, TB) per thread: the transposed dA columns of the block it works on
    cdef float* dat_all = <float*> rc_malloc64(nt * gb * TB * sizeof(float))
    cdef uint16_t* w_p = bf16_packed(w_ih, I, 1, G, I)         # W_ih (G, I) as is
    cdef uint16_t* x_p = bf16_packed(x, I, 1, <int> TB, I)      # X (TB, I)
    cdef uint16_t* h0_p = bf16_packed(h0, H, 1, <int> B, H)     # h0 (B, H)
    cdef uint16_t* out_p = bf16_packed(out, H, 1, <int> (TB - B), H)  # out[:T-1] (TB - B, H)
    if w_p == NULL or x_p == NULL or h0_p == NULL or out_p == NULL or dat_all == NULL:
        failed = 1
    else:
        # failed: a reduction over the blocks (rc_bf16_mat out of memory)
        for k in prange(nrb + ngb, num_threads=nt, schedule="dynamic", chunksize=1):
            if k >= ngb:  # the big weight-gradient blocks first, the dx blocks fill in
                r0 = (k - ngb) * rb
                r1 = min(r0 + rb, TB)
                failed += rc_bf16_mat(<int> (r1 - r0), I, G, da + r0 * G, G, w_p, dx + r0 * I,
                                      I, 0) != 0
            else:
                g0 = k * gb
                g1 = min(g0 + gb, G)
                dat = dat_all + threadid() * gb * TB
                transposed_columns(dat, da + g0, G, TB, <int> (g1 - g0))
                failed += rc_bf16_mat(<int> (g1 - g0), I, <int> TB, dat, TB, x_p,
                                      dw_ih + g0 * I, I, 1) != 0
                failed += rc_bf16_mat(<int> (g1 - g0), H, <int> B, dat, TB, h0_p,
                                      dw_hh + g0 * H, H, 1) != 0
                if TB > B:
                    failed += rc_bf16_mat(<int> (g1 - g0), H, <int> (TB - B), dat + B, TB,
                                          out_p, dw_hh + g0 * H, H, 1) != 0
                add_colsum(db + g0, da + g0, G, TB, <int> (g1 - g0))
    free(dat_all)
    free(w_p)
    free(x_p)
    free(h0_p)
    free(out_p)
    return -1 if failed else 0
