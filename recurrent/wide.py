"""Wide: a sparse linear model over the n-grams of a row of token ids, added to the
logits of a pooled token model ("wide and deep"; Cheng et al. 2016).

Features of row b (binary: present or not, however often): every token id v among its
valid steps (feature v) and, with ``bigram_buckets`` > 0, every pair of neighbouring valid
tokens (a, b), hashed into one of ``bigram_buckets`` features after the vocabulary. The
logits are x @ weight (no bias: the head has one), so on its own the module is a
bag-of-n-grams logistic regression. Weights start at zero, so an untrained wide part adds
nothing and the model starts as the deep part alone.

Dimension legend: T time steps, B batch rows, V vocabulary size, F = V + bigram_buckets
features, K output features.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from .checks import positive_int
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


class Wide(ParamModule):
    """Token ids (T, B) with lengths (B,) -> logits (B, K) = ngram_features @ weight."""

    def __init__(self, vocab_size, bigram_buckets, out_features, dtype=np.float32):
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        if not isinstance(bigram_buckets, (int, np.integer)) or bigram_buckets < 0:
            raise ValueError(f"bigram_buckets: expected an int >= 0, got {bigram_buckets!r}")
        self.bigram_buckets = int(bigram_buckets)
        self.out_features = positive_int(out_features, "out_features")
        num_features = self.vocab_size + self.bigram_buckets
        super().__init__({"weight": (num_features, self.out_features)}, dtype)
        self._x = None

    def features(self, ids, lengths):
        return ngram_features(ids, lengths, self.vocab_size, self.bigram_buckets)

    def forward(self, ids, lengths):
        self._x = self.features(ids, lengths)  # (B, F)
        return np.asarray(self._x @ self._params["weight"], dtype=self.dtype)  # (B, K)

    def backward(self, d_y):
        """d_y (B, K): weight gradient x^T d_y, added into the rows of present features."""
        x = self._x.tocoo()
        np.add.at(self._grads["weight"], x.col, d_y[x.row])
