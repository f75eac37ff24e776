"""The built-in cells rnn_tanh, rnn_relu, lstm, gru and ln_lstm over the Cython/OpenMP
kernels.

Each cell follows recurrent.protocols.Cell: it allocates outputs and caches, combines the
biases the way its kernel wants them, and makes ONE kernel call per sequence (forward or
backward) with the GIL released. Layers validate user input, resolve the thread count and
keep BLAS single-threaded (backward's weight-gradient GEMMs call it from the kernels'
threads); the cells get lengths as int64 (B,) in 0..T and num_threads as an int >= 1.
A cell checks what its kernel would otherwise read or write past (the kernels trust
every shape): one float dtype, C-contiguous arrays, the shapes of x, the states, the
parameters and the gradients against each other, and the lengths' range, in O(1) Python
work plus one reduction over the B lengths per call.

Legend: T time steps, B batch rows, I input size, H hidden size, G = gates * H.

Recurrent dropout and zoneout: every built-in cell takes ``masks`` (recurrent/masks.py)
in forward and infer and hands them to its kernel, which applies them inside the time loop.

Caches: the arrays backward reads. Backward overwrites the gate cache with gradients, so a
cache serves exactly one backward call (a second one raises). The `out` array returned by
forward is also read by backward, so it is returned read-only.
"""
from __future__ import annotations

import copy

import numpy as np

import recurrent
from recurrent._kernels import gru as _gru
from recurrent._kernels import int8 as _int8
from recurrent._kernels import lnlstm as _lnlstm
from recurrent._kernels import lstm as _lstm
from recurrent._kernels import rnn as _rnn
from recurrent.cellbase import LN_EPS, LayerNormLSTMLayout, TorchLayoutCell
from recurrent.layout import STATE_NAMES
from recurrent.lengths import check_lengths
from recurrent.masks import MASK_KINDS, check_masks, takes_flags
from recurrent.quant import QuantizedWeight, bf16_or_fp32

_FLOATS = (np.float32, np.float64)


def _check_arrays(dtype, **arrays):
    """Internal invariant: one float dtype, C-contiguous (layers guarantee it for users)."""
    if dtype not in _FLOATS:
        raise ValueError(f"cells run in float32 or float64, got {dtype}")
    for name, a in arrays.items():
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous {dtype} array, "
                             f"got {a.dtype} (contiguous={a.flags.c_contiguous})")


def _checked_weights(x, params, **states):
    """(weight_ih, weight_hh), checked with x and the initial states by _check_arrays."""
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    _check_arrays(x.dtype, x=x, **states, weight_ih=w_ih, weight_hh=w_hh)
    return w_ih, w_hh


def _checked_by_caller(x, states, params, lengths):
    """_check_call of a trusting() cell: H, the arguments checked by its caller."""
    return states[0].shape[1]


def _check_shapes(arrays, shapes, what):
    """ValueError unless every array of ``arrays`` ({kind: array or None}) named in
    ``shapes`` ({kind: shape}) has that shape."""
    for kind, shape in shapes.items():
        a = arrays.get(kind)
        if a is not None and getattr(a, "shape", None) != shape:
            raise ValueError(f"{what}[{kind!r}]: expected shape {tuple(shape)}, got "
                             f"{np.shape(a)}")


def _bias(params, kind, G, dtype):
    """A cell's bias, or zeros when the layer was built without biases."""
    b = params.get(kind)
    return np.zeros(G, dtype) if b is None else b


def _summed_bias(params, G, dtype):
    """b_ih + b_hh (G,): the one bias the rnn, lstm and ln_lstm kernels add."""
    return _bias(params, "bias_ih", G, dtype) + _bias(params, "bias_hh", G, dtype)


