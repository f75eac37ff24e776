"""Checks of JSON values read back from a run (a task's saved state), so that a damaged or
hand-edited config.json is named in one line ("vocab[3]: expected a string, got 5") rather
than failing later, deep inside the code that reads it, as an internal error.

A spec is one of:
- a Python type among int, float, str, bool, dict, list: the JSON value's type (an int is
  a number too; true/false is neither an int nor a number);
- what the functions below return (list_of, fields, one_of, nullable, at_least, above),
  or finite: callables (value, where) that raise ValueError.

check(value, spec, where) raises ValueError("<where>: <what is wrong>"); ``where`` is the
value's path (``vocab[3]``, ``scaler.center``), so the message names the damaged entry.
"""
from __future__ import annotations

from .checks import finite_number

_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is(value, kind) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check(value, spec, where: str) -> None:
    """ValueError naming ``where`` unless ``value`` meets ``spec``."""
    if isinstance(spec, type):
        if spec not in _KINDS:
            raise TypeError(f"no JSON kind for {spec.__name__}")
        if not _is(value, spec):
            raise ValueError(f"{where}: expected {_KINDS[spec]}, got {_shown(value)}")
    else:
        spec(value, where)


def list_of(item, size: int | None = None, nonempty: bool = False):
    """A list whose every entry meets ``item`` (of ``size`` entries, if given; at least
    one with ``nonempty``)."""
    def spec(value, where):
        check(value, list, where)
        if size is not None and len(value) != size:
            raise ValueError(f"{where}: expected {size} entries, got {len(value)}")
        if nonempty and not value:
            raise ValueError(f"{where}: expected at least one entry, got none")
        for i, entry in enumerate(value):
            check(entry, item, f"{where}[{i}]")
    return spec


def fields(required: dict, optional: dict | None = None):
    """An object holding every key of ``required`` and any of ``optional`` ({key: spec});
    other keys are allowed (a newer or a plugin's state may add its own)."""
    def spec(value, where):
        check(value, dict, where)
        for key, entry in required.items():
            if key not in value:
                raise ValueError(f"{_joined(where, key)} is missing")
            check(value[key], entry, _joined(where, key))
        for key, entry in (optional or {}).items():
            if key in value:
                check(value[key], entry, _joined(where, key))
    return spec


def _joined(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def one_of(*choices):
    """One of the given JSON values."""
    def spec(value, where):
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"{where}: expected one of {', '.join(map(repr, choices))}, "
                             f"got {_shown(value)}")
    return spec


def nullable(item):
    """null, or a value that meets ``item``."""
    def spec(value, where):
        if value is not None:
            check(value, item, where)
    return spec


def finite(value, where) -> None:
    """A finite number."""
    check(value, float, where)
    if not finite_number(value):
        raise ValueError(f"{where}: expected a finite number, got {_shown(value)}")


def at_least(low, kind=int):
    """A number of ``kind`` (int or float) that is finite and at least ``low``."""
    def spec(value, where):
        check(value, kind, where)
        if not finite_number(value) or value < low:
            raise ValueError(f"{where}: expected {_KINDS[kind]} >= {low}, got {_shown(value)}")
    return spec


def above(low):
    """A finite number greater than ``low``."""
    def spec(value, where):
        finite(value, where)
        if value <= low:
            raise ValueError(f"{where}: expected a number > {low}, got {_shown(value)}")
    return spec


def sized_as(model_spec: dict, key: str, count: int, what: str) -> None:
    """ValueError unless the model spec's ``key`` (when it has one) is ``count``, the
    size ``what`` (part of the state) gives: a state and a model of different
    vocabularies or classes would read past one another's ends."""
    size = model_spec.get(key)
    if size is not None and size != count:
        raise ValueError(f"the model's {key} is {_shown(size)}, but {what} gives {count}")
