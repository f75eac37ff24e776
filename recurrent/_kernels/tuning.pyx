"""The settings every kernel call reads (tuning.pxd): defaults, and setting them from
Python (recurrent.tuning decides what to set)."""
from libc.limits cimport INT_MAX

cdef Tuning _current = Tuning(LSTM_IN_TILE_MIN_ROWS, ROW_PARTS, MAX_GATE_BLOCK,
                              INFER_CHUNK_BYTES, MIN_PARALLEL_FLOPS)

_LARGEST = 1 << 40
# name -> (default, smallest allowed value, largest allowed value); row_parts is read as a
# C int (_rows.pxd row_block), so a larger value would wrap to zero or a negative count
_FIELDS = {
    "lstm_in_tile_min_rows": (LSTM_IN_TILE_MIN_ROWS, 1, _LARGEST),
    "row_parts": (ROW_PARTS, 1, INT_MAX),
    "max_gate_block": (MAX_GATE_BLOCK, 16, _LARGEST),
    "infer_chunk_bytes": (INFER_CHUNK_BYTES, 4096, _LARGEST),
    "min_parallel_flops": (MIN_PARALLEL_FLOPS, 0, _LARGEST),
}


cdef const Tuning* tuning() noexcept nogil:
    return &_current


def defaults():
    """The fixed defaults, {name: int}."""
    return {name: int(default) for name, (default, _, _) in _FIELDS.items()}


def current():
    """The settings in use, {name: int}."""
    return {name: int(value) for name, value in (<dict> _current).items()}


def check(settings):
    """`settings` ({name: int}) completed with the defaults for the names left out;
    ValueError (one line) for an unknown name or a value out of range."""
    unknown = sorted(set(settings) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown kernel setting(s): {', '.join(map(str, unknown))}")
    values = defaults()
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"kernel setting {name}: expected an int, got {value!r}")
        _, smallest, largest = _FIELDS[name]
        if not smallest <= value <= largest:
            raise ValueError(f"kernel setting {name}: {value} is out of range "
                             f"[{smallest}, {largest}]")
        values[name] = value
    return values


def apply(settings):
    """Use `settings` (as check() takes them) from the next kernel call on; nothing changes
    when check() fails. Call it between kernel calls, not during one."""
    values = check(settings)
    global _current
    _current = Tuning(values["lstm_in_tile_min_rows"], values["row_parts"],
                      values["max_gate_block"], values["infer_chunk_bytes"],
                      values["min_parallel_flops"])
