"""One whole training step (recurrent.step.train_step: forward, loss, backward, clip,
optimizer update) beside the recurrent layer's forward+backward alone and PyTorch's same
step, to show what the framework around the kernels costs.

    OMP_NUM_THREADS=1 pytest benchmarks/bench_train_step.py \
        --benchmark-columns=median,iqr --benchmark-sort=name

Configurations (one thread):
  charlm     tokens (T=64, B=32), V=65, E=64, LSTM H=256, per-step softmax (char-lm defaults)
  sentiment  tokens (T=40, B=32) with lengths, V=8000, E=64, bidirectional GRU H=64,
             "last" pooling, 2 classes (sentiment-like)
"""
import numpy as np
import pytest

from recurrent.model import SequenceModel
from recurrent.optim import Adam
from recurrent.plugins import get_loss
from recurrent.step import train_step
from recurrent_plugins.bench import torch_threads

CONFIGS = {
    "charlm": dict(T=64, B=32, V=65, E=64, H=256, cell="lstm", bidirectional=False,
                   output="sequence", K=65),
    "sentiment": dict(T=40, B=32, V=8000, E=64, H=64, cell="gru", bidirectional=True,
                      output="last", K=2),
}


def _batch(c):
    rng = np.random.default_rng(0)
    x = rng.integers(0, c["V"], (c["T"], c["B"]))
    if c["output"] == "sequence":
        return x, rng.integers(0, c["K"], (c["T"], c["B"])), None
    lengths = rng.integers(c["T"] // 4, c["T"] + 1, c["B"])
    return x, rng.integers(0, c["K"], c["B"]), lengths


def _model(c):
    spec = {"input": "tokens", "vocab_size": c["V"], "embed_dim": c["E"],
            "output": c["output"], "output_size": c["K"]}
    return SequenceModel(spec, cell=c["cell"], hidden_size=c["H"],
                         bidirectional=c["bidirectional"], seed=0, num_threads=1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_recurrent_train_step(benchmark, name):
    c = CONFIGS[name]
    model = _model(c)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    loss = get_loss("cross_entropy")
    x, y, lengths = _batch(c)
    benchmark(train_step, model, loss, optimizer, x, y, lengths, None, 1e-3, 5.0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_recurrent_layer_only(benchmark, name):
    """The recurrent layer's forward + backward on the same input: the floor."""
    c = CONFIGS[name]
    model = _model(c)
    x, _, lengths = _batch(c)
    h_in = model.embedding.forward(x)

    def step():
        out, _ = model.rnn.forward(h_in, lengths=lengths)
        model.rnn.backward(np.ones_like(out))

    benchmark(step)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_torch_train_step(benchmark, name):
    torch = pytest.importorskip("torch", reason="torch not installed")
    c = CONFIGS[name]
    x, y, lengths = _batch(c)
    emb = torch.nn.Embedding(c["V"], c["E"])
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[c["cell"]](
        c["E"], c["H"], bidirectional=c["bidirectional"])
    head = torch.nn.Linear(c["H"] * (2 if c["bidirectional"] else 1), c["K"])
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        e = emb(xt)
        if lengths is None:
            out, _ = rnn(e)
            logits = head(out)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c["K"]), yt.reshape(-1))
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(e, torch.from_numpy(lengths),
                                                             enforce_sorted=False)
            _, h_n = rnn(packed)
            logits = head(torch.cat([h_n[-2], h_n[-1]], dim=1))
            loss = torch.nn.functional.cross_entropy(logits, yt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    with torch_threads(1):
        benchmark(step)
