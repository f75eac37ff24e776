"""Tokenizer, vocabulary and padded batches of token ids.

Dimension legend: T time steps (tokens, padded to the longest row of a batch), B batch rows,
V vocabulary size.
"""
from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections import Counter

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# Version 1 (runs made before tokenizer versions existed): a word (letters/digits/
# underscore, with inner apostrophes: "it's", "don't") or any single other non-space
# character (punctuation, symbols). Every non-space character lands in some token, so a
# non-blank text never tokenizes to nothing.
_TOKEN_V1 = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")

TOKENIZER = 3  # the version new runs use (their task state's "tokenizer")
TOKENIZERS = (1, 2, 3)  # the versions this code can apply

# Version 3: the letters of scripts written without spaces between words are a token
# each, so that a text in them is not one token per run between punctuation marks (a
# whole sentence, which no other text shares: <unk> outside training). The scripts'
# Unicode blocks, (first, last) code points:
UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F),  # Myanmar
    (0x1780, 0x17FF), (0x19E0, 0x19FF),  # Khmer
    (0x3005, 0x3007), (0x3021, 0x3029), (0x3031, 0x3035), (0x3038, 0x303C),  # ideographic
    (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x1B000, 0x1B16F),  # Hiragana, Katakana
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3FFFF),  # Han
)


def _char_class(codes: list[int]) -> str:
    """The regex character class body of ``codes`` (ascending), as ranges."""
    ranges, start = [], None
    for i, code in enumerate(codes):
        if start is None:
            start = code
        if i + 1 == len(codes) or codes[i + 1] != code + 1:
            ranges.append(f"\\U{start:08x}-\\U{code:08x}")
            start = None
    return "".join(ranges)


@functools.lru_cache(maxsize=1)
def _unicode():
    """(translation table of versions 2 and 3, their compiled token patterns {2: ..., 3:
    ...}), built on first use from the Unicode database (a scan of every code point).
    The table deletes invisible format characters and variation selectors, writes the
    zero-width space (a word-break hint in Thai or Khmer) as a space and the typographic
    apostrophe as '."""
    marks, table = [], {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category[0] == "M":
            marks.append(code)
        elif category == "Cf":
            table[code] = None
    # the word characters (\w: alphanumeric) of the unspaced blocks, their marks apart
    unspaced = [code for first, last in UNSPACED for code in range(first, last + 1)
                if chr(code).isalnum() and unicodedata.category(chr(code))[0] != "M"]
    # variation selectors choose a glyph's presentation (emoji or text), not a character
    for first, last in ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF)):
        table.update(dict.fromkeys(range(first, last + 1)))
    table[0x200B] = " "
    table[0x2019] = "'"  # "don’t" is "don't"
    m, one = f"[{_char_class(marks)}]", _char_class(unspaced)
    word = rf"(?:\w|{m})+"
    word3 = rf"(?:[^\W{one}]|{m})+"  # a word char outside the unspaced scripts
    return table, {2: re.compile(rf"{word}(?:['\u2019]{word})*|[^\w\s]{m}*"),
                   3: re.compile(rf"[{one}]{m}*|{word3}(?:['\u2019]{word3})*|[^\w\s]{m}*")}


def tokenize(text: str, version: int = TOKENIZER) -> list[str]:
    r"""Lower-cased words and punctuation: "Not bad, really!" -> [not, bad, ",", really, "!"].

    Version 3 is version 2 but that each letter or digit of a script written without
    spaces (the blocks UNSPACED: Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar), with
    the combining marks that follow it, is a token of its own: "映画が好き" -> [映, 画,
    が, 好, き]. A text without such letters tokenizes as under version 2.
    Version 2, in this order: the translation table of _unicode (invisible format
    characters such as soft hyphens, zero-width joiners, direction marks and a byte-order
    mark, and variation selectors deleted; the zero-width space a space; U+2019 written
    as '), Unicode NFKC (composed and decomposed accents, full-width letters, ligatures
    become one form), the table again (for what NFKC makes), lower-casing; then words
    (letters, digits, underscore and combining marks, such as Devanagari or Arabic vowel
    signs, with inner apostrophes) or any single other non-space character with the
    combining marks that follow it. So text that looks the same tokenizes the same.
    Version 1 (runs that recorded no version): the pattern ``\w+(?:['\u2019]\w+)*|[^\w\s]``
    on the lower-cased text."""
    if version == 1:
        return _TOKEN_V1.findall(text.lower())
    if version not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer version {version!r}; this code knows "
                         f"{', '.join(map(str, TOKENIZERS))}")
    return _unicode()[1][version].findall(normalize(text).lower())


