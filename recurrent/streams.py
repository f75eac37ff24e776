"""StreamPool: many live sequences advanced one step at a time, batched.

    pool = recurrent.StreamPool(model_or_run, capacity=1000)
    pool.open("alice"); pool.open("bob")
    ys = pool.step({"alice": x_a, "bob": x_b})        # {id: y_t}
    ys = pool.step_arrays(ids, xs)                    # xs (B,) ids or (B, I) -> (B, K)
    y = pool.read("alice", xs)                        # xs (T,) ids or (T, I) -> (K,)
    saved = pool.state("alice"); pool.close("alice")  # move a stream elsewhere:
    other.restore("alice", saved)

Every stream's recurrent state lives in ONE preallocated slab (S, L, capacity, H) (S state
names, L layers); an id maps to a slab row, taken from a free list on open and given back
on close. A step call gathers the rows of the streams it advances (any number, any order),
runs each layer's cell once on that batch (Recurrent.run_step), and writes the new states
back: the work per call is a few numpy gathers and scatters plus one kernel call per layer,
whatever the number of streams. read() advances one stream by many steps at once: each
layer's cell runs over up to READ_CHUNK steps per kernel call (one input projection for
the chunk, the head after its last step only), which a long text needs: stepping it one
character at a time costs a Python round trip per character.

What y_t is (per advanced stream):
- a Recurrent layer: the top layer's output h_t (H,);
- a SequenceModel with per-step outputs ("sequence") or "last" pooling: the head applied
  to h_t, i.e. the outputs a whole-sequence forward gives at step t;
- "mean" / "max" pooling: the head applied to the mean / maximum of h_1..h_t, kept as a
  running sum and count / running maximum per stream: the model's output for the prefix
  read so far, as if the sequence ended at t;
- a wide part (sentiment's n-gram model): its logits for the prefix's distinct unigrams
  and hashed bigrams, kept per stream as a bit set of the features seen (capacity * F / 8
  bytes, F = vocabulary + bigram buckets) and the running sum of their weights;
- with softmax (the default for a run whose loss is cross_entropy) the outputs become
  class probabilities (float64).
Steps run as in eval mode (no dropout) whatever mode the model is in, which they leave
alone: pools in several threads may share one model, and so may the model's own calls.
Stepping streams in any interleaving gives what a whole-sequence forward of each stream
gives (to float rounding). A bidirectional model is refused: its reverse direction starts
at the end of the sequence.

Dimension legend: B streams advanced in a call, I input features, E embedding size,
H hidden units, L layers, S state names, K outputs, F wide features.
"""
from __future__ import annotations

import os

import numpy as np

from .checks import beyond_any_array, finite_as, positive_int
from .ensemble import EnsembleModel, combine
from .layers import Recurrent
from .modules import softmax
from .threads import MAX_THREADS, resolve_threads, single_threaded_blas
from .wide import bigram_features

_NO_TOKEN = -1  # the previous token of a stream that has read nothing yet
READ_CHUNK = 4096  # steps per kernel call in read(): bounds its (T, 1, H) buffers


def _loaded(model_or_run, softmax_flag):
    """(the model, softmax) from a model, its runner or a run directory."""
    from .runner import Runner
    if isinstance(model_or_run, (str, os.PathLike)):
        from .checkpoint import RunDir
        from .runs import load_model, loss_name
        model, info = load_model(RunDir.open(os.fspath(model_or_run)))
        if softmax_flag is None:
            softmax_flag = loss_name(info) == "cross_entropy"
        model_or_run = model  # an encoder-decoder run is refused by _resolve
    if isinstance(model_or_run, Runner):
        model_or_run = model_or_run.model
    return model_or_run, softmax_flag


def _is_ensemble(model_or_run) -> bool:
    """An EnsembleModel, its runner, or the directory of an ensemble run (only its
    config.json is read)."""
    from .runner import Runner
    if isinstance(model_or_run, (str, os.PathLike)):
        from .checkpoint import RunDir
        from .ensemble import size
        return size(RunDir.open(os.fspath(model_or_run)).info()["config"]) > 1
    if isinstance(model_or_run, Runner):
        model_or_run = model_or_run.model
    return isinstance(model_or_run, EnsembleModel)


