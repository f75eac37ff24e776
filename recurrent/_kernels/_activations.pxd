# Gate nonlinearities for the kernels: float32 through the vectorisable versions in
# fastmath.h, float64 through libm (float64 is for gradient checks, where exactness matters).
from cython cimport floating
from libc.math cimport exp, tanh


cdef extern from "fastmath.h" nogil:
    float rc_expf(float x)
    float rc_sigmoidf(float x)
    float rc_tanhf(float x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    if floating is float:
        return rc_sigmoidf(x)
    else:
        return 1.0 / (1.0 + exp(-x))


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return rc_tanhf(x)
    else:
        return tanh(x)


cdef inline floating relu(floating x) noexcept nogil:
    # written so that NaN passes through (as torch.relu does)
    return 0 if x < 0 else x
