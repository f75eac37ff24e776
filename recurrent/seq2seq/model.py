"""Seq2SeqModel: an encoder-decoder with Luong attention, every parameter in ONE flat
buffer, with the surface the trainer uses of a SequenceModel (forward, backward, params,
grads, named_params, zero_grad, train/eval, reseed_dropout, runner, output "sequence").

    source (S, B) -> Embedding -> encoder Recurrent (any cell, stacked, bidirectional)
                         -> memory (S, B, F), final states (L*D, B, H)
    final states -> bridge (per layer, the D directions' states side by side) -> (L, B, D*H)
    decoder input (T, B) -> Embedding -> decoder Recurrent (same cell, L layers, D*H units,
                         started from the bridged states) -> (T, B, D*H)
                         -> LuongAttention over memory -> (T, B, D*H) -> dropout -> head
                         -> logits (T, B, V)

Teacher forcing: the decoder reads the target shifted right (BOS, y_0, ..., y_{n-2}) and
runs the whole target sequence in ONE call per layer (attention comes after the RNN, so
no step depends on the previous step's attention); backward is one run_backward each.
With "attention": "additive" the decoder instead reads [embedding; previous h~] (input
feeding) and scores additively (recurrent/seq2seq/feeding.py): a loop over target steps,
one cell call per layer and step.

Batches. The trainer hands a model one array x and one lengths vector, so a pair batch is
x (T, B, 2) int64: x[:, :, 0] the source ids, x[:, :, 1] the decoder input ids, each
padded with PAD_ID (0) after its end; lengths (B,) are the TARGET lengths (the decoder's
valid steps, what the loss counts), and a row's source length is its number of non-PAD
source ids. T is the longer of the two; each side is trimmed to its own longest row.

Decoding (recurrent/seq2seq/decode.py) steps the decoder through Recurrent.run_step.

Dimension legend: S source steps, T target steps, B rows, E embedding size, H encoder
hidden size, D encoder directions, F = D*H (encoder features = decoder hidden size),
L layers, V target vocabulary, N = T*B.
"""
from __future__ import annotations

import numpy as np

from ..checks import NO_FORWARD, gradient_as, positive_int
from ..dropout import Dropout
from ..layers import Recurrent
from ..lengths import check_lengths, valid_mask
from ..modules import Dense, Embedding
from ..params import FlatModel
from ..threads import single_threaded_blas
from .attention import SCORES, LuongAttention
from .feeding import AdditiveAttention, FeedingDecoder

PAD_ID = 0  # padding, in both vocabularies
ADDITIVE = "additive"  # Bahdanau-style additive attention with input feeding (feeding.py)
ATTENTIONS = SCORES + (ADDITIVE,)
KIND = "seq2seq"  # model_spec["model"] of an encoder-decoder


def check_spec(spec: dict) -> dict:
    """An encoder-decoder model_spec, checked: ValueError naming the bad key.

    {"model": "seq2seq", "source_vocab": Vs, "target_vocab": V, "embed_dim": E,
     "attention": "general" | "dot" | "additive", "bos": id, "eos": id, "output": "sequence",
     "output_size": V}"""
    if not isinstance(spec, dict) or spec.get("model") != KIND:
        raise ValueError(f"model_spec: expected a dict with model {KIND!r}")
    for key in ("source_vocab", "target_vocab", "embed_dim"):
        positive_int(spec.get(key), f"model_spec {key}")
    if spec.get("attention", "general") not in ATTENTIONS:
        raise ValueError(f"model_spec attention: expected one of {', '.join(ATTENTIONS)}, "
                         f"got {spec.get('attention')!r}")
    for key in ("bos", "eos"):
        value = spec.get(key)
        if not isinstance(value, (int, np.integer)) or not 0 < value < spec["target_vocab"]:
            raise ValueError(f"model_spec {key}: expected a target id in "
                             f"1..{spec['target_vocab'] - 1}, got {value!r}")
    if spec["bos"] == spec["eos"]:
        raise ValueError(f"model_spec bos, eos: expected two different ids, got {spec['bos']} "
                         f"for both (decoding never emits BOS, so it would never end)")
    if spec.get("output") != "sequence" or spec.get("output_size") != spec["target_vocab"]:
        raise ValueError("model_spec: an encoder-decoder has output 'sequence' and "
                         "output_size = target_vocab")
    return spec


