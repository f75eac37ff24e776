"""Language-model pretraining of a token model's embedding and recurrent stack.

Before a task fits its model to labelled rows, the embedding and the recurrent stack can
learn from the same texts without their labels: a unidirectional model of the run's cell,
size and depth learns to predict each next token (Dai & Le 2015, "Semi-supervised sequence
learning"; Howard & Ruder 2018, ULMFiT). For a bidirectional run a second one learns to
predict each previous token (the rows reversed), reading the first one's embedding kept
fixed, so both halves of the stack start from features of one embedding. The values come
back under the task model's names (the reverse half's with torch's ``_reverse`` suffix);
the head, pooling and anything else of the task's model start fresh, and so do the upper
layers of a bidirectional stack (they read both directions' outputs, which neither
one-directional language model has).

Each language model trains with the run's optimizer, learning rate and clipping
(recurrent/step.py, the trainer's own step), without weight decay or dropout. Everything
is a function of the run's seed, so a run with pretraining is as reproducible (and as
independent of the thread count) as one without.

Dimension legend: T tokens (padded per batch), B batch rows, V vocabulary size.
"""
from __future__ import annotations

from typing import Callable, Iterable

import click
import numpy as np

from .config import TrainingConfig
from .step import train_step

# a constant mixed into the run's seed, so pretraining draws apart from the task's model
SEED_SALT = 0x1A4E


def reverse_rows(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, B) ids with each row's first lengths[b] entries reversed (padding stays put)."""
    T = x.shape[0]
    t = np.arange(T)[:, None]  # (T, 1)
    index = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return np.take_along_axis(x, index, axis=0)


def next_token_batch(x: np.ndarray, lengths: np.ndarray):
    """(inputs (T-1, B), targets (T-1, B), lengths (B,)): each row's tokens but the last,
    and each row's tokens but the first; a row of one token has nothing to predict."""
    return (np.ascontiguousarray(x[:-1]), np.ascontiguousarray(x[1:]),
            np.maximum(lengths - 1, 0))


def pretrain_language_model(config: dict, vocab_size: int, embed_dim: int,
                            batches: Callable[[np.random.Generator], Iterable],
                            epochs: int) -> tuple[dict[str, np.ndarray], list[list[float]]]:
    """(values, losses): values {name: array} for the task model's "embedding.weight" and
    every "rnn.*" parameter (with config["bidirectional"]: both directions of the first
    layer), after
    ``epochs`` passes of next-token (and previous-token) prediction over batches(rng):
    (x (T, B) int ids, lengths (B,)) tuples, reshuffled by rng each epoch; losses[d][e]
    the mean training loss (nats per predicted token) of direction d in epoch e."""
    spec = {"input": "tokens", "vocab_size": int(vocab_size), "embed_dim": int(embed_dim),
            "output": "sequence", "output_size": int(vocab_size)}
    directions = 2 if config.get("bidirectional") else 1
    seeds = np.random.SeedSequence([int(config.get("seed") or 0), SEED_SALT]).spawn(directions)
    from .plugins import get_loss  # (plugins imports the package: not at module level)
    loss_fn = get_loss("cross_entropy")
    values: dict[str, np.ndarray] = {}
    losses: list[list[float]] = []
    embedding = None
    for d, seed in enumerate(seeds):
        lm_config = TrainingConfig({**config, "bidirectional": False, "dropout": 0.0,
                                    "recurrent_dropout": 0.0, "zoneout": 0.0,
                                    "seed": int(seed.generate_state(1)[0])})
        model = lm_config.build_model(spec)
        start = 0
        if embedding is not None:  # the reverse half reads the forward one's embedding
            model.named_params["embedding.weight"][...] = embedding
            model.params_changed()
            offset, shape = model.layout["embedding.weight"]  # the buffer's first module
            start = offset + int(np.prod(shape))
        optimizer = lm_config.build_optimizer_over(model.params[start:], model.grads[start:])
        rng = np.random.default_rng(seed.spawn(1)[0])
        losses.append([])
        for epoch in range(int(epochs)):
            total, count = 0.0, 0
            for x, lengths in batches(rng):
                x, lengths = np.asarray(x), np.asarray(lengths, np.int64)
                if d == 1:
                    x = reverse_rows(x, lengths)
                inputs, targets, lengths = next_token_batch(x, lengths)
                if not lengths.any():
                    continue
                loss, _, _, _ = train_step(model, loss_fn, optimizer, inputs, targets,
                                           lengths, None, lm_config["lr"],
                                           lm_config.get("clip_norm"),
                                           lm_config.get("clip_value"))
                n = int(lengths.sum())
                total, count = total + loss * n, count + n
            losses[d].append(total / max(count, 1))
            if not config.get("quiet"):
                click.echo(f"pretraining the {'reverse' if d else 'forward'} language model: "
                           f"epoch {epoch + 1}/{epochs}, loss {losses[d][-1]:.4f} "
                           f"nats/token", err=True)
        if d == 0:
            embedding = model.named_params["embedding.weight"].copy()
            values["embedding.weight"] = embedding
        for name, value in model.named_params.items():
            if name.startswith("rnn.") and (directions == 1 or name.endswith("_l0")):
                values[name + ("_reverse" if d else "")] = value.copy()
    return values, losses

