"""Wide: a sparse linear model over the n-grams of a row of token ids, added to the
logits of a pooled token model ("wide and deep"; Cheng et al. 2016).

Features of row b (binary: present or not, however often): every token id v among its
valid steps (feature v) and, with ``bigram_buckets`` > 0, every pair of neighbouring valid
tokens (a, b), hashed into one of ``bigram_buckets`` features after the vocabulary. The
logits are x @ weight (no bias: the head has one), so on its own the module is a
bag-of-n-grams logistic regression. Weights start at zero, so an untrained wide part adds
nothing and the model starts as the deep part alone.

Feature dropout (``dropout`` p > 0, training only): each present feature of each row is
zeroed with probability p and the kept ones scaled by 1/(1-p), which regularises a trained
linear model much as an adaptive L2 penalty does (Wager, Wang & Liang 2013); on a fixed
wide part it leaves the rest of the model part of the signal to carry on every row. The
keep/drop draw of (row, feature) is a hash of a per-step salt, the row's place in the whole
batch and the feature, so a data-parallel rank holding rows start:stop draws what one
process draws for them.

A fixed wide part (``fixed``) keeps the weights it is given (a linear model fitted before
training, see the sentiment task's --wide-fit) and adds no gradient; SequenceModel then
leaves it out of what the optimizer updates.

Dimension legend: T time steps, B batch rows, V vocabulary size, F = V + bigram_buckets
features, K output features.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from .checks import positive_int, probability
from .lengths import valid_mask
from .params import ParamModule

BIGRAM_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden ratio), bigram hash


def bigram_features(first: np.ndarray, second: np.ndarray, vocab_size: int,
                    bigram_buckets: int) -> np.ndarray:
    """The feature index (int64, V .. F-1) of each bigram (first[i], second[i]) of token
    ids: the pair hashed into one of ``bigram_buckets`` >= 1 buckets after the vocabulary."""
    key = (np.asarray(first).astype(np.uint64) * np.uint64(vocab_size)
           + np.asarray(second).astype(np.uint64))
    return vocab_size + ((key * BIGRAM_MIX) >> np.uint64(17)).astype(np.int64) % bigram_buckets


def ngram_features(ids: np.ndarray, lengths: np.ndarray, vocab_size: int,
                   bigram_buckets: int) -> scipy.sparse.csr_matrix:
    """(B, F) 0/1 matrix of the unigrams and hashed bigrams of each row's valid steps.

    ids (T, B) ints in 0..V-1, lengths (B,) int64 in 0..T (already checked)."""
    T, B = ids.shape
    mask = valid_mask(lengths, T, B)  # (T, B)
    rows = np.broadcast_to(np.arange(B), (T, B))
    cols = [ids[mask].astype(np.int64)]
    row_of = [rows[mask]]
    if bigram_buckets and T > 1:
        pair = mask[1:]  # (T-1, B): steps t and t+1 both valid
        cols.append(bigram_features(ids[:-1][pair], ids[1:][pair], vocab_size,
                                    bigram_buckets))
        row_of.append(rows[1:][pair])
    num_features = vocab_size + bigram_buckets
    codes = np.unique(np.concatenate(row_of).astype(np.int64) * num_features
                      + np.concatenate(cols))
    r, c = np.divmod(codes, num_features)
    return scipy.sparse.csr_matrix((np.ones(len(codes)), (r, c)), shape=(B, num_features))


def feature_keep(salt: int, rows: np.ndarray, cols: np.ndarray, p: float) -> np.ndarray:
    """Bool per (rows[i], cols[i]): kept by feature dropout of rate p, a function of
    ``salt`` (a 63-bit int), the row and the column only."""
    with np.errstate(over="ignore"):
        key = (rows.astype(np.uint64) << np.uint64(32)) ^ cols.astype(np.uint64)
        key = (key ^ np.uint64(salt)) * BIGRAM_MIX
        key ^= key >> np.uint64(29)
        key *= BIGRAM_MIX
        key ^= key >> np.uint64(32)
    return (key >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 >= p


class Wide(ParamModule):
    """Token ids (T, B) with lengths (B,) -> logits (B, K) = ngram_features @ weight."""

    def __init__(self, vocab_size, bigram_buckets, out_features, dtype=np.float32,
                 dropout=0.0, rng=None, fixed=False):
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        if not isinstance(bigram_buckets, (int, np.integer)) or bigram_buckets < 0:
            raise ValueError(f"bigram_buckets: expected an int >= 0, got {bigram_buckets!r}")
        self.bigram_buckets = int(bigram_buckets)
        self.out_features = positive_int(out_features, "out_features")
        num_features = self.vocab_size + self.bigram_buckets
        super().__init__({"weight": (num_features, self.out_features)}, dtype)
        self.dropout = probability(dropout, "wide dropout")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.rows = None  # (start, stop, total): this batch is those rows of a larger one
        self.fixed = bool(fixed)  # weights set from outside and not trained: no gradient
        self._x = None

    def features(self, ids, lengths):
        return ngram_features(ids, lengths, self.vocab_size, self.bigram_buckets)

    def forward(self, ids, lengths):
        self._x = self.features(ids, lengths)  # (B, F)
        if self.training and self.dropout > 0:
            self._x = self._drop(self._x)
        return np.asarray(self._x @ self._params["weight"], dtype=self.dtype)  # (B, K)

    def _drop(self, x):
        """x (B, F) 0/1 CSR with each present feature kept with probability 1 - p and
        scaled by 1 / (1 - p) (see the module docstring)."""
        x = x.tocoo()
        start = 0 if self.rows is None else self.rows[0]
        salt = int(self.rng.integers(0, 2 ** 63))
        keep = feature_keep(salt, x.row + start, x.col, self.dropout)
        return scipy.sparse.csr_matrix(
            (np.full(int(keep.sum()), 1.0 / (1.0 - self.dropout)), (x.row[keep], x.col[keep])),
            shape=x.shape)

    def backward(self, d_y):
        """d_y (B, K): weight gradient x^T d_y, added into the rows of present features
        (nothing for a fixed wide part)."""
        if self.fixed:
            return
        x = self._x.tocoo()
        np.add.at(self._grads["weight"], x.col, x.data[:, None] * d_y[x.row])
