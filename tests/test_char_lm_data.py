"""char-lm task pieces that need no trained model: reading, vocabulary, splits, batching,
metrics, baselines and sampling, checked against values worked out by hand."""
import gzip
import json
import math

import numpy as np
import pytest

from recurrent.errors import UserError
from recurrent_plugins.char_lm import metrics, sampling, streams, text
from recurrent_plugins.char_lm.task import TASK, VALID_FRACTION

SAMPLE = ("First Citizen.\nBefore we proceed any further, hear me speak.\n\n"
          "All.\nSpeak, speak.\n\nFirst Citizen.\nYou are all resolved rather to die "
          "than to famish?\n\nAll.\nResolved. resolved.\n")


def write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
    return str(path)


# ---- reading and checking files ---------------------------------------------------------

@pytest.mark.parametrize("payload, message", [
    (b"", "is empty"),
    (b"\xef\xbb\xbf", "is empty"),  # only a byte-order mark
    (b"PK\x03\x04\x00\x00broken zip header", "truncated or corrupt zip data"),
    (b"\x01\x02\x00\x03 raw bytes", "looks binary (NUL byte at offset 2)"),
    ("caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3"),
])
def test_bad_files_are_one_line_user_errors(tmp_path, payload, message):
    path = write(tmp_path, "bad.txt", payload)
    with pytest.raises(UserError) as info:
        TASK.prepare({"data": path, "batch_size": 1, "seq_len": 1})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        TASK.prepare({"data": str(tmp_path / "nope.txt")})
    with pytest.raises(UserError, match="is a directory"):
        TASK.prepare({"data": str(tmp_path)})


def test_file_shorter_than_one_window(tmp_path):
    path = write(tmp_path, "short.txt", "x" * 300)
    with pytest.raises(UserError) as info:
        TASK.prepare({"data": path, "batch_size": 4, "seq_len": 100})
    msg = str(info.value)
    assert "300 characters" in msg and "shorter than one training window" in msg
    # The minimum it names really is the minimum: one character less fails, it passes.
    needed = int(msg.split("needs at least ")[1].split()[0])
    write(tmp_path, "short.txt", "x" * needed)
    state = TASK.prepare({"data": path, "batch_size": 4, "seq_len": 100})
    assert state["n_train"] >= 4 * 100 + 1 and state["n_valid"] >= 101
    write(tmp_path, "short.txt", "x" * (needed - 1))
    with pytest.raises(UserError):
        TASK.prepare({"data": path, "batch_size": 4, "seq_len": 100})


def test_gzip_and_bom_are_read(tmp_path):
    path = write(tmp_path, "t.txt.gz", gzip.compress(("\ufeff" + SAMPLE).encode("utf-8")))
    assert text.read_text(path) == SAMPLE


def test_bundled_corpus_is_large_clean_text():
    corpus = text.read_text(text.bundled_path())
    assert len(corpus) > 1_000_000
    assert "gutenberg" not in corpus.lower()
    assert "ROMEO" in corpus and "HAMLET" in corpus


# ---- vocabulary and state ---------------------------------------------------------------

def test_vocabulary_round_trip_and_unknown_characters():
    vocab = text.Vocabulary.from_text("hello, world\n")
    assert vocab.chars == sorted(set("hello, world\n"))
    ids = vocab.encode("world, hello")
    assert ids.dtype == np.int64
    assert vocab.decode(ids) == "world, hello"
    assert list(vocab.encode("dehl")) == [vocab.chars.index(c) for c in "dehl"]
    with pytest.raises(UserError, match=r"not in the model's vocabulary: 'X', 'é'"):
        vocab.encode("hello X é", "--prime")


def test_state_is_json_and_split_is_contiguous_95_5(tmp_path):
    corpus = SAMPLE * 30
    path = write(tmp_path, "c.txt", corpus)
    config = {"data": path, "batch_size": 4, "seq_len": 16}
    state = TASK.prepare(config)
    state = json.loads(json.dumps(state))  # what a run directory stores and reloads
    n = len(corpus)
    assert state["n_valid"] == int(n * VALID_FRACTION)
    assert state["n_train"] + state["n_valid"] == n
    vocab = text.Vocabulary(state["vocab"])
    train = vocab.decode(TASK.split_ids(state, "train", config))
    valid = vocab.decode(TASK.split_ids(state, "valid", config))
    assert train + valid == corpus and valid == corpus[state["n_train"]:]


