"""A SequenceModel as an ONNX graph, built with the onnx package's helper API.

Inputs (dynamic axes "time" T and "batch" B):
  tokens   (T, B) int64 token ids           for token models (char-lm, sentiment)
  features (T, B, I) float32                for feature models (forecast)
  lengths  (B,) int64 in 0..T               valid steps per row (T for every row: no padding)
  h_0      (L*D, B, H) float32              initial hidden state, as torch's (only with
  c_0      likewise, LSTM only              state_inputs; else zeros); a row of length 0
                                            keeps its initial state
Outputs:
  outputs        (T, B, K) per-step outputs, zero at padded steps ("sequence" models),
                 or (B, K) for pooled models (last / mean / max over valid steps)
  probabilities  softmax of outputs over K, for models trained with cross_entropy
  h_n            (L*D, B, H) final hidden state, as torch's; c_n too for LSTM

The recurrent stack uses the ONNX RNN/GRU/LSTM operators with sequence_lens, one per
layer (both directions in one operator); their gate blocks are reordered from PyTorch's
(LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h with linear_before_reset=1). A layer no
operator computes (ln_lstm; any cell with zoneout's blend) is a Scan per direction over
one step of the cell built from standard operators (_scan_layer). An
encoder-decoder's two graphs (onnx_seq2seq.py) build their stacks with the same _stack. The wide part
of a sentiment model (recurrent/wide.py) is computed inside the graph from the token ids:
unigrams, hashed bigrams, each counted once per row.

Dimension legend: T time steps, B batch rows, I input features, E embedding size,
H hidden units, D directions, L layers, K outputs, N = 2T - 1 n-gram positions.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..cellbase import LN_EPS
from ..layout import GATE_ORDER, STATE_NAMES, gate_slice
from ..wide import BIGRAM_MIX
from . import torch_ensemble, torch_names

OPSET = 21  # onnxruntime >= 1.18 runs it
IR_VERSION = 10

# ONNX's gate order per built-in cell, in our (PyTorch's) gate names.
ONNX_GATES = {"rnn_tanh": ("h",), "rnn_relu": ("h",), "lstm": ("i", "o", "f", "g"),
              "gru": ("z", "r", "n")}
OPERATOR = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}


class _Graph:
    """Nodes and initializers with generated unique names. With ``outer``, a subgraph's
    nodes (a Scan's body): names unique across both, constants among the outer graph's
    initializers (a subgraph reads the outer scope's names)."""

    def __init__(self, outer=None):
        self.nodes = []
        self.initializers = [] if outer is None else outer.initializers
        self._count = [0] if outer is None else outer._count

    def name(self, hint):
        self._count[0] += 1
        return f"{hint}_{self._count[0]}"

    def const(self, value, hint="const"):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type, inputs, outputs=1, hint=None, **attrs):
        """Add one node; its output name, or names when it has several."""
        names = [self.name(hint or op_type.lower()) for _ in range(outputs)] \
            if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if len(names) == 1 else names


def _reorder(a, cell, H):
    """Rows (or entries) of a stacked PyTorch gate array in ONNX's gate order."""
    return np.concatenate([a[gate_slice(cell, g, H)] for g in ONNX_GATES[cell]], axis=0)


def _recurrent_layer(g, x, seq_lens, initial, weights, cell, layer, D, H, prefix="rnn",
                     zoneout=0.0):
    """One ONNX RNN/GRU/LSTM node for layer ``layer`` -> (Y (T, D, B, H), Y_h, Y_c);
    ``initial``: its initial states, each (D, B, H) (h, and c for the LSTMs);
    ``seq_lens``: "" when every row runs all T steps; ``prefix``: the stack's in
    ``weights``. ln_lstm, and a layer with zoneout, which no operator computes: a Scan
    (_scan_layer)."""
    if cell not in OPERATOR or zoneout:
        return _scan_layer(g, x, seq_lens, initial, weights, cell, layer, D, H, prefix,
                           zoneout)
    W, R, Bias = [], [], []
    for d in range(D):
        name = lambda kind: torch_names.rnn_param(kind, layer, d == 1, prefix)  # noqa: E731
        W.append(_reorder(weights[name("weight_ih")], cell, H))
        R.append(_reorder(weights[name("weight_hh")], cell, H))
        Bias.append(np.concatenate([_reorder(weights[name("bias_ih")], cell, H),
                                    _reorder(weights[name("bias_hh")], cell, H)]))
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if cell == "gru":
        attrs["linear_before_reset"] = 1
    if OPERATOR[cell] == "RNN":
        attrs["activations"] = ["Relu" if cell == "rnn_relu" else "Tanh"] * D
    inputs = [x, g.const(np.stack(W), f"W_l{layer}"), g.const(np.stack(R), f"R_l{layer}"),
              g.const(np.stack(Bias), f"B_l{layer}"), seq_lens, *initial]
    outputs = 3 if cell == "lstm" else 2
    names = g.op(OPERATOR[cell], inputs, outputs, hint=f"{OPERATOR[cell].lower()}_l{layer}",
                 **attrs)
    return names[0], names[1], names[2] if cell == "lstm" else None


def _stack(g, x, seq_lens, full_states, weights, cell, L, D, H, prefix="rnn", zoneout=0.0):
    """A stack of L layers, each one _recurrent_layer: x (T, B, I) -> (top layer's
    outputs (T, B, D*H), [(Y_h, Y_c or None, the layer's initial states) per layer]);
    ``full_states``: the initial states, each (L*D, B, H); ``zoneout``: the stack's
    (its evaluation's blend of each state with the previous one)."""
    flat = g.const(np.array([0, 0, D * H]))  # not -1: T may be 0
    layers = []
    for k in range(L):
        rows = [g.const(np.array([k * D])), g.const(np.array([(k + 1) * D])),
                g.const(np.array([0]))]
        initial = [g.op("Slice", [full, *rows]) for full in full_states]  # (D, B, H)
        y, y_h, y_c = _recurrent_layer(g, x, seq_lens, initial, weights, cell, k, D, H,
                                       prefix, zoneout)
        x = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), flat])  # (T, B, DH)
        layers.append((y_h, y_c, initial))
    return x, layers


