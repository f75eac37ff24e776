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

Backward accumulates (+=) into the gradient views; ``zero_grad()`` clears the whole buffer
once per step. Training-mode forward caches what backward needs; eval mode turns dropout
off. ``runner()`` gives tasks the protocols.Runner view (eval mode, numpy in and out).
"""
from __future__ import annotations

import numbers

import numpy as np

INPUT_KINDS = ("tokens", "features")
OUTPUT_KINDS = ("sequence", "last", "mean", "max")


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class _Module:
    """Own storage until ``bind`` moves it into caller-owned views (values copied over)."""

    def __init__(self, shapes: dict, dtype):
        self.dtype = np.dtype(dtype)
        self._shapes = dict(shapes)
        self._params = {n: np.zeros(s, self.dtype) for n, s in shapes.items()}
        self._grads = {n: np.zeros(s, self.dtype) for n, s in shapes.items()}
        self.training = True

    def param_shapes(self):
        return dict(self._shapes)

    def params(self):
        return dict(self._params)

    def grads(self):
        return dict(self._grads)

    def zero_grad(self):
        for g in self._grads.values():
            g.fill(0)

    def state_dict(self):
        return {n: p.copy() for n, p in self._params.items()}

    def load_state_dict(self, state):
        for name, shape in self._shapes.items():
            if name not in state or np.shape(state[name]) != shape:
                raise ValueError(f"state_dict: expected {name} with shape {shape}, got "
                                 f"{np.shape(state[name]) if name in state else 'nothing'}")
        for name in self._shapes:
            self._params[name][...] = state[name]

    def bind(self, params, grads):
        for name in self._shapes:
            for arrays, what in ((params, "params"), (grads, "grads")):
                a = arrays.get(name)
                if a is None or a.shape != self._shapes[name] or a.dtype != self.dtype:
                    raise ValueError(f"bind {what}: {name} must be a {self.dtype} array of "
                                     f"shape {self._shapes[name]}")
            params[name][...] = self._params[name]
            grads[name][...] = self._grads[name]
        self._params = {n: params[n] for n in self._shapes}
        self._grads = {n: grads[n] for n in self._shapes}

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)


class Embedding(_Module):
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


class Dense(_Module):
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


def pool_forward(out, lengths, mode, num_directions):
    """out (T, B, D*H) -> (pooled (B, D*H), cache) over each row's valid steps.

    "last": the forward direction's output at the row's last valid step, and for a
    bidirectional layer the reverse direction's output at step 0 (where the reverse pass
    ends): exactly h_n of the top layer, as torch's. "mean" / "max": over valid steps.
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
        pooled = np.where(mask[:, :, None], out, 0).sum(axis=0) / counts[:, None]
        return pooled.astype(out.dtype, copy=False), (mode, out.shape, (mask, counts))
    if mode == "max":
        masked = np.where(mask[:, :, None], out, -np.inf)  # (T, B, DH)
        arg = masked.argmax(axis=0)  # (B, DH) time index of each maximum
        pooled = np.take_along_axis(out, arg[None], axis=0)[0]
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
        np.put_along_axis(d_out, saved[None], d_pooled[None], axis=0)
    return d_out


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


def _strip(named: dict, prefix: str) -> dict:
    """{"rnn.weight_ih_l0": a} -> {"weight_ih_l0": a} for the names under ``prefix``."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in named.items() if k.startswith(prefix + ".")}


class SequenceModel:
    """Embedding (for token input) -> Recurrent stack -> pooling (for pooled output) ->
    dropout -> Dense head, all parameters in one flat buffer.

    forward(x, lengths=None, state=None) -> (outputs, state)
        x (T, B) int token ids or (T, B, I) floats; outputs (T, B, K) for "sequence"
        (zero at padded steps) or (B, K) for pooled models; state as the layer's
        (h_n, or (h_n, c_n)), each (L*D, B, H).
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
        problems = [name for name, (_, shape) in self.layout.items()
                    if name not in state or np.shape(state[name]) != shape]
        extra = [name for name in state if name not in self.layout]
        if problems or extra:
            raise ValueError("state_dict: " + "; ".join(
                [f"{n}: expected shape {self.layout[n][1]}, got "
                 f"{np.shape(state[n]) if n in state else 'nothing'}" for n in problems]
                + [f"unexpected {n}" for n in extra]))
        for name, view in self.named_params.items():
            view[...] = state[name]

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

    def forward(self, x, lengths=None, state=None):
        h_in = self._embed(x)  # (T, B, E or I)
        out, new_state = self.rnn.forward(h_in, state, lengths)  # (T, B, D*H)
        T, B, DH = out.shape
        if self.output == "sequence":
            feats = self.dropout.forward(out.reshape(T * B, DH))  # (N, D*H)
            y = self.head.forward(feats).reshape(T, B, -1)  # (T, B, K)
            mask = None
            if lengths is not None:
                mask = valid_mask(lengths, T, B)[:, :, None]
                y *= mask  # padded steps emit zeros, as the layer's outputs do
            self._cache = (out.shape, mask, None)
            return y, new_state
        pooled, pool_cache = pool_forward(out, lengths, self.output, self.num_directions)
        y = self.head.forward(self.dropout.forward(pooled))  # (B, K)
        self._cache = (out.shape, None, pool_cache)
        return y, new_state

    __call__ = forward

    def backward(self, d_outputs):
        """d_outputs like the outputs of the last forward -> gradients added into ``grads``."""
        if self._cache is None:
            raise ValueError("backward: no forward pass to differentiate; call forward first")
        out_shape, mask, pool_cache = self._cache
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
        dx, _ = self.rnn.backward(np.ascontiguousarray(d_out))  # (T, B, E or I)
        if self.tokens:
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
    training/eval mode is restored after each call."""

    def __init__(self, model: SequenceModel):
        self.model = model
        self.spec = model.spec

    def _in_eval(self, fn, *args):
        was_training = self.model.training
        self.model.eval()
        try:
            return fn(*args)
        finally:
            self.model.train(was_training)

    def forward(self, x, lengths=None, state=None):
        return self._in_eval(self.model.forward, x, lengths, state)

    def step(self, x_t, state=None):
        return self._in_eval(self.model.step, x_t, state)