def test_max_chars_uses_a_prefix(tmp_path):
    path = write(tmp_path, "c.txt", SAMPLE * 30)
    state = TASK.prepare({"data": path, "max_chars": 2000, "batch_size": 4, "seq_len": 16})
    assert state["n_chars"] == 2000


def test_changed_data_file_is_noticed(tmp_path):
    path = write(tmp_path, "c.txt", SAMPLE * 30)
    config = {"data": path, "batch_size": 4, "seq_len": 16}
    state = TASK.prepare(config)
    write(tmp_path, "c.txt", (SAMPLE * 30).upper())
    with pytest.raises(UserError, match="changed since this run was trained"):
        TASK.split_ids(state, "train", config)


def test_eval_data_with_unknown_characters(tmp_path):
    path = write(tmp_path, "c.txt", SAMPLE * 30)
    config = {"data": path, "batch_size": 4, "seq_len": 16}
    state = TASK.prepare(config)
    other = write(tmp_path, "other.txt", "Zebra #1\n")
    with pytest.raises(UserError) as refused:
        TASK.split_ids(state, "test", dict(config, eval_data=other))
    assert str(refused.value).startswith(f"{other} has characters not in the model's vocab")
    ok = write(tmp_path, "ok.txt", "All speak.\n")
    ids = TASK.split_ids(state, "test", dict(config, eval_data=ok))
    assert text.Vocabulary(state["vocab"]).decode(ids) == "All speak.\n"


# ---- batching ---------------------------------------------------------------------------

def test_stream_windows_by_hand():
    ids = np.arange(13, dtype=np.int64)  # 12 inputs fit 2 streams x 2 windows of 3
    batches = list(streams.stream_windows(ids, batch_size=2, seq_len=3))
    assert [b["reset"] for b in batches] == [True, False]
    np.testing.assert_array_equal(batches[0]["x"], [[0, 6], [1, 7], [2, 8]])
    np.testing.assert_array_equal(batches[1]["x"], [[3, 9], [4, 10], [5, 11]])
    for b in batches:
        np.testing.assert_array_equal(b["y"], b["x"] + 1)
        assert b["x"].flags.c_contiguous and b["lengths"] is None


def test_streams_are_contiguous_across_windows_with_random_offset():
    ids = np.arange(1000, dtype=np.int64)
    rng = np.random.default_rng(3)
    offsets = set()
    for _ in range(5):
        batches = list(streams.stream_windows(ids, batch_size=4, seq_len=10, rng=rng))
        assert len(batches) == streams.windows_per_epoch(1000, 4, 10) == 24
        x = np.concatenate([b["x"] for b in batches])  # (24*10, 4): each column one stream
        y = np.concatenate([b["y"] for b in batches])
        # Within a stream consecutive windows continue the text: the carried state is valid.
        assert (np.diff(x, axis=0) == 1).all() and (y == x + 1).all()
        assert (np.diff(x[0]) == x.shape[0]).all()  # streams are adjacent segments
        offsets.add(int(x[0, 0]))
    assert len(offsets) > 1 and max(offsets) <= 10


@pytest.mark.parametrize("n", [2, 50, 5000, 12345])
def test_eval_streams_score_every_target_once(n):
    ids = (np.arange(n, dtype=np.int64) * 7) % 1000003
    x, y, mask = streams.eval_streams(ids, max_streams=8, warmup=20)
    pos = np.searchsorted(ids, x)  # ids are increasing here, so this recovers positions
    np.testing.assert_array_equal(np.sort(pos[mask]), np.arange(n - 1))
    np.testing.assert_array_equal(y[mask], ids[pos[mask] + 1])
    # Every stream reads contiguous text from its start (warm-up included); rows past
    # the end of the split are padding and never scored.
    S, L, W = streams.eval_layout(n - 1, 8, 20)
    assert x.shape == (W + L, S)
    for s in range(S):
        real = np.arange(W + L) + s * L < n - 1
        assert (np.diff(pos[real, s]) == 1).all()
        assert not mask[~real, s].any()
    if x.shape[1] > 1:
        assert not mask[:20, 1:].any()  # warm-up steps are not scored


