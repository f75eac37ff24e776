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

Cross-fitted rows (``folds`` k >= 2, fixed wide parts only): a linear model fitted on the
very rows the rest of the model then trains on is over-confident on them, so the deep part
learns little that carries over to unseen rows (the stacking leak). With k folds the module
also holds k fold models (``fold_weight`` (k, F, K), and ``fold_bias`` (k, K): each fold
model's bias minus the full model's, whose bias lives in the head), each fitted on the
training rows outside its fold; in training, a row's wide logits come from the model of its
own fold, which never saw it, and in evaluation from ``weight`` (fitted on every row). A
row's fold is a hash of its valid token ids and their positions (``row_folds``), so it is
the same in every batch, epoch, run and data-parallel rank, copies of a text share it, and
whoever fits the fold models assigns rows exactly as the module does. Word dropout changes
a row's tokens, so with it a row may be scored by a fold model that saw it.

A learned scale (``scale``): the wide logits are multiplied by one trained scalar
(parameter "scale", starting at 1), so the rest of the model learns how much to trust a
fixed wide part; the scale precedes "weight" in the flat buffer and is trained even when
the weights are fixed. torch and ONNX exports fold it into the weights, a safetensors
export keeps it as "wide.scale" (recurrent/export/torch_names.py).

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


def row_folds(ids: np.ndarray, lengths: np.ndarray, folds: int) -> np.ndarray:
    """(B,) int64 fold in 0..folds-1 of each row of ids (T, B) with lengths (B,): a hash of
    its valid token ids and their positions (padding and T do not matter)."""
    T, B = ids.shape
    mask = valid_mask(lengths, T, B)  # (T, B)
    with np.errstate(over="ignore"):
        key = ((ids.astype(np.uint64) << np.uint64(16))
               ^ np.arange(T, dtype=np.uint64)[:, None]) * BIGRAM_MIX
        key ^= key >> np.uint64(31)
        key *= BIGRAM_MIX
        total = np.where(mask, key, np.uint64(0)).sum(axis=0, dtype=np.uint64)  # (B,)
        total ^= total >> np.uint64(29)
        total *= BIGRAM_MIX
        total ^= total >> np.uint64(32)
    return (total % np.uint64(folds)).astype(np.int64)


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

    # parameters used in training only (cross-fitted rows): not part of an exported model
    TRAINING_ONLY = ("fold_weight", "fold_bias")

    def __init__(self, vocab_size, bigram_buckets, out_features, dtype=np.float32,
                 dropout=0.0, rng=None, fixed=False, folds=0, scale=False):
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        if not isinstance(bigram_buckets, (int, np.integer)) or bigram_buckets < 0:
            raise ValueError(f"bigram_buckets: expected an int >= 0, got {bigram_buckets!r}")
        self.bigram_buckets = int(bigram_buckets)
        self.out_features = positive_int(out_features, "out_features")
        num_features = self.vocab_size + self.bigram_buckets
        if not isinstance(folds, (int, np.integer)) or folds == 1 or folds < 0:
            raise ValueError(f"folds: expected 0 or an int >= 2, got {folds!r}")
        self.folds = int(folds)
        if self.folds and not fixed:
            raise ValueError("folds: cross-fitted fold models need a fixed wide part")
        self.scaled = bool(scale)
        shapes = {"scale": (1,)} if self.scaled else {}
        shapes["weight"] = (num_features, self.out_features)
        if self.folds:
            shapes["fold_weight"] = (self.folds, num_features, self.out_features)
            shapes["fold_bias"] = (self.folds, self.out_features)
        super().__init__(shapes, dtype)
        if self.scaled:
            self._params["scale"][...] = 1.0
        self.dropout = probability(dropout, "wide dropout")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.rows = None  # (start, stop, total): this batch is those rows of a larger one
        self.fixed = bool(fixed)  # weights set from outside and not trained: no gradient
        self._x = None
        self._z = None  # the unscaled wide logits of the last forward (learned scale)

    def features(self, ids, lengths):
        return ngram_features(ids, lengths, self.vocab_size, self.bigram_buckets)

    def forward(self, ids, lengths):
        z = self._logits(ids, lengths)  # (B, K)
        if not self.scaled:
            return z
        self._z = z
        return z * self.logit_scale()

    def logit_scale(self):
        """The factor on the wide logits: the learned scale, or 1 without one."""
        return self._params["scale"][0] if self.scaled else 1.0

    def _logits(self, ids, lengths):
        """The wide logits before the learned scale."""
        self._x = self.features(ids, lengths)  # (B, F)
        if self.training and self.dropout > 0:
            self._x = self._drop(self._x)
        if not (self.training and self.folds):
            return np.asarray(self._x @ self._params["weight"], dtype=self.dtype)  # (B, K)
        fold = row_folds(np.asarray(ids), lengths, self.folds)  # (B,)
        y = np.empty((len(fold), self.out_features), self.dtype)  # (B, K)
        for f in range(self.folds):
            rows = np.flatnonzero(fold == f)
            if len(rows):
                y[rows] = (self._x[rows] @ self._params["fold_weight"][f]
                           + self._params["fold_bias"][f])
        return y

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
        (nothing for a fixed wide part), and the learned scale's, sum(d_y * z)."""
        if self.scaled:
            self._grads["scale"] += (np.asarray(d_y, np.float64) * self._z).sum()
            d_y = d_y * self._params["scale"][0]
        if self.fixed:
            return
        x = self._x.tocoo()
        np.add.at(self._grads["weight"], x.col, x.data[:, None] * d_y[x.row])
