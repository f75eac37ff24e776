"""Elman RNN kernels (tanh or relu): the whole sequence forward and backward, one call each.

Legend: T time steps, B batch rows, I input size, H hidden size (G = H: one gate block).

Forward, for step t of a valid row (t < lengths[b]):
    h_t = act(x_t W_ih^T + (b_ih + b_hh) + h_{t-1} W_hh^T)
The input projection for all T steps is one GEMM straight into `out` before the loop; each
step adds one GEMM and applies act in place. Rows past their length keep h and output zeros.
The only cache is `out` itself: act'(a) is a function of h (1 - h^2 for tanh, h > 0 for
relu). Backward needs one work buffer dA (T, B, H).

Threads: as in lstm.pyx (projection by rows, time loop by batch slices in one parallel
region, weight gradients by rows after the loop).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from ._activations cimport relu, tanh_
from ._blas cimport gemm
from ._rows cimport add_hidden_grads, add_input_grads, project_rows, split


cdef void _forward_rows(floating* out, floating* h_n, const floating* h0,
                        const floating* w_hh, const int64_t* lengths, bint use_relu,
                        Py_ssize_t T, Py_ssize_t B, int H,
                        Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The time loop for batch rows b0:b1; out[t] holds the projected inputs on entry."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j
    cdef const floating* h_prev
    cdef floating* h
    if nb <= 0:
        return
    for t in range(T):
        if t == 0:
            h_prev = h0 + b0 * H
        else:
            h_prev = out + ((t - 1) * B + b0) * H
        # a[t, b0:b1] (nb, H) += h_{t-1} (nb, H) @ W_hh^T (H, H)
        gemm(False, True, nb, H, H, 1, h_prev, H, w_hh, H, 1, out + (t * B + b0) * H, H)
        for b in range(b0, b1):
            h = out + (t * B + b) * H
            if t >= lengths[b]:
                memset(h, 0, H * sizeof(floating))
                continue
            if use_relu:
                for j in range(H):
                    h[j] = relu(h[j])
            else:
                for j in range(H):
                    h[j] = tanh_(h[j])
            if t == lengths[b] - 1:
                memcpy(h_n + b * H, h, H * sizeof(floating))


cdef void _backward_rows(floating* dh, floating* da, const floating* d_out,
                         const floating* out, const floating* w_hh, const int64_t* lengths,
                         bint use_relu, Py_ssize_t T, Py_ssize_t B, int H,
                         Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh (B, H) carries d h_t between steps."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j, row
    cdef floating* d
    cdef const floating* h
    cdef const floating* g
    cdef floating* dhb
    if nb <= 0:
        return
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
            # h_t = act(a_t)
            if use_relu:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) if h[j] > 0 else 0
                    dhb[j] = 0
            else:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) * (1 - h[j] * h[j])
                    dhb[j] = 0
        # dh[b0:b1] (nb, H) += dA_t (nb, H) @ W_hh (H, H)
        gemm(False, False, nb, H, H, 1, da + (t * B + b0) * H, H, w_hh, H, 1, dh + b0 * H, H)


def forward(floating[:, :, ::1] out, floating[:, ::1] h_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias, const int64_t[::1] lengths, bint use_relu,
            int num_threads):
    """out (T, B, H) and h_n (B, H) are written; bias (H,) = b_ih + b_hh; lengths in 1..T."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = <int> max(1, min(num_threads, B))
    cdef int nt_proj = <int> max(1, min(num_threads, T * B))
    cdef int k
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* w_ih_p = &w_ih[0, 0]
    cdef const floating* w_hh_p = &w_hh[0, 0]
    cdef const floating* bias_p = &bias[0]
    cdef const int64_t* len_p = &lengths[0]
    with nogil:
        for k in prange(nt_proj, num_threads=nt_proj, schedule="static", chunksize=1):
            project_rows(out_p, H, x_p, I, w_ih_p, H, bias_p,
                         split(T * B, nt_proj, k), split(T * B, nt_proj, k + 1))
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _forward_rows(out_p, h_n_p, h0_p, w_hh_p, len_p, use_relu, T, B, H,
                          split(B, nt, k), split(B, nt, k + 1))


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[:, :, ::1] da,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths, bint use_relu, int num_threads):
    """dx (T, B, I) is written; da (T, B, H) is work space. dh (B, H) holds d h_n on entry
    and d h0 on return. dw_ih, dw_hh and db (H,: the gradient of b_ih and b_hh alike) are
    ADDED to."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = <int> max(1, min(num_threads, B))
    cdef int nt_post = <int> max(1, min(num_threads, H))
    cdef int k, g0, g1
    cdef Py_ssize_t r0, r1
    cdef floating* dx_p = &dx[0, 0, 0]
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* dw_ih_p = &dw_ih[0, 0]
    cdef floating* dw_hh_p = &dw_hh[0, 0]
    cdef floating* db_p = &db[0]
    cdef floating* da_p = &da[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* x_p = &x[0, 0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* out_p = &out[0, 0, 0]
    cdef const floating* w_ih_p = &w_ih[0, 0]
    cdef const floating* w_hh_p = &w_hh[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _backward_rows(dh_p, da_p, d_out_p, out_p, w_hh_p, len_p, use_relu, T, B, H,
                           split(B, nt, k), split(B, nt, k + 1))
        for k in prange(nt_post, num_threads=nt_post, schedule="static", chunksize=1):
            # dx[r0:r1] (n, I) = dA[r0:r1] (n, H) @ W_ih (H, I)
            r0 = split(T * B, nt_post, k)
            r1 = split(T * B, nt_post, k + 1)
            gemm(False, False, <int> (r1 - r0), I, H, 1, da_p + r0 * H, H, w_ih_p, I, 0,
                 dx_p + r0 * I, I)
            g0 = <int> split(H, nt_post, k)
            g1 = <int> split(H, nt_post, k + 1)
            add_input_grads(dw_ih_p + g0 * I, db_p + g0, da_p + g0, H, g1 - g0, x_p, I, T * B)
            add_hidden_grads(dw_hh_p + g0 * H, NULL, da_p + g0, H, g1 - g0, h0_p, out_p, H,
                             T, B)
