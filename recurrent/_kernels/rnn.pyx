"""Elman RNN kernels (tanh or relu): the whole sequence forward and backward, one call each.

Legend: T time steps, B batch rows, I input size, H hidden size (G = H: one gate block).

Forward, for step t of a valid row (t < lengths[b]):
    h_t = act(x_t W_ih^T + (b_ih + b_hh) + h_{t-1} W_hh^T)
The input projection for all T steps goes straight into `out` before the loop; each step
adds the recurrent product (recmat.h, W_hh packed once per call) and applies act in place.
Rows past their length keep h and output zeros; a row of length 0 runs no step (final
state = initial state, zero gradients, d h0 = d h_n).
The only cache is `out` itself: act'(a) is a function of h (1 - h^2 for tanh, h > 0 for
relu). Backward needs one work buffer dA (T, B, H).

Recurrent dropout and zoneout (_rows.pxd): with a mask m (B, H) the product reads
h_{t-1} * m; with a zoneout array k, h_t = k * h_{t-1} + (1 - k) * act(a_t). Backward then
needs act(a_t) itself (the candidate, `cand` (T, B, H), written by forward) and the masked
h_{t-1} for dW_hh (masked_history). In float32 each row's element-wise pass (activation,
zoneout, their derivatives) is one call each way, vectorised (gates.h); float64 runs the
Cython loops here, the reference for those lines.

bf16 (bf16=True; float32 arrays only): as lstm.pyx's, every matrix product through
rc_bf16_mat (_bf16rows.pxd: both operands rounded to bf16, sums in float32), as PyTorch's
bf16 autocast computes: the hoisted X W_ih^T (the bias added after it in float32), each
step's h_{t-1} W_hh^T, backward's dA_t W_hh, and dx, dW_ih, dW_hh after the loop. The
activation, zoneout, every sum and every result stay float32.

Threads: as in lstm.pyx (kernel_threads; bitwise identical results for any thread count).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._activations cimport relu, tanh_
from ._bf16rows cimport (bf16_packed, bf16_project, bf16_scratch, bf16_wanted, rec_product,
                         step_weights, weight_grads)
from ._gates cimport (rc_rnn_backward_f32, rc_rnn_backward_flags_f32, rc_rnn_backward_zone_f32,
                     rc_rnn_forward_f32, rc_rnn_forward_flags_f32)
from ._rows cimport (add_masked, copy_empty_rows, data_of, flags_of, kernel_threads,
                     mask_scratch, masked_history, masked_rows, packed_copy, project_inputs,
                     split, state_before, whole_input_part, zone_at, zone_rows, zoneout_step)


cdef int _forward_rows(floating* out, floating* h_n, const floating* h0,
                       const floating* w_hh_t, const uint16_t* w_hh_bf16,
                       const int64_t* lengths, bint use_relu, Py_ssize_t T, Py_ssize_t B,
                       int H, Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                       const floating* keep, const unsigned char* keep8,
                       Py_ssize_t kstep, floating* cand, floating* scratch) noexcept nogil:
    """The time loop for batch rows b0:b1; out[t] holds the projected inputs on entry;
    w_hh_t is W_hh^T packed for recmat, or w_hh_bf16 not NULL, packed for rc_bf16_mat (the
    bf16 path: w_hh_t not read). rmask (B, H), keep (zoneout values, kstep) as in _rows.pxd
    or NULL; keep8 zoneout flags instead (float32 only) or NULL; cand (T, B, H) receives
    act(a_t) when zoneout values are on (or NULL); scratch (B, H) work space for the masked
    h_{t-1} when rmask is not NULL. Returns -1 when out of memory (the bf16 products'
    scratch, allocated before the loop: nothing stepped), else 0."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j
    cdef const floating* h_prev
    cdef floating* h
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(T):
        h_prev = state_before(out, h0, t, B, H, b0)
        # a[t, b0:b1] (nb, H) += (h_{t-1} [* m]) (nb, H) @ W_hh^T (H, H)
        rec_product(nb, H, H, masked_rows(scratch + b0 * H, h_prev, m, nb * H), H, w_hh_t,
                    w_hh_bf16, bf16_work, out + (t * B + b0) * H, H, True)
        for b in range(b0, b1):
            h = out + (t * B + b) * H
            if t >= lengths[b]:
                memset(h, 0, H * sizeof(floating))
                continue
            if floating is float and keep8 != NULL:
                rc_rnn_forward_flags_f32(h, h_prev + (b - b0) * H,
                                         keep8 + t * kstep + b * H, H, use_relu)
            elif floating is float:
                # activation, candidate copy and zoneout in one vectorised call (gates.h)
                rc_rnn_forward_f32(h, NULL if cand == NULL else cand + (t * B + b) * H,
                                   h_prev + (b - b0) * H, zone_at(keep, kstep, t, B, H, b), H,
                                   use_relu)
            else:
                if use_relu:
                    for j in range(H):
                        h[j] = relu(h[j])
                else:
                    for j in range(H):
                        h[j] = tanh_(h[j])
                if keep != NULL:
                    if cand != NULL:
                        memcpy(cand + (t * B + b) * H, h, H * sizeof(floating))
                    zone_rows(h, h_prev + (b - b0) * H, zone_at(keep, kstep, t, B, H, b), H)
            if t == lengths[b] - 1:
                memcpy(h_n + b * H, h, H * sizeof(floating))
    free(bf16_work)
    return 0