def _gru_biases(params, H, dtype):
    """The GRU kernels' bias split: (bias_x (3H,) = b_ih + [b_hr, b_hz, 0], b_hn (H,)),
    b_hn staying inside the reset product."""
    b_ih = _bias(params, "bias_ih", 3 * H, dtype)
    b_hh = _bias(params, "bias_hh", 3 * H, dtype)
    bias_x = b_ih.copy()
    bias_x[:2 * H] += b_hh[:2 * H]
    return bias_x, np.ascontiguousarray(b_hh[2 * H:])


def _add_grad(grads, kind, value):
    if kind in grads and grads[kind] is not None:
        _check_shapes(grads, {kind: value.shape}, "grads")  # += would broadcast
        grads[kind] += value


def _zeros_or(d, shape, dtype):
    """The given state gradient (copied: kernels overwrite it) or zeros."""
    if d is None:
        return np.zeros(shape, dtype)
    return np.array(d, dtype=dtype, order="C", copy=True)


class _Cache:
    """What backward needs from one forward call; usable once (see module docstring)."""

    __slots__ = ("arrays", "lengths", "used")

    def __init__(self, arrays, lengths):
        self.arrays = arrays
        self.lengths = lengths
        self.used = False

    def take(self):
        if self.used:
            raise ValueError("this forward cache was already used by a backward call "
                             "(backward overwrites it); run forward again")
        self.used = True
        return self.arrays


class _KernelCell(TorchLayoutCell):
    """What the built-in cells share beyond parameter shapes and init (recurrent.cellbase,
    shared with the reference cells): the registry name and state names, and the
    recurrent-dropout and zoneout masks, which every kernel takes."""

    name: str
    num_gates: int
    mask_kinds = MASK_KINDS

    def __init__(self):
        self.state_names = STATE_NAMES[self.name]
        self._shapes_of = {}  # (I, H) -> param_shapes(I, H), for _check_call

    def __repr__(self):
        return f"<cell {self.name!r} (Cython kernels)>"

    zoneout_flags = ()  # dtypes whose kernels take zoneout's draws as flags (masks.takes_flags)
    # recurrent.protocols.Cell.precisions: every kernel takes bf16=True, bf16 products with
    # float32 sums (recurrent/quant.py)
    precisions = ("fp32", "bf16")

    def _kernel_precision(self, precision, dtype):
        """The keywords of the cell's kernel calls (forward, infer, backward) for
        ``precision``: bf16=True for bf16 (float32 arrays only), none for fp32 and for bf16
        on a CPU without bf16 (quant.bf16_or_fp32: fp32 with its note, as a layer runs,
        rather than the kernels' slow portable emulation); ValueError for a precision
        this cell does not list."""
        if precision == "fp32":
            return {}
        if precision not in self.precisions:
            raise ValueError(f"precision: cell {self.name!r} runs in "
                             f"{' or '.join(self.precisions)}, got {precision!r}")
        if dtype != np.float32:
            raise ValueError(f"precision {precision}: needs float32 arrays, got {dtype}")
        return {"bf16": True} if bf16_or_fp32(precision) == "bf16" else {}

    def trusting(self):
        """This cell for a caller that has checked every argument of its calls as
        _check_call does (recurrent.layers.Recurrent: its checked inputs, its own states
        and parameters): the same cell without that check, which a stream's one-step
        calls would otherwise pay once more per layer. Direct calls keep the check."""
        twin = copy.copy(self)
        twin._check_call = _checked_by_caller
        return twin

    def _check_call(self, x, states, params, lengths):
        """The shapes of one forward or infer call, which the kernels trust (they work on
        raw pointers, so a mismatch would be read or written out of bounds): x (T, B, I),
        one (B, H) array per state name (B, H >= 1), every parameter given of the shape
        param_shapes(I, H) says, lengths a C-contiguous int64 (B,) array in 0..T (what a
        layer passes). ValueError naming the argument (TypeError for lengths that are
        not such an array). Returns H. Attribute reads and one
        reduction only: a stream's step runs it once per layer."""
        shape = getattr(x, "shape", ())
        if len(shape) != 3 or shape[1] < 1:   # the kernels split B rows between threads
            raise ValueError(f"x: expected shape (T, B, I) with B >= 1, got shape "
                             f"{np.shape(x)}")
        T, B, I = shape
        n = len(self.state_names)
        if not isinstance(states, (tuple, list)) or len(states) != n:
            raise ValueError(f"states: expected a tuple of {n} arrays "
                             f"({', '.join(self.state_names)}), got {type(states).__name__}")
        first = getattr(states[0], "shape", ())
        H = first[1] if len(first) == 2 and first[1] >= 1 else None
        for name, state in zip(self.state_names, states):
            if H is None or getattr(state, "shape", None) != (B, H):
                raise ValueError(f"states: {name} has shape {np.shape(state)}, expected "
                                 f"(B, H) with x's B = {B} and H >= 1")
        shapes = self._shapes_of.get((I, H))
        if shapes is None:
            shapes = self._shapes_of[I, H] = self.param_shapes(I, H)
        _check_shapes(params, shapes, "params")
        if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.int64
                and lengths.flags.c_contiguous):
            raise TypeError(f"lengths: expected a C-contiguous int64 array (as "
                             f"recurrent.lengths.check_lengths makes), got "
                             f"{getattr(lengths, 'dtype', type(lengths).__name__)}")
        # one reduction for both bounds (a negative length is huge as uint64); the
        # message is check_lengths'
        if lengths.shape != (B,) or (B and lengths.view(np.uint64).max() > T):
            check_lengths(lengths, T, B)
        return H

    def _masks(self, masks, x, H):
        """(recurrent mask or None, zoneout tuple or None), checked (recurrent.masks)."""
        T, B, _ = x.shape
        return check_masks(masks, len(self.state_names), T, B, H, x.dtype,
                           flags=takes_flags(self, x.dtype))


