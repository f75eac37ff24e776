"""An encoder-decoder (recurrent/seq2seq) as two ONNX graphs: the encoder, run once per
batch of sources, and one decoder step, run once per emitted token by the caller's
search loop (greedy or beam), as recurrent/seq2seq/decode.py steps
Seq2SeqModel.encode and Seq2SeqModel.decoder_step. A search is the caller's choice (and
reads the states it keeps), so it stays outside the graphs.

Encoder graph:
  inputs   source         (S, B) int64      source ids, padded with 0 after each row's end
           source_lengths (B,) int64        each row's number of source ids, 0..S
  outputs  memory         (S, B, F)         the encoder's top layer, zero at padded steps
           h_0            (L, B, F)         the decoder's initial states: per layer, the
           c_0            (L, B, F), LSTM   encoder's final states of its D directions
                                            side by side (the bridge)
           feed_0         (1, B, F)         additive attention only: the h~ fed to the
                                            first step (zeros)
Decoder-step graph:
  inputs   previous       (B,) int64        the previous token of each row (BOS first)
           h_0, c_0, feed_0                 the states: the encoder's outputs at the first
                                            step, then the step before's h_n, c_n, feed_n
           memory, source_lengths           as the encoder's
  outputs  log_probs      (B, V)            log-probabilities of the next token; PAD and
                                            BOS are -inf (never emitted)
           h_n, c_n, feed_n                 the new states, shaped as h_0, c_0, feed_0
           attention      (B, S)            the attention weights (0 past each source)

The recurrent stacks are onnx.py's (_stack: one ONNX RNN/GRU/LSTM node per layer, the
gate blocks reordered there; a Scan over the steps for ln_lstm and with zoneout). Legend: S source steps, B rows, L layers, D encoder
directions, H encoder hidden size, F = D*H (decoder hidden size), V target vocabulary.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ..seq2seq.model import PAD_ID
from . import seq2seq_names, torch_names
from .onnx import _Graph, _initial_states, _stack, _zeros, model_proto, state_names

ENCODER, DECODER_STEP = "encoder", "decoder_step"  # the graphs' names, in their metadata
GRAPH_KEY = "graph"
FEED = "feed"  # the fed h~ of additive attention (input feeding)


def _value(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def states(model) -> tuple:
    """The names of the decoder's states as the step graph's inputs (the encoder graph's
    outputs): h_0 (c_0 for LSTM, feed_0 for additive attention)."""
    names = state_names(model.decoder.cell.name)
    return names + ((FEED + "_0",) if model.feeding is not None else ())


def _check(model) -> str:
    """The cell's name; UserError for a cell no ONNX graph of ours computes."""
    return torch_names.check_onnx_cell(model.encoder)


def encoder_model(model, metadata: dict | None = None):
    """The encoder graph of ``model`` (a Seq2SeqModel in eval mode); see the module
    docstring."""
    cell = _check(model)
    weights = seq2seq_names.tensors(model)
    enc = model.encoder
    L, D, H = enc.num_layers, model.num_directions, enc.hidden_size
    F = D * H
    g = _Graph()
    inputs = [_value("source", ["source_steps", "batch"], TensorProto.INT64),
              _value("source_lengths", ["batch"], TensorProto.INT64)]
    x = g.op("Gather", [g.const(weights["encoder.embedding.weight"], "source_embedding"),
                        "source"], axis=0)  # (S, B, E)
    seq_lens = g.op("Cast", ["source_lengths"], to=TensorProto.INT32)
    _, zeros = _initial_states(g, cell, L * D, H, False, lengths="source_lengths")
    memory, layers = _stack(g, x, seq_lens, zeros, weights, cell, L, D, H,
                            seq2seq_names.ENCODER_RNN, enc.zoneout)
    g.op("Identity", [memory], ["memory"])
    outputs = [_value("memory", ["source_steps", "batch", F])]
    # The bridge: each layer's final states (D, B, H) -> (1, B, D*H), the directions
    # side by side (recurrent/seq2seq/model.py: bridge). An ONNX operator's final state
    # of a row of length 0 is its initial one, zeros, as recurrent's.
    for i, name in enumerate(state_names(cell)):
        bridged = [g.op("Unsqueeze", [g.op("Reshape", [
            g.op("Transpose", [layer[i]], perm=[1, 0, 2]), g.const(np.array([0, F]))]),
            g.const(np.array([0]))]) for layer in layers]  # (1, B, F) each
        g.op("Concat", bridged, [name], axis=0)
        outputs.append(_value(name, [L, "batch", F]))
    if model.feeding is not None:
        feed = _zeros(g, [np.array([1]), g.op("Shape", ["source_lengths"]), np.array([F])])
        g.op("Identity", [feed], [FEED + "_0"])
        outputs.append(_value(FEED + "_0", [1, "batch", F]))
    return model_proto(g, "recurrent_encoder", inputs, outputs,
                       {**(metadata or {}), GRAPH_KEY: ENCODER})