cdef int _backward_rows(floating* dh, floating* da, const floating* d_out,
                        const floating* out, const floating* w_hh_p,
                        const uint16_t* w_hh_bf16, const int64_t* lengths, bint use_relu,
                        Py_ssize_t T, Py_ssize_t B, int H, Py_ssize_t b0, Py_ssize_t b1,
                        const floating* rmask, const floating* keep,
                        const unsigned char* keep8, Py_ssize_t kstep, const floating* cand,
                        floating* scratch) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh (B, H) carries d h_t between steps;
    w_hh_p is W_hh packed for recmat, or w_hh_bf16 not NULL, packed for rc_bf16_mat (the
    bf16 path). rmask, keep, keep8, kstep, cand, the returned status as forward's (cand:
    the candidates act(a_t) when keep is not NULL; it may be da itself: each element is
    read before it is written); scratch (B, H) work space when rmask is not NULL."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j, row
    cdef floating* d
    cdef const floating* h
    cdef const floating* g
    cdef const floating* k
    cdef floating* dhb
    cdef floating gt, dc
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            row = t * B + b
            d = da + row * H
            if t >= lengths[b]:
                memset(d, 0, H * sizeof(floating))  # padded step: dh passes through
                continue
            h = out + row * H
            g = d_out + row * H
            dhb = dh + b * H
            if floating is float and keep8 != NULL:
                rc_rnn_backward_flags_f32(d, h, g, dhb, keep8 + t * kstep + b * H, H,
                                          use_relu)
                continue
            if keep != NULL:
                # h_t = k * h_{t-1} + (1 - k) * c,  c = act(a_t) (the candidate)
                h = cand + row * H
                k = zone_at(keep, kstep, t, B, H, b)
                if floating is float:
                    if h != d:
                        memcpy(d, h, H * sizeof(floating))
                    rc_rnn_backward_zone_f32(d, g, dhb, k, H, use_relu)  # in place (gates.h)
                    continue
                for j in range(H):
                    gt = g[j] + dhb[j]
                    dc = (1 - k[j]) * gt
                    dhb[j] = k[j] * gt
                    if use_relu:
                        d[j] = dc if h[j] > 0 else 0
                    else:
                        d[j] = dc * (1 - h[j] * h[j])
                continue
            # h_t = act(a_t)
            if floating is float:
                rc_rnn_backward_f32(d, h, g, dhb, H, use_relu)  # vectorised (gates.h)
            elif use_relu:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) if h[j] > 0 else 0
                    dhb[j] = 0
            else:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) * (1 - h[j] * h[j])
                    dhb[j] = 0
        # dh[b0:b1] (nb, H) += dA_t (nb, H) @ W_hh (H, H) [* m]
        if rmask == NULL:
            rec_product(nb, H, H, da + (t * B + b0) * H, H, w_hh_p, w_hh_bf16, bf16_work,
                        dh + b0 * H, H, True)
        else:
            rec_product(nb, H, H, da + (t * B + b0) * H, H, w_hh_p, w_hh_bf16, bf16_work,
                        scratch + b0 * H, H, False)
            add_masked(dh + b0 * H, scratch + b0 * H, rmask + b0 * H, nb * H)
    free(bf16_work)
    return 0


