"""Cutting a long id sequence into parallel streams for stateful truncated BPTT.

Dimension legend: N characters in the split, B parallel streams (batch rows), T window
length (seq_len), L characters per stream, W warm-up characters.

Training: the split is cut into B contiguous streams of L characters; window w holds
characters [w*T, (w+1)*T) of every stream, so the recurrent state at the end of window w
is exactly the context window w+1 needs (reset=False), and only the first window of an
epoch starts from zeros (reset=True). A random start offset per epoch (0 to T) moves the
window boundaries so the model does not always truncate gradients at the same places.

Evaluation scores every target of the split exactly once, with S streams run side by
side for speed. Stream s > 0 first reads W characters of the text before its own segment
(not scored), so it does not start its scored segment from a cold zero state.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np


def windows_per_epoch(n_chars: int, batch_size: int, seq_len: int) -> int:
    """Number of (T, B) windows one pass over ``n_chars`` ids yields (0 if too short)."""
    return max(0, (n_chars - 1) // (batch_size * seq_len))


def stream_windows(ids: np.ndarray, batch_size: int, seq_len: int,
                   rng: np.random.Generator | None = None) -> Iterator[dict]:
    """One epoch of training batches over ``ids`` (N,) int64.

    Yields {"x": (T, B) int64, "y": (T, B) int64, "lengths": None, "reset": bool}; y is x
    shifted by one character. With ``rng`` the epoch starts at a random offset from 0 to
    T (at most the characters left over).
    """
    B, T = batch_size, seq_len
    n_windows = windows_per_epoch(len(ids), B, T)
    if n_windows == 0:
        return
    L = n_windows * T  # inputs per stream
    slack = len(ids) - 1 - B * L  # characters left over; the offset may use them
    offset = int(rng.integers(0, min(T, slack) + 1)) if rng is not None else 0
    chunk = ids[offset: offset + B * L + 1]
    inputs = chunk[:-1].reshape(B, L)  # (B, L)
    targets = chunk[1:].reshape(B, L)  # (B, L)
    for w in range(n_windows):
        cols = slice(w * T, (w + 1) * T)
        yield {
            "x": np.ascontiguousarray(inputs[:, cols].T),  # (T, B)
            "y": np.ascontiguousarray(targets[:, cols].T),  # (T, B)
            "lengths": None,
            "reset": w == 0,
        }


def eval_layout(n_targets: int, max_streams: int, warmup: int) -> tuple[int, int, int]:
    """(S streams, L scored targets per stream, W warm-up) for scoring ``n_targets``.

    Several streams only pay off when each segment is much longer than its warm-up;
    otherwise one stream reads the split front to back.
    """
    if n_targets <= 0:
        raise ValueError("nothing to evaluate: the split needs at least 2 characters")
    streams = min(max_streams, n_targets // (8 * max(warmup, 1)))
    if streams <= 1:
        return 1, n_targets, 0
    seg = -(-(n_targets - warmup) // streams)  # ceil: the last segment may be short
    return streams, seg, warmup


def eval_streams(ids: np.ndarray, max_streams: int = 16, warmup: int = 256
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, targets and score mask for scoring every next-character target of ``ids``.

    Returns x (W+L, S) int64, y (W+L, S) int64, mask (W+L, S) bool. Target k of the split
    is ids[k+1] given ids[..k]. Stream 0 scores targets [0, W+L); stream s >= 1 reads
    from target s*L and scores its last L steps, targets [s*L+W, (s+1)*L+W). Together
    they cover every target once; steps past the end are padding with mask False.
    """
    n_targets = len(ids) - 1
    S, L, W = eval_layout(n_targets, max_streams, warmup)
    steps = W + L
    pos = np.arange(steps)[:, None] + (np.arange(S) * L)[None, :]  # (W+L, S) target index
    mask = pos < n_targets
    mask[:W, 1:] = False  # warm-up steps of streams s >= 1 belong to the stream before
    safe = np.minimum(pos, n_targets - 1)
    x = np.ascontiguousarray(ids[safe])  # (W+L, S)
    y = np.ascontiguousarray(ids[safe + 1])  # (W+L, S)
    return x, y, mask
