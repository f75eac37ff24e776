# The bf16 path shared by the cell kernels (lstm.pyx, gru.pyx, rnn.pyx, lnlstm.pyx,
# bf16=True): the choice of path per call, the recurrent product of a step, and the
# hoisted products, the bf16 counterparts of _rows.pxd's project_packed and
# split_input_and_weight_grads. Every product goes through rc_bf16_mat (bf16mat.h:
# operands rounded to bf16, float32 accumulation); bias and bias-gradient sums stay
# float32. Blocks are _rows.pxd's (sizes only), and every element of an rc_bf16_mat
# product is computed the same way whatever rows share the call, so results are bitwise
# the same for any thread count.
# The functions over `floating` take both dtypes so that a kernel's fused code calls them
# as is; bf16 runs on float32 only (float64: NULL or -1, never reached past bf16_wanted).
# Legend: T time, B batch, I input, H hidden, G gate rows; "TB" = T * B stacked rows.
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport uint16_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memcpy

from ._bf16mat cimport (rc_bf16_mat, rc_bf16_mat_scratch, rc_bf16_pack, rc_bf16_packed_len,
                        rc_bf16_scratch_len)
from ._recmat cimport rc_malloc64, recmat
from ._rows cimport (MAX_INPUT_PARTS, InputParts, add_bias_rows, gate_block, kernel_threads,
                     num_blocks, packed_copy, row_block, split_input_and_weight_grads)


cdef extern from "recmat.h" nogil:
    # P[k * 16 + j] = w[j * ld + k] for k < K, j < nrows (<= 16), zero for j >= nrows;
    # sa, sb (K,) += the column sums of those rows, row after row, unless NULL
    void rc_transpose16_sums_f32(const float* w, long ld, int nrows, int K, float* P,
                                 float* sa, float* sb)


cdef inline bint bf16_wanted(object bf16, const floating* like) except -1:
    """Whether a kernel call takes the bf16 path (its bf16 argument true); a ValueError for
    float64 arrays, which have none. ``like`` only picks the dtype."""
    if floating is double:
        if bf16:
            raise ValueError("bf16=True takes float32 arrays, got float64")
    return bool(bf16)


cdef inline uint16_t* _packed_f32(const float* b, long ld_k, long ld_n, int K,
                                  int N) noexcept nogil:
    cdef uint16_t* P = <uint16_t*> rc_malloc64(rc_bf16_packed_len(K, N) * sizeof(uint16_t))
    if P != NULL and K > 0:
        rc_bf16_pack(b, ld_k, ld_n, K, N, P)
    return P


cdef inline uint16_t* bf16_packed(const floating* b, long ld_k, long ld_n, int K,
                                  int N) noexcept nogil:
    """Bmat (K, N), Bmat[k, n] = b[k * ld_k + n * ld_n], rounded to bf16 and packed for
    rc_bf16_mat in 64-byte aligned memory; NULL when out of memory (and for float64). The
    caller frees it."""
    if floating is float:
        return _packed_f32(b, ld_k, ld_n, K, N)
    else:
        return NULL


cdef inline int step_weights(bint use_bf16, bint w_ih_f32, const floating* w_ih,
                             const floating* w_hh, int I, int H, int G, floating** w_ih_t,
                             floating** w_hh_t, uint16_t** w_ih_bf16,
                             uint16_t** w_hh_bf16) noexcept nogil:
    """The packed weights of a forward or infer call of the gru, rnn and ln_lstm kernels:
    bf16, W_ih^T (I, G) and W_hh^T (H, G) packed for rc_bf16_mat; else W_hh^T packed for
    recmat, and W_ih^T too with w_ih_f32 (inference's chunked projection); the others
    NULL. The caller frees them. Returns -1 when out of memory (all freed and NULL), else
    0."""
    w_ih_t[0] = w_hh_t[0] = NULL
    w_ih_bf16[0] = w_hh_bf16[0] = NULL
    if use_bf16:
        w_ih_bf16[0] = bf16_packed(w_ih, 1, I, I, G)
        w_hh_bf16[0] = bf16_packed(w_hh, 1, H, H, G)
        if w_ih_bf16[0] != NULL and w_hh_bf16[0] != NULL:
            return 0
    else:
        w_hh_t[0] = packed_copy(w_hh, H, G, 1, H)
        if w_ih_f32:
            w_ih_t[0] = packed_copy(w_ih, I, G, 1, I)
        if w_hh_t[0] != NULL and (w_ih_t[0] != NULL or not w_ih_f32):
            return 0
    free(w_ih_t[0])
    free(w_hh_t[0])
    free(w_ih_bf16[0])
    free(w_hh_bf16[0])
    w_ih_t[0] = w_hh_t[0] = NULL
    w_ih_bf16[0] = w_hh_bf16[0] = NULL
    return -1


