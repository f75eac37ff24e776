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

Threads: as in lstm.pyx.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._activations cimport sigmoid, tanh_
from ._gates cimport rc_gru_backward_f32, rc_gru_forward_f32
from ._recmat cimport pack, packed_len, recmat
from ._rows cimport (add_hidden_grads, add_input_grads, gate_block, hoist_threads,
                     num_blocks, project_rows, row_block, split)


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
                                floating* dh, int H) noexcept nogil:
    # a (C,): [r, z, hn, n] in, [dA_r, dA_z, r * dA_n, dA_n] out; dh (H,): d h_t in,
    # the direct part z * d h_t of d h_{t-1} out (the caller adds the W_hh path)
    cdef int j
    cdef floating r, z, hn, n, dhj, dn
    if floating is float:
        rc_gru_backward_f32(a, h_prev, d_out, dh, H)
    else:
        for j in range(H):
            r = a[j]
            z = a[H + j]
            hn = a[2 * H + j]
            n = a[3 * H + j]
            dhj = d_out[j] + dh[j]
            # h_t = (1 - z) * n + z * h_{t-1};  n = tanh(ax_n + r * hn)
            dn = dhj * (1 - z) * (1 - n * n)
            a[j] = dn * hn * r * (1 - r)
            a[H + j] = dhj * (h_prev[j] - n) * z * (1 - z)
            a[2 * H + j] = dn * r
            a[3 * H + j] = dn
            dh[j] = dhj * z


