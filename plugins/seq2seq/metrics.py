"""Metrics of transductions and the baselines they are compared with.

BLEU and chrF come from sacrebleu (corpus level, its default settings otherwise). BLEU's
n-grams are of the target's own symbols: token-level targets are scored as already
tokenized (tokenize "none": the phonemes of g2p), character-level targets character by
character (tokenize "char", whitespace not counted), so a one-word target (a
transliteration, a spelling) has 2- to 4-grams too and a perfect copy scores 100 (word
tokenization, "13a", would score it 0). Outputs all shorter than 4 symbols are scored over
the n-gram orders they have (sacrebleu's effective order), so a perfect output is 100
there too, not 0. Exact match: the fraction of
outputs equal to their reference. Symbol error rate: the edit distance (insertions,
deletions, substitutions) summed over the pairs, over the reference symbols; for
grapheme-to-phoneme it is the phoneme error rate (PER), and 1 - exact match the word
error rate (WER), as the g2p literature reports them.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from recurrent.errors import UserError
from recurrent.extras import install_hint

from .data import join


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two sequences (unit costs)."""
    return int(edit_distances([a], [b])[0])


# a vectorised pass of edit_distances holds at most this many pairs, and pads them to at
# most CELLS cells (pairs x (longest side + 1)): one long pair runs with its like
CHUNK = 1024
CELLS = 1 << 20


def edit_distances(first: list, second: list) -> np.ndarray:
    """(N,) Levenshtein distances (unit costs) of the pairs (first[i], second[i]),
    sequences of hashable symbols (compared with ==, as dict keys).

    The dynamic programme runs one row at a time for many pairs at once (numpy): a pair's
    shorter side gives the rows, its longer side the columns. A row is the previous one's
    substitutions and deletions, then the insertions along the row in one pass:
    D[j] = min over k <= j of C[k] + (j - k) = j + (running minimum of C[k] - k). Pairs
    run in chunks of similar width (at most CHUNK pairs and CELLS padded cells), sorted by
    their row count within a chunk, so the pairs still running at row i are a prefix; the
    columns past a pair's own length are padding that its columns never read (a cell
    depends only on cells to its left and above)."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} first sequences but {len(second)} second ones")
    ids: dict = {}
    short, long_ = [], []
    for a, b in zip(first, second):
        a = [ids.setdefault(x, len(ids)) for x in a]
        b = [ids.setdefault(x, len(ids)) for x in b]
        short.append(a if len(a) <= len(b) else b)
        long_.append(b if len(a) <= len(b) else a)
    n_rows = np.array([len(a) for a in short], np.int64)
    n_cols = np.array([len(b) for b in long_], np.int64)
    out = np.empty(len(short), np.int64)
    order = np.argsort(n_cols, kind="stable")  # by width, so a chunk's padding is small
    start = 0
    while start < len(order):
        stop = start + 1
        while (stop < len(order) and stop - start < CHUNK
               and (stop + 1 - start) * (n_cols[order[stop]] + 1) <= CELLS):
            stop += 1
        pick = order[start:stop]
        pick = pick[np.argsort(-n_rows[pick], kind="stable")]  # most rows first
        out[pick] = _distances([short[i] for i in pick], [long_[i] for i in pick])
        start = stop
    return out


def _distances(rows: list, cols: list) -> np.ndarray:
    """edit_distances of pairs whose row sides are sorted by length, longest first."""
    n = len(rows)
    row_len = np.array([len(a) for a in rows], np.int64)
    col_len = np.array([len(b) for b in cols], np.int64)
    height, width = (int(row_len[0]) if n else 0), int(col_len.max(initial=0))
    a = np.full((n, height), -1, np.int64)  # padding never compared: rows stop first
    b = np.full((n, width), -2, np.int64)  # padding columns are never read
    for i, (x, y) in enumerate(zip(rows, cols)):
        a[i, :len(x)] = x
        b[i, :len(y)] = y
    j = np.arange(width + 1, dtype=np.int64)
    d = np.tile(j, (n, 1))  # row 0: j insertions
    running = np.searchsorted(-row_len, -np.arange(1, height + 1), side="right")
    for i in range(1, height + 1):
        m = int(running[i - 1])  # pairs with at least i rows: a prefix
        prev = d[:m]
        c = np.empty((m, width + 1), np.int64)
        c[:, 0] = i
        np.minimum(prev[:, :-1] + (a[:m, i - 1:i] != b[:m]), prev[:, 1:] + 1, out=c[:, 1:])
        c -= j
        np.minimum.accumulate(c, axis=1, out=c)
        c += j
        d[:m] = c
    return d[np.arange(n), col_len]


def require_sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise UserError(f"the seq2seq task scores BLEU and chrF with sacrebleu, which is "
                        f"not installed: {install_hint('seq2seq')}") from None
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
    errors = int(edit_distances(hypotheses, references).sum())
    ref_symbols = sum(len(r) for r in references)
    hyp_text = [join(h, level) for h in hypotheses]
    ref_text = [[join(r, level) for r in references]]
    tokenize = "none" if level == "token" else "char"  # n-grams of the target's symbols
    # effective order: n-gram orders no output is long enough to hold are left out of the
    # geometric mean, so targets of under 4 symbols (digits, short words) are not all
    # scored 0 however right they are; with any output of 4 symbols it changes nothing
    bleu = sacrebleu.corpus_bleu(hyp_text, ref_text, tokenize=tokenize,
                                 use_effective_order=True).score
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
