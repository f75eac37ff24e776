"""A plugin for the data-parallel fault tests: char-lm whose rank FAULTY_RANK fails in its
FAULTY_EVALUATION-th evaluation (while the other ranks wait for its outputs), as
FAULTY_MODE says: "kill" (SIGKILL, as the OOM killer would), "raise" (an exception),
"hang" (stops answering).

It is found through a real entry point: tests/test_distributed.py writes a dist-info
for it into a directory on PYTHONPATH."""
import os
import signal
import time

import recurrent
from recurrent import distributed
from recurrent_plugins.char_lm import CharLM


class FaultyLM(CharLM):
    name = "faulty-lm"
    help = "char-lm that fails on one rank (tests only)"

    def __init__(self):
        super().__init__()
        self.evaluations = 0

    def evaluate(self, state, split, config, model):
        rank = getattr(distributed.current(), "rank", 0)
        self.evaluations += 1
        if (rank == int(os.environ.get("FAULTY_RANK", "-1"))
                and self.evaluations == int(os.environ.get("FAULTY_EVALUATION", "-1"))):
            mode = os.environ.get("FAULTY_MODE")
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "raise":
                raise RuntimeError(f"evaluation {self.evaluations} is broken")
            elif mode == "hang":
                time.sleep(600)
        return super().evaluate(state, split, config, model)


@recurrent.hookimpl
def register_tasks(register):
    register(FaultyLM())
