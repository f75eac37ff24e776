"""Additive (Bahdanau-style) attention with input feeding: a decoder that runs one step
at a time, because each step reads the previous step's attentional vector.

    x_t  = [embedding of y_{t-1}; h~_{t-1}]                    (input feeding; h~_{-1} = 0)
    h_t  = decoder Recurrent stack, one step                    (any cell, L layers)
    e_tj = v . tanh(W_q h_t + W_k s_j)                         (additive score)
    a_t  = softmax over the valid source steps j < len_b; c_t = sum_j a_tj s_j
    h~_t = tanh(W_c [h_t; c_t])                                (to the head, and to x_{t+1})

Unlike the Luong decoder (recurrent/seq2seq/model.py), which runs the whole teacher-forced
target in one kernel call per layer, this one needs a Python loop over target steps in
training too: one cell call per layer and step forward, one per layer and step backward
(through Cell.forward / Cell.backward on single steps, with each step's cache kept).
Between stacked decoder layers no dropout is applied in this variant.

A row past its target length keeps its state and its h~ (it is fed no further input):
its outputs there are masked by the model, and get no gradient.

Dimension legend: T target steps, S source steps, B rows, E embedding size, F decoder
hidden size = encoder features, A = F attention units, L layers.
"""
from __future__ import annotations

import numpy as np

from ..params import ParamModule
from .attention import masked_softmax


class AdditiveAttention(ParamModule):
    """Parameters: weight_q (A, F), weight_k (A, F), v (A,), weight_c (F, 2F)."""

    def __init__(self, size, dtype=np.float32, rng=None):
        F = self.size = int(size)
        super().__init__({"weight_q": (F, F), "weight_k": (F, F), "v": (F,),
                          "weight_c": (F, 2 * F)}, dtype)
        rng = rng if rng is not None else np.random.default_rng()
        for name, shape in self._shapes.items():
            bound = 1.0 / np.sqrt(shape[-1])
            self._params[name][...] = rng.uniform(-bound, bound, size=shape)

    def keys(self, memory):
        """memory (S, B, F) -> projected keys W_k s_j (S, B, A), once per sequence."""
        S, B, F = memory.shape
        return (memory.reshape(S * B, F) @ self._params["weight_k"].T).reshape(S, B, -1)

    def step(self, h, memory, keys, lengths):
        """h (B, F) -> (h~ (B, F), weights (B, S), cache for step_backward)."""
        p = self._params
        u = np.tanh(keys + (h @ p["weight_q"].T)[None])  # (S, B, A)
        e = u @ p["v"]  # (S, B)
        a = masked_softmax(e.T[:, None, :], lengths)[:, 0, :].astype(h.dtype)  # (B, S)
        ctx = np.einsum("bs,sbf->bf", a, memory)  # (B, F)
        z = np.concatenate([h, ctx], axis=1)  # (B, 2F)
        out = np.tanh(z @ p["weight_c"].T)  # (B, F)
        return out, a, (h, u, a, z, out)

    def step_backward(self, d_out, cache, memory, d_memory, d_keys):
        """d_out (B, F) -> dh (B, F); adds into d_memory (S, B, F), d_keys (S, B, A) and
        the parameter gradients."""
        h, u, a, z, out = cache
        p, g = self._params, self._grads
        F = self.size
        d_pre = d_out * (1 - out * out)
        g["weight_c"] += d_pre.T @ z
        dz = d_pre @ p["weight_c"]
        dh, d_ctx = dz[:, :F], dz[:, F:]
        da = np.einsum("bf,sbf->bs", d_ctx, memory)
        d_memory += a.T[:, :, None] * d_ctx[None]
        de = (a * (da - (da * a).sum(axis=1, keepdims=True))).T  # (S, B)
        g["v"] += np.einsum("sb,sba->a", de, u)
        d_u = de[:, :, None] * p["v"] * (1 - u * u)  # (S, B, A)
        d_keys += d_u
        d_q = d_u.sum(axis=0)  # (B, A)
        g["weight_q"] += d_q.T @ h
        return dh + d_q @ p["weight_q"]

    def keys_backward(self, d_keys, memory, d_memory):
        """The projection of keys() backwards: adds into d_memory and weight_k's gradient."""
        S, B, F = memory.shape
        dk = d_keys.reshape(S * B, -1)
        self._grads["weight_k"] += dk.T @ memory.reshape(S * B, F)
        d_memory += (dk @ self._params["weight_k"]).reshape(S, B, F)


