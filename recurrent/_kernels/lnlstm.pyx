"""Layer-normalised LSTM kernels (Ba, Kiros & Hinton 2016): the whole sequence forward,
inference, and backpropagation through time, one call each.

Legend: T time steps, B batch rows, I input size, H hidden size, G = 4H gate rows in the
order i, f, g, o (recurrent/layout.py). LN(v) normalises each gate block of H values on
its own (mean and variance over the block, eps inside the square root).

Forward, for step t of a valid row (t < lengths[b]):
    xn  = LN(x_t W_ih^T)        per gate block, hoisted: all T steps before the loop
    nh  = LN(h_{t-1} W_hh^T)    per gate block, after each step's recurrent product
    a   = g_ih * xn + g_hh * nh + (b_ih + b_hh)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(g_c * LN(c_t) + b_c)
The recurrent product is recmat.h's over W_hh^T packed once per call; the per-row passes
(normalisation, gates, their backward) are lnlstm.h's. A row past its length keeps (h, c),
outputs zeros; a row of length 0 runs no step (final state = initial state, zero
gradients, d h0 = d h_n).

Caches read by backward: xn and nh (T, B, G) normalised, their rstd (T, B, 4), the
activated gates (T, B, G), every c_t and LN(c_t) (T, B, H), its rstd (T, B), every h_t (the
outputs). Backward overwrites gates with dA, nh with d (h W_hh^T) and xn with d (x W_ih^T),
so a cache serves one backward call. infer() keeps none of them: same row passes on the
same values, bitwise equal.

Threads: as lstm.pyx. The time loop is one parallel region in which each thread owns a
contiguous slice of batch rows; the hoisted passes are cut into blocks that depend on the
sizes only; the gain gradients of the recurrent side are summed per row (B, .) in the loop
and over rows by the caller, those of the input side per block of rows (a size-only split)
and then over the blocks in order.
So 1, 2, ... threads give bitwise identical results.

Recurrent dropout and zoneout (_rows.pxd, the same rules as every cell kernel): with a
mask m (B, H) the recurrent product reads h_{t-1} * m, nh = LN((h_{t-1} * m) W_hh^T), and
dW_hh reads the masked h_{t-1} (masked_history). With zoneout arrays kh, kc (T or 1, B, H)
the step above computes the candidates c~ (c_t's line) and h~ = o * tanh(g_c * LN(c~) +
b_c), and then
    c_t = kc * c_{t-1} + (1 - kc) * c~,    h_t = kh * h_{t-1} + (1 - kh) * h~.
The caches keep LN(c~) and its rstd (all backward reads of the cell line) and the zoned
c_t (the next step's c_{t-1}); backward splits d h_t and d c_t between the candidates and
the previous states (zone_split_hc, zone_join_hc) around the same row pass.

bf16 (bf16=True; float32 arrays only): as lstm.pyx's, every matrix product through
rc_bf16_mat (_bf16rows.pxd: both operands rounded to bf16, sums in float32), as PyTorch's
bf16 autocast computes: the hoisted x W_ih^T, each step's h_{t-1} W_hh^T, backward's
d(h W_hh^T)_t W_hh, and dx, dW_ih, dW_hh after the loop. The normalisations, gates, every
sum and every result stay float32.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memset

from ._bf16rows cimport (bf16_packed, bf16_project, bf16_scratch, bf16_wanted, rec_product,
                         step_weights, weight_grads)
from ._lnlstm cimport (rc_ln_rows_backward_f32, rc_ln_rows_backward_f64, rc_ln_rows_f32,
                      rc_ln_rows_f64, rc_lnlstm_backward_f32, rc_lnlstm_backward_f64,
                      rc_lnlstm_forward_f32, rc_lnlstm_forward_f64)
from ._recmat cimport rc_malloc64
from ._rows cimport (add_masked, copy_empty_rows, finish_step_hc, infer_chunk,
                     kernel_threads, mask_scratch, masked_history, masked_rows, num_blocks,
                     packed_copy, project_inputs, project_packed, row_block, split,
                     state_before, sum_block, two_state_masks, whole_input_part, zone_at,
                     zone_join_hc, zone_rows, zone_split_hc)


# ---- fused-type front ends of lnlstm.h ----------------------------------------------------

cdef inline void _row_forward(int H, double eps, const floating* xn, floating* nh,
                              floating* rs_h, const floating* g_ih, const floating* g_hh,
                              const floating* bias, const floating* c_prev, floating* c,
                              floating* nc, floating* rs_c, const floating* g_c,
                              const floating* b_c, floating* h,
                              floating* gates) noexcept nogil:
    if floating is float:
        rc_lnlstm_forward_f32(H, <float> eps, xn, nh, rs_h, g_ih, g_hh, bias, c_prev, c, nc,
                              rs_c, g_c, b_c, h, gates)
    else:
        rc_lnlstm_forward_f64(H, eps, xn, nh, rs_h, g_ih, g_hh, bias, c_prev, c, nc, rs_c,
                              g_c, b_c, h, gates)


cdef inline void _row_backward(int H, floating* gates, floating* nh, const floating* rs_h,
                               const floating* g_hh, const floating* c_prev,
                               const floating* nc, floating rs_c, const floating* g_c,
                               const floating* b_c, const floating* d_out, floating* dh,
                               floating* dc, floating* acc_ghh, floating* acc_gc,
                               floating* acc_bc, floating* nc_work) noexcept nogil:
    if floating is float:
        rc_lnlstm_backward_f32(H, gates, nh, rs_h, g_hh, c_prev, nc, rs_c, g_c, b_c, d_out,
                               dh, dc, acc_ghh, acc_gc, acc_bc, nc_work)
    else:
        rc_lnlstm_backward_f64(H, gates, nh, rs_h, g_hh, c_prev, nc, rs_c, g_c, b_c, d_out,
                               dh, dc, acc_ghh, acc_gc, acc_bc, nc_work)


cdef inline void _ln_rows(floating* v, floating* rs, Py_ssize_t rows, int H,
                          double eps) noexcept nogil:
    if floating is float:
        rc_ln_rows_f32(v, rs, rows, H, <float> eps)
    else:
        rc_ln_rows_f64(v, rs, rows, H, eps)


cdef inline void _ln_rows_backward(const floating* d, const floating* g, floating* n,
                                   const floating* rs, Py_ssize_t rows, int H, floating* db,
                                   floating* dg) noexcept nogil:
    if floating is float:
        rc_ln_rows_backward_f32(d, g, n, rs, rows, H, db, dg)
    else:
        rc_ln_rows_backward_f64(d, g, n, rs, rows, H, db, dg)


# ---- the hoisted input part ---------------------------------------------------------------

cdef void _normalize_inputs(floating* xn, floating* rs_x, Py_ssize_t TB, int H, double eps,
                            int num_threads) noexcept nogil:
    """xn (TB, G) = LN(x W_ih^T) per gate block in place, rs_x (TB, 4) their rstd; row
    blocks of a size-only split shared between threads."""
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t k, r0
    for k in prange(nrb, num_threads=kernel_threads(num_threads, nrb, 8.0 * TB * 4 * H),
                    schedule="dynamic", chunksize=1):
        r0 = k * rb
        _ln_rows(xn + r0 * 4 * H, rs_x + r0 * 4, min(rb, TB - r0), H, eps)


# ---- the time loops -------------------------------------------------------------------

cdef inline void _zone_step(floating* c, const floating* c_prev, floating* h,
                            const floating* h_prev, const floating* keep_h,
                            const floating* keep_c, Py_ssize_t kstep, Py_ssize_t t,
                            Py_ssize_t B, int H, Py_ssize_t b) noexcept nogil:
    """Zoneout of row b's step t (training and inference alike): c, h (H,) hold the
    candidates c~, h~ the row pass wrote and become the blends with c_prev, h_prev;
    nothing when keep_h is NULL (zoneout off)."""
    if keep_h != NULL:
        zone_rows(c, c_prev, zone_at(keep_c, kstep, t, B, H, b), H)
        zone_rows(h, h_prev, zone_at(keep_h, kstep, t, B, H, b), H)


cdef int _train_rows(floating* out, floating* xn, floating* nh, floating* rs_h,
                     floating* gates, floating* cells, floating* nc, floating* rs_c,
                     floating* h_n, floating* c_n, const floating* h0, const floating* c0,
                     const floating* w_hh_t, const uint16_t* w_hh_bf16,
                     const floating* g_ih, const floating* g_hh,
                      const floating* bias, const floating* g_c, const floating* b_c,
                      double eps, const int64_t* lengths, Py_ssize_t T, Py_ssize_t B,
                      int H, Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                      const floating* keep_h, const floating* keep_c, Py_ssize_t kstep,
                      floating* scratch) noexcept nogil:
    """The time loop for batch rows b0:b1, keeping every cache backward reads. nh's rows of
    step t receive h_{t-1} W_hh^T (recmat over w_hh_t, W_hh^T packed; or rc_bf16_mat over
    w_hh_bf16 when not NULL, the bf16 path) and are normalised in place by the row pass.
    rmask (B, H) the recurrent-dropout mask, keep_h, keep_c the zoneout arrays (kstep:
    _rows.pxd zone_at), each NULL when off; scratch (B, H) holds the masked h_{t-1} when
    rmask is not NULL. Returns -1 when out of memory (the bf16 products' scratch,
    allocated before the loop: nothing stepped), else 0."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, r, row
    cdef const floating* h_prev
    cdef const floating* c_prev
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(T):
        row = t * B + b0
        h_prev = state_before(out, h0, t, B, H, b0)
        c_prev = state_before(cells, c0, t, B, H, b0)
        rec_product(nb, G, H, masked_rows(scratch + b0 * H, h_prev, m, nb * H), H, w_hh_t,
                    w_hh_bf16, bf16_work, nh + row * G, G, False)
        for r in range(nb):
            if t < lengths[b0 + r]:
                _row_forward(H, eps, xn + (row + r) * G, nh + (row + r) * G,
                             rs_h + (row + r) * 4, g_ih, g_hh, bias, c_prev + r * H,
                             cells + (row + r) * H, nc + (row + r) * H, rs_c + row + r, g_c,
                             b_c, out + (row + r) * H, gates + (row + r) * G)
                _zone_step(cells + (row + r) * H, c_prev + r * H, out + (row + r) * H,
                           h_prev + r * H, keep_h, keep_c, kstep, t, B, H, b0 + r)
        finish_step_hc(out, h_n, c_n, cells + row * H, lengths, t, B, H, b0, b1)
    free(bf16_work)
    return 0


