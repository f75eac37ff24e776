"""Built-in losses: cross_entropy, binary_cross_entropy (on logits), mse, mae.

Each follows recurrent.protocols.Loss: ``value_and_grad(outputs, targets, mask)`` returns the
mean loss over the valid elements and its gradient with respect to ``outputs`` in one pass.

Legend: N rows (T*B for sequence outputs, B for pooled ones), K outputs per row (V classes
for cross_entropy).

Shapes: outputs (N, K); any leading shape (..., K) is accepted and flattened to (N, K), the
gradient coming back in the caller's shape. Targets: class ids (...) for cross_entropy,
floats of the outputs' shape otherwise (probabilities in [0, 1] for binary_cross_entropy,
refused outside it). mask (...) bool/0-1: rows with mask 0 neither count in the mean nor
receive gradient, and their targets may be anything (e.g. -1 padding).

Means: cross_entropy averages over valid rows (torch's reduction="mean"); the element-wise
losses average over valid rows * K elements, as torch's MSELoss/L1Loss/BCEWithLogitsLoss do.
With no valid row at all the loss is 0 with a zero gradient (an empty batch is not an error).
The gradient has the outputs' dtype; sums are accumulated in float64.
"""
from __future__ import annotations

import numpy as np

import recurrent


def _flatten(outputs, targets, mask, class_targets: bool):
    """Validate and reshape to 2-D outputs (N, K), targets (N,) or (N, K), weights (N,)."""
    outputs = np.asarray(outputs)
    if outputs.ndim < 2 or not np.issubdtype(outputs.dtype, np.floating):
        raise ValueError(f"outputs: expected a float array (N, K), got {outputs.dtype} "
                         f"{outputs.shape}")
    lead = outputs.shape[:-1]
    K = outputs.shape[-1]
    logits = np.ascontiguousarray(outputs).reshape(-1, K)  # (N, K)
    targets = np.asarray(targets)
    expected = lead if class_targets else outputs.shape
    if targets.shape != expected:
        raise ValueError(f"targets: expected shape {expected}, got {targets.shape}")
    if class_targets:
        if not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets: expected integer class ids, got {targets.dtype}")
        targets = targets.reshape(-1)  # (N,)
    else:
        targets = targets.reshape(-1, K).astype(logits.dtype, copy=False)  # (N, K)
    weights = None  # (N,) 0/1 in the outputs' dtype, or None = every row counts
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != lead:
            raise ValueError(f"mask: expected shape {lead}, got {mask.shape}")
        weights = (mask.reshape(-1) != 0).astype(logits.dtype)
    return logits, targets, weights


def _log_mean_exp(a, axis=0):
    """log(mean(exp(a), axis)), computed without overflow."""
    top = a.max(axis=axis)
    return top + np.log(np.mean(np.exp(a - np.expand_dims(top, axis)), axis=axis))


class CrossEntropy:
    """Softmax cross-entropy on logits with integer class targets (fused log-softmax + NLL)."""

    name = "cross_entropy"
    target_kind = "class"

    def combine(self, outputs):
        """Members' logits -> the log of the mean of their softmax probabilities (a valid
        logit vector whose softmax is that mean), in float64 then the outputs' dtype."""
        z = np.stack(outputs).astype(np.float64)  # (M, ..., K)
        z -= z.max(axis=-1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))  # log-softmax per member
        return _log_mean_exp(z).astype(outputs[0].dtype)

    def value_and_grad(self, outputs, targets, mask=None):
        logits, targets, weights = _flatten(outputs, targets, mask, class_targets=True)
        N, V = logits.shape
        valid = np.ones(N, bool) if weights is None else weights != 0
        n_valid = int(valid.sum())
        if n_valid == 0:
            return 0.0, np.zeros(np.shape(outputs), logits.dtype)
        t = np.where(valid, targets, 0)  # padding rows may carry any id
        if t[valid].min() < 0 or t[valid].max() >= V:
            raise ValueError(f"targets: class ids must lie in [0, {V}), got "
                             f"[{t[valid].min()}, {t[valid].max()}]")
        rows = np.arange(N)
        # grad doubles as the work buffer: z = logits - max, then exp(z), then softmax
        grad = logits - logits.max(axis=1, keepdims=True)  # (N, V)
        z_target = grad[rows, t].astype(np.float64)  # (N,)
        np.exp(grad, out=grad)
        sums = grad.sum(axis=1, dtype=np.float64)  # (N,)
        nll = np.log(sums) - z_target  # -log softmax(logits)[target], (N,)
        # d loss / d logits = (softmax - onehot(target)) * valid / n_valid
        row_scale = valid / n_valid  # (N,) float64: the outputs' dtype would round 1/n_valid
        nll *= row_scale
        grad *= (row_scale / sums).astype(logits.dtype)[:, None]
        grad[rows, t] -= row_scale.astype(logits.dtype)
        if weights is not None:  # junk (even NaN) in padded rows must not leak: 0 * nan = nan
            nll[~valid] = 0.0
            grad[~valid] = 0.0
        return float(nll.sum()), grad.reshape(np.shape(outputs))


