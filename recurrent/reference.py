"""Plain-numpy reference cells: the test oracle for the fast kernels, and a correct slow path.

Written for reading, not speed: one Python iteration per time step, one line per equation,
every backward line next to a comment quoting the forward line it differentiates. The cells
follow recurrent.protocols.Cell exactly, so any layer accepts them in place of a fast cell,
and they run in whatever float dtype they are given (float32, float64, ...).

Dimension legend: T time steps, B batch rows, I input features, H hidden units,
G = num_gates * H rows of the stacked gate weights (gate order from recurrent/layout.py).

Variable lengths (mask m[t, b] = t < lengths[b], lengths an int64 (B,) array in 0..T): a
row past its length keeps its state, outputs zero, ignores d_out there, and passes its state
gradients through unchanged. A row of length 0 is past its length from the start: zero
outputs, final state = initial state, zero gradients except d initial = d final.

Recurrent dropout and zoneout (``masks``, recurrent/masks.py): the recurrent product reads
h * m; after the step each state is mixed with its previous value,
s_t = k * s_{t-1} + (1 - k) * candidate_t, and its backward splits d s_t the same way.
"""
from __future__ import annotations

import numpy as np

from .cellbase import LN_EPS, LayerNormLSTMLayout, TorchLayoutCell
from .layout import GATE_ORDER, STATE_NAMES
from .lengths import valid_mask
from .masks import MASK_KINDS, check_masks
from .quant import quantize_rows


def _sigmoid(a):
    # Written with exp of a non-positive number only, so it never overflows.
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


class ReferenceCell(TorchLayoutCell):
    """The time loop, masking and BPTT shared by every reference cell (parameter shapes and
    init: recurrent/cellbase.py, shared with the compiled cells).

    A subclass supplies one step forward (x_t, states -> new states, step cache) and its
    backward (d new states, step cache -> dx_t, d previous states), adding into ``grads``.
    """

    name: str
    num_gates: int
    state_names: tuple
    mask_kinds = MASK_KINDS
    # every matrix product of the step equations (bf16_matmul in the BF16 cells)
    matmul = staticmethod(np.matmul)

    def __init__(self):
        self.gate_order = GATE_ORDER[self.name]

    def __repr__(self):
        return f"<reference cell {self.name!r}>"

    def step(self, x_t, states, params):
        new_states, _ = self._step_forward(x_t, states, params)
        return new_states

    def quantize(self, params):
        """params with the weights as Int8Weight: the int8 form infer_int8 takes."""
        return {k: Int8Weight(v) if k.startswith("weight") else np.asarray(v, np.float32)
                for k, v in params.items()}

    def infer_int8(self, x, states, qparams, lengths, num_threads=1, masks=None):
        """The time loop with int8 products (float32): (out, final states)."""
        out, finals, _ = self.forward(np.asarray(x, np.float32),
                                      tuple(np.asarray(s, np.float32) for s in states),
                                      qparams, lengths, masks=masks)
        return out, finals

    def forward(self, x, states, params, lengths, num_threads=1, masks=None):
        T, B, _ = x.shape
        valid = valid_mask(lengths, T, B)                     # (T, B)
        H = states[0].shape[1]
        m, zone = check_masks(masks, len(self.state_names), T, B, H, x.dtype)
        out = np.zeros((T, B, H), dtype=x.dtype)              # (T, B, H)
        states = tuple(np.array(s, dtype=x.dtype) for s in states)   # copies: never modify inputs
        step_caches = []
        for t in range(T):
            new_states, step_cache = self._step_forward(x[t], states, params, m)
            if zone is not None:
                # s_t = k * s_{t-1} + (1 - k) * candidate_t
                ks = _zone_at(zone, t)
                new_states = tuple(k * old + (1 - k) * new
                                   for k, old, new in zip(ks, states, new_states))
            keep = valid[t][:, None]                           # (B, 1)
            out[t] = np.where(keep, new_states[0], 0)
            states = tuple(np.where(keep, new, old) for new, old in zip(new_states, states))
            step_caches.append(step_cache)
        cache = (valid, step_caches, params, x.shape[2], zone)
        return out, states, cache

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        valid, step_caches, params, input_size, zone = cache
        T, B, H = d_out.shape
        # d_states: gradient w.r.t. the state carried INTO the step being processed next.
        d_states = [np.zeros((B, H), d_out.dtype) if d is None else np.array(d, d_out.dtype)
                    for d in d_final_states]
        dx = np.zeros((T, B, input_size), dtype=d_out.dtype)  # (T, B, I)
        for t in reversed(range(T)):
            keep = valid[t][:, None]
            # forward: out[t] = new_states[0] on valid rows, 0 elsewhere; the carried state is
            # the new state on valid rows and the old one elsewhere.
            d_new = [np.where(keep, d, 0) for d in d_states]
            d_new[0] = d_new[0] + np.where(keep, d_out[t], 0)
            d_direct = None
            if zone is not None:
                # s_t = k * s_{t-1} + (1 - k) * candidate_t
                ks = _zone_at(zone, t)
                d_direct = [k * d for k, d in zip(ks, d_new)]
                d_new = [(1 - k) * d for k, d in zip(ks, d_new)]
            dx_t, d_prev = self._step_backward(d_new, step_caches[t], params, grads)
            if d_direct is not None:
                d_prev = [dp + dd for dp, dd in zip(d_prev, d_direct)]
            dx[t] = np.where(keep, dx_t, 0)
            d_states = [np.where(keep, dp, d) for dp, d in zip(d_prev, d_states)]
        return dx, tuple(d_states)

    # -- one step: supplied by each cell -------------------------------------------------
    # m: the recurrent-dropout mask (B, H) or None; the recurrent product reads h * m.
    def _step_forward(self, x_t, states, params, m=None):
        raise NotImplementedError

    def _step_backward(self, d_new_states, step_cache, params, grads):
        raise NotImplementedError


