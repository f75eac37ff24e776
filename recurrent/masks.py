"""Recurrent dropout and zoneout: the masks a cell is handed, how layers draw them, and the
one check of them that cells call.

A cell that supports them declares it (recurrent.protocols.Cell.mask_kinds, e.g.
("recurrent", "zoneout")) and takes ``masks`` in forward() and infer() (and in
infer_int8(), for int8 inference of a layer with zoneout):

    masks = {"recurrent": m, "zoneout": (k_h, ...)}     (either key may be absent)

- "recurrent" (B, H): variational recurrent dropout (Gal & Ghahramani 2016). h_{t-1} is
  multiplied by m where it enters the recurrent product h_{t-1} W_hh^T, the same mask at
  every step of the sequence; the state, the output and any other use of h (e.g. GRU's
  z * h_{t-1}) read the unmasked h. In training m holds 0 and 1 / (1 - p).
- "zoneout": one entry per state name, each None or an array k (T, B, H), or (1, B, H)
  for the same values at every step (Krueger et al. 2016). After each step, every state s
  keeps its previous value by k: s_t = k * s_{t-1} + (1 - k) * candidate_t, the candidate
  being what the cell computes without zoneout from the zoned s_{t-1} (an LSTM's h
  candidate is o * tanh(c~), c~ the un-zoned cell candidate). In training k is 0 or 1,
  drawn per step, row and unit (1 with probability p); in evaluation k = p, the
  expectation. A cell may take the training draws as bool flags instead (its
  zoneout_flags lists the dtypes: takes_flags); layers then hand them so.

Rows past their length keep their state as always (the masks do not apply there). The
backward of a forward call with masks differentiates that call, masks fixed.

Layers (recurrent/layers.py) draw the masks in training from the run's seeded generator,
through variational_mask and zoneout_mask; with ``rows`` (a data-parallel rank's share of
the batch) they are drawn for the whole batch and cut, as recurrent.dropout.dropout_mask.
"""
from __future__ import annotations

import inspect

import numpy as np

from .dropout import dropout_mask

MASK_KINDS = ("recurrent", "zoneout")
# the layer option asking for each kind
OPTIONS = {"recurrent": "recurrent_dropout", "zoneout": "zoneout"}


def supported(cell) -> tuple[str, ...]:
    """The mask kinds ``cell`` takes (its optional mask_kinds member; none without it)."""
    return tuple(getattr(cell, "mask_kinds", ()) or ())


def variational_mask(rng, B, H, p, dtype, rows=None) -> np.ndarray:
    """(B, H): 0 with probability p, else 1 / (1 - p); one per sequence and direction."""
    return np.ascontiguousarray(dropout_mask(rng, (B, H), p, dtype, rows, axis=0))


def bernoulli(rng, shape, p) -> np.ndarray:
    """Booleans of ``shape``, each True with probability p, independently: U < p for U
    uniform on [0, 1). U's leading byte comes from 8 random bits per entry; only where it
    equals p's leading byte (one entry in 256) is the rest of U drawn, as a float
    uniform. Exact for any p, and a fraction of the generator's work of one float
    uniform per entry (zoneout draws T x B x H of them per state)."""
    n = int(np.prod(shape))
    words = rng.integers(0, np.iinfo(np.uint64).max, size=-(-n // 8), dtype=np.uint64,
                         endpoint=True)
    lead = words.view(np.uint8)[:n]       # U's leading byte, uniform on 0..255
    k = int(p * 256)                      # p's: p in [k / 256, (k + 1) / 256)
    out = lead < k
    tie = np.flatnonzero(lead == k)
    if tie.size:
        out[tie] = rng.random(tie.size) < p * 256 - k
    return out.reshape(shape)


def zoneout_mask(rng, T, B, H, p, dtype, rows=None) -> np.ndarray:
    """(T, B, H): 1 (keep the previous value) with probability p, else 0; dtype bool gives
    the flags themselves (a byte each), which cells that list the run's dtype in
    ``zoneout_flags`` take as they are (takes_flags).
    rows=(start, stop, total): drawn for ``total`` rows and cut (dropout_mask's rule)."""
    dtype = np.dtype(dtype)
    if rows is None:
        return bernoulli(rng, (T, B, H), p).astype(dtype, copy=False)
    start, stop, total = rows
    keep = bernoulli(rng, (T, total, H), p).astype(dtype, copy=False)
    return np.ascontiguousarray(keep[:, start:stop])


def takes_masks(method) -> bool:
    """Whether a cell's method takes the ``masks`` keyword (or any keyword); True when
    its signature cannot be read (a compiled function)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "masks" or p.kind is p.VAR_KEYWORD for p in parameters)


def takes_flags(cell, dtype) -> bool:
    """Whether ``cell`` takes zoneout's training draws as bool flags in ``dtype`` runs (its
    optional zoneout_flags member lists those dtypes); otherwise they come as 0/1 values of
    the run's dtype. Flags are binary by type, so a kernel needs no copy of the candidates
    for backward and reads a byte per entry instead of a float."""
    return np.dtype(dtype) in tuple(np.dtype(d) for d in getattr(cell, "zoneout_flags", ()))


def zoneout_expectation(B, H, p, dtype) -> np.ndarray:
    """(1, B, H) full of p: zoneout in evaluation, the same at every step."""
    return np.full((1, B, H), p, dtype)


def check_masks(masks, num_states, T, B, H, dtype, flags=False):
    """A cell's ``masks`` argument as (recurrent (B, H) or None, zoneout or None), arrays
    C-contiguous in ``dtype``; zoneout a tuple with one (T or 1, B, H) array per state,
    all with the same number of steps (a None entry becomes zeros, no zoneout of that
    state), or None when every entry is None. With ``flags`` (a cell that takes them,
    takes_flags) bool zoneout arrays stay flags, as uint8 views. ValueError naming the
    problem."""
    if masks is None:
        return None, None
    if not isinstance(masks, dict) or set(masks) - set(MASK_KINDS):
        raise ValueError(f"masks: expected a dict with keys from {', '.join(MASK_KINDS)}, "
                         f"got {masks!r:.80}")
    rec = masks.get("recurrent")
    if rec is not None:
        rec = np.ascontiguousarray(rec, dtype)
        if rec.shape != (B, H):
            raise ValueError(f"masks['recurrent']: expected shape {(B, H)}, got {rec.shape}")
    zone = masks.get("zoneout")
    if zone is not None:
        zone = tuple(zone)
        if len(zone) != num_states:
            raise ValueError(f"masks['zoneout']: expected {num_states} entries (one per "
                             f"state), got {len(zone)}")
        if all(k is None for k in zone):
            return rec, None
        checked = []
        for k in zone:
            if k is None:
                k = np.zeros((1, B, H), dtype)
            elif flags and np.asarray(k).dtype == np.bool_:
                k = np.ascontiguousarray(k).view(np.uint8)
            else:
                k = np.ascontiguousarray(k, dtype)
            if k.ndim != 3 or k.shape[0] not in (1, T) or k.shape[1:] != (B, H):
                raise ValueError(f"masks['zoneout']: expected shape ({T} or 1, {B}, {H}), "
                                 f"got {k.shape}")
            checked.append(k)
        # the kernels step every state's array by the first one's stride (one value per
        # step, or the same at every step), so entries of 1 step beside entries of T
        # steps (a None among (T, B, H) arrays) are repeated over the T steps
        steps = max(k.shape[0] for k in checked)
        zone = tuple(k if k.shape[0] == steps
                     else np.ascontiguousarray(np.broadcast_to(k, (steps, B, H)))
                     for k in checked)
    return rec, zone
