"""Variable sequence lengths: the one check at the public boundary and the masks built on it.

Row b of a (T, B, ...) batch is valid for steps t < lengths[b]. Any length in 0..T is a
valid row: a row of length 0 outputs zeros, keeps its initial state as its final state and
gets zero gradients. Below the public boundary lengths are always an int64 (B,) array,
never None.
"""
from __future__ import annotations

import numpy as np

from .checks import as_array


def check_lengths(lengths, T: int, B: int) -> np.ndarray:
    """lengths as a C-contiguous int64 (B,) array with values in 0..T; None means every
    row has all T steps. ValueError (one line) for anything else."""
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    a = as_array(lengths, "lengths")
    if a.dtype.kind not in "iu":
        raise ValueError(f"lengths: expected an integer array, got dtype {a.dtype}")
    if a.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},), got shape {a.shape}")
    if B and (a.min() < 0 or a.max() > T):
        raise ValueError(f"lengths: expected values in 0..{T} (T), got values from "
                         f"{a.min()} to {a.max()}")
    return np.ascontiguousarray(a, dtype=np.int64)


def valid_mask(lengths: np.ndarray, T: int, B: int) -> np.ndarray:
    """(T, B) bool: step t of row b is valid (t < lengths[b])."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :B]


def reversal_index(lengths, T):
    """(T, B) time index that reverses each row's valid prefix and leaves padding in place
    (a row of length 0 is all padding), or None when every row has all T steps (then a
    plain flip of the time axis does it).

    idx[t, b] = len_b - 1 - t for t < len_b, else t. It is its own inverse, so the same
    gather reverses the input and un-reverses the output (and their gradients).
    """
    if np.all(lengths == T):
        return None
    t = np.arange(T)[:, None]                                  # (T, 1)
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def reverse_rows(a, rev):
    """a (T, B, ...) with each row's valid prefix reversed (see reversal_index), contiguous."""
    if rev is None:
        return np.ascontiguousarray(a[::-1])
    return a[rev, np.arange(a.shape[1])[None, :]]