def _zone_at(zone, t):
    """Each state's zoneout values (B, H) at step t (arrays (T, B, H) or (1, B, H))."""
    return [k[t] if k.shape[0] > 1 else k[0] for k in zone]


def _masked(h, m):
    """h as the recurrent product reads it: times the recurrent-dropout mask m, if any."""
    return h if m is None else h * m


def _unmasked(dh, m):
    """The gradient reaching h through the product that read h * m."""
    return dh if m is None else dh * m


# int8 inference
# ===============
# The arithmetic of recurrent/_kernels/int8.pyx in numpy: a reference cell's quantize()
# puts Int8Weight objects where its params hold the weights, and its step equations'
# products a @ W^T become int8_product(a, W): rows of a quantised as the kernels quantise
# them (quantize_rows, bit for bit), exact integer sums int8_sums, dequantised.

class Int8Weight:
    """A weight matrix (G, K) quantised per row: q int8 (G, K), scale float32 (G,)."""

    def __init__(self, w):
        self.q, self.scale = quantize_rows(w)


def int8_sums(qa, qw):
    """The exact integer sums (m, G) of quantised rows qa (m, K) and qw (G, K), int32."""
    return (qa.astype(np.int64) @ qw.astype(np.int64).T).astype(np.int32)


def int8_product(a, w):
    """a (m, K) @ W^T with W an Int8Weight: (m, G) float32, the sums times the scales
    (a zero sum gives 0, also where the product of the scales overflows float32, but not
    where a scale is NaN: a row holding infinity or NaN gives NaN)."""
    qa, sa = quantize_rows(a)
    sums = int8_sums(qa, w.q).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scales = sa[:, None] * w.scale[None, :]
        scaled = sums * scales
    return np.where((sums == 0) & ~np.isnan(scales), 0, scaled).astype(np.float32)


def _times_wt(a, w, matmul=np.matmul):
    """a @ w.T (through ``matmul``), or int8_product(a, w) when w is an Int8Weight (int8
    inference)."""
    if isinstance(w, Int8Weight):
        return int8_product(a, w)
    return matmul(a, w.T)


def _add_weight_grads(grads, d_gates_ih, d_gates_hh, x_t, h_prev, matmul=np.matmul):
    """dW_ih += dA_ih^T x, dW_hh += dA_hh^T h (products through ``matmul``), db += column
    sums (A = the pre-activations)."""
    grads["weight_ih"] += matmul(d_gates_ih.T, x_t)
    grads["weight_hh"] += matmul(d_gates_hh.T, h_prev)
    grads["bias_ih"] += d_gates_ih.sum(axis=0)
    grads["bias_hh"] += d_gates_hh.sum(axis=0)


