"""GRU kernels: the whole sequence forward and backward, one call each (PyTorch's GRU).

Legend: T time steps, B batch rows, I input size, H hidden size, G = 3H gate rows in the
order r, z, n (recurrent/layout.py). The cache has 4 blocks of H per row, "C = 4H".

Forward, for step t of a valid row (t < lengths[b]):
    ax   = x_t W_ih^T + b_ih                 (G,)  all T steps in one product before the loop
    ah   = h_{t-1} W_hh^T                    (G,)  one product per step (reset-after form)
    r    = sigmoid(ax_r + ah_r + b_hr)       (b_hr and b_hz are folded into ax)
    z    = sigmoid(ax_z + ah_z + b_hz)
    hn   = ah_n + b_hn                       b_hn stays inside the reset product
    n    = tanh(ax_n + r * hn)
    h_t  = (1 - z) * n + z * h_{t-1}
Cache per row and step, blocks of H: [r, z, hn, n] (T, B, C). The projection writes ax into
the first three blocks; the step's fused pass overwrites them in place.

Backward overwrites the cache with [dA_r, dA_z, r * dA_n, dA_n] where dA_* are the
gradients of the pre-activations. Then the gradient w.r.t. ah is the contiguous first 3H
columns (one GEMM per step for d h_{t-1}, one for dW_hh), and w.r.t. ax the blocks 0, 1, 3.

A row of length 0 runs no step: final state = initial state, zero gradients, d h0 = d h_n.

Recurrent dropout and zoneout (_rows.pxd): with a mask m (B, H), ah = (h_{t-1} * m) W_hh^T
(the blend z * h_{t-1} reads the unmasked h); with a zoneout array k,
h_t = k * h_{t-1} + (1 - k) * ((1 - z) * n + z * h_{t-1}). The cache needs nothing more;
dW_hh reads the masked h_{t-1} (masked_history).

bf16 (bf16=True; float32 arrays only): as lstm.pyx's, every matrix product through
rc_bf16_mat (_bf16rows.pxd: both operands rounded to bf16, sums in float32), as PyTorch's
bf16 autocast computes: the hoisted X W_ih^T (bias_x added after it in float32), each
step's h_{t-1} W_hh^T, backward's dAh_t W_hh, and dx, dW_ih, dW_hh after the loop. The
gate pass, b_hn, every sum and every result stay float32.

Threads: as in lstm.pyx (kernel_threads). infer() (evaluation) keeps no cache: bitwise the same outputs.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memset

from ._activations cimport sigmoid, tanh_
from ._bf16rows cimport (bf16_packed, bf16_project, bf16_scratch, bf16_wanted, rec_product,
                         step_weights, weight_grads)
from ._gates cimport rc_gru_backward_f32, rc_gru_backward_zone_f32, rc_gru_forward_f32
from ._recmat cimport rc_malloc64
from ._rows cimport (InputParts, add_masked, copy_empty_rows, data_of, infer_chunk,
                     kernel_threads, mask_scratch, masked_history, masked_rows, packed_copy,
                     project_inputs, project_packed, split, state_before, zone_at, zone_rows,
                     zoneout_step)


cdef inline void _cell_forward(floating* a, const floating* ah, const floating* b_hn,
                               const floating* h_prev, floating* h, int H) noexcept nogil:
    # a (C,): [ax_r, ax_z, ax_n, -] in, [r, z, hn, n] out; ah (G,); h_prev, h (H,)
    cdef int j
    cdef floating r, z, hn, n
    if floating is float:  # the same lines, vectorised (gates.h)
        rc_gru_forward_f32(a, ah, b_hn, h_prev, h, H)
    else:
        for j in range(H):
            r = sigmoid(a[j] + ah[j])
            z = sigmoid(a[H + j] + ah[H + j])
            hn = ah[2 * H + j] + b_hn[j]
            n = tanh_(a[2 * H + j] + r * hn)
            a[j] = r
            a[H + j] = z
            a[2 * H + j] = hn
            a[3 * H + j] = n
            h[j] = (1 - z) * n + z * h_prev[j]


cdef inline void _cell_backward(floating* a, const floating* h_prev, const floating* d_out,
                                floating* dh, const floating* k, int H) noexcept nogil:
    # a (C,): [r, z, hn, n] in, [dA_r, dA_z, r * dA_n, dA_n] out; dh (H,): d h_t in,
    # the direct part of d h_{t-1} out (the caller adds the W_hh path). k (H,): zoneout,
    # h_t = k * h_{t-1} + (1 - k) * h~ with h~ the cell's, or NULL (k = 0).
    cdef int j
    cdef floating r, z, hn, n, kj, gt, dhj, dn
    if floating is float:
        if k == NULL:
            rc_gru_backward_f32(a, h_prev, d_out, dh, H)
        else:
            rc_gru_backward_zone_f32(a, h_prev, d_out, dh, k, H)
    else:
        for j in range(H):
            r = a[j]
            z = a[H + j]
            hn = a[2 * H + j]
            n = a[3 * H + j]
            kj = 0 if k == NULL else k[j]
            gt = d_out[j] + dh[j]
            dhj = (1 - kj) * gt
            # h~ = (1 - z) * n + z * h_{t-1};  n = tanh(ax_n + r * hn)
            dn = dhj * (1 - z) * (1 - n * n)
            a[j] = dn * hn * r * (1 - r)
            a[H + j] = dhj * (h_prev[j] - n) * z * (1 - z)
            a[2 * H + j] = dn * r
            a[3 * H + j] = dn
            dh[j] = dhj * z + kj * gt


cdef int _forward_rows(floating* out, floating* cache, floating* ah, floating* h_n,
                       const floating* h0, const floating* w_hh_t,
                       const uint16_t* w_hh_bf16, const floating* b_hn,
                       const int64_t* lengths, Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t B,
                       int H, Py_ssize_t b0, Py_ssize_t b1, const floating* rmask,
                       const floating* keep, Py_ssize_t kstep,
                       floating* scratch) noexcept nogil:
    """Steps t0:t1 of the time loop for batch rows b0:b1; cache holds those steps,
    (t1 - t0, B, C) (training: the whole cache, t0 = 0; inference: a scratch chunk);
    ah (B, G) is per-step work space; w_hh_t is W_hh^T packed for recmat, or w_hh_bf16 not
    NULL, packed for rc_bf16_mat (the bf16 path: w_hh_t not read). rmask (B, H) and keep
    (zoneout, kstep) as in _rows.pxd or NULL; scratch (B, H) work space for the masked
    h_{t-1} when rmask is not NULL. Returns -1 when out of memory (the bf16 products'
    scratch, allocated before the loop: nothing stepped), else 0."""
    cdef int G = 3 * H, C = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j, row
    cdef const floating* h_prev
    cdef floating* h
    cdef const floating* m = NULL if rmask == NULL else rmask + b0 * H
    cdef uint32_t* bf16_work
    if nb <= 0:
        return 0
    bf16_work = bf16_scratch(w_hh_bf16, nb, H)
    if w_hh_bf16 != NULL and bf16_work == NULL:
        return -1
    for t in range(t0, t1):
        h_prev = state_before(out, h0, t, B, H, b0)
        # ah[b0:b1] (nb, G) = (h_{t-1} [* m]) (nb, H) @ W_hh^T (H, G)
        rec_product(nb, G, H, masked_rows(scratch + b0 * H, h_prev, m, nb * H), H, w_hh_t,
                    w_hh_bf16, bf16_work, ah + b0 * G, G, False)
        for b in range(b0, b1):
            row = t * B + b
            h = out + row * H
            if t >= lengths[b]:
                memset(h, 0, H * sizeof(floating))
                continue
            _cell_forward(cache + ((t - t0) * B + b) * C, ah + b * G, b_hn,
                          h_prev + (b - b0) * H, h, H)
            if keep != NULL:
                zone_rows(h, h_prev + (b - b0) * H, zone_at(keep, kstep, t, B, H, b), H)
            if t == lengths[b] - 1:
                for j in range(H):
                    h_n[b * H + j] = h[j]
    free(bf16_work)
    return 0


cdef int _backward_rows(floating* dh, floating* cache, const floating* d_out,
                        const floating* h0, const floating* out, const floating* w_hh_p,
                        const uint16_t* w_hh_bf16, const int64_t* lengths, Py_ssize_t T,
                        Py_ssize_t B, int H, Py_ssize_t b0, Py_ssize_t b1,
                        const floating* rmask, const floating* keep, Py_ssize_t kstep,
                        floating* scratch) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh (B, H) carries d h_t between steps;
    w_hh_p is W_hh packed for recmat, or w_hh_bf16 not NULL, packed for rc_bf16_mat (the
    bf16 path). rmask, keep, kstep, scratch, the returned status as forward's."""
    cdef int G = 3 * H, C = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    cdef const floating* h_prev
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
                memset(cache + row * C, 0, C * sizeof(floating))  # dh passes through
                continue
            h_prev = state_before(out, h0, t, B, H, b)
            _cell_backward(cache + row * C, h_prev, d_out + row * H, dh + b * H,
                           zone_at(keep, kstep, t, B, H, b), H)
        # dh[b0:b1] (nb, H) += dAh_t (nb, G) @ W_hh (G, H) [* m]
        if rmask == NULL:
            rec_product(nb, H, G, cache + (t * B + b0) * C, C, w_hh_p, w_hh_bf16, bf16_work,
                        dh + b0 * H, H, True)
        else:
            rec_product(nb, H, G, cache + (t * B + b0) * C, C, w_hh_p, w_hh_bf16, bf16_work,
                        scratch + b0 * H, H, False)
            add_masked(dh + b0 * H, scratch + b0 * H, rmask + b0 * H, nb * H)
    free(bf16_work)
    return 0


