"""Per-process memos of bounded size: what a task computes once and asks for again (a file
read, a fitted baseline, encoded splits), kept for the entries used last only, so a long
process that sees many files or options does not grow without bound."""
from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np


class Kept(OrderedDict):
    """A dict of at most ``size`` entries: storing one more forgets the one used least
    recently (storing and get() count as uses; ``in`` and ``[]`` do not)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get(self, key, default=None):
        if key not in self:
            return default
        self.move_to_end(key)
        return self[key]

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def rows_key(array: np.ndarray) -> tuple:
    """A memo key for an array's contents: its shape, dtype and the SHA-256 of its bytes
    (C order), so equal values key alike wherever they are stored."""
    array = np.ascontiguousarray(array)
    return array.shape, array.dtype.str, hashlib.sha256(array.tobytes()).hexdigest()


def frozen(arrays) -> tuple:
    """The arrays, made read-only: a memo hands the same objects to every caller, so one
    caller's in-place change must fail rather than alter what the next one gets."""
    for array in arrays:
        array.setflags(write=False)
    return tuple(arrays)
