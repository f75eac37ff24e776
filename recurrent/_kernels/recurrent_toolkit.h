/* recurrent's kernel toolkit, C side: the public header a plugin's compiled cell includes
 * (directory: recurrent.get_include()). docs/plugins-native.md walks through its use.
 *
 * Everything here is static inline: a plugin compiles it into its own extension, so it
 * links against nothing of recurrent's at run time. The Cython side, recurrent_toolkit.pxd
 * (same directory), declares these and adds the fused float/double helpers.
 *
 * Public, and covered by RECURRENT_TOOLKIT_API_VERSION (raised whenever one of them changes
 * meaning or signature; additions raise it too, so a plugin can require a minimum):
 *
 *   Aligned scratch
 *     void* rc_malloc64(size_t bytes)        64-byte aligned, NULL when out of memory;
 *                                            release with free()
 *   Fast activations (float32; vectorisable, relative error < 1e-6, NaN in -> NaN out)
 *     float rc_expf(float), rc_sigmoidf(float), rc_tanhf(float)
 *   Packed product (every element summed in the same k order whatever the row count, so
 *   results do not depend on how rows are split between threads)
 *     RC_NR_F32, RC_NR_F64                   panel widths of the packed layout
 *     void rc_pack_f32(const float* b, int K, int N, long sk, long sn, float* P)
 *     void rc_pack_f64(...)                  Bmat (K, N), Bmat[k, n] = b[k*sk + n*sn]
 *     void rc_recmat_f32(int m, int N, int K, const float* A, long lda, const float* P,
 *                        float* C, long ldc, int accumulate)
 *     void rc_recmat_f64(...)                C (m, N) = [C +] A (m, K) @ Bmat
 *   Run-time vector code
 *     int rc_cpu_level(void)                 0 portable, 2 AVX2+FMA, 3 AVX-512
 *     RK_MULTIVERSION(NAME, (params), (args), body...)
 *                                            compiles body for AVX-512, AVX2+FMA and
 *                                            portable x86-64 and defines NAME, which calls
 *                                            the best one this CPU has (gcc/clang on
 *                                            x86-64; elsewhere the portable one only)
 *     RK_IVDEP                               before a loop: its iterations are independent
 */
#ifndef RECURRENT_TOOLKIT_H
#define RECURRENT_TOOLKIT_H

#define RECURRENT_TOOLKIT_API_VERSION 1

#include "cpu.h"
#include "fastmath.h"
#include "recmat.h"

#define RK_MULTIVERSION RC_MULTIVERSION
#define RK_IVDEP _Pragma("GCC ivdep")

#endif
