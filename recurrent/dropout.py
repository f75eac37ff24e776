"""Inverted dropout, written once: the mask rule and the module the model puts before its
head (the recurrent stack draws its inter-layer masks with the same rule)."""
from __future__ import annotations

import numpy as np

from .checks import probability


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype, rows=None,
                 axis: int = 0) -> np.ndarray:
    """Keep each element with probability 1 - p and scale kept ones by 1 / (1 - p).

    rows=(start, stop, total): ``shape`` holds rows start:stop (along ``axis``) of a batch
    of ``total`` rows; the mask is drawn for the whole batch and cut, so a data-parallel
    rank (recurrent/data_parallel.py) gets for its rows the mask one process draws for
    the whole batch."""
    dtype = np.dtype(dtype)
    keep = 1.0 - p
    shape = tuple(shape)
    if rows is None:
        return (rng.random(shape) < keep).astype(dtype) / dtype.type(keep)
    start, stop, total = rows
    whole = shape[:axis] + (total,) + shape[axis + 1:]
    mask = (rng.random(whole) < keep).astype(dtype) / dtype.type(keep)
    return mask[(slice(None),) * axis + (slice(start, stop),)]


class Dropout:
    """Inverted dropout: in training, zero each element with probability p and scale the
    rest by 1/(1-p); identity in eval mode. ``rng`` is set by the caller (the trainer
    re-seeds it every step so a resumed run draws the same masks); ``rows``: see
    dropout_mask (None: x holds the whole batch)."""

    def __init__(self, p=0.0, rng=None):
        self.p = probability(p, "dropout")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.rows = None
        self.training = True
        self._mask = None

    def forward(self, x, batch_axis: int = 0):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        self._mask = dropout_mask(self.rng, x.shape, self.p, x.dtype, self.rows, batch_axis)
        return x * self._mask

    def backward(self, d_y):
        return d_y if self._mask is None else d_y * self._mask
