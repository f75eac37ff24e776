"""Recurrent layers with torch.nn semantics on numpy arrays, time-major: RNN, LSTM, GRU.

A layer stacks ``num_layers`` layers of one or two directions over ANY cell following
recurrent.protocols.Cell (a registered name such as "lstm", or a cell object). The cell runs
the whole time loop of one layer and direction; the layer owns what lies between cells:
stacking, inter-layer dropout, the reverse direction, lengths, state packing, parameters
under PyTorch's names, and input checking. It also draws the masks of recurrent dropout and
zoneout (recurrent/masks.py) for cells that take them: in a training-mode forward that
keeps what backward needs, one variational mask (B, H) per layer and direction and one
zoneout array (T, B, H) per state; every other pass (evaluation, need_grad=False, single
steps) runs without recurrent dropout and with zoneout's expectation.

Dimension legend: T time steps, B batch rows, I input features, H hidden units,
L layers, D directions (1, or 2 when bidirectional), G = num_gates * H.

The reverse direction feeds the cell a per-row reversed copy of each row's valid prefix
(row b: x[len_b - 1], ..., x[0], then padding) and un-reverses its output, so it starts at
each row's own last valid step and its final state is the state after step 0, as torch's.
A row of length 0 outputs zeros and keeps its initial state in both directions.

The public methods (forward, backward, step) check their inputs, resolve the thread count
once (recurrent.threads.resolve_threads) and keep BLAS single-threaded while they run;
run() and run_backward() are the same passes on already-checked inputs, for the model.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .checks import (NO_FORWARD, as_array, finite_as, float_dtype, kept_copy, positive_int,
                     probability, seed_sequences)
from .dropout import dropout_mask
from .errors import UserError, broken_protocol
from .layout import GATE_ORDER, param_name
from .lengths import check_lengths, reversal_index, reverse_rows
from .masks import (OPTIONS, supported, takes_flags, takes_masks, variational_mask,
                    zoneout_expectation, zoneout_mask)
from .params import ParamModule, claim_params
from .protocols import Cell, missing_members
from .quant import bf16_or_fp32, check_precision
from .state import pack_state
from .threads import MAX_THREADS, resolve_threads, single_threaded_blas
from .tuning import ensure as ensure_tuned

INITS = ("uniform", "orthogonal", "glorot")
_BIAS_KINDS = ("bias_ih", "bias_hh")


def _resolve_cell(cell):
    """A Cell object from a registered name, or the object itself."""
    if isinstance(cell, str):
        from .plugins import get_cell
        try:
            return get_cell(cell)
        except UserError as exc:
            raise ValueError(f"cell: {exc}") from None
    if isinstance(cell, type):
        raise ValueError(f"cell: expected a cell name or a cell object, got the class "
                         f"{cell.__name__} (instantiate it)")
    missing = missing_members(cell, Cell)
    if missing:
        raise ValueError(f"cell: expected a cell name or an object following "
                         f"recurrent.protocols.Cell, got {type(cell).__name__} "
                         f"without {', '.join(missing)}")
    return cell


def cell_param_shapes(cell, input_size, hidden_size) -> dict[str, tuple[int, ...]]:
    """``cell.param_shapes(input_size, hidden_size)`` as {kind: tuple of ints}; UserError
    naming the cell (errors.broken_protocol) when it is no dict of identifier kinds to
    shapes of positive whole numbers (recurrent.protocols.Cell): a list of pairs, or a
    shape such as (8.0,) or None, would otherwise fail inside the layer with an error
    naming neither the cell nor its plugin, or be truncated to a whole number unseen."""
    shapes = cell.param_shapes(input_size, hidden_size)
    name = getattr(cell, "name", type(cell).__name__)
    if not isinstance(shapes, dict):
        raise broken_protocol("cell", name, f"{type(shapes).__name__} from param_shapes(), "
                                            f"expected a dict of {{kind: shape}}")
    for kind, shape in shapes.items():
        if not (isinstance(kind, str) and kind.isidentifier()):
            raise broken_protocol("cell", name, f"the parameter kind {kind!r} from "
                                                f"param_shapes(), expected an identifier")
        if (not isinstance(shape, (tuple, list)) or not shape
                or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool)
                           and n > 0 for n in shape)):
            raise broken_protocol("cell", name, f"the shape {shape!r} of {kind!r} from "
                                                f"param_shapes(), expected a tuple of "
                                                f"positive whole numbers")
    return {kind: tuple(int(n) for n in shape) for kind, shape in shapes.items()}


def check_cell_precision(cell, value, dtype=np.float32):
    """``value``, or a ValueError (one line) unless a layer of ``dtype`` over ``cell`` (a
    name or a cell object) can run in that precision (recurrent/quant.py): int8 for a
    cell with quantize() and infer_int8(), bf16 for one whose ``precisions`` list it
    (recurrent.protocols.Cell), either in float32 layers only."""
    check_precision(value)
    cell = _resolve_cell(cell)
    if value == "int8" and not (hasattr(cell, "infer_int8") and hasattr(cell, "quantize")):
        raise ValueError(f"precision int8: cell {cell.name!r} has no int8 path")
    if value == "bf16" and value not in getattr(cell, "precisions", ("fp32",)):
        raise ValueError(f"precision bf16: cell {cell.name!r} has no bf16 path (its "
                         f"precisions do not list bf16)")
    if value != "fp32" and np.dtype(dtype) != np.float32:
        raise ValueError(f"precision {value}: needs a float32 layer, this one is "
                         f"{np.dtype(dtype).name}")
    return value


def precision_keyword(precision):
    """The keyword arguments that give a cell's forward, infer or backward ``precision``
    (not int8, which has its own infer_int8): none for fp32, so that a cell without other
    precisions (no ``precisions``, recurrent.protocols.Cell) is called as before."""
    return {} if precision == "fp32" else {"precision": precision}


def _orthogonal(rng, n, dtype):
    """A random n x n orthogonal matrix (QR of a Gaussian, signs fixed so it is uniform)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(dtype)