cdef int _infer_rows(floating* out, const floating* xn, floating* work, floating* c_buf,
                     floating* h_n, floating* c_n, const floating* h0, const floating* c0,
                     const floating* w_hh_t, const uint16_t* w_hh_bf16,
                     const floating* g_ih, const floating* g_hh,
                      const floating* bias, const floating* g_c, const floating* b_c,
                      double eps, const int64_t* lengths, Py_ssize_t t0, Py_ssize_t t1,
                      Py_ssize_t B, int H, Py_ssize_t b0, Py_ssize_t b1,
                      const floating* rmask, const floating* keep_h, const floating* keep_c,
                      Py_ssize_t kstep, floating* scratch) noexcept nogil:
    """Steps t0:t1 for batch rows b0:b1 without caches. xn (t1 - t0, B, G): the normalised
    input part of these steps. work (B, 2G + H + 5) scratch per row: nh, gates, LN(c), the
    rstds. c_buf (2, B, H): c_t lives in c_buf[t % 2] (a row's c is read only while the
    row is valid, and its final c is copied out at its last step). w_hh_bf16, rmask,
    keep_h, keep_c, kstep, scratch, the returned status: as _train_rows."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t W = 2 * G + H + 5
    cdef Py_ssize_t t, r, row
    cdef const floating* h_prev
    cdef const floating* c_prev
    cdef floating* c
    cdef floating* wr
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(t0, t1):
        row = t * B + b0
        h_prev = state_before(out, h0, t, B, H, b0)
        c_prev = c0 + b0 * H if t == 0 else c_buf + ((t - 1) % 2) * B * H + b0 * H
        c = c_buf + (t % 2) * B * H + b0 * H
        rec_product(nb, G, H, masked_rows(scratch + b0 * H, h_prev, m, nb * H), H, w_hh_t,
                    w_hh_bf16, bf16_work, work + b0 * W, W, False)
        for r in range(nb):
            if t < lengths[b0 + r]:
                wr = work + (b0 + r) * W
                _row_forward(H, eps, xn + ((t - t0) * B + b0 + r) * G, wr, wr + 2 * G + H,
                             g_ih, g_hh, bias, c_prev + r * H, c + r * H, wr + 2 * G,
                             wr + 2 * G + H + 4, g_c, b_c, out + (row + r) * H, wr + G)
                _zone_step(c + r * H, c_prev + r * H, out + (row + r) * H, h_prev + r * H,
                           keep_h, keep_c, kstep, t, B, H, b0 + r)
        finish_step_hc(out, h_n, c_n, c, lengths, t, B, H, b0, b1)
    free(bf16_work)
    return 0


cdef int _backward_rows(floating* dh, floating* dc, floating* gates, floating* nh,
                        const floating* rs_h, const floating* d_out, const floating* cells,
                        const floating* nc, const floating* rs_c, const floating* c0,
                        const floating* w_hh_p, const uint16_t* w_hh_bf16,
                        const floating* g_hh, const floating* g_c,
                         const floating* b_c, floating* acc_ghh, floating* acc_gc,
                         floating* acc_bc, floating* nc_work, const int64_t* lengths,
                         Py_ssize_t T, Py_ssize_t B, int H, Py_ssize_t b0,
                         Py_ssize_t b1, const floating* rmask, const floating* keep_h,
                         const floating* keep_c, Py_ssize_t kstep, floating* scratch,
                         floating* zone_work) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh, dc (B, H) carry the state gradients;
    w_hh_p is W_hh (G, H) packed for recmat, or w_hh_bf16 not NULL, packed for rc_bf16_mat
    (the bf16 path); acc_* (B, .) the per-row gain and bias sums; nc_work (B, H) scratch.
    rmask, keep_h, keep_c, kstep, scratch, the returned status as forward's; zone_work
    (B, 3H) scratch when keep_h is not NULL (zone_split_hc's three rows)."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    cdef const floating* c_prev
    cdef floating* zw
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, G)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            row = t * B + b
            if t >= lengths[b]:
                # padded step: no gradient through it; dh, dc pass through unchanged
                memset(gates + row * G, 0, G * sizeof(floating))
                memset(nh + row * G, 0, G * sizeof(floating))
                continue
            c_prev = state_before(cells, c0, t, B, H, b)
            if keep_h == NULL:
                _row_backward(H, gates + row * G, nh + row * G, rs_h + row * 4, g_hh,
                              c_prev, nc + row * H, rs_c[row], g_c, b_c, d_out + row * H,
                              dh + b * H, dc + b * H, acc_ghh + b * G, acc_gc + b * H,
                              acc_bc + b * H, nc_work + b * H)
                continue
            # zoneout: the row pass differentiates the candidates h~, c~
            zw = zone_work + b * 3 * H
            zone_split_hc(zw, zw + H, zw + 2 * H, dh + b * H, dc + b * H, d_out + row * H,
                          zone_at(keep_h, kstep, t, B, H, b),
                          zone_at(keep_c, kstep, t, B, H, b), H)
            _row_backward(H, gates + row * G, nh + row * G, rs_h + row * 4, g_hh, c_prev,
                          nc + row * H, rs_c[row], g_c, b_c, zw, dh + b * H, dc + b * H,
                          acc_ghh + b * G, acc_gc + b * H, acc_bc + b * H, nc_work + b * H)
            zone_join_hc(dh + b * H, dc + b * H, zw + H, zw + 2 * H, H)
        # dh[b0:b1] (nb, H) += d(h W_hh^T)_t (nb, G) @ W_hh (G, H) [* m]
        if rmask == NULL:
            rec_product(nb, H, G, nh + (t * B + b0) * G, G, w_hh_p, w_hh_bf16, bf16_work,
                        dh + b0 * H, H, True)
        else:
            rec_product(nb, H, G, nh + (t * B + b0) * G, G, w_hh_p, w_hh_bf16, bf16_work,
                        scratch + b0 * H, H, False)
            add_masked(dh + b0 * H, scratch + b0 * H, rmask + b0 * H, nb * H)
    free(bf16_work)
    return 0


# ---- entry points -------------------------------------------------------------------

def forward(floating[:, :, ::1] out, floating[:, :, ::1] xn, floating[:, :, ::1] nh,
            floating[:, :, ::1] gates, floating[:, :, ::1] cells, floating[:, :, ::1] nc,
            floating[:, :, ::1] rs_x, floating[:, :, ::1] rs_h, floating[:, ::1] rs_c,
            floating[:, ::1] h_n, floating[:, ::1] c_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0, const floating[:, ::1] c0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] zeros, const floating[::1] bias, const floating[::1] g_ih,
            const floating[::1] g_hh, const floating[::1] g_c, const floating[::1] b_c,
            double eps, const int64_t[::1] lengths not None, int num_threads,
            rec_mask=None, zoneout=None, bf16=False):
    """out, cells, nc (T, B, H), xn, nh, gates (T, B, G), rs_x, rs_h (T, B, 4), rs_c (T, B),
    h_n, c_n (B, H) are written. zeros (G,) zeros; bias (G,) = b_ih + b_hh; g_ih, g_hh
    (G,), g_c, b_c (H,). Shapes are trusted (the cell builds them). rec_mask (B, H) or
    None; zoneout None or (kh, kc), each (T or 1, B, H): see the module docstring; bf16:
    the bf16 path (float32 arrays only, else ValueError)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int k, nt, status
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* c_n_p = &c_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* c0_p = &c0[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p   # recurrent dropout, zoneout of h and c: NULL when off
    cdef const floating* kh_p
    cdef const floating* kc_p
    cdef Py_ssize_t kstep = two_state_masks(rec_mask, zoneout, &x[0, 0, 0], B, H, &m_p,
                                            &kh_p, &kc_p)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* w_ih_t    # step_weights: W_hh^T packed for recmat, or both for
    cdef floating* w_hh_t    # rc_bf16_mat (bf16)
    cdef uint16_t* w_ih_bf16
    cdef uint16_t* w_hh_bf16
    if step_weights(use_bf16, False, &w_ih[0, 0], &w_hh[0, 0], I, H, G, &w_ih_t, &w_hh_t,
                    &w_ih_bf16, &w_hh_bf16) != 0:
        free(scratch)
        raise MemoryError()
    nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        copy_empty_rows(c_n_p, c0_p, len_p, B, H)
        if use_bf16:
            status = bf16_project(&xn[0, 0, 0], G, &x[0, 0, 0], w_ih_bf16, &zeros[0], T * B, I,
                                  G, num_threads)
        else:
            status = project_inputs(&xn[0, 0, 0], G, &x[0, 0, 0], &w_ih[0, 0], &zeros[0],
                                    T * B, I, G, num_threads)
        if status == 0:
            _normalize_inputs(&xn[0, 0, 0], &rs_x[0, 0, 0], T * B, H, eps, num_threads)
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                failed += _train_rows(out_p, &xn[0, 0, 0], &nh[0, 0, 0], &rs_h[0, 0, 0],
                                      &gates[0, 0, 0], &cells[0, 0, 0], &nc[0, 0, 0],
                                      &rs_c[0, 0], h_n_p, c_n_p, h0_p, c0_p, w_hh_t,
                                      w_hh_bf16, &g_ih[0], &g_hh[0], &bias[0], &g_c[0],
                                      &b_c[0], eps, len_p, T, B, H, split(B, nt, k),
                                      split(B, nt, k + 1), m_p, kh_p, kc_p, kstep, scratch)
    free(w_ih_t)
    free(w_hh_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def infer(floating[:, :, ::1] out, floating[:, ::1] h_n, floating[:, ::1] c_n,
          const floating[:, :, ::1] x, const floating[:, ::1] h0, const floating[:, ::1] c0,
          const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
          const floating[::1] zeros, const floating[::1] bias, const floating[::1] g_ih,
          const floating[::1] g_hh, const floating[::1] g_c, const floating[::1] b_c,
          double eps, const int64_t[::1] lengths not None, int num_threads,
          rec_mask=None, zoneout=None, bf16=False):
    """forward() without caches: out (T, B, H), h_n, c_n (B, H) are written, bitwise equal
    to forward()'s. The input part runs chunk by chunk of steps into a small scratch.
    rec_mask, zoneout, bf16 as forward's."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int k, nt, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef Py_ssize_t t0 = 0, t1
    cdef Py_ssize_t chunk = infer_chunk(T, B, G, sizeof(floating))
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* c_n_p = &c_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* c0_p = &c0[0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p   # recurrent dropout, zoneout of h and c: NULL when off
    cdef const floating* kh_p
    cdef const floating* kc_p
    cdef Py_ssize_t kstep = two_state_masks(rec_mask, zoneout, &x[0, 0, 0], B, H, &m_p,
                                            &kh_p, &kc_p)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    # W_ih^T (I, G) and W_hh^T (H, G) packed for recmat, or for rc_bf16_mat (bf16)
    cdef floating* w_ih_t
    cdef floating* w_hh_t
    cdef uint16_t* w_ih_bf16
    cdef uint16_t* w_hh_bf16
    cdef floating* pre = <floating*> rc_malloc64(chunk * B * G * sizeof(floating))
    cdef floating* rs_x = <floating*> rc_malloc64(chunk * B * 4 * sizeof(floating))
    cdef floating* work = <floating*> rc_malloc64(B * (2 * G + H + 5) * sizeof(floating))
    cdef floating* c_buf = <floating*> rc_malloc64(2 * B * H * sizeof(floating))
    if (pre == NULL or rs_x == NULL or work == NULL or c_buf == NULL
            or step_weights(use_bf16, True, &w_ih[0, 0], &w_hh[0, 0], I, H, G, &w_ih_t,
                            &w_hh_t, &w_ih_bf16, &w_hh_bf16) != 0):
        free(pre)
        free(rs_x)
        free(work)
        free(c_buf)
        free(scratch)
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        copy_empty_rows(c_n_p, c0_p, len_p, B, H)
        while t0 < T and status == 0 and failed == 0:
            t1 = min(t0 + chunk, T)
            if use_bf16:
                status = bf16_project(pre, G, x_p + t0 * B * I, w_ih_bf16, &zeros[0],
                                      (t1 - t0) * B, I, G, num_threads)
            else:
                project_packed(pre, G, x_p + t0 * B * I, w_ih_t, &zeros[0], (t1 - t0) * B, I,
                               G, num_threads)
            if status == 0:
                _normalize_inputs(pre, rs_x, (t1 - t0) * B, H, eps, num_threads)
                nt = kernel_threads(num_threads, B, 2.0 * (t1 - t0) * B * G * H)
                for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                    failed += _infer_rows(out_p, pre, work, c_buf, h_n_p, c_n_p, h0_p, c0_p,
                                          w_hh_t, w_hh_bf16, &g_ih[0], &g_hh[0], &bias[0],
                                          &g_c[0], &b_c[0], eps, len_p, t0, t1, B, H,
                                          split(B, nt, k), split(B, nt, k + 1), m_p, kh_p,
                                          kc_p, kstep, scratch)
            t0 = t1
    free(w_hh_t)
    free(w_ih_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(pre)
    free(rs_x)
    free(work)
    free(c_buf)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh, floating[:, ::1] dc,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[::1] dg_ih, floating[:, ::1] acc_ghh, floating[:, ::1] acc_gc,
             floating[:, ::1] acc_bc,
             floating[:, :, ::1] xn, floating[:, :, ::1] nh, floating[:, :, ::1] gates,
             const floating[:, :, ::1] rs_x, const floating[:, :, ::1] rs_h,
             const floating[:, ::1] rs_c, const floating[:, :, ::1] cells,
             const floating[:, :, ::1] nc, const floating[:, :, ::1] d_out,
             const floating[:, :, ::1] x, const floating[:, ::1] h0,
             const floating[:, ::1] c0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const floating[::1] g_ih, const floating[::1] g_hh, const floating[::1] g_c,
             const floating[::1] b_c, const int64_t[::1] lengths not None, int num_threads,
             rec_mask=None, zoneout=None, bf16=False):
    """dx (T, B, I) is written. dh, dc (B, H) hold d h_n, d c_n on entry and d h0, d c0 on
    return. ADDED to: dw_ih, dw_hh; db (G,: the gradient of b_ih and of b_hh alike), dg_ih
    (G,); acc_ghh (B, G), acc_gc, acc_bc (B, H): per row, the gradients of g_hh, g_c and
    b_c (the caller sums them over rows). xn, nh, gates are forward's caches, overwritten.
    rec_mask, zoneout, bf16: forward's (bf16 of the forward call that made the caches)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef Py_ssize_t TB = T * B
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef Py_ssize_t rb = sum_block(TB), nrb = num_blocks(TB, rb)
    cdef int k, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef Py_ssize_t j, r0
    cdef floating* da_p = &gates[0, 0, 0]
    cdef floating* xn_p = &xn[0, 0, 0]
    cdef const floating* m_p   # recurrent dropout, zoneout of h and c: NULL when off
    cdef const floating* kh_p
    cdef const floating* kc_p
    cdef Py_ssize_t kstep = two_state_masks(rec_mask, zoneout, &x[0, 0, 0], B, H, &m_p,
                                            &kh_p, &kc_p)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) d of the masked h_{t-1}
    cdef floating* hist = NULL if m_p == NULL else masked_history(&h0[0, 0], &out[0, 0, 0],
                                                                  m_p, T, B, H)
    cdef floating* zone_work = NULL if kh_p == NULL else <floating*> rc_malloc64(
        B * 3 * H * sizeof(floating))   # (B, 3H): zone_split_hc's rows
    # W_hh (G, H) as is, packed for recmat, or for rc_bf16_mat (bf16)
    cdef floating* w_hh_packed = NULL if use_bf16 else packed_copy(&w_hh[0, 0], G, H, H, 1)
    cdef uint16_t* w_hh_bf16 = bf16_packed(&w_hh[0, 0], H, 1, G, H) if use_bf16 else NULL
    cdef floating* nc_work = <floating*> rc_malloc64(B * H * sizeof(floating))
    # per row block: its sums of dA (db) and dA * xn (dg_ih), added up in block order
    cdef floating* part = <floating*> rc_malloc64(nrb * 2 * G * sizeof(floating))
    if ((w_hh_packed == NULL and w_hh_bf16 == NULL) or nc_work == NULL or part == NULL
            or (m_p != NULL and hist == NULL) or (kh_p != NULL and zone_work == NULL)):
        free(w_hh_packed)
        free(w_hh_bf16)
        free(nc_work)
        free(part)
        free(scratch)
        free(hist)
        free(zone_work)
        raise MemoryError()
    memset(part, 0, nrb * 2 * G * sizeof(floating))
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            failed += _backward_rows(&dh[0, 0], &dc[0, 0], da_p, &nh[0, 0, 0], &rs_h[0, 0, 0],
                                     &d_out[0, 0, 0], &cells[0, 0, 0], &nc[0, 0, 0],
                                     &rs_c[0, 0], &c0[0, 0], w_hh_packed, w_hh_bf16, &g_hh[0],
                                     &g_c[0], &b_c[0], &acc_ghh[0, 0], &acc_gc[0, 0],
                                     &acc_bc[0, 0], nc_work, &lengths[0], T, B, H,
                                     split(B, nt, k), split(B, nt, k + 1), m_p, kh_p, kc_p,
                                     kstep, scratch, zone_work)
        # the input side: a = g_ih * xn + b_ih + b_hh + ..., with xn = LN(x W_ih^T);
        # row blocks of a size-only split (sum_block: not moved by the tuning), their
        # sums added in block order
        for j in prange(nrb, num_threads=kernel_threads(num_threads, nrb, 10.0 * TB * G),
                        schedule="dynamic", chunksize=1):
            r0 = j * rb
            _ln_rows_backward(da_p + r0 * G, &g_ih[0], xn_p + r0 * G, &rs_x[0, 0, 0] + r0 * 4,
                              min(rb, TB - r0), H, part + j * 2 * G, part + j * 2 * G + G)
        for j in range(nrb):
            for k in range(G):
                db[k] += part[j * 2 * G + k]
                dg_ih[k] += part[j * 2 * G + G + k]
        # dW_hh reads h_{t-1} as the product saw it: masked when rec_mask is given
        if failed != 0:
            status = -1
        else:
            status = weight_grads(use_bf16, &dx[0, 0, 0], &dw_ih[0, 0], NULL, &dw_hh[0, 0],
                                  NULL, xn_p, &nh[0, 0, 0], G, G, whole_input_part(G),
                                  &x[0, 0, 0], &h0[0, 0] if hist == NULL else hist,
                                  &out[0, 0, 0] if hist == NULL else hist + B * H,
                                  &w_ih[0, 0], T, B, I, H, num_threads)
    free(w_hh_packed)
    free(w_hh_bf16)
    free(nc_work)
    free(part)
    free(scratch)
    free(hist)
    free(zone_work)
    if status != 0:
        raise MemoryError()
