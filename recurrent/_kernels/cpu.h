/* Run-time choice between code variants compiled for different x86-64 vector extensions.
 *
 * A function is compiled three times (RC_MULTIVERSION below): for AVX-512, for AVX2+FMA
 * and portable, and a dispatcher calls the best one this CPU supports. So one build runs
 * everywhere and still uses the widest vectors available. gcc/clang on x86-64 only; other
 * compilers and machines get the portable version.
 */
#ifndef RECURRENT_CPU_H
#define RECURRENT_CPU_H

#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(RECURRENT_PORTABLE_ONLY)
#define RC_HAVE_X86_VARIANTS 1
#define RC_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define RC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RC_TARGET_VNNI512 \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512vnni,avx2,fma")))
/* AVX-VNNI (vpdpbusd on 256-bit vectors, VEX encoded): compilers know it from GCC 11 and
 * clang 12; older ones build without that int8 variant */
#if (defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11)
#define RC_HAVE_AVXVNNI 1
#define RC_TARGET_AVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#endif
/* AVX512_BF16 (vdpbf16ps, vcvtneps2bf16): compilers know it from GCC 10 and clang 9 */
#if (defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && __GNUC__ >= 10)
#define RC_HAVE_BF16 1
#define RC_TARGET_BF16 \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma")))
#endif
#endif

/* Kernel scratch and packed weights start on a 64-byte boundary (malloc gives 16): a
 * 64-byte vector load from a misaligned panel spans two cache lines. Freed by free(). */
static inline void* rc_malloc64(size_t bytes)
{
    void* p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

/* 0 portable, 2 AVX2+FMA, 3 AVX-512: the best this CPU supports, lowered (never raised) by
 * RECURRENT_VECTOR_LEVEL=avx2|avx_vnni|portable, which is how the tests exercise every
 * variant (avx_vnni: the AVX2 level, with the int8 products' AVX-VNNI variant). */
static inline int rc_cpu_level_detect(void)
{
    int level = 0;
#ifdef RC_HAVE_X86_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        level = 3;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        level = 2;
#endif
    const char* wanted = getenv("RECURRENT_VECTOR_LEVEL");
    if (wanted && strcmp(wanted, "portable") == 0)
        level = 0;
    else if (wanted && (strcmp(wanted, "avx2") == 0 || strcmp(wanted, "avx_vnni") == 0)
             && level > 2)
        level = 2;
    return level;
}

static int rc_cpu_level_cached = -1;
static int rc_cpu_int8_cached = -1;
static int rc_cpu_bf16_cached = -1;

static inline int rc_cpu_level(void)
{
    int level = rc_cpu_level_cached;
    if (level < 0)  /* benign race: every thread computes the same value */
        rc_cpu_level_cached = level = rc_cpu_level_detect();
    return level;
}

/* The int8 products' variant (qmat.h): RC_Q_VNNI512 where the AVX-512 level is in use and
 * the CPU has AVX512_VNNI; else RC_Q_AVXVNNI where the AVX2 level or above is in use, the
 * CPU has AVX-VNNI and RECURRENT_VECTOR_LEVEL is not avx2 (which keeps the plain AVX2
 * variant, as on CPUs without any VNNI); else RC_Q_AVX2 from the AVX2 level; else
 * RC_Q_PORTABLE. */
enum { RC_Q_PORTABLE = 0, RC_Q_AVX2 = 1, RC_Q_AVXVNNI = 2, RC_Q_VNNI512 = 3 };

static inline int rc_cpu_int8(void)
{
    int path = rc_cpu_int8_cached;
    if (path < 0) {
        int level = rc_cpu_level();
        path = level >= 2 ? RC_Q_AVX2 : RC_Q_PORTABLE;
#ifdef RC_HAVE_X86_VARIANTS
        const char* wanted = getenv("RECURRENT_VECTOR_LEVEL");
        if (level == 3 && __builtin_cpu_supports("avx512vnni"))
            path = RC_Q_VNNI512;
#ifdef RC_HAVE_AVXVNNI
        else if (level >= 2 && __builtin_cpu_supports("avxvnni")
                 && !(wanted && strcmp(wanted, "avx2") == 0))
            path = RC_Q_AVXVNNI;
#endif
        (void)wanted;
#endif
        rc_cpu_int8_cached = path;
    }
    return path;
}

/* The bf16 products' variant (bf16mat.h): 1 (AVX512_BF16) where the AVX-512 level is in
 * use (so RECURRENT_VECTOR_LEVEL=avx2 or portable turns it off), the CPU has AVX512_BF16
 * and the build has the variant; else 0 (portable C, bitwise the same results). */
static inline int rc_cpu_bf16(void)
{
    int path = rc_cpu_bf16_cached;
    if (path < 0) {
        path = 0;
#ifdef RC_HAVE_BF16
        if (rc_cpu_level() == 3 && __builtin_cpu_supports("avx512bf16"))
            path = 1;
#endif
        rc_cpu_bf16_cached = path;
    }
    return path;
}

/* Define NAME_avx512, NAME_avx2, NAME_portable with one body, and the dispatcher NAME.
 * PARAMS is the parenthesised parameter list, ARGS the parenthesised argument names. */
#ifdef RC_HAVE_X86_VARIANTS
#define RC_MULTIVERSION(NAME, PARAMS, ARGS, ...)                                          \
    RC_TARGET_AVX512 static void NAME##_avx512 PARAMS { __VA_ARGS__ }                    \
    RC_TARGET_AVX2 static void NAME##_avx2 PARAMS { __VA_ARGS__ }                        \
    static void NAME##_portable PARAMS { __VA_ARGS__ }                                   \
    static inline void NAME PARAMS                                                       \
    {                                                                                    \
        int level = rc_cpu_level();                                                      \
        if (level == 3) NAME##_avx512 ARGS;                                              \
        else if (level == 2) NAME##_avx2 ARGS;                                           \
        else NAME##_portable ARGS;                                                       \
    }
#else
#define RC_MULTIVERSION(NAME, PARAMS, ARGS, ...)                                          \
    static void NAME PARAMS { __VA_ARGS__ }
#endif

#endif
