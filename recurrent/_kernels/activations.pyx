"""Element-wise gate nonlinearities exactly as the cell kernels compute them (float32: the
vectorisable versions of fastmath.h; float64: libm), exposed so tests can measure them."""
from cython cimport floating

from ._activations cimport sigmoid as _sigmoid, tanh_ as _tanh
from ._gates cimport rc_cpu_level


def vector_level():
    """Which compiled variant the gate and recurrent-product kernels run on this CPU:
    "avx512", "avx2" or "portable"."""
    return {3: "avx512", 2: "avx2"}.get(rc_cpu_level(), "portable")


def sigmoid(const floating[::1] x, floating[::1] out):
    """out[:] = sigmoid(x) (1-D contiguous arrays of one dtype)."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(x.shape[0]):
            out[j] = _sigmoid(x[j])


def tanh(const floating[::1] x, floating[::1] out):
    """out[:] = tanh(x) (1-D contiguous arrays of one dtype)."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(x.shape[0]):
            out[j] = _tanh(x[j])
