"""The model around the recurrent stack, with every parameter in ONE flat buffer.

    tokens (T, B) -> Embedding -> (T, B, E)  \
    features (T, B, I) -----------------------+-> Recurrent (any cell) -> (T, B, D*H)
      -> pool over valid steps (last | mean | max) -> (B, D*H)   [pooled outputs]
      -> dropout -> Dense head -> (T, B, K) or (B, K)

Dimension legend: T time steps, B batch rows, I input features, E embedding size,
V vocabulary size, H hidden units, D directions (1 or 2), K output features, N = T*B rows.

Flat buffer: SequenceModel allocates one contiguous array ``params`` (P,) for all
parameters and one ``grads`` (P,) mirroring it, and binds every module to named views of
them ("embedding.weight", "rnn.weight_ih_l0", ..., "head.weight", "head.bias"). Clipping,
the optimizer and checkpoints each touch one array; the views keep PyTorch's names.
Embedding, Dense and the layers share their parameter surface (bind, state_dict, grads,
...) through recurrent.params.ParamModule.

Backward accumulates (+=) into the gradient views; ``zero_grad()`` clears the whole buffer
once per step. Truncated BPTT of pooled outputs (``forward(..., truncate=K)``): the
outputs are those of the whole sequence, the gradient flows back through each row's last
K valid steps; the earlier steps enter as constants (their final state, and for
mean/max pooling their outputs' sum/maximum). Training-mode forward caches what backward needs; eval mode turns dropout
off. ``runner()`` gives tasks the protocols.Runner view (eval mode, numpy in and out).
"""
from __future__ import annotations

import numbers

import numpy as np

from .params import ParamModule, checked_state_dict
from .threads import single_threaded_blas

