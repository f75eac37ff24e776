"""Weights as a safetensors file: PyTorch names (torch_names.tensors) and the run's
config.json as one metadata string, so the file alone says how to rebuild the model.

  metadata {"format": "recurrent", "config.json": "<the run's config.json as JSON text>"}

With int8 weights (`recurrent export --precision int8`) the metadata adds
"precision": "int8", and each quantised matrix W (G, K) is stored as two tensors: W's name,
int8 (G, K), and "<name>.scale", float32 (G,), with W = int8 * scale row by row
(recurrent/quant.py: symmetric, per output row, the quantisation int8 inference does).
``read`` gives them back as float32 matrices, which quantise again to the same int8
values and scales.

Readable by the safetensors package alone (``safetensors.numpy.load_file``,
``safetensors.torch.load_file``); recurrent reads it back with ``load``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from ..checkpoint import atomic_write, json_default, refuse_special
from ..checks import not_found
from ..errors import UserError, error_line
from ..quant import dequantize_rows, quantize_rows

FORMAT = "recurrent"
CONFIG_KEY = "config.json"
PRECISION_KEY = "precision"
SCALE_SUFFIX = ".scale"


def config_metadata(info: dict) -> dict:
    """The run's ``info`` (its config.json object) as the metadata entry every exported
    file carries (safetensors and ONNX alike): {CONFIG_KEY: its JSON text}. The
    "imported_from" of a run made by `recurrent import` is left out: it names the file
    that run was made from, and only that run reads it (its --resume is refused), so a
    file exported from an imported run is the file imported, byte for byte."""
    info = {key: value for key, value in info.items() if key != "imported_from"}
    return {CONFIG_KEY: json.dumps(info, sort_keys=True, default=json_default)}


def write(path: str, tensors: dict, info: dict, int8: tuple = (),
          replace: bool = True, then=None) -> None:
    """``tensors`` ({name: float32 array}) and the run's ``info`` (its config.json
    object) into ``path``, atomically; the matrices named in ``int8`` quantised per row
    (int8 values and their "<name>.scale"). ``replace=False``: FileExistsError when
    ``path`` exists, also when another process made it meanwhile (atomic_write).
    ``then(size)``: called with the file's size in bytes once they are all written,
    before the file is moved into place, so that its failure leaves ``path`` as it was
    (export prints its lines there)."""
    metadata = {"format": FORMAT, **config_metadata(info)}
    out = {}
    for name, value in tensors.items():
        if name in int8:
            out[name], out[name + SCALE_SUFFIX] = quantize_rows(value)
        else:
            out[name] = np.ascontiguousarray(value)
    if int8:
        metadata[PRECISION_KEY] = "int8"
    data = save(out, metadata=metadata)
    header, start = _sorted_header(data)

    def write_file(f):
        f.write(header)
        f.write(memoryview(data)[start:])  # the tensors' bytes, not copied
        if then is not None:
            then(f.tell())

    atomic_write(path, write_file, replace=replace, follow_link=True)


def _sorted_header(data: bytes) -> tuple[bytes, int]:
    """(the length and JSON header of the safetensors file ``data`` with the header's
    keys in sorted order, where the tensors' bytes start in ``data``). The safetensors
    package writes the metadata's keys in its hash map's order, which changes from one
    call to the next, so the same weights would be written as different bytes; sorted,
    a run exports to the same file every time. The header is padded with spaces to a
    multiple of 8 bytes, as the format allows and safetensors does; the tensors'
    offsets count from the header's end, so they stay as they are."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text, 8 + size


def _dequantize(path: str, tensors: dict) -> dict:
    """The int8 matrices of a file with "precision": "int8" back to float32 (their scale
    tensors dropped); UserError for a pair that does not fit."""
    out = {}
    for name, value in tensors.items():
        if name.endswith(SCALE_SUFFIX) and name[:-len(SCALE_SUFFIX)] in tensors:
            continue
        scale = tensors.get(name + SCALE_SUFFIX)
        if value.dtype == np.int8 or scale is not None:
            if (scale is None or value.dtype != np.int8 or value.ndim != 2
                    or scale.dtype != np.float32 or scale.shape != value.shape[:1]):
                raise UserError(f"{path}: int8 tensor {name!r} needs an int8 matrix (G, K) "
                                f"and a float32 {name + SCALE_SUFFIX!r} (G,)")
            # checked before multiplying: an infinite scale times a zero would be NaN
            # with numpy's warning on stderr beside the refusal
            if not np.isfinite(scale).all():
                raise UserError(f"{path}: {name + SCALE_SUFFIX!r} holds NaN or infinity")
            # a finite scale can still overflow float32 times 127: checked after, in one
            # line, instead of numpy's warning and infinite weights
            with np.errstate(over="ignore"):
                value = dequantize_rows(value, scale)
            if not np.isfinite(value).all():
                raise UserError(f"{path}: {name!r} times {name + SCALE_SUFFIX!r} overflows "
                                f"float32")
        out[name] = value
    return out


READS = "recurrent reads float32 tensors (and the int8 ones of --precision int8)"
# file name extensions of other formats a model is saved in, named when such a file is
# given to `recurrent import` (which reads safetensors alone)
_OTHER_FORMATS = {".onnx": "an ONNX model", ".pt": "a PyTorch file",
                  ".pth": "a PyTorch file", ".npz": "a numpy archive",
                  ".pkl": "a pickle", ".h5": "an HDF5 file", ".keras": "a Keras model"}


def header(path: str) -> tuple[dict, dict]:
    """({tensor name: its declared number of values}, run info) of a file written by
    ``write``, from its header alone: no tensor is read, so a file declaring more than
    its model holds can be refused before anything is allocated. UserError naming what
    is wrong."""
    sizes, info, _ = _header(path)
    return sizes, info


def read(path: str) -> tuple[dict, dict]:
    """(tensors, run info) of a file written by ``write``; UserError naming what is wrong."""
    _, info, precision = _header(path)
    with _reading(path), safe_open(path, framework="np") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if precision == "int8":
        tensors = _dequantize(path, tensors)
    elif precision != "fp32":
        raise UserError(f"{path}: precision {precision!r} in its metadata is not one this "
                        f"version reads (fp32, int8)")
    return tensors, info


def _header(path: str) -> tuple[dict, dict, str]:
    """header()'s sizes and run info, and the precision the metadata names."""
    if os.path.isdir(path):  # safetensors would name an OS error ("No such device")
        raise UserError(f"{path} is a directory; give the file `recurrent export` wrote")
    refuse_special(path, "")  # a named pipe would wait for a writer, a device is no file
    with _reading(path), safe_open(path, framework="np") as f:
        metadata = f.metadata() or {}
        slices = {name: f.get_slice(name) for name in f.keys()}
        sizes = {name: math.prod(part.get_shape()) for name, part in slices.items()}
        dtypes = {name: part.get_dtype() for name, part in slices.items()}
    for name, dtype in dtypes.items():  # as the header declares them, none read yet
        if dtype not in ("F32", "I8"):
            raise UserError(f"{path}: tensor {name!r} is {_dtype_name(dtype)}; {READS}")
    if metadata.get("format") != FORMAT or CONFIG_KEY not in metadata:
        # the part of the metadata that is missing or other, named as it is
        if CONFIG_KEY not in metadata:
            wrong = f"has no {CONFIG_KEY!r}"
        elif "format" not in metadata:
            wrong = f"has no 'format': {FORMAT!r}"
        else:
            wrong = f"names the format {metadata['format']!r}, not {FORMAT!r}"
        raise UserError(f"{path} holds no recurrent run (its metadata {wrong}); make one "
                        f"with `recurrent export RUN --format safetensors`")
    try:
        info = json.loads(metadata[CONFIG_KEY])
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deeply to parse
        raise UserError(f"{path}: its {CONFIG_KEY} metadata is corrupted ({e})") from None
    return sizes, info, metadata.get(PRECISION_KEY, "fp32")


def _dtype_name(code: str) -> str:
    """A safetensors dtype code as numpy names the type: "BF16" -> "bfloat16"."""
    match = re.fullmatch(r"(BF|F|I|U)(\d+)", code)
    if match is None:
        return code
    return {"BF": "bfloat", "F": "float", "I": "int", "U": "uint"}[match[1]] + match[2]


@contextlib.contextmanager
def _reading(path: str):
    """The errors of reading the safetensors file ``path`` as one-line UserErrors."""
    try:
        yield
    except FileNotFoundError:  # (what safetensors raises for a symbolic link loop too)
        raise UserError(f"{path} {not_found(path)}") from None
    except (SafetensorError, OSError, ValueError) as e:
        kind = _OTHER_FORMATS.get(os.path.splitext(path)[1].lower())
        if kind is not None:
            raise UserError(f"{path} is not a readable safetensors file: its name says "
                            f"{kind}; `recurrent import` reads the safetensors files that "
                            f"`recurrent export RUN --format safetensors` writes") from None
        raise UserError(f"{path} is not a readable safetensors file "
                        f"({error_line(e)})") from None
    except TypeError as e:  # a dtype numpy has no type for, e.g. bfloat16
        raise UserError(f"{path} holds a tensor numpy cannot read ({error_line(e)}); "
                        f"{READS}") from None
