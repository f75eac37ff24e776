"""A peephole LSTM cell (Gers, Schraudolph & Schmidhuber 2002) in plain numpy: the reference
the compiled cell (compiled.py, the one the plugin registers) is tested against.

The gates also look at the cell state through diagonal "peephole" weights, which helps with
precise timing. Neither torch.nn.LSTM nor keras.layers.LSTM has them.

    a = x W_ih^T + b_ih + h W_hh^T + b_hh            gate blocks i, f, g, o (torch order)
    i = sigmoid(a_i + p_i * c)                       input gate peeks at the old cell
    f = sigmoid(a_f + p_f * c)                       forget gate peeks at the old cell
    g = tanh(a_g)
    c' = f * c + i * g
    o = sigmoid(a_o + p_o * c')                      output gate peeks at the NEW cell
    h' = o * tanh(c')

Parameters: the four standard kinds plus peephole_i, peephole_f, peephole_o, each (H,).

Legend: T time, B batch, I input, H hidden, G = 4H.

It follows recurrent.protocols.Cell: the input projection of all T steps is one matmul
before the loop and the weight gradients are one matmul each after it; only the recurrent
product and the gate arithmetic run per step. Lengths (int64 (B,), 0..T): a row past its
length keeps its state, outputs zeros and passes state gradients through untouched; a row of
length 0 thus outputs zeros, returns its initial state and gets zero gradients.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(a):
    e = np.exp(-np.abs(a))  # never overflows
    return np.where(a >= 0, 1.0, e) / (1.0 + e)


class ReferencePeepholeLSTMCell:
    """LSTM whose gates also read the cell state (peephole weights), plain numpy."""

    name = "peephole_lstm"
    num_gates = 4
    state_names = ("h", "c")

    def param_shapes(self, input_size, hidden_size):
        G, H = 4 * hidden_size, hidden_size
        return {"weight_ih": (G, input_size), "weight_hh": (G, H), "bias_ih": (G,),
                "bias_hh": (G,), "peephole_i": (H,), "peephole_f": (H,), "peephole_o": (H,)}

    def init_params(self, params, hidden_size, rng):
        # torch's LSTM default for every kind, peepholes included: U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / np.sqrt(hidden_size)
        for array in params.values():
            array[...] = rng.uniform(-bound, bound, size=array.shape)

    def _gates(self, a, c, params):
        """Gate activations from pre-activations a (B, 4H) and the old cell c (B, H)."""
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i = _sigmoid(a_i + params["peephole_i"] * c)
        f = _sigmoid(a_f + params["peephole_f"] * c)
        g = np.tanh(a_g)
        c_new = f * c + i * g
        o = _sigmoid(a_o + params["peephole_o"] * c_new)
        return i, f, g, o, c_new

    def forward(self, x, states, params, lengths, num_threads=1):
        T, B, I = x.shape
        H = states[0].shape[1]
        dtype = x.dtype
        valid = np.arange(T)[:, None] < np.asarray(lengths)[None, :]  # (T, B)
        # all T input projections in one matmul; both biases folded in
        ax = (x.reshape(T * B, I) @ params["weight_ih"].T).reshape(T, B, 4 * H) \
            + (params["bias_ih"] + params["bias_hh"])  # (T, B, 4H)
        h, c = (np.array(s, dtype) for s in states)  # copies: inputs stay untouched
        out = np.zeros((T, B, H), dtype)  # (T, B, H)
        h_prev = np.empty((T, B, H), dtype)  # state entering step t (for dW_hh, dh)
        c_prev = np.empty((T, B, H), dtype)
        acts = np.empty((T, 5, B, H), dtype)  # i, f, g, o, tanh(c') per step
        for t in range(T):
            h_prev[t], c_prev[t] = h, c
            i, f, g, o, c_new = self._gates(ax[t] + h @ params["weight_hh"].T, c, params)
            tanh_c = np.tanh(c_new)
            acts[t] = (i, f, g, o, tanh_c)
            keep = valid[t][:, None]  # (B, 1)
            out[t] = np.where(keep, o * tanh_c, 0)
            h = np.where(keep, o * tanh_c, h).astype(dtype)
            c = np.where(keep, c_new, c).astype(dtype)
        cache = (x, valid, h_prev, c_prev, acts, params)
        return out, (h, c), cache

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        x, valid, h_prev, c_prev, acts, params = cache
        T, B, H = d_out.shape
        dtype = d_out.dtype
        dh, dc = (np.zeros((B, H), dtype) if d is None else np.array(d, dtype)
                  for d in d_final_states)
        p_i, p_f, p_o = params["peephole_i"], params["peephole_f"], params["peephole_o"]
        da_all = np.zeros((T, B, 4 * H), dtype)  # d pre-activations; zero on padded steps
        for t in reversed(range(T)):
            keep = valid[t][:, None]
            i, f, g, o, tanh_c = acts[t]
            c = c_prev[t]
            # out[t] = h' on valid rows; past the length the carried state is passed on
            dh_new = np.where(keep, dh + d_out[t], 0)
            dc_new = np.where(keep, dc, 0)
            c_new = f * c + i * g
            # h' = o * tanh(c')
            da_o = dh_new * tanh_c * o * (1 - o)
            dc_total = dc_new + dh_new * o * (1 - tanh_c * tanh_c)
            # o = sigmoid(a_o + p_o * c')
            dc_total = dc_total + da_o * p_o
            # c' = f * c + i * g;  i, f = sigmoid(. + p * c);  g = tanh(a_g)
            da_i = dc_total * g * i * (1 - i)
            da_f = dc_total * c * f * (1 - f)
            da_g = dc_total * i * (1 - g * g)
            dc_prev = dc_total * f + da_i * p_i + da_f * p_f
            grads["peephole_i"] += (da_i * c).sum(axis=0)
            grads["peephole_f"] += (da_f * c).sum(axis=0)
            grads["peephole_o"] += (da_o * c_new).sum(axis=0)
            da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (B, 4H)
            da_all[t] = da
            dh = np.where(keep, da @ params["weight_hh"], dh)
            dc = np.where(keep, dc_prev, dc)
        da2 = da_all.reshape(T * B, 4 * H)
        grads["weight_ih"] += da2.T @ x.reshape(T * B, -1)
        grads["weight_hh"] += da2.T @ h_prev.reshape(T * B, H)
        grads["bias_ih"] += da2.sum(axis=0)
        grads["bias_hh"] += da2.sum(axis=0)
        dx = (da2 @ params["weight_ih"]).reshape(T, B, -1)  # (T, B, I)
        return dx.astype(dtype), (dh.astype(dtype), dc.astype(dtype))