def normalize(text: str) -> str:
    """The text as tokenizer versions 2 and 3 read it before lower-casing: the translation
    table of _unicode, Unicode NFKC, the table again (tokenize's docstring), so that text
    that looks the same is the same string."""
    table = _unicode()[0]
    return unicodedata.normalize("NFKC", text.translate(table)).translate(table)


def is_blank(text: str, version: int = TOKENIZER) -> bool:
    """No token under this tokenizer version: nothing but whitespace (and, in versions 2
    and 3, the invisible characters they delete)."""
    if version == 1:
        return not text.strip()
    return not text.translate(_unicode()[0]).strip()


def build_vocab(token_lists, max_vocab: int, min_freq: int) -> list[str]:
    """Id -> token list: <pad>, <unk>, then tokens seen at least ``min_freq`` times, most
    frequent first (ties alphabetically, so the result is deterministic), ``max_vocab``
    entries in all (0 = no limit)."""
    if max_vocab and max_vocab < 3:
        raise ValueError(f"max_vocab must be 0 (no limit) or at least 3, got {max_vocab}")
    if min_freq < 1:
        raise ValueError(f"min_freq must be at least 1, got {min_freq}")
    counts = Counter(tok for tokens in token_lists for tok in tokens)
    ranked = sorted((tok for tok, n in counts.items() if n >= min_freq and tok not in (PAD, UNK)),
                    key=lambda tok: (-counts[tok], tok))
    vocab = [PAD, UNK] + ranked
    return vocab[:max_vocab] if max_vocab else vocab


def encode(tokens: list[str], index: dict[str, int], max_tokens: int) -> list[int]:
    """Token ids, unknown tokens -> <unk>, cut to the first ``max_tokens`` (0 = no cut)."""
    if max_tokens:
        tokens = tokens[:max_tokens]
    return [index.get(tok, UNK_ID) for tok in tokens]


def pad_batch(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Time-major padded ids and lengths: x (T, B) int64 filled with <pad>, lengths (B,) int64."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)  # (B,)
    if len(lengths) == 0 or lengths.min() < 1:
        raise ValueError("pad_batch needs at least one sequence and no empty sequence")
    x = np.full((int(lengths.max()), len(sequences)), PAD_ID, dtype=np.int64)  # (T, B)
    for b, seq in enumerate(sequences):
        x[:len(seq), b] = seq
    return x, lengths


# The most padded positions (rows x their longest length) a batch of length_buckets may
# hold: one very long row among short ones (a 20,000-symbol line in a seq2seq file) would
# pad its whole batch to its length, so such a batch is cut before it.
# Far above what ordinary data reach (sentiment: 32 rows x 400 tokens), whose batches it
# leaves as they are.
MAX_BATCH_SLOTS = 1 << 18


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                   pool_batches: int = 50) -> list[np.ndarray]:
    """Split row positions 0..N-1 into batches of similar length (less padding, less work).

    With ``rng``: shuffle, sort by length within pools of ``pool_batches`` batches, cut, and
    shuffle the batch order, so batches differ from epoch to epoch. Without: sort all rows by
    length (stable) and cut, for deterministic evaluation. A batch is cut shorter where its
    rows would hold more than MAX_BATCH_SLOTS padded positions (_within_slots).
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [part for i in range(0, n, batch_size)
                for part in _within_slots(order[i:i + batch_size], lengths)]
    order = rng.permutation(n)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, n, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(part for i in range(0, len(chunk), batch_size)
                       for part in _within_slots(chunk[i:i + batch_size], lengths))
    return [batches[i] for i in rng.permutation(len(batches))]


def _within_slots(rows: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """``rows`` (sorted by length, shortest first) as consecutive parts each of at most
    MAX_BATCH_SLOTS padded positions (rows x the part's longest length); a row longer
    than that on its own is a part of its own. Usually [rows] itself."""
    size = lengths[rows]
    if len(rows) * int(size[-1]) <= MAX_BATCH_SLOTS:
        return [rows]
    parts, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or (i - start + 1) * int(size[i]) > MAX_BATCH_SLOTS:
            parts.append(rows[start:i])
            start = i
    return parts