# ---- metrics and baselines --------------------------------------------------------------

def test_logits_nll_by_hand():
    logits = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    nll, hit = metrics.logits_nll(logits, np.array([1, 0]))
    np.testing.assert_allclose(nll, [math.log(2.0), -math.log(0.75)])
    assert list(hit) == [False, True]  # the tie in row 0 breaks to id 0
    m = metrics.summarize(float(nll.sum()), 1, 2)
    assert m["bits_per_char"] == pytest.approx(m["loss"] / math.log(2))
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))


def test_perplexity_beyond_the_float_range_is_inf():
    # exp(loss) overflows a float past ~709.78 nats: a diverging run's validation loss
    m = metrics.summarize(800.0 * 4, 0, 4)
    assert m["loss"] == 800.0 and m["perplexity"] == math.inf
    assert m["bits_per_char"] == pytest.approx(800.0 / math.log(2))
    assert metrics.summarize(709.0, 0, 1)["perplexity"] == pytest.approx(math.exp(709.0))


def test_baselines_by_hand():
    train = np.array([0, 1, 0, 1])  # "abab": a->b twice, b->a once
    valid = np.array([0, 1, 0])  # targets: b after a, a after b
    got = metrics.baseline_metrics(train, valid, vocab_size=2)
    # unigram: counts a=2, b=2, +1 each -> 1/2 for both
    assert got["unigram"]["loss"] == pytest.approx(math.log(2.0))
    # bigram with add-one: p(b|a) = (2+1)/(2+2) = 3/4, p(a|b) = (1+1)/(1+2) = 2/3
    assert got["bigram"]["loss"] == pytest.approx(-(math.log(3 / 4) + math.log(2 / 3)) / 2)
    assert got["bigram"]["accuracy"] == 1.0 and got["bigram"]["chars"] == 2


def _bigram_table(train_ids, v):
    """(V, V) log p(next | previous) of the baseline's bigram model, every pair."""
    bi = metrics.BigramCounts(train_ids, v)
    return bi.log_probs(np.repeat(np.arange(v), v), np.tile(np.arange(v), v)).reshape(v, v)


class BigramRunner:
    """A real (count-based) character model behind the Runner protocol: logits are the
    smoothed bigram log-probabilities of the previous character."""

    def __init__(self, table):
        self.table = table  # (V, V)

    def forward(self, x, lengths=None, state=None):
        return self.table[x].astype(np.float32), None  # (T, B, V)

    def step(self, x_t, state=None):
        return self.table[x_t].astype(np.float32), None


def test_evaluate_matches_the_bigram_baseline_exactly(tmp_path):
    # evaluate() streams, warms up, chunks and masks; scored with a bigram model it must
    # reproduce the baseline's number, proving every target is counted once.
    path = write(tmp_path, "c.txt", SAMPLE * 400)
    config = {"data": path, "batch_size": 8, "seq_len": 32}
    state = TASK.prepare(config)
    table = _bigram_table(TASK.split_ids(state, "train", config), len(state["vocab"]))
    got = TASK.evaluate(state, "valid", config, BigramRunner(table))
    want = TASK.baselines(state, "valid", config)["bigram"]
    assert got["chars"] == want["chars"] == state["n_valid"] - 1
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["accuracy"] == pytest.approx(want["accuracy"])


def test_valid_batches_fit_a_short_split(tmp_path):
    path = write(tmp_path, "c.txt", SAMPLE * 30)
    config = {"data": path, "batch_size": 16, "seq_len": 20}
    state = TASK.prepare(config)
    batches = list(TASK.batches(state, "valid", config, np.random.default_rng(0)))
    assert batches and batches[0]["reset"] and batches[0]["x"].shape[0] == 20


# ---- sampling ---------------------------------------------------------------------------

def test_temperature_zero_and_top_1_are_argmax():
    logits = np.array([0.1, 2.0, -1.0, 1.9])
    rng = np.random.default_rng(0)
    assert all(sampling.pick(logits, 0.0, None, rng) == 1 for _ in range(5))
    assert all(sampling.pick(logits, 1.5, 1, rng) == 1 for _ in range(20))


