"""Seq2SeqRunner: a trained Seq2SeqModel as tasks see it (recurrent.protocols.Runner),
plus decoding (greedy and beam search, recurrent/seq2seq/decode.py)."""
from __future__ import annotations

import numpy as np

from ..runner import Runner
from . import decode


class Seq2SeqRunner(Runner):
    """forward(x, lengths): teacher-forced logits (the loss); decode(src): hypotheses."""

    def step(self, x_t, state=None):
        raise ValueError("an encoder-decoder steps through decode(), not step()")

    def decode(self, src, beam=1, max_len=None, alpha=1.0, attention=True, longest=0):
        """Source ids (S, B) padded with PAD_ID -> decode.Hypotheses: greedy for beam 1,
        else beam search (decode.search); their attention weights only when
        ``attention``; ``longest``: the longest target the model was trained on, which
        the default limit (decode.default_max_len) does not cut."""
        # Weights too large for an input overflow the decoder's numbers: its hypotheses
        # then score NaN, which the callers report; numpy's warnings on the way would
        # only be noise before that.
        with np.errstate(over="ignore", invalid="ignore"):
            if beam == 1:
                return self._in_eval(decode.greedy, self.model, src, max_len=max_len,
                                     alpha=alpha, attention=attention, longest=longest)
            return self._in_eval(decode.search, self.model, src, beam=beam,
                                 max_len=max_len, alpha=alpha, attention=attention,
                                 longest=longest)