class _SimpleRNNCell(ReferenceCell):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    num_gates = 1

    def _activation(self, a):
        raise NotImplementedError

    def _activation_grad(self, a, h_new):
        raise NotImplementedError

    def _step_forward(self, x_t, states, params, m=None):
        (h,) = states
        hm = _masked(h, m)
        a = _times_wt(x_t, params["weight_ih"], self.matmul) + params["bias_ih"] \
            + _times_wt(hm, params["weight_hh"], self.matmul) + params["bias_hh"]  # (B, H)
        h_new = self._activation(a)
        return (h_new,), (x_t, hm, m, a, h_new)

    def _step_backward(self, d_new_states, step_cache, params, grads):
        (dh_new,) = d_new_states
        x_t, hm, m, a, h_new = step_cache
        # h_new = act(a)
        da = dh_new * self._activation_grad(a, h_new)
        _add_weight_grads(grads, da, da, x_t, hm, self.matmul)
        # a = x W_ih^T + ... + (h * m) W_hh^T + ...
        return self.matmul(da, params["weight_ih"]), \
            (_unmasked(self.matmul(da, params["weight_hh"]), m),)


class RNNTanhCell(_SimpleRNNCell):
    name = "rnn_tanh"
    state_names = STATE_NAMES["rnn_tanh"]

    def _activation(self, a):
        return np.tanh(a)

    def _activation_grad(self, a, h_new):
        return 1 - h_new * h_new


class RNNReluCell(_SimpleRNNCell):
    name = "rnn_relu"
    state_names = STATE_NAMES["rnn_relu"]

    def _activation(self, a):
        return np.maximum(a, 0)

    def _activation_grad(self, a, h_new):
        return (a > 0).astype(a.dtype)


class LSTMCell(ReferenceCell):
    """Gates i, f, g, o (PyTorch order):
        i, f, o = sigmoid(.), g = tanh(.)   of   x W_ih^T + b_ih + h W_hh^T + b_hh
        c' = f * c + i * g
        h' = o * tanh(c')
    """

    name = "lstm"
    num_gates = 4
    state_names = STATE_NAMES["lstm"]

    def _step_forward(self, x_t, states, params, m=None):
        h, c = states
        hm = _masked(h, m)
        a = _times_wt(x_t, params["weight_ih"], self.matmul) + params["bias_ih"] \
            + _times_wt(hm, params["weight_hh"], self.matmul) + params["bias_hh"]  # (B, 4H)
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        h_new = o * tanh_c
        return (h_new, c_new), (x_t, hm, m, c, i, f, g, o, tanh_c)

    def _step_backward(self, d_new_states, step_cache, params, grads):
        dh_new, dc_new = d_new_states
        x_t, hm, m, c, i, f, g, o, tanh_c = step_cache
        # h' = o * tanh(c')
        d_o = dh_new * tanh_c
        dc = dc_new + dh_new * o * (1 - tanh_c * tanh_c)
        # c' = f * c + i * g
        d_f = dc * c
        d_i = dc * g
        d_g = dc * i
        dc_prev = dc * f
        # i, f, o = sigmoid(a_*), g = tanh(a_g)
        da = np.concatenate([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g * g),
                             d_o * o * (1 - o)], axis=1)     # (B, 4H)
        _add_weight_grads(grads, da, da, x_t, hm, self.matmul)
        return self.matmul(da, params["weight_ih"]), \
            (_unmasked(self.matmul(da, params["weight_hh"]), m), dc_prev)