def _scan_layer(g, x, seq_lens, initial, weights, cell, layer, D, H, prefix, zoneout):
    """Layer ``layer`` as one ONNX Scan over the steps per direction, its body one step
    of the cell (_step_body) -> as _recurrent_layer. The input part x W_ih^T (for
    ln_lstm: normalised per gate block, with its gain and b_ih) is computed for all steps
    before the Scan. A row past its length keeps its states and outputs zeros; the
    reverse direction scans its steps reversed (a Slice of step -1 before the Scan and
    after it, not the Scan's reverse directions, which the ONNX reference runtime does
    not implement), so its rows start at their own last step, as recurrent's do. With
    lengths the Scan runs one step more, past every row's length, and its outputs are
    cut to T: onnxruntime's Scan fails on no steps (T = 0)."""
    masks = []
    if seq_lens:
        steps = g.op("Squeeze", [g.op("Shape", [x], start=0, end=1)])
        more = g.op("Add", [steps, g.const(np.array(1, np.int64))])
        time = g.op("Cast", [g.op("Range", [g.const(np.array(0, np.int64)), more,
                                            g.const(np.array(1, np.int64))])],
                    to=TensorProto.INT32)  # (T + 1,)
        valid = g.op("Less", [g.op("Unsqueeze", [time, g.const(np.array([1]))]),
                              g.op("Unsqueeze", [seq_lens, g.const(np.array([0]))])])
        masks = [g.op("Unsqueeze", [valid, g.const(np.array([2]))])]  # (T + 1, B, 1)
        cut = g.op("Unsqueeze", [steps, g.const(np.array([0]))])  # (1,): T
    ys, finals = [], [[] for _ in STATE_NAMES[cell]]
    for d in range(D):
        def param(kind, d=d):
            return weights[torch_names.rnn_param(kind, layer, d == 1, prefix)]
        a_x = g.op("MatMul", [x, g.const(np.ascontiguousarray(param("weight_ih").T),
                                         f"W_ih_l{layer}")])  # (T, B, G)
        if cell == "ln_lstm":
            a_x = g.op("Add", [g.op("Mul", [_layer_norm(g, a_x, 4, H, 3),
                                            g.const(param("ln_gain_ih"))]),
                               g.const(param("bias_ih"))])
        else:   # the GRU's b_hh stays with the recurrent part (b_hn inside the reset)
            bias = param("bias_ih") + (0 if cell == "gru" else param("bias_hh"))
            a_x = g.op("Add", [a_x, g.const(bias.astype(np.float32))])
        if masks:   # the step past every row's length
            a_x = g.op("Pad", [a_x, g.const(np.array([0, 0, 0, 1, 0, 0]))])
        first = [g.op("Squeeze", [_rows(g, s, d, d + 1), g.const(np.array([0]))])
                 for s in initial]  # each (B, H)
        steps_in = [a_x] + masks
        if d == 1:
            steps_in = [_reversed(g, v) for v in steps_in]
        outs = g.op("Scan", first + steps_in, len(first) + 1, hint=f"scan_l{layer}",
                    body=_step_body(g, cell, param, H, zoneout, bool(masks)),
                    num_scan_inputs=len(steps_in))
        for target, final in zip(finals, outs[:-1]):
            target.append(g.op("Unsqueeze", [final, g.const(np.array([0]))]))  # (1, B, H)
        y = _reversed(g, outs[-1]) if d == 1 else outs[-1]
        y = _rows(g, y, 0, cut) if masks else y  # (T, B, H)
        ys.append(g.op("Unsqueeze", [y, g.const(np.array([1]))]))  # (T, 1, B, H)
    joined = [s[0] if D == 1 else g.op("Concat", s, axis=0) for s in finals]  # (D, B, H)
    y = ys[0] if D == 1 else g.op("Concat", ys, axis=1)  # (T, D, B, H)
    return y, joined[0], joined[1] if len(joined) == 2 else None