class _Int8Cell(_KernelCell):
    """int8 inference (recurrent/quant.py, recurrent/_kernels/int8.pyx), which every
    built-in cell's kernels run: quantize() and infer_int8()."""

    int8_kind: int

    def _int8_biases(self, params, H):
        """(bias (G,), b_hn (H,) or None) as the int8 kernel adds them."""
        return _summed_bias(params, self.num_gates * H, np.float32), None

    def _int8_norms(self, params, H):
        """The LN-LSTM's gains and cell shift end to end, as int8.infer takes them (ln),
        or None for a cell without layer normalisation."""
        return None

    def quantize(self, params):
        """params (float32) -> their int8 form for infer_int8: the weights quantised per
        row and packed, the biases combined (and the LN-LSTM's norms kept). Computed once
        per set of weights (the layer keeps it)."""
        H = params["weight_hh"].shape[1]
        bias, b_hn = self._int8_biases(params, H)
        qparams = {"weight_ih": QuantizedWeight(params["weight_ih"]),
                   "weight_hh": QuantizedWeight(params["weight_hh"]),
                   "bias": np.ascontiguousarray(bias, np.float32),
                   "b_hn": np.zeros(1, np.float32) if b_hn is None
                   else np.ascontiguousarray(b_hn, np.float32)}
        ln = self._int8_norms(params, H)
        if ln is not None:
            qparams["ln"] = ln
        return qparams

    def infer_int8(self, x, states, qparams, lengths, num_threads, masks=None):
        """infer() with int8 products (float32 x, states and masks): (out, final
        states)."""
        H = self._check_call(x, states, {}, lengths)
        shapes = self.param_shapes(x.shape[2], H)
        _check_shapes({kind: qparams[kind] for kind in ("weight_ih", "weight_hh", "bias")},
                      {"weight_ih": shapes["weight_ih"], "weight_hh": shapes["weight_hh"],
                       "bias": shapes["bias_ih"]}, "qparams")
        if self.name == "gru":   # the kernel reads b_hn (H,) of the GRU only
            _check_shapes(qparams, {"b_hn": (H,)}, "qparams")
        ln = qparams.get("ln")
        if self.int8_kind == _int8.Kind.LN_LSTM:
            if ln is None:
                raise ValueError("qparams: 'ln' missing (quantize() of this cell gives it)")
            _check_shapes(qparams, {"ln": (10 * H,)}, "qparams")
        _check_arrays(np.dtype(np.float32), x=x, **{f"state{i}": s for i, s in
                                                   enumerate(states)})
        rec, zone = check_masks(masks, len(self.state_names), x.shape[0], x.shape[1], H,
                                np.float32)
        T, B, _ = x.shape
        out = np.empty((T, B, H), np.float32)
        finals = tuple(np.empty((B, H), np.float32) for _ in states)
        c0, c_n = (states[1], finals[1]) if len(states) > 1 else (states[0], finals[0])
        w_ih, w_hh = qparams["weight_ih"], qparams["weight_hh"]
        _int8.infer(self.int8_kind, out, finals[0], c_n, x, states[0], c0, w_ih.packed,
                    w_ih.scale, w_hh.packed, w_hh.scale, qparams["bias"], qparams["b_hn"],
                    lengths, num_threads, rec, None if zone is None else zone[0],
                    None if zone is None or len(zone) < 2 else zone[1], ln, LN_EPS)
        return out, finals