class GRUCell(ReferenceCell):
    """Gates r, z, n (PyTorch order), b_hn inside the reset product:
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h
    """

    name = "gru"
    num_gates = 3
    state_names = STATE_NAMES["gru"]

    def _step_forward(self, x_t, states, params, m=None):
        (h,) = states
        hm = _masked(h, m)
        a_x = _times_wt(x_t, params["weight_ih"], self.matmul) + params["bias_ih"]  # input
        a_h = _times_wt(hm, params["weight_hh"], self.matmul) + params["bias_hh"]  # recurrent
        ax_r, ax_z, ax_n = np.split(a_x, 3, axis=1)
        ah_r, ah_z, ah_n = np.split(a_h, 3, axis=1)
        r = _sigmoid(ax_r + ah_r)
        z = _sigmoid(ax_z + ah_z)
        n = np.tanh(ax_n + r * ah_n)
        h_new = (1 - z) * n + z * h
        return (h_new,), (x_t, h, hm, m, r, z, n, ah_n)

    def _step_backward(self, d_new_states, step_cache, params, grads):
        (dh_new,) = d_new_states
        x_t, h, hm, m, r, z, n, ah_n = step_cache
        # h' = (1 - z) * n + z * h
        d_n = dh_new * (1 - z)
        d_z = dh_new * (h - n)
        dh_direct = dh_new * z
        # n = tanh(ax_n + r * ah_n)
        da_n = d_n * (1 - n * n)
        d_r = da_n * ah_n
        dah_n = da_n * r
        # r, z = sigmoid(ax_* + ah_*)
        da_r = d_r * r * (1 - r)
        da_z = d_z * z * (1 - z)
        dax = np.concatenate([da_r, da_z, da_n], axis=1)      # (B, 3H)
        dah = np.concatenate([da_r, da_z, dah_n], axis=1)     # (B, 3H)
        _add_weight_grads(grads, dax, dah, x_t, hm, self.matmul)
        # a_h = (h * m) W_hh^T + b_hh
        return self.matmul(dax, params["weight_ih"]), \
            (_unmasked(self.matmul(dah, params["weight_hh"]), m) + dh_direct,)


# bf16 products
# =============
# The arithmetic of the cell kernels' bf16 path (recurrent/_kernels/*.pyx bf16=True) in
# numpy: both operands of every matrix product rounded to bf16, the products summed in
# float64 and the result in the operands' dtype; everything else as the float32 reference.