cdef void _forward_rows(floating* out, floating* cache, floating* ah, floating* h_n,
                        const floating* h0, const floating* w_hh_t, const floating* b_hn,
                        const int64_t* lengths, Py_ssize_t T, Py_ssize_t B, int H,
                        Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The time loop for batch rows b0:b1; ah (B, G) is per-step work space; w_hh_t is
    W_hh^T packed for recmat."""
    cdef int G = 3 * H, C = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j, row
    cdef const floating* h_prev
    cdef floating* h
    if nb <= 0:
        return
    for t in range(T):
        if t == 0:
            h_prev = h0 + b0 * H
        else:
            h_prev = out + ((t - 1) * B + b0) * H
        # ah[b0:b1] (nb, G) = h_{t-1} (nb, H) @ W_hh^T (H, G)
        recmat(nb, G, H, h_prev, H, w_hh_t, ah + b0 * G, G, False)
        for b in range(b0, b1):
            row = t * B + b
            h = out + row * H
            if t >= lengths[b]:
                memset(h, 0, H * sizeof(floating))
                continue
            _cell_forward(cache + row * C, ah + b * G, b_hn, h_prev + (b - b0) * H, h, H)
            if t == lengths[b] - 1:
                for j in range(H):
                    h_n[b * H + j] = h[j]


cdef void _backward_rows(floating* dh, floating* cache, const floating* d_out,
                         const floating* h0, const floating* out, const floating* w_hh_p,
                         const int64_t* lengths, Py_ssize_t T, Py_ssize_t B, int H,
                         Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh (B, H) carries d h_t between steps;
    w_hh_p is W_hh packed for recmat."""
    cdef int G = 3 * H, C = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    cdef const floating* h_prev
    if nb <= 0:
        return
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            row = t * B + b
            if t >= lengths[b]:
                memset(cache + row * C, 0, C * sizeof(floating))  # dh passes through
                continue
            if t == 0:
                h_prev = h0 + b * H
            else:
                h_prev = out + (row - B) * H
            _cell_backward(cache + row * C, h_prev, d_out + row * H, dh + b * H, H)
        # dh[b0:b1] (nb, H) += dAh_t (nb, G) @ W_hh (G, H)
        recmat(nb, H, G, cache + (t * B + b0) * C, C, w_hh_p, dh + b0 * H, H, True)


def forward(floating[:, :, ::1] out, floating[:, ::1] h_n, floating[:, :, ::1] cache,
            floating[:, ::1] work,
            const floating[:, :, ::1] x, const floating[:, ::1] h0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias_x, const floating[::1] b_hn,
            const int64_t[::1] lengths, int num_threads):
    """out (T, B, H), h_n (B, H) and cache (T, B, 4H) are written; work (B, 3H) is scratch.
    bias_x (3H,) = b_ih + [b_hr, b_hz, 0]; b_hn (H,) the last block of b_hh."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 3 * H, C = 4 * H
    cdef int nt = <int> max(1, min(num_threads, B))
    cdef Py_ssize_t rb = row_block(T * B), nrb = num_blocks(T * B, rb)
    cdef int k
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* cache_p = &cache[0, 0, 0]
    cdef floating* work_p = &work[0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* w_ih_p = &w_ih[0, 0]
    cdef const floating* w_hh_p = &w_hh[0, 0]
    cdef const floating* bias_p = &bias_x[0]
    cdef const floating* b_hn_p = &b_hn[0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_t = <floating*> malloc(packed_len(H, G, w_hh_p) * sizeof(floating))
    cdef floating* w_ih_t = <floating*> malloc(packed_len(I, G, w_ih_p) * sizeof(floating))
    if w_hh_t == NULL or w_ih_t == NULL:
        free(w_hh_t)
        free(w_ih_t)
        raise MemoryError()
    with nogil:
        pack(w_hh_p, H, G, 1, H, w_hh_t)  # W_hh^T
        pack(w_ih_p, I, G, 1, I, w_ih_t)  # W_ih^T
        for k in prange(nrb, num_threads=hoist_threads(num_threads, nrb, 2.0 * T * B * I * G),
                        schedule="dynamic", chunksize=1):
            project_rows(cache_p, C, x_p, I, w_ih_t, G, bias_p, k * rb, min((k + 1) * rb, T * B))
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _forward_rows(out_p, cache_p, work_p, h_n_p, h0_p, w_hh_t, b_hn_p, len_p,
                          T, B, H, split(B, nt, k), split(B, nt, k + 1))
    free(w_hh_t)
    free(w_ih_t)


cdef inline void _input_grads_rows(floating* dw_ih, floating* db_ih, const floating* da,
                                   const floating* x, int I, int H, Py_ssize_t TB,
                                   int g0, int g1) noexcept nogil:
    """Gate rows g0:g1 of dW_ih and db_ih. Rows r, z (g < 2H) read dA at column g; rows n
    (g >= 2H) read the dA_n block at column g + H."""
    cdef int C = 4 * H
    cdef int a0 = g0, a1 = min(g1, 2 * H)
    cdef int n0 = max(g0, 2 * H), n1 = g1
    if a1 > a0:
        add_input_grads(dw_ih + a0 * I, db_ih + a0, da + a0, C, a1 - a0, x, I, TB)
    if n1 > n0:
        add_input_grads(dw_ih + n0 * I, db_ih + n0, da + n0 + H, C, n1 - n0, x, I, TB)


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh,
             floating[::1] db_ih, floating[::1] db_hh,
             floating[:, :, ::1] cache,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths, int num_threads):
    """dx (T, B, I) is written. dh (B, H) holds d h_n on entry and d h0 on return.
    dw_ih, dw_hh, db_ih, db_hh are ADDED to. cache (the forward's) is overwritten."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 3 * H, C = 4 * H
    cdef int nt = <int> max(1, min(num_threads, B))
    cdef Py_ssize_t rb = row_block(T * B), nrb = num_blocks(T * B, rb)
    cdef Py_ssize_t gb = gate_block(G), ngb = num_blocks(G, gb)
    cdef Py_ssize_t k, r0, r1, g0, g1
    cdef floating* dx_p = &dx[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* dw_ih_p = &dw_ih[0, 0]
    cdef floating* dw_hh_p = &dw_hh[0, 0]
    cdef floating* db_ih_p = &db_ih[0]
    cdef floating* db_hh_p = &db_hh[0]
    cdef floating* da_p = &cache[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* out_p = &out[0, 0, 0]
    cdef const floating* w_ih_p = &w_ih[0, 0]
    cdef const floating* w_hh_p = &w_hh[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_packed = <floating*> malloc(packed_len(G, H, w_hh_p) * sizeof(floating))
    # W_ih as is, in two parts: rows r, z (2H) and rows n (H), matching dA's blocks 0-1, 3
    cdef floating* w_rz_packed = <floating*> malloc(packed_len(2 * H, I, w_ih_p) * sizeof(floating))
    cdef floating* w_n_packed = <floating*> malloc(packed_len(H, I, w_ih_p) * sizeof(floating))
    if w_hh_packed == NULL or w_rz_packed == NULL or w_n_packed == NULL:
        free(w_hh_packed)
        free(w_rz_packed)
        free(w_n_packed)
        raise MemoryError()
    with nogil:
        pack(w_hh_p, G, H, H, 1, w_hh_packed)  # W_hh as is
        pack(w_ih_p, 2 * H, I, I, 1, w_rz_packed)
        pack(w_ih_p + 2 * H * I, H, I, I, 1, w_n_packed)
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _backward_rows(dh_p, da_p, d_out_p, h0_p, out_p, w_hh_packed, len_p, T, B, H,
                           split(B, nt, <int> k), split(B, nt, <int> k + 1))
        for k in prange(nrb + ngb,
                        num_threads=hoist_threads(num_threads, nrb + ngb,
                                                  2.0 * T * B * G * (2 * I + H)),
                        schedule="dynamic", chunksize=1):
            if k < nrb:
                # dx[r0:r1] (n, I) = dA_rz (n, 2H) @ W_ih[:2H] + dA_n (n, H) @ W_ih[2H:]
                r0 = k * rb
                r1 = min(r0 + rb, T * B)
                recmat(<int> (r1 - r0), I, 2 * H, da_p + r0 * C, C, w_rz_packed, dx_p + r0 * I,
                       I, False)
                recmat(<int> (r1 - r0), I, H, da_p + r0 * C + 3 * H, C, w_n_packed,
                       dx_p + r0 * I, I, True)
            else:
                g0 = (k - nrb) * gb
                g1 = min(g0 + gb, G)
                _input_grads_rows(dw_ih_p, db_ih_p, da_p, x_p, I, H, T * B, <int> g0, <int> g1)
                add_hidden_grads(dw_hh_p + g0 * H, db_hh_p + g0, da_p + g0, C, <int> (g1 - g0),
                                 h0_p, out_p, H, T, B)
    free(w_hh_packed)
    free(w_rz_packed)
    free(w_n_packed)
