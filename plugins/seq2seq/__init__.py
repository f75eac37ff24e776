"""seq2seq: transduction with an encoder-decoder with attention (recurrent_plugins.seq2seq).

`recurrent train seq2seq` trains English grapheme-to-phoneme conversion on the bundled
CMU Pronouncing Dictionary (data/SOURCE.md), or `--data FILE` any source<TAB>target TSV;
`recurrent predict RUN "word" --beam 5 --n-best 3` transduces.
"""
import recurrent

from .task import TASK, Seq2Seq

__all__ = ["Seq2Seq", "TASK", "register_tasks"]


@recurrent.hookimpl
def register_tasks(register):
    register(TASK)