def bf16_round(a):
    """a (float32) with every value rounded to the nearest bf16 (ties to even), as float32:
    the low 16 bits of the float32 bit pattern rounded away. NaN stays NaN; a denormal
    becomes a zero of its sign, as in the kernels (bf16mat.h, the instruction's rule)."""
    a = np.ascontiguousarray(a, np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    denormal = np.abs(a) < np.finfo(np.float32).tiny
    return np.where(np.isnan(a), a,
                    np.where(denormal, np.copysign(np.float32(0), a), rounded.view(np.float32)))


def bf16_matmul(a, b):
    """a @ b with both operands rounded to bf16 (bf16_round), summed in float64, returned
    in the operands' dtype."""
    exact = bf16_round(a).astype(np.float64) @ bf16_round(b).astype(np.float64)
    return exact.astype(np.result_type(a, b), copy=False)


class BF16RNNTanhCell(RNNTanhCell):
    """RNNTanhCell with every matrix product through bf16_matmul: the oracle of the rnn
    kernel's bf16 path (float32 arrays); so are the three below for theirs."""

    matmul = staticmethod(bf16_matmul)


class BF16RNNReluCell(RNNReluCell):
    matmul = staticmethod(bf16_matmul)


class BF16LSTMCell(LSTMCell):
    matmul = staticmethod(bf16_matmul)


class BF16GRUCell(GRUCell):
    matmul = staticmethod(bf16_matmul)


def _layer_norm(v, blocks):
    """v (B, blocks * n) normalised over each block of n -> (v_hat, rstd (B, blocks, 1)),
    in v's dtype.

    The statistics are taken in float64 at least: in float32 the mean of a block of equal
    values can round an ulp off them (which rstd, up to 1 / sqrt(LN_EPS), scales up to
    O(1) instead of exact zeros), and the squared deviations overflow above ~1.8e19; the
    kernels avoid both their own way (recurrent/_kernels/lnlstm.h)."""
    w = v.reshape(v.shape[0], blocks, -1)
    w = w.astype(np.promote_types(w.dtype, np.float64), copy=False)
    mean = w.mean(axis=2, keepdims=True)
    rstd = 1 / np.sqrt(((w - mean) ** 2).mean(axis=2, keepdims=True) + LN_EPS)
    return (((w - mean) * rstd).astype(v.dtype, copy=False).reshape(v.shape),
            rstd.astype(v.dtype, copy=False))


def _layer_norm_backward(d_hat, v_hat, rstd, blocks):
    """d v from d v_hat for v_hat = LN(v) per block (rstd as _layer_norm returned it)."""
    d = d_hat.reshape(d_hat.shape[0], blocks, -1)
    n = v_hat.reshape(d.shape)
    dv = rstd * (d - d.mean(axis=2, keepdims=True) - n * (d * n).mean(axis=2, keepdims=True))
    return dv.reshape(d_hat.shape)


class LayerNormLSTMCell(LayerNormLSTMLayout, ReferenceCell):
    """The LSTM with layer normalisation (Ba, Kiros & Hinton 2016), each gate block
    normalised on its own (LN: mean and variance over the block's H values, recurrent/
    cellbase.py for the parameters):
        a = g_ih * LN(x W_ih^T) + b_ih + g_hh * LN(h W_hh^T) + b_hh      (B, 4H)
        i, f, o = sigmoid(.), g = tanh(.)   of   a's blocks
        c' = f * c + i * g
        h' = o * tanh(g_c * LN(c') + b_c)
    """

    name = "ln_lstm"
    num_gates = 4
    state_names = STATE_NAMES["ln_lstm"]

    def _step_forward(self, x_t, states, params, m=None):
        h, c = states
        hm = _masked(h, m)
        nx, rs_x = _layer_norm(_times_wt(x_t, params["weight_ih"], self.matmul), 4)  # (B, 4H)
        nh, rs_h = _layer_norm(_times_wt(hm, params["weight_hh"], self.matmul), 4)
        a = params["ln_gain_ih"] * nx + params["bias_ih"] + params["ln_gain_hh"] * nh \
            + params["bias_hh"]                                # (B, 4H)
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
        c_new = f * c + i * g
        nc, rs_c = _layer_norm(c_new, 1)
        tanh_c = np.tanh(params["ln_gain_c"] * nc + params["ln_bias_c"])
        h_new = o * tanh_c
        cache = (x_t, hm, m, c, nx, rs_x, nh, rs_h, i, f, g, o, nc, rs_c, tanh_c)
        return (h_new, c_new), cache

    def _step_backward(self, d_new_states, step_cache, params, grads):
        dh_new, dc_new = d_new_states
        x_t, hm, m, c, nx, rs_x, nh, rs_h, i, f, g, o, nc, rs_c, tanh_c = step_cache
        # h' = o * tanh(g_c * nc + b_c)
        d_o = dh_new * tanh_c
        d_cn = dh_new * o * (1 - tanh_c * tanh_c)
        grads["ln_gain_c"] += (d_cn * nc).sum(axis=0)
        grads["ln_bias_c"] += d_cn.sum(axis=0)
        # nc = LN(c')
        dc = dc_new + _layer_norm_backward(d_cn * params["ln_gain_c"], nc, rs_c, 1)
        # c' = f * c + i * g
        d_f = dc * c
        d_i = dc * g
        d_g = dc * i
        dc_prev = dc * f
        # i, f, o = sigmoid(a_*), g = tanh(a_g)
        da = np.concatenate([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g * g),
                             d_o * o * (1 - o)], axis=1)     # (B, 4H)
        # a = g_ih * nx + b_ih + g_hh * nh + b_hh
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        grads["ln_gain_ih"] += (da * nx).sum(axis=0)
        grads["ln_gain_hh"] += (da * nh).sum(axis=0)
        # nx = LN(x W_ih^T), nh = LN(h W_hh^T)
        d_xa = _layer_norm_backward(da * params["ln_gain_ih"], nx, rs_x, 4)
        d_ha = _layer_norm_backward(da * params["ln_gain_hh"], nh, rs_h, 4)
        grads["weight_ih"] += self.matmul(d_xa.T, x_t)
        grads["weight_hh"] += self.matmul(d_ha.T, hm)
        return self.matmul(d_xa, params["weight_ih"]), \
            (_unmasked(self.matmul(d_ha, params["weight_hh"]), m), dc_prev)


