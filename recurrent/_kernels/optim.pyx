# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: extra_compile_args = -fno-math-errno
"""Fused optimizer updates over the flat parameter buffer.

Design: the model keeps every parameter in ONE contiguous float32 buffer and every
gradient in a mirror of it (recurrent/model.py), so one optimizer step is one pass over
memory: each loop reads p, g and the state once and writes p and the state once, in SIMD
(the loops live in optim_impl.h, compiled so that sqrtf vectorises). numpy needs a pass
and a temporary per operation. The arithmetic follows torch.optim (single-tensor path) so
results agree to float32 rounding.

Legend: N number of parameters (length of every buffer here).
Scalars that depend only on the step count (bias corrections, step sizes) are computed by
the Python facade (recurrent/optim.py) in double precision and passed in.
No OpenMP: these loops are memory bound and cheap next to a training step; a parallel
region would only compete with the layer kernels for the cores.
"""


cdef extern from "optim_impl.h" nogil:
    void rc_sgd_f32(float *p, const float *g, float *buf, Py_ssize_t n, float lr, float mu,
                    float damp, float wd, int nesterov, int first_step)
    void rc_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n, float b1,
                     float b2, float eps, float l2, float decay, float step_size,
                     float bc2_sqrt)
    void rc_rmsprop_f32(float *p, const float *g, float *sq, float *buf, Py_ssize_t n,
                        float lr, float alpha, float eps, float wd, float mu)


cdef Py_ssize_t _same_length(str name, float[::1] p, float[::1] a, float[::1] b,
                             float[::1] c) except -1:
    cdef Py_ssize_t n = p.shape[0]
    if a.shape[0] != n or b.shape[0] != n or c.shape[0] != n:
        raise ValueError(f"{name}: buffers differ in length")
    return n


def sgd_update(float[::1] p, float[::1] g, float[::1] buf, float lr, float momentum,
               float dampening, float weight_decay, bint nesterov, bint first_step):
    """p, g, buf: (N,). buf is the momentum buffer (untouched when momentum == 0).
    torch.optim.SGD: d = g + wd*p; buf = d on the first step else mu*buf + (1-damp)*d;
    d = d + mu*buf if nesterov else buf; p -= lr*d."""
    cdef Py_ssize_t n = _same_length("sgd_update", p, g, buf, buf)
    if n == 0:
        return
    with nogil:
        rc_sgd_f32(&p[0], &g[0], &buf[0], n, lr, momentum, dampening, weight_decay,
                   nesterov, first_step)


def adam_update(float[::1] p, float[::1] g, float[::1] m, float[::1] v, float beta1,
                float beta2, float eps, float weight_decay, bint decoupled, float decay_factor,
                float step_size, float bc2_sqrt):
    """p, g, m, v: (N,). torch.optim.Adam / AdamW.
    Adam (decoupled=False): d = g + wd*p (L2 penalty in the gradient).
    AdamW (decoupled=True): p *= decay_factor (= 1 - lr*wd) before the update, d = g.
    m += (1-b1)*(d - m); v = b2*v + (1-b2)*d*d; p -= step_size * m / (sqrt(v)/bc2_sqrt + eps)
    with step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t)."""
    cdef Py_ssize_t n = _same_length("adam_update", p, g, m, v)
    cdef float l2 = 0.0 if decoupled else weight_decay
    cdef float decay = decay_factor if decoupled else 1.0
    if n == 0:
        return
    with nogil:
        rc_adam_f32(&p[0], &g[0], &m[0], &v[0], n, beta1, beta2, eps, l2, decay, step_size,
                    bc2_sqrt)


def rmsprop_update(float[::1] p, float[::1] g, float[::1] sq, float[::1] buf, float lr,
                   float alpha, float eps, float weight_decay, float momentum):
    """p, g, sq, buf: (N,). torch.optim.RMSprop (not centered).
    d = g + wd*p; sq = alpha*sq + (1-alpha)*d*d; avg = sqrt(sq) + eps;
    momentum > 0: buf = mu*buf + d/avg, p -= lr*buf; else p -= lr*d/avg."""
    cdef Py_ssize_t n = _same_length("rmsprop_update", p, g, sq, buf)
    if n == 0:
        return
    with nogil:
        rc_rmsprop_f32(&p[0], &g[0], &sq[0], &buf[0], n, lr, alpha, eps, weight_decay,
                       momentum)