def _reversed(g, v):
    """v with its axis 0 in reverse order (a Slice of step -1)."""
    return g.op("Slice", [v, g.const(np.array([-1])), g.const(np.array([-2 ** 63])),
                          g.const(np.array([0])), g.const(np.array([-1]))])


def _layer_norm(g, v, blocks, H, rank):
    """v (..., blocks * H) of ``rank`` dimensions, each block of H values normalised on
    its own (mean and variance over the block, LN_EPS inside the square root)."""
    keep = [0] * (rank - 1)
    split = g.op("Reshape", [v, g.const(np.array(keep + [blocks, H]))])
    normal = g.op("LayerNormalization", [split, g.const(np.ones(H, np.float32))], axis=-1,
                  epsilon=LN_EPS)
    return g.op("Reshape", [normal, g.const(np.array(keep + [blocks * H]))])


def _step_body(g, cell, param, H, zoneout, masked):
    """The Scan body of one step of ``cell`` with the weights param(kind) gives, as
    recurrent's kernels compute it (torch's equations; ln_lstm's: recurrent/reference.py):
    inputs the states (B, H) each, the step's input part (B, G) and, when ``masked``,
    whether each row is inside its length (B, 1); outputs the new states and the step's
    output h. With zoneout p each new state is p * previous + (1 - p) * candidate."""
    b = _Graph(g)
    states = [b.name(kind) for kind in STATE_NAMES[cell]]
    a_x, valid = b.name("a_x"), b.name("valid")
    hw = b.op("MatMul", [states[0], b.const(np.ascontiguousarray(param("weight_hh").T),
                                            "W_hh")])  # (B, G)
    if cell == "ln_lstm":
        hw = b.op("Add", [b.op("Mul", [_layer_norm(b, hw, 4, H, 2),
                                       b.const(param("ln_gain_hh"))]),
                          b.const(param("bias_hh"))])
    elif cell == "gru":
        hw = b.op("Add", [hw, b.const(param("bias_hh"))])
    order = GATE_ORDER[cell]
    sizes = b.const(np.array([H] * len(order))) if len(order) > 1 else None
    if cell == "gru":
        gx = dict(zip(order, b.op("Split", [a_x, sizes], len(order), axis=1)))
        gh = dict(zip(order, b.op("Split", [hw, sizes], len(order), axis=1)))
        r = b.op("Sigmoid", [b.op("Add", [gx["r"], gh["r"]])])
        z = b.op("Sigmoid", [b.op("Add", [gx["z"], gh["z"]])])
        n = b.op("Tanh", [b.op("Add", [gx["n"], b.op("Mul", [r, gh["n"]])])])
        new = [b.op("Add", [n, b.op("Mul", [z, b.op("Sub", [states[0], n])])])]
    elif cell in ("rnn_tanh", "rnn_relu"):
        new = [b.op("Relu" if cell == "rnn_relu" else "Tanh", [b.op("Add", [a_x, hw])])]
    else:   # the LSTMs: c' = f c + i g, h' = o tanh(c') (ln_lstm: tanh(g_c LN(c') + b_c))
        a = dict(zip(order, b.op("Split", [b.op("Add", [a_x, hw]), sizes], len(order),
                                 axis=1)))
        i, f, o = (b.op("Sigmoid", [a[k]]) for k in "ifo")
        c = b.op("Add", [b.op("Mul", [f, states[1]]),
                         b.op("Mul", [i, b.op("Tanh", [a["g"]])])])
        if cell == "ln_lstm":
            c_out = b.op("Add", [b.op("Mul", [_layer_norm(b, c, 1, H, 2),
                                             b.const(param("ln_gain_c"))]),
                                 b.const(param("ln_bias_c"))])
        else:
            c_out = c
        new = [b.op("Mul", [o, b.op("Tanh", [c_out])]), c]
    if zoneout:
        keep = b.const(np.float32(zoneout))
        rest = b.const(np.float32(1) - np.float32(zoneout))
        new = [b.op("Add", [b.op("Mul", [keep, old]), b.op("Mul", [rest, s])])
               for old, s in zip(states, new)]
    if masked:
        out = b.op("Where", [valid, new[0], b.const(np.float32(0))])
        new = [b.op("Where", [valid, s, old]) for s, old in zip(new, states)]
    else:
        out = b.op("Identity", [new[0]])
    new = [b.op("Identity", [s]) for s in new]
    G = len(order) * H
    inputs = [helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", H])
              for s in states]
    inputs.append(helper.make_tensor_value_info(a_x, TensorProto.FLOAT, ["batch", G]))
    if masked:
        inputs.append(helper.make_tensor_value_info(valid, TensorProto.BOOL, ["batch", 1]))
    outputs = [helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", H])
               for s in new + [out]]
    return helper.make_graph(b.nodes, b.name(f"{cell}_step"), inputs, outputs)


