"""recurrent.memo.Kept: the bounded per-process memo the tasks keep files, fits and
scores in."""
from recurrent.memo import Kept


def test_kept_forgets_the_entry_used_least_recently():
    kept = Kept(2)
    kept["a"], kept["b"] = 1, 2
    assert kept.get("a") == 1  # a use: "b" is now the oldest
    kept["c"] = 3
    assert list(kept) == ["a", "c"] and "b" not in kept
    assert kept.get("b") is None and kept.get("b", 0) == 0
    kept["a"] = 4  # storing again is a use too
    kept["d"] = 5
    assert dict(kept) == {"a": 4, "d": 5}
    kept.size = 0
    kept["e"] = 6
    assert len(kept) == 0
