"""char-lm `predict --stream` applies the (H, V) head and the softmax once per line (after
its last character), not once per character; StreamPool.step_arrays(outputs=False)
advances streams (states, running pools, wide features) exactly as a step with outputs.
Counted by head calls; the answers are bitwise those of stepping with outputs."""
import numpy as np
import pytest

from recurrent import StreamPool
from recurrent.model import SequenceModel
from recurrent_plugins.char_lm import sampling
from recurrent_plugins.char_lm.text import Vocabulary

CHARS = sorted(set("abcdefghij klmnop\n"))


def _char_model():
    spec = {"input": "tokens", "vocab_size": len(CHARS), "embed_dim": 5,
            "output": "sequence", "output_size": len(CHARS)}
    return SequenceModel(spec, cell="lstm", hidden_size=8, num_layers=2, seed=3).eval()


def _counted(model):
    calls = {"head": 0}
    forward = model.head.forward

    def counting(x):
        calls["head"] += 1
        return forward(x)

    model.head.forward = counting
    return calls


def _reference(model, vocab, top_k, prime, lines):
    """The answers of stepping every character with outputs (the old stream)."""
    pool = StreamPool(model, capacity=1, softmax=True)
    pool.open(0)
    p, pending, out = None, "", []
    for i in vocab.encode(prime, "prime"):
        p = pool.step_arrays([0], [i])[0]
    for line in lines:
        for i in vocab.encode(pending + line, "line"):
            p = pool.step_arrays([0], [i])[0]
        pending = "\n"
        top = np.argsort(-p, kind="stable")[:top_k]
        out.append({"text": line, "next": [[vocab.chars[k], round(float(p[k]), 6)]
                                           for k in top]})
    return out


def test_char_lm_stream_applies_the_head_once_per_line():
    model, vocab = _char_model(), Vocabulary(CHARS)
    lines = ["abc def ghij", "k", "", "lmnop abcdefghij abc"]
    expected = _reference(model, vocab, 5, "ab", lines)
    calls = _counted(model)
    answer = sampling.next_char_stream(model, vocab, 5, "ab")
    got = [answer(line) for line in lines]
    assert got == expected
    assert calls["head"] <= 1 + len(lines), calls  # the prime's, then one per line


@pytest.mark.parametrize("output", ["mean", "max", "last"])
def test_steps_without_outputs_advance_as_steps_with_outputs(output):
    spec = {"input": "tokens", "vocab_size": 30, "embed_dim": 4, "output": output,
            "output_size": 3, "wide_bigrams": 16}
    model = SequenceModel(spec, cell="gru", hidden_size=6, seed=1).eval()
    rng = np.random.default_rng(0)
    for name, w in model.named_params.items():
        if name.startswith("wide."):
            w[...] = rng.standard_normal(w.shape)
    model.params_changed()
    ids = rng.integers(0, 30, (9, 2))
    quiet, loud = StreamPool(model, 2), StreamPool(model, 2)
    for pool in (quiet, loud):
        pool.open("a"), pool.open("b")
    for t in range(8):
        assert quiet.step_arrays(["a", "b"], ids[t], outputs=False) is None
        loud.step_arrays(["a", "b"], ids[t])
    for name in ("a", "b"):
        q, s = quiet.state(name), loud.state(name)
        assert q.keys() == s.keys()
        for key in q:
            np.testing.assert_array_equal(q[key], s[key])
    np.testing.assert_array_equal(quiet.step_arrays(["a", "b"], ids[8]),
                                  loud.step_arrays(["a", "b"], ids[8]))
