"""recurrent.memo.Kept: the bounded per-process memo the tasks keep files, fits and
scores in."""
import numpy as np
import pytest

from recurrent.memo import Kept, frozen, rows_key


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


def test_rows_key_follows_the_values_not_the_storage():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert rows_key(a) == rows_key(np.asfortranarray(a)) == rows_key(a.copy())
    assert rows_key(a) != rows_key(a.reshape(4, 3))  # same bytes, other shape
    assert rows_key(a) != rows_key(a.astype(np.float32))
    b = a.copy()
    b[2, 3] = 11.5
    assert rows_key(a) != rows_key(b)


def test_frozen_arrays_refuse_in_place_changes():
    a, b = np.zeros(3), np.ones(2)
    out = frozen((a, b))
    assert out[0] is a and out[1] is b
    with pytest.raises(ValueError):
        a[0] = 1.0
    with pytest.raises(ValueError):
        b += 1.0


def test_forecast_component_memos_hand_out_read_only_arrays():
    """The smoothing and ETS memos give every caller the same arrays: a caller that
    wrote into them would change the next caller's forecasts."""
    from recurrent_plugins.forecast import ets, smoothing
    y = np.sin(np.arange(60) * 2 * np.pi / 12)[:, None] + 0.01 * np.arange(60)[:, None]
    fits = smoothing.fit(y[:48], 12, 3)
    first = smoothing.components(y, fits, 3)
    again = smoothing.components(y.copy(), fits, 3)
    assert all(u is v for u, v in zip(first, again))
    assert not any(array.flags.writeable for array in first)
    filled = y + 2.0
    parts = ets.components(filled, [None], 3)
    assert not any(array.flags.writeable for array in parts)
    np.testing.assert_array_equal(parts[0][:, :, 0], np.repeat(filled, 3, axis=1))
