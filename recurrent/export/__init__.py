"""Exporting a trained model out of recurrent and importing it back.

Formats (recurrent/export/<format>.py): "onnx" (the whole model as an ONNX graph with
the standard RNN/GRU/LSTM operators), "safetensors" (the weights under PyTorch's names and
the run's config.json as metadata; `recurrent import` makes a run from it) and "torch"
(the same kind of file, restricted to models that torch.nn modules can hold, with the
torch module printed). torch_names.py is the one place that says which torch.nn module
holds which parameter. run.py ties them to run directories and the CLI.
"""

FORMATS = ("onnx", "safetensors", "torch")
# --out default: the run directory's path plus this (runs/shakespeare.onnx)
EXTENSIONS = {"onnx": ".onnx", "safetensors": ".safetensors", "torch": ".torch.safetensors"}
INT8_EXTENSION = ".int8.safetensors"  # --format safetensors --precision int8