def _rows(g, x, start, stop=2 ** 62):
    """x[start:stop] along axis 0 (a Slice; the default stop: to the end; a stop given
    as a name: that (1,) int64 tensor)."""
    end = stop if isinstance(stop, str) else g.const(np.array([stop]))
    return g.op("Slice", [x, g.const(np.array([start])), end, g.const(np.array([0]))])


def _wide_logits(g, tokens, mask, wide, weight):
    """(B, K) logits of the wide part: the rows of ``weight`` of each row's distinct
    unigrams and hashed bigrams among its valid steps, summed (recurrent/wide.py)."""
    V, buckets = wide.vocab_size, wide.bigram_buckets
    ids, valid = tokens, mask  # (T, B)
    if buckets:
        first, second = _rows(g, tokens, 0, -1), _rows(g, tokens, 1)  # (T-1, B) each
        key = g.op("Add", [g.op("Mul", [first, g.const(np.array(V, np.int64))]), second])
        # The 64-bit product wraps as uint64 multiplication does; the shift is logical.
        mixed = g.op("Mul", [key, g.const(np.array(BIGRAM_MIX).astype(np.int64))])
        shifted = g.op("BitShift", [g.op("Cast", [mixed], to=TensorProto.UINT64),
                                    g.const(np.array(17, np.uint64))], direction="RIGHT")
        bucket = g.op("Mod", [g.op("Cast", [shifted], to=TensorProto.INT64),
                              g.const(np.array(buckets, np.int64))])
        pairs = g.op("Add", [bucket, g.const(np.array(V, np.int64))])  # (T-1, B)
        ids = g.op("Concat", [tokens, pairs], axis=0)  # (N, B)
        valid = g.op("Concat", [mask, _rows(g, mask, 1)], axis=0)
    # A feature counts once per row: keep position n only if no earlier valid m has its
    # id. Each row's ids sorted (TopK breaks ties by position, so the first of a run of
    # equal ids is its earliest position), every invalid position as -1 (ids are >= 0):
    # the first of each run of valid ids is kept, and the flags go back to the positions.
    # O(N log N) per row, and no (N, N, B) tensor of every pair of positions.
    key = g.op("Where", [valid, ids, g.const(np.array(-1, np.int64))])  # (N, B)
    count = g.op("Shape", [ids], start=0, end=1)  # (1,): N
    order, where = g.op("TopK", [key, count], 2, axis=0, largest=0, sorted=1)  # (N, B)
    head = _rows(g, order, 0, 1)  # (1, B)
    differs = g.op("Not", [g.op("Equal", [_rows(g, order, 1),
                                          _rows(g, order, 0, -1)])])  # (N-1, B)
    first = g.op("Concat", [g.op("Equal", [head, head]), differs], axis=0)  # (N, B)
    sorted_keep = g.op("And", [first, g.op("GreaterOrEqual", [
        order, g.const(np.array(0, np.int64))])])  # (N, B) in sorted order
    keep = g.op("ScatterElements", [
        g.op("ConstantOfShape", [g.op("Shape", [ids])],
             value=helper.make_tensor("zero_keep", TensorProto.FLOAT, [1], [0.0])),
        where, g.op("Cast", [sorted_keep], to=TensorProto.FLOAT)], axis=0)  # (N, B)
    rows = g.op("Gather", [g.const(weight, "wide_weight"), ids], axis=0)  # (N, B, K)
    kept = g.op("Mul", [rows, g.op("Unsqueeze", [keep, g.const(np.array([2]))])])
    return g.op("ReduceSum", [kept, g.const(np.array([0]))], keepdims=0)  # (B, K)


