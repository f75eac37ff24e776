"""A recurrent state as users see it (h_n, or a tuple such as (h_n, c_n)) and as a list."""
from __future__ import annotations

import numpy as np


def state_arrays(state) -> list:
    """A layer's state (one array, or a tuple of arrays) as a list of arrays; [] for None."""
    if state is None:
        return []
    return [state] if isinstance(state, np.ndarray) else list(state)


def pack_state(arrays):
    """Inverse of state_arrays: None for [], the array for one, else a tuple."""
    if not arrays:
        return None
    return arrays[0] if len(arrays) == 1 else tuple(arrays)
