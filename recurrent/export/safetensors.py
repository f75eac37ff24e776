"""Weights as a safetensors file: PyTorch names (torch_names.tensors) and the run's
config.json as one metadata string, so the file alone says how to rebuild the model.

  metadata {"format": "recurrent", "config.json": "<the run's config.json as JSON text>"}

Readable by the safetensors package alone (``safetensors.numpy.load_file``,
``safetensors.torch.load_file``); recurrent reads it back with ``load``.
"""
from __future__ import annotations

import json

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from ..checkpoint import atomic_write, json_default
from ..errors import UserError, error_line

FORMAT = "recurrent"
CONFIG_KEY = "config.json"


def write(path: str, tensors: dict, info: dict) -> None:
    """``tensors`` ({name: float32 array}) and the run's ``info`` (its config.json
    object) into ``path``, atomically."""
    metadata = {"format": FORMAT,
                CONFIG_KEY: json.dumps(info, sort_keys=True, default=json_default)}
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
    atomic_write(path, lambda f: f.write(data))


def read(path: str) -> tuple[dict, dict]:
    """(tensors, run info) of a file written by ``write``; UserError naming what is wrong."""
    try:
        with safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable safetensors file "
                        f"({error_line(e)})") from None
    if metadata.get("format") != FORMAT or CONFIG_KEY not in metadata:
        raise UserError(f"{path} holds no recurrent run (its metadata has no "
                        f"{CONFIG_KEY!r}); make one with `recurrent export RUN "
                        f"--format safetensors`")
    try:
        info = json.loads(metadata[CONFIG_KEY])
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise UserError(f"{path}: its {CONFIG_KEY} metadata is corrupted ({e})") from None
    return tensors, info
