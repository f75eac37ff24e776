"""Inverted dropout, written once: the mask rule and the module the model puts before its
head (the recurrent stack draws its inter-layer masks with the same rule)."""
from __future__ import annotations

import numpy as np

from .checks import probability


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype) -> np.ndarray:
    """Keep each element with probability 1 - p and scale kept ones by 1 / (1 - p)."""
    dtype = np.dtype(dtype)
    keep = 1.0 - p
    return (rng.random(shape) < keep).astype(dtype) / dtype.type(keep)


class Dropout:
    """Inverted dropout: in training, zero each element with probability p and scale the
    rest by 1/(1-p); identity in eval mode. ``rng`` is set by the caller (the trainer
    re-seeds it every step so a resumed run draws the same masks)."""

    def __init__(self, p=0.0, rng=None):
        self.p = probability(p, "dropout")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.training = True
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        self._mask = dropout_mask(self.rng, x.shape, self.p, x.dtype)
        return x * self._mask

    def backward(self, d_y):
        return d_y if self._mask is None else d_y * self._mask
