"""Language-model pretraining of a token model's embedding and recurrent stack.

Before a task fits its model to labelled rows, the embedding and the recurrent stack can
learn from the same texts without their labels: a unidirectional model of the run's cell,
size and depth learns to predict each next token (Dai & Le 2015, "Semi-supervised sequence
learning"; Howard & Ruder 2018, ULMFiT). For a bidirectional run a second one learns to
predict each previous token (the rows reversed), reading the first one's embedding as
fixed input features, so both halves of the stack start from features of one embedding.
The values come back under the task model's names (the reverse half's with torch's
``_reverse`` suffix); the head, pooling and anything else of the task's model start fresh,
and so do the upper layers of a bidirectional stack (they read both directions' outputs,
which neither one-directional language model has; its language models have one layer).

Each language model trains with the run's optimizer, learning rate and clipping
(recurrent/step.py, the trainer's own step), without weight decay or dropout, with numpy's
BLAS on one thread as in training. Everything is a function of the run's seed, so a run
with pretraining is as reproducible (and as independent of the thread count) as one
without. Memory: the logits and their gradient hold 2 * T * B * V float32 per batch.

Dimension legend: T tokens (padded per batch), B batch rows, V vocabulary size, E
embedding size.
"""
from __future__ import annotations

from typing import Callable, Iterable

import click
import numpy as np

from .config import TrainingConfig
from .errors import UserError
from .interrupt import requested as interrupt_requested
from .lengths import reversal_index, reverse_rows
from .step import NonFinite, train_step
from .threads import single_threaded_blas

# a constant mixed into the run's seed, so pretraining draws apart from the task's model
SEED_SALT = 0x1A4E


class Interrupted(Exception):
    """A Ctrl-C stopped pretraining at a batch boundary: what it learnt is no state a run
    can continue from, so the trainer saves nothing of the run (Trainer._initial_params)."""


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
    layer), after ``epochs`` passes of next-token (and previous-token) prediction over
    batches(rng): (x (T, B) int ids, lengths (B,)) tuples, reshuffled by rng each epoch;
    losses[d][e] the mean training loss (nats per predicted token) of direction d in
    epoch e. UserError (one line) when a language model's loss or gradient stops being
    finite; Interrupted at the batch after a Ctrl-C."""
    bidirectional = bool(config.get("bidirectional"))
    seeds = np.random.SeedSequence([int(config.get("seed") or 0), SEED_SALT]).spawn(
        2 if bidirectional else 1)
    values: dict[str, np.ndarray] = {}
    losses: list[list[float]] = []
    embedding = None  # (V, E): the forward model's, the reverse model's fixed input
    with single_threaded_blas():
        for d, seed in enumerate(seeds):
            spec = ({"input": "tokens", "vocab_size": int(vocab_size),
                     "embed_dim": int(embed_dim)} if d == 0 else
                    {"input": "features", "input_size": int(embed_dim)})
            spec.update(output="sequence", output_size=int(vocab_size))
            lm_config = TrainingConfig({
                **config, "bidirectional": False, "dropout": 0.0, "recurrent_dropout": 0.0,
                "zoneout": 0.0, "seed": int(seed.generate_state(1)[0]),
                "layers": 1 if bidirectional else config.get("layers", 1)})
            model = lm_config.build_model(spec)
            name = "reverse" if d else "forward"
            try:
                losses.append(_train(model, lm_config, embedding, batches,
                                     np.random.default_rng(seed.spawn(1)[0]), epochs, name))
            except (NonFinite, ValueError) as e:
                raise UserError(f"pretraining the {name} language model stopped: "
                                f"{str(e).splitlines()[0]} (try a lower --lr or "
                                f"--clip-norm)") from None
            if d == 0:
                embedding = model.named_params["embedding.weight"].copy()
                values["embedding.weight"] = embedding
            for key, value in model.named_params.items():
                if key.startswith("rnn."):
                    values[key + ("_reverse" if d else "")] = value.copy()
    return values, losses


def _train(model, config, embedding, batches, rng, epochs, name) -> list[float]:
    """Train one language model; returns its mean loss per epoch. With ``embedding``
    (V, E) the model reads each row reversed, embedded by it (fixed) as its features."""
    from .plugins import get_loss  # (plugins imports the package: not at module level)
    loss_fn = get_loss("cross_entropy")
    optimizer = config.build_optimizer_over(model.params, model.grads)  # no weight decay
    per_epoch = []
    for epoch in range(int(epochs)):
        total, count = 0.0, 0
        for x, lengths in batches(rng):
            if interrupt_requested():
                raise Interrupted
            x, lengths = np.asarray(x), np.asarray(lengths, np.int64)
            if embedding is not None:
                x = reverse_rows(x, reversal_index(lengths, x.shape[0]))
            inputs, targets, lengths = next_token_batch(x, lengths)
            if not lengths.any():
                continue
            if embedding is not None:
                inputs = embedding[inputs]  # (T-1, B, E)
            loss, _, _, _ = train_step(model, loss_fn, optimizer, inputs, targets, lengths,
                                       None, config["lr"], config.get("clip_norm"),
                                       config.get("clip_value"))
            n = int(lengths.sum())
            total, count = total + loss * n, count + n
        per_epoch.append(total / max(count, 1))
        if not config.get("quiet"):
            click.echo(f"pretraining the {name} language model: epoch {epoch + 1}/{epochs}, "
                       f"loss {per_epoch[-1]:.4f} nats/token", err=True)
    return per_epoch
