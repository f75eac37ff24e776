"""LSTM kernels: the whole sequence forward, and backpropagation through time, one call each.

Legend: T time steps, B batch rows, I input size, H hidden size, G = 4H gate rows in the
order i, f, g, o (recurrent/layout.py, PyTorch's layout).

Forward, for step t of a valid row (t < lengths[b]):
    a   = x_t W_ih^T + (b_ih + b_hh) + h_{t-1} W_hh^T          (G,) pre-activations
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)
In float32 each step is one fused pass (lstmstep.h): the weights are packed so that a
register tile holds the four gates of the same units, which are activated while still in
registers. With B >= 4 the tile also sums the input part x_t W_ih^T; with fewer rows that
part is one product for all T steps before the loop (recmat.h), where it is a real GEMM.
float64 hoists the input part, then runs recmat and a separate gate pass. The weight
gradients after the backward loop go through BLAS. A row past its length keeps (h, c),
outputs zeros and costs nothing but the wasted product rows; a row of length 0 runs no
step: its final state is its initial state and its gradients are zero, d h0 = d h_n.

bf16 (bf16=True; float32 arrays only): the float64 structure with every matrix product
through rc_bf16_mat (bf16mat.h: both operands rounded to bf16, sums in float32), as
PyTorch's bf16 autocast computes: the hoisted X W_ih^T (the bias added after it in
float32), each step's h_{t-1} W_hh^T (W_hh^T packed once per call), then the float32 gate
pass (_cell_forward); backward's dA_t W_hh, and dx, dW_ih, dW_hh after the loop
(_bf16rows.pxd). Activations, cell state, bias gradients, every sum and every result stay
float32; rec_mask and zoneout work as in float32.

Cache read by backward: the activated gates (T, B, G), every c_t (T, B, H), every h_t (the
outputs). Backward overwrites the gate cache with dA = d loss / d a, so a cache serves one
backward call. infer() (evaluation) keeps none of them: same arithmetic, bitwise equal.

Threads: the time loop is ONE parallel region in which each thread owns a contiguous slice
of batch rows for all T steps. The hoisted products (projection, dx, weight gradients)
are cut into blocks that depend on the sizes only (_rows.pxd) and shared between threads
(BLAS single-threaded inside). Every region takes its thread count from kernel_threads
(_rows.pxd). Every element is computed the same way whatever the thread count, so 1, 2,
... threads give bitwise identical results.

Recurrent dropout and zoneout (_rows.pxd; Gal & Ghahramani 2016, Krueger et al. 2016):
with a mask m (B, H) the product reads h_{t-1} * m; with zoneout arrays kh, kc (T or 1,
B, H), c~ = f * c_{t-1} + i * g and
    c_t = kc * c_{t-1} + (1 - kc) * c~,    h_t = kh * h_{t-1} + (1 - kh) * o * tanh(c~).
The cell cache keeps the zoned c_t; backward recomputes c~ from the gates and c_{t-1}, and
dW_hh reads the masked h_{t-1} (masked_history).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._activations cimport sigmoid, tanh_
from ._bf16rows cimport (bf16_packed, bf16_project, bf16_scratch, bf16_wanted, rec_product,
                         weight_grads)
from ._gates cimport (rc_lstm_backward_f32, rc_lstm_backward_zone_f32, rc_lstm_forward_f32,
                      rc_lstm_forward_zone_f32, rc_lstm_group_order, rc_lstm_pack_f32,
                      rc_lstm_packed_len, rc_lstm_step_hoisted_f32, rc_lstm_step_in_tile_f32)
from ._recmat cimport rc_malloc64, recmat
from ._rows cimport (add_masked, copy_empty_rows, finish_step_hc, infer_chunk,
                     kernel_threads, mask_scratch, masked_history, masked_rows, packed_copy,
                     project_inputs, project_packed, split, state_before, two_state_masks,
                     whole_input_part, zone_at)
from .tuning cimport tuning


cdef inline void _cell_forward(floating* a, const floating* c_prev, floating* c, floating* h,
                               const floating* h_prev, const floating* kh,
                               const floating* kc, int H) noexcept nogil:
    # The gate pass run apart from the recurrent product: float64 (gradient checks) and the
    # bf16 path, whose float32 lines are gates.h's rc_lstm_forward(_zone)_f32 (vectorised);
    # float32 otherwise runs the fused step of lstmstep.h, same lines.
    # a (G,): pre-activations in, activated gates out; c_prev, c, h (H,); c may be c_prev
    # (each element is read before it is written). kh, kc (H,): zoneout, or NULL.
    cdef int j
    cdef floating gi, gf, gg, go, cj, hj
    if floating is float:
        if kh == NULL:
            rc_lstm_forward_f32(a, c_prev, c, h, H)
        else:
            rc_lstm_forward_zone_f32(a, c_prev, c, h, h_prev, kh, kc, H)
    else:
        for j in range(H):
            gi = sigmoid(a[j])
            gf = sigmoid(a[H + j])
            gg = tanh_(a[2 * H + j])
            go = sigmoid(a[3 * H + j])
            cj = gf * c_prev[j] + gi * gg
            a[j] = gi
            a[H + j] = gf
            a[2 * H + j] = gg
            a[3 * H + j] = go
            hj = go * tanh_(cj)
            if kh != NULL:
                hj = kh[j] * h_prev[j] + (1 - kh[j]) * hj
                cj = kc[j] * c_prev[j] + (1 - kc[j]) * cj
            c[j] = cj
            h[j] = hj


cdef inline void _cell_backward(floating* a, const floating* c_prev, const floating* c,
                                const floating* d_out, floating* dh, floating* dc,
                                int H) noexcept nogil:
    # a (G,): activated gates in, dA out. dh (H,): carried d h_t in, zeroed out (the caller
    # adds dA W_hh next); dc (H,): d c_t in, d c_{t-1} out.
    cdef int j
    cdef floating gi, gf, gg, go, tc, dhj, dcj
    if floating is float:
        rc_lstm_backward_f32(a, c_prev, c, d_out, dh, dc, H)
    else:
        for j in range(H):
            gi = a[j]
            gf = a[H + j]
            gg = a[2 * H + j]
            go = a[3 * H + j]
            tc = tanh_(c[j])
            dhj = d_out[j] + dh[j]
            # h_t = o * tanh(c_t)
            dcj = dc[j] + dhj * go * (1 - tc * tc)
            # c_t = f * c_{t-1} + i * g, then through each gate's nonlinearity
            a[j] = dcj * gg * gi * (1 - gi)
            a[H + j] = dcj * c_prev[j] * gf * (1 - gf)
            a[2 * H + j] = dcj * gi * (1 - gg * gg)
            a[3 * H + j] = dhj * tc * go * (1 - go)
            dc[j] = dcj * gf
            dh[j] = 0


cdef inline void _cell_backward_zone(floating* a, const floating* c_prev,
                                     const floating* d_out, floating* dh, floating* dc,
                                     const floating* kh, const floating* kc,
                                     int H) noexcept nogil:
    # _cell_backward with zoneout kh, kc (H,): dh out is kh * (d_out + d h_t) (the caller
    # adds dA W_hh next); c~ is recomputed from the gates and c_{t-1}.
    cdef int j
    cdef floating gi, gf, gg, go, cc, tc, gt, dhc, dcc
    if floating is float:
        rc_lstm_backward_zone_f32(a, c_prev, d_out, dh, dc, kh, kc, H)
    else:
        for j in range(H):
            gi = a[j]
            gf = a[H + j]
            gg = a[2 * H + j]
            go = a[3 * H + j]
            cc = gf * c_prev[j] + gi * gg
            tc = tanh_(cc)
            gt = d_out[j] + dh[j]
            # h_t = kh * h_{t-1} + (1 - kh) * o * tanh(c~)
            dhc = (1 - kh[j]) * gt
            # c_t = kc * c_{t-1} + (1 - kc) * c~
            dcc = (1 - kc[j]) * dc[j] + dhc * go * (1 - tc * tc)
            a[j] = dcc * gg * gi * (1 - gi)
            a[H + j] = dcc * c_prev[j] * gf * (1 - gf)
            a[2 * H + j] = dcc * gi * (1 - gg * gg)
            a[3 * H + j] = dhc * tc * go * (1 - go)
            dc[j] = kc[j] * dc[j] + dcc * gf
            dh[j] = kh[j] * gt


# A forward step for nb rows from b0 comes in one of two kinds, by where the input part
# x_t W_ih^T + bias comes from (chosen per call from B and the dtype, _input_in_tile):
#   _step_hoisted: projected for all steps before the loop, read from a (nb, G) (always
#     in float64 and in the bf16 path);
#   _step_in_tile: float32 only, computed inside the fused step's tiles.
# Either writes c (nb, H), h (nb, H) and, unless gates is NULL (inference), the activated
# gates (nb, G). h_prev (nb, H) is the previous h, A (nb, H) what the recurrent product
# reads (h_prev, or h_prev times the recurrent-dropout mask); kh, kc (nb, H) the step's
# zoneout rows or NULL. Then finish_step_hc (_rows.pxd) applies the lengths. Training (_train_rows) keeps every
# c_t and the gates for backward; inference (_infer_rows) keeps one running c and no gates.


cdef inline void _step_hoisted(floating* a, floating* gates, const floating* h_prev,
                               const floating* A, const floating* w_hh_t,
                               const uint16_t* w_hh_bf16, uint32_t* bf16_work,
                               const floating* c_prev, floating* c, floating* h,
                               const floating* kh, const floating* kc,
                               const int64_t* lengths, Py_ssize_t t, int H, Py_ssize_t b0,
                               int nb) noexcept nogil:
    """a (nb, G) holds the input part; gates is a itself (training) or NULL (inference).
    float32: the fused step (lstmstep.h). float64, and bf16 (w_hh_bf16 not NULL: W_hh^T
    packed for rc_bf16_mat, bf16_work from bf16_scratch): a += h_{t-1} W_hh^T (recmat,
    rc_bf16_mat_scratch), then the gate pass of the rows still inside their length, which
    leaves the activated gates in a whatever gates is (a is then scratch)."""
    cdef int G = 4 * H
    cdef Py_ssize_t r
    if floating is float:
        if w_hh_bf16 == NULL:
            rc_lstm_step_hoisted_f32(nb, H, h_prev, A, w_hh_t, a, c_prev, c, h, gates, kh, kc,
                                     rc_lstm_group_order(t))
            return
    rec_product(nb, G, H, A, H, w_hh_t, w_hh_bf16, bf16_work, a, G, True)
    for r in range(nb):
        if t < lengths[b0 + r]:
            _cell_forward(a + r * G, c_prev + r * H, c + r * H, h + r * H,
                          h_prev + r * H, NULL if kh == NULL else kh + r * H,
                          NULL if kc == NULL else kc + r * H, H)


cdef inline void _step_in_tile(const floating* x_t, const floating* w_ih_t,
                               const floating* bias, int I, const floating* h_prev,
                               const floating* A, const floating* w_hh_t,
                               const floating* c_prev, floating* c, floating* h,
                               floating* gates, const floating* kh, const floating* kc,
                               Py_ssize_t t, int H, int nb) noexcept nogil:
    """x_t (nb, I) rows, w_ih_t W_ih^T packed for lstmstep.h, bias (G,); gates (nb, G) or
    NULL. float32 only (_input_in_tile is false for float64)."""
    if floating is float:
        rc_lstm_step_in_tile_f32(nb, I, H, x_t, h_prev, A, w_ih_t, w_hh_t, bias, c_prev, c, h,
                                 gates, kh, kc, rc_lstm_group_order(t))


cdef int _train_rows(floating* out, floating* gates, floating* cells, floating* h_n,
                     floating* c_n, const floating* h0, const floating* c0,
                     const floating* w_hh_t, const uint16_t* w_hh_bf16, bint in_tile,
                     const floating* x, const floating* w_ih_t, const floating* bias, int I,
                     const int64_t* lengths, Py_ssize_t T, Py_ssize_t B, int H,
                     Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                     const floating* keep_h, const floating* keep_c, Py_ssize_t kstep,
                     floating* scratch) noexcept nogil:
    """The time loop for batch rows b0:b1, keeping what backward reads: every c_t in cells
    (T, B, H) and the activated gates in gates (T, B, G). Input part hoisted: gates holds
    it on entry. In the tile (float32): x (T, B, I), w_ih_t W_ih^T packed for lstmstep.h,
    bias (G,). w_hh_t is W_hh^T packed for lstmstep.h (float32) or recmat (float64);
    w_hh_bf16 NULL, or W_hh^T packed for rc_bf16_mat (the bf16 path: w_hh_t not read).
    rmask (B, H), keep_h, keep_c (zoneout, kstep) as in _rows.pxd or NULL; scratch (B, H)
    work space for the masked h_{t-1} when rmask is not NULL. Returns -1 when out of memory
    (the bf16 products' scratch, allocated once before the loop: nothing stepped), else
    0."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, row0
    cdef const floating* h_prev
    cdef const floating* c_prev
    cdef const floating* A
    cdef const floating* kh
    cdef const floating* kc
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(T):
        row0 = t * B + b0
        h_prev = state_before(out, h0, t, B, H, b0)
        c_prev = state_before(cells, c0, t, B, H, b0)
        A = masked_rows(scratch + b0 * H, h_prev, m, nb * H)
        kh = zone_at(keep_h, kstep, t, B, H, b0)
        kc = zone_at(keep_c, kstep, t, B, H, b0)
        if in_tile:
            _step_in_tile(x + row0 * I, w_ih_t, bias, I, h_prev, A, w_hh_t, c_prev,
                          cells + row0 * H, out + row0 * H, gates + row0 * G, kh, kc, t, H,
                          nb)
        else:
            _step_hoisted(gates + row0 * G, gates + row0 * G, h_prev, A, w_hh_t, w_hh_bf16,
                          bf16_work, c_prev, cells + row0 * H, out + row0 * H, kh, kc,
                          lengths, t, H, b0, nb)
        finish_step_hc(out, h_n, c_n, cells + row0 * H, lengths, t, B, H, b0, b1)
    free(bf16_work)
    return 0


cdef int _infer_rows(floating* out, floating* pre, floating* c_run, floating* h_n,
                     floating* c_n, const floating* h0, const floating* w_hh_t,
                     const uint16_t* w_hh_bf16, bint in_tile, const floating* x,
                     const floating* w_ih_t, const floating* bias, int I,
                     const int64_t* lengths, Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t B,
                     int H, Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                     const floating* keep_h, const floating* keep_c, Py_ssize_t kstep,
                     floating* scratch) noexcept nogil:
    """Steps t0:t1 of the time loop for batch rows b0:b1 without caches: c_run (B, H) is
    the running c, updated in place. Input part hoisted: pre (t1 - t0, B, G) holds it for
    these steps (scratch). In the tile: as _train_rows; pre is not used. w_hh_bf16, rmask,
    keep_h, keep_c, kstep, scratch, the returned status: as _train_rows."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, row0
    cdef const floating* h_prev
    cdef const floating* A
    cdef const floating* kh
    cdef const floating* kc
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef floating* c = c_run + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(t0, t1):
        row0 = t * B + b0
        h_prev = state_before(out, h0, t, B, H, b0)
        A = masked_rows(scratch + b0 * H, h_prev, m, nb * H)
        kh = zone_at(keep_h, kstep, t, B, H, b0)
        kc = zone_at(keep_c, kstep, t, B, H, b0)
        if in_tile:
            _step_in_tile(x + row0 * I, w_ih_t, bias, I, h_prev, A, w_hh_t, c, c,
                          out + row0 * H, NULL, kh, kc, t, H, nb)
        else:
            _step_hoisted(pre + ((t - t0) * B + b0) * G, NULL, h_prev, A, w_hh_t, w_hh_bf16,
                          bf16_work, c, c, out + row0 * H, kh, kc, lengths, t, H, b0, nb)
        finish_step_hc(out, h_n, c_n, c, lengths, t, B, H, b0, b1)
    free(bf16_work)
    return 0


cdef int _backward_rows(floating* dh, floating* dc, floating* gates,
                        const floating* d_out, const floating* cells, const floating* c0,
                        const floating* w_hh_p, const uint16_t* w_hh_bf16,
                        const int64_t* lengths, Py_ssize_t T, Py_ssize_t B, int H,
                        Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                        const floating* keep_h, const floating* keep_c, Py_ssize_t kstep,
                        floating* scratch) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh, dc (B, H) carry the state gradients;
    w_hh_p is W_hh (G, H) packed for recmat, or w_hh_bf16 not NULL, packed for rc_bf16_mat
    (the bf16 path). rmask, keep_h, keep_c, kstep, scratch, the returned status as
    _train_rows'."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    cdef const floating* c_prev
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
                continue
            c_prev = state_before(cells, c0, t, B, H, b)
            if keep_h != NULL:
                _cell_backward_zone(gates + row * G, c_prev, d_out + row * H, dh + b * H,
                                    dc + b * H, zone_at(keep_h, kstep, t, B, H, b),
                                    zone_at(keep_c, kstep, t, B, H, b), H)
            else:
                _cell_backward(gates + row * G, c_prev, cells + row * H, d_out + row * H,
                               dh + b * H, dc + b * H, H)
        # dh[b0:b1] (nb, H) += dA_t (nb, G) @ W_hh (G, H) [* m]  (a = ... + h_{t-1} W_hh^T)
        if rmask == NULL:
            rec_product(nb, H, G, gates + (t * B + b0) * G, G, w_hh_p, w_hh_bf16,
                        bf16_work, dh + b0 * H, H, True)
        else:
            rec_product(nb, H, G, gates + (t * B + b0) * G, G, w_hh_p, w_hh_bf16,
                        bf16_work, scratch + b0 * H, H, False)
            add_masked(dh + b0 * H, scratch + b0 * H, rmask + b0 * H, nb * H)
    free(bf16_work)
    return 0


cdef floating* _packed_w_hh_t(const floating* w_hh, int H) noexcept nogil:
    """A 64-byte aligned W_hh^T for the forward step (NULL when out of memory): float32
    in groups of the 4 gates' panels (lstmstep.h), float64 packed for recmat."""
    cdef floating* w_hh_t
    if floating is float:
        w_hh_t = <floating*> rc_malloc64(rc_lstm_packed_len(H, H) * sizeof(float))
        if w_hh_t != NULL:
            rc_lstm_pack_f32(w_hh, H, H, w_hh_t)
    else:
        w_hh_t = packed_copy(w_hh, H, 4 * H, 1, H)  # W_hh^T (H, G)
    return w_hh_t


cdef inline bint _input_in_tile(floating* like, Py_ssize_t B) noexcept nogil:
    """float32 with at least tuning().lstm_in_tile_min_rows batch rows computes the input
    part x_t W_ih^T inside each step's tiles instead of hoisting it (lstmstep.h). The
    choice depends on B only, never on the thread count, so results stay bitwise
    identical across thread counts."""
    return floating is float and B >= tuning().lstm_in_tile_min_rows


cdef inline double _loop_flops(Py_ssize_t steps, Py_ssize_t B, int I, int H,
                               bint in_tile) noexcept nogil:
    """Multiply-add work of `steps` forward steps (for kernel_threads): the recurrent
    product, and the input part too when the tile computes it."""
    return 2.0 * steps * B * 4 * H * (H + I if in_tile else H)


cdef floating* _packed_w_ih_in_tile(const floating* w_ih, int H, int I) noexcept nogil:
    """W_ih^T packed for the in-tile input part (float32 only; NULL when out of memory)."""
    cdef floating* w_ih_t = NULL
    if floating is float:
        w_ih_t = <floating*> rc_malloc64(rc_lstm_packed_len(H, I) * sizeof(float))
        if w_ih_t != NULL:
            rc_lstm_pack_f32(w_ih, H, I, w_ih_t)
    return w_ih_t


def forward(floating[:, :, ::1] out, floating[:, :, ::1] gates, floating[:, :, ::1] cells,
            floating[:, ::1] h_n, floating[:, ::1] c_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0, const floating[:, ::1] c0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias, const int64_t[::1] lengths not None, int num_threads,
            rec_mask=None, zoneout=None, bf16=False):
    """out (T, B, H), gates (T, B, G), cells (T, B, H), h_n, c_n (B, H) are written;
    bias (G,) = b_ih + b_hh; lengths (B,) in 0..T. Shapes are trusted (cells build them).
    rec_mask (B, H) or None; zoneout None or (kh, kc), each (T or 1, B, H); bf16: the bf16
    path (float32 arrays only, else ValueError). See the module docstring."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int k, nt, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* gates_p = &gates[0, 0, 0]
    cdef floating* cells_p = &cells[0, 0, 0]
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
    cdef bint in_tile = not use_bf16 and _input_in_tile(out_p, B)
    cdef floating* w_hh_t = NULL if use_bf16 else _packed_w_hh_t(&w_hh[0, 0], H)
    cdef floating* w_ih_t = _packed_w_ih_in_tile(&w_ih[0, 0], H, I) if in_tile else NULL
    # bf16: W_hh^T (H, G) and W_ih^T (I, G) packed for rc_bf16_mat
    cdef uint16_t* w_hh_bf16 = bf16_packed(&w_hh[0, 0], 1, H, H, G) if use_bf16 else NULL
    cdef uint16_t* w_ih_bf16 = bf16_packed(&w_ih[0, 0], 1, I, I, G) if use_bf16 else NULL
    if ((w_hh_t == NULL and w_hh_bf16 == NULL) or (in_tile and w_ih_t == NULL)
            or (use_bf16 and w_ih_bf16 == NULL)):
        free(w_hh_t)
        free(w_ih_t)
        free(w_hh_bf16)
        free(w_ih_bf16)
        free(scratch)
        raise MemoryError()
    nt = kernel_threads(num_threads, B, _loop_flops(T, B, I, H, in_tile))
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        copy_empty_rows(c_n_p, c0_p, len_p, B, H)
        # a (T*B, G) = X @ W_ih^T + bias, into the gate cache; the loop reads it there
        if use_bf16:
            status = bf16_project(gates_p, G, &x[0, 0, 0], w_ih_bf16, &bias[0], T * B, I, G,
                                   num_threads)
        elif not in_tile:
            status = project_inputs(gates_p, G, &x[0, 0, 0], &w_ih[0, 0], &bias[0], T * B, I,
                                    G, num_threads)
        if status == 0:
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                failed += _train_rows(out_p, gates_p, cells_p, h_n_p, c_n_p, h0_p, c0_p,
                                      w_hh_t, w_hh_bf16, in_tile, &x[0, 0, 0], w_ih_t,
                                      &bias[0], I, len_p, T, B, H, split(B, nt, k),
                                      split(B, nt, k + 1), m_p, kh_p, kc_p, kstep, scratch)
    free(w_hh_t)
    free(w_ih_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def infer(floating[:, :, ::1] out, floating[:, ::1] h_n, floating[:, ::1] c_n,
          const floating[:, :, ::1] x, const floating[:, ::1] h0, const floating[:, ::1] c0,
          const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
          const floating[::1] bias, const int64_t[::1] lengths not None, int num_threads,
          rec_mask=None, zoneout=None, bf16=False):
    """forward() without what backward needs: out (T, B, H), h_n, c_n (B, H) are written,
    bitwise equal to forward()'s; no gate or cell cache, c is one running (B, H) state.
    When the input part is hoisted it runs chunk by chunk of steps into a small scratch.
    rec_mask, zoneout, bf16 as forward's."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int k, nt, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef Py_ssize_t t0 = 0, t1
    cdef floating* out_p = &out[0, 0, 0]
    cdef bint in_tile = not use_bf16 and _input_in_tile(out_p, B)
    cdef Py_ssize_t chunk = T if in_tile else infer_chunk(T, B, G, sizeof(floating))
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* c_n_p = &c_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_t = NULL if use_bf16 else _packed_w_hh_t(&w_hh[0, 0], H)
    cdef floating* w_ih_t = NULL  # in tile: packed for lstmstep.h; hoisted: W_ih^T for recmat
    # bf16: W_hh^T (H, G) and W_ih^T (I, G) packed for rc_bf16_mat
    cdef uint16_t* w_hh_bf16 = bf16_packed(&w_hh[0, 0], 1, H, H, G) if use_bf16 else NULL
    cdef uint16_t* w_ih_bf16 = NULL
    cdef floating* pre = NULL   # hoisted: (chunk, B, G) scratch
    cdef const floating* m_p   # recurrent dropout, zoneout of h and c: NULL when off
    cdef const floating* kh_p
    cdef const floating* kc_p
    cdef Py_ssize_t kstep = two_state_masks(rec_mask, zoneout, &x[0, 0, 0], B, H, &m_p,
                                            &kh_p, &kc_p)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* c_run = <floating*> rc_malloc64(B * H * sizeof(floating))  # (B, H)
    if in_tile:
        w_ih_t = _packed_w_ih_in_tile(&w_ih[0, 0], H, I)
    else:
        if use_bf16:
            w_ih_bf16 = bf16_packed(&w_ih[0, 0], 1, I, I, G)
        else:
            w_ih_t = packed_copy(&w_ih[0, 0], I, G, 1, I)
        pre = <floating*> rc_malloc64(chunk * B * G * sizeof(floating))
    if ((w_hh_t == NULL and w_hh_bf16 == NULL) or (w_ih_t == NULL and w_ih_bf16 == NULL)
            or (not in_tile and pre == NULL) or c_run == NULL):
        free(w_hh_t)
        free(w_ih_t)
        free(w_hh_bf16)
        free(w_ih_bf16)
        free(pre)
        free(c_run)
        free(scratch)
        raise MemoryError()
    memcpy(c_run, &c0[0, 0], B * H * sizeof(floating))
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        copy_empty_rows(c_n_p, &c0[0, 0], len_p, B, H)
        while t0 < T and status == 0 and failed == 0:
            t1 = min(t0 + chunk, T)
            if use_bf16:
                status = bf16_project(pre, G, x_p + t0 * B * I, w_ih_bf16, &bias[0],
                                       (t1 - t0) * B, I, G, num_threads)
            elif not in_tile:
                project_packed(pre, G, x_p + t0 * B * I, w_ih_t, &bias[0], (t1 - t0) * B, I,
                               G, num_threads)
            if status == 0:
                nt = kernel_threads(num_threads, B, _loop_flops(t1 - t0, B, I, H, in_tile))
                for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                    failed += _infer_rows(out_p, pre, c_run, h_n_p, c_n_p, h0_p, w_hh_t,
                                          w_hh_bf16, in_tile, x_p, w_ih_t, &bias[0], I,
                                          len_p, t0, t1, B, H, split(B, nt, k),
                                          split(B, nt, k + 1), m_p, kh_p, kc_p, kstep,
                                          scratch)
            t0 = t1
    free(w_hh_t)
    free(w_ih_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(pre)
    free(c_run)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh, floating[:, ::1] dc,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[:, :, ::1] gates,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, ::1] c0,
             const floating[:, :, ::1] out, const floating[:, :, ::1] cells,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths not None, int num_threads, rec_mask=None,
             zoneout=None, bf16=False):
    """dx (T, B, I) is written. dh, dc (B, H) hold d h_n, d c_n on entry and d h0, d c0 on
    return (unchanged for a row of length 0). dw_ih, dw_hh and db (G,: the gradient of b_ih
    and of b_hh alike) are ADDED to. gates is the forward cache and is overwritten with dA.
    rec_mask, zoneout, bf16: forward's (bf16 of the forward call that made the cache)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef int k, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* dc_p = &dc[0, 0]
    cdef floating* da_p = &gates[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* c0_p = &c0[0, 0]
    cdef const floating* cells_p = &cells[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p   # recurrent dropout, zoneout of h and c: NULL when off
    cdef const floating* kh_p
    cdef const floating* kc_p
    cdef Py_ssize_t kstep = two_state_masks(rec_mask, zoneout, &x[0, 0, 0], B, H, &m_p,
                                            &kh_p, &kc_p)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* hist = NULL if m_p == NULL else masked_history(&h0[0, 0], &out[0, 0, 0],
                                                                  m_p, T, B, H)
    # W_hh (G, H) as is, packed for recmat, or for rc_bf16_mat (bf16)
    cdef floating* w_hh_packed = NULL if use_bf16 else packed_copy(&w_hh[0, 0], G, H, H, 1)
    cdef uint16_t* w_hh_bf16 = bf16_packed(&w_hh[0, 0], H, 1, G, H) if use_bf16 else NULL
    if (w_hh_packed == NULL and w_hh_bf16 == NULL) or (m_p != NULL and hist == NULL):
        free(w_hh_packed)
        free(w_hh_bf16)
        free(scratch)
        free(hist)
        raise MemoryError()
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            failed += _backward_rows(dh_p, dc_p, da_p, d_out_p, cells_p, c0_p, w_hh_packed,
                                     w_hh_bf16, len_p, T, B, H, split(B, nt, k),
                                     split(B, nt, k + 1), m_p, kh_p, kc_p, kstep, scratch)
        # dW_hh reads h_{t-1} as the product saw it: masked when rec_mask is given
        if failed != 0:
            status = -1
        else:
            status = weight_grads(use_bf16, &dx[0, 0, 0], &dw_ih[0, 0], &db[0], &dw_hh[0, 0],
                                  NULL, da_p, da_p, G, G, whole_input_part(G), &x[0, 0, 0],
                                  &h0[0, 0] if hist == NULL else hist,
                                  &out[0, 0, 0] if hist == NULL else hist + B * H,
                                  &w_ih[0, 0], T, B, I, H, num_threads)
    free(w_hh_packed)
    free(w_hh_bf16)
    free(scratch)
    free(hist)
    if status != 0:
        raise MemoryError()