def state_names(cell, suffix="_0"):
    """The graph's names of a stack's states: ("h_0", "c_0") for the LSTMs, else
    ("h_0",)."""
    return tuple(f"{kind}{suffix}" for kind in STATE_NAMES[cell])


def _initial_states(g, cell, LD, H, as_inputs, lengths="lengths"):
    """([graph inputs], [state (L*D, B, H)] for h (and c)): the inputs h_0 (c_0) when
    ``as_inputs``, else zeros of the batch's size (that of the input ``lengths``)."""
    names = state_names(cell)
    if as_inputs:
        return ([helper.make_tensor_value_info(name, TensorProto.FLOAT, [LD, "batch", H])
                 for name in names], list(names))
    return [], [_zeros(g, [np.array([LD]), g.op("Shape", [lengths]), np.array([H])])
                 for _ in names]


def _zeros(g, dims):
    """A float32 tensor of zeros whose shape is ``dims`` concatenated: each a (1,) int64
    array or the name of one (a dimension taken from an input's shape)."""
    shape = g.op("Concat", [g.const(d) if isinstance(d, np.ndarray) else d for d in dims],
                 axis=0)
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    return g.op("ConstantOfShape", [shape], value=zero)


def _pooled(g, output, x, top_h, mask3, some):
    """Layer outputs x (T, B, D*H) -> (B, D*H) pooled over valid steps, as
    recurrent/pooling.py; ``top_h`` the top layer's Y_h (D, B, H), ``some`` (1, B, 1)
    rows with at least one step."""
    if output == "last":  # the top layer's final states; zeros for no steps
        last = g.op("Where", [some, top_h, g.const(np.float32(0))])  # (D, B, H)
        return g.op("Reshape", [g.op("Transpose", [last], perm=[1, 0, 2]),
                                g.const(np.array([0, -1]))])  # (B, D*H)
    if output == "mean":
        fmask = g.op("Cast", [mask3], to=TensorProto.FLOAT)  # (T, B, 1)
        total = g.op("ReduceSum", [g.op("Mul", [x, fmask]), g.const(np.array([0]))],
                     keepdims=0)  # (B, DH)
        count = g.op("ReduceSum", [fmask, g.const(np.array([0]))], keepdims=0)  # (B, 1)
        return g.op("Div", [total, g.op("Max", [count, g.const(np.float32(1))])])
    # max over valid steps; a row without steps pools to zeros
    masked = g.op("Where", [mask3, x, g.const(np.float32(-np.inf))])
    top = g.op("ReduceMax", [masked, g.const(np.array([0]))], keepdims=0)
    return g.op("Where", [g.op("Squeeze", [some, g.const(np.array([0]))]), top,
                          g.const(np.float32(0))])  # (B, DH)


