"""Pairs of sequences for the seq2seq task: reading a TSV of source<TAB>target lines,
splitting them by source, vocabularies, and pair batches.

A line is ``source<TAB>target``: exactly two tab-separated fields (a third column, such
as the attribution of Tatoeba/ManyThings files, is refused with a hint to keep the first
two; runs saved before this rule split at the first tab). Blank lines are skipped. A first
line that names the columns (a header) is skipped as read_pairs says. The text is read in
Unicode normalisation form NFC (datafile.normalized), so that a composed "é" and "e" with
a combining accent are one symbol, in training, eval and predict alike (runs saved before
this read it as it is). Each side is read at character level (every character a symbol)
or whitespace-token level.
The split is fixed by a hash of the source text: 90% train, 5% valid, 5% test, so a
source (a word, for grapheme-to-phoneme) never crosses splits and every run of the same
file sees the same split, whatever its order.

Dimension legend: T steps (the longer side + 1), B pairs, S source symbols.
"""
from __future__ import annotations

import hashlib
import os
from importlib import resources

import numpy as np

from recurrent import datafile
from recurrent.errors import UserError
from recurrent.memo import file_identity
from recurrent.seq2seq import PAD_ID

BUNDLED_NAME = "cmudict_g2p.tsv.xz"
BUNDLED = "bundled:" + BUNDLED_NAME
LEVELS = ("char", "token")
SPLITS = ("train", "valid", "test")
SOURCE_SPECIALS = ("<pad>", "<unk>")  # PAD_ID = 0
TARGET_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
BOS, EOS, UNK = 1, 2, 3  # target ids; the source's <unk> is 1
SOURCE_UNK = 1


def resolve_path(data: str | None) -> str:
    """The file behind a --data value: None or BUNDLED mean the shipped dictionary."""
    if not data or data == BUNDLED:
        return str(resources.files(__package__).joinpath("data", BUNDLED_NAME))
    return os.path.abspath(os.path.expanduser(str(data)))


def shown(path: str) -> str:
    """How messages name the data file at ``path`` (resolve_path's): by its path, as every
    task names its files, so that of two files of one name in different folders (a
    training and an evaluation pairs.tsv) the one meant is clear; the shipped dictionary
    by its name."""
    return BUNDLED_NAME if path == resolve_path(None) else path


