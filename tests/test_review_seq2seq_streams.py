"""Review of the encoder-decoder (recurrent/seq2seq, plugins/seq2seq) and StreamPool
(recurrent/streams.py): inputs that were accepted silently or failed with a raw error,
and beam hypotheses that do not exist."""
import json
import os

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv

import recurrent
from recurrent.layers import Recurrent
from recurrent.model import SequenceModel
from recurrent.seq2seq import Seq2SeqModel, check_spec, greedy, search

SPEC = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 6, "embed_dim": 3,
        "attention": "general", "bos": 1, "eos": 2, "output": "sequence", "output_size": 6}


@pytest.fixture(scope="module")
def model():
    return Seq2SeqModel(SPEC, hidden_size=4, seed=0).eval()


# ---- StreamPool --------------------------------------------------------------------------

def test_stream_pool_refuses_inputs_too_large_for_float32():
    # float64 1e300 becomes inf in the float32 slab; Recurrent.step refuses it, and so
    # must the pool, instead of stepping the stream into a state it cannot leave
    layer = Recurrent("gru", 3, 4, seed=0)
    pool = recurrent.StreamPool(layer, capacity=1)
    pool.open("a")
    with pytest.raises(ValueError, match="too large for float32") as info:
        pool.step({"a": np.array([1e300, 0.0, 0.0])})
    assert "\n" not in str(info.value)
    np.testing.assert_array_equal(pool.state("a")["h"], 0)  # the stream is unchanged


def test_stream_pool_restore_refuses_states_it_cannot_hold_with_one_line():
    model = SequenceModel({"input": "tokens", "vocab_size": 5, "embed_dim": 2,
                           "output": "sequence", "output_size": 5}, hidden_size=4, seed=0)
    pool = recurrent.StreamPool(model, capacity=2)
    pool.open("a")
    good = pool.state("a")
    cases = [
        ("dtype <U1", {**good, "h": np.full((1, 4), "x")}),
        ("dtype complex128", {**good, "h": np.ones((1, 4), complex)}),
        ("too large for float32", {**good, "c": np.full((1, 4), 1e300)}),
    ]
    for fragment, state in cases:
        with pytest.raises(ValueError, match=fragment) as info:
            pool.restore("b", state)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="hashable"):
        pool.restore(["b"], good)
    assert pool.ids() == ["a"]  # nothing opened by a refused restore


# ---- seq2seq library ----------------------------------------------------------------------

def test_decoding_refuses_float_source_ids(model):
    # a cast to int64 would read 1.9 as 1: forward() refuses floats, decoding must too
    src = np.array([[1.9], [4.2]])
    for decode in (lambda: greedy(model, src), lambda: search(model, src, beam=2),
                   lambda: model.runner().decode(src)):
        with pytest.raises(ValueError, match="integer token ids"):
            decode()


def test_decoding_refuses_a_negative_alpha(model):
    with pytest.raises(ValueError, match="alpha"):
        greedy(model, np.array([[3], [4]]), alpha=-0.5)


def test_a_pad_inside_a_source_is_refused_not_read_as_its_end(model):
    # [3, PAD, 4] was read as the source [3]: the 4 was dropped without a word
    src = np.array([[3], [0], [4]])
    with pytest.raises(ValueError, match="PAD"):
        greedy(model, src)
    x = np.zeros((3, 1, 2), np.int64)
    x[:, 0, 0] = src[:, 0]
    x[:2, 0, 1] = [1, 4]
    with pytest.raises(ValueError, match="PAD"):
        model.forward(x, lengths=np.array([2]), need_grad=False)
    padded = np.array([[3, 5], [4, 0], [0, 0]])  # padding after the end stays fine
    assert greedy(model, padded, max_len=3).tokens.shape[:2] == (2, 1)


def test_a_spec_with_the_same_bos_and_eos_is_refused():
    # decoding never emits BOS, so with EOS == BOS it never ends a hypothesis
    with pytest.raises(ValueError, match="bos, eos"):
        check_spec({**SPEC, "eos": 1})


def test_forward_of_a_batch_of_the_wrong_rank_is_one_line(model):
    with pytest.raises(ValueError, match=r"pair batch of shape \(T, B, 2\)"):
        model.forward(np.zeros(4, np.int64), lengths=np.array([2]), need_grad=False)


def test_a_beam_wider_than_the_hypotheses_there_are_returns_empty_ones(model):
    # 6 target ids, PAD and BOS never emitted: 4 one-token hypotheses exist
    found = search(model, np.array([[3], [4]]), beam=7, max_len=1)
    real = np.isfinite(found.scores[0])
    assert real.sum() == 4
    assert np.all(found.tokens[0, ~real] == -1) and np.all(found.lengths[0, ~real] == 0)
    assert not found.finished[0, ~real].any()
    emitted = found.tokens[0, real][found.tokens[0, real] >= 0]
    assert not np.isin(emitted, [0, 1]).any()  # never PAD or BOS


