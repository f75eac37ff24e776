"""A dict that records which of its keys were read: for `recurrent eval RUN --data FILE`,
which hands the task its options with config["eval_data"] = FILE and must not print a task
that never looked at the file as the file's figures (recurrent.protocols.Task says a task
reads that file; one that does not would score its test split under FILE's name).

Every way of reading a value counts as reading its key (``[]``, get, ``in``, and the
whole-dict views, copies and iteration, which count as reading every key), so a task that
copies its options before reading them is never taken for one that ignores a key.
"""
from __future__ import annotations


class KeyReads(dict):
    """dict(...) that adds each key read to ``self.read``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set = set()

    def _all(self):
        self.read.update(super().keys())

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)

    def pop(self, key, *default):
        self.read.add(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self.read.add(key)
        return super().setdefault(key, default)

    def __iter__(self):
        self._all()
        return super().__iter__()

    def keys(self):
        self._all()
        return super().keys()

    def values(self):
        self._all()
        return super().values()

    def items(self):
        self._all()
        return super().items()

    def copy(self):
        self._all()
        return dict(super().items())

    def __reduce_ex__(self, protocol):  # copy.copy / copy.deepcopy / pickle
        self._all()
        return (dict, (dict(super().items()),))

    def __or__(self, other):
        self._all()
        return dict(super().items()) | other
