"""Character-level metrics and the n-gram baselines they are shown beside.

Dimension legend: N scored characters, V vocabulary size.

All losses are mean cross-entropy in nats per character; bits per character is the same
number divided by ln 2, perplexity is exp(loss) (inf beyond the float range: a loss over
about 709 nats, as a run with too high a learning rate reaches, is no error). The
baselines are fitted on the training split with add-one (Laplace) smoothing, so a
character never seen in a context still gets a finite probability, and are scored on
exactly the targets the model is scored on.
"""
from __future__ import annotations

import math

import numpy as np


def summarize(total_nats: float, correct: int, count: int) -> dict:
    """The metric dict for ``count`` scored characters with summed loss ``total_nats``."""
    loss = total_nats / count
    return {
        "loss": loss,
        "bits_per_char": loss / math.log(2.0),
        "perplexity": perplexity(loss),
        "accuracy": correct / count,
        "chars": int(count),
    }


def perplexity(loss: float) -> float:
    """exp(loss), inf when that exceeds the float range (math.exp would raise)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def logits_nll(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row negative log-likelihood and correctness of argmax.

    logits (N, V) float, targets (N,) int -> (nll (N,) float64, correct (N,) bool).
    """
    z = logits.astype(np.float64, copy=False)
    top = z.max(axis=1, keepdims=True)  # (N, 1): subtract for a stable log-sum-exp
    log_norm = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]  # (N,)
    picked = np.take_along_axis(z, targets[:, None], axis=1)[:, 0]  # (N,)
    return log_norm - picked, z.argmax(axis=1) == targets


def unigram_log_probs(train_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """log p(c) with add-one smoothing: (V,) float64."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    return np.log(counts / counts.sum())


def bigram_log_probs(train_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """log p(c | previous char) with add-one smoothing: (V, V) float64, row = previous."""
    pairs = train_ids[:-1] * vocab_size + train_ids[1:]
    counts = np.bincount(pairs, minlength=vocab_size * vocab_size).astype(np.float64)
    counts = counts.reshape(vocab_size, vocab_size) + 1.0
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def baseline_metrics(train_ids: np.ndarray, split_ids: np.ndarray, vocab_size: int) -> dict:
    """Unigram and bigram baselines fitted on ``train_ids``, scored on the next-character
    targets of ``split_ids`` (target k is split_ids[k+1] given split_ids[k])."""
    prev, nxt = split_ids[:-1], split_ids[1:]
    uni = unigram_log_probs(train_ids, vocab_size)
    bi = bigram_log_probs(train_ids, vocab_size)
    n = len(nxt)
    return {
        "unigram": summarize(float(-uni[nxt].sum()), int((nxt == uni.argmax()).sum()), n),
        "bigram": summarize(float(-bi[prev, nxt].sum()),
                            int((bi.argmax(axis=1)[prev] == nxt).sum()), n),
    }