cdef inline uint32_t* bf16_scratch(const uint16_t* P, int m, int K) noexcept nogil:
    """The scratch of a time loop's rec_product calls of up to m rows of K through P,
    allocated once per loop (64-byte aligned; the caller frees it): NULL when P is NULL
    (no bf16 product) or when out of memory."""
    if P == NULL:
        return NULL
    return <uint32_t*> rc_malloc64(rc_bf16_scratch_len(m, K) * sizeof(uint32_t))


cdef inline void rec_product(int m, int N, int K, const floating* A, long lda,
                             const floating* P, const uint16_t* P_bf16, uint32_t* scratch,
                             floating* C, long ldc, bint accumulate) noexcept nogil:
    """C (m, N) = [C +] A (m, K) @ Bmat (K, N), row strides lda and ldc: a step's recurrent
    product, through rc_bf16_mat_scratch with P_bf16 and scratch (from bf16_scratch) when
    P_bf16 is not NULL (float32 only), else through recmat with P."""
    if floating is float:
        if P_bf16 != NULL:
            rc_bf16_mat_scratch(m, N, K, A, lda, P_bf16, C, ldc, accumulate, scratch)
            return
    recmat(m, N, K, A, lda, P, C, ldc, accumulate)


cdef inline int _project_f32(float* dst, int ldd, const float* x, const uint16_t* w_ih_t,
                             const float* bias, Py_ssize_t TB, int I, int G,
                             int num_threads) noexcept nogil:
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


cdef inline int bf16_project(floating* dst, int ldd, const floating* x,
                             const uint16_t* w_ih_t, const floating* bias, Py_ssize_t TB,
                             int I, int G, int num_threads) noexcept nogil:
    """dst[:, :G] (TB, G; row stride ldd) = X (TB, I) @ W_ih^T (I, G) + bias (G,), the
    product in bf16 (w_ih_t: W_ih^T from bf16_packed), the bias added after it in float32;
    row blocks shared by up to num_threads threads. Returns -1 when out of memory (and for
    float64), else 0."""
    if floating is float:
        return _project_f32(dst, ldd, x, w_ih_t, bias, TB, I, G, num_threads)
    else:
        return -1


cdef inline void transposed_columns(float* dst, const float* d, int ldd, Py_ssize_t rows,
                                    int ncols, float* sum_a, float* sum_b) noexcept nogil:
    """dst (ncols, rows) = d[:, :ncols]^T, d (rows, .) of row stride ldd: a block of dA's
    columns as the rows of rc_bf16_mat's A operand; sum_a and sum_b (ncols,), unless NULL,
    += the column sums, row after row as _rows.pxd's add_colsum adds them (the same float32
    results), from the tile just read rather than from another pass over d. Tile by tile
    of 16 x 16: recmat.h's in-register transpose into a (16, 16) panel, whose rows are 16
    consecutive values of a dst row (a column walk down d, whose rows are often a multiple
    of 4 KB apart, would evict its own cache lines)."""
    cdef float panel[16 * 16]
    cdef Py_ssize_t r0
    cdef int j0, k, nr, nj
    for r0 in range(0, rows, 16):
        nr = <int> min(16, rows - r0)
        for j0 in range(0, ncols, 16):
            nj = min(16, ncols - j0)
            # panel[k * 16 + i] = d[(r0 + i) * ldd + j0 + k]
            rc_transpose16_sums_f32(d + r0 * ldd + j0, ldd, nr, nj, panel,
                                    NULL if sum_a == NULL else sum_a + j0,
                                    NULL if sum_b == NULL else sum_b + j0)
            if nr == 16:
                for k in range(nj):
                    memcpy(dst + (j0 + k) * rows + r0, panel + k * 16, 16 * sizeof(float))
            else:
                for k in range(nj):
                    memcpy(dst + (j0 + k) * rows + r0, panel + k * 16, nr * sizeof(float))