def forward(floating[:, :, ::1] out, floating[:, ::1] h_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias, const int64_t[::1] lengths not None, bint use_relu,
            int num_threads, rec_mask=None, zoneout=None, cand=None, bf16=False):
    """out (T, B, H) and h_n (B, H) are written; bias (H,) = b_ih + b_hh; lengths in 0..T.
    rec_mask (B, H), zoneout (T or 1, B, H): see the module docstring (None: off); zoneout
    may be uint8 flags (float32 only: recurrent.masks), then cand stays None; cand (T, B, H)
    receives the candidates with zoneout values (None in inference); bf16: the bf16 path
    (float32 arrays only, else ValueError)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * H * H)
    cdef int k, status
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p = data_of(rec_mask, &x[0, 0, 0])
    cdef bint flags = zoneout is not None and zoneout.dtype.itemsize == 1
    cdef const floating* k_p = NULL if flags else data_of(zoneout, &x[0, 0, 0])
    cdef const unsigned char* k8_p = flags_of(zoneout) if flags else NULL
    cdef floating* cand_p = <floating*> data_of(cand, &x[0, 0, 0])   # written
    cdef Py_ssize_t kstep = zoneout_step(zoneout, B, H)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* w_ih_t    # step_weights: W_hh^T (H, H) packed for recmat, or both for
    cdef floating* w_hh_t    # rc_bf16_mat (bf16)
    cdef uint16_t* w_ih_bf16
    cdef uint16_t* w_hh_bf16
    if flags and floating is double:
        free(scratch)
        raise ValueError("zoneout flags (uint8) are for float32 kernels; give values")
    if step_weights(use_bf16, False, &w_ih[0, 0], &w_hh[0, 0], I, H, H, &w_ih_t, &w_hh_t,
                    &w_ih_bf16, &w_hh_bf16) != 0:
        free(scratch)
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        # a (T*B, H) = X @ W_ih^T + bias, straight into out
        if use_bf16:
            status = bf16_project(out_p, H, &x[0, 0, 0], w_ih_bf16, &bias[0], T * B, I, H,
                                  num_threads)
        else:
            status = project_inputs(out_p, H, &x[0, 0, 0], &w_ih[0, 0], &bias[0], T * B, I,
                                    H, num_threads)
        if status == 0:
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                failed += _forward_rows(out_p, h_n_p, h0_p, w_hh_t, w_hh_bf16, len_p,
                                        use_relu, T, B, H, split(B, nt, k),
                                        split(B, nt, k + 1), m_p, k_p, k8_p, kstep, cand_p,
                                        scratch)
    free(w_ih_t)
    free(w_hh_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[:, :, ::1] da,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths not None, bint use_relu, int num_threads,
             rec_mask=None, zoneout=None, cand=None, bf16=False):
    """dx (T, B, I) is written; da (T, B, H) is work space. dh (B, H) holds d h_n on entry
    and d h0 on return (unchanged for a row of length 0). dw_ih, dw_hh and db (H,: the
    gradient of b_ih and b_hh alike) are ADDED to. rec_mask, zoneout, bf16 as forward's
    (bf16 of the forward call that made out); cand: forward's candidates (needed with
    zoneout; may be da itself)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * H * H)
    cdef int k, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* da_p = &da[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* out_p = &out[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p = data_of(rec_mask, &x[0, 0, 0])
    cdef bint flags = zoneout is not None and zoneout.dtype.itemsize == 1
    cdef const floating* k_p = NULL if flags else data_of(zoneout, &x[0, 0, 0])
    cdef const unsigned char* k8_p = flags_of(zoneout) if flags else NULL
    cdef const floating* cand_p = data_of(cand, &x[0, 0, 0])
    cdef Py_ssize_t kstep = zoneout_step(zoneout, B, H)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1} products
    # masked h_{t-1} (T, B, H) for dW_hh
    cdef floating* hist = NULL if m_p == NULL else masked_history(&h0[0, 0], out_p, m_p, T,
                                                                  B, H)
    # W_hh (H, H) as is, packed for recmat, or for rc_bf16_mat (bf16)
    cdef floating* w_hh_packed = NULL
    cdef uint16_t* w_hh_bf16 = NULL
    if flags and floating is double:
        free(scratch)
        free(hist)
        raise ValueError("zoneout flags (uint8) are for float32 kernels; give values")
    if use_bf16:
        w_hh_bf16 = bf16_packed(&w_hh[0, 0], H, 1, H, H)
    else:
        w_hh_packed = packed_copy(&w_hh[0, 0], H, H, H, 1)
    if (w_hh_packed == NULL and w_hh_bf16 == NULL) or (m_p != NULL and hist == NULL):
        free(w_hh_packed)
        free(w_hh_bf16)
        free(scratch)
        free(hist)
        raise MemoryError()
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            failed += _backward_rows(dh_p, da_p, d_out_p, out_p, w_hh_packed, w_hh_bf16,
                                     len_p, use_relu, T, B, H, split(B, nt, k),
                                     split(B, nt, k + 1), m_p, k_p, k8_p, kstep, cand_p,
                                     scratch)
        # dW_hh reads h_{t-1} as the product saw it: masked when rec_mask is given
        if failed != 0:
            status = -1
        else:
            status = weight_grads(use_bf16, &dx[0, 0, 0], &dw_ih[0, 0], &db[0], &dw_hh[0, 0],
                                  NULL, da_p, da_p, H, H, whole_input_part(H), &x[0, 0, 0],
                                  &h0[0, 0] if hist == NULL else hist,
                                  out_p if hist == NULL else hist + B * H, &w_ih[0, 0], T, B,
                                  I, H, num_threads)
    free(w_hh_packed)
    free(w_hh_bf16)
    free(scratch)
    free(hist)
    if status != 0:
        raise MemoryError()
