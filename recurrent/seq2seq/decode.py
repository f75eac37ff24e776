"""Greedy and beam-search decoding of a Seq2SeqModel, batched over sentences.

All hypotheses of all sentences are the rows of ONE decoder batch (B*K rows, K = beam
width, sentence b's hypotheses in rows b*K .. b*K+K-1): each step is one
Recurrent.run_step per layer, one attention call and one head call for all of them, then
a top-K over each sentence's K*V continuations (numpy, per sentence row: no Python loop
over hypotheses). Each step keeps only its survivors' parent rows, tokens and attention
weights; the hypotheses' histories are traced back through the parents once at the end,
so time and memory grow linearly with the output length. greedy() is the argmax path,
equal to beam search with K = 1. The attention weights kept for the hypotheses (t x S per
row: quadratic in the source length under the default limit) are kept only when
``attention`` is True (the default); a caller that does not read them passes False.

Search ranks partial hypotheses by their summed log-probability; a hypothesis that
emitted EOS is finished: it keeps its score and stays in the beam (its only continuation
is itself, at no cost). The final ranking divides each score by its length (tokens
including EOS) to the power ``alpha`` (length normalisation; alpha = 0: raw sums),
greedy decoding's one hypothesis included. A sentence stops after ``max_len`` tokens
(default: 2 x its own source length, or ``longest`` when that is more, + 10: its own, so
that a sentence decodes the same whatever sentences share its batch; ``longest``, the
longest target the model was trained on, so that an output as long as the training
targets is not cut); decoding ends when every hypothesis is finished or stopped.

Dimension legend: S source steps, B sentences, K beam width, R = B*K rows, V target
vocabulary, L layers, F decoder hidden size, t decoded steps.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import positive_int
from ..threads import single_threaded_blas
from .model import source_lengths


class Hypotheses(NamedTuple):
    """The K best hypotheses of each of B sentences, best first (by normalised score).

    tokens (B, K, t) int64 ids, EOS excluded, padded with -1 past each hypothesis' end;
    lengths (B, K): its number of tokens (EOS excluded); finished (B, K): ended with EOS
    (not cut by max_len); scores (B, K): summed log-probabilities (EOS included);
    normalised (B, K): the ranking score; attention (B, K, t, S): the attention weights at
    each emitted step (EOS's step included when t allows), None when the decoding was
    asked not to keep them (attention=False). When fewer than K hypotheses
    exist (a beam wider than a small vocabulary allows within max_len), the last ones
    are empty: score -inf, no tokens, not finished."""
    tokens: np.ndarray
    lengths: np.ndarray
    finished: np.ndarray
    scores: np.ndarray
    normalised: np.ndarray
    attention: np.ndarray


def default_max_len(src_len, longest=0):
    """Decoding limit of each sentence when none is given: (B,) twice its own source
    length, or ``longest`` (the longest target the model was trained on) when that is
    more, plus 10 (never the batch's longest: a sentence's output must not depend on the
    sentences decoded with it; and not below the training targets' length: targets longer
    than twice their source, such as number -> words or abbreviation -> expansion, must
    not be cut)."""
    if isinstance(longest, bool) or not isinstance(longest, (int, np.integer)) or longest < 0:
        raise ValueError(f"longest: expected a whole number >= 0, got {longest!r}")
    return np.maximum(2 * np.asarray(src_len, np.int64), int(longest)) + 10


def _start(src, max_len, alpha, longest=0):
    """(src trimmed to its longest source, src_len (B,), limit (B,): each sentence's
    maximum number of decoded tokens); ValueError for ids that are not integers (a cast
    would truncate them silently) and for an alpha that is not a number >= 0."""
    src = np.asarray(src)
    if src.ndim != 2 or src.shape[1] < 1:
        raise ValueError(f"src: expected source ids of shape (S, B), got shape {src.shape}")
    if src.dtype.kind not in "iu":
        raise ValueError(f"src: expected integer token ids, got dtype {src.dtype}")
    if (isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating))
            or not 0 <= alpha < np.inf):
        raise ValueError(f"alpha: expected a number >= 0, got {alpha!r}")
    src = src.astype(np.int64, copy=False)
    src_len = source_lengths(src)
    limit = (default_max_len(src_len, longest) if max_len is None else
             np.full(src.shape[1], positive_int(max_len, "max_len"), np.int64))
    return src[:max(1, int(src_len.max(initial=0)))], src_len, limit


def greedy(model, src, max_len=None, alpha=1.0, attention=True, longest=0):
    """The most likely next token at every step, for each sentence of ``src`` (S, B) ->
    Hypotheses with K = 1 (what beam search with K = 1 finds, more cheaply: an argmax
    instead of a sort; ``normalised`` is score / length^alpha as for the beam), with
    their attention weights when ``attention``; ``longest``: as default_max_len's. The
    model should be in eval mode."""
    src, src_len, limit = _start(src, max_len, alpha, longest)
    B = src.shape[1]
    with single_threaded_blas():
        memory, states, threads = model.encode(src, src_len)
        prev = np.full(B, model.bos, np.int64)
        finished = np.zeros(B, bool)
        scores = np.zeros(B)
        lengths = np.zeros(B, np.int64)
        tokens, attn = [], []
        for step in range(int(limit.max())):
            logp, states, weights = model.decoder_step(prev, states, memory, src_len,
                                                       threads)
            token = np.argmax(logp, axis=1)
            live = ~finished & (step < limit)  # a sentence past its limit is stopped
            scores[live] += logp[live, token[live]]
            lengths += live
            token = np.where(live, token, model.eos)
            tokens.append(token)
            if attention:
                attn.append(weights)
            finished |= live & (token == model.eos)
            prev = token
            if not np.any(~finished & (step + 1 < limit)):
                break
    history = np.array(tokens).reshape(-1, B)
    weights = np.array(attn).reshape(len(tokens), B, -1) if attention else None
    return _hypotheses(history, weights, lengths, finished, scores, B, 1, alpha, model.eos)


def search(model, src, beam=1, max_len=None, alpha=1.0, attention=True, longest=0):
    """Decode source ids ``src`` (S, B) (padded with PAD_ID) with beam width ``beam``
    -> Hypotheses with K = beam, with their attention weights when ``attention``;
    ``longest``: as default_max_len's. The model should be in eval mode."""
    K = positive_int(beam, "beam")
    src, src_len, limit = _start(src, max_len, alpha, longest)
    B = src.shape[1]
    R = B * K
    eos = model.eos
    with single_threaded_blas():
        memory, states, threads = model.encode(src, src_len)
        rows = np.repeat(np.arange(B), K)  # (R,) the sentence of each row
        memory = np.ascontiguousarray(memory[:, rows])  # (S, R, F)
        row_len = src_len[rows]
        states = tuple(np.ascontiguousarray(s[:, rows]) for s in states)
        scores = np.full((B, K), -np.inf)
        scores[:, 0] = 0.0  # one live hypothesis per sentence to start from
        scores = scores.reshape(R)
        finished = np.zeros(R, bool)
        prev = np.full(R, model.bos, np.int64)
        # Per step, the survivors' parent rows, tokens and the step's attention weights
        # (t entries of (R,), (R,) and (R, S)); the hypotheses' histories are traced back
        # through the parents once, at the end (linear in the output length).
        parents, tokens, weights_at = [], [], []
        lengths = np.zeros(R, np.int64)  # tokens emitted, EOS included
        base = (np.arange(B) * K)[:, None]  # (B, 1) first row of each sentence
        row_limit = limit[rows]  # (R,)
        for step in range(int(limit.max())):
            logp, states, weights = model.decoder_step(prev, states, memory, row_len,
                                                       threads)  # (R, V)
            V = logp.shape[1]
            # A finished hypothesis continues only as itself (token EOS, cost 0).
            logp[finished] = -np.inf
            logp[finished, eos] = 0.0
            total = (scores[:, None] + logp).reshape(B, K * V)  # (B, K*V)
            order = _top_k(total, K)  # (B, K)
            parent = (base + order // V).reshape(R)  # (R,) rows the survivors extend
            token = (order % V).reshape(R)
            new_scores = np.take_along_axis(total, order, axis=1).reshape(R)
            # A sentence past its limit is stopped: its rows stay as they are (in place,
            # score and length kept, not finished), as if it had been decoded alone.
            stopped = step >= row_limit  # (R,)
            parent = np.where(stopped, np.arange(R), parent)
            token = np.where(stopped, eos, token)
            scores = np.where(stopped, scores, new_scores)
            was_finished = finished[parent]
            parents.append(parent)
            tokens.append(token)
            if attention:
                weights_at.append(weights)
            lengths = lengths[parent] + ~(was_finished | stopped)
            finished = was_finished | ((token == eos) & ~stopped)
            states = tuple(np.ascontiguousarray(s[:, parent]) for s in states)
            prev = token
            if not np.any(~finished & (step + 1 < row_limit)):
                break
    return _hypotheses(None, None, lengths, finished, scores, B, K, alpha, eos,
                       trace=(parents, tokens, weights_at if attention else None))


def _top_k(total, K):
    """(B, K) column indices of each row's K largest values of ``total`` (B, N), largest
    first, ties to the lower index: the first K of a stable argsort of -total, without
    sorting all N (a partition finds each row's K-th value; the values above it and the
    lowest-indexed ones equal to it are the K, then sorted stably)."""
    neg = -total
    N = neg.shape[1]
    if N <= 4 * K or np.isnan(neg).any():  # small, or NaN (sorted last): sort it all
        return np.argsort(neg, axis=1, kind="stable")[:, :K]
    kth = np.partition(neg, K - 1, axis=1)[:, K - 1:K]  # (B, 1) each row's K-th value
    below = neg < kth
    tied = neg == kth
    need = K - below.sum(axis=1, keepdims=True)  # >= 1: the K-th value itself is tied
    chosen = below | (tied & (np.cumsum(tied, axis=1) <= need))  # exactly K per row
    cols = np.nonzero(chosen)[1].reshape(-1, K)  # ascending within each row
    return np.take_along_axis(
        cols, np.argsort(np.take_along_axis(neg, cols, axis=1), axis=1, kind="stable"),
        axis=1)


def _trace(parents, tokens, weights_at, rows):
    """Histories of the final rows ``rows`` (n,), traced back through the search's steps
    -> (tokens (t, n), attention (n, t, S), or None when ``weights_at`` is None: none
    kept). Frees each step's weights once read."""
    t = len(parents)
    history = np.empty((t, len(rows)), np.int64)
    attn = None
    if weights_at is not None:
        dtype = np.result_type(np.float64, weights_at[0].dtype)  # as the search always gave
        attn = np.empty((len(rows), t, weights_at[0].shape[1]), dtype)
    row = rows
    for s in range(t - 1, -1, -1):
        history[s] = tokens[s][row]
        row = parents[s][row]  # the row that step s extended: its weights are its own
        if attn is not None:
            attn[:, s] = weights_at[s][row]
            weights_at[s] = None
    return history, attn


def _hypotheses(history, attn, lengths, finished, scores, B, K, alpha, eos, trace=None):
    """The search's rows -> Hypotheses, each sentence's K sorted by normalised score:
    from their histories (tokens (t, R), attention (t, R, S) or None) or, with ``trace``
    (the search's per-step parents, tokens and weights or None), by tracing them back
    (_trace)."""
    # a huge --alpha overflows length ** alpha to infinity, the limit it tends to: every
    # hypothesis of two or more symbols then scores -0.0, above any one-symbol one
    with np.errstate(over="ignore"):
        norm = scores / np.maximum(lengths, 1) ** alpha if alpha else scores.copy()
    norm = np.where(np.isfinite(scores), norm, -np.inf).reshape(B, K)
    order = np.argsort(-norm, axis=1, kind="stable")  # (B, K)
    rows = ((np.arange(B) * K)[:, None] + order).reshape(-1)
    if trace is None:
        history = history[:, rows]
        attention = None if attn is None else attn[:, rows].transpose(1, 0, 2)
    else:
        history, attention = _trace(*trace, rows)
    t = history.shape[0]
    tokens = history.T.reshape(B, K, t)
    # A row scored -inf holds no hypothesis (the beam is wider than the sequences there
    # are to find): no tokens, not finished.
    possible = np.isfinite(scores)
    finished = finished & possible
    lengths = np.where(possible, lengths, 0)
    n_tokens = (lengths[rows] - finished[rows]).reshape(B, K)  # EOS excluded
    tokens = np.where(np.arange(t)[None, None, :] < n_tokens[:, :, None], tokens, -1)
    return Hypotheses(tokens=tokens, lengths=n_tokens,
                      finished=finished[rows].reshape(B, K),
                      scores=scores[rows].reshape(B, K),
                      normalised=np.take_along_axis(norm, order, axis=1),
                      attention=None if attention is None
                      else attention.reshape(B, K, t, -1))