def test_distribution_temperature_and_top_k():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(sampling.next_char_distribution(logits, 1.0, None),
                               [0.1, 0.2, 0.3, 0.4])
    p = sampling.next_char_distribution(logits, 0.5, None)  # squares, renormalised
    np.testing.assert_allclose(p, np.array([1, 4, 9, 16]) / 30)
    np.testing.assert_allclose(sampling.next_char_distribution(logits, 1.0, 2),
                               [0, 0, 3 / 7, 4 / 7])


def test_draws_follow_the_distribution_and_repeat_with_the_seed():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    draws = [sampling.pick(logits, 1.0, None, np.random.default_rng(s)) for s in range(4000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [sampling.pick(logits, 0.8, 3, rng_a) for _ in range(50)] == \
        [sampling.pick(logits, 0.8, 3, rng_b) for _ in range(50)]


def _bigram_run(tmp_path):
    """(state, config, a bigram model's runner) of a char-lm task on SAMPLE repeated."""
    path = write(tmp_path, "c.txt", SAMPLE * 400)
    config = {"data": path, "batch_size": 8, "seq_len": 32}
    state = TASK.prepare(config)
    runner = BigramRunner(_bigram_table(TASK.split_ids(state, "train", config),
                                        len(state["vocab"])))
    return state, config, runner


def test_predict_with_bigram_model_and_its_errors(tmp_path):
    state, config, runner = _bigram_run(tmp_path)
    opts = {"prime": "All", "length": 40, "temperature": 0.8, "top_k": None, "seed": 1}
    out = "\n".join(TASK.predict(state, config, runner, opts))
    assert out.startswith("All") and len(out) == 43
    assert out == "\n".join(TASK.predict(state, config, runner, opts))
    greedy = "\n".join(TASK.predict(state, config, runner, dict(opts, temperature=0.0)))
    assert greedy == "\n".join(TASK.predict(state, config, runner,
                                            dict(opts, temperature=0.0, seed=99)))
    with pytest.raises(UserError, match=r"--prime has characters not in the model's vocabulary: 'Q'"):
        list(TASK.predict(state, config, runner, dict(opts, prime="Queen")))
    with pytest.raises(UserError, match="--prime must not be empty"):
        list(TASK.predict(state, config, runner, dict(opts, prime="")))
    with pytest.raises(UserError, match="--temperature"):
        list(TASK.predict(state, config, runner, dict(opts, temperature=-1)))


def test_a_prime_with_many_unknown_characters_says_how_many_are_left_out(tmp_path):
    """--prime is checked as every text the run reads is (Vocabulary.encode): five unknown
    characters are named and the rest counted, and a prime with Windows line ends for a
    run trained without them gets the dos2unix hint."""
    state, config, runner = _bigram_run(tmp_path)
    opts = {"prime": "All", "length": 5, "temperature": 0.8, "top_k": None, "seed": 1}
    with pytest.raises(UserError, match=r"vocabulary: 'D', 'G', 'J', 'K', 'Q' "
                                        r"\(and 2 more\)$"):
        list(TASK.predict(state, config, runner, dict(opts, prime="All DGJKQXZ")))
    with pytest.raises(UserError, match=r"'\\r' \(the text has Windows line ends"):
        list(TASK.predict(state, config, runner, dict(opts, prime="All.\r\nSpeak")))


def test_a_prime_with_bytes_that_are_not_utf8_says_so(tmp_path):
    """A --prime argument with bytes that are not UTF-8 (kept as lone surrogates) is named
    as such, by predict and by predict --stream, as the stream's lines are."""
    from recurrent.model import SequenceModel
    state, config, runner = _bigram_run(tmp_path)
    spec = TASK.model_spec(state, config)
    opts = {"prime": "All\udcff", "length": 5, "temperature": 0.8, "top_k": None, "seed": 1}
    with pytest.raises(UserError, match=r"^--prime is not UTF-8 text \(byte 0xff\)$"):
        list(TASK.predict(state, config, runner, opts))
    with pytest.raises(UserError, match=r"^--prime is not UTF-8 text \(byte 0xff\)$"):
        sampling.next_char_stream(SequenceModel(spec, cell="gru", hidden_size=6, seed=2).eval(),
                                  text.Vocabulary(state["vocab"]), 3, "All\udcff")