cdef inline int _grads_f32(float* dx, float* dw_ih, float* db_ih, float* dw_hh, float* db_hh,
                           const float* da, const float* da_hh, int ldd, int G,
                           InputParts parts, const float* x,
                           const float* h0, const float* out, const float* w_ih,
                           Py_ssize_t T, Py_ssize_t B, int I, int H,
                           int num_threads) noexcept nogil:
    cdef Py_ssize_t TB = T * B
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t gb = gate_block(G), ngb = num_blocks(G, gb)
    cdef Py_ssize_t k, r0, r1, g0, g1, a0, a1
    cdef int nt = kernel_threads(num_threads, nrb + ngb, 2.0 * TB * G * (2 * I + H))
    cdef int p, failed = 0
    cdef bint same                  # a part's dA_in columns serve the recurrent side too
    cdef float* dat
    # (gb, TB) per thread: the transposed dA columns of the block it works on
    cdef float* dat_all = <float*> rc_malloc64(nt * gb * TB * sizeof(float))
    cdef uint16_t* w_part[MAX_INPUT_PARTS]   # W_ih's rows of each part, (n, I) as is
    cdef uint16_t* x_p = _packed_f32(x, I, 1, <int> TB, I)        # X (TB, I)
    cdef uint16_t* h0_p = _packed_f32(h0, H, 1, <int> B, H)       # h0 (B, H)
    cdef uint16_t* out_p = _packed_f32(out, H, 1, <int> (TB - B), H)  # out[:T-1]
    for p in range(parts.count):
        w_part[p] = _packed_f32(w_ih + parts.first[p] * I, I, 1,
                                parts.first[p + 1] - parts.first[p], I)
        failed = failed or w_part[p] == NULL
    if x_p == NULL or h0_p == NULL or out_p == NULL or dat_all == NULL:
        failed = 1
    if not failed:
        # failed: a reduction over the blocks (rc_bf16_mat out of memory)
        for k in prange(nrb + ngb, num_threads=nt, schedule="dynamic", chunksize=1):
            if k >= ngb:  # the big weight-gradient blocks first, the dx blocks fill in
                # dx[r0:r1] (n, I) = sum over parts of dA_in[r0:r1, part] @ W_ih[part]
                r0 = (k - ngb) * rb
                r1 = min(r0 + rb, TB)
                for p in range(parts.count):
                    failed += rc_bf16_mat(<int> (r1 - r0), I,
                                          parts.first[p + 1] - parts.first[p],
                                          da + r0 * ldd + parts.column[p], ldd, w_part[p],
                                          dx + r0 * I, I, p > 0) != 0
            else:
                # gate rows g0:g1: dA_in's columns of each part they meet, with both
                # sides' bias gradients where a part's columns serve both
                g0 = k * gb
                g1 = min(g0 + gb, G)
                dat = dat_all + threadid() * gb * TB
                for p in range(parts.count):
                    a0 = max(g0, parts.first[p])
                    a1 = min(g1, parts.first[p + 1])
                    same = da_hh == da and parts.column[p] == parts.first[p]
                    if a1 > a0:
                        transposed_columns(dat + (a0 - g0) * TB,
                                           da + a0 - parts.first[p] + parts.column[p], ldd,
                                           TB, <int> (a1 - a0),
                                           NULL if db_ih == NULL else db_ih + a0,
                                           NULL if db_hh == NULL or not same else db_hh + a0)
                failed += rc_bf16_mat(<int> (g1 - g0), I, <int> TB, dat, TB, x_p,
                                      dw_ih + g0 * I, I, 1) != 0
                # then the recurrent side's columns a0:a1 where a part's differ
                for p in range(parts.count):
                    a0 = max(g0, parts.first[p])
                    a1 = min(g1, parts.first[p + 1])
                    same = da_hh == da and parts.column[p] == parts.first[p]
                    if a1 > a0 and not same:
                        transposed_columns(dat + (a0 - g0) * TB, da_hh + a0, ldd, TB,
                                           <int> (a1 - a0),
                                           NULL if db_hh == NULL else db_hh + a0, NULL)
                failed += rc_bf16_mat(<int> (g1 - g0), H, <int> B, dat, TB, h0_p,
                                      dw_hh + g0 * H, H, 1) != 0
                if TB > B:
                    failed += rc_bf16_mat(<int> (g1 - g0), H, <int> (TB - B), dat + B, TB,
                                          out_p, dw_hh + g0 * H, H, 1) != 0
    for p in range(parts.count):
        free(w_part[p])
    free(dat_all)
    free(x_p)
    free(h0_p)
    free(out_p)
    return -1 if failed else 0


