"""What --tbptt K costs or saves for a pooled model: one whole training step
(recurrent.step.train_step) of a mean-pooled unidirectional LSTM over long rows, full BPTT
beside truncation to the last K steps of each row.

    pytest benchmarks/bench_tbptt_pooled.py --benchmark-columns=median,iqr \
        --benchmark-sort=name

Truncation runs the forward pass over at most (longest prefix + K) steps, about a full
pass, and backward over K steps instead of the longest row: the saving is the backward
share of a step. Configuration: tokens (T=200, B=32) with lengths in T/2..T, V=2000, E=64,
LSTM H=128, "mean" pooling, 2 classes, one thread.
"""
import numpy as np
import pytest

from recurrent.model import SequenceModel
from recurrent.optim import Adam
from recurrent.plugins import get_loss
from recurrent.step import train_step

T, B, V, E, H = 200, 32, 2000, 64, 128


@pytest.mark.parametrize("truncate", [0, 100, 25], ids=["full", "K100", "K25"])
def test_pooled_train_step(benchmark, truncate):
    rng = np.random.default_rng(0)
    spec = {"input": "tokens", "vocab_size": V, "embed_dim": E, "output": "mean",
            "output_size": 2}
    model = SequenceModel(spec, cell="lstm", hidden_size=H, seed=0, num_threads=1)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    loss = get_loss("cross_entropy")
    x = rng.integers(0, V, (T, B))
    lengths = rng.integers(T // 2, T + 1, B)
    y = rng.integers(0, 2, B)
    benchmark(train_step, model, loss, optimizer, x, y, lengths, None, 1e-3, 5.0,
              truncate=truncate)
