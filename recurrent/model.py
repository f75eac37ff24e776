"""SequenceModel: the model around the recurrent stack, with every parameter in ONE flat
buffer.

    tokens (T, B) -> Embedding -> (T, B, E)  \
    features (T, B, I) -----------------------+-> Recurrent (any cell) -> (T, B, D*H)
      -> pool over valid steps (last | mean | max) -> (B, D*H)   [pooled outputs]
      -> dropout -> Dense head -> (T, B, K) or (B, K)

Dimension legend: T time steps, B batch rows, I input features, E embedding size,
V vocabulary size, H hidden units, D directions (1 or 2), K output features, N = T*B rows.

The pieces: recurrent/modules.py (Embedding, Dense), recurrent/layers.py (Recurrent),
recurrent/pooling.py, recurrent/dropout.py, recurrent/truncation.py (truncated BPTT of
pooled outputs), recurrent/runner.py (the view tasks get).

Flat buffer: SequenceModel allocates one contiguous array ``params`` (P,) for all
parameters and one ``grads`` (P,) mirroring it, and binds every module to named views of
them ("embedding.weight", "rnn.weight_ih_l0", ..., "head.weight", "head.bias"). Clipping,
the optimizer and checkpoints each touch one array; the views keep PyTorch's names.

Backward accumulates (+=) into the gradient views; ``zero_grad()`` clears the whole buffer
once per step. Training-mode forward caches what backward needs; eval mode turns dropout
off. ``runner()`` gives tasks the protocols.Runner view (eval mode, numpy in and out).
"""
from __future__ import annotations

import numpy as np

from .checks import (NO_FORWARD, as_array, float_dtype, gradient_as, positive_int,
                     probability, seed_sequences)
from .dropout import Dropout
from .layers import Recurrent
from .lengths import valid_mask
from .modules import Dense, Embedding
from .params import FlatModel
from .pooling import pool_backward, pool_forward
from .runner import Runner
from .state import pack_state
from .threads import single_threaded_blas
from .truncation import gather_suffix, run_prefix, scatter_suffix, truncation_plan
from .wide import Wide

INPUT_KINDS = ("tokens", "features")
OUTPUT_KINDS = ("sequence", "last", "mean", "max")


def check_spec(spec: dict) -> dict:
    """A task's model_spec, checked: ValueError naming the bad key."""
    if not isinstance(spec, dict):
        raise ValueError(f"model_spec: expected a dict, got {type(spec).__name__}")
    kind = spec.get("input")
    if kind not in INPUT_KINDS:
        raise ValueError(f"model_spec input: expected one of {', '.join(INPUT_KINDS)}, "
                         f"got {kind!r}")
    if kind == "tokens":
        positive_int(spec.get("vocab_size"), "model_spec vocab_size")
        positive_int(spec.get("embed_dim"), "model_spec embed_dim")
    else:
        positive_int(spec.get("input_size"), "model_spec input_size")
    if spec.get("output") not in OUTPUT_KINDS:
        raise ValueError(f"model_spec output: expected one of {', '.join(OUTPUT_KINDS)}, "
                         f"got {spec.get('output')!r}")
    positive_int(spec.get("output_size"), "model_spec output_size")
    if "wide_bigrams" in spec:
        if kind != "tokens" or spec["output"] == "sequence":
            raise ValueError("model_spec wide_bigrams: a wide part needs token input and a "
                             "pooled output")
        buckets = spec["wide_bigrams"]
        if not isinstance(buckets, (int, np.integer)) or isinstance(buckets, bool) \
                or buckets < 0:
            raise ValueError(f"model_spec wide_bigrams: expected an int >= 0, got {buckets!r}")
    if "wide_dropout" in spec:
        if "wide_bigrams" not in spec:
            raise ValueError("model_spec wide_dropout: needs a wide part (wide_bigrams)")
        probability(spec["wide_dropout"], "model_spec wide_dropout")
    for flag in ("wide_scale", "wide_fixed"):
        if flag in spec and ("wide_bigrams" not in spec or not isinstance(spec[flag], bool)):
            raise ValueError(f"model_spec {flag}: expected true or false with a wide part "
                             f"(wide_bigrams), got {spec[flag]!r}")
    if "wide_folds" in spec:
        folds = spec["wide_folds"]
        if not spec.get("wide_fixed") or not isinstance(folds, (int, np.integer)) \
                or isinstance(folds, bool) or folds < 2:
            raise ValueError(f"model_spec wide_folds: expected an int >= 2 with a fixed wide "
                             f"part (wide_fixed), got {folds!r}")
    return spec


