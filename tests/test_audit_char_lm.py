"""Audit (mutation round 3) of plugins/char_lm: the training streams' random offset, the
evaluation layout's stream limit and the vocabulary's own checks, against values worked
out by hand. Each test kills a mutant that the existing suite let through."""
import numpy as np
import pytest

from recurrent_plugins.char_lm import streams, text


def test_random_offset_stays_within_the_characters_left_over():
    """44 ids, 2 streams, windows of 10: 2 windows (40 inputs + 1 target), so 3 characters
    are left over and the epoch may start at offset 0..3 only (a larger offset would cut
    the last stream short). Over many seeds every epoch must yield both windows, each
    stream contiguous, y = x + 1, and never read past id 43; every allowed offset occurs."""
    ids = np.arange(44, dtype=np.int64)
    offsets = set()
    for seed in range(60):
        batches = list(streams.stream_windows(ids, batch_size=2, seq_len=10,
                                              rng=np.random.default_rng(seed)))
        assert len(batches) == 2
        x = np.concatenate([b["x"] for b in batches])  # (20, 2)
        y = np.concatenate([b["y"] for b in batches])
        assert x.shape == (20, 2)
        np.testing.assert_array_equal(y, x + 1)
        assert (np.diff(x, axis=0) == 1).all()
        np.testing.assert_array_equal(x[0, 1] - x[0, 0], 20)  # adjacent segments
        assert y.max() <= 43
        offsets.add(int(x[0, 0]))
    assert offsets == {0, 1, 2, 3}


def test_eval_layout_never_uses_more_streams_than_allowed():
    """10000 targets, warm-up 10: 10000 // 80 = 125 streams would pay off, but at most 4
    are allowed: 4 streams of ceil((10000 - 10) / 4) = 2498 scored targets each."""
    assert streams.eval_layout(10_000, 4, 10) == (4, 2498, 10)
    x, y, mask = streams.eval_streams(np.arange(10_001, dtype=np.int64), max_streams=4,
                                      warmup=10)
    assert x.shape == (10 + 2498, 4)
    assert int(mask.sum()) == 10_000


def test_vocabulary_refuses_repeated_characters():
    """A vocabulary (as read back from a run's state) with a repeated character would
    give two ids one character; it must be refused like an unsorted one."""
    with pytest.raises(ValueError, match="unique and sorted"):
        text.Vocabulary(["a", "a", "b"])
    with pytest.raises(ValueError, match="unique and sorted"):
        text.Vocabulary(["b", "a"])
    assert text.Vocabulary(["a", "b"]).chars == ["a", "b"]


class _CountingModel:
    """A stand-in Runner over 5 characters: the next character is always the current one
    plus 1 (mod 5), with logit 10 against 0, so greedy generation counts upwards."""
    V = 5

    def _logits(self, ids):
        out = np.zeros((len(ids), self.V))
        out[np.arange(len(ids)), (np.asarray(ids) + 1) % self.V] = 10.0
        return out

    def forward(self, x):  # x (P, 1)
        return self._logits(x[:, 0])[:, None, :], {"last": int(x[-1, 0])}

    def step(self, ids, state):  # ids (1,)
        return self._logits(ids), {"last": int(ids[0])}


def test_generation_feeds_back_each_new_character():
    """Prime [0] at temperature 0: 1, 2, 3, 4, 0, 1 -- each step reads the character just
    generated (not the first one again)."""
    from recurrent_plugins.char_lm import sampling
    out = sampling.generate(_CountingModel(), np.array([0]), 6, 0.0, None, seed=0)
    assert out == [1, 2, 3, 4, 0, 1]
    out = sampling.generate(_CountingModel(), np.array([3, 2]), 3, 0.0, None, seed=0)
    assert out == [3, 4, 0]


def test_an_empty_first_line_after_a_prime_answers_from_the_prime():
    """predict --stream --prime "ab" over a vocabulary without a line break: an empty
    first line continues the prime, so its answer is the distribution after "ab" (as
    stepping "a", "b" through a StreamPool gives it); without a prime it is an error."""
    from recurrent import StreamPool
    from recurrent.errors import UserError
    from recurrent.model import SequenceModel
    from recurrent_plugins.char_lm import sampling
    chars = sorted(set("abcdefghij "))
    spec = {"input": "tokens", "vocab_size": len(chars), "embed_dim": 4,
            "output": "sequence", "output_size": len(chars)}
    model = SequenceModel(spec, cell="gru", hidden_size=6, seed=2).eval()
    vocab = text.Vocabulary(chars)
    pool = StreamPool(model, capacity=1, softmax=True)
    pool.open(0)
    for i in vocab.encode("ab"):
        p = pool.step_arrays([0], [i])[0]
    top = np.argsort(-p, kind="stable")[:3]
    expected = [[vocab.chars[k], round(float(p[k]), 6)] for k in top]
    answer = sampling.next_char_stream(model, vocab, 3, "ab")
    assert answer("") == {"text": "", "next": expected}
    with pytest.raises(UserError, match="nothing to continue yet"):
        sampling.next_char_stream(model, vocab, 3, None)("")


class _StepCounter(_CountingModel):
    """_CountingModel, counting its steps; over the vocabulary "\nabcd" it writes a line
    break every fifth character."""
    steps = 0

    def step(self, ids, state):
        self.steps += 1
        return super().step(ids, state)


def test_predict_shows_each_line_as_soon_as_it_is_generated():
    """predict yields each line when its line break is drawn, so a long --length shows
    as it grows; the lines are those of the whole text."""
    from recurrent_plugins.char_lm.task import TASK
    state = {"vocab": ["\n", "a", "b", "c", "d"]}
    options = {"prime": "a", "length": 1000, "temperature": 0.0, "seed": 0}
    model = _StepCounter()
    lines = TASK.predict(state, {}, model, options)
    assert next(lines) == "abcd" and model.steps < 5  # "a" + "bcd\n": four draws
    rest = list(lines)
    whole = "a" + "".join("bcd\na"[i % 5] for i in range(1000))
    assert ["abcd", *rest] == whole.split("\n")