def decoder_step_model(model, metadata: dict | None = None):
    """The decoder-step graph of ``model`` (a Seq2SeqModel in eval mode); see the module
    docstring."""
    cell = _check(model)
    weights = seq2seq_names.tensors(model)
    dec = model.decoder
    L, F = dec.num_layers, dec.hidden_size
    V = model.head.out_features
    additive = model.feeding is not None
    g = _Graph()
    inputs = [_value("previous", ["batch"], TensorProto.INT64)]
    for name in states(model):
        inputs.append(_value(name, [1 if name.startswith(FEED) else L, "batch", F]))
    inputs += [_value("memory", ["source_steps", "batch", F]),
               _value("source_lengths", ["batch"], TensorProto.INT64)]
    x = g.op("Gather", [g.const(weights["decoder.embedding.weight"], "target_embedding"),
                        "previous"], axis=0)  # (B, E)
    if additive:  # input feeding: [embedding; previous h~]
        fed = g.op("Squeeze", [FEED + "_0", g.const(np.array([0]))])
        x = g.op("Concat", [x, fed], axis=1)
    x = g.op("Unsqueeze", [x, g.const(np.array([0]))])  # one step: (1, B, I)
    top, layers = _stack(g, x, "", list(state_names(cell)), weights, cell, L, 1, F,
                         seq2seq_names.DECODER_RNN, dec.zoneout)
    h = g.op("Squeeze", [top, g.const(np.array([0]))])  # (B, F)
    outputs = [_value("log_probs", ["batch", V])]
    for i, name in enumerate(state_names(cell, "_n")):
        g.op("Concat", [layer[i] for layer in layers], [name], axis=0)  # (L, B, F)
        outputs.append(_value(name, [L, "batch", F]))
    if additive:
        att, weights_at = _additive(g, h, weights)
        g.op("Unsqueeze", [att, g.const(np.array([0]))], [FEED + "_n"])
        outputs.append(_value(FEED + "_n", [1, "batch", F]))
    else:
        att, weights_at = _luong(g, h, weights, model.attention.score)
    g.op("Identity", [weights_at], ["attention"])
    outputs.append(_value("attention", ["batch", "source_steps"]))
    head_w = g.const(np.ascontiguousarray(weights["head.weight"].T), "head_weight")
    logits = g.op("Add", [g.op("MatMul", [att, head_w]),
                          g.const(weights["head.bias"], "head_bias")])  # (B, V)
    never = np.zeros(V, np.float32)  # decoder_step's: PAD and BOS are never targets
    never[[PAD_ID, model.bos]] = -np.inf
    g.op("LogSoftmax", [g.op("Add", [logits, g.const(never, "never_emitted")])],
         ["log_probs"], axis=1)
    return model_proto(g, "recurrent_decoder_step", inputs, outputs,
                       {**(metadata or {}), GRAPH_KEY: DECODER_STEP})


def _attend(g, scores, weights, h):
    """scores (B, S) -> (h~ (B, F), the weights (B, S)): the softmax over each row's
    valid source steps (recurrent/seq2seq/attention.py: masked_softmax; a row of source
    length 0 attends to nothing), the context c = sum_j a_j s_j, h~ = tanh(W_c [h; c])."""
    steps = g.op("Squeeze", [g.op("Shape", [scores], start=1, end=2)])
    position = g.op("Range", [g.const(np.array(0, np.int64)), steps,
                              g.const(np.array(1, np.int64))])  # (S,)
    valid = g.op("Less", [g.op("Unsqueeze", [position, g.const(np.array([0]))]),
                          g.op("Unsqueeze", ["source_lengths", g.const(np.array([1]))])])
    masked = g.op("Where", [valid, scores, g.const(np.float32(-np.inf))])
    # a row without valid steps gets NaN from Softmax: the Where makes it zeros
    a = g.op("Where", [valid, g.op("Softmax", [masked], axis=1),
                       g.const(np.float32(0))])  # (B, S)
    memory_b = g.op("Transpose", ["memory"], perm=[1, 0, 2])  # (B, S, F)
    context = g.op("Squeeze", [g.op("MatMul", [g.op("Unsqueeze", [a, g.const(np.array([1]))]),
                                               memory_b]),
                               g.const(np.array([1]))])  # (B, F)
    z = g.op("Concat", [h, context], axis=1)  # (B, 2F)
    w_c = g.const(np.ascontiguousarray(weights["attention.weight_c"].T), "attention_weight_c")
    return g.op("Tanh", [g.op("MatMul", [z, w_c])]), a


def _luong(g, h, weights, score):
    """Luong attention after the decoder (attention.py): score h.s ("dot") or
    (h W_a).s ("general")."""
    q = h
    if score == "general":
        q = g.op("MatMul", [h, g.const(weights["attention.weight_a"], "attention_weight_a")])
    memory_t = g.op("Transpose", ["memory"], perm=[1, 2, 0])  # (B, F, S)
    scores = g.op("Squeeze", [g.op("MatMul", [g.op("Unsqueeze", [q, g.const(np.array([1]))]),
                                              memory_t]),
                              g.const(np.array([1]))])  # (B, S)
    return _attend(g, scores, weights, h)


def _additive(g, h, weights):
    """Additive attention (feeding.py): score v.tanh(W_q h + W_k s_j)."""
    const = lambda name: g.const(  # noqa: E731
        np.ascontiguousarray(weights[f"attention.{name}"].T), f"attention_{name}")
    keys = g.op("MatMul", ["memory", const("weight_k")])  # (S, B, A)
    query = g.op("Unsqueeze", [g.op("MatMul", [h, const("weight_q")]),
                               g.const(np.array([0]))])  # (1, B, A)
    u = g.op("Tanh", [g.op("Add", [keys, query])])
    e = g.op("MatMul", [u, g.const(weights["attention.v"], "attention_v")])  # (S, B)
    return _attend(g, g.op("Transpose", [e], perm=[1, 0]), weights, h)