class RNNCell(_Int8Cell):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu."""

    num_gates = 1
    zoneout_flags = (np.float32,)

    def __init__(self, nonlinearity):
        self.name = f"rnn_{nonlinearity}"
        self.use_relu = nonlinearity == "relu"
        self.int8_kind = int(_int8.Kind.RNN_RELU) if self.use_relu else int(_int8.Kind.RNN_TANH)
        super().__init__()

    def forward(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        return self._forward(x, states, params, lengths, num_threads, masks, True, precision)

    def infer(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        """forward() keeping nothing for backward (bitwise the same results)."""
        out, finals, _ = self._forward(x, states, params, lengths, num_threads, masks, False,
                                       precision)
        return out, finals

    def _forward(self, x, states, params, lengths, num_threads, masks, need_grad, precision):
        self._check_call(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        (h0,) = states
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        w_ih, w_hh = _checked_weights(x, params, h0=h0)
        rec, zone = self._masks(masks, x, H)
        bias = _summed_bias(params, H, dtype)
        out = np.empty((T, B, H), dtype)       # (T, B, H)
        h_n = np.empty((B, H), dtype)          # (B, H)
        # with zoneout values: (T, B, H) the candidates act(a_t), backward's work space
        # after; flags (uint8) need none (a kept unit's candidate gets no gradient)
        cand = (None if zone is None or zone[0].dtype == np.uint8 or not need_grad
                else np.empty((T, B, H), dtype))
        _rnn.forward(out, h_n, x, h0, w_ih, w_hh, bias, lengths, self.use_relu, num_threads,
                     rec, None if zone is None else zone[0], cand, **kernel_precision)
        out.flags.writeable = False
        if not need_grad:
            return out, (h_n,), None
        cache = _Cache((x, h0, out, w_ih, w_hh, rec, zone, cand), lengths)
        return out, (h_n,), cache

    def backward(self, d_out, d_final_states, cache, grads, num_threads, precision="fp32"):
        """BPTT of the forward call that made ``cache``; ``precision``: that call's."""
        kernel_precision = self._kernel_precision(precision, cache.arrays[0].dtype)
        x, h0, out, w_ih, w_hh, rec, zone, cand = cache.take()
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        d_out, (dh,), dx, dw_ih, dw_hh = _backward_buffers(d_out, d_final_states, x, H, H,
                                                           grads)
        # (T, B, H) work: d pre-activations (over the candidates: read before written)
        da = np.empty((T, B, H), dtype) if cand is None else cand
        db = np.zeros(H, dtype)
        _rnn.backward(dx, dh, dw_ih, dw_hh, db, da, d_out, x, h0, out, w_ih, w_hh,
                      cache.lengths, self.use_relu, num_threads, rec,
                      None if zone is None else zone[0], cand, **kernel_precision)
        _finish_grads(grads, dw_ih, dw_hh)
        _add_grad(grads, "bias_ih", db)
        _add_grad(grads, "bias_hh", db)
        return dx, (dh,)


