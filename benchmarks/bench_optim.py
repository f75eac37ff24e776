"""One optimizer step over the flat buffer: the fused kernels beside numpy and torch.optim.

    pytest benchmarks/bench_optim.py --benchmark-columns=median,iqr --benchmark-sort=name

Sizes: 300k parameters is char-lm's default model (embedding 64, LSTM 256, head ~65); 3M a
large two-layer model. "numpy" is the same Adam written as in-place numpy operations on
preallocated buffers (the best plain numpy can do: one pass per operation); it is what the
fused loop has to beat to pay for its C. Every side runs on one thread (torch's too).
"""
import numpy as np
import pytest

from recurrent.optim import make_optimizer
from recurrent_plugins.bench import torch_threads

SIZES = [300_000, 3_000_000]
IDS = [f"N{n // 1000}k" for n in SIZES]
NAMES = ["sgd", "adam", "adamw", "rmsprop"]


def _buffers(n):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(n).astype(np.float32),
            rng.standard_normal(n).astype(np.float32))


@pytest.mark.parametrize("n", SIZES, ids=IDS)
@pytest.mark.parametrize("name", NAMES)
def test_fused(benchmark, name, n):
    params, grads = _buffers(n)
    opt = make_optimizer(name, params, grads, lr=1e-4, momentum=0.9)
    benchmark(opt.step)


@pytest.mark.parametrize("n", SIZES, ids=IDS)
def test_numpy_adam(benchmark, n):
    p, g = _buffers(n)
    m, v, tmp = np.zeros_like(p), np.zeros_like(p), np.empty_like(p)
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        np.multiply(m, 0.9, out=m)
        np.multiply(g, 0.1, out=tmp)
        np.add(m, tmp, out=m)
        np.multiply(v, 0.999, out=v)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 0.001, out=tmp)
        np.add(v, tmp, out=v)
        np.sqrt(v, out=tmp)
        np.divide(tmp, np.sqrt(1 - 0.999 ** t), out=tmp)
        np.add(tmp, 1e-8, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, 1e-4 / (1 - 0.9 ** t), out=tmp)
        np.subtract(p, tmp, out=p)

    benchmark(step)


@pytest.mark.parametrize("n", SIZES, ids=IDS)
@pytest.mark.parametrize("name", NAMES)
def test_torch(benchmark, name, n):
    torch = pytest.importorskip("torch", reason="torch not installed")
    params, grads = _buffers(n)
    p = torch.nn.Parameter(torch.from_numpy(params))
    p.grad = torch.from_numpy(grads)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop}[name]
    kwargs = {"momentum": 0.9} if name in ("sgd", "rmsprop") else {}
    opt = cls([p], lr=1e-4, **kwargs)
    with torch_threads(1):  # as the fused kernels (no OpenMP) and the numpy Adam
        benchmark(opt.step)
