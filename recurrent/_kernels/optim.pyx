# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Fused optimizer updates over the flat parameter buffer.

Design: the model keeps every parameter in ONE contiguous float32 buffer and every
gradient in a mirror of it (recurrent/model.py), so one optimizer step is one pass over
memory. numpy would need 6-10 passes and temporaries for Adam; these loops read p, g and
the state once and write p and the state once. The arithmetic and its order follow
torch.optim (single-tensor path) so results agree to float32 rounding.

Legend: N number of parameters (length of every buffer here).
Scalars that depend only on the step count (bias corrections, step sizes) are computed by
the Python facade (recurrent/optim.py) in double precision and passed in.
No OpenMP: these loops are memory bound and cheap next to a training step; a parallel
region would only compete with the layer kernels for the two cores.
"""
from libc.math cimport sqrtf


def sgd_update(float[::1] p, float[::1] g, float[::1] buf, float lr, float momentum,
               float dampening, float weight_decay, bint nesterov, bint first_step):
    """p, g, buf: (N,). buf is the momentum buffer (ignored when momentum == 0).
    torch.optim.SGD: d = g + wd*p; buf = d on the first step else mu*buf + (1-damp)*d;
    d = d + mu*buf if nesterov else buf; p -= lr*d."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef float d
    if g.shape[0] != n or buf.shape[0] != n:
        raise ValueError("sgd_update: buffers differ in length")
    with nogil:
        for i in range(n):
            d = g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            if momentum != 0:
                if first_step:
                    buf[i] = d
                else:
                    buf[i] = momentum * buf[i] + (1 - dampening) * d
                if nesterov:
                    d = d + momentum * buf[i]
                else:
                    d = buf[i]
            p[i] = p[i] - lr * d


def adam_update(float[::1] p, float[::1] g, float[::1] m, float[::1] v, float beta1,
                float beta2, float eps, float weight_decay, bint decoupled, float decay_factor,
                float step_size, float bc2_sqrt):
    """p, g, m, v: (N,). torch.optim.Adam / AdamW.
    Adam (decoupled=False): d = g + wd*p (L2 penalty in the gradient).
    AdamW (decoupled=True): p *= decay_factor (= 1 - lr*wd) before the update, d = g.
    m += (1-b1)*(d - m); v = b2*v + (1-b2)*d*d; p -= step_size * m / (sqrt(v)/bc2_sqrt + eps)
    with step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t)."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef float d, denom
    if g.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError("adam_update: buffers differ in length")
    with nogil:
        for i in range(n):
            d = g[i]
            if decoupled:
                p[i] = p[i] * decay_factor
            elif weight_decay != 0:
                d = d + weight_decay * p[i]
            m[i] = m[i] + (1 - beta1) * (d - m[i])
            v[i] = beta2 * v[i] + (1 - beta2) * d * d
            denom = sqrtf(v[i]) / bc2_sqrt + eps
            p[i] = p[i] - step_size * (m[i] / denom)


def rmsprop_update(float[::1] p, float[::1] g, float[::1] sq, float[::1] buf, float lr,
                   float alpha, float eps, float weight_decay, float momentum):
    """p, g, sq, buf: (N,). torch.optim.RMSprop (not centered).
    d = g + wd*p; sq = alpha*sq + (1-alpha)*d*d; avg = sqrt(sq) + eps;
    momentum > 0: buf = mu*buf + d/avg, p -= lr*buf; else p -= lr*d/avg."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef float d, avg
    if g.shape[0] != n or sq.shape[0] != n or buf.shape[0] != n:
        raise ValueError("rmsprop_update: buffers differ in length")
    with nogil:
        for i in range(n):
            d = g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            sq[i] = alpha * sq[i] + (1 - alpha) * d * d
            avg = sqrtf(sq[i]) + eps
            if momentum != 0:
                buf[i] = momentum * buf[i] + d / avg
                p[i] = p[i] - lr * buf[i]
            else:
                p[i] = p[i] - lr * (d / avg)