def onnx_model(model, softmax: bool, metadata: dict | None = None,
               state_inputs: bool = False, loss: str | None = None) -> onnx.ModelProto:
    """The ONNX model of ``model`` (a SequenceModel, or an EnsembleModel: see
    _combined); ``softmax``: add "probabilities"; ``state_inputs``: add the inputs h_0
    (and c_0) for the initial state (else zeros); ``loss``: the run's loss, which says
    how an ensemble's members combine. UserError for a cell no graph here computes (a
    plugin's)."""
    members = getattr(model, "members", None)
    first = members[0] if members else model
    rnn = first.rnn
    cell = torch_names.check_onnx_cell(rnn)
    L, D, H = rnn.num_layers, first.num_directions, rnn.hidden_size
    g = _Graph()
    if first.tokens:
        x_in = helper.make_tensor_value_info("tokens", TensorProto.INT64, ["time", "batch"])
    else:
        x_in = helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                             ["time", "batch", rnn.input_size])
    lengths_in = helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])
    steps = g.op("Squeeze", [g.op("Shape", [x_in.name], start=0, end=1)])
    time = g.op("Range", [g.const(np.array(0, np.int64)), steps,
                          g.const(np.array(1, np.int64))])  # (T,)
    mask = g.op("Less", [g.op("Unsqueeze", [time, g.const(np.array([1]))]),
                         g.op("Unsqueeze", ["lengths", g.const(np.array([0]))])])  # (T, B)
    mask3 = g.op("Unsqueeze", [mask, g.const(np.array([2]))])  # (T, B, 1)
    state_values, full_states = _initial_states(g, cell, L * D, H, state_inputs)
    if members:
        outs = [_network(g, m, x_in.name, mask, mask3, full_states)[0] for m in members]
        out = _combined(g, outs, loss, first.output == "sequence", mask3)
        states = []
    else:
        out, states = _network(g, model, x_in.name, mask, mask3, full_states)
    K = first.head.out_features
    out_dims = ["time", "batch", K] if first.output == "sequence" else ["batch", K]
    g.op("Identity", [out], ["outputs"])
    outputs = [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, out_dims)]
    if softmax:
        g.op("Softmax", ["outputs"], ["probabilities"], axis=-1)
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                     out_dims))
    for name, finals in zip(("h_n", "c_n"), states):
        g.op("Concat", finals, [name], axis=0)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                     [L * D, "batch", H]))
    return model_proto(g, "recurrent", [x_in, lengths_in, *state_values], outputs, metadata)