class BF16LayerNormLSTMCell(LayerNormLSTMCell):
    """LayerNormLSTMCell with every matrix product through bf16_matmul (bf16 products,
    above): the oracle of the ln_lstm kernel's bf16 path."""

    matmul = staticmethod(bf16_matmul)


# One instance per cell: reference cells hold no state between calls.
CELLS = {cell.name: cell for cell in (RNNTanhCell(), RNNReluCell(), LSTMCell(), GRUCell(),
                                     LayerNormLSTMCell())}


def get_reference_cell(name):
    """The reference cell for a built-in cell name ('rnn_tanh', 'rnn_relu', 'lstm', 'gru',
    'ln_lstm')."""
    if name not in CELLS:
        raise ValueError(f"no reference cell {name!r}; known: {', '.join(sorted(CELLS))}")
    return CELLS[name]


# Losses
# ======
# Plain-numpy references of the built-in losses (appended by the losses' author).
#
# Written the textbook way, one formula per line, computed in float64 whatever the input
# dtype: the oracle for plugins/losses.py. Same contract as recurrent.protocols.Loss:
# outputs (N, K); targets (N,) class ids for cross-entropy, (N, K) floats otherwise; mask
# (N,) selects the rows that count; the value is the mean over valid rows (cross-entropy) or
# valid elements (the others); masked rows get zero gradient and may hold any value (NaN
# too: they are read as zeros). Each returns (value, d_outputs).


def _valid_rows(mask, N):
    """(N,) float64 0/1 weights of the rows that count."""
    return np.ones(N) if mask is None else (np.asarray(mask) != 0).astype(np.float64)


def _valid_only(a, w):
    """a (N, ...) in float64 with the masked rows zeroed: weights times NaN would be NaN."""
    a = np.asarray(a, np.float64)
    return np.where(w.reshape((-1,) + (1,) * (a.ndim - 1)) > 0, a, 0.0)


def _valid_elements(outputs, targets, mask):
    """What the element-wise losses average over: (x, y) (N, K) float64 with the masked
    rows zeroed, w (N, 1) the row weights, n the number of valid elements (at least 1)."""
    w = _valid_rows(mask, np.shape(outputs)[0])
    x, y = _valid_only(outputs, w), _valid_only(targets, w)  # (N, K)
    w = w[:, None]
    return x, y, w, max(w.sum() * x.shape[1], 1.0)


def cross_entropy(outputs, targets, mask=None):
    """-log softmax(outputs)[target], averaged over valid rows."""
    N = np.shape(outputs)[0]
    w = _valid_rows(mask, N)                                 # (N,)
    z = _valid_only(outputs, w)                              # (N, V)
    t = np.where(w > 0, targets, 0)                          # padded rows may carry any id
    log_softmax = z - z.max(axis=1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    n = max(w.sum(), 1.0)
    value = -(w * log_softmax[np.arange(N), t]).sum() / n
    onehot = np.zeros_like(z)
    onehot[np.arange(N), t] = 1.0
    grad = (np.exp(log_softmax) - onehot) * w[:, None] / n   # d value / d outputs
    return value, grad


def binary_cross_entropy(outputs, targets, mask=None):
    """-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), averaged over valid elements."""
    x, y, w, n = _valid_elements(outputs, targets, mask)
    # log sigmoid(x) = -log(1 + exp(-x)), log(1 - sigmoid(x)) = -log(1 + exp(x))
    value = (w * (y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x))).sum() / n
    grad = w * (_sigmoid(x) - y) / n
    return value, grad


def mse(outputs, targets, mask=None):
    """(x - y)^2, averaged over valid elements."""
    x, y, w, n = _valid_elements(outputs, targets, mask)
    return (w * (x - y) ** 2).sum() / n, w * 2 * (x - y) / n


def mae(outputs, targets, mask=None):
    """|x - y|, averaged over valid elements (subgradient 0 at x == y)."""
    x, y, w, n = _valid_elements(outputs, targets, mask)
    return (w * np.abs(x - y)).sum() / n, w * np.sign(x - y) / n


LOSSES = {f.__name__: f for f in (cross_entropy, binary_cross_entropy, mse, mae)}