class LSTMCell(_Int8Cell):
    """PyTorch's LSTM cell, gates i, f, g, o."""

    name = "lstm"
    num_gates = 4
    int8_kind = int(_int8.Kind.LSTM)

    def _prepare(self, x, states, params, lengths):
        """Checked arrays and the one bias the kernel adds, b_ih + b_hh (G,)."""
        self._check_call(x, states, params, lengths)
        h0, c0 = states
        w_ih, w_hh = _checked_weights(x, params, h0=h0, c0=c0)
        return h0, c0, w_ih, w_hh, _summed_bias(params, 4 * h0.shape[1], x.dtype)

    def forward(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        h0, c0, w_ih, w_hh, bias = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        rec, zone = self._masks(masks, x, H)
        out = np.empty((T, B, H), dtype)       # (T, B, H)  every h_t
        gates = np.empty((T, B, 4 * H), dtype)  # (T, B, G)  activated i, f, g, o
        cells = np.empty((T, B, H), dtype)     # (T, B, H)  every c_t
        h_n = np.empty((B, H), dtype)
        c_n = np.empty((B, H), dtype)
        _lstm.forward(out, gates, cells, h_n, c_n, x, h0, c0, w_ih, w_hh, bias, lengths,
                      num_threads, rec, zone, **kernel_precision)
        out.flags.writeable = False
        cache = _Cache((x, h0, c0, out, gates, cells, w_ih, w_hh, rec, zone), lengths)
        return out, (h_n, c_n), cache

    def infer(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        """forward() without the gate and cell caches (bitwise the same results): for
        evaluation and prediction, where no backward follows."""
        h0, c0, w_ih, w_hh, bias = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        rec, zone = self._masks(masks, x, H)
        out = np.empty((T, B, H), x.dtype)     # (T, B, H)
        h_n = np.empty((B, H), x.dtype)
        c_n = np.empty((B, H), x.dtype)
        _lstm.infer(out, h_n, c_n, x, h0, c0, w_ih, w_hh, bias, lengths, num_threads, rec,
                    zone, **kernel_precision)
        return out, (h_n, c_n)

    def backward(self, d_out, d_final_states, cache, grads, num_threads, precision="fp32"):
        """BPTT of the forward call that made ``cache``; ``precision``: that call's."""
        kernel_precision = self._kernel_precision(precision, cache.arrays[0].dtype)
        x, h0, c0, out, gates, cells, w_ih, w_hh, rec, zone = cache.take()
        H = h0.shape[1]
        G = 4 * H
        dtype = x.dtype
        d_out, (dh, dc), dx, dw_ih, dw_hh = _backward_buffers(d_out, d_final_states, x, H,
                                                              G, grads)
        db = np.zeros(G, dtype)
        _lstm.backward(dx, dh, dc, dw_ih, dw_hh, db, gates, d_out, x, h0, c0, out, cells,
                       w_ih, w_hh, cache.lengths, num_threads, rec, zone, **kernel_precision)
        _finish_grads(grads, dw_ih, dw_hh)
        _add_grad(grads, "bias_ih", db)
        _add_grad(grads, "bias_hh", db)
        return dx, (dh, dc)


class GRUCell(_Int8Cell):
    """PyTorch's GRU cell, gates r, z, n, with b_hn inside the reset product."""

    name = "gru"
    num_gates = 3
    int8_kind = int(_int8.Kind.GRU)

    def _int8_biases(self, params, H):
        return _gru_biases(params, H, np.float32)

    def _prepare(self, x, states, params, lengths):
        """Checked arrays and the kernel's bias split: bias_x (G,) = b_ih + [b_hr, b_hz, 0]
        and b_hn (H,), which stays inside the reset product."""
        self._check_call(x, states, params, lengths)
        (h0,) = states
        w_ih, w_hh = _checked_weights(x, params, h0=h0)
        bias_x, b_hn = _gru_biases(params, h0.shape[1], x.dtype)
        return h0, w_ih, w_hh, bias_x, b_hn

    def forward(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        h0, w_ih, w_hh, bias_x, b_hn = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        rec, zone = self._masks(masks, x, H)
        zone = None if zone is None else zone[0]
        out = np.empty((T, B, H), dtype)       # (T, B, H)
        cache = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H) r, z, hn, n
        work = np.empty((B, 3 * H), dtype)     # (B, G) h_{t-1} W_hh^T of one step
        h_n = np.empty((B, H), dtype)
        _gru.forward(out, h_n, cache, work, x, h0, w_ih, w_hh, bias_x, b_hn, lengths,
                     num_threads, rec, zone, **kernel_precision)
        out.flags.writeable = False
        return out, (h_n,), _Cache((x, h0, out, cache, w_ih, w_hh, rec, zone), lengths)

    def infer(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        """forward() without the (T, B, 4H) cache (bitwise the same results)."""
        h0, w_ih, w_hh, bias_x, b_hn = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        rec, zone = self._masks(masks, x, H)
        zone = None if zone is None else zone[0]
        out = np.empty((T, B, H), dtype)       # (T, B, H)
        work = np.empty((B, 3 * H), dtype)     # (B, G) h_{t-1} W_hh^T of one step
        h_n = np.empty((B, H), dtype)
        _gru.infer(out, h_n, work, x, h0, w_ih, w_hh, bias_x, b_hn, lengths, num_threads,
                   rec, zone, **kernel_precision)
        return out, (h_n,)

    def backward(self, d_out, d_final_states, cache, grads, num_threads, precision="fp32"):
        """BPTT of the forward call that made ``cache``; ``precision``: that call's."""
        kernel_precision = self._kernel_precision(precision, cache.arrays[0].dtype)
        x, h0, out, gate_cache, w_ih, w_hh, rec, zone = cache.take()
        H = h0.shape[1]
        G = 3 * H
        dtype = x.dtype
        d_out, (dh,), dx, dw_ih, dw_hh = _backward_buffers(d_out, d_final_states, x, H, G,
                                                           grads)
        db_ih = np.zeros(G, dtype)
        db_hh = np.zeros(G, dtype)
        _gru.backward(dx, dh, dw_ih, dw_hh, db_ih, db_hh, gate_cache, d_out, x, h0, out,
                      w_ih, w_hh, cache.lengths, num_threads, rec, zone, **kernel_precision)
        _finish_grads(grads, dw_ih, dw_hh)
        _add_grad(grads, "bias_ih", db_ih)
        _add_grad(grads, "bias_hh", db_hh)
        return dx, (dh,)


class LayerNormLSTMCell(LayerNormLSTMLayout, _Int8Cell):
    """The LSTM with layer normalisation (Ba, Kiros & Hinton 2016), each gate block of the
    input and recurrent pre-activations normalised on its own, and the cell before the
    output tanh (equations: recurrent/_kernels/lnlstm.pyx; parameters:
    recurrent.cellbase.LayerNormLSTMLayout; reference: recurrent.reference)."""

    name = "ln_lstm"
    num_gates = 4
    int8_kind = int(_int8.Kind.LN_LSTM)

    def _int8_norms(self, params, H):
        ln = np.concatenate([params[kind] for kind in ("ln_gain_ih", "ln_gain_hh",
                                                       "ln_gain_c", "ln_bias_c")])
        return ln.astype(np.float32, copy=False)

    def _prepare(self, x, states, params, lengths):
        """Checked arrays; the kernel's bias b_ih + b_hh (G,), a zero bias for the input
        projection (normalised before any shift) and the gains and cell shift."""
        self._check_call(x, states, params, lengths)
        h0, c0 = states
        H = h0.shape[1]
        G = 4 * H
        dtype = x.dtype
        w_ih, w_hh = _checked_weights(x, params, h0=h0, c0=c0)
        bias = _summed_bias(params, G, dtype)
        ln = tuple(params[kind] for kind in ("ln_gain_ih", "ln_gain_hh", "ln_gain_c",
                                             "ln_bias_c"))
        _check_arrays(dtype, **dict(zip(("ln_gain_ih", "ln_gain_hh", "ln_gain_c",
                                         "ln_bias_c"), ln)))
        return h0, c0, w_ih, w_hh, np.zeros(G, dtype), bias, ln

    def forward(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        h0, c0, w_ih, w_hh, zeros, bias, ln = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        G = 4 * H
        dtype = x.dtype
        rec, zone = self._masks(masks, x, H)
        out = np.empty((T, B, H), dtype)       # (T, B, H)  every h_t
        xn = np.empty((T, B, G), dtype)        # (T, B, G)  LN(x W_ih^T)
        nh = np.empty((T, B, G), dtype)        # (T, B, G)  LN(h W_hh^T)
        gates = np.empty((T, B, G), dtype)     # (T, B, G)  activated i, f, g, o
        cells = np.empty((T, B, H), dtype)     # (T, B, H)  every c_t
        nc = np.empty((T, B, H), dtype)        # (T, B, H)  LN(c_t)
        rs_x = np.empty((T, B, 4), dtype)      # (T, B, 4)  1 / std of each gate block
        rs_h = np.empty((T, B, 4), dtype)
        rs_c = np.empty((T, B), dtype)
        h_n = np.empty((B, H), dtype)
        c_n = np.empty((B, H), dtype)
        _lnlstm.forward(out, xn, nh, gates, cells, nc, rs_x, rs_h, rs_c, h_n, c_n, x, h0, c0,
                        w_ih, w_hh, zeros, bias, *ln, LN_EPS, lengths, num_threads, rec,
                        zone, **kernel_precision)
        out.flags.writeable = False
        cache = _Cache((x, h0, c0, out, xn, nh, gates, cells, nc, rs_x, rs_h, rs_c, w_ih,
                        w_hh, ln, rec, zone), lengths)
        return out, (h_n, c_n), cache

    def infer(self, x, states, params, lengths, num_threads, masks=None, precision="fp32"):
        """forward() without the caches (bitwise the same results)."""
        h0, c0, w_ih, w_hh, zeros, bias, ln = self._prepare(x, states, params, lengths)
        kernel_precision = self._kernel_precision(precision, x.dtype)
        T, B, _ = x.shape
        H = h0.shape[1]
        rec, zone = self._masks(masks, x, H)
        out = np.empty((T, B, H), x.dtype)     # (T, B, H)
        h_n = np.empty((B, H), x.dtype)
        c_n = np.empty((B, H), x.dtype)
        _lnlstm.infer(out, h_n, c_n, x, h0, c0, w_ih, w_hh, zeros, bias, *ln, LN_EPS,
                      lengths, num_threads, rec, zone, **kernel_precision)
        return out, (h_n, c_n)

    def backward(self, d_out, d_final_states, cache, grads, num_threads, precision="fp32"):
        """BPTT of the forward call that made ``cache``; ``precision``: that call's."""
        kernel_precision = self._kernel_precision(precision, cache.arrays[0].dtype)
        (x, h0, c0, out, xn, nh, gates, cells, nc, rs_x, rs_h, rs_c, w_ih, w_hh, ln, rec,
         zone) = cache.take()
        T, B, _ = x.shape
        H = h0.shape[1]
        G = 4 * H
        dtype = x.dtype
        d_out, (dh, dc), dx, dw_ih, dw_hh = _backward_buffers(d_out, d_final_states, x, H,
                                                              G, grads)
        db = np.zeros(G, dtype)
        dg_ih = np.zeros(G, dtype)
        acc_ghh = np.zeros((B, G), dtype)      # per row: gradients of ln_gain_hh,
        acc_gc = np.zeros((B, H), dtype)       # ln_gain_c
        acc_bc = np.zeros((B, H), dtype)       # and ln_bias_c
        g_ih, g_hh, g_c, b_c = ln
        _lnlstm.backward(dx, dh, dc, dw_ih, dw_hh, db, dg_ih, acc_ghh, acc_gc, acc_bc, xn,
                         nh, gates, rs_x, rs_h, rs_c, cells, nc, d_out, x, h0, c0, out,
                         w_ih, w_hh, g_ih, g_hh, g_c, b_c, cache.lengths, num_threads, rec,
                         zone, **kernel_precision)
        _finish_grads(grads, dw_ih, dw_hh)
        _add_grad(grads, "bias_ih", db)
        _add_grad(grads, "bias_hh", db)
        _add_grad(grads, "ln_gain_ih", dg_ih)
        _add_grad(grads, "ln_gain_hh", acc_ghh.sum(axis=0))
        _add_grad(grads, "ln_gain_c", acc_gc.sum(axis=0))
        _add_grad(grads, "ln_bias_c", acc_bc.sum(axis=0))
        return dx, (dh, dc)


def _backward_buffers(d_out, d_final_states, x, H, G, grads):
    """What every kernel backward fills: d_out C-contiguous in x's dtype, the state
    gradients (d h_n, d c_n in; d h0, d c0 out: copies or zeros), dx (T, B, I) and the
    weight-gradient targets dW_ih (G, I), dW_hh (G, H) (_grad_target)."""
    T, B, I = x.shape
    dtype = x.dtype
    # the kernels read these through raw pointers: a wrong shape would be read out of bounds
    if np.shape(d_out) != (T, B, H):
        raise ValueError(f"d_out: expected shape {(T, B, H)}, got {np.shape(d_out)}")
    for d in d_final_states:
        if d is not None and np.shape(d) != (B, H):
            raise ValueError(f"d_final_states: expected None or shape {(B, H)}, got "
                             f"{np.shape(d)}")
    d_states = tuple(_zeros_or(d, (B, H), dtype) for d in d_final_states)
    return (np.ascontiguousarray(d_out, dtype=dtype), d_states, np.empty((T, B, I), dtype),
            _grad_target(grads, "weight_ih", (G, I), dtype),
            _grad_target(grads, "weight_hh", (G, H), dtype))


def _grad_target(grads, kind, shape, dtype):
    """The array the kernel adds a weight gradient into: grads[kind] itself when it is a
    C-contiguous array of the right dtype (the usual case: a view of the flat buffer),
    else a zeroed temporary that _finish_grads adds over."""
    g = grads.get(kind)
    _check_shapes(grads, {kind: shape}, "grads")  # the kernel adds into it in place
    if g is not None and g.dtype == dtype and g.flags.c_contiguous and g.flags.writeable:
        return g
    return np.zeros(shape, dtype)


def _finish_grads(grads, dw_ih, dw_hh):
    for kind, value in (("weight_ih", dw_ih), ("weight_hh", dw_hh)):
        g = grads.get(kind)
        if g is not None and g is not value:
            g += value


BUILTIN_CELLS = (RNNCell("tanh"), RNNCell("relu"), LSTMCell(), GRUCell(), LayerNormLSTMCell())


@recurrent.hookimpl
def register_cells(register):
    for cell in BUILTIN_CELLS:
        register(cell)
