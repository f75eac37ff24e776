"""Gradient clipping kernels over one flat contiguous array at a time (recurrent/clip.py
combines them over many arrays). Sums are accumulated in double whatever the array dtype."""
from cython cimport floating
from libc.math cimport fabs, pow, INFINITY


def norm_part(const floating[::1] g, double norm_type):
    """sum(g**2) for norm_type 2, max|g| for inf, else sum(|g|**norm_type): the array's
    contribution to a global norm, before the final root. NaN anywhere gives NaN."""
    cdef Py_ssize_t j, n = g.shape[0]
    cdef double acc = 0, v
    with nogil:
        if norm_type == 2:
            for j in range(n):
                v = g[j]
                acc += v * v
        elif norm_type == INFINITY:
            for j in range(n):
                v = fabs(g[j])
                # NaN wins and then sticks: every comparison with NaN is false
                if v > acc or v != v:
                    acc = v
        elif norm_type == 1:
            for j in range(n):
                acc += fabs(g[j])
        else:
            for j in range(n):
                acc += pow(fabs(g[j]), norm_type)
    return acc


def scale(floating[::1] g, double factor):
    """g *= factor, in place."""
    cdef Py_ssize_t j
    cdef floating f = <floating> factor
    with nogil:
        for j in range(g.shape[0]):
            g[j] = g[j] * f


def clamp(floating[::1] g, double limit):
    """g = clip(g, -limit, limit), in place; NaN stays NaN."""
    cdef Py_ssize_t j
    cdef floating hi = <floating> limit
    cdef floating v
    with nogil:
        for j in range(g.shape[0]):
            v = g[j]
            if v > hi:
                g[j] = hi
            elif v < -hi:
                g[j] = -hi
