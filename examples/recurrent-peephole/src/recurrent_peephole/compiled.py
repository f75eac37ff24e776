"""The peephole LSTM compiled on recurrent's kernel toolkit (_kernel.pyx): the cell this
plugin registers. Parameters, initialisation and equations are the numpy reference's
(cell.py, which tests compare it with); forward and backward make one kernel call each per
sequence, float32 or float64, any thread count with bitwise the same results.

Legend: T time, B batch, I input, H hidden, G = 4H.
"""
from __future__ import annotations

import numpy as np

from . import _kernel
from .cell import ReferencePeepholeLSTMCell

PEEPHOLES = ("peephole_i", "peephole_f", "peephole_o")


class _Cache:
    """What backward reads; backward overwrites the gate cache, so it serves one call."""

    __slots__ = ("arrays", "used")

    def __init__(self, arrays):
        self.arrays = arrays
        self.used = False

    def take(self):
        if self.used:
            raise ValueError("this forward cache was already used by a backward call; "
                             "run forward again")
        self.used = True
        return self.arrays


class PeepholeLSTMCell(ReferencePeepholeLSTMCell):
    """LSTM whose gates also read the cell state (peephole weights), compiled."""

    def __repr__(self):
        return f"<cell {self.name!r} (compiled on recurrent's kernel toolkit)>"

    @staticmethod
    def _arrays(x, states, params):
        """x, h0, c0, W_ih, W_hh, bias = b_ih + b_hh (G,), peep = (p_i, p_f, p_o) (3, H),
        all C-contiguous in x's dtype (float32 or float64)."""
        dtype = x.dtype
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"peephole_lstm runs in float32 or float64, got {dtype}")

        def c(a):
            return np.ascontiguousarray(a, dtype=dtype)

        h0, c0 = (c(s) for s in states)
        G = 4 * h0.shape[1]
        bias = np.zeros(G, dtype)
        for kind in ("bias_ih", "bias_hh"):
            if params.get(kind) is not None:
                bias += params[kind]
        peep = c(np.stack([params[kind] for kind in PEEPHOLES]))
        return c(x), h0, c0, c(params["weight_ih"]), c(params["weight_hh"]), bias, peep

    def forward(self, x, states, params, lengths, num_threads=1):
        x, h0, c0, w_ih, w_hh, bias, peep = self._arrays(x, states, params)
        T, B, _ = x.shape
        H = h0.shape[1]
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        out = np.empty((T, B, H), x.dtype)         # every h_t
        gates = np.empty((T, B, 4 * H), x.dtype)   # the activated gates i, f, g, o
        cells = np.empty((T, B, H), x.dtype)       # every c_t
        h_n, c_n = np.empty((B, H), x.dtype), np.empty((B, H), x.dtype)
        _kernel.forward(out, gates, cells, h_n, c_n, x, h0, c0, w_ih, w_hh, bias, peep,
                        lengths, int(num_threads))
        out.flags.writeable = False  # backward reads it
        cache = _Cache((x, h0, c0, out, gates, cells, w_ih, w_hh, peep, lengths))
        return out, (h_n, c_n), cache

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        x, h0, c0, out, gates, cells, w_ih, w_hh, peep, lengths = cache.take()
        T, B, I = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        d_out = np.ascontiguousarray(d_out, dtype=dtype)
        # copies: the kernel turns d h_n, d c_n into d h0, d c0 in place
        dh, dc = (np.zeros((B, H), dtype) if d is None else np.array(d, dtype, order="C")
                  for d in d_final_states)
        dx = np.empty((T, B, I), dtype)
        dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
        db, dpeep = np.zeros(4 * H, dtype), np.zeros((3, H), dtype)
        _kernel.backward(dx, dh, dc, dw_ih, dw_hh, db, dpeep, gates, d_out, x, h0, c0, out,
                         cells, w_ih, w_hh, peep, lengths, int(num_threads))
        found = {"weight_ih": dw_ih, "weight_hh": dw_hh, "bias_ih": db, "bias_hh": db,
                 **dict(zip(PEEPHOLES, dpeep))}
        for kind, value in found.items():
            if grads.get(kind) is not None:
                grads[kind] += value
        return dx, (dh, dc)
