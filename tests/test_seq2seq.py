"""recurrent.seq2seq: float64 finite-difference gradients of the Luong attention and of
the whole encoder-decoder loss (every parameter, lengths on both sides, rows of length
0; Luong and additive attention with input feeding), the masked softmax, the bridge, and decoding: beam search with K = 1 finds what
greedy decoding finds, and decoding a batch equals decoding each sentence alone."""
import numpy as np
import pytest

from recurrent.config import TrainingConfig, check_model_spec
from recurrent.errors import UserError
from recurrent.lengths import valid_mask
from recurrent.plugins import get_loss
from recurrent.seq2seq import (LuongAttention, Seq2SeqModel, greedy, masked_softmax,
                               search)
from recurrent.seq2seq.model import bridge, unbridge

SPEC = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 6, "embed_dim": 3,
        "attention": "general", "bos": 1, "eos": 2, "output": "sequence", "output_size": 6}


def numeric_grad(f, params, eps=1e-6):
    """Central differences of f() with respect to every entry of ``params`` (in place)."""
    g = np.zeros_like(params)
    for i in range(params.size):
        old = params.flat[i]
        params.flat[i] = old + eps
        up = f()
        params.flat[i] = old - eps
        down = f()
        params.flat[i] = old
        g.flat[i] = (up - down) / (2 * eps)
    return g


def pair_batch(rng, src_lengths, tgt_lengths, src_vocab=7, tgt_vocab=6):
    T = max(max(src_lengths), max(tgt_lengths))
    B = len(src_lengths)
    x = np.zeros((T, B, 2), np.int64)
    for b, (s, t) in enumerate(zip(src_lengths, tgt_lengths)):
        x[:s, b, 0] = rng.integers(1, src_vocab, s)
        x[:t, b, 1] = rng.integers(1, tgt_vocab, t)
    y = rng.integers(0, tgt_vocab, (T, B))
    return x, y, np.array(tgt_lengths, np.int64)


