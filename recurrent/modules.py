"""The model's two plain parameter modules: Embedding (token ids -> vectors) and Dense
(the output head), and softmax, the output activation of classification heads. The
modules' parameter surface (bind, state_dict, grads, ...) is
recurrent.params.ParamModule's; SequenceModel binds them to views of its flat buffer.

Dimension legend: S any shape of token ids, E embedding size, N rows, F input features,
K output features.
"""
from __future__ import annotations

import numpy as np

from .checks import kept_copy, positive_int
from .params import ParamModule


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits in float64, stable for large values: the class
    probabilities of a classification head."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Embedding(ParamModule):
    """Token ids (any shape S) -> vectors (S + (E,)). Initialised N(0, 1) as torch's."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, rng=None):
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim")
        super().__init__({"weight": (self.num_embeddings, self.embedding_dim)}, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        self._params["weight"][...] = rng.standard_normal(self._shapes["weight"])
        self._ids = None

    def check_ids(self, ids):
        a = np.asarray(ids)
        if a.dtype.kind not in "iu":
            raise ValueError(f"token ids: expected an integer array, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.num_embeddings):
            raise ValueError(f"token ids: expected values in 0..{self.num_embeddings - 1}, "
                             f"got values from {a.min()} to {a.max()}")
        return a.astype(np.intp, copy=False)

    def forward(self, ids, need_grad=True):
        """ids S -> their rows S + (E,), a fresh contiguous array. need_grad: backward
        follows, and reads the ids, so they are kept as a copy when still the caller's
        array (changing it in place in between would change the gradients)."""
        checked = self.check_ids(ids)
        self._ids = kept_copy(checked, ids) if need_grad else checked
        return self._params["weight"][checked]

    def backward(self, d_out):
        """d_out S + (E,): rows add into the gradient of the ids they came from (sparse).

        Sorted segment sums (argsort + add.reduceat) rather than np.add.at: the same sums,
        without np.add.at's per-element dispatch."""
        if self._ids is None:
            raise ValueError("Embedding.backward: no forward pass to differentiate; call "
                             "forward first")
        expected = self._ids.shape + (self.embedding_dim,)
        if np.shape(d_out) != expected:
            raise ValueError(f"Embedding.backward: d_out: expected shape {expected}, "
                             f"got shape {np.shape(d_out)}")
        flat = self._ids.reshape(-1)  # (N,)
        if flat.size == 0:
            return
        order = np.argsort(flat, kind="stable")
        sorted_ids = flat[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # (U,)
        rows = np.reshape(d_out, (-1, self.embedding_dim))[order]  # (N, E)
        self._grads["weight"][sorted_ids[starts]] += np.add.reduceat(rows, starts, axis=0)


class Dense(ParamModule):
    """x (N, F) -> x @ weight.T + bias (N, K); torch.nn.Linear's init U(-1/sqrt(F), 1/sqrt(F))."""

    def __init__(self, in_features, out_features, dtype=np.float32, rng=None):
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        super().__init__({"weight": (self.out_features, self.in_features),
                          "bias": (self.out_features,)}, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / np.sqrt(self.in_features)
        for name, shape in self._shapes.items():
            self._params[name][...] = rng.uniform(-bound, bound, size=shape)
        self._x = None

    def forward(self, x):
        if np.ndim(x) != 2 or np.shape(x)[1] != self.in_features:
            raise ValueError(f"Dense: x: expected shape (N, {self.in_features}), "
                             f"got shape {np.shape(x)}")
        self._x = x  # (N, F)
        return x @ self._params["weight"].T + self._params["bias"]  # (N, K)

    def backward(self, d_y):
        """d_y (N, K) -> dx (N, F); dW += d_y^T x, db += sum_n d_y."""
        if self._x is None:
            raise ValueError("Dense.backward: no forward pass to differentiate; call "
                             "forward first")
        expected = (self._x.shape[0], self.out_features)
        if np.shape(d_y) != expected:
            raise ValueError(f"Dense.backward: d_y: expected shape {expected}, "
                             f"got shape {np.shape(d_y)}")
        self._grads["weight"] += d_y.T @ self._x
        self._grads["bias"] += d_y.sum(axis=0)
        return d_y @ self._params["weight"]
