"""char-lm: a character-level language model task (recurrent_plugins.char_lm).

`recurrent train char-lm` trains on the bundled Shakespeare plays (data/SOURCE.md);
`recurrent predict RUN --prime "ROMEO:" --length 500 --temperature 0.8 --seed 1` samples.
"""
import recurrent

from .task import TASK, CharLM

__all__ = ["CharLM", "TASK", "register_tasks"]


@recurrent.hookimpl
def register_tasks(register):
    register(TASK)
