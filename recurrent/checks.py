"""Argument checks shared by the library's public classes (one line, naming the argument)."""
from __future__ import annotations

import errno
import math
import numbers
import os
import re

import numpy as np

C_INT_MAX = 2**31 - 1  # the largest count C code taking an int (OpenMP, the kernels) reads
# A layer's or model's backward() called with nothing to differentiate: before any forward,
# after a backward (one per forward), or after an inference pass, which drops what the
# training forward before it kept (so a torch-style validation pass in between is named).
NO_FORWARD = ("backward: no forward pass to differentiate; call forward first (with "
              "need_grad=True), once per backward, with no need_grad=False pass in between "
              "(inference discards what the pass before it kept)")


def seed_sequences(seed, n: int) -> list:
    """``n`` independent np.random.SeedSequence children of ``seed``, else ValueError:
    a seed is None, an integer >= 0 or a sequence of them."""
    try:
        return np.random.SeedSequence(seed).spawn(n)
    except (TypeError, ValueError):
        raise ValueError(f"seed: expected None, an integer >= 0 or a sequence of them, "
                         f"got {seed!r}") from None


def positive_int(value, name: str, maximum: int | None = None) -> int:
    """``value`` as an int >= 1 (and <= ``maximum`` when given), else ValueError naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected at most {maximum}, got {value!r}")
    return int(value)


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(value, name: str = "dtype") -> np.dtype:
    """``value`` as the numpy dtype float32 or float64 (what parameters and the kernels
    hold), else ValueError naming ``name``: any other dtype would truncate the
    initialised values (integers) or has no kernel (float16)."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise ValueError(f"{name}: expected float32 or float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected float32 or float64, got {dtype}")
    return dtype


def probability(value, name: str) -> float:
    """``value`` as a float in [0, 1), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {value!r}")
    return float(value)


# The starts of numpy's ValueErrors for an array larger than any the address space holds:
# the MemoryError of a size so large that numpy refuses it before asking for the memory.
_TOO_BIG = ("Maximum allowed size exceeded", "Maximum allowed dimension exceeded",
            "array is too big;")


def finite_number(value) -> bool:
    """Whether ``value`` is a real number (not a bool) that is finite as a float64 (an int
    beyond its range is not)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def beyond_any_array(e: BaseException) -> bool:
    """Whether ``e`` is numpy's refusal of an array size beyond the address space."""
    return isinstance(e, ValueError) and str(e).startswith(_TOO_BIG)


def memory_problem(e: BaseException) -> str:
    """What a MemoryError, or a size beyond any array (beyond_any_array), tells a user."""
    from .errors import error_line
    return (f"not enough memory ({error_line(e)}): the sizes or counts asked for need "
            f"more memory than is available; ask for smaller ones")


def one_line(text) -> str:
    """The first non-empty line of ``text`` (an exception or a str), for one-line errors."""
    if isinstance(text, BaseException):
        text = str(text) or type(text).__name__
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


# the control characters but the tab (the line breaks str.splitlines ends a line at among
# them, and those a terminal acts on: escape sequences, backspace, carriage return) and
# the Unicode line and paragraph separators
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def not_found(path: str) -> str:
    """Why ``path``, which cannot be opened as it stands, is not there, for a message
    "PATH ...": "does not exist", or, when a symbolic link loop is in the way (ELOOP),
    that it is one or passes through one, which "does not exist" would hide."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            where = "is" if os.path.islink(path) else "passes through"
            return f"{where} a symbolic link loop ({e.strerror})"
    return "does not exist"


def has_control(text: str) -> bool:
    """Whether ``text`` holds a tab or one of the characters unbroken escapes (a line
    break, a Unicode line separator, an escape ...): a value printed as one field of a
    tab-separated line or one cell of a table cannot hold one."""
    return "\t" in text or _CONTROLS.search(text) is not None


def unbroken(text) -> str:
    """``text`` (an exception or a str) as one line, each line break or other control
    character in it written as its escape ("\\n", "\\x1b"): for messages that are one
    line by contract (a UserError's, click's) but may quote user input holding one (a file
    name, a label), which one_line would cut there, leaving a message that names the wrong
    file, or a terminal would act on."""
    if isinstance(text, BaseException):
        text = str(text) or type(text).__name__
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], str(text).strip())


def as_array(value, name: str) -> np.ndarray:
    """np.asarray(value), else ValueError naming ``name``: numpy's own error for nested
    sequences of different lengths names no argument."""
    try:
        return np.asarray(value)
    except ValueError:
        raise ValueError(f"{name}: expected an array, got nested sequences of different "
                         f"lengths") from None


def finite_as(a, dtype, name: str):
    """``a`` as a C-contiguous array of ``dtype``; ValueError naming ``name`` when it holds
    NaN or infinity, or values beyond ``dtype``'s range (checked after the conversion,
    which makes them infinite: float64 values past float32's)."""
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=dtype)
    if not np.isfinite(out).all():
        if np.isfinite(a).all():
            raise ValueError(f"{name}: has values too large for {np.dtype(dtype)} "
                             f"(largest magnitude {np.abs(a).max():g})")
        raise ValueError(f"{name}: contains NaN or infinity")
    return out


def gradient_as(value, shape, dtype, name: str = "d_outputs"):
    """A gradient handed to a model's backward: ``value`` as a C-contiguous array of
    ``dtype`` with exactly ``shape`` (the outputs' shape), else ValueError naming ``name``.
    numpy would broadcast a gradient of another shape over the outputs and differentiate
    that, and cast complex values to their real part, silently; a layout other than C
    order would change the last bits of sums over it. Real values only; NaN passes (a
    training step refuses a loss that is not finite after the ranks agree on it)."""
    a = as_array(value, name)
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} (the outputs' shape), "
                         f"got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype)


def kept_copy(checked, given):
    """``checked`` (an array a check made from ``given``), or a copy of it when it is still
    ``given``'s memory: for an input a module keeps for its backward pass, which the
    caller could otherwise change in place in between, changing the gradients silently."""
    if isinstance(given, np.ndarray) and np.may_share_memory(checked, given):
        return checked.copy()
    return checked
