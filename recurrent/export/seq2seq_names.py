"""The exported names of an encoder-decoder's tensors (recurrent/seq2seq/model.py).

A Seq2SeqModel binds its modules as "source_embedding", "encoder", "target_embedding",
"decoder", "attention" and "head". An export groups them as an encoder-decoder's parts,
each recurrent stack under "rnn" with PyTorch's names (recurrent/layout.py), as a torch
model with these submodules holds them (the printed Seq2Seq of torch_seq2seq.py):

  encoder.embedding  torch.nn.Embedding(Vs, E)               weight (Vs, E)
  encoder.rnn        torch.nn.RNN/LSTM/GRU(E, H, num_layers=L, bidirectional=...)
  decoder.embedding  torch.nn.Embedding(V, E)                weight (V, E)
  decoder.rnn        torch.nn.RNN/LSTM/GRU(E (+F with additive attention), F,
                                           num_layers=L)
  attention          weight_a (F, F) ("general" only), weight_c (F, 2F): Luong
                     weight_q (F, F), weight_k (F, F), v (F,), weight_c (F, 2F): additive
  head               torch.nn.Linear(F, V)                   weight (V, F), bias (V,)

The bridge (encoder final states -> decoder initial states) has no parameters.
Legend: Vs / V source / target vocabulary, E embedding size, H encoder hidden size,
D encoder directions, F = D*H, L layers.
"""
from __future__ import annotations

import numpy as np

# The model's module prefix -> the exported one, in the model's flat-buffer order.
EXPORTED = {"source_embedding.": "encoder.embedding.", "encoder.": "encoder.rnn.",
            "target_embedding.": "decoder.embedding.", "decoder.": "decoder.rnn.",
            "attention.": "attention.", "head.": "head."}
# The exported prefix of each recurrent stack, for torch_names.rnn_param.
ENCODER_RNN, DECODER_RNN = "encoder.rnn", "decoder.rnn"


def _renamed(name: str, mapping: dict) -> str:
    """``name`` with its prefix replaced as ``mapping`` says; ValueError for a name
    under none of its prefixes."""
    for old, new in mapping.items():
        if name.startswith(old):
            return new + name[len(old):]
    raise ValueError(f"tensor {name!r} is no part of an encoder-decoder (its names start "
                     f"with {', '.join(mapping)})")


def rnn_weights(model) -> list[str]:
    """The exported names of both stacks' weight matrices (torch_names.rnn_weights of
    each): what int8 inference quantises."""
    from .torch_names import stack_weights
    return (stack_weights(model.encoder, ENCODER_RNN)
            + stack_weights(model.decoder, DECODER_RNN))


def tensors(model) -> dict:
    """{exported name: contiguous float32 array} of every parameter of ``model`` (a
    Seq2SeqModel), in flat-buffer order."""
    return {_renamed(name, EXPORTED): np.ascontiguousarray(value, dtype=np.float32)
            for name, value in model.state_dict().items()}


def model_names(exported: dict) -> dict:
    """``tensors``' inverse: {the model's parameter name: array} of a file's tensors;
    ValueError for a name of no part (the model's own names included: a file holds the
    exported ones)."""
    back = {new: old for old, new in EXPORTED.items()}
    return {_renamed(name, back): value for name, value in exported.items()}