# ---- seq2seq CLI -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run on a character-level TSV with a small target vocabulary."""
    root = tmp_path_factory.mktemp("s2s_review")
    tsv, _ = reversal_tsv(root / "pairs.tsv", "abcd", 800)
    out = root / "run"
    ok(invoke("train", "seq2seq", "--data", tsv, "--out", out, "--hidden", 8,
              "--embed-dim", 4, "--steps", 3, "--threads", 1, "--quiet", "--no-plot"))
    return out


def test_predict_n_best_lists_only_hypotheses_that_exist(run):
    # targets a..d: 4 symbols, <unk> and </s> can be emitted: 6 one-symbol outputs
    out = ok(invoke("predict", run, "abc", "--beam", 9, "--n-best", 9, "--max-len", 1,
                    "--json"))
    found = json.loads(out)["hypotheses"]  # strict JSON: no -Infinity
    assert len(found) == 6
    assert all(np.isfinite(h["score"]) for h in found)
    assert not any(h["output"] in ("<pad>", "<s>") for h in found)


def test_predict_stream_refuses_options_it_would_ignore(run):
    from click.testing import CliRunner

    from recurrent.cli import cli
    for extra in (["dcb"], ["--plot", str(run / "a.png")], ["--beam", "3", "--n-best", "2"]):
        result = CliRunner().invoke(cli, ["predict", str(run), "--stream", *extra],
                                    input="abc\n")
        one_line_error(result, "--stream")
    assert not (run / "a.png").exists()


def test_backward_after_decoding_asks_for_a_new_forward():
    # decoding reuses the embeddings, RNNs, attention and head, overwriting the caches of
    # the last forward: its backward failed with a raw matmul error
    model = Seq2SeqModel(SPEC, hidden_size=4, seed=0)
    x = np.zeros((4, 2, 2), np.int64)
    x[:3, :, 0] = 3
    x[:3, :, 1] = [[1, 1], [4, 5], [5, 4]]
    out, _ = model.forward(x, lengths=np.array([3, 3]))
    model.runner().decode(np.array([[3, 4]]), max_len=3)
    with pytest.raises(ValueError, match="no forward pass to differentiate"):
        model.backward(np.ones_like(out))


def test_literal_special_tokens_in_the_data_are_unknown_symbols(tmp_path):
    # "<pad>", "<s>" and "</s>" in a token-level file are words of the file, not padding
    # or sentence marks: training reads them as <unk> (a PAD id inside a source would be
    # refused by the model), predict refuses them as symbols never seen in training.
    import subprocess
    import sys

    from recurrent_plugins.seq2seq import data
    vocab = data.Vocabulary.build([["a", "<pad>", "b"]], data.SOURCE_SPECIALS)
    assert list(vocab.encode(["a", "<pad>", "b", "<unk>"], data.SOURCE_UNK)) == [
        vocab.index["a"], data.SOURCE_UNK, vocab.index["b"], data.SOURCE_UNK]
    assert vocab.unknown(["a", "<pad>"]) == ["<pad>"]
    # "<s>" and "</s>" are no source specials: in a source they are symbols with their ids
    source = data.Vocabulary.build([["a", "<s>", "</s>"]], data.SOURCE_SPECIALS)
    assert source.unknown(["<s>", "</s>"]) == [] and source.index["<s>"] > data.SOURCE_UNK
    target = data.Vocabulary.build([["a", "<s>"]], data.TARGET_SPECIALS)
    assert target.unknown(["<s>", "</s>", "<pad>"]) == ["</s>", "<pad>", "<s>"]
    rng = np.random.default_rng(0)
    words = "a b c d e f".split()
    lines = []
    for i in range(400):
        src = list(rng.choice(words, rng.integers(2, 5)))
        tgt = src[::-1]
        if i % 7 == 0:
            src.insert(1, "<pad>")
            tgt.append("</s>")
        lines.append(f"{' '.join(src)}\t{' '.join(tgt)}\n")
    tsv = tmp_path / "tokens.tsv"
    tsv.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", tsv, "--out", out, "--source-level", "token",
              "--target-level", "token", "--hidden", "8", "--embed-dim", "8", "--steps", "3",
              "--threads", "1", "--quiet", "--no-plot"))
    one_line_error(invoke("predict", out, "a <pad> b"), "never saw", "'<pad>'")
    stream = subprocess.run([sys.executable, "-m", "recurrent", "predict", str(out),
                             "--stream"], input="a <pad> b\na b\n", capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONSAFEPATH": "1"},
                            timeout=120)
    answers = [json.loads(line) for line in stream.stdout.splitlines()]
    assert len(answers) == 2 and "error" in answers[0] and "error" not in answers[1]
    assert stream.returncode == 1  # a line was refused (docs/streaming.md)
    assert stream.stderr.strip().splitlines() == [
        "Error: line 1: input 'a <pad> b' has symbols the model never saw in training: "
        "'<pad>'"]


def test_stream_pool_of_a_seq2seq_run_or_model_says_why_it_is_refused(run, model):
    for target in (run, str(run), model):
        with pytest.raises(ValueError, match=r"a seq2seq \(encoder-decoder\) model .* "
                                             r"recurrent predict RUN --stream"):
            recurrent.StreamPool(target, capacity=2)
