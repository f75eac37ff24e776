"""`predict --stream` reads the run's vocabulary once, not once per line: building the
token -> id index walked the whole vocabulary (20,000 words by default for sentiment,
any size for a token-level seq2seq source) for every line of a few words. Counted by
iterations over the vocabulary list; the answers are those of predict."""
import json

import numpy as np

from recurrent_plugins.sentiment.task import TASK as SENTIMENT
from recurrent_plugins.sentiment.text import TOKENIZER
from recurrent_plugins.seq2seq.task import TASK as SEQ2SEQ


class CountingList(list):
    """A list that counts how often it is walked."""

    def __init__(self, items):
        super().__init__(items)
        self.walks = 0

    def __iter__(self):
        self.walks += 1
        return super().__iter__()


class Classifier:
    """A stand-in model: logits from the ids it reads (so answers differ per line)."""

    def forward(self, x, lengths=None):
        x = np.asarray(x)
        total = np.where(np.arange(x.shape[0])[:, None] < lengths[None, :], x, 0).sum(0)
        return np.stack([np.sin(total), np.cos(total)], axis=1).astype(np.float32), None


def test_sentiment_stream_walks_the_vocabulary_once():
    words = [f"w{i}" for i in range(5000)]
    state = {"classes": ["neg", "pos"], "vocab": CountingList(["<pad>", "<unk>"] + words),
             "max_tokens": 400, "tokenizer": TOKENIZER}
    answer = SENTIMENT.predict_stream(state, {}, Classifier(), {})
    lines = [f"w{i} w{3 * i} w{7 * i} zz" for i in range(50)]
    answers = [answer(line) for line in lines]
    assert state["vocab"].walks <= 2, state["vocab"].walks
    expected = [json.loads(a) for a in SENTIMENT.predict(
        state, {}, Classifier(), {"texts": lines, "as_json": True})]
    assert answers == expected


class Hypotheses:
    def __init__(self, ids):
        self.tokens = np.array([[ids]], np.int64)
        self.lengths = np.array([[len(ids)]], np.int64)
        self.scores = self.normalised = np.array([[-float(sum(ids))]])
        self.finished = np.ones((1, 1), bool)


class Transducer:
    """A stand-in encoder-decoder: the target ids follow the source ids."""

    def decode(self, sources, beam=1, max_len=None, alpha=1.0, attention=True, longest=0):
        return Hypotheses([4 + int(i) % 3 for i in np.asarray(sources)[:, 0]])


def test_seq2seq_stream_walks_the_source_vocabulary_once():
    words = [f"w{i}" for i in range(5000)]
    state = {"source_vocab": CountingList(["<pad>", "<unk>"] + words),
             "target_vocab": ["<pad>", "<s>", "</s>", "<unk>", "a", "b", "c"],
             "source_level": "token", "target_level": "token"}
    answer = SEQ2SEQ.predict_stream(state, {}, Transducer(), {})
    lines = [f"w{i} w{2 * i + 1}" for i in range(50)]
    answers = [answer(line) for line in lines]
    assert state["source_vocab"].walks <= 2, state["source_vocab"].walks
    for line, got in zip(lines, answers):
        expected = list(SEQ2SEQ.predict(state, {}, Transducer(), {"inputs": [line]}))
        assert got["output"] == expected[0] and got["input"] == line