class _Elementwise:
    """Shared plumbing of losses that are a mean of f(output, target) over valid elements."""

    target_kind = "dense"

    def value_and_grad(self, outputs, targets, mask=None):
        values, targets, weights = _flatten(outputs, targets, mask, class_targets=False)
        N, K = values.shape
        n_valid = N if weights is None else int(np.count_nonzero(weights))
        if n_valid == 0:
            return 0.0, np.zeros(np.shape(outputs), values.dtype)
        self._check_targets(targets if weights is None else targets[weights != 0])
        loss_rows, grad = self._pointwise(values, targets)  # (N,), (N, K)
        scale = 1.0 / (n_valid * K)
        if weights is not None:  # assignment, not a product: padded rows may hold NaN
            padded = weights == 0
            loss_rows[padded] = 0.0
            grad[padded] = 0.0
        grad *= values.dtype.type(scale)
        return float(loss_rows.sum(dtype=np.float64) * scale), grad.reshape(np.shape(outputs))

    def _pointwise(self, values, targets):
        """Per-row sums of f and the element-wise derivative df/d(values) (unscaled)."""
        raise NotImplementedError

    def _check_targets(self, targets):
        """ValueError for targets (the valid rows', (n_valid, K)) the loss is not defined
        for; any real value by default."""


class MSE(_Elementwise):
    """Mean squared error."""

    name = "mse"

    def _pointwise(self, values, targets):
        diff = values - targets  # (N, K)
        loss_rows = np.einsum("nk,nk->n", diff, diff, dtype=np.float64)
        diff *= 2
        return loss_rows, diff


class MAE(_Elementwise):
    """Mean absolute error (subgradient 0 where output == target, as torch)."""

    name = "mae"

    def _pointwise(self, values, targets):
        diff = values - targets  # (N, K)
        loss_rows = np.abs(diff).sum(axis=1, dtype=np.float64)
        return loss_rows, np.sign(diff)


class BinaryCrossEntropy(_Elementwise):
    """Sigmoid + binary cross-entropy on logits, for targets in [0, 1].

    Stable form: loss = max(x, 0) - x * y + log1p(exp(-|x|)); d/dx = sigmoid(x) - y.
    """

    name = "binary_cross_entropy"

    def combine(self, outputs):
        """Members' logits -> the logit of the mean of their sigmoid probabilities:
        log(mean p) - log(mean (1 - p)), with log p = -softplus(-x), log(1 - p) =
        -softplus(x)."""
        x = np.stack(outputs).astype(np.float64)  # (M, ..., K)
        log_p = -np.logaddexp(0.0, -x)
        log_q = -np.logaddexp(0.0, x)
        return (_log_mean_exp(log_p) - _log_mean_exp(log_q)).astype(outputs[0].dtype)

    def _check_targets(self, targets):
        """Targets are probabilities: outside [0, 1] the loss has no minimum (a target
        above 1 rewards ever larger logits without end), so training would diverge."""
        inside = (targets >= 0) & (targets <= 1)  # NaN is outside
        if not inside.all():
            bad = targets[~inside]
            found = ("NaN" if np.isnan(bad).any() else
                     f"values in [{bad.min():g}, {bad.max():g}]")
            raise ValueError(f"targets: binary_cross_entropy takes probabilities in [0, 1], "
                             f"got {found}")

    def _pointwise(self, x, y):
        e = np.exp(-np.abs(x))  # (N, K), in (0, 1]: never overflows
        loss = np.maximum(x, 0) - x * y + np.log1p(e)
        # sigmoid(x) from e without overflow: 1/(1+e) for x >= 0, e/(1+e) for x < 0
        sigmoid = np.where(x >= 0, 1.0, e) / (1.0 + e)
        return loss.sum(axis=1, dtype=np.float64), (sigmoid - y).astype(x.dtype, copy=False)


LOSSES = (CrossEntropy(), BinaryCrossEntropy(), MSE(), MAE())


@recurrent.hookimpl
def register_losses(register):
    for loss in LOSSES:
        register(loss)