def symbols(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else text.split()


def join(symbols_: list[str], level: str) -> str:
    return "".join(symbols_) if level == "char" else " ".join(symbols_)


def split_of(source: str) -> str:
    """"train" / "valid" / "test" for a source text, from a hash of it (90/5/5)."""
    bucket = int.from_bytes(hashlib.blake2b(source.encode("utf-8"), digest_size=4).digest(),
                            "big") % 100
    return "train" if bucket < 90 else "valid" if bucket < 95 else "test"


def spread(items: list, n: int) -> list:
    """``n`` of ``items`` spread evenly over their order (all of them when n is 0 or not
    fewer): --max-train and --max-eval take these rather than the first n, which in a
    sorted file (CMUdict is alphabetical) would all start with the same letters."""
    if not n or n >= len(items):
        return list(items)
    return [items[i] for i in (np.arange(n) * len(items)) // n]


class _Cache:
    """The pairs of one file, kept while it is unchanged (recurrent.memo.file_identity)
    and read by the same rules: every epoch and evaluation asks again."""
    key = None
    value = None


# Column names that make a first line a header (compared lower-cased, as whole fields or
# their parts between "_", "-" or spaces): "source<TAB>target", "word<TAB>pronunciation",
# "src_text<TAB>tgt_text". A header of other names (language codes such as "eng<TAB>fra")
# needs --header.
HEADER_WORDS = frozenset((
    "source", "target", "src", "tgt", "input", "output", "text", "word", "words",
    "grapheme", "graphemes", "phoneme", "phonemes", "phones", "pronunciation",
    "sentence", "translation", "question", "answer", "prompt", "response"))


def looks_like_header(source: str, target: str) -> bool:
    """Both fields of a line are column names (HEADER_WORDS)."""
    def named(field):
        parts = field.strip().lower().replace("_", " ").replace("-", " ").split()
        return bool(parts) and all(part in HEADER_WORDS for part in parts)
    return named(source) and named(target)


def reads_as_pair(line: str, pairs: list, source_level: str, target_level: str) -> bool:
    """Whether ``line``, a first line skipped as a header, reads as a pair like
    ``pairs``: two fields, neither of them column names (looks_like_header), the source
    made of symbols (at ``source_level``) of the other sources and the target of symbols
    (at ``target_level``) of the other targets, and not both of them the other way round
    as well, as any short names can be when the two sides share their symbols (eng<TAB>fra
    over English and French text): only then is the line told apart from a header."""
    source, tab, target = line.partition("\t")
    source, target = source.strip(), target.strip()
    if not tab or "\t" in target or not source or not target \
            or looks_like_header(source, target):
        return False
    sources, targets = set(), set()
    for s, t in pairs:
        sources.update(symbols(s, source_level))
        targets.update(symbols(t, target_level))

    def made_of(text, level, known):
        return set(symbols(text, level)) <= known
    return (made_of(source, source_level, sources) and made_of(target, target_level, targets)
            and not (made_of(source, target_level, targets)
                     and made_of(target, source_level, sources)))


def read_pairs(path: str, label: str | None = None, **rules) -> tuple[list, str]:
    """[(source, target), ...] of a TSV file and its content fingerprint
    (read_numbered_pairs without the line numbers)."""
    return read_numbered_pairs(path, label, **rules)[:2]


def read_numbered_pairs(path: str, label: str | None = None, **rules) -> tuple[list, str, list]:
    """[(source, target), ...] of a TSV file, its content fingerprint and the line number
    of each pair (blank lines and a header hold none); see _read."""
    return _read(path, label, **rules)[:3]


def skipped_header(path: str, label: str | None = None, **rules) -> tuple[int, str] | None:
    """(line number, text) of the first line that read_pairs with the same rules skipped
    as a header, or None when it skipped none."""
    return _read(path, label, **rules)[3]


def _read(path: str, label: str | None = None, *,
          header: bool | None = False, two_fields: bool = False,
          form: str | None = None, strip: bool = False) -> tuple[list, str, list, tuple | None]:
    """[(source, target), ...] of a TSV file, its content fingerprint, the line number
    of each pair (blank lines and a header hold none) and the (line number, text) of the
    header skipped (None: none); UserError (one
    line, naming the line number) for a line without a tab, with an empty side or, with
    ``two_fields``, with more than two fields.
    ``header``: True skips the first non-blank line, None skips it when it looks like a
    header (looks_like_header), False reads it as a pair. ``form``: the Unicode
    normalisation form the text is read in (None: as it is). ``strip``: blanks around
    each field are dropped (`word <TAB>drow`: a space before the tab would otherwise be a
    source symbol of every pair, one no input typed without it has). The fingerprint is
    that of the file's text as it is."""
    identity = file_identity(path)
    key = None if identity is None else (path, identity, header, two_fields, form, strip)
    if key is not None and key == _Cache.key:
        return _Cache.value
    label = label or shown(path)
    raw = datafile.read_text(path, label)
    text = datafile.normalized(raw, form)
    pairs, numbers, skipped = [], [], None
    for number, line in enumerate(datafile.lines(text), 1):
        if not line.strip():
            continue
        first = not pairs and skipped is None
        if first and header:
            skipped = (number, line)
            continue
        source, tab, target = line.partition("\t")
        if not tab:
            raise UserError(f"{label} line {number}: expected source<TAB>target, found no "
                            f"tab")
        if first and header is None and looks_like_header(source, target):
            skipped = (number, line)
            continue
        if two_fields and "\t" in target:
            raise UserError(f"{label} line {number}: {line.count(chr(9)) + 1} tab-separated "
                            f"fields, expected 2 (source<TAB>target): keep the first two "
                            f"columns, e.g. cut -f1,2 FILE > pairs.tsv, or write the tabs "
                            f"inside a text as spaces")
        if strip:
            source, target = source.strip(), target.strip()
        if not source.strip() or not target.strip():
            raise UserError(f"{label} line {number}: the "
                            f"{'source' if not source.strip() else 'target'} is empty")
        pairs.append((source, target))
        numbers.append(number)
    if not pairs:
        raise UserError(f"{label} holds no source<TAB>target pairs")
    value = (pairs, datafile.fingerprint(raw), numbers, skipped)
    if key is not None:
        _Cache.key, _Cache.value = key, value
    return value


def reading(state: dict) -> dict:
    """read_pairs' rules for a run's own data, from its task state: runs saved before
    the state recorded them read every line as a pair, split at the first tab, with the
    text as it is (blanks around the tab kept)."""
    return {"header": state.get("header", False),
            "two_fields": bool(state.get("two_fields", False)),
            "form": state.get("unicode"),
            "strip": bool(state.get("strip", False))}


# Specials that mark positions, never a symbol of the data: a literal "<pad>" in a file
# is an unknown symbol (read as <unk> in training, refused in predict), not padding. The
# same string among a vocabulary's symbols (a source's "<s>": the source specials are
# <pad> and <unk> only) is a symbol like any other.
MARKERS = ("<pad>", "<s>", "</s>")


class Vocabulary:
    """Symbols <-> ids; ``specials`` first (PAD_ID = 0), then the sorted symbols."""

    def __init__(self, items: list[str]):
        self.items = list(items)
        specials = next((sp for sp in (TARGET_SPECIALS, SOURCE_SPECIALS)
                         if tuple(self.items[:len(sp)]) == sp), ())
        self.index = {s: i for i, s in enumerate(self.items)
                      if not (s in MARKERS and i < len(specials))}

    @classmethod
    def build(cls, sequences, specials):
        seen = sorted({s for seq in sequences for s in seq} - set(specials))
        return cls(list(specials) + seen)

    def encode(self, seq: list[str], unk: int) -> np.ndarray:
        return np.array([self.index.get(s, unk) for s in seq], np.int64)

    def unknown(self, seq: list[str]) -> list[str]:
        return sorted({s for s in seq if s not in self.index})

    def decode(self, ids) -> list[str]:
        return [self.items[i] for i in ids]

    def __len__(self):
        return len(self.items)


def padded_steps(sources: list, targets: list) -> np.ndarray:
    """(B,) the steps pair_batch pads each encoded pair to: its source length or its
    target length + 1 (the EOS step), whichever is longer. What batching by length
    groups and caps: a target much longer than its source (a number -> its words) would
    otherwise pad every short-source pair of its batch to its length."""
    return np.array([max(len(s), len(t) + 1) for s, t in zip(sources, targets)], np.int64)


def pair_batch(sources: list, targets: list) -> dict:
    """Encoded pairs -> one batch as the trainer and Seq2SeqModel read it:
    x (T, B, 2) [source ids | BOS + target ids], y (T, B) target ids + EOS, lengths (B,)
    target lengths + 1 (the EOS step), all padded with PAD_ID."""
    B = len(sources)
    T = max(max(len(s) for s in sources), max(len(t) for t in targets) + 1)
    x = np.full((T, B, 2), PAD_ID, np.int64)
    y = np.full((T, B), PAD_ID, np.int64)
    lengths = np.zeros(B, np.int64)
    for b, (s, t) in enumerate(zip(sources, targets)):
        x[:len(s), b, 0] = s
        x[0, b, 1] = BOS
        x[1:len(t) + 1, b, 1] = t
        y[:len(t), b] = t
        y[len(t), b] = EOS
        lengths[b] = len(t) + 1
    return {"x": x, "y": y, "lengths": lengths}


def source_batch(sources: list) -> np.ndarray:
    """Encoded sources -> (S, B) ids padded with PAD_ID (what decoding reads)."""
    S = max(1, max(len(s) for s in sources))
    src = np.full((S, len(sources)), PAD_ID, np.int64)
    for b, s in enumerate(sources):
        src[:len(s), b] = s
    return src
