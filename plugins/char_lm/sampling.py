"""Generating text from a trained character model, one step at a time.

Dimension legend: V vocabulary size. The model is a recurrent.protocols.Runner: the prime
is read in one forward call (state carried out), then each new character is one step().
Temperature 0 means greedy (argmax); top-k keeps only the k most likely characters.
Draws come from one numpy Generator seeded by the caller, so a seed fixes the text.
"""
from __future__ import annotations

import numpy as np


def next_char_distribution(logits: np.ndarray, temperature: float,
                           top_k: int | None) -> np.ndarray:
    """Probabilities (V,) float64 to sample the next character from, given logits (V,)."""
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < len(z):
        # Everything below the k-th largest logit is cut (ties at the threshold stay).
        kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max())
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
             top_k: int | None, seed: int | None) -> list[int]:
    """``length`` new character ids continuing ``prime_ids`` (P,) int64, P >= 1."""
    rng = np.random.default_rng(seed)
    logits, state = model.forward(prime_ids.reshape(-1, 1).astype(np.int64))  # (P, 1, V)
    last = logits[-1, 0]  # (V,): distribution of the character after the prime
    out: list[int] = []
    while len(out) < length:
        k = pick(last, temperature, top_k, rng)
        out.append(k)
        if len(out) < length:  # the step after the last character would be wasted
            step_logits, state = model.step(np.array([k], dtype=np.int64), state)  # (1, V)
            last = step_logits[0]
    return out
