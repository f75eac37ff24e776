"""Per-process memos of bounded size: what a task computes once and asks for again (a file
read, a fitted baseline, encoded splits), kept for the entries used last only, so a long
process that sees many files or options does not grow without bound."""
from __future__ import annotations

from collections import OrderedDict


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