def _resolve(model_or_run, softmax_flag):
    """(SequenceModel or None, Recurrent, softmax) from what the user gave."""
    from .model import SequenceModel
    model_or_run, softmax_flag = _loaded(model_or_run, softmax_flag)
    if isinstance(model_or_run, SequenceModel):
        return model_or_run, model_or_run.rnn, bool(softmax_flag)
    if isinstance(model_or_run, Recurrent):
        if softmax_flag:
            raise ValueError("softmax: a bare recurrent layer has no head to apply it to")
        return None, model_or_run, False
    from .seq2seq import Seq2SeqModel
    if isinstance(model_or_run, Seq2SeqModel):
        raise ValueError("model_or_run: a seq2seq (encoder-decoder) model reads its whole "
                         "input before it writes, so a pool cannot step it; stream its "
                         "inputs with recurrent predict RUN --stream")
    raise ValueError(f"model_or_run: expected a SequenceModel, its runner, a Recurrent "
                     f"layer or a run directory, got {type(model_or_run).__name__}")


def _check_state_dict(state) -> None:
    """restore()'s ValueError for a state that is not a dict, as state() returns."""
    if not isinstance(state, dict):
        raise ValueError(f"restore: expected the dict that state() returns, got "
                         f"{type(state).__name__}")


class StreamPool:
    """Up to ``capacity`` open streams of one model, advanced in batched steps; see the
    module docstring. Ids are any hashable values. ``softmax`` (None: True for a run whose
    loss is cross_entropy, else False) turns a model's outputs into probabilities.
    ``num_threads`` (None: the model's setting) bounds the kernel threads of each call.
    ``precision`` (None: the model's, Recurrent.precision) of the steps: "fp32", "int8"
    (recurrent/quant.py: weights quantised once and kept, inputs and states per step) or
    "bf16"."""

    def __new__(cls, *args, **kwargs):
        """StreamPool(ensemble or its run, ...) is an EnsemblePool (recurrent/ensemble.py).
        (Called without arguments when a pool is copied or unpickled.)"""
        target = args[0] if args else kwargs.get("model_or_run")
        if cls is StreamPool and target is not None and _is_ensemble(target):
            return super().__new__(EnsemblePool)
        return super().__new__(cls)

    def __init__(self, model_or_run, capacity, *, softmax=None, num_threads=None,
                 precision=None):
        self.model, self.rnn, self.softmax = _resolve(model_or_run, softmax)
        self.capacity = positive_int(capacity, "capacity")
        rnn = self.rnn
        if rnn.bidirectional:
            raise ValueError("StreamPool: a bidirectional model reads each sequence from its "
                             "end too, so it cannot run one step at a time; stream a "
                             "unidirectional one (recurrent train TASK --unidirectional)")
        self.num_threads = (rnn.num_threads if num_threads is None
                            else positive_int(num_threads, "num_threads", MAX_THREADS))
        self.precision = (rnn.precision if precision is None
                          else rnn.check_precision(precision))
        model = self.model
        self.output = "layer" if model is None else model.output
        self.tokens = model is not None and model.tokens
        self.input_size = rnn.input_size
        self.dtype = rnn.dtype
        H, L, C = rnn.hidden_size, rnn.num_layers, self.capacity
        self.state_names = rnn.state_names
        self.wide = None if model is None else model.wide
        try:
            self._allocate(C, L, H)
        except (MemoryError, ValueError) as e:
            if isinstance(e, ValueError) and not beyond_any_array(e):
                raise
            raise MemoryError(f"StreamPool: capacity {C:,} needs more memory than is "
                              f"available for the states of that many streams ({L:,} "
                              f"layer(s) of {H:,} units each); give a smaller capacity"
                              ) from None
        self._rows = {}                        # id -> slab row
        self._free = list(range(C - 1, -1, -1))  # free rows; pop() takes the lowest

    def _allocate(self, C, L, H):
        """The slab and the per-stream arrays of ``C`` streams, all at their initial values."""
        self._slab = np.zeros((len(self.state_names), L, C, H), self.dtype)  # (S, L, C, H)
        self._extra = {}  # per-stream arrays beyond the recurrent state, (C, ...) each
        if self.output == "mean":
            self._extra["total"] = np.zeros((C, H), self.dtype)
            self._extra["count"] = np.zeros(C, np.int64)
        elif self.output == "max":
            self._extra["maximum"] = np.full((C, H), -np.inf, self.dtype)
        if self.wide is not None:
            features = self.wide.vocab_size + self.wide.bigram_buckets
            self._extra["seen"] = np.zeros((C, (features + 7) // 8), np.uint8)
            self._extra["previous"] = np.full(C, _NO_TOKEN, np.int64)
            self._extra["wide"] = np.zeros((C, self.wide.out_features), np.float64)

    # ---- opening, closing, moving -----------------------------------------------------------
    def __len__(self):
        return len(self._rows)

    def __contains__(self, stream_id):
        return self._is_open(stream_id)

    def ids(self):
        """The open streams' ids, in opening order."""
        return list(self._rows)

    def open(self, stream_id):
        """Start a stream at the model's initial state (zeros; nothing read yet)."""
        try:
            hash(stream_id)
        except TypeError:
            raise ValueError(f"open: a stream id must be hashable (a str, an int, a "
                             f"tuple...), got {type(stream_id).__name__}") from None
        if stream_id in self._rows:
            raise ValueError(f"open: stream {stream_id!r} is already open")
        if not self._free:
            raise ValueError(f"open: the pool is full ({self.capacity} streams open); close "
                             f"one or make a pool with a larger capacity")
        row = self._free.pop()
        self._reset(row)
        self._rows[stream_id] = row

    def close(self, stream_id):
        """End a stream and free its row."""
        self._known(stream_id, "close")
        self._free.append(self._rows.pop(stream_id))

    def _known(self, stream_id, what):
        try:
            return self._rows[stream_id]
        except (KeyError, TypeError):
            raise KeyError(f"{what}: no open stream {stream_id!r}") from None

    def _reset(self, row):
        self._slab[:, :, row] = 0
        for name, a in self._extra.items():
            a[row] = {"maximum": -np.inf, "previous": _NO_TOKEN}.get(name, 0)

    def _state_shapes(self):
        L, H = self.rnn.num_layers, self.rnn.hidden_size
        shapes = {name: ((L, H), self.dtype) for name in self.state_names}
        shapes.update({name: (a.shape[1:], a.dtype) for name, a in self._extra.items()})
        return shapes

    def state(self, stream_id):
        """A copy of the stream's whole state as {name: array}: one (L, H) array per state
        name ("h", and "c" for an LSTM) and the pooling / wide running values, if any.
        restore() on a pool of the same model takes it back."""
        row = self._known(stream_id, "state")
        saved = {name: self._slab[s, :, row].copy() for s, name in enumerate(self.state_names)}
        saved.update({name: np.array(a[row]) for name, a in self._extra.items()})
        return saved

    def restore(self, stream_id, state):
        """Set a stream's state from state(): the stream is opened first if it is not."""
        _check_state_dict(state)
        checked = self._check_state(state)
        if not self._is_open(stream_id):
            self.open(stream_id)  # refuses an unhashable id with one line
        row = self._rows[stream_id]
        for s, name in enumerate(self.state_names):
            self._slab[s, :, row] = checked[name]
        for name, a in self._extra.items():
            a[row] = checked[name]

    def _integer_range(self, name, dtype):
        """(lowest, highest) value of the integer state ``name``."""
        if name == "count":
            return 0, np.iinfo(dtype).max
        if name == "previous":
            return _NO_TOKEN, self.wide.vocab_size - 1
        return np.iinfo(dtype).min, np.iinfo(dtype).max  # "seen": any byte

    def _check_state(self, state):
        """A state() dict checked against this pool -> {name: array of its dtype}."""
        shapes = self._state_shapes()
        if set(state) != set(shapes):
            raise ValueError(f"restore: expected the keys {', '.join(shapes)}, got "
                             f"{', '.join(map(str, state)) or 'none'} (a state of another "
                             f"kind of model?)")
        checked = {}
        for name, (shape, dtype) in shapes.items():
            a = np.asarray(state[name])
            if a.shape != tuple(shape):
                raise ValueError(f"restore: {name} has shape {a.shape}, expected "
                                 f"{tuple(shape)} (a state of another model?)")
            if a.dtype.kind not in "biuf":
                raise ValueError(f"restore: {name} has dtype {a.dtype}, expected real "
                                 f"numbers (a state of another model?)")
            # Checked after the conversion: float64 values beyond float32's range become inf.
            with np.errstate(over="ignore", invalid="ignore"):
                value = a.astype(dtype, copy=False)
            if np.dtype(dtype).kind == "f":
                # a running maximum is -inf before the first step; nothing else may be
                bad = np.isnan(value) | (np.isposinf(value) if name == "maximum"
                                         else np.isinf(value))
                if bad.any():
                    raise ValueError(f"restore: {name} contains NaN or infinity, or values "
                                     f"too large for {np.dtype(dtype)}")
            else:
                # a count, a token id or a bit set: only values a pool holds (a negative
                # count would divide the running sum by zero or less)
                low, high = self._integer_range(name, value.dtype)
                if not (np.array_equal(value, a) and low <= value.min() and value.max() <= high):
                    values = (f">= {low}" if high == np.iinfo(np.int64).max
                              else f"in {low}..{high}")
                    raise ValueError(f"restore: {name} must hold integers {values} (a state "
                                     f"of another model?)")
            checked[name] = value
        return checked

    # ---- stepping ---------------------------------------------------------------------------
    def step(self, inputs):
        """{id: x_t} -> {id: y_t}: one step of each stream named (x_t a token id, or (I,)
        features); see the module docstring for y_t."""
        if not isinstance(inputs, dict):
            raise ValueError(f"step: expected a dict {{id: input}}, got "
                             f"{type(inputs).__name__} (step_arrays takes ids and an array)")
        ids = list(inputs)
        ys = self.step_arrays(ids, list(inputs.values()) if ids else None)
        return dict(zip(ids, ys))

    def step_arrays(self, ids, xs, outputs=True):
        """ids (B distinct open ids), xs (B,) token ids or (B, I) features -> ys (B, K).
        ``outputs`` False: advance the streams only (their states, running pools and wide
        features), without the head, and return None: reading a text up to the step whose
        output is wanted then costs no (B, K) head per step."""
        ids = list(ids)
        B = len(ids)
        if B == 0:
            if not outputs:
                return None
            return np.zeros((0, self._output_size()), np.float64 if self.softmax else self.dtype)
        try:
            rows = np.fromiter(map(self._rows.__getitem__, ids), np.int64, B)
        except (KeyError, TypeError):
            unknown = next(i for i in ids if not self._is_open(i))
            raise KeyError(f"step: no open stream {unknown!r} (open it first)") from None
        if B > 1 and len(set(rows.tolist())) != B:
            raise ValueError("step: an id appears more than once in one call; a call "
                             "advances each stream by one step")
        x = self._check_inputs(xs, B, "step", "stream")
        with single_threaded_blas():
            return self._advance(rows, x[None], outputs)

    def read(self, stream_id, xs, outputs=True):
        """Advance one open stream by T steps, xs (T,) token ids or (T, I) features (T >= 1),
        and return its output after the last step (K,), or None without ``outputs``: what
        T step_arrays calls give (to float rounding), with one kernel call per layer for
        every READ_CHUNK steps."""
        row = self._known(stream_id, "read")
        x = self._check_inputs(xs, None, "read", "step")
        rows = np.array([row], np.int64)
        with single_threaded_blas():
            for start in range(0, len(x), READ_CHUNK):
                chunk = x[start:start + READ_CHUNK, None]                # (T, 1[, I])
                last = start + READ_CHUNK >= len(x)
                y = self._advance(rows, chunk, outputs and last)
        return None if y is None else y[0]

    def _is_open(self, stream_id):
        try:
            return stream_id in self._rows
        except TypeError:
            return False

    def _output_size(self):
        return self.rnn.hidden_size if self.model is None else self.model.head.out_features

    def _check_inputs(self, xs, n, what, per):
        """xs checked as ``n`` inputs (None: any number but none), one per ``per`` (a
        stream or a step): (n,) token ids or (n, I) features of the pool's dtype."""
        try:
            a = np.asarray(xs)
        except ValueError:
            raise ValueError(f"{what}: the inputs have different shapes; give one token id "
                             f"or one row of features per {per}") from None
        label = "T" if n is None else n
        if n is None and a.ndim:
            n = len(a)
            if n == 0:
                raise ValueError(f"{what}: no inputs; give at least one {per}")
        if self.tokens:
            if a.shape != (n,):
                raise ValueError(f"{what}: expected {label} token ids, one per {per} "
                                 f"(shape ({label},)), got shape {a.shape}")
            return self.model.embedding.check_ids(a)
        if a.shape != (n, self.input_size):
            raise ValueError(f"{what}: expected inputs of shape ({label}, {self.input_size}),"
                             f" one row of {self.input_size} features per {per}, got shape "
                             f"{a.shape}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{what}: expected float inputs, got dtype {a.dtype}")
        return finite_as(a, self.dtype, f"{what}: inputs")

    def _advance(self, rows, x, outputs=True):
        """T steps of the streams in slab rows ``rows`` (B,), inputs x (T, B) token ids or
        (T, B, I) features, checked; their outputs after the last step (B, K), or None
        without ``outputs``. The inputs the model's embedding and head keep for backward
        are put back afterwards, as the layer's cache is: a forward/backward pair of the
        model around a step is left alone."""
        model = self.model
        if model is None:
            return self._advance_steps(rows, x, outputs)
        embedding = model.embedding  # None for a model of features
        kept = (None if embedding is None else embedding._ids, model.head._x)
        try:
            return self._advance_steps(rows, x, outputs)
        finally:
            if embedding is not None:
                embedding._ids = kept[0]
            model.head._x = kept[1]

    def _advance_steps(self, rows, x, outputs):
        """_advance's steps."""
        rnn, model = self.rnn, self.model
        T, B = x.shape[:2]
        h_in = model.embedding.forward(x, need_grad=False) if self.tokens else x
        states = tuple(np.take(self._slab, rows, axis=2))            # (L, B, H) each: gather
        threads = resolve_threads(self.num_threads, B, rnn.hidden_size)
        if T == 1:
            top, finals = rnn.run_step(h_in[0], states, threads,    # (B, H)
                                       self.precision, evaluate=True)
            tops = top[None]
        else:
            # run() drops the layer's backward cache; run_step keeps it, and so does a
            # read: a forward/backward pair of the layer around it is left alone
            cache = rnn._cache
            tops, finals = rnn.run(np.ascontiguousarray(h_in), states,  # (T, B, H)
                                   np.full(B, T, np.int64), False, threads, self.precision,
                                   evaluate=True)
            rnn._cache = cache
        for s, final in enumerate(finals):                           # scatter
            self._slab[s][:, rows] = final
        if model is None:
            return tops[-1] if outputs else None
        if self.output == "mean":
            total, count = self._extra["total"], self._extra["count"]
            total[rows] += tops.sum(axis=0)
            count[rows] += T
            pooled = total[rows] / count[rows].astype(self.dtype)[:, None] if outputs else None
        elif self.output == "max":
            maximum = self._extra["maximum"]
            maximum[rows] = np.maximum(maximum[rows], tops.max(axis=0))
            pooled = maximum[rows]
        else:                                                        # "sequence", "last"
            pooled = tops[-1]
        if not outputs:
            if self.wide is not None:
                self._wide_step(rows, x)  # the features seen, and their running sum
            return None
        y = model.head.forward(pooled)  # (B, K); the dropout before it: eval's identity
        if self.wide is not None:
            y += self._wide_step(rows, x).astype(self.dtype)
        return softmax(y) if self.softmax else y

    def _wide_step(self, rows, tokens):
        """The wide part's logits (B, K) for each stream's prefix after ``tokens`` (T, B):
        the weights of features seen for the first time are added to the stream's running
        sum, which the learned scale (when the wide part has one) multiplies. T > 1 is
        read()'s one stream (B = 1)."""
        seen, previous, acc = (self._extra[k] for k in ("seen", "previous", "wide"))
        weight = self.wide.params()["weight"]  # (F, K)
        if len(tokens) == 1:
            tokens = tokens[0]
            self._add_features(rows, tokens, seen, acc, weight)
            if self.wide.bigram_buckets:
                prev = previous[rows]
                has = prev != _NO_TOKEN
                bigrams = bigram_features(prev[has], tokens[has], self.wide.vocab_size,
                                          self.wide.bigram_buckets)
                self._add_features(rows[has], bigrams, seen, acc, weight)
        else:
            ids = tokens[:, 0]
            features = [ids]
            if self.wide.bigram_buckets:
                prev = np.concatenate([previous[rows], ids[:-1]])
                has = prev != _NO_TOKEN
                features.append(bigram_features(prev[has], ids[has], self.wide.vocab_size,
                                                self.wide.bigram_buckets))
            self._add_features_of(rows[0], np.unique(np.concatenate(features)), seen, acc,
                                  weight)
            tokens = ids[-1:]
        previous[rows] = tokens
        return acc[rows] * self.wide.logit_scale()

    @staticmethod
    def _add_features(rows, features, seen, acc, weight):
        """Mark ``features`` (one per row, rows distinct) seen; add the weights of those not
        seen before to ``acc``."""
        byte, bit = features >> 3, (1 << (features & 7)).astype(np.uint8)
        new = (seen[rows, byte] & bit) == 0
        acc[rows[new]] += weight[features[new]]
        seen[rows, byte] |= bit

    @staticmethod
    def _add_features_of(row, features, seen, acc, weight):
        """_add_features for one row and many distinct ``features``."""
        byte, bit = features >> 3, (1 << (features & 7)).astype(np.uint8)
        new = (seen[row, byte] & bit) == 0
        acc[row] += weight[features[new]].sum(axis=0, dtype=np.float64)
        np.bitwise_or.at(seen[row], byte, bit)  # several features may share a byte

    def __repr__(self):
        return (f"StreamPool({len(self)}/{self.capacity} streams open, {self.output} "
                f"outputs, {self.rnn!r})")


class EnsemblePool(StreamPool):
    """The StreamPool of an ensemble (recurrent/ensemble.py), which StreamPool(...) makes
    for one: a pool per member, opened, closed and stepped together; each step combines
    the members' outputs as the run's loss does (for cross_entropy with softmax, the
    mean of their probabilities). state() holds every member's state, under
    "member<k>.<name>"."""

    def __init__(self, model_or_run, capacity, *, softmax=None, num_threads=None,
                 precision=None):
        model, softmax = _loaded(model_or_run, softmax)
        if not isinstance(model, EnsembleModel):
            raise ValueError(f"model_or_run: expected an ensemble, got "
                             f"{type(model).__name__}")
        self.model, self.softmax = model, bool(softmax)
        self.pools = [StreamPool(m, capacity, softmax=False, num_threads=num_threads,
                                 precision=precision) for m in model.members]
        first = self.pools[0]
        for name in ("capacity", "rnn", "output", "tokens", "input_size", "dtype",
                     "num_threads", "precision"):
            setattr(self, name, getattr(first, name))

    def __len__(self):
        return len(self.pools[0])

    def __contains__(self, stream_id):
        return stream_id in self.pools[0]

    def ids(self):
        return self.pools[0].ids()

    def open(self, stream_id):
        for pool in self.pools:  # the first refuses what every one would
            pool.open(stream_id)

    def close(self, stream_id):
        for pool in self.pools:
            pool.close(stream_id)

    def state(self, stream_id):
        return {f"member{k}.{name}": value for k, pool in enumerate(self.pools)
                for name, value in pool.state(stream_id).items()}

    def restore(self, stream_id, state):
        _check_state_dict(state)
        parts = [{} for _ in self.pools]
        for key, value in state.items():
            member, _, name = str(key).partition(".")
            k = member[len("member"):]
            if not (member.startswith("member") and k.isdigit() and int(k) < len(parts)):
                raise ValueError(f"restore: {key!r} is not a member's state (expected "
                                 f"keys member<k>.<name>, k < {len(parts)})")
            parts[int(k)][name] = value
        for pool, part in zip(self.pools, parts):  # each checks its part before changing
            pool._check_state(part)
        for pool, part in zip(self.pools, parts):
            pool.restore(stream_id, part)

    def step_arrays(self, ids, xs, outputs=True):
        ys = [pool.step_arrays(ids, xs, outputs) for pool in self.pools]
        if not outputs:
            return None
        y = combine(self.model.loss, ys)
        return softmax(y) if self.softmax else y

    def read(self, stream_id, xs, outputs=True):
        ys = [pool.read(stream_id, xs, outputs) for pool in self.pools]
        if not outputs:
            return None
        y = combine(self.model.loss, [y[None] for y in ys])  # (1, K)
        return (softmax(y) if self.softmax else y)[0]

    def __repr__(self):
        return (f"EnsemblePool({len(self)}/{self.capacity} streams open, "
                f"{len(self.pools)} members, {self.output} outputs)")
