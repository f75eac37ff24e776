"""Gradient clipping with PyTorch's semantics, in place, over any set of gradient arrays.

`grads` may be a dict of arrays (its values), a list or tuple of arrays, or one array (for
example the model's flat gradient buffer). None entries are skipped, as torch skips
parameters without a gradient. float32 and float64 arrays go through the kernels in
recurrent/_kernels/gradclip.pyx (one that is not C-contiguous through a C-ordered copy, so
its norm and clipped values are bitwise those of the same values in a contiguous array);
other float dtypes (float16) through numpy.
"""
from __future__ import annotations

import math

import numpy as np

from ._kernels import gradclip


def _arrays(grads, in_place=True):
    if isinstance(grads, np.ndarray):
        items = [grads]
    elif isinstance(grads, dict):
        items = list(grads.values())
    elif isinstance(grads, (list, tuple)):
        items = list(grads)
    else:
        raise ValueError(f"grads must be an array, a list/tuple of arrays or a dict of arrays, "
                         f"got {type(grads).__name__}")
    arrays = []
    for g in items:
        if g is None:
            continue
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise ValueError(f"every gradient must be a float numpy array, got "
                             f"{getattr(g, 'dtype', type(g).__name__)}")
        if in_place and not g.flags.writeable:
            raise ValueError("gradients are clipped in place, but an array is read-only")
        if g.size:
            arrays.append(g)
    return arrays


def _flat(g):
    """g's entries in C order as a 1-D array for the kernels (a view of g when it is
    C-contiguous, else a copy: see _write_back), or None when its dtype needs the numpy
    path."""
    if g.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(g).reshape(-1)
    return None


def _write_back(g, flat):
    """After a kernel changed ``flat`` (from _flat): its values into g, when flat is a
    copy."""
    if not g.flags.c_contiguous:
        g[...] = flat.reshape(g.shape)


def _number(value, name):
    """``value`` as a float, else ValueError naming ``name``."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None


def _norm_type(norm_type) -> float:
    """``norm_type`` as the float p of a p-norm, else ValueError: positive, or inf."""
    p = _number(norm_type, "norm_type")
    if not p > 0:
        raise ValueError(f"norm_type must be positive (or inf), got {norm_type!r}")
    return p


def _norm_part(g, p):
    flat = _flat(g)
    if flat is not None:
        return gradclip.norm_part(flat, p)
    a = np.abs(g.astype(np.float64))
    if p == math.inf:
        return float(a.max())
    return float((a ** p).sum())


def _total_norm(arrays, p):
    """The p-norm of all entries of ``arrays`` together, accumulated in double (so float32
    gradients whose squares overflow float32 still get their finite norm)."""
    parts = [_norm_part(g, p) for g in arrays]
    if p == math.inf:
        return max(parts, key=lambda v: (math.isnan(v), v))
    if p == 2:
        return math.sqrt(math.fsum(parts))
    if p == 1:
        return math.fsum(parts)
    return math.fsum(parts) ** (1.0 / p)


def total_norm(grads, norm_type=2.0) -> float:
    """The global norm_type-norm of all gradients (grads as for clip_grad_norm), without
    clipping: what clip_grad_norm returns. 0.0 when there are no entries."""
    p = _norm_type(norm_type)
    arrays = _arrays(grads, in_place=False)
    return _total_norm(arrays, p) if arrays else 0.0


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False) -> float:
    """Scale all gradients together so that their global norm is at most `max_norm`.

    As torch.nn.utils.clip_grad_norm_: total_norm is the norm_type-norm of all entries;
    each array is multiplied by min(1, max_norm / (total_norm + 1e-6)). Returns total_norm
    from before clipping. A NaN or infinite total norm raises FloatingPointError when
    error_if_nonfinite is true, else (as in torch) it propagates into the gradients.
    """
    p = _norm_type(norm_type)
    max_norm = _number(max_norm, "max_norm")
    if math.isnan(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm!r}")
    arrays = _arrays(grads)
    if not arrays:
        return 0.0
    total = _total_norm(arrays, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise FloatingPointError(
            f"the total norm of order {norm_type} of the gradients is {total}, so they "
            f"cannot be clipped; set error_if_nonfinite=False to clip anyway")
    factor = max_norm / (total + 1e-6) if math.isfinite(total) else (
        math.nan if math.isnan(total) else 0.0)
    factor = min(factor, 1.0) if not math.isnan(factor) else factor
    if factor != 1.0:
        for g in arrays:
            flat = _flat(g)
            if flat is not None:
                gradclip.scale(flat, factor)
                _write_back(g, flat)
            else:
                g *= g.dtype.type(factor)
    return total


def clip_grad_value(grads, clip_value) -> None:
    """Clip every gradient entry to [-clip_value, clip_value] in place (NaN stays NaN), as
    torch.nn.utils.clip_grad_value_."""
    clip_value = _number(clip_value, "clip_value")
    if math.isnan(clip_value) or clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value!r}")
    for g in _arrays(grads):
        flat = _flat(g)
        if flat is not None:
            gradclip.clamp(flat, clip_value)
            _write_back(g, flat)
        else:
            np.clip(g, -clip_value, clip_value, out=g)
