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


# Scores are reduced a block of rows at a time, each block about this many elements (256 KB
# of float32), so the temporaries stay small whatever N and V are, and in cache: the old
# dense pass made three float64 (N, V) arrays, 6 GB for evaluate()'s (16384, 16000) chunk.
CHUNK_ELEMENTS = 1 << 16


def chunk_rows(width: int) -> int:
    """Rows of ``width`` scores per block: CHUNK_ELEMENTS // width, at least 1."""
    return max(1, CHUNK_ELEMENTS // max(1, int(width)))


def logits_nll(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row negative log-likelihood and correctness of argmax.

    logits (N, V) float, targets (N,) int -> (nll (N,) float64, correct (N,) bool).

    Works chunk_rows(V) rows at a time, so memory does not grow with N x V. float32 logits
    are max-shifted and exponentiated in float32 (their own precision) with each row's sum,
    its log and the loss in float64: on trained models the mean loss is ~1e-9
    relative from an all-float64 pass. Other logits are widened to float64 block by block
    (float64 ones give the same bits as a dense float64 pass). Argmax ties go to the
    lowest id; the argmax and the target's score are read from the unconverted logits.
    """
    z = np.asarray(logits)
    targets = np.asarray(targets)
    n, width = z.shape
    work_dtype = np.float32 if z.dtype == np.float32 else np.float64
    nll = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=bool)
    step = chunk_rows(width)
    work = np.empty((min(step, n), width), dtype=work_dtype)  # (rows, V), reused
    for start in range(0, n, step):
        block = z[start:start + step]  # (r, V)
        rows = block.shape[0]
        buf = work[:rows]
        if block.dtype != work_dtype:
            buf[...] = block  # exact widening to float64
            block = buf
        t = targets[start:start + rows]
        top = block.max(axis=1, keepdims=True)  # (r, 1): subtract for a stable log-sum-exp
        picked = np.take_along_axis(block, t[:, None], axis=1)[:, 0]  # (r,)
        correct[start:start + rows] = block.argmax(axis=1) == t
        np.subtract(block, top, out=buf)
        np.exp(buf, out=buf)
        log_norm = np.log(buf.sum(axis=1, dtype=np.float64)) + top[:, 0]  # (r,) float64
        nll[start:start + rows] = log_norm - picked
    return nll, correct


def unigram_log_probs(train_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """log p(c) with add-one smoothing: (V,) float64."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    return np.log(counts / counts.sum())


class BigramCounts:
    """log p(c | previous char) with add-one smoothing, kept as the character pairs seen
    in training only: memory and time grow with the text, not with V^2 (a dense (V, V)
    table is 2 GB at V = 16000).

    keys (P,) int64 sorted codes prev * V + next of the P distinct pairs seen, counts (P,)
    how often each was seen, row_totals (V,) how often each character is followed by one.
    """

    def __init__(self, train_ids: np.ndarray, vocab_size: int):
        ids = np.asarray(train_ids, dtype=np.int64)
        self.vocab_size = int(vocab_size)
        self.keys, self.counts = np.unique(ids[:-1] * self.vocab_size + ids[1:],
                                           return_counts=True)  # (P,) each
        self.row_totals = np.bincount(ids[:-1], minlength=self.vocab_size)  # (V,)

    def pair_counts(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """(n,) int64 training count of each pair (prev[k], nxt[k]); 0 for pairs not seen."""
        codes = np.asarray(prev, dtype=np.int64) * self.vocab_size + np.asarray(nxt)
        if not len(self.keys):
            return np.zeros(codes.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, codes), len(self.keys) - 1)
        return np.where(self.keys[pos] == codes, self.counts[pos], 0)

    def log_probs(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """(n,) float64 log p(nxt[k] | prev[k]) = log((count + 1) / (row total + V))."""
        # the same bits as a dense table's log(counts / counts.sum(axis=1)): the row sum of
        # integer-valued float64s is exact
        totals = self.row_totals[prev].astype(np.float64) + float(self.vocab_size)
        return np.log((self.pair_counts(prev, nxt).astype(np.float64) + 1.0) / totals)

    def best_next(self) -> np.ndarray:
        """(V,) int64 most likely next character after each one: the most frequent
        successor, ties to the lowest id; 0 after a character never followed in training
        (its row is uniform)."""
        best = np.zeros(self.vocab_size, dtype=np.int64)
        if not len(self.keys):
            return best
        rows, cols = np.divmod(self.keys, self.vocab_size)  # sorted by row, then column
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # first pair of a row
        top = np.maximum.reduceat(self.counts, starts)  # (rows seen,)
        at_top = np.flatnonzero(self.counts == np.repeat(top, np.diff(np.r_[starts, len(rows)])))
        first = at_top[np.r_[True, rows[at_top][1:] != rows[at_top][:-1]]]  # lowest column
        best[rows[first]] = cols[first]
        return best


def baseline_metrics(train_ids: np.ndarray, split_ids: np.ndarray, vocab_size: int) -> dict:
    """Unigram and bigram baselines fitted on ``train_ids``, scored on the next-character
    targets of ``split_ids`` (target k is split_ids[k+1] given split_ids[k])."""
    prev, nxt = split_ids[:-1], split_ids[1:]
    uni = unigram_log_probs(train_ids, vocab_size)
    bi = BigramCounts(train_ids, vocab_size)
    n = len(nxt)
    return {
        "unigram": summarize(float(-uni[nxt].sum()), int((nxt == uni.argmax()).sum()), n),
        "bigram": summarize(float(-bi.log_probs(prev, nxt).sum()),
                            int((bi.best_next()[prev] == nxt).sum()), n),
    }


# A scored character counts as seen in training when the passage of this many characters
# ending at it (it and the ones before) occurs verbatim in the training split: long enough
# that held-out text almost never repeats one by chance, short enough to catch a file
# that copies the training text in pieces.
PASSAGE = 50


def passages_seen(train_ids: np.ndarray, ids: np.ndarray, length: int = PASSAGE) -> int:
    """How many positions of ``ids`` end a ``length``-character passage that occurs in
    ``train_ids`` (metrics[TRAIN_OVERLAP] of `eval --data`): passages compared by a
    64-bit polynomial hash, whose chance collisions among a few million passages are
    negligible."""
    if len(ids) < length or len(train_ids) < length:
        return 0
    # Both sides sorted in place (only the count matters): duplicates do not hurt the
    # search, a sort costs far less than np.unique's de-duplication, and sorted probes
    # walk the training hashes in order instead of missing the cache at each one.
    seen = _passage_hashes(train_ids, length)
    seen.sort()
    hashes = _passage_hashes(ids, length)
    hashes.sort()
    at = np.minimum(np.searchsorted(seen, hashes), len(seen) - 1)
    return int(np.count_nonzero(seen[at] == hashes))


def _passage_hashes(ids: np.ndarray, length: int) -> np.ndarray:
    """(len(ids) - length + 1,) uint64 hash of each window of ``length`` ids (wrapping
    arithmetic: the hash is the polynomial modulo 2^64)."""
    ids = np.asarray(ids).astype(np.uint64)
    n = len(ids) - length + 1
    out = np.zeros(n, np.uint64)
    base = np.uint64(1_000_003)
    with np.errstate(over="ignore"):
        for k in range(length):
            out *= base
            out += ids[k:k + n]
    return out