cdef inline int bf16_grads(floating* dx, floating* dw_ih, floating* db_ih, floating* dw_hh,
                           floating* db_hh, const floating* da, const floating* da_hh,
                           int ldd, int G, InputParts parts, const floating* x,
                           const floating* h0, const floating* out, const floating* w_ih,
                           Py_ssize_t T, Py_ssize_t B, int I, int H,
                           int num_threads) noexcept nogil:
    """_rows.pxd's split_input_and_weight_grads with every product in bf16: after the
    backward time loop, from da (TB, ldd), the gradient of the pre-activations, and da_hh
    (da itself, or the recurrent side's own of the same row stride: the layer-normalised
    LSTM's), in blocks shared by up to num_threads threads:
        dx (TB, I)       = dA_in @ W_ih (G, I)                        (written)
        dW_ih (G, I)    += dA_in^T @ X;    db_ih (if not NULL) += column sums of dA_in
        dW_hh (G, H)    += sum_t da_hh_t[:, :G]^T @ h_{t-1};  db_hh (if not NULL) likewise
    dA_in: da's columns as `parts` (InputParts) describes; dx is summed part by part, in
    order, in float32. A block of gate rows transposes its columns of dA_in, then of
    da_hh[:, :G] where they differ, into its thread's (rows, TB) float32 buffer,
    rc_bf16_mat's A operand, summing the bias gradients from the same reads; X, h0,
    out[:T-1] and W_ih's parts are packed once. Returns -1 when out of memory (and for
    float64), else 0."""
    if floating is float:
        return _grads_f32(dx, dw_ih, db_ih, dw_hh, db_hh, da, da_hh, ldd, G, parts, x, h0,
                          out, w_ih, T, B, I, H, num_threads)
    else:
        return -1


cdef inline int weight_grads(bint use_bf16, floating* dx, floating* dw_ih, floating* db_ih,
                             floating* dw_hh, floating* db_hh, const floating* da,
                             const floating* da_hh, int ldd, int G, InputParts parts,
                             const floating* x, const floating* h0, const floating* out,
                             const floating* w_ih, Py_ssize_t T, Py_ssize_t B, int I, int H,
                             int num_threads) noexcept nogil:
    """What every kernel's backward computes after its time loop: bf16_grads (use_bf16)
    or _rows.pxd's split_input_and_weight_grads, the same arguments; nothing for T = 0
    (no step: no gradient, and dA has no first step for dW_hh's h0 term to read).
    Returns -1 when out of memory, else 0."""
    if T == 0:
        return 0
    if use_bf16:
        return bf16_grads(dx, dw_ih, db_ih, dw_hh, db_hh, da, da_hh, ldd, G, parts, x, h0,
                          out, w_ih, T, B, I, H, num_threads)
    return split_input_and_weight_grads(dx, dw_ih, db_ih, dw_hh, db_hh, da, da_hh, ldd, G,
                                        parts, x, h0, out, w_ih, T, B, I, H, num_threads)