def test_masked_softmax_ignores_padding_and_empty_rows():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((3, 2, 5))
    a = masked_softmax(scores, np.array([5, 2, 0]))
    np.testing.assert_allclose(a[0].sum(axis=1), 1.0)
    np.testing.assert_allclose(a[1].sum(axis=1), 1.0)
    assert np.all(a[1, :, 2:] == 0) and np.all(a[2] == 0)
    e = np.exp(scores[1, :, :2])
    np.testing.assert_allclose(a[1, :, :2], e / e.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("score", ["dot", "general"])
def test_attention_gradients_match_finite_differences(score):
    rng = np.random.default_rng(1)
    T, S, B, H = 4, 5, 3, 4
    att = LuongAttention(H, H, score, np.float64, rng)
    h = rng.standard_normal((T, B, H))
    memory = rng.standard_normal((S, B, H))
    lengths = np.array([5, 2, 0])
    w = rng.standard_normal((T, B, H))  # loss = sum(w * out)

    def loss():
        out, _ = att.forward(h, memory, lengths, need_grad=False)
        return float((w * out).sum())

    att.zero_grad()
    att.forward(h, memory, lengths)
    dh, d_memory = att.backward(w)
    for name, p in att._params.items():
        np.testing.assert_allclose(att.grads()[name], numeric_grad(loss, p), atol=1e-8)
    np.testing.assert_allclose(dh, numeric_grad(loss, h), atol=1e-8)
    np.testing.assert_allclose(d_memory, numeric_grad(loss, memory), atol=1e-8)
    assert np.all(d_memory[2:, 1] == 0) and np.all(d_memory[:, 2] == 0)  # padding, empty row


@pytest.mark.parametrize("cell, layers, bidirectional, score",
                         [("lstm", 2, True, "general"), ("gru", 1, False, "dot"),
                          ("rnn_tanh", 1, True, "dot"), ("lstm", 2, False, "additive"),
                          ("gru", 1, True, "additive")])
def test_encoder_decoder_loss_gradients_match_finite_differences(cell, layers,
                                                                  bidirectional, score):
    """Every parameter: both embeddings, the encoder (the bridge carries the decoder's
    initial-state gradient back into it), the decoder, the attention and the head."""
    rng = np.random.default_rng(2)
    model = Seq2SeqModel({**SPEC, "attention": score}, cell=cell, hidden_size=3,
                         num_layers=layers, bidirectional=bidirectional, dtype=np.float64,
                         seed=3)
    x, y, lengths = pair_batch(rng, [5, 2, 0, 3], [4, 5, 1, 0])
    loss_fn = get_loss("cross_entropy")
    mask = valid_mask(lengths, *y.shape)

    def loss():
        out, _ = model.forward(x, lengths=lengths, need_grad=False)
        return loss_fn.value_and_grad(out, y, mask)[0]

    model.zero_grad()
    out, _ = model.forward(x, lengths=lengths)
    _, d_out = loss_fn.value_and_grad(out, y, mask)
    model.backward(d_out)
    analytic = model.grads.copy()
    numeric = numeric_grad(loss, model.params)
    for name, (offset, shape) in model.layout.items():
        size = int(np.prod(shape))
        np.testing.assert_allclose(analytic[offset:offset + size],
                                   numeric[offset:offset + size], atol=1e-7, err_msg=name)
    assert np.abs(analytic).max() > 1e-3
    for prefix in ("source_embedding", "encoder", "target_embedding", "decoder",
                   "attention", "head"):
        assert any(np.abs(model.named_grads[n]).max() > 0 for n in model.named_grads
                   if n.startswith(prefix + ".")), prefix


def test_padded_target_steps_are_zero_and_do_not_depend_on_padding_ids():
    rng = np.random.default_rng(4)
    model = Seq2SeqModel(SPEC, hidden_size=4, seed=0).eval()
    x, _, lengths = pair_batch(rng, [3, 5], [2, 4])
    out, _ = model.forward(x, lengths=lengths, need_grad=False)
    assert np.all(out[2:, 0] == 0) and np.all(out[4:, 1] == 0)
    wider = np.concatenate([x, np.zeros((3, 2, 2), np.int64)])  # more padding
    out2, _ = model.forward(wider, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(out2[:out.shape[0]], out)


def test_bridge_and_unbridge_are_inverse_and_place_directions_side_by_side():
    s = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)  # (L*D, B, H), L = D = 2
    (merged,) = bridge((s,), 2)
    assert merged.shape == (2, 3, 4)
    np.testing.assert_array_equal(merged[1, :, :2], s[2])  # layer 1 forward
    np.testing.assert_array_equal(merged[1, :, 2:], s[3])  # layer 1 reverse
    np.testing.assert_array_equal(unbridge((merged,), 2)[0], s)


def sources(rng, lengths, vocab=7):
    src = np.zeros((max(lengths), len(lengths)), np.int64)
    for b, n in enumerate(lengths):
        src[:n, b] = rng.integers(1, vocab, n)
    return src


@pytest.fixture(scope="module", params=["general", "additive"])
def decoder_model(request):
    """A random model with large weights, so that its outputs vary from step to step:
    Luong attention, or additive attention with input feeding (its fed h~ is a state that
    beam search reorders with the others)."""
    model = Seq2SeqModel({**SPEC, "target_vocab": 9, "output_size": 9,
                          "attention": request.param}, hidden_size=8, num_layers=2,
                         bidirectional=True, seed=5, dtype=np.float64)
    model.params *= 4
    return model.eval()


def test_beam_search_with_one_hypothesis_equals_greedy(decoder_model):
    src = sources(np.random.default_rng(6), [6, 3, 1, 5, 2, 4])
    g = greedy(decoder_model, src, max_len=12)
    b = search(decoder_model, src, beam=1, max_len=12, alpha=0.0)
    np.testing.assert_array_equal(b.tokens, g.tokens)
    np.testing.assert_array_equal(b.lengths, g.lengths)
    np.testing.assert_array_equal(b.finished, g.finished)
    np.testing.assert_allclose(b.scores, g.scores, rtol=1e-12)
    assert len({tuple(t) for t in g.tokens[:, 0]}) > 1  # the sentences differ
    assert g.finished.any() and (g.lengths > 1).any()


@pytest.mark.parametrize("beam", [1, 4])
def test_decoding_a_batch_equals_decoding_each_sentence_alone(decoder_model, beam):
    src = sources(np.random.default_rng(7), [6, 3, 1, 5])
    batch = search(decoder_model, src, beam=beam, max_len=10)
    for b in range(src.shape[1]):
        n = int((src[:, b] != 0).sum())
        alone = search(decoder_model, src[:n, b:b + 1], beam=beam, max_len=10)
        t = alone.tokens.shape[2]
        np.testing.assert_array_equal(alone.tokens[0], batch.tokens[b, :, :t])
        assert np.all(batch.tokens[b, :, t:] == -1)
        np.testing.assert_allclose(alone.scores[0], batch.scores[b], rtol=1e-10)
        np.testing.assert_allclose(alone.attention[0], batch.attention[b, :, :t, :n],
                                   atol=1e-12)


@pytest.mark.parametrize("beam", [1, 4])
def test_default_limit_is_each_sentences_own_so_a_batch_decodes_as_each_alone(
        decoder_model, beam):
    # Without max_len each sentence stops after 2 x its own length + 10 tokens, not the
    # batch's longest: what `predict --stream` (one at a time) and `predict` (a batch) say.
    lengths = [6, 3, 1, 5, 2, 4, 1, 2]
    src = sources(np.random.default_rng(7), lengths)
    batch = search(decoder_model, src, beam=beam) if beam > 1 else greedy(decoder_model, src)
    for b, n in enumerate(lengths):
        alone = (search(decoder_model, src[:n, b:b + 1], beam=beam) if beam > 1
                 else greedy(decoder_model, src[:n, b:b + 1]))
        t = alone.tokens.shape[2]
        np.testing.assert_array_equal(alone.tokens[0], batch.tokens[b, :, :t])
        assert np.all(batch.tokens[b, :, t:] == -1)
        np.testing.assert_array_equal(alone.lengths[0], batch.lengths[b])
        np.testing.assert_array_equal(alone.finished[0], batch.finished[b])
        np.testing.assert_allclose(alone.scores[0], batch.scores[b], rtol=1e-10)
        np.testing.assert_allclose(alone.normalised[0], batch.normalised[b], rtol=1e-10)
        assert np.all(batch.lengths[b] <= 2 * n + 10)
    cut = ~batch.finished[:, 0]
    assert cut.any()  # some sentences ran to their own limit, below the longest's (22)
    assert np.all(batch.lengths[cut, 0] == 2 * np.array(lengths)[cut] + 10)
    assert (batch.lengths[cut, 0] < 22).any()


def test_greedy_normalises_its_score_by_alpha_as_the_beam_does(decoder_model):
    src = sources(np.random.default_rng(9), [6, 3, 1, 5])
    for alpha in (0.0, 0.5, 1.0):
        g = greedy(decoder_model, src, max_len=10, alpha=alpha)
        b = search(decoder_model, src, beam=1, max_len=10, alpha=alpha)
        steps = np.maximum(g.lengths + g.finished, 1)  # EOS counts
        np.testing.assert_allclose(g.normalised, g.scores / steps ** alpha, rtol=1e-12)
        np.testing.assert_allclose(g.normalised, b.normalised, rtol=1e-12)
    assert not np.allclose(g.normalised, g.scores)  # alpha 1 changes them


def test_beam_search_finds_at_least_the_greedy_score_and_sorts_its_hypotheses(
        decoder_model):
    src = sources(np.random.default_rng(8), [6, 3, 5, 4])
    g = greedy(decoder_model, src, max_len=10)
    b = search(decoder_model, src, beam=5, max_len=10, alpha=0.0)
    finished = g.finished[:, 0]
    assert np.all(b.scores[finished, 0] >= g.scores[finished, 0] - 1e-12)
    assert np.all(np.diff(b.normalised, axis=1) <= 0)
    assert np.all(b.attention.sum(axis=3)[b.tokens >= 0] > 0.999)


def test_config_builds_an_encoder_decoder_from_its_spec():
    config = TrainingConfig({"cell": "gru", "hidden": 5, "layers": 2, "dropout": 0.0,
                             "bidirectional": True, "seed": 0})
    model = config.build_model(SPEC)
    assert isinstance(model, Seq2SeqModel) and model.decoder.hidden_size == 10
    assert check_model_spec(SPEC) is SPEC
    with pytest.raises(ValueError, match="bos"):
        check_model_spec({**SPEC, "bos": 6})
    with pytest.raises(UserError, match="attention"):
        config.build_model({**SPEC, "attention": "nope"})


def test_max_train_and_max_eval_take_pairs_spread_over_the_file():
    """The bundled CMUdict is alphabetical: the first 100 training pairs all start with
    "a"; the 100 --max-train / --max-eval take are spread over the alphabet."""
    from recurrent_plugins.seq2seq import data
    from recurrent_plugins.seq2seq.task import Seq2Seq
    assert data.spread(list(range(10)), 4) == [0, 2, 5, 7]
    assert data.spread(list(range(3)), 0) == data.spread(list(range(3)), 5) == [0, 1, 2]
    task = Seq2Seq()
    state = task.prepare({"max_train": 100})
    train = task.pairs(state, "train", {})
    valid = task.pairs(state, "valid", {"max_eval": 100})
    assert len(train) == len(valid) == 100 and state["counts"]["train"] == 100
    for pairs in (train, valid):
        assert len({source[0] for source, _ in pairs}) >= 15  # initial letters


def _teacher_forced_score(model, src, tokens):
    """Summed log-probability of ``tokens`` for the one sentence ``src`` (S, 1), feeding
    each token as the next input (what the search's score of that hypothesis must be)."""
    n = np.array([int((src[:, 0] != 0).sum())])
    memory, states, threads = model.encode(src, n)
    prev, score = np.array([model.bos]), 0.0
    for t in tokens:
        logp, states, _ = model.decoder_step(prev, states, memory, n, threads)
        score += logp[0, t]
        prev = np.array([t])
    return score


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wide_enough_to_keep_every_hypothesis_finds_the_exact_best(
        decoder_model, alpha):
    # With V**L rows the beam drops nothing up to L tokens, so its best must be the best
    # of every sequence enumerated (ended by EOS, or cut at L tokens), and each score it
    # returns must be that hypothesis' teacher-forced log-probability.
    import itertools
    model = decoder_model
    V, L = model.spec["target_vocab"], 2
    src = sources(np.random.default_rng(3), [4, 2])
    found = search(model, src, beam=V ** L, max_len=L, alpha=alpha)
    for b in range(src.shape[1]):
        one = src[:, b:b + 1]
        best = None
        for n in range(1, L + 1):
            for seq in itertools.product(range(V), repeat=n):
                if model.eos in seq[:-1] or (seq[-1] != model.eos and n < L):
                    continue
                score = _teacher_forced_score(model, one, seq)
                norm = score / len(seq) ** alpha
                if best is None or norm > best[0]:
                    best = (norm, seq)
        tokens = found.tokens[b, 0][found.tokens[b, 0] >= 0]
        expected = [t for t in best[1] if t != model.eos]
        np.testing.assert_array_equal(tokens, expected)
        assert found.finished[b, 0] == (best[1][-1] == model.eos)
        np.testing.assert_allclose(found.normalised[b, 0], best[0], rtol=1e-10)
        for k in range(8):
            kept = found.tokens[b, k][found.tokens[b, k] >= 0]
            seq = [*kept, *([model.eos] if found.finished[b, k] else [])]
            np.testing.assert_allclose(found.scores[b, k],
                                       _teacher_forced_score(model, one, seq), rtol=1e-10)


@pytest.mark.parametrize("attention, cell", [("general", "lstm"), ("additive", "gru")])
def test_int8_runs_both_stacks_and_fp32_comes_back_bit_for_bit(attention, cell):
    """precision sets the encoder's and the decoder's together (a refused value changes
    neither); the decoder's int8 alone changes the teacher-forced outputs, a little (the
    Luong decoder runs the whole target in one call, the additive one steps through
    run_step); decoding runs in int8; fp32 again gives the float32 outputs bit for bit."""
    rng = np.random.default_rng(7)
    model = Seq2SeqModel({**SPEC, "attention": attention}, cell=cell, hidden_size=8,
                         num_layers=2, seed=3).eval()
    x, _, lengths = pair_batch(rng, [3, 5, 4, 6], [2, 4, 5, 6])
    fp32, _ = model.forward(x, lengths=lengths, need_grad=False)
    model.decoder.precision = "int8"
    decoder_int8, _ = model.forward(x, lengths=lengths, need_grad=False)
    assert 0 < np.abs(decoder_int8 - fp32).max() < 0.05
    model.decoder.precision = "fp32"
    with pytest.raises(ValueError, match="expected one of fp32, int8"):
        model.precision = "int4"
    assert model.encoder.precision == model.decoder.precision == "fp32"
    model.precision = "int8"
    assert model.encoder.precision == model.decoder.precision == "int8"
    both, _ = model.forward(x, lengths=lengths, need_grad=False)
    assert not np.array_equal(both, decoder_int8)   # the encoder too
    assert search(model, x[:, :, 0], beam=2).tokens.shape[0] == 4
    model.precision = "fp32"
    np.testing.assert_array_equal(model.forward(x, lengths=lengths, need_grad=False)[0],
                                  fp32)
