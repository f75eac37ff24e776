"""Huber loss (smooth L1 with threshold delta), following recurrent.protocols.Loss.

    r = output - target
    loss = 0.5 r^2                      if |r| <= delta
           delta (|r| - 0.5 delta)      otherwise
    d loss / d output = clip(r, -delta, delta)

Averaged over valid elements (rows selected by the mask times K), as torch.nn.HuberLoss.
"""
from __future__ import annotations

import numpy as np


class HuberLoss:
    """Huber loss: squared below delta, linear above (robust regression)."""

    name = "huber"
    target_kind = "dense"  # float targets shaped like the outputs (read by the conformance kit)

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"delta must be positive, got {delta}")
        self.delta = delta

    def value_and_grad(self, outputs, targets, mask=None):
        outputs = np.asarray(outputs)
        targets = np.asarray(targets, dtype=outputs.dtype)
        if targets.shape != outputs.shape:
            raise ValueError(f"targets: expected shape {outputs.shape}, got {targets.shape}")
        K = outputs.shape[-1]
        r = (outputs - targets).reshape(-1, K)  # (N, K)
        if mask is not None and np.shape(mask) != outputs.shape[:-1]:
            raise ValueError(f"mask: expected shape {outputs.shape[:-1]}, got {np.shape(mask)}")
        rows = np.ones(r.shape[0], bool) if mask is None else np.asarray(mask).reshape(-1) != 0
        n = int(rows.sum()) * K
        if n == 0:
            return 0.0, np.zeros_like(outputs)
        small = np.abs(r) <= self.delta
        per_element = np.where(small, 0.5 * r * r, self.delta * (np.abs(r) - 0.5 * self.delta))
        value = float(per_element[rows].sum(dtype=np.float64) / n)
        # np.where, not a product with the mask: padded rows may hold NaN (0 * nan = nan)
        grad = np.where(rows[:, None], np.clip(r, -self.delta, self.delta) / n, 0.0)
        return value, grad.astype(outputs.dtype).reshape(outputs.shape)
