"""Sequence to sequence: an encoder-decoder with Luong attention (model.py, attention.py)
or additive attention with input feeding (feeding.py), greedy and beam-search decoding
(decode.py), and its Runner (runner.py)."""
from .attention import LuongAttention, masked_softmax
from .decode import Hypotheses, greedy, search
from .model import KIND, PAD_ID, Seq2SeqModel, check_spec

__all__ = ["Hypotheses", "KIND", "LuongAttention", "PAD_ID", "Seq2SeqModel", "check_spec",
           "greedy", "masked_softmax", "search"]
