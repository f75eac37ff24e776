"""Runner: a trained SequenceModel as tasks see it (recurrent.protocols.Runner)."""
from __future__ import annotations


class Runner:
    """Eval mode (no dropout), numpy in and out. The model's training/eval mode is restored
    after each call. The model's own methods resolve threads and keep BLAS on one thread."""

    def __init__(self, model):
        self.model = model  # a recurrent.model.SequenceModel
        self.spec = model.spec

    def _in_eval(self, fn, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            return fn(*args, **kwargs)
        finally:
            self.model.train(was_training)

    def forward(self, x, lengths=None, state=None):
        """x as in a batch -> (outputs, state), as SequenceModel.forward without gradient;
        lengths and state positional or by keyword (recurrent.protocols.Runner)."""
        return self._in_eval(self.model.forward, x, lengths=lengths, state=state,
                             need_grad=False)

    def step(self, x_t, state=None):
        return self._in_eval(self.model.step, x_t, state)