INPUT_KINDS = ("tokens", "features")
OUTPUT_KINDS = ("sequence", "last", "mean", "max")


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class Embedding(ParamModule):
    """Token ids (any shape S) -> vectors (S + (E,)). Initialised N(0, 1) as torch's."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, rng=None):
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        super().__init__({"weight": (self.num_embeddings, self.embedding_dim)}, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        self._params["weight"][...] = rng.standard_normal(self._shapes["weight"])
        self._ids = None

    def check_ids(self, ids):
        a = np.asarray(ids)
        if a.dtype.kind not in "iu":
            raise ValueError(f"token ids: expected an integer array, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.num_embeddings):
            raise ValueError(f"token ids: expected values in 0..{self.num_embeddings - 1}, "
                             f"got values from {a.min()} to {a.max()}")
        return a.astype(np.intp, copy=False)

    def forward(self, ids):
        ids = self.check_ids(ids)
        self._ids = ids
        return self._params["weight"][ids]  # S + (E,), a fresh contiguous array

    def backward(self, d_out):
        """d_out S + (E,): rows add into the gradient of the ids they came from (sparse).

        Sorted segment sums (argsort + add.reduceat) instead of np.add.at: the same sums,
        about 5x faster for a char-lm batch (2048 ids, E = 64)."""
        flat = self._ids.reshape(-1)  # (N,)
        if flat.size == 0:
            return
        order = np.argsort(flat, kind="stable")
        sorted_ids = flat[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # (U,)
        rows = np.reshape(d_out, (-1, self.embedding_dim))[order]  # (N, E)
        self._grads["weight"][sorted_ids[starts]] += np.add.reduceat(rows, starts, axis=0)


class Dense(ParamModule):
    """x (N, F) -> x @ weight.T + bias (N, K); torch.nn.Linear's init U(-1/sqrt(F), 1/sqrt(F))."""

    def __init__(self, in_features, out_features, dtype=np.float32, rng=None):
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        super().__init__({"weight": (self.out_features, self.in_features),
                          "bias": (self.out_features,)}, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / np.sqrt(self.in_features)
        for name, shape in self._shapes.items():
            self._params[name][...] = rng.uniform(-bound, bound, size=shape)
        self._x = None

    def forward(self, x):
        self._x = x  # (N, F)
        return x @ self._params["weight"].T + self._params["bias"]  # (N, K)

    def backward(self, d_y):
        """d_y (N, K) -> dx (N, F); dW += d_y^T x, db += sum_n d_y."""
        self._grads["weight"] += d_y.T @ self._x
        self._grads["bias"] += d_y.sum(axis=0)
        return d_y @ self._params["weight"]


class Dropout:
    """Inverted dropout: in training, zero each element with probability p and scale the rest
    by 1/(1-p); identity in eval mode. ``rng`` is set by the caller (the trainer re-seeds it
    every step so a resumed run draws the same masks)."""

    def __init__(self, p=0.0, rng=None):
        if not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.training = True
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        keep = 1.0 - self.p
        self._mask = (self.rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
        return x * self._mask

    def backward(self, d_y):
        return d_y if self._mask is None else d_y * self._mask


def valid_mask(lengths, T, B):
    """(T, B) bool: step t of row b is valid (t < lengths[b]); all True for lengths None."""
    if lengths is None:
        return np.ones((T, B), bool)
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def pool_forward(out, lengths, mode, num_directions, prefix=None):
    """out (T, B, D*H) -> (pooled (B, D*H), cache) over each row's valid steps.

    "last": the forward direction's output at the row's last valid step, and for a
    bidirectional layer the reverse direction's output at step 0 (where the reverse pass
    ends): exactly h_n of the top layer, as torch's. "mean" / "max": over valid steps.

    ``prefix`` (truncated BPTT, D = 1 only): a PrefixSummary of steps that came before
    ``out`` and take part in the pool as constants (no gradient reaches them): "mean" adds
    their sum and count, "max" compares with their maximum (on a tie the earlier, prefix
    step wins, as argmax over the whole sequence would pick it), "last" ignores them.
    """
    T, B, DH = out.shape
    H = DH // num_directions
    rows = np.arange(B)
    if mode == "last":
        last = (np.full(B, T - 1) if lengths is None else np.asarray(lengths) - 1)  # (B,)
        pooled = np.empty((B, DH), out.dtype)
        pooled[:, :H] = out[last, rows, :H]
        if num_directions == 2:
            pooled[:, H:] = out[0, :, H:]
        return pooled, (mode, out.shape, last)
    mask = valid_mask(lengths, T, B)  # (T, B)
    if mode == "mean":
        counts = mask.sum(axis=0).astype(out.dtype)  # (B,)
        total = np.where(mask[:, :, None], out, 0).sum(axis=0)  # (B, DH)
        if prefix is not None:
            counts = counts + prefix.steps.astype(out.dtype)
            total = total + prefix.total
        pooled = total / counts[:, None]
        return pooled.astype(out.dtype, copy=False), (mode, out.shape, (mask, counts))
    if mode == "max":
        masked = np.where(mask[:, :, None], out, -np.inf)  # (T, B, DH)
        arg = masked.argmax(axis=0)  # (B, DH) time index of each maximum
        pooled = np.take_along_axis(out, arg[None], axis=0)[0]
        if prefix is not None:
            earlier = prefix.maximum >= pooled  # (B, DH) the constant prefix step wins
            pooled = np.where(earlier, prefix.maximum, pooled).astype(out.dtype, copy=False)
            arg = np.where(earlier, -1, arg)  # -1: no gradient
        return pooled, (mode, out.shape, arg)
    raise ValueError(f"pooling: expected one of last, mean, max, got {mode!r}")


def pool_backward(d_pooled, cache, num_directions):
    """d_pooled (B, D*H) -> d_out (T, B, D*H) (zero except where the pool read from)."""
    mode, shape, saved = cache
    T, B, DH = shape
    H = DH // num_directions
    d_out = np.zeros(shape, d_pooled.dtype)
    rows = np.arange(B)
    if mode == "last":
        d_out[saved, rows, :H] = d_pooled[:, :H]
        if num_directions == 2:
            d_out[0, :, H:] += d_pooled[:, H:]
    elif mode == "mean":
        mask, counts = saved
        d_out[...] = mask[:, :, None] * (d_pooled / counts[:, None])[None]
    else:
        from_prefix = saved < 0  # maxima taken from a constant prefix: no gradient
        np.put_along_axis(d_out, np.maximum(saved, 0)[None],
                          np.where(from_prefix, 0, d_pooled)[None], axis=0)
    return d_out


class PrefixSummary:
    """What pooling needs from the steps of a truncated-BPTT prefix, all constants:
    per row the number of prefix steps (B,), the sum (B, H) and the maximum (B, H) of
    their outputs (0 and -inf for a row without prefix)."""

    def __init__(self, out, steps):
        """out (P, B, H) outputs of the prefix pass; steps (B,) valid prefix steps per row."""
        mask = valid_mask(steps, out.shape[0], out.shape[1])[:, :, None]  # (P, B, 1)
        self.steps = np.asarray(steps)
        self.total = np.where(mask, out, 0).sum(axis=0)  # (B, H)
        self.maximum = np.where(mask, out, -np.inf).max(axis=0).astype(out.dtype)  # (B, H)


def truncation_plan(lengths, T, B, K):
    """Which steps of each row a K-step truncated BPTT pass differentiates.

    Row b (length len_b) gets a constant prefix of p_b = len_b - min(K, len_b) steps and a
    differentiated suffix of s_b = min(K, len_b) steps. Returns (prefix (B,), suffix (B,),
    index (S, B)) with S = max s_b and index[j, b] = p_b + j: the time step that suffix
    step j of row b gathers. It never leaves 0..T-1 (s_b = K ends at len_b - 1; otherwise
    p_b = 0 and j < S <= T) and past s_b it points at the row's padding, as the layer's
    reversal gather does.
    """
    lengths = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    suffix = np.minimum(lengths, K)  # (B,)
    prefix = lengths - suffix  # (B,)
    index = prefix[None, :] + np.arange(int(suffix.max()))[:, None]  # (S, B)
    return prefix, suffix, index


def check_spec(spec: dict) -> dict:
    """A task's model_spec, checked: ValueError naming the bad key."""
    if not isinstance(spec, dict):
        raise ValueError(f"model_spec: expected a dict, got {type(spec).__name__}")
    kind = spec.get("input")
    if kind not in INPUT_KINDS:
        raise ValueError(f"model_spec input: expected one of {', '.join(INPUT_KINDS)}, "
                         f"got {kind!r}")
    if kind == "tokens":
        _positive_int(spec.get("vocab_size"), "model_spec vocab_size")
        _positive_int(spec.get("embed_dim"), "model_spec embed_dim")
    else:
        _positive_int(spec.get("input_size"), "model_spec input_size")
    if spec.get("output") not in OUTPUT_KINDS:
        raise ValueError(f"model_spec output: expected one of {', '.join(OUTPUT_KINDS)}, "
                         f"got {spec.get('output')!r}")
    _positive_int(spec.get("output_size"), "model_spec output_size")
    return spec


def state_arrays(state):
    """A layer's state (h_n, or a tuple like (h_n, c_n)) as a list of arrays; [] for None."""
    if state is None:
        return []
    return [state] if isinstance(state, np.ndarray) else list(state)


def pack_state(arrays):
    """Inverse of state_arrays."""
    if not arrays:
        return None
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def _strip(named: dict, prefix: str) -> dict:
    """{"rnn.weight_ih_l0": a} -> {"weight_ih_l0": a} for the names under ``prefix``."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in named.items() if k.startswith(prefix + ".")}


class SequenceModel:
    """Embedding (for token input) -> Recurrent stack -> pooling (for pooled output) ->
    dropout -> Dense head, all parameters in one flat buffer.

    forward(x, lengths=None, state=None, truncate=0) -> (outputs, state)
        x (T, B) int token ids or (T, B, I) floats; outputs (T, B, K) for "sequence"
        (zero at padded steps) or (B, K) for pooled models; state as the layer's
        (h_n, or (h_n, c_n)), each (L*D, B, H). truncate=K: truncated BPTT of a pooled
        model (the gradient of each row flows back through its last K valid steps only).
    backward(d_outputs) accumulates every parameter gradient into ``grads``.
    """

    def __init__(self, spec: dict, cell="lstm", hidden_size=128, num_layers=1, dropout=0.0,
                 bidirectional=False, seed=0, num_threads=None, dtype=np.float32, init="uniform",
                 forget_bias=None):
        from .layers import Recurrent  # layers import the registry: keep model import light

        self.spec = check_spec(spec)
        self.dtype = np.dtype(dtype)
        self.output = spec["output"]
        self.tokens = spec["input"] == "tokens"
        embed_seed, rnn_seed, head_seed, dropout_seed = np.random.SeedSequence(seed).spawn(4)
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
                             forget_bias=forget_bias, num_threads=num_threads)
        self.num_directions = 2 if bidirectional else 1
        features = self.num_directions * self.rnn.hidden_size
        self.dropout = Dropout(dropout, np.random.default_rng(dropout_seed))
        self.head = Dense(features, spec["output_size"], self.dtype,
                          np.random.default_rng(head_seed))
        self.training = True

        # The one flat buffer: names -> (offset, shape), in module order.
        self.modules = {"embedding": self.embedding, "rnn": self.rnn, "head": self.head}
        self.modules = {k: m for k, m in self.modules.items() if m is not None}
        self.layout = {}
        offset = 0
        for prefix, module in self.modules.items():
            for name, shape in module.param_shapes().items():
                size = int(np.prod(shape))
                self.layout[f"{prefix}.{name}"] = (offset, tuple(shape))
                offset += size
        self.params = np.zeros(offset, self.dtype)  # (P,)
        self.grads = np.zeros(offset, self.dtype)  # (P,)
        self.named_params = self._views(self.params)
        self.named_grads = self._views(self.grads)
        for prefix, module in self.modules.items():
            module.bind(_strip(self.named_params, prefix), _strip(self.named_grads, prefix))
        self._cache = None

    def _views(self, flat):
        return {name: flat[o:o + int(np.prod(s))].reshape(s)
                for name, (o, s) in self.layout.items()}

    # -- module surface -------------------------------------------------------------------
    @property
    def num_params(self):
        return self.params.size

    def param_shapes(self):
        return {name: shape for name, (_, shape) in self.layout.items()}

    def state_dict(self):
        return {name: v.copy() for name, v in self.named_params.items()}

    def load_state_dict(self, state):
        """Copy every parameter in from {name: array} (names as in ``layout``)."""
        for name, value in checked_state_dict(state, self.param_shapes()).items():
            self.named_params[name][...] = value

    def zero_grad(self):
        self.grads.fill(0)

    def train(self, mode=True):
        self.training = bool(mode)
        for module in self.modules.values():
            module.train(mode)
        self.dropout.training = self.training
        return self

    def eval(self):
        return self.train(False)

    @property
    def num_threads(self):
        return self.rnn.num_threads

    @num_threads.setter
    def num_threads(self, value):
        self.rnn.num_threads = value

    def reseed_dropout(self, seed_words):
        """Make the next dropout masks a function of ``seed_words`` (e.g. (seed, step)), so
        a run resumed at step s draws the same masks as one that never stopped."""
        seq = np.random.SeedSequence(list(seed_words))
        own, stack = seq.spawn(2)
        self.dropout.rng = np.random.default_rng(own)
        self.rnn.reseed_dropout(stack)

    # -- forward / backward ------------------------------------------------------------
    def _embed(self, x):
        if self.tokens:
            x = np.asarray(x)
            if x.ndim != 2:
                raise ValueError(f"x: expected token ids of shape (T, B), got shape {x.shape}")
            return self.embedding.forward(x)  # (T, B, E)
        return x

    def forward(self, x, lengths=None, state=None, truncate=0, need_grad=True):
        """x -> (outputs, state); see the class docstring.

        need_grad=False (evaluation, prediction): nothing is kept for backward, so the
        recurrent cells may skip their caches; truncate is then irrelevant and ignored.

        truncate=K (pooled unidirectional models; the trainer's --tbptt): the same outputs
        and state, but backward() differentiates only each row's last min(K, len_b) valid
        steps. A first pass runs the earlier steps and hands on its state (and, for
        "mean"/"max", its outputs' sum/maximum) as constants; a second pass runs the last
        steps, gathered per row (truncation_plan), from that state.
        """
        h_in = self._embed(x)  # (T, B, E or I)
        if not need_grad:
            outputs, new_state = self._forward_full(h_in, lengths, state, need_grad=False)
            self._cache = None
            return outputs, new_state
        if truncate:
            return self._forward_truncated(h_in, lengths, state, truncate)
        return self._forward_full(h_in, lengths, state)

    __call__ = forward

    def _forward_full(self, h_in, lengths, state, need_grad=True):
        out, new_state = self.rnn.forward(h_in, state=state, lengths=lengths,
                                          need_grad=need_grad)  # (T, B, D*H)
        T, B, DH = out.shape
        if self.output == "sequence":
            feats = self.dropout.forward(out.reshape(T * B, DH))  # (N, D*H)
            y = self.head.forward(feats).reshape(T, B, -1)  # (T, B, K)
            mask = None
            if lengths is not None:
                mask = valid_mask(lengths, T, B)[:, :, None]
                y *= mask  # padded steps emit zeros, as the layer's outputs do
            self._cache = (out.shape, mask, None, None)
            return y, new_state
        pooled, pool_cache = pool_forward(out, lengths, self.output, self.num_directions)
        y = self.head.forward(self.dropout.forward(pooled))  # (B, K)
        self._cache = (out.shape, None, pool_cache, None)
        return y, new_state

    def _forward_truncated(self, h_in, lengths, state, K):
        K = _positive_int(K, "truncate")
        if self.output == "sequence":
            raise ValueError("truncate: per-step outputs are truncated by cutting the "
                             "sequence into windows (the trainer's --tbptt); truncate is "
                             "for pooled outputs")
        if self.num_directions == 2:
            raise ValueError("truncate: a bidirectional model needs the whole sequence "
                             "(its reverse direction starts at the end)")
        h_in = np.asarray(h_in)
        if h_in.ndim != 3:
            raise ValueError(f"x: expected shape (T, B, I), got shape {h_in.shape}")
        T, B = h_in.shape[:2]
        if lengths is not None:  # checked before the plan indexes with them
            lengths = np.asarray(lengths)
            if lengths.dtype.kind not in "iu" or lengths.shape != (B,) or \
                    lengths.min() < 1 or lengths.max() > T:
                raise ValueError(f"lengths: expected {B} integers in 1..{T} (T), got "
                                 f"{lengths.dtype} of shape {lengths.shape}")
        prefix, suffix, index = truncation_plan(lengths, T, B, K)
        P = int(prefix.max())
        if P == 0:  # every row fits in K steps: plain BPTT
            return self._forward_full(h_in, lengths, state)
        # Pass 1, constant: each row's first p_b steps (rows without prefix run one step
        # that is thrown away: the layer needs lengths >= 1).
        pre_out, pre_state = self.rnn.forward(h_in[:P], state=state,
                                              lengths=np.maximum(prefix, 1))
        summary = PrefixSummary(pre_out, prefix)
        no_prefix = prefix == 0  # (B,) these rows start pass 2 from the given state
        given = [np.asarray(g) for g in state_arrays(state)]
        starts = []
        for i, s in enumerate(state_arrays(pre_state)):
            s = np.array(s, copy=True)  # (L, B, H)
            s[:, no_prefix] = given[i][:, no_prefix] if given else 0
            starts.append(s)
        # Pass 2, differentiated: the last s_b steps of each row, from the prefix state.
        rows = np.arange(B)[None, :]
        x_last = h_in[index, rows]  # (S, B, E or I)
        out, new_state = self.rnn.forward(x_last, state=pack_state(starts),
                                          lengths=suffix)  # (S, B, H)
        pooled, pool_cache = pool_forward(out, suffix, self.output, 1, prefix=summary)
        y = self.head.forward(self.dropout.forward(pooled))  # (B, K)
        self._cache = (out.shape, None, pool_cache, (index, suffix, T))
        return y, new_state

    def backward(self, d_outputs):
        """d_outputs like the outputs of the last forward -> gradients added into ``grads``."""
        if self._cache is None:
            raise ValueError("backward: no forward pass to differentiate; call forward "
                             "first (with need_grad=True)")
        out_shape, mask, pool_cache, gathered = self._cache
        T, B, DH = out_shape
        d_outputs = np.asarray(d_outputs, self.dtype)
        if self.output == "sequence":
            if mask is not None:
                d_outputs = d_outputs * mask
            d_feats = self.head.backward(d_outputs.reshape(T * B, -1))  # (N, D*H)
            d_out = self.dropout.backward(d_feats).reshape(T, B, DH)
        else:
            d_pooled = self.dropout.backward(self.head.backward(d_outputs))  # (B, D*H)
            d_out = pool_backward(d_pooled, pool_cache, self.num_directions)
        dx, _ = self.rnn.backward(np.ascontiguousarray(d_out))  # (T or S, B, E or I)
        if not self.tokens:
            return
        if gathered is not None:
            # x_last = h_in[index, rows]: scatter back; prefix steps get no gradient
            index, suffix, T_full = gathered
            d_in = np.zeros((T_full,) + dx.shape[1:], dx.dtype)  # (T, B, E)
            d_in[index, np.arange(B)[None, :]] = dx * valid_mask(suffix, T, B)[:, :, None]
            dx = d_in
        self.embedding.backward(dx)

    def step(self, x_t, state=None):
        """One time step for streaming: x_t (B,) token ids or (B, I) -> ((B, K), state).
        Defined for "sequence" and "last" outputs of a unidirectional model."""
        if self.output in ("mean", "max"):
            raise ValueError(f"step: a model pooling by {self.output} needs the whole "
                             f"sequence; use forward()")
        h_in = self._embed(np.asarray(x_t)[None])[0] if self.tokens else x_t  # (B, E or I)
        h, new_state = self.rnn.step(h_in, state)  # (B, H)
        return self.head.forward(self.dropout.forward(h)), new_state

    def runner(self):
        return Runner(self)


class Runner:
    """protocols.Runner for tasks: eval mode (no dropout), numpy in and out. The model's
    training/eval mode is restored after each call. Each call runs with BLAS on one thread:
    the head's numpy GEMMs would otherwise leave OpenBLAS threads spinning against the
    kernels' OpenMP threads (the trainer does the same for the whole run)."""

    def __init__(self, model: SequenceModel):
        self.model = model
        self.spec = model.spec

    def _in_eval(self, fn, *args):
        was_training = self.model.training
        self.model.eval()
        try:
            with single_threaded_blas():
                return fn(*args)
        finally:
            self.model.train(was_training)

    def forward(self, x, lengths=None, state=None):
        return self._in_eval(self.model.forward, x, lengths, state, 0, False)

    def step(self, x_t, state=None):
        return self._in_eval(self.model.step, x_t, state)
