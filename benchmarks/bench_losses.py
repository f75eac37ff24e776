"""Loss value+gradient: the built-in numpy losses beside the plain reference and torch.

    pytest benchmarks/bench_losses.py --benchmark-columns=median,iqr --benchmark-sort=name

Sizes (N rows = T*B, V classes): (2048, 65) is char-lm's default batch (T=64, B=32, ~65
characters); the others show how cross_entropy scales with the vocabulary. Used to decide
whether cross_entropy needs a compiled kernel (it does not while it stays a few percent of a
training step).
"""
import numpy as np
import pytest

from recurrent import reference
from recurrent.plugins import get_loss
from recurrent_plugins.bench import torch_threads

SIZES = [(2048, 65), (6400, 256), (2048, 10000)]
IDS = [f"N{n}-V{v}" for n, v in SIZES]


def _case(n, v):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, v)).astype(np.float32), rng.integers(0, v, size=n)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_cross_entropy_recurrent(benchmark, size):
    logits, targets = _case(*size)
    loss = get_loss("cross_entropy")
    benchmark(loss.value_and_grad, logits, targets)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_cross_entropy_reference(benchmark, size):
    logits, targets = _case(*size)
    benchmark(reference.cross_entropy, logits, targets)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_cross_entropy_torch(benchmark, size):
    torch = pytest.importorskip("torch", reason="torch not installed")
    logits, targets = _case(*size)
    x = torch.from_numpy(logits).requires_grad_()
    t = torch.from_numpy(targets)

    def step():
        x.grad = None
        torch.nn.functional.cross_entropy(x, t).backward()
        return x.grad

    with torch_threads(1):  # our numpy losses run on one core too
        benchmark(step)


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy"])
def test_elementwise_recurrent(benchmark, name):
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(4096, 16)).astype(np.float32)
    targets = rng.random((4096, 16)).astype(np.float32)
    benchmark(get_loss(name).value_and_grad, outputs, targets)
