"""Reading a text corpus, checking it, and mapping characters to ids.

Bad files fail here with a one-line UserError (missing, empty, binary, not UTF-8: see
recurrent.datafile, which reads every task's files), so the rest of the task can assume a
non-empty str. Character ids are int64 indices into the sorted vocabulary; encoding goes
through code points in bulk (no Python loop per char).
"""
from __future__ import annotations

import os
from importlib import resources

import numpy as np

from recurrent import datafile
from recurrent.errors import UserError

BUNDLED_NAME = "shakespeare_plays.txt.xz"
# What a user sees as the --data default (and what the run state records for it).
BUNDLED = "bundled:" + BUNDLED_NAME


def bundled_path() -> str:
    """Filesystem path of the compressed Shakespeare corpus shipped in the package."""
    return str(resources.files(__package__).joinpath("data", BUNDLED_NAME))


def resolve_path(data: str | None) -> str:
    """The file behind a --data value: None or BUNDLED mean the shipped corpus."""
    if data is None or data == "" or data == BUNDLED:
        return bundled_path()
    return os.path.abspath(os.path.expanduser(str(data)))


def shown(data: str | None) -> str:
    """How messages name the file of a --data value: the path as given (with two files
    of one name in different folders, the one meant), the shipped corpus by its name."""
    if data is None or data == "" or data == BUNDLED:
        return BUNDLED_NAME
    return str(data)


def read_text(path: str, form: str | None = None, label: str | None = None) -> str:
    """The text of one file (plain or compressed, see recurrent.datafile), in the Unicode
    normalisation form ``form`` (None: as it is); empty is an error, named by ``label``
    (default: ``path``)."""
    label = path if label is None else label
    text = datafile.read_text(path, label)
    if not text:
        raise UserError(f"{label} is empty: char-lm needs UTF-8 text")
    return datafile.normalized(text, form)


def _code_points(text: str) -> np.ndarray:
    # (N,) uint32: one code point per character, converted in C. A lone surrogate (bytes
    # that are not UTF-8 in a command-line argument or on stdin) passes as its code point,
    # so that encode names it as a character outside the vocabulary.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _describe(chars) -> str:
    shown = ", ".join(datafile.shown(c) for c in list(chars)[:5])
    more = len(chars) - 5
    return shown + (f" (and {more} more)" if more > 0 else "")


class Vocabulary:
    """The sorted characters of a corpus; id k is ``chars[k]``."""

    def __init__(self, chars):
        chars = list(chars)
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("vocabulary must be a non-empty list of single characters")
        if sorted(set(chars)) != chars:
            raise ValueError("vocabulary characters must be unique and sorted")
        self.chars = chars
        self._points = np.array([ord(c) for c in chars], dtype=np.uint32)  # (V,)

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls(chr(int(p)) for p in np.unique(_code_points(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.chars

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` outside the vocabulary, sorted."""
        return sorted(set(text) - set(self.chars))

    def encode(self, text: str, what: str = "text") -> np.ndarray:
        """(N,) int64 ids of ``text``; characters outside the vocabulary are a UserError
        naming them (``what`` says where the text came from)."""
        points = _code_points(text)
        ids = np.searchsorted(self._points, points)
        ids[ids == len(self._points)] = 0
        bad = self._points[ids] != points
        if bad.any():
            missing = sorted({chr(int(p)) for p in points[bad]})
            # "\r" missing from a vocabulary that has "\n", in a text with "\r\n": a
            # text saved with Windows line ends, scored by a run trained on one without
            line_ends = (" (the text has Windows line ends, \\r\\n, and the run was "
                         "trained on text with \\n alone: convert them, e.g. with dos2unix)"
                         if "\r" in missing and "\n" in self and "\r\n" in text else "")
            raise UserError(f"{what} has characters not in the model's vocabulary: "
                            f"{_describe(missing)}{line_ends}")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)
