# The bf16 products (bf16mat.h): B packed once into bf16 pairs, A rounded as it is read,
# float32 sums.
from libc.stdint cimport uint16_t, uint32_t


cdef extern from "bf16mat.h" nogil:
    int RC_BF16_NR
    int rc_cpu_bf16()
    uint16_t rc_bf16_round(float f)
    long rc_bf16_packed_len(int K, int N)
    void rc_bf16_pack(const float* b, long ld_k, long ld_n, int K, int N, uint16_t* P)
    int rc_bf16_mat(int m, int N, int K, const float* A, long lda, const uint16_t* P,
                    float* C, long ldc, int accumulate)
    long rc_bf16_scratch_len(int m, int K)
    void rc_bf16_mat_scratch(int m, int N, int K, const float* A, long lda,
                             const uint16_t* P, float* C, long ldc, int accumulate,
                             uint32_t* a)