cdef inline InputParts _input_parts(int H) noexcept nogil:
    """Where backward's cache [dA_r, dA_z, r * dA_n, dA_n] keeps the gradient of the input
    projection ax: W_ih rows r, z (0..2H-1) from columns 0..2H-1, rows n (2H..3H-1) from
    the last block, columns 3H..4H-1 (the recurrent side's is the first 3H columns)."""
    cdef InputParts parts
    parts.count = 2
    parts.first[0] = 0
    parts.first[1] = 2 * H
    parts.first[2] = 3 * H
    parts.column[0] = 0
    parts.column[1] = 3 * H
    return parts


def forward(floating[:, :, ::1] out, floating[:, ::1] h_n, floating[:, :, ::1] cache,
            floating[:, ::1] work,
            const floating[:, :, ::1] x, const floating[:, ::1] h0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias_x, const floating[::1] b_hn,
            const int64_t[::1] lengths not None, int num_threads, rec_mask=None,
            zoneout=None, bf16=False):
    """out (T, B, H), h_n (B, H) and cache (T, B, 4H) are written; work (B, 3H) is scratch.
    bias_x (3H,) = b_ih + [b_hr, b_hz, 0]; b_hn (H,) the last block of b_hh; lengths (B,)
    in 0..T. rec_mask (B, H), zoneout (T or 1, B, H): see the module docstring (None:
    off); bf16: the bf16 path (float32 arrays only, else ValueError)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 3 * H, C = 4 * H
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef int k, status
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* cache_p = &cache[0, 0, 0]
    cdef floating* work_p = &work[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* b_hn_p = &b_hn[0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p = data_of(rec_mask, &x[0, 0, 0])
    cdef const floating* k_p = data_of(zoneout, &x[0, 0, 0])
    cdef Py_ssize_t kstep = zoneout_step(zoneout, B, H)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* w_ih_t    # step_weights: W_hh^T packed for recmat, or both for
    cdef floating* w_hh_t    # rc_bf16_mat (bf16)
    cdef uint16_t* w_ih_bf16
    cdef uint16_t* w_hh_bf16
    if step_weights(use_bf16, False, &w_ih[0, 0], &w_hh[0, 0], I, H, G, &w_ih_t, &w_hh_t,
                    &w_ih_bf16, &w_hh_bf16) != 0:
        free(scratch)
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        # ax (T*B, G) = X @ W_ih^T + bias_x, into the first 3 blocks of the cache
        if use_bf16:
            status = bf16_project(cache_p, C, &x[0, 0, 0], w_ih_bf16, &bias_x[0], T * B, I, G,
                                  num_threads)
        else:
            status = project_inputs(cache_p, C, &x[0, 0, 0], &w_ih[0, 0], &bias_x[0], T * B,
                                    I, G, num_threads)
        if status == 0:
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                failed += _forward_rows(out_p, cache_p, work_p, h_n_p, h0_p, w_hh_t, w_hh_bf16,
                                        b_hn_p, len_p, 0, T, B, H, split(B, nt, k),
                                        split(B, nt, k + 1), m_p, k_p, kstep, scratch)
    free(w_ih_t)
    free(w_hh_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(scratch)
    if status != 0 or failed != 0:
        raise MemoryError()


def infer(floating[:, :, ::1] out, floating[:, ::1] h_n, floating[:, ::1] work,
          const floating[:, :, ::1] x, const floating[:, ::1] h0,
          const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
          const floating[::1] bias_x, const floating[::1] b_hn,
          const int64_t[::1] lengths not None, int num_threads, rec_mask=None,
          zoneout=None, bf16=False):
    """forward() without the (T, B, 4H) cache: out (T, B, H) and h_n (B, H) are written,
    bitwise equal to forward()'s. The input projection runs chunk by chunk of steps into a
    small scratch laid out like the cache; work (B, 3H) is scratch. rec_mask, zoneout,
    bf16 as forward's."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 3 * H, C = 4 * H
    cdef int k, nt, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef Py_ssize_t t0 = 0, t1
    cdef Py_ssize_t chunk = infer_chunk(T, B, C, sizeof(floating))
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* work_p = &work[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const floating* b_hn_p = &b_hn[0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p = data_of(rec_mask, &x[0, 0, 0])
    cdef const floating* k_p = data_of(zoneout, &x[0, 0, 0])
    cdef Py_ssize_t kstep = zoneout_step(zoneout, B, H)
    cdef floating* hm = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    # W_ih^T (I, G) and W_hh^T (H, G) packed for recmat, or for rc_bf16_mat (bf16)
    cdef floating* w_ih_t
    cdef floating* w_hh_t
    cdef uint16_t* w_ih_bf16
    cdef uint16_t* w_hh_bf16
    cdef floating* scratch = <floating*> rc_malloc64(chunk * B * C * sizeof(floating))
    if scratch == NULL or step_weights(use_bf16, True, &w_ih[0, 0], &w_hh[0, 0], I, H, G,
                                       &w_ih_t, &w_hh_t, &w_ih_bf16, &w_hh_bf16) != 0:
        free(scratch)
        free(hm)
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        while t0 < T and status == 0 and failed == 0:
            t1 = min(t0 + chunk, T)
            # ax of steps t0:t1 into the first 3 blocks of the scratch rows
            if use_bf16:
                status = bf16_project(scratch, C, x_p + t0 * B * I, w_ih_bf16, &bias_x[0],
                                      (t1 - t0) * B, I, G, num_threads)
            else:
                project_packed(scratch, C, x_p + t0 * B * I, w_ih_t, &bias_x[0],
                               (t1 - t0) * B, I, G, num_threads)
            if status == 0:
                nt = kernel_threads(num_threads, B, 2.0 * (t1 - t0) * B * G * H)
                for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                    failed += _forward_rows(out_p, scratch, work_p, h_n_p, h0_p, w_hh_t,
                                            w_hh_bf16, b_hn_p, len_p, t0, t1, B, H,
                                            split(B, nt, k), split(B, nt, k + 1), m_p, k_p,
                                            kstep, hm)
            t0 = t1
    free(w_hh_t)
    free(w_ih_t)
    free(w_hh_bf16)
    free(w_ih_bf16)
    free(scratch)
    free(hm)
    if status != 0 or failed != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh,
             floating[::1] db_ih, floating[::1] db_hh,
             floating[:, :, ::1] cache,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths not None, int num_threads, rec_mask=None,
             zoneout=None, bf16=False):
    """dx (T, B, I) is written. dh (B, H) holds d h_n on entry and d h0 on return
    (unchanged for a row of length 0). dw_ih, dw_hh, db_ih, db_hh are ADDED to. cache (the
    forward's) is overwritten. rec_mask, zoneout, bf16: forward's (bf16 of the forward call
    that made the cache)."""
    cdef bint use_bf16 = bf16_wanted(bf16, &x[0, 0, 0])
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 3 * H, C = 4 * H
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef int k, status = 0
    cdef int failed = 0   # the time loop's status: a reduction over the threads' slices
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* da_p = &cache[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* out_p = &out[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const floating* m_p = data_of(rec_mask, &x[0, 0, 0])
    cdef const floating* k_p = data_of(zoneout, &x[0, 0, 0])
    cdef Py_ssize_t kstep = zoneout_step(zoneout, B, H)
    cdef floating* scratch = mask_scratch(m_p, B, H)   # (B, H) masked h_{t-1}
    cdef floating* hist = NULL if m_p == NULL else masked_history(h0_p, out_p, m_p, T, B, H)
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
            failed += _backward_rows(dh_p, da_p, d_out_p, h0_p, out_p, w_hh_packed, w_hh_bf16,
                                     len_p, T, B, H, split(B, nt, k), split(B, nt, k + 1),
                                     m_p, k_p, kstep, scratch)
        # dW_hh reads h_{t-1} as the product saw it: masked when rec_mask is given
        if failed != 0:
            status = -1
        else:
            status = weight_grads(use_bf16, &dx[0, 0, 0], &dw_ih[0, 0], &db_ih[0],
                                  &dw_hh[0, 0], &db_hh[0], da_p, da_p, C, G, _input_parts(H),
                                  &x[0, 0, 0], h0_p if hist == NULL else hist,
                                  out_p if hist == NULL else hist + B * H, &w_ih[0, 0], T, B,
                                  I, H, num_threads)
    free(w_hh_packed)
    free(w_hh_bf16)
    free(scratch)
    free(hist)
    if status != 0:
        raise MemoryError()