def _glorot(rng, fan_out, fan_in, dtype):
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(dtype)


def _check_allocatable(count: int, L: int, H: int, dtype) -> None:
    """MemoryError when ``count`` parameters (L layers of H units) and their gradients
    cannot be allocated: tried as one allocation, never touched, before the layers are
    laid out one by one, which for a count in the billions would run for hours (or
    exhaust memory a name at a time) before any array is made."""
    try:
        np.empty(2 * count, dtype)  # pages never touched: nothing is written
    except (MemoryError, ValueError):  # ValueError: beyond any array's size
        raise MemoryError(f"{L:,} layer(s) of {H:,} units hold {count:,} parameters "
                          f"of {np.dtype(dtype).itemsize} bytes, plus their gradients") from None


class Recurrent(ParamModule):
    """A stack of recurrent layers over one cell type. See docs/ARCHITECTURE.md (Layer API).
    Parameters under torch's names; the parameter surface (state_dict, bind, grads, ...)
    is recurrent.params.ParamModule's.

    out, state = layer(x, state=None, lengths=None)    # state, lengths keyword-only
        x (T, B, I); out (T, B, D*H); state h_n (L*D, B, H), or a tuple (h_n, c_n) for a
        cell with two states (LSTM). lengths (B,) ints in 0..T, any order; a row of
        length 0 outputs zeros and returns its initial state.
    dx, dstate = layer.backward(d_out, d_state=None)   # grads accumulate into grads()
    out_t, state = layer.step(x_t, state=None)         # one time step, D=1 only
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, dropout=0.0,
                 bidirectional=False, dtype=np.float32, seed=None, init="uniform",
                 forget_bias=None, num_threads=None, recurrent_dropout=0.0, zoneout=0.0,
                 precision="fp32"):
        self.cell = _resolve_cell(cell)
        # what the kernels are called through: the cell, or (a cell whose class offers
        # trusting()) the same cell without the argument checks this layer has made
        # already; the class's, so that a cell delegating to another (a wrapper's
        # __getattr__) is called itself
        self._calls = (self.cell.trusting() if hasattr(type(self.cell), "trusting")
                       else self.cell)
        self._checked_paths = set()  # (precision, need_grad) whose cell results were checked
        self.recurrent_dropout = probability(recurrent_dropout, "recurrent_dropout")
        self.zoneout = probability(zoneout, "zoneout")
        for kind, p in (("recurrent", self.recurrent_dropout), ("zoneout", self.zoneout)):
            if p > 0 and kind not in supported(self.cell):
                raise ValueError(f"{OPTIONS[kind]}: cell {self.cell.name!r} does not support "
                                 f"it (its mask_kinds do not list {kind!r})")
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.num_layers = positive_int(num_layers, "num_layers")
        self.dropout = probability(dropout, "dropout")
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn("dropout acts between stacked layers; with num_layers=1 it does "
                          "nothing", stacklevel=2)
        self.bias = bool(bias)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.dtype = float_dtype(dtype)
        self.num_threads = num_threads
        self.state_names = tuple(self.cell.state_names)

        H, D = self.hidden_size, self.num_directions
        # the stack's size, checked against a parameter budget (params.parameter_budget)
        # and against what can be allocated before the loop, whose listing of every
        # unit's shapes would itself run for hours for an absurd number of layers
        first = D * self._unit_size(self.input_size)
        later = (self.num_layers - 1) * D * (self._unit_size(D * H) if self.num_layers > 1
                                             else 0)
        claim_params({"first": (first,), "later": (later,)}, spend=False)
        _check_allocatable(first + later, self.num_layers, H, self.dtype)
        self._units = []        # per (layer, direction), in order k*D + d: kind -> torch name
        self._shapes = {}       # torch name -> shape, in flat-buffer order
        self._fixed = []        # per unit: kind -> (zero params, scratch grads) when bias=False
        for k in range(self.num_layers):
            unit_input = self.input_size if k == 0 else D * H
            for d in range(D):
                names, fixed = {}, {}
                for kind, shape in cell_param_shapes(self.cell, unit_input, H).items():
                    if not self.bias and kind in _BIAS_KINDS:
                        fixed[kind] = (np.zeros(shape, self.dtype), np.zeros(shape, self.dtype))
                        continue
                    names[kind] = param_name(kind, k, reverse=d == 1)
                    self._shapes[names[kind]] = shape
                self._units.append(names)
                self._fixed.append(fixed)
        ParamModule.__init__(self, self._shapes, self.dtype)  # _params, _grads: zeros
        self._cache = None
        self._cache_version = None
        self._quantized = {}    # unit -> (params_version, the cell's int8 form of its params)
        self.precision = precision

        init_seq, cell_seq, dropout_seq = seed_sequences(seed, 3)
        self._dropout_rng = np.random.default_rng(dropout_seq)
        self._dropout_rows = None  # see reseed_dropout
        self.reset_parameters(init, forget_bias, np.random.default_rng(init_seq),
                              np.random.default_rng(cell_seq))

    # -- parameters -------------------------------------------------------------------
    def _unit_size(self, unit_input):
        """The parameter count of one unit (a layer's direction) reading ``unit_input``
        features."""
        return sum(math.prod(shape)
                   for kind, shape in cell_param_shapes(self.cell, unit_input,
                                                        self.hidden_size).items()
                   if self.bias or kind not in _BIAS_KINDS)

    def _unit_params(self, u):
        """kind -> array for unit u, as the cell wants them (zeros for absent biases)."""
        params = {kind: self._params[name] for kind, name in self._units[u].items()}
        params.update({kind: pair[0] for kind, pair in self._fixed[u].items()})
        return params

    def _unit_grads(self, u):
        grads = {kind: self._grads[name] for kind, name in self._units[u].items()}
        for kind, (_, scratch) in self._fixed[u].items():
            scratch.fill(0)          # gradients of the absent biases are thrown away
            grads[kind] = scratch
        return grads

    def reset_parameters(self, init="uniform", forget_bias=None, rng=None, cell_rng=None):
        """(Re)initialise every parameter.

        init "uniform": PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)) for weights and biases;
        "orthogonal": each gate block of weight_hh orthogonal, weight_ih Glorot-uniform per
        gate block, biases zero; "glorot": Glorot-uniform per gate block, biases zero.
        Parameter kinds a cell adds beyond PyTorch's four keep the cell's own init_params.
        forget_bias: value of the forget-gate bias (in bias_ih; bias_hh's block is zeroed so
        the two sum to it); only for cells with an "f" gate.
        """
        if init not in INITS:
            raise ValueError(f"init: expected one of {', '.join(INITS)}, got {init!r}")
        gate_order = getattr(self.cell, "gate_order", None) or GATE_ORDER.get(self.cell.name)
        if forget_bias is not None:
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                    or not np.isfinite(forget_bias):
                raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
            if not gate_order or "f" not in gate_order:
                raise ValueError(f"forget_bias: cell {self.cell.name!r} has no forget gate")
            if not self.bias:
                raise ValueError("forget_bias: the layer was built with bias=False")
        rng = rng if rng is not None else np.random.default_rng()
        cell_rng = cell_rng if cell_rng is not None else np.random.default_rng()
        H = self.hidden_size
        for u in range(len(self._units)):
            params = self._unit_params(u)
            self.cell.init_params(params, H, cell_rng)
            for zeros, _ in self._fixed[u].values():
                zeros.fill(0)
            trainable = self._units[u]
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                if kind not in trainable:
                    continue
                p = params[kind]
                if init == "uniform":
                    bound = 1.0 / np.sqrt(H)
                    p[...] = rng.uniform(-bound, bound, size=p.shape)
                elif kind.startswith("bias"):
                    p.fill(0)
                elif kind == "weight_hh" and init == "orthogonal" and p.shape[1] == H:
                    for g in range(p.shape[0] // H):
                        p[g * H:(g + 1) * H] = _orthogonal(rng, H, self.dtype)
                else:
                    for g in range(p.shape[0] // H):
                        p[g * H:(g + 1) * H] = _glorot(rng, H, p.shape[1], self.dtype)
            if forget_bias is not None:
                f = slice(gate_order.index("f") * H, (gate_order.index("f") + 1) * H)
                params["bias_ih"][f] = forget_bias
                params["bias_hh"][f] = 0
        self.params_changed()

    # -- precision ----------------------------------------------------------------------
    @property
    def precision(self):
        """The precision of the cells' products (recurrent/quant.py): "fp32"; "int8" for
        inference (need_grad=False, step, run_step) of a float32 layer whose cell has
        quantize() and infer_int8(), a forward pass that keeps gradients refusing it (the
        int8 weights are made at the first int8 call and kept until params_changed(),
        which code writing into the parameters directly calls); "bf16" for training and
        inference of a float32 layer whose cell lists it in its ``precisions``
        (recurrent.protocols.Cell), run as fp32 on a CPU without bf16 (quant.bf16_or_fp32).
        Parameters and gradients stay in the layer's dtype."""
        return self._precision

    @precision.setter
    def precision(self, value):
        self.check_precision(value)
        self._precision = value

    def check_precision(self, value):
        """ValueError (one line) unless this layer can run in ``value`` (int8: inference)."""
        check_cell_precision(self.cell, value, self.dtype)
        if value == "int8":
            if self.zoneout > 0 and not takes_masks(self.cell.infer_int8):
                raise ValueError(f"precision int8: cell {self.cell.name!r}'s infer_int8() "
                                 f"takes no masks, which a layer with zoneout passes")
        return value

    def _int8_params(self, u):
        """The cell's int8 form of unit u's parameters, made once and kept until they
        change: until params_changed() (recurrent/params.py) counts a change."""
        kept = self._quantized.get(u)
        if kept is not None and kept[0] == self.params_version:
            return kept[1]
        quantized = self.cell.quantize(self._unit_params(u))
        self._quantized[u] = (self.params_version, quantized)
        return quantized

    # -- threads ----------------------------------------------------------------------
    @property
    def num_threads(self):
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value):
        if value is not None:
            value = positive_int(value, "num_threads", MAX_THREADS)
        self._num_threads = value

    def _threads_for(self, batch):
        """The thread count of one public call on `batch` rows (resolved once per call)."""
        return resolve_threads(self._num_threads, batch, self.hidden_size)

    # -- input checks -------------------------------------------------------------------
    def _as_float(self, name, value, expected_shape, keep=False):
        """``value`` as a C-contiguous array of the layer dtype, or a ValueError. keep: the
        array is kept for backward, so never the caller's own memory (kept_copy)."""
        a = as_array(value, name)
        if a.shape != tuple(expected_shape):
            raise ValueError(f"{name}: expected shape {tuple(expected_shape)} "
                             f"(rank {len(expected_shape)}), got shape {a.shape}")
        if a.dtype.kind != "f":
            raise ValueError(f"{name}: expected a float array, got dtype {a.dtype}")
        checked = finite_as(a, self.dtype, name)
        return kept_copy(checked, a) if keep else checked

    def _check_x(self, x, keep=False):
        a = as_array(x, "x")
        if a.ndim != 3 or a.shape[2] != self.input_size or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"x: expected shape (T, B, {self.input_size}) with T, B >= 1, "
                             f"got shape {a.shape}")
        return self._as_float("x", a, a.shape, keep)

    def _check_states(self, state, B, name, rows, keep=False):
        """Normalised tuple of (rows, B, H) arrays, one per cell state; zeros for None.
        keep: as _as_float's."""
        n = len(self.state_names)
        if state is None:
            return tuple(np.zeros((rows, B, self.hidden_size), self.dtype) for _ in range(n))
        parts = (state,) if n == 1 else state
        if n > 1 and (not isinstance(state, (tuple, list)) or len(state) != n):
            raise ValueError(f"{name}: expected a tuple of {n} arrays "
                             f"({', '.join(self.state_names)}), got {type(state).__name__}")
        expected = (rows, B, self.hidden_size)
        return tuple(self._as_float(name if n == 1 else f"{name}[{i}]", part, expected, keep)
                     for i, part in enumerate(parts))

    # -- forward / backward -------------------------------------------------------------
    def __call__(self, x, *, state=None, lengths=None, need_grad=True):
        return self.forward(x, state=state, lengths=lengths, need_grad=need_grad)

    def reseed_dropout(self, seed, rows=None):
        """Restart the inter-layer dropout masks from ``seed`` (int, ints or SeedSequence),
        e.g. so that a resumed training run draws the masks an uninterrupted one would.
        rows=(start, stop, total): the next inputs hold those rows of a larger batch
        (recurrent.dropout.dropout_mask)."""
        self._dropout_rng = np.random.default_rng(seed)
        self._dropout_rows = rows

    def _dropout_mask(self, shape, steps=0):  # shape (T, B, D*H); steps: see run()
        T = shape[0]
        return dropout_mask(self._dropout_rng, (max(T, steps),) + tuple(shape[1:]),
                            self.dropout, self.dtype, self._dropout_rows, axis=1)[:T]

    def _cell_masks(self, T, B, draw, steps=0):
        """The masks argument of one cell run (recurrent/masks.py), or None when neither
        option is on. draw: a training pass that backward follows (random masks from the
        dropout generator); otherwise no recurrent dropout and zoneout's expectation.
        steps: see run()."""
        H, masks = self.hidden_size, {}
        if draw and self.recurrent_dropout > 0:
            masks["recurrent"] = variational_mask(self._dropout_rng, B, H,
                                                  self.recurrent_dropout, self.dtype,
                                                  self._dropout_rows)
        if self.zoneout > 0:
            masks["zoneout"] = tuple(
                zoneout_mask(self._dropout_rng, max(T, steps), B, H, self.zoneout,
                             np.bool_ if takes_flags(self.cell, self.dtype) else self.dtype,
                             self._dropout_rows)[:T] if draw else
                zoneout_expectation(B, H, self.zoneout, self.dtype)
                for _ in self.state_names)
        return masks or None

    def forward(self, x, *, state=None, lengths=None, need_grad=True):
        """x (T, B, I) -> out (T, B, D*H), state (h_n, or (h_n, c_n); each (L*D, B, H)).

        lengths (B,) ints in 0..T (None: every row has T steps). The arrays returned may be
        what backward reads: do not modify them in place before calling backward.
        need_grad=False (evaluation, prediction) keeps nothing for backward: cells with an
        infer() method then skip their caches."""
        x, states, lengths, threads = self.prepare(x, state=state, lengths=lengths,
                                                   need_grad=need_grad)
        with single_threaded_blas():
            out, finals = self.run(x, states, lengths, need_grad, threads)
        return out, pack_state(finals)

    def prepare(self, x, *, state=None, lengths=None, need_grad=True):
        """The checks of forward(), once, for a caller that goes on with run(): returns
        (x, states, lengths, num_threads) as run() takes them (ValueError, one line, for
        bad input). The thread count is resolved here, for the whole call. need_grad: a
        run() keeping what backward reads follows, so x and the states returned are never
        the caller's arrays (changing those in place before backward would change the
        gradients)."""
        x = self._check_x(x, need_grad)
        T, B, _ = x.shape
        lengths = check_lengths(lengths, T, B)
        states = self._check_states(state, B, "state", self.num_layers * self.num_directions,
                                    need_grad)
        return x, states, lengths, self._threads_for(B)

    def run(self, x, states, lengths, need_grad, num_threads, precision=None, mask_steps=0,
            evaluate=False):
        """forward() on checked inputs: x C-contiguous (T, B, I) of the layer dtype, states
        a tuple of (L*D, B, H) arrays (one per state name), lengths int64 (B,) in 0..T,
        num_threads an int >= 1. Returns (out (T, B, D*H), tuple of final states). The
        caller keeps BLAS single-threaded (recurrent.threads.single_threaded_blas).
        precision: None for the layer's (self.precision), or a checked one; int8 needs
        need_grad=False; bf16 runs as fp32 on a CPU without bf16 (quant.bf16_or_fp32).
        mask_steps: the training masks that vary over time (inter-layer dropout, zoneout)
        are drawn for this many steps (if more than T) and their first T used, so that a
        caller that cut x to fewer steps than its batch has (a data-parallel rank's rows
        of a seq2seq batch, trimmed to their longest) gets the masks of the whole batch's
        steps. evaluate: run as in eval mode (no inter-layer
        dropout) whatever self.training, without setting it, so that a call from another
        thread sharing the layer still runs in its own mode (StreamPool's steps)."""
        ensure_tuned()   # the process's first kernel call loads or runs the kernel tuning
        precision = bf16_or_fp32(self._precision if precision is None else precision)
        if precision == "int8" and need_grad:
            raise ValueError(f"precision {precision} is for inference: call with "
                             f"need_grad=False, or set precision to 'fp32' to train")
        T, B, _ = x.shape
        D = self.num_directions
        rev = reversal_index(lengths, T) if D == 2 else None        # (T, B) or None
        final_states = tuple(np.empty_like(s) for s in states)        # each (L*D, B, H)
        layer_caches = []
        layer_in = x                                                   # (T, B, I or D*H)
        training = self.training and not evaluate
        draw = training and need_grad
        for k in range(self.num_layers):
            mask = None
            if k > 0 and training and self.dropout > 0:
                mask = self._dropout_mask(layer_in.shape, mask_steps)  # (T, B, D*H)
                layer_in = layer_in * mask
            outs, caches = [], []
            for d in range(D):
                u = k * D + d
                cell_in = layer_in if d == 0 else reverse_rows(layer_in, rev)
                cell_in = np.ascontiguousarray(cell_in)
                unit_states = tuple(s[u] for s in states)
                if precision == "int8":
                    masks = self._cell_masks(T, B, False)
                    out_d, finals = self._cell_result(
                        "infer_int8", ("out", "final_states"),
                        self._calls.infer_int8(cell_in, unit_states, self._int8_params(u),
                                               lengths, num_threads,
                                               **({} if masks is None else {"masks": masks})))
                    cache = None
                else:
                    out_d, finals, cache = self._run_cell(
                        need_grad, cell_in, unit_states, self._unit_params(u), lengths,
                        num_threads, self._cell_masks(T, B, draw, mask_steps), precision)
                if (precision, need_grad) not in self._checked_paths:  # once per path
                    self._check_cell_result(out_d, finals, T, B)
                    self._checked_paths.add((precision, need_grad))
                outs.append(out_d if d == 0 else reverse_rows(out_d, rev))  # (T, B, H)
                for target, final in zip(final_states, finals):
                    target[u] = final
                caches.append(cache)
            layer_caches.append((mask, caches))
            layer_in = outs[0] if D == 1 else np.concatenate(outs, axis=2)
        self._cache = (T, B, rev, layer_caches, num_threads, precision) if need_grad else None
        if need_grad:  # the parameters the cache was made with (check_backward)
            self._cache_version = self.params_version
        return layer_in, final_states

    def _check_cell_result(self, out, finals, T, B):
        """UserError naming the cell when what it returned breaks recurrent.protocols.Cell
        (a plugin's bug; checked on the first call of each path, the shapes being fixed by
        the cell's code): out (T, B, H) and one (B, H) final state per state name. A
        missing final state would leave the layer's state uninitialised memory, and a
        wrong shape would fail later as an unrelated numpy error."""
        H = self.hidden_size
        if np.shape(out) != (T, B, H):
            self._cell_broke(f"outputs of shape {np.shape(out)}, expected {(T, B, H)}")
        self._check_cell_dtype(out, "outputs")
        self._check_cell_states(finals, B, "final state")

    def _check_cell_grads(self, dx, d_states, T, B, k):
        """UserError naming the cell when its backward's result breaks
        recurrent.protocols.Cell: dx (T, B, the unit's input size) and a tuple with one
        (B, H) gradient per state name, also for the single state h ((dh,), not dh: a bare
        array would be read row by row, a wrong gradient without an error)."""
        size = self.input_size if k == 0 else self.num_directions * self.hidden_size
        if np.shape(dx) != (T, B, size):
            self._cell_broke(f"a dx of shape {np.shape(dx)}, expected {(T, B, size)}")
        self._check_cell_dtype(dx, "a dx")
        self._check_cell_states(d_states, B, "initial-state gradient")

    def _check_cell_states(self, states, B, what):
        """UserError unless ``states`` is a tuple (or list) with one (B, H) array per state
        name; ``what`` names one of them in the message."""
        n, H = len(self.state_names), self.hidden_size
        if not isinstance(states, (tuple, list)) or len(states) != n:
            count = len(states) if isinstance(states, (tuple, list)) else type(states).__name__
            self._cell_broke(f"{count} {what}s, expected {n} "
                             f"({', '.join(self.state_names)}) in a tuple")
        for name, state in zip(self.state_names, states):
            if np.shape(state) != (B, H):
                self._cell_broke(f"{what} {name!r} of shape {np.shape(state)}, "
                                 f"expected {(B, H)}")
            self._check_cell_dtype(state, f"{what} {name!r}")

    def _check_cell_dtype(self, array, what):
        """UserError naming the cell when ``array`` is not of the layer's dtype, which the
        cell was given (recurrent.protocols.Cell: one dtype for all arrays); another one
        would spread through the model unseen, e.g. float64 work in a float32 run."""
        dtype = getattr(array, "dtype", None)
        if dtype != self.dtype:
            self._cell_broke(f"{what} of dtype {dtype}, expected {np.dtype(self.dtype)} "
                             f"(the inputs' dtype)")

    def _cell_result(self, method, names, result):
        """``result`` of the cell's ``method``, a tuple (or list) of as many items as
        ``names``; otherwise UserError naming the cell, rather than an unpacking error
        inside the layer that names neither the cell nor its plugin."""
        if not isinstance(result, (tuple, list)) or len(result) != len(names):
            got = (f"{len(result)} values" if isinstance(result, (tuple, list))
                   else type(result).__name__)
            self._cell_broke(f"{got} from {method}(), expected ({', '.join(names)})")
        return result

    def _cell_broke(self, problem):
        raise broken_protocol("cell", self.cell.name, problem)

    def _run_cell(self, need_grad, x, states, params, lengths, threads, masks=None,
                  precision="fp32"):
        """(out, finals, cache) of one cell run; cache is None when no gradient is wanted.
        masks (recurrent/masks.py) reach the cell only when there are some, and the
        precision only when it is not fp32 (precision_keyword)."""
        extra = {} if masks is None else {"masks": masks}
        extra.update(precision_keyword(precision))
        infer = None if need_grad else getattr(self._calls, "infer", None)
        if infer is not None:
            out, finals = self._cell_result("infer", ("out", "final_states"),
                                            infer(x, states, params, lengths, threads, **extra))
            return out, finals, None
        out, finals, cache = self._cell_result(
            "forward", ("out", "final_states", "cache"),
            self._calls.forward(x, states, params, lengths, threads, **extra))
        return out, finals, (cache if need_grad else None)

    def backward(self, d_out, d_state=None):
        """BPTT through the last forward call, once, with the thread count that forward
        used. d_out (T, B, D*H); d_state like the returned state (entries may be None).
        Parameter gradients are ADDED into grads(). Returns (dx (T, B, I), dstate) with
        dstate shaped like the state argument."""
        self.check_backward()
        T, B, _, _, threads, _ = self._cache
        D = self.num_directions
        d_out = self._as_float("d_out", d_out, (T, B, D * self.hidden_size))
        d_finals = self._check_d_state(d_state, B)
        with single_threaded_blas():
            dx, d_init = self.run_backward(d_out, d_finals, threads)
        return dx, pack_state(d_init)

    def check_backward(self):
        """ValueError (one line) unless a backward can follow: a forward pass that kept
        what backward reads, run with the parameter values there are now. Cells read the
        parameters again in backward, so after a change (load_state_dict, an optimizer
        step: anything calling params_changed()) the gradients would mix the new
        parameters with the old pass's activations."""
        if self._cache is None:
            raise ValueError(NO_FORWARD)
        if self._cache_version != self.params_version:
            raise ValueError("backward: the parameters changed after the forward pass "
                             "(load_state_dict, an optimizer step); call forward again")

    def run_backward(self, d_out, d_finals, num_threads):
        """backward() on checked inputs: d_out C-contiguous (T, B, D*H) of the layer dtype,
        d_finals a tuple with one (L*D, B, H) array or None per state name, num_threads an
        int >= 1. Returns (dx (T, B, I), tuple of initial-state gradients). The caller keeps
        BLAS single-threaded."""
        self.check_backward()
        T, B, rev, layer_caches, _, precision = self._cache
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        d_layer_out = d_out
        d_init = tuple(np.zeros((L * D, B, H), self.dtype) for _ in self.state_names)
        for k in reversed(range(L)):
            mask, caches = layer_caches[k]
            d_in = None
            for d in range(D):
                u = k * D + d
                d_dir = d_layer_out[:, :, d * H:(d + 1) * H]
                if d == 1:
                    d_dir = reverse_rows(d_dir, rev)
                dx_d, d_states = self._cell_result("backward", ("dx", "d_states"),
                                                   self._calls.backward(
                    np.ascontiguousarray(d_dir),
                    tuple(None if df is None else df[u] for df in d_finals),
                    caches[d], self._unit_grads(u), num_threads,
                    **precision_keyword(precision)))
                self._check_cell_grads(dx_d, d_states, T, B, k)
                if d == 1:
                    dx_d = reverse_rows(dx_d, rev)
                d_in = dx_d if d_in is None else d_in + dx_d
                for target, ds in zip(d_init, d_states):
                    target[u] = ds
            if mask is not None:
                d_in = d_in * mask
            d_layer_out = d_in
        self._cache = None   # one backward per forward (cells may reuse their caches)
        return d_layer_out, d_init

    def _check_d_state(self, d_state, B):
        """Tuple with one (L*D, B, H) array or None per cell state."""
        n = len(self.state_names)
        if d_state is None:
            return (None,) * n
        parts = (d_state,) if n == 1 else d_state
        if n > 1 and (not isinstance(d_state, (tuple, list)) or len(d_state) != n):
            raise ValueError(f"d_state: expected a tuple of {n} arrays or None "
                             f"({', '.join(self.state_names)}), got {type(d_state).__name__}")
        expected = (self.num_layers * self.num_directions, B, self.hidden_size)
        return tuple(None if p is None else
                     self._as_float("d_state" if n == 1 else f"d_state[{i}]", p, expected)
                     for i, p in enumerate(parts))

    def step(self, x_t, state=None):
        """One time step for streaming inference: x_t (B, I) -> (out_t (B, H), state).
        Equals forward() on the sequence, one step at a time (it is forward() on a sequence
        of one step, keeping nothing for backward). Unidirectional layers only."""
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer needs the whole sequence; "
                             "use forward()")
        a = as_array(x_t, "x_t")
        if a.ndim != 2 or a.shape[1] != self.input_size or a.shape[0] < 1:
            raise ValueError(f"x_t: expected shape (B, {self.input_size}) with B >= 1, "
                             f"got shape {a.shape}")
        x = self._as_float("x_t", a, a.shape)                        # (B, I)
        B = x.shape[0]
        states = self._check_states(state, B, "state", self.num_layers)
        with single_threaded_blas():
            out, finals = self.run_step(x, states, self._threads_for(B))
        return out, pack_state(finals)

    def run_step(self, x_t, states, num_threads, precision=None, evaluate=False,
                 lengths=None):
        """step() on checked inputs (x_t C-contiguous (B, I) of the layer dtype, states a
        tuple of (L, B, H) arrays, num_threads an int >= 1; unidirectional layers): one
        call of each layer's cell, nothing kept for backward, and a forward/backward pair
        around it left alone. Returns (out_t (B, H), tuple of new states). The caller keeps
        BLAS single-threaded. precision and evaluate as in run(); lengths: None, or int64
        (B,) of 0 and 1 (a row of 0 keeps its states and outputs zeros)."""
        cache = self._cache
        if lengths is None:
            lengths = np.ones(x_t.shape[0], np.int64)
        out, finals = self.run(x_t[None], states, lengths, False, num_threads, precision,
                               evaluate=evaluate)
        self._cache = cache
        return out[0], finals

    def __repr__(self):
        return (f"{type(self).__name__}(cell={self.cell.name!r}, input_size={self.input_size}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, dropout={self.dropout}, "
                f"recurrent_dropout={self.recurrent_dropout}, zoneout={self.zoneout}, "
                f"bidirectional={self.bidirectional}, dtype={self.dtype.name}"
                + (f", precision={self._precision!r})" if self._precision != "fp32" else ")"))


class RNN(Recurrent):
    """Elman RNN, h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh) (torch.nn.RNN)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, **kwargs)


class LSTM(Recurrent):
    """Long short-term memory (torch.nn.LSTM); state is the tuple (h_n, c_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, **kwargs):
        super().__init__("lstm", input_size, hidden_size, num_layers, **kwargs)


class GRU(Recurrent):
    """Gated recurrent unit (torch.nn.GRU), b_hn inside the reset product."""

    def __init__(self, input_size, hidden_size, num_layers=1, **kwargs):
        super().__init__("gru", input_size, hidden_size, num_layers, **kwargs)
