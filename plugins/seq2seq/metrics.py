"""Metrics of transductions and the baselines they are compared with.

BLEU and chrF come from sacrebleu (corpus level, its default settings otherwise). BLEU's
n-grams are of the target's own symbols: token-level targets are scored as already
tokenized (tokenize "none": the phonemes of g2p), character-level targets character by
character (tokenize "char", whitespace not counted), so a one-word target (a
transliteration, a spelling) has 2- to 4-grams too and a perfect copy scores 100 (word
tokenization, "13a", would score it 0). Exact match: the fraction of
outputs equal to their reference. Symbol error rate: the edit distance (insertions,
deletions, substitutions) summed over the pairs, over the reference symbols; for
grapheme-to-phoneme it is the phoneme error rate (PER), and 1 - exact match the word
error rate (WER), as the g2p literature reports them.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from recurrent.errors import UserError

from .data import join


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two sequences (unit costs), one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def require_sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise UserError("the seq2seq task scores BLEU and chrF with sacrebleu, which is "
                        "not installed: pip install 'recurrent[seq2seq]'") from None
    return sacrebleu


def score(hypotheses: list[list[str]], references: list[list[str]], level: str,
          g2p: bool) -> dict:
    """Metrics of hypotheses against references (lists of symbols, paired; at least
    one pair: prepare() refuses a file whose validation or test split is empty)."""
    sacrebleu = require_sacrebleu()
    n = len(references)
    if not n:
        raise UserError("no pairs to score")
    exact = sum(h == r for h, r in zip(hypotheses, references))
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    ref_symbols = sum(len(r) for r in references)
    hyp_text = [join(h, level) for h in hypotheses]
    ref_text = [[join(r, level) for r in references]]
    tokenize = "none" if level == "token" else "char"  # n-grams of the target's symbols
    bleu = sacrebleu.corpus_bleu(hyp_text, ref_text, tokenize=tokenize).score
    chrf = sacrebleu.corpus_chrf(hyp_text, ref_text).score
    out = {"exact": exact / n if n else 0.0, "bleu": float(bleu), "chrf": float(chrf)}
    rate = errors / ref_symbols if ref_symbols else 0.0
    if g2p:
        out.update(wer=1.0 - out["exact"], per=rate)
    else:
        out["ser"] = rate
    out["pairs"] = n
    return out


def majority_mapping(pairs: list[tuple[list, list]]) -> dict:
    """Each source symbol -> its most frequent target symbol under the 1-1 alignment of
    the pairs whose two sides have equal length (ties: the smallest symbol). A
    position-by-position alignment needs no model, and for grapheme-to-phoneme the
    equal-length words align mostly letter to phoneme."""
    counts = defaultdict(Counter)
    for s, t in pairs:
        if len(s) == len(t):
            for a, b in zip(s, t):
                counts[a][b] += 1
    return {a: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for a, c in counts.items()}


def apply_mapping(mapping: dict, source: list) -> list:
    """Each source symbol replaced by its mapped target symbol (unmapped ones dropped)."""
    return [mapping[a] for a in source if a in mapping]
