"""Per-process memos of bounded size: what a task computes once and asks for again (a file
read, a fitted baseline, encoded splits), kept for the entries used last only, so a long
process that sees many files or options does not grow without bound."""
from __future__ import annotations

import hashlib
import os
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


def file_identity(path: str) -> tuple | None:
    """What says a file is unchanged since a memo read it: its device, inode, size, and
    modification and status-change times (ns); None for a path that cannot be read (its
    reader says why). Size and mtime alone miss a rewrite of the same size whose mtime
    was kept or set back (cp -p, rsync -t, touch -r); the status-change time cannot be
    set back, and a file replaced by another, or another pipe at the same /dev/fd path,
    has another inode."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a name the file-name encoding cannot hold
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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
