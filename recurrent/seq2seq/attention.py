"""Luong attention after the decoder RNN ("global attention", Luong et al. 2015):

    score(h_t, s_j) = h_t . s_j            ("dot": needs H == F)
                    = h_t . (W_a s_j)      ("general"; computed as (h_t W_a) . s_j)
    a_t = softmax over the valid source steps j < len_b (masked)
    c_t = sum_j a_tj s_j
    h~_t = tanh(W_c [h_t; c_t])            (the attentional hidden state, fed to the head)

Every target step of every row in a few batched matmuls (B, T, ...) @ (B, ..., S): no
loop over steps, so a teacher-forced decoder and its attention run the whole target
sequence at once. A row whose source has length 0 attends to nothing: a_t = 0, c_t = 0.

Dimension legend: T target steps, S source steps, B rows, H decoder hidden size,
F encoder features (D*H_enc).
"""
from __future__ import annotations

import numpy as np

from ..params import ParamModule

SCORES = ("dot", "general")


def masked_softmax(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of scores (B, T, S), over columns j < lengths[b] only;
    the other columns (and every column of a row of length 0) get weight 0."""
    S = scores.shape[-1]
    valid = np.arange(S)[None, None, :] < lengths[:, None, None]  # (B, 1, S)
    z = np.where(valid, scores, -np.inf)
    top = z.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.where(valid, np.exp(z - top), 0)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1)


class LuongAttention(ParamModule):
    """h (T, B, H) decoder outputs, memory (S, B, F) encoder outputs, lengths (B,) source
    lengths -> h~ (T, B, H) and the weights (B, T, S). Parameters: "weight_c" (H, H + F),
    and for score "general" "weight_a" (H, F)."""

    def __init__(self, hidden_size, memory_size, score="general", dtype=np.float32, rng=None):
        if score not in SCORES:
            raise ValueError(f"score: expected one of {', '.join(SCORES)}, got {score!r}")
        if score == "dot" and hidden_size != memory_size:
            raise ValueError(f"score 'dot' needs the decoder size ({hidden_size}) to equal "
                             f"the encoder's output size ({memory_size}); use 'general'")
        self.score = score
        self.hidden_size, self.memory_size = int(hidden_size), int(memory_size)
        H, F = self.hidden_size, self.memory_size
        shapes = {"weight_c": (H, H + F)}
        if score == "general":
            shapes["weight_a"] = (H, F)
        super().__init__(shapes, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        for name, shape in self._shapes.items():
            bound = 1.0 / np.sqrt(shape[1])
            self._params[name][...] = rng.uniform(-bound, bound, size=shape)
        self._cache = None

    def forward(self, h, memory, lengths, need_grad=True):
        """-> (h~ (T, B, H), weights (B, T, S))."""
        hb = np.ascontiguousarray(h.transpose(1, 0, 2))  # (B, T, H)
        mb = np.ascontiguousarray(memory.transpose(1, 0, 2))  # (B, S, F)
        B, T, H = hb.shape
        q = hb  # (B, T, F); the projections below are single (B*T)-row GEMMs
        if self.score == "general":
            q = (hb.reshape(B * T, H) @ self._params["weight_a"]).reshape(B, T, -1)
        a = masked_softmax(q @ mb.transpose(0, 2, 1), lengths).astype(h.dtype)  # (B, T, S)
        ctx = a @ mb  # (B, T, F)
        z = np.concatenate([hb, ctx], axis=2)  # (B, T, H + F)
        out = np.tanh(z.reshape(B * T, -1) @ self._params["weight_c"].T).reshape(B, T, H)
        self._cache = (hb, mb, q, a, z, out) if need_grad else None
        return np.ascontiguousarray(out.transpose(1, 0, 2)), a

    def backward(self, d_out):
        """d_out (T, B, H) -> (dh (T, B, H), d_memory (S, B, F)); parameter gradients are
        added into grads()."""
        hb, mb, q, a, z, out = self._cache
        self._cache = None
        B, T, H = out.shape
        d_pre = (d_out.transpose(1, 0, 2) * (1 - out * out)).reshape(B * T, H)
        self._grads["weight_c"] += d_pre.T @ z.reshape(B * T, -1)
        dz = (d_pre @ self._params["weight_c"]).reshape(B, T, -1)  # (B, T, H + F)
        dh, d_ctx = dz[:, :, :H], dz[:, :, H:]
        da = d_ctx @ mb.transpose(0, 2, 1)  # (B, T, S)
        d_mem = a.transpose(0, 2, 1) @ d_ctx  # (B, S, F)
        d_scores = a * (da - (da * a).sum(axis=2, keepdims=True))  # (B, T, S)
        dq = d_scores @ mb  # (B, T, F)
        d_mem += d_scores.transpose(0, 2, 1) @ q
        if self.score == "general":
            dq2 = dq.reshape(B * T, -1)
            self._grads["weight_a"] += hb.reshape(B * T, H).T @ dq2
            dh = dh + (dq2 @ self._params["weight_a"].T).reshape(B, T, H)
        else:
            dh = dh + dq
        return (np.ascontiguousarray(dh.transpose(1, 0, 2)),
                np.ascontiguousarray(d_mem.transpose(1, 0, 2)))