def model_proto(g, name, inputs, outputs, metadata=None) -> onnx.ModelProto:
    """The checked ONNX model of graph ``g`` (opset OPSET, IR version IR_VERSION) with
    these graph inputs and outputs (value infos) and ``metadata`` as its properties."""
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.initializers)
    result = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                               producer_name="recurrent")
    result.ir_version = IR_VERSION
    if metadata:
        helper.set_model_props(result, metadata)
    onnx.checker.check_model(result, full_check=True)
    return result


def _network(g, model, x_name, mask, mask3, full_states):
    """One SequenceModel's nodes: (its outputs, [final h per layer, final c per layer
    (LSTM)])."""
    cell = torch_names.cell_name(model)
    weights = torch_names.tensors(model)
    rnn = model.rnn
    L, D, H = rnn.num_layers, model.num_directions, rnn.hidden_size
    x = x_name
    if model.tokens:
        x = g.op("Gather", [g.const(weights["embedding.weight"], "embedding_weight"),
                            x_name], axis=0)  # (T, B, E)
    seq_lens = g.op("Cast", ["lengths"], to=TensorProto.INT32)
    # A row of length 0 keeps its initial state (onnxruntime's operators return zeros).
    some = g.op("Unsqueeze", [g.op("Greater", ["lengths", g.const(np.array(0))]),
                              g.const(np.array([0, 2]))])  # (1, B, 1)
    finals_h, finals_c = [], []
    x, layers = _stack(g, x, seq_lens, full_states, weights, cell, L, D, H,
                       zoneout=rnn.zoneout)
    for y_h, y_c, initial in layers:
        finals_h.append(g.op("Where", [some, y_h, initial[0]]))
        if y_c is not None:
            finals_c.append(g.op("Where", [some, y_c, initial[1]]))
    top_h = layers[-1][0]

    head_w = g.const(np.ascontiguousarray(weights["head.weight"].T), "head_weight")
    head_b = g.const(weights["head.bias"], "head_bias")
    if model.output == "sequence":
        logits = g.op("Add", [g.op("MatMul", [x, head_w]), head_b])  # (T, B, K)
        out = g.op("Mul", [logits, g.op("Cast", [mask3], to=TensorProto.FLOAT)])
    else:
        pooled = _pooled(g, model.output, x, top_h, mask3, some)
        out = g.op("Add", [g.op("MatMul", [pooled, head_w]), head_b])  # (B, K)
        if model.wide is not None:
            out = g.op("Add", [out, _wide_logits(g, x_name, mask, model.wide,
                                                 weights["wide.weight"])])
    return out, [finals_h] + ([finals_c] if finals_c else [])


def _combined(g, outs, loss, sequence, mask3):
    """The members' outputs (each (T, B, K) or (B, K)) combined as their loss combines
    them; padded steps of per-step outputs stay zero."""
    def log_mean(parts):  # log of the mean of exp(parts), over the members
        stacked = g.op("Concat", [g.op("Unsqueeze", [p, g.const(np.array([0]))])
                                  for p in parts], axis=0)  # (M, ...)
        lse = g.op("ReduceLogSumExp", [stacked, g.const(np.array([0]))], keepdims=0)
        return g.op("Sub", [lse, g.const(np.float32(np.log(len(parts))))])

    kind = torch_ensemble.combine_rule(loss)
    if kind == "log_mean_softmax":
        out = log_mean([g.op("LogSoftmax", [o], axis=-1) for o in outs])
    elif kind == "log_mean_sigmoid":  # log p = -softplus(-x), log(1 - p) = -softplus(x)
        log_p = log_mean([g.op("Neg", [g.op("Softplus", [g.op("Neg", [o])])]) for o in outs])
        log_q = log_mean([g.op("Neg", [g.op("Softplus", [o])]) for o in outs])
        out = g.op("Sub", [log_p, log_q])
    else:
        out = g.op("Mean", outs)
    if sequence:
        out = g.op("Mul", [out, g.op("Cast", [mask3], to=TensorProto.FLOAT)])
    return out
