"""Truncated BPTT of pooled outputs: the gradient of each row flows back through its last
K valid steps only, while the outputs stay those of the whole sequence.

Row b (length len_b) is split into a constant prefix of p_b = len_b - min(K, len_b) steps
and a differentiated suffix of s_b = min(K, len_b) steps. SequenceModel runs the prefixes
first without gradient (run_prefix), then the suffixes, gathered per row (gather_suffix),
from the state each prefix ended with; pooling adds the prefix outputs' sum/maximum as
constants (recurrent.pooling.PrefixSummary). Backward scatters the suffix gradients back
to their time steps (scatter_suffix); prefix steps get none.

Dimension legend: T time steps, B batch rows, H hidden units, P = max p_b, S = max s_b.
``lengths`` is always an int64 (B,) array (recurrent.lengths).
"""
from __future__ import annotations

import numpy as np

from .lengths import valid_mask
from .pooling import PrefixSummary


def truncation_plan(lengths, K):
    """(prefix (B,), suffix (B,), index (S, B)) for K-step truncation of rows of ``lengths``.

    index[j, b] = p_b + j: the time step that suffix step j of row b gathers. It never
    leaves 0..T-1 (s_b = K ends at len_b - 1; otherwise p_b = 0 and j < S <= T) and past
    s_b it points at the row's padding, as the layer's reversal gather does.
    """
    lengths = np.asarray(lengths, np.int64)
    suffix = np.minimum(lengths, K)  # (B,)
    prefix = lengths - suffix  # (B,)
    index = prefix[None, :] + np.arange(int(suffix.max()))[:, None]  # (S, B)
    return prefix, suffix, index


def run_prefix(rnn, h_in, states, prefix, num_threads):
    """Pass 1, constant: each row's first prefix[b] steps of h_in (T, B, E or I) through
    the layer ``rnn`` (Recurrent.run) from ``states``, keeping nothing for backward.
    Returns (PrefixSummary of their outputs, the states each row starts its suffix from;
    a row without prefix keeps its given state)."""
    P = int(prefix.max())
    out, after = rnn.run(np.ascontiguousarray(h_in[:P]), states, prefix, False, num_threads)
    return PrefixSummary(out, prefix), after


def gather_suffix(h_in, index):
    """h_in (T, B, ...) -> (S, B, ...): suffix step j of row b is h_in[index[j, b], b]."""
    return h_in[index, np.arange(h_in.shape[1])[None, :]]


def scatter_suffix(d_suffix, index, suffix, T):
    """Gradients back through gather_suffix: d_suffix (S, B, ...) -> (T, B, ...), zero at
    prefix steps and wherever the gather read a row's padding."""
    S, B = d_suffix.shape[:2]
    d_in = np.zeros((T,) + d_suffix.shape[1:], d_suffix.dtype)
    d_in[index, np.arange(B)[None, :]] = d_suffix * valid_mask(suffix, S, B)[:, :, None]
    return d_in
