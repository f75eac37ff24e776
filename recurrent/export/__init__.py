"""Exporting a trained model out of recurrent and importing it back.

Formats (recurrent/export/<format>.py): "onnx" (the whole model as an ONNX graph with
the standard RNN/GRU/LSTM operators), "safetensors" (the weights under PyTorch's names and
the run's config.json as metadata; `recurrent import` makes a run from it) and "torch"
(the same kind of file, restricted to models that torch.nn modules can hold, with the
torch module printed). torch_names.py is the one place that says which torch.nn module
holds which parameter. run.py ties them to run directories and the CLI. An
encoder-decoder (seq2seq) run has its own names (seq2seq_names.py), as ONNX two graphs
(onnx_seq2seq.py) in two files, named by seq2seq_onnx_paths, and as torch a printed
module of its own (torch_seq2seq.py). An ensemble run exports as one ONNX graph or one
torch file and printed module holding every member, combined as torch_ensemble.py says.
"""

FORMATS = ("onnx", "safetensors", "torch")
# --out default: the run directory's path plus this (runs/shakespeare.onnx)
EXTENSIONS = {"onnx": ".onnx", "safetensors": ".safetensors", "torch": ".torch.safetensors"}
INT8_EXTENSION = ".int8.safetensors"  # --format safetensors --precision int8
SEQ2SEQ_GRAPHS = ("encoder", "decoder")  # the two ONNX files of a seq2seq run


def seq2seq_onnx_paths(out: str) -> tuple:
    """The ONNX files of an encoder-decoder for --out ``out``: its name with ".encoder"
    and ".decoder" before the ".onnx" (runs/g2p.onnx -> runs/g2p.encoder.onnx,
    runs/g2p.decoder.onnx), or with ".encoder.onnx" and ".decoder.onnx" appended to a
    name without that extension. The extension is matched in any case and kept as
    written (g2p.ONNX -> g2p.encoder.ONNX)."""
    size = len(EXTENSIONS["onnx"])
    typed = out[-size:] if out.lower().endswith(EXTENSIONS["onnx"]) else ""
    stem = out[:-size] if typed else out
    return tuple(f"{stem}.{graph}{typed or EXTENSIONS['onnx']}" for graph in SEQ2SEQ_GRAPHS)