def bridge(states, D):
    """Encoder final states, each (L*D, B, H) -> the decoder's initial states, each
    (L, B, D*H): per layer, the D directions' states side by side."""
    out = []
    for s in states:
        LD, B, H = s.shape
        out.append(np.ascontiguousarray(
            s.reshape(LD // D, D, B, H).transpose(0, 2, 1, 3).reshape(LD // D, B, D * H)))
    return tuple(out)


def unbridge(d_states, D):
    """The gradients of the decoder's initial states (L, B, D*H) -> those of the encoder's
    final states (L*D, B, H): bridge() backwards."""
    out = []
    for d in d_states:
        L, B, DH = d.shape
        H = DH // D
        out.append(np.ascontiguousarray(
            d.reshape(L, B, D, H).transpose(0, 2, 1, 3).reshape(L * D, B, H)))
    return tuple(out)


def source_lengths(src):
    """(B,) int64: each row's number of non-PAD source ids (src (S, B)); ValueError for a
    PAD before a row's last id (the encoder and the attention read the first length ids
    of a row: the ids after a PAD would be dropped silently)."""
    valid = np.asarray(src) != PAD_ID  # (S, B)
    if (valid[1:] & ~valid[:-1]).any():
        raise ValueError(f"source ids: PAD ({PAD_ID}) before a row's last id; pad each row "
                         f"after its end only (id {PAD_ID} is padding, not a symbol)")
    return valid.sum(axis=0).astype(np.int64)


class Seq2SeqModel(FlatModel):
    """See the module docstring. forward(x, *, lengths=None, state=None, truncate=0,
    need_grad=True) -> (logits (T, B, V), None); backward(d_logits) accumulates every
    gradient into ``grads``. ``encode`` and ``decoder_step`` are the pieces decoding
    uses."""

    output = "sequence"
    tokens = True

    def __init__(self, spec: dict, cell="lstm", hidden_size=128, num_layers=1, dropout=0.0,
                 bidirectional=False, seed=0, num_threads=None, dtype=np.float32,
                 init="uniform", forget_bias=None, recurrent_dropout=0.0, zoneout=0.0):
        self.spec = check_spec(spec)
        self.dtype = np.dtype(dtype)
        self.bos, self.eos = int(spec["bos"]), int(spec["eos"])
        seeds = np.random.SeedSequence(seed).spawn(7)
        rngs = [np.random.default_rng(s) for s in seeds]
        E = spec["embed_dim"]
        self.num_directions = D = 2 if bidirectional else 1
        layer_dropout = dropout if num_layers > 1 else 0.0
        kind = spec.get("attention", "general")
        regularized = dict(recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        if kind == ADDITIVE and (recurrent_dropout or zoneout):
            raise ValueError("recurrent_dropout, zoneout: the decoder with additive attention "
                             "steps its cell one step at a time, without them; use "
                             "another attention")
        self.source_embedding = Embedding(spec["source_vocab"], E, self.dtype, rngs[0])
        self.encoder = Recurrent(cell, E, hidden_size, num_layers=num_layers,
                                 dropout=layer_dropout, bidirectional=bidirectional,
                                 dtype=self.dtype, seed=int(seeds[1].generate_state(1)[0]),
                                 init=init, forget_bias=forget_bias, num_threads=num_threads,
                                 **regularized)
        F = D * self.encoder.hidden_size
        self.target_embedding = Embedding(spec["target_vocab"], E, self.dtype, rngs[2])
        self.decoder = Recurrent(cell, E + F if kind == ADDITIVE else E, F,
                                 num_layers=num_layers, dropout=layer_dropout,
                                 dtype=self.dtype, seed=int(seeds[3].generate_state(1)[0]),
                                 init=init, forget_bias=forget_bias, num_threads=num_threads,
                                 **regularized)
        self.feeding = None
        if kind == ADDITIVE:
            self.attention = AdditiveAttention(F, self.dtype, rngs[4])
            self.feeding = FeedingDecoder(self.decoder, self.attention)
        else:
            self.attention = LuongAttention(F, F, kind, self.dtype, rngs[4])
        self.dropout = Dropout(dropout, rngs[5])
        self.head = Dense(F, spec["target_vocab"], self.dtype, rngs[6])
        self.modules = {"source_embedding": self.source_embedding, "encoder": self.encoder,
                        "target_embedding": self.target_embedding, "decoder": self.decoder,
                        "attention": self.attention, "head": self.head}
        self.bind_flat()
        self.training = True
        self._cache = None

    @property
    def num_threads(self):
        return self.encoder.num_threads

    @num_threads.setter
    def num_threads(self, value):
        self.encoder.num_threads = value
        self.decoder.num_threads = value

    @property
    def precision(self):
        """The recurrent stacks' precision (Recurrent.precision), the encoder's and the
        decoder's alike: "fp32", "int8" (inference) or "bf16"; embeddings, attention and
        head stay float32."""
        return self.encoder.precision

    @precision.setter
    def precision(self, value):
        self.decoder.check_precision(value)   # both or neither
        self.encoder.precision = value
        self.decoder.precision = value

    def reseed_dropout(self, seed_words, rows=None):
        """As SequenceModel.reseed_dropout. With ``rows`` (a data-parallel rank's share of
        the batch) the masks are cut from those of the whole batch (forward draws the
        masks that vary over time for all of the batch's steps)."""
        own, enc, dec = np.random.SeedSequence(list(seed_words)).spawn(3)
        self.dropout.rng = np.random.default_rng(own)
        self.dropout.rows = rows
        self.encoder.reseed_dropout(enc, rows)
        self.decoder.reseed_dropout(dec, rows)

    def runner(self):
        from .runner import Seq2SeqRunner
        return Seq2SeqRunner(self)

    # -- forward / backward ------------------------------------------------------------
    def _split(self, x, lengths):
        """x (T, B, 2) -> (source (S, B), source lengths, decoder input (T', B), target
        lengths), each side trimmed to its longest row (at least one step)."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != 2 or x.shape[0] < 1:
            raise ValueError(f"x: expected a pair batch of shape (T, B, 2), got shape "
                             f"{x.shape}")
        T, B, _ = x.shape
        src_len = source_lengths(x[:, :, 0])
        tgt_len = check_lengths(lengths, T, B)
        S = max(1, int(src_len.max(initial=0)))
        Tt = max(1, int(tgt_len.max(initial=0)))
        return x[:S, :, 0], src_len, x[:Tt, :, 1], tgt_len

    def encode(self, src, src_len, need_grad=False, mask_steps=0):
        """Source ids (S, B) and lengths -> (memory (S, B, F), decoder initial states,
        thread count). The encoder's cache is kept when need_grad. mask_steps: as
        Recurrent.run's."""
        if not need_grad:  # decoding overwrites the modules' caches: no backward after it
            self._cache = None
        h = self.source_embedding.forward(src)  # (S, B, E)
        h, states, src_len, threads = self.encoder.prepare(h, lengths=src_len)
        memory, finals = self.encoder.run(h, states, src_len, need_grad, threads,
                                          mask_steps=mask_steps)
        init = bridge(finals, self.num_directions)
        if self.feeding is not None:
            init = self.feeding.initial(init)  # plus the h~ fed to the first step
        return memory, init, threads

    def forward(self, x, *, lengths=None, state=None, truncate=0, need_grad=True):
        """x (T, B, 2), lengths (B,) target lengths -> (logits (T, B, V), None); padded
        target steps are zero. ``state`` and ``truncate`` must be None / 0 (each pair is
        read whole)."""
        if state is not None or truncate:
            raise ValueError("an encoder-decoder reads each pair whole: no carried state, "
                             "no truncation")
        with single_threaded_blas():
            src, src_len, tgt_in, tgt_len = self._split(x, lengths)
            T, B = np.shape(x)[:2]
            self._cache = None
            # the masks drawn over the batch's T steps, not the trimmed S and T': a
            # data-parallel rank, whose rows' longest may be shorter, gets the masks of
            # its rows that one process draws for the whole batch
            memory, init, threads = self.encode(src, src_len, need_grad, mask_steps=T)
            h = self.target_embedding.forward(tgt_in)  # (T', B, E)
            if self.feeding is not None:
                att = self.feeding.run(h, init, memory, src_len, tgt_len, need_grad,
                                       threads)  # (T', B, F)
            else:
                dec, _ = self.decoder.run(np.ascontiguousarray(h), init, tgt_len, need_grad,
                                          threads, mask_steps=T)  # (T', B, F)
                att, _ = self.attention.forward(dec, memory, src_len, need_grad)
            Tt, _, F = att.shape
            logits = self.head.forward(
                self.dropout.forward(att, batch_axis=1).reshape(Tt * B, F))
            mask = valid_mask(tgt_len, Tt, B)[:, :, None]  # (T', B, 1)
            out = np.zeros((T, B, logits.shape[1]), logits.dtype)
            out[:Tt] = logits.reshape(Tt, B, -1) * mask
            if need_grad:
                self._cache = (T, Tt, B, mask, threads)
            return out, None

    __call__ = forward

    def backward(self, d_outputs):
        """d_outputs (T, B, V) like forward's logits -> every gradient added into
        ``grads``."""
        if self._cache is None:
            raise ValueError(NO_FORWARD)
        T, Tt, B, mask, threads = self._cache
        d = gradient_as(d_outputs, (T, B, self.head.out_features), self.dtype)
        self._cache = None
        d = d[:Tt] * mask  # (T', B, V)
        with single_threaded_blas():
            d_att = self.head.backward(d.reshape(Tt * B, -1)).reshape(Tt, B, -1)
            d_att = np.ascontiguousarray(self.dropout.backward(d_att))
            if self.feeding is not None:
                d_h, d_init, d_memory = self.feeding.backward(d_att)
            else:
                d_dec, d_memory = self.attention.backward(d_att)
                d_h, d_init = self.decoder.run_backward(
                    d_dec, (None,) * len(self.decoder.state_names), threads)
            self.target_embedding.backward(d_h)
            d_src, _ = self.encoder.run_backward(
                d_memory, unbridge(d_init, self.num_directions), threads)
            self.source_embedding.backward(d_src)

    def decoder_step(self, y_prev, states, memory, src_len, threads):
        """One decoder step for N rows: previous ids (N,), states (each (L, N, F)),
        memory (S, N, F), source lengths (N,) -> (log-probabilities (N, V) float64, PAD
        and BOS at -inf, new states, attention weights (N, S)). Through Recurrent.run_step; nothing kept for
        backward; the caller holds single-threaded BLAS and eval mode."""
        h = self.target_embedding.forward(np.asarray(y_prev), need_grad=False)  # (N, E)
        if self.feeding is not None:
            att, states, weights = self.feeding.step(h, states, memory, src_len, threads)
        else:
            out, states = self.decoder.run_step(np.ascontiguousarray(h), states, threads)
            att, weights = self.attention.forward(out[None], memory, src_len,
                                                  need_grad=False)
            att, weights = att[0], weights[:, 0]
        logits = self.head.forward(self.dropout.forward(att)).astype(np.float64)
        logits[:, [PAD_ID, self.bos]] = -np.inf  # never targets: never emitted
        top = logits.max(axis=1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
        return logp, states, weights