class FeedingDecoder:
    """The decoder Recurrent (input E + F, unidirectional) and an AdditiveAttention, run
    step by step with input feeding. States are the layer's (each (L, B, F)) plus the fed
    h~ as a last entry (1, B, F), so that decoding gathers them all alike."""

    def __init__(self, decoder, attention):
        self.decoder, self.attention = decoder, attention
        self.cell = decoder.cell
        self._cache = None

    def initial(self, states):
        """The decoder's initial states and a zero h~ to feed."""
        B, F = states[0].shape[1], self.attention.size
        return tuple(states) + (np.zeros((1, B, F), states[0].dtype),)

    def _layer_step(self, x, states, active, threads, keep):
        """One step of every layer: x (B, I) -> (h (B, F), new states, caches). Without
        keep (inference) the stack's own run_step, in its precision, and no caches."""
        if not keep:
            h, new = self.decoder.run_step(x, states, threads, evaluate=True, lengths=active)
            return h, new, None
        caches = []
        layer_in = x[None]
        new = [np.empty_like(s) for s in states]
        for k in range(self.decoder.num_layers):
            out, finals, cache = self.decoder._run_cell(
                keep, np.ascontiguousarray(layer_in), tuple(s[k] for s in states),
                self.decoder._unit_params(k), active, threads)
            caches.append(cache)
            for target, final in zip(new, finals):
                target[k] = final
            layer_in = out
        return layer_in[0], tuple(new), caches

    def run(self, emb, init, memory, src_len, tgt_len, need_grad, threads):
        """emb (T, B, E), init (the layer's states + fed h~), memory (S, B, F) ->
        h~ (T, B, F) (rows past their length keep emitting their last h~; the model
        masks them)."""
        T, B, _ = emb.shape
        keys = self.attention.keys(memory)
        states, feed = init[:-1], init[-1][0]
        outs = np.empty((T, B, self.attention.size), emb.dtype)
        steps = []
        for t in range(T):
            active = (tgt_len > t).astype(np.int64)  # (B,) 1 or 0: a length for one step
            x = np.concatenate([emb[t], feed], axis=1)  # (B, E + F)
            h, states, caches = self._layer_step(x, states, active, threads, need_grad)
            out, _, att_cache = self.attention.step(h, memory, keys, src_len)
            live = active.astype(bool)[:, None]
            feed = np.where(live, out, feed)
            outs[t] = out
            if need_grad:
                steps.append((caches, att_cache, live))
        self._cache = (steps, memory, keys, threads) if need_grad else None
        return outs

    def backward(self, d_out):
        """d_out (T, B, F) -> (d_emb (T, B, E), d_init states (each (L, B, F)), d_memory);
        parameter gradients added."""
        steps, memory, keys, threads = self._cache
        self._cache = None
        T, B, F = d_out.shape
        L = self.decoder.num_layers
        E = self.decoder.input_size - F
        d_memory = np.zeros_like(memory)
        d_keys = np.zeros_like(keys)
        d_emb = np.zeros((T, B, E), d_out.dtype)
        d_states = tuple(np.zeros((L, B, F), d_out.dtype) for _ in self.decoder.state_names)
        d_feed = np.zeros((B, F), d_out.dtype)
        for t in reversed(range(T)):
            caches, att_cache, live = steps[t]
            # h~_t reaches the loss at step t and, for a live row, the input of step t+1
            d_att = d_out[t] + np.where(live, d_feed, 0)
            d_feed = np.where(live, 0, d_feed)  # a finished row's h~ passes through
            dh = self.attention.step_backward(d_att, att_cache, memory, d_memory, d_keys)
            d_layer = dh[None]
            new_d = [np.empty_like(s) for s in d_states]
            for k in reversed(range(L)):
                dx, ds = self.cell.backward(np.ascontiguousarray(d_layer),
                                            tuple(s[k] for s in d_states), caches[k],
                                            self.decoder._unit_grads(k), threads)
                self.decoder._check_cell_grads(dx, ds, 1, B, k)
                for target, d in zip(new_d, ds):
                    target[k] = d
                d_layer = dx
            d_states = tuple(new_d)
            d_emb[t] = d_layer[0, :, :E]
            d_feed = d_feed + d_layer[0, :, E:]
        self.attention.keys_backward(d_keys, memory, d_memory)
        return d_emb, d_states, d_memory

    def step(self, emb, states, memory, src_len, threads):
        """One decoding step for N rows: emb (N, E), states (the layer's + fed h~) ->
        (h~ (N, F), new states, weights (N, S)). Nothing kept for backward."""
        x = np.concatenate([emb, states[-1][0]], axis=1)
        N = x.shape[0]
        h, new, _ = self._layer_step(x, states[:-1], np.ones(N, np.int64), threads, False)
        out, weights, _ = self.attention.step(h, memory, self.attention.keys(memory), src_len)
        return out, new + (out[None],), weights
