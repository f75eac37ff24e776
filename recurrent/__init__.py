"""recurrent: fast CPU recurrent neural networks (RNN, LSTM, GRU, layer-normalised LSTM).

Layers mirror torch.nn on numpy arrays, time-major:

    import numpy as np, recurrent
    lstm = recurrent.LSTM(input_size=8, hidden_size=16, num_layers=2, seed=0)
    out, (h_n, c_n) = lstm(np.zeros((5, 3, 8), np.float32))
"""
import importlib
import os

from .hookspecs import hookimpl

__version__ = "0.1.0"

# The version of the kernel toolkit a compiled plugin builds on (recurrent_toolkit.pxd and
# recurrent_toolkit.h, where it is RECURRENT_TOOLKIT_API_VERSION): raised whenever a public
# name there changes meaning or signature, or names are added (docs/plugins-native.md).
TOOLKIT_API_VERSION = 1


def get_include():
    """The directory holding the kernel toolkit's public headers, recurrent_toolkit.h and
    recurrent_toolkit.pxd: a compiled plugin passes it to its Extension's include_dirs and
    to cythonize's include_path (docs/plugins-native.md), as with numpy.get_include()."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels")


# Public names, imported on first use so that `import recurrent` (and the CLI) start fast.
_LAZY = {
    "Recurrent": "recurrent.layers",
    "RNN": "recurrent.layers",
    "LSTM": "recurrent.layers",
    "GRU": "recurrent.layers",
    "StreamPool": "recurrent.streams",
    "predict": "recurrent.predict_api",
    "predict_stream": "recurrent.predict_api",
    "clip_grad_norm": "recurrent.clip",
    "clip_grad_value": "recurrent.clip",
    "openmp_enabled": "recurrent.threads",
    "UserError": "recurrent.errors",
}

__all__ = ["hookimpl", "__version__", "TOOLKIT_API_VERSION", "get_include", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recurrent' has no attribute {name!r}")


def __dir__():
    # The lazy names too, so dir() and tab completion list them.
    return sorted(set(globals()) | set(__all__))
