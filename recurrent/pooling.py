"""Pooling a recurrent layer's outputs over each row's valid steps: (T, B, D*H) -> (B, D*H).

Modes: "last" (the forward direction's output at the row's last valid step, and for a
bidirectional layer the reverse direction's output at step 0, where the reverse pass ends:
exactly h_n of the top layer, as torch's), "mean" and "max" (over valid steps).

A row of length 0 pools to zeros and gets no gradient.

Truncated BPTT of pooled outputs (recurrent/truncation.py) runs each row's first steps
without gradient; a PrefixSummary hands what pooling needs from those steps on as
constants.

Dimension legend: T time steps, B batch rows, H hidden units, D directions (1 or 2),
P prefix steps. ``lengths`` is always an int64 (B,) array (recurrent.lengths).
"""
from __future__ import annotations

import numpy as np

from .lengths import valid_mask

MODES = ("last", "mean", "max")


class PrefixSummary:
    """What pooling needs from the steps of a truncated-BPTT prefix, all constants:
    per row the number of prefix steps (B,), the sum (B, H) and the maximum (B, H) of
    their outputs (0 and -inf for a row without prefix)."""

    def __init__(self, out, steps):
        """out (P, B, H) outputs of the prefix pass; steps (B,) valid prefix steps per row."""
        mask = valid_mask(steps, out.shape[0], out.shape[1])[:, :, None]  # (P, B, 1)
        self.steps = np.asarray(steps)
        self.total = np.where(mask, out, 0).sum(axis=0)  # (B, H)
        self.maximum = np.where(mask, out, -np.inf).max(axis=0).astype(out.dtype)  # (B, H)


def pool_forward(out, lengths, mode, num_directions, prefix=None):
    """out (T, B, D*H) -> (pooled (B, D*H), cache for pool_backward).

    ``prefix`` (truncated BPTT, D = 1 only): a PrefixSummary of steps that came before
    ``out`` and take part in the pool as constants (no gradient reaches them): "mean" adds
    their sum and count, "max" compares with their maximum (on a tie the earlier, prefix
    step wins, as argmax over the whole sequence would pick it), "last" ignores them.
    """
    T, B, DH = out.shape
    H = DH // num_directions
    rows = np.arange(B)
    if mode == "last":
        last = lengths - 1  # (B,); -1 for a row of length 0
        pooled = np.empty((B, DH), out.dtype)
        pooled[:, :H] = out[last, rows, :H]
        if num_directions == 2:
            pooled[:, H:] = out[0, :, H:]
        pooled[last < 0] = 0
        return pooled, (mode, out.shape, last)
    mask = valid_mask(lengths, T, B)  # (T, B)
    if mode == "mean":
        counts = mask.sum(axis=0).astype(out.dtype)  # (B,)
        total = np.where(mask[:, :, None], out, 0).sum(axis=0)  # (B, DH)
        if prefix is not None:
            counts = counts + prefix.steps.astype(out.dtype)
            total = total + prefix.total
        counts = np.maximum(counts, 1)  # a row without steps: total 0, pooled 0
        pooled = total / counts[:, None]
        return pooled.astype(out.dtype, copy=False), (mode, out.shape, (mask, counts))
    if mode == "max":
        masked = np.where(mask[:, :, None], out, -np.inf)  # (T, B, DH)
        arg = masked.argmax(axis=0)  # (B, DH) time index of each maximum
        pooled = np.take_along_axis(out, arg[None], axis=0)[0]
        if prefix is not None:
            earlier = prefix.maximum >= pooled  # (B, DH) the constant prefix step wins
            pooled = np.where(earlier, prefix.maximum, pooled).astype(out.dtype, copy=False)
            arg = np.where(earlier, -1, arg)  # -1: no gradient
        empty = lengths == 0  # (B,) nothing to take the maximum of
        if prefix is not None:
            empty &= prefix.steps == 0
        pooled[empty] = 0
        arg[empty] = -1
        return pooled, (mode, out.shape, arg)
    raise ValueError(f"pooling: expected one of {', '.join(MODES)}, got {mode!r}")


def pool_backward(d_pooled, cache, num_directions):
    """d_pooled (B, D*H) -> d_out (T, B, D*H) (zero except where the pool read from)."""
    mode, shape, saved = cache
    T, B, DH = shape
    H = DH // num_directions
    d_out = np.zeros(shape, d_pooled.dtype)
    rows = np.arange(B)
    if mode == "last":
        used = saved >= 0  # (B,) rows of length 0 get no gradient
        d_out[saved[used], rows[used], :H] = d_pooled[used, :H]
        if num_directions == 2:
            d_out[0, used, H:] += d_pooled[used, H:]
    elif mode == "mean":
        mask, counts = saved
        d_out[...] = mask[:, :, None] * (d_pooled / counts[:, None])[None]
    else:
        constant = saved < 0  # maxima of a constant prefix, or of no steps: no gradient
        np.put_along_axis(d_out, np.maximum(saved, 0)[None],
                          np.where(constant, 0, d_pooled)[None], axis=0)
    return d_out
