"""char-lm metrics at large vocabularies: logits_nll works chunk_rows(V) rows at a time and
the bigram baseline keeps only the pairs seen in training (BigramCounts). Both are checked
against plain dense numpy written here, on small random inputs and at a V whose dense
V x V bigram table would not fit (20000^2 float64 = 3.2 GB)."""
import math
from collections import Counter

import numpy as np
import pytest

from recurrent_plugins.char_lm import metrics


def dense_nll(logits, targets):
    """The textbook float64 log-softmax loss and argmax hit of every row at once."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1)
    log_norm = np.log(np.exp(z - top[:, None]).sum(axis=1)) + top
    return log_norm - z[np.arange(len(z)), targets], z.argmax(axis=1) == targets


def dense_bigram(train_ids, split_ids, vocab_size):
    """(table (V, V) add-one log p(next | prev), summed nats, argmax hits) on split_ids."""
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    counts += 1.0
    table = np.log(counts / counts.sum(axis=1, keepdims=True))
    prev, nxt = split_ids[:-1], split_ids[1:]
    return table, float(-table[prev, nxt].sum()), int((table.argmax(axis=1)[prev] == nxt).sum())


# float64 logits are reduced in float64 throughout; float32 ones are shifted and
# exponentiated in float32 (row sums and logs in float64): ~1e-7 relative per row
TOLERANCE = {np.float64: {"rtol": 1e-13, "atol": 1e-13},
             np.float32: {"rtol": 1e-6, "atol": 1e-6}}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, v, chunk_elements", [
    (1, 1, 4), (7, 3, 6), (50, 13, 64), (101, 10, 100), (33, 200, 150), (0, 5, 16),
    (1000, 37, metrics.CHUNK_ELEMENTS),
])
def test_logits_nll_matches_dense(monkeypatch, n, v, chunk_elements, dtype):
    # small CHUNK_ELEMENTS: many blocks, the last one short (n is no multiple of the rows)
    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(n * 1000 + v)
    logits = (rng.standard_normal((n, v)) * 4.0 + 30.0).astype(dtype)
    logits[: n // 4] = np.round(logits[: n // 4])  # ties: argmax takes the lowest id
    targets = rng.integers(0, v, n)
    nll, hit = metrics.logits_nll(logits, targets)
    want_nll, want_hit = dense_nll(logits, targets)
    assert nll.dtype == np.float64 and nll.shape == (n,) and hit.dtype == bool
    np.testing.assert_allclose(nll, want_nll, **TOLERANCE[dtype])
    np.testing.assert_array_equal(hit, want_hit)


def test_logits_nll_chunk_rows_bound_the_block():
    assert metrics.chunk_rows(16000) * 16000 <= metrics.CHUNK_ELEMENTS
    assert metrics.chunk_rows(metrics.CHUNK_ELEMENTS * 4) == 1  # one row even when wider


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64])
def test_logits_nll_masked_strided_and_other_dtypes(monkeypatch, dtype):
    # task.evaluate passes logits.reshape(-1, V)[keep]; strided (Fortran-order) input and
    # other dtypes (widened to float64 block by block) give the dense answer too
    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 40)
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((6, 4, 9)) * 3).astype(dtype)
    keep = rng.random(24) < 0.6
    rows, targets = logits.reshape(-1, 9)[keep], rng.integers(0, 9, int(keep.sum()))
    want_nll, want_hit = dense_nll(rows, targets)
    tolerance = TOLERANCE.get(dtype, TOLERANCE[np.float64])
    spaced = np.zeros((len(rows), 18), dtype=dtype)
    spaced[:, ::2] = rows  # a column-strided view
    for given in (rows, np.asfortranarray(rows), spaced[:, ::2]):
        nll, hit = metrics.logits_nll(given, targets)
        np.testing.assert_allclose(nll, want_nll, **tolerance)
        np.testing.assert_array_equal(hit, want_hit)


@pytest.mark.parametrize("v, n_train, n_split", [
    (2, 4, 3), (5, 2, 30), (5, 1, 30), (12, 40, 200), (60, 300, 500), (300, 2000, 999),
])
def test_bigram_baseline_matches_the_dense_table(v, n_train, n_split):
    # the small training texts leave most pairs, and some whole rows, unseen
    rng = np.random.default_rng(v + n_train)
    train = rng.integers(0, v, n_train)
    split = rng.integers(0, v, n_split)
    table, nats, hits = dense_bigram(train, split, v)
    got = metrics.baseline_metrics(train, split, v)["bigram"]
    assert got == metrics.summarize(nats, hits, n_split - 1)  # the same bits
    bi = metrics.BigramCounts(train, v)
    prev, nxt = np.repeat(np.arange(v), v), np.tile(np.arange(v), v)  # every pair
    np.testing.assert_array_equal(bi.log_probs(prev, nxt), table.ravel())
    np.testing.assert_array_equal(bi.best_next(), table.argmax(axis=1))


def test_bigram_ties_and_unseen_rows_pick_the_lowest_id():
    train = np.array([3, 2, 3, 1, 0, 0])  # 3 -> 2 and 3 -> 1 once each: tie; 4 never seen
    bi = metrics.BigramCounts(train, 5)
    assert list(bi.best_next()) == [0, 0, 3, 1, 0]
    assert list(bi.pair_counts(np.array([3, 3, 3, 4, 0]), np.array([1, 2, 0, 4, 0]))) \
        == [1, 1, 0, 0, 1]


def test_large_vocabulary_without_a_dense_table():
    # a dense float64 V x V table here is 3.2 GB; the seen pairs are a few hundred
    v = 20000
    assert v * v * 8 > 3e9
    rng = np.random.default_rng(7)
    alphabet = rng.choice(v, 50, replace=False)  # few characters, spread over the ids
    train = rng.choice(alphabet, 600)
    split = np.concatenate([rng.choice(alphabet, 300), [v - 1, 0, v - 1]])  # unseen ones
    pairs, followed = Counter(zip(train[:-1], train[1:])), Counter(train[:-1])
    log_p = [math.log((pairs[(a, b)] + 1) / (followed[a] + v)) for a, b in zip(split[:-1],
                                                                              split[1:])]

    def best(a):  # most frequent successor, lowest id on ties, 0 after an unseen character
        seen = [(-c, b) for (p, b), c in pairs.items() if p == a]
        return min(seen)[1] if seen else 0

    hits = sum(best(a) == b for a, b in zip(split[:-1], split[1:]))
    got = metrics.baseline_metrics(train, split, v)
    assert got["bigram"]["chars"] == len(split) - 1
    assert got["bigram"]["loss"] == pytest.approx(-sum(log_p) / len(log_p), rel=1e-12)
    assert got["bigram"]["accuracy"] == hits / len(log_p)
    uni = np.log((np.bincount(train, minlength=v) + 1.0) / (len(train) + v))
    assert got["unigram"]["loss"] == pytest.approx(-uni[split[1:]].mean(), rel=1e-12)

    logits = rng.standard_normal((301, v)) * 3.0  # a few hundred rows, 3 per block
    targets = rng.integers(0, v, 301)
    for dtype in (np.float64, np.float32):
        want_nll, want_hit = dense_nll(logits.astype(dtype), targets)
        nll, hit = metrics.logits_nll(logits.astype(dtype), targets)
        np.testing.assert_allclose(nll, want_nll, **TOLERANCE[dtype])
        np.testing.assert_array_equal(hit, want_hit)