class SequenceModel(FlatModel):
    """Embedding (for token input) -> Recurrent stack -> pooling (for pooled output) ->
    dropout -> Dense head, all parameters in one flat buffer.

    forward(x, *, lengths=None, state=None, truncate=0, need_grad=True) -> (outputs, state)
        x (T, B) int token ids or (T, B, I) floats; lengths (B,) ints in 0..T (None: all
        T); outputs (T, B, K) for "sequence" (zero at padded steps) or (B, K) for pooled
        models; state as the layer's (h_n, or (h_n, c_n)), each (L*D, B, H). truncate=K:
        truncated BPTT of a pooled model (the gradient of each row flows back through its
        last K valid steps only).
    backward(d_outputs) accumulates every parameter gradient into ``grads`` and returns
    the gradient on feature input x (None for tokens).
    """

    def __init__(self, spec: dict, cell="lstm", hidden_size=128, num_layers=1, dropout=0.0,
                 bidirectional=False, seed=0, num_threads=None, dtype=np.float32, init="uniform",
                 forget_bias=None, recurrent_dropout=0.0, zoneout=0.0):
        self.spec = check_spec(spec)
        self.dtype = float_dtype(dtype)
        self.output = spec["output"]
        self.tokens = spec["input"] == "tokens"
        embed_seed, rnn_seed, head_seed, dropout_seed, wide_seed = seed_sequences(seed, 5)
        self.embedding = None
        if self.tokens:
            self.embedding = Embedding(spec["vocab_size"], spec["embed_dim"], self.dtype,
                                       np.random.default_rng(embed_seed))
            input_size = spec["embed_dim"]
        else:
            input_size = spec["input_size"]
        # Inter-layer dropout belongs to the stack (torch's semantics); with one layer it
        # would do nothing, so only the dropout before the head remains.
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers=num_layers,
                             dropout=dropout if num_layers > 1 else 0.0,
                             bidirectional=bidirectional, dtype=self.dtype,
                             seed=int(rnn_seed.generate_state(1)[0]), init=init,
                             forget_bias=forget_bias, num_threads=num_threads,
                             recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        self.num_directions = 2 if bidirectional else 1
        features = self.num_directions * self.rnn.hidden_size
        self.dropout = Dropout(dropout, np.random.default_rng(dropout_seed))
        self.head = Dense(features, spec["output_size"], self.dtype,
                          np.random.default_rng(head_seed))
        # Optional wide part (spec "wide_bigrams": hashed bigram buckets, 0 = unigrams only):
        # a sparse linear model over the tokens' n-grams added to the head's logits.
        self.wide = None
        if "wide_bigrams" in spec:
            self.wide = Wide(spec["vocab_size"], int(spec["wide_bigrams"]),
                             spec["output_size"], self.dtype,
                             dropout=float(spec.get("wide_dropout", 0.0)),
                             rng=np.random.default_rng(wide_seed),
                             fixed=bool(spec.get("wide_fixed", False)),
                             folds=int(spec.get("wide_folds", 0)),
                             scale=bool(spec.get("wide_scale", False)))
        self.training = True

        # The one flat buffer: names -> (offset, shape), in module order.
        self.modules = {"embedding": self.embedding, "rnn": self.rnn, "head": self.head,
                        "wide": self.wide}
        self.modules = {k: m for k, m in self.modules.items() if m is not None}
        self.bind_flat()
        self._cache = None

    @property
    def num_threads(self):
        return self.rnn.num_threads

    @property
    def num_trained(self):
        """Leading entries of ``params`` the optimizer updates: a fixed wide part (spec
        "wide_fixed": its weights set before training, e.g. by a task's initial_params)
        is the last module of the buffer and is left out (its learned scale, which
        precedes its weights, is trained)."""
        if self.wide is not None and self.wide.fixed:
            return self.layout["wide.weight"][0]
        return self.params.size

    @property
    def precision(self):
        """The recurrent stack's precision (Recurrent.precision): "fp32", "int8"
        (inference) or "bf16"; embedding and head stay float32."""
        return self.rnn.precision

    @precision.setter
    def precision(self, value):
        self.rnn.precision = value

    @num_threads.setter
    def num_threads(self, value):
        self.rnn.num_threads = value

    def reseed_dropout(self, seed_words, rows=None):
        """Make the next dropout masks a function of ``seed_words`` (e.g. (seed, step)), so
        a run resumed at step s draws the same masks as one that never stopped.
        rows=(start, stop, total): the next batch is those rows of a batch of ``total``
        (a data-parallel rank's share); the masks are those of the whole batch, cut."""
        seq = np.random.SeedSequence(list(seed_words))
        own, stack, wide = seq.spawn(3)
        self.dropout.rng = np.random.default_rng(own)
        self.dropout.rows = rows
        if self.wide is not None:
            self.wide.rng, self.wide.rows = np.random.default_rng(wide), rows
        self.rnn.reseed_dropout(stack, rows)

    def runner(self):
        return Runner(self)

    # -- forward / backward ------------------------------------------------------------
    def _embed(self, x, need_grad=True):
        """x -> the layer's input h_in (T, B, E or I)."""
        x = as_array(x, "x")  # once: the layer takes the array as it is
        if self.tokens:
            if x.ndim != 2:
                raise ValueError(f"x: expected token ids of shape (T, B), got shape {x.shape}")
            return self.embedding.forward(x, need_grad)  # (T, B, E)
        if x.ndim != 3:
            raise ValueError(f"x: expected shape (T, B, {self.rnn.input_size}), got shape "
                             f"{x.shape}")
        return x

    def forward(self, x, *, lengths=None, state=None, truncate=0, need_grad=True):
        """x -> (outputs, state); see the class docstring.

        need_grad=False (evaluation, prediction): nothing is kept for backward, so the
        recurrent cells may skip their caches; truncate is then irrelevant and ignored.

        truncate=K (pooled unidirectional models; the trainer's --tbptt): the same outputs
        and state, but backward() differentiates only each row's last min(K, len_b) valid
        steps (recurrent/truncation.py).

        Inputs are checked and the thread count resolved once here (Recurrent.prepare);
        the whole call runs with BLAS single-threaded.
        """
        if truncate and need_grad:
            self._check_truncation(truncate)
        with single_threaded_blas():
            h_in = self._embed(x, need_grad)  # (T, B, E or I)
            # the embedding's output is this model's own array: no copy to keep for backward
            h_in, states, lengths, threads = self.rnn.prepare(
                h_in, state=state, lengths=lengths, need_grad=need_grad and not self.tokens)
            self._cache = None
            if not need_grad:
                y, final = self._forward_full(h_in, states, lengths, threads, need_grad=False)
            elif truncate:
                y, final = self._forward_truncated(h_in, states, lengths, threads, truncate)
            else:
                y, final = self._forward_full(h_in, states, lengths, threads)
            if self.wide is not None:
                y += self.wide.forward(np.asarray(x), lengths)  # (B, K)
            return y, final

    __call__ = forward

    def _head(self, out, lengths, prefix=None):
        """Layer outputs (T, B, D*H) -> (outputs, cache) through pooling, dropout, head."""
        T, B, DH = out.shape
        if self.output == "sequence":
            feats = self.dropout.forward(out, batch_axis=1).reshape(T * B, DH)  # (N, D*H)
            y = self.head.forward(feats).reshape(T, B, -1)  # (T, B, K)
            mask = valid_mask(lengths, T, B)[:, :, None]  # (T, B, 1)
            y *= mask  # padded steps emit zeros, as the layer's outputs do
            return y, (mask, None)
        pooled, pool_cache = pool_forward(out, lengths, self.output, self.num_directions,
                                          prefix=prefix)
        y = self.head.forward(self.dropout.forward(pooled))  # (B, K)
        return y, (None, pool_cache)

    def _forward_full(self, h_in, states, lengths, threads, need_grad=True):
        out, finals = self.rnn.run(h_in, states, lengths, need_grad, threads)  # (T, B, D*H)
        y, head_cache = self._head(out, lengths)
        if need_grad:
            self._cache = (out.shape, head_cache, None, threads)
        return y, pack_state(finals)

    def _check_truncation(self, K):
        positive_int(K, "truncate")
        if self.output == "sequence":
            raise ValueError("truncate: per-step outputs are truncated by cutting the "
                             "sequence into windows (the trainer's --tbptt); truncate is "
                             "for pooled outputs")
        if self.num_directions == 2:
            raise ValueError("truncate: a bidirectional model needs the whole sequence "
                             "(its reverse direction starts at the end)")

    def _forward_truncated(self, h_in, states, lengths, threads, K):
        prefix, suffix, index = truncation_plan(lengths, int(K))
        if not prefix.any():  # every row fits in K steps: plain BPTT
            return self._forward_full(h_in, states, lengths, threads)
        summary, start = run_prefix(self.rnn, h_in, states, prefix, threads)
        # Pass 2, differentiated: the last s_b steps of each row, from the prefix state.
        x_last = np.ascontiguousarray(gather_suffix(h_in, index))  # (S, B, E or I)
        out, finals = self.rnn.run(x_last, start, suffix, True, threads)  # (S, B, H)
        y, head_cache = self._head(out, suffix, prefix=summary)
        self._cache = (out.shape, head_cache, (index, suffix, h_in.shape[0]), threads)
        return y, pack_state(finals)

    def backward(self, d_outputs):
        """d_outputs like the outputs of the last forward -> gradients added into ``grads``,
        with the thread count that forward resolved. Returns the gradient on the feature
        input x (T, B, I) (zero at steps a truncated pass did not differentiate), None
        for token input."""
        if self._cache is None:
            raise ValueError(NO_FORWARD)
        self.rnn.check_backward()  # before any gradient is added
        out_shape, (mask, pool_cache), truncated, threads = self._cache
        T, B, DH = out_shape
        # Checked before use: numpy would broadcast a (B, K) gradient of a sequence model
        # over the T steps and differentiate that, silently.
        K = self.head.out_features
        expected = (T, B, K) if self.output == "sequence" else (B, K)
        d_outputs = gradient_as(d_outputs, expected, self.dtype)
        self._cache = None
        with single_threaded_blas():
            if self.wide is not None:
                self.wide.backward(d_outputs)
            if self.output == "sequence":
                d_feats = self.head.backward((d_outputs * mask).reshape(T * B, -1))  # (N, D*H)
                d_out = self.dropout.backward(d_feats.reshape(T, B, DH))
            else:
                d_pooled = self.dropout.backward(self.head.backward(d_outputs))  # (B, D*H)
                d_out = pool_backward(d_pooled, pool_cache, self.num_directions)
            no_state_grads = (None,) * len(self.rnn.state_names)
            dx, _ = self.rnn.run_backward(np.ascontiguousarray(d_out), no_state_grads,
                                          threads)  # (T or S, B, E or I)
            if truncated is not None:
                index, suffix, T_full = truncated
                dx = scatter_suffix(dx, index, suffix, T_full)  # (T, B, E or I)
            if not self.tokens:
                return dx
            self.embedding.backward(dx)
            return None

    def step(self, x_t, state=None):
        """One time step for streaming: x_t (B,) token ids or (B, I) -> ((B, K), state).
        Defined for "sequence" and "last" outputs of a unidirectional model."""
        if self.output in ("mean", "max"):
            raise ValueError(f"step: a model pooling by {self.output} needs the whole "
                             f"sequence; use forward()")
        if self.wide is not None:
            raise ValueError("step: a model with a wide part reads the whole sequence's "
                             "n-grams; use forward()")
        if self.tokens and np.ndim(x_t) != 1:
            raise ValueError(f"x_t: expected token ids of shape (B,), got shape "
                             f"{np.shape(x_t)}")
        with single_threaded_blas():
            h_in = (self._embed(np.asarray(x_t)[None], need_grad=False)[0] if self.tokens
                    else x_t)  # (B, E|I)
            h, new_state = self.rnn.step(h_in, state=state)  # (B, H)
            return self.head.forward(self.dropout.forward(h)), new_state
