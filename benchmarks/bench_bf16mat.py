"""The bf16 product (bf16mat.h, vdpbf16ps) beside float32 ones, all on one thread.

    pytest benchmarks/bench_bf16mat.py --benchmark-columns=median,iqr,rounds \
        --benchmark-sort=name

C (m, N) = A (m, K) @ B (K, N). Sides: "bf16" is recurrent._kernels.bf16.matmul_packed
(A rounded to bf16 as it is read, B packed once outside the timed call); "sgemm" is numpy's
float32 @ (the BLAS sgemm, limited to one thread by threadpoolctl); "recmat" is the float32
recurrent product (recmat.h) over a B packed once. Sizes: (64, 1024, 256), (128, 2048, 512)
and (32, 512, 128) are recurrent steps (batch rows x 4H gates x H), (6400, 1024, 256) a
hoisted input projection or weight gradient. extra_info["gflop"] is 2 m N K / 1e9. On a CPU
without AVX512_BF16 the bf16 side is the portable C variant (slow: a correctness fallback).
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from recurrent._kernels import bf16

SIZES = [pytest.param(s, id="m{}-N{}-K{}".format(*s))
         for s in ((32, 512, 128), (64, 1024, 256), (128, 2048, 512), (6400, 1024, 256))]


def _problem(size):
    m, n, k = size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k))
    return a, b, np.empty((m, n), np.float32)


def _rounds(size):
    m, n, k = size
    return 20 if 2 * m * n * k > 1e9 else 200


@pytest.mark.parametrize("size", SIZES)
def test_bf16(benchmark, size):
    a, b, out = _problem(size)
    packed = bf16.pack(b)
    benchmark.extra_info["gflop"] = 2 * a.size * b.shape[1] / 1e9
    benchmark.extra_info["path"] = bf16.instruction_path()
    benchmark.pedantic(bf16.matmul_packed, args=(a, packed, b.shape[1], out),
                       rounds=_rounds(size), warmup_rounds=2)


@pytest.mark.parametrize("size", SIZES)
def test_sgemm(benchmark, size):
    a, b, out = _problem(size)
    benchmark.extra_info["gflop"] = 2 * a.size * b.shape[1] / 1e9
    with threadpool_limits(limits=1, user_api="blas"):
        benchmark.pedantic(np.matmul, args=(a, b), kwargs={"out": out},
                           rounds=_rounds(size), warmup_rounds=2)


@pytest.mark.parametrize("size", SIZES)
def test_recmat(benchmark, size):
    a, b, out = _problem(size)
    packed = bf16.pack_f32(b)
    benchmark.extra_info["gflop"] = 2 * a.size * b.shape[1] / 1e9
    benchmark.pedantic(bf16.recmat_f32, args=(a, packed, b.shape[1], out),
                       rounds=_rounds(size), warmup_rounds=2)
