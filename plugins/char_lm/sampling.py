"""Generating text from a trained character model, one step at a time.

Dimension legend: V vocabulary size. The model is a recurrent.protocols.Runner: the prime
is read in forward calls (one, unless it is long at a large vocabulary; state carried
out), then each new character is one step().
Temperature 0 means greedy (argmax); top-k keeps only the k most likely characters.
Draws come from one numpy Generator seeded by the caller, so a seed fixes the text.

`predict --stream` (next_char_stream) reads text line by line through a StreamPool of one
stream and answers each line with the most likely next characters.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from recurrent import datafile
from recurrent.errors import UserError


def next_char_distribution(logits: np.ndarray, temperature: float,
                           top_k: int | None) -> np.ndarray:
    """Probabilities (V,) float64 to sample the next character from, given logits (V,)."""
    z = logits.astype(np.float64)
    if top_k is not None and top_k < len(z):
        # Everything below the k-th largest logit is cut (ties at the threshold stay).
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z = np.where(z >= kth, z, -np.inf)
    # The maximum is subtracted before dividing: at a tiny temperature (1e-320) the logits
    # themselves would overflow to inf and give NaN; this way the most likely stay at 0 and
    # the others overflow harmlessly to -inf (probability 0).
    with np.errstate(over="ignore"):
        p = np.exp((z - z.max()) / temperature)
    return p / p.sum()


def pick(logits: np.ndarray, temperature: float, top_k: int | None,
         rng: np.random.Generator) -> int:
    """One character id from logits (V,): argmax at temperature 0, else a seeded draw."""
    if temperature == 0.0:
        return int(np.argmax(logits))
    p = next_char_distribution(logits, temperature, top_k)
    # Inverse-CDF draw: one uniform per character, so a seed reproduces the text exactly.
    k = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
    return min(k, len(p) - 1)


def generate(model, prime_ids: np.ndarray, length: int, temperature: float,
             top_k: int | None, seed: int | None, prime_chunk: int | None = None) -> list[int]:
    """``length`` new character ids continuing ``prime_ids`` (P,) int64, P >= 1."""
    return list(each_generated(model, prime_ids, length, temperature, top_k, seed,
                               prime_chunk))


def each_generated(model, prime_ids: np.ndarray, length: int, temperature: float,
                   top_k: int | None, seed: int | None,
                   prime_chunk: int | None = None) -> Iterator[int]:
    """generate()'s ids one at a time, each as soon as it is drawn (a long text can be
    shown as it grows). ``prime_chunk``: at most this many prime characters per forward
    call, the state carried from one to the next, so that a long prime at a large
    vocabulary never holds all its (P, 1, V) logits at once (None: one call)."""
    rng = np.random.default_rng(seed)
    x = prime_ids.reshape(-1, 1).astype(np.int64)  # (P, 1)
    step = len(x) if prime_chunk is None else max(1, int(prime_chunk))
    logits, state = model.forward(x[:step])  # (chunk, 1, V)
    for start in range(step, len(x), step):
        logits, state = model.forward(x[start:start + step], state=state)
    last = logits[-1, 0]  # (V,): distribution of the character after the prime
    for n in range(1, length + 1):
        k = pick(last, temperature, top_k, rng)
        yield k
        if n < length:  # the step after the last character would be wasted
            step_logits, state = model.step(np.array([k], dtype=np.int64), state)  # (1, V)
            last = step_logits[0]


def next_char_stream(model, vocab, top_k: int, prime: str | None, line_break: str = "\n",
                     form: str | None = None):
    """answer(line) -> {"text": line, "next": [[char, probability], ...]}: the line is read
    as the continuation of everything before it, and the answer holds the ``top_k`` most
    likely characters to follow it (probabilities at temperature 1, most likely first).
    The ``line_break`` between two lines (the training text's: "\n" or "\r\n") is read at
    the start of the next line (left out when the vocabulary lacks its characters), so
    the answer to a line is about the character right after its last one. ``prime`` is
    read first, answered by nothing. A line with characters outside the vocabulary
    raises UserError and reads nothing. ``form``: the Unicode normalisation form the
    prime and each line are read in (the run's; None: as they are)."""
    from recurrent import StreamPool
    pool = StreamPool(model, capacity=1, softmax=True)
    pool.open(0)
    newline = all(c in vocab for c in line_break)
    last = {"p": None, "pending": ""}  # the latest distribution; a line break to read

    def read(ids):
        # the whole line in one read: the (V,) distribution after its last character
        if len(ids):
            last["p"] = pool.read(0, ids)

    if prime:
        prime = datafile.check_utf8(prime, "--prime")
        read(vocab.encode(datafile.normalized(prime, form), "--prime"))

    def answer(line):
        ids = vocab.encode(last["pending"] + datafile.normalized(line, form), "the line")
        if last["p"] is None and len(ids) == 0:
            raise UserError("nothing to continue yet: the first line (or --prime) must "
                            "have characters")
        read(ids)
        last["pending"] = line_break if newline else ""
        p = last["p"]
        top = np.argsort(-p, kind="stable")[:top_k]
        return {"text": line, "next": [[vocab.chars[k], round(float(p[k]), 6)] for k in top]}

    return answer
