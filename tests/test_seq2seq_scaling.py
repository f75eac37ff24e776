"""seq2seq work that must not grow faster than it needs to, checked for its results only
(no timings): the vectorised edit distance against a plain dynamic programme, the beam
search's top-K selection against a full stable sort, the search (histories traced back
through parent pointers at the end) against the previous algorithm (every step copied the
whole history) and against a plain per-sentence beam, and the cached baseline scores."""
import itertools
import json
import random

import numpy as np
import pytest

from recurrent.seq2seq import Seq2SeqModel, search
from recurrent.seq2seq.decode import _start, _top_k
from recurrent_plugins.seq2seq import metrics


# ---- edit distance -------------------------------------------------------------------

def plain_edit_distance(a, b):
    """The full (len(a)+1) x (len(b)+1) Levenshtein table, unit costs."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


def random_pairs(rng, n):
    pairs = []
    for k in range(n):
        symbols = rng.choice([1, 2, 3, 10, 1000])  # one symbol .. nearly all distinct
        la = rng.choice([0, 1, 2, rng.randint(0, 12), rng.randint(0, 90)])
        lb = rng.choice([0, 1, rng.randint(0, 12), rng.randint(0, 90)])
        a = [f"s{rng.randrange(symbols)}" for _ in range(la)]
        if k % 9 == 0:
            b = list(a)  # equal
        elif k % 9 == 1:
            b = a[::-1]
        elif k % 9 == 2 and a:  # one edit away
            b = list(a)
            b[rng.randrange(len(b))] = "x"
        else:
            b = [f"s{rng.randrange(symbols)}" for _ in range(lb)]
        pairs.append((a, b))
    return pairs


def test_edit_distances_equal_a_plain_dynamic_programme():
    pairs = random_pairs(random.Random(0), 600)
    pairs += [([], []), ([], ["a"]), (["a"], []), (["a"], ["a"]), (["a"], ["b"]),
              (list("kitten"), list("sitting")), (["x"] * 300, ["x"] * 299 + ["y"]),
              ([str(i) for i in range(250)], [str(i) for i in range(250, 0, -1)])]
    want = [plain_edit_distance(a, b) for a, b in pairs]
    got = metrics.edit_distances([a for a, _ in pairs], [b for _, b in pairs])
    assert got.tolist() == want
    assert [metrics.edit_distance(a, b) for a, b in pairs[:80]] == want[:80]
    assert [metrics.edit_distance(b, a) for a, b in pairs[:80]] == want[:80]  # symmetric


def test_edit_distances_in_small_chunks_and_any_hashable_symbols(monkeypatch):
    rng = random.Random(1)
    pairs = random_pairs(rng, 120)
    pairs += [([1, 2, (3, 4)], [(3, 4), 2, 1.5]), ([None, "a"], ["a", None])]
    want = [plain_edit_distance(a, b) for a, b in pairs]
    monkeypatch.setattr(metrics, "CHUNK", 7)  # chunks of mixed lengths, a short last one
    got = metrics.edit_distances([a for a, _ in pairs], [b for _, b in pairs])
    assert got.tolist() == want
    assert metrics.edit_distances([], []).tolist() == []
    with pytest.raises(ValueError):
        metrics.edit_distances([["a"]], [])


def test_one_long_pair_does_not_pad_the_others(monkeypatch):
    """Pairs run in chunks of similar width under a cell budget: a single long reference
    among short ones is scored in a chunk of its own, not padded into all of theirs."""
    rng = random.Random(2)
    pairs = random_pairs(rng, 200)
    pairs.insert(57, (list("ab" * 900), list("ba" * 850)))
    calls = []

    def spy(rows, cols):  # the real pass, recording each chunk's padded size
        calls.append((len(rows), max(len(b) for b in cols) + 1))
        return real(rows, cols)

    real = metrics._distances
    monkeypatch.setattr(metrics, "_distances", spy)
    monkeypatch.setattr(metrics, "CELLS", 4096)
    got = metrics.edit_distances([a for a, _ in pairs], [b for _, b in pairs])
    assert got.tolist() == [plain_edit_distance(a, b) for a, b in pairs]
    assert (1, 1801) in calls  # the long pair alone
    assert all(n * width <= 4096 for n, width in calls if n > 1)


def test_symbol_error_rate_sums_the_edit_distances():
    refs = [["HH", "AH", "L", "OW"], ["K", "AE", "T"], ["D", "AO", "G"]]
    hyps = [["HH", "L", "OW"], ["K", "AE", "T"], []]
    out = metrics.score(hyps, refs, "token", True)
    assert out["per"] == (1 + 0 + 3) / 10
    assert out["wer"] == 1 - 1 / 3


# ---- top-K selection -----------------------------------------------------------------

def test_top_k_is_the_head_of_a_stable_descending_sort():
    rng = np.random.default_rng(0)
    for trial in range(2000):
        B, K = int(rng.integers(1, 4)), int(rng.integers(1, 9))
        N = int(rng.integers(K, 80))
        x = rng.integers(-3, 3, (B, N)).astype(float)  # many ties
        x[rng.random((B, N)) < 0.4] = -np.inf  # hypotheses that do not exist
        if trial % 5 == 0:
            x[rng.random((B, N)) < 0.3] = -0.0  # equal to 0.0
        if trial % 97 == 0:
            x[0, int(rng.integers(N))] = np.nan
        want = np.argsort(-x, axis=1, kind="stable")[:, :K]
        np.testing.assert_array_equal(_top_k(x, K), want)


# ---- beam search ---------------------------------------------------------------------

def previous_search(model, src, beam, max_len=None, alpha=1.0):
    """The search as it was before it traced histories back: every step copies each
    survivor's whole token and attention history, and a full stable sort ranks all K*V
    continuations. Returns the same fields as search()."""
    from recurrent.seq2seq.decode import Hypotheses
    K = beam
    src, src_len, limit = _start(src, max_len, alpha)
    B = src.shape[1]
    R = B * K
    eos = model.eos
    memory, states, threads = model.encode(src, src_len)
    rows = np.repeat(np.arange(B), K)
    memory = np.ascontiguousarray(memory[:, rows])
    row_len = src_len[rows]
    states = tuple(np.ascontiguousarray(s[:, rows]) for s in states)
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0
    scores = scores.reshape(R)
    finished = np.zeros(R, bool)
    prev = np.full(R, model.bos, np.int64)
    history = np.zeros((0, R), np.int64)
    attn = np.zeros((0, R, memory.shape[0]))
    lengths = np.zeros(R, np.int64)
    base = (np.arange(B) * K)[:, None]
    row_limit = limit[rows]
    for step in range(int(limit.max())):
        logp, states, weights = model.decoder_step(prev, states, memory, row_len, threads)
        V = logp.shape[1]
        logp[finished] = -np.inf
        logp[finished, eos] = 0.0
        total = (scores[:, None] + logp).reshape(B, K * V)
        order = np.argsort(-total, axis=1, kind="stable")[:, :K]
        parent = (base + order // V).reshape(R)
        token = (order % V).reshape(R)
        new_scores = np.take_along_axis(total, order, axis=1).reshape(R)
        stopped = step >= row_limit
        parent = np.where(stopped, np.arange(R), parent)
        token = np.where(stopped, eos, token)
        scores = np.where(stopped, scores, new_scores)
        was_finished = finished[parent]
        history = np.concatenate([history[:, parent], token[None]], axis=0)
        attn = np.concatenate([attn[:, parent], weights[parent][None]], axis=0)
        lengths = lengths[parent] + ~(was_finished | stopped)
        finished = was_finished | ((token == eos) & ~stopped)
        states = tuple(np.ascontiguousarray(s[:, parent]) for s in states)
        prev = token
        if not np.any(~finished & (step + 1 < row_limit)):
            break
    t = history.shape[0]
    norm = scores / np.maximum(lengths, 1) ** alpha if alpha else scores.copy()
    norm = np.where(np.isfinite(scores), norm, -np.inf).reshape(B, K)
    order = np.argsort(-norm, axis=1, kind="stable")
    rows = ((np.arange(B) * K)[:, None] + order).reshape(-1)
    tokens = history[:, rows].T.reshape(B, K, t)
    possible = np.isfinite(scores)
    finished = finished & possible
    lengths = np.where(possible, lengths, 0)
    n_tokens = (lengths[rows] - finished[rows]).reshape(B, K)
    tokens = np.where(np.arange(t)[None, None, :] < n_tokens[:, :, None], tokens, -1)
    return Hypotheses(tokens=tokens, lengths=n_tokens, finished=finished[rows].reshape(B, K),
                      scores=scores[rows].reshape(B, K),
                      normalised=np.take_along_axis(norm, order, axis=1),
                      attention=attn[:, rows].transpose(1, 0, 2).reshape(B, K, t, -1))


def tiny_model(attention, V, seed, dtype=np.float32, scale=3.0):
    spec = {"model": "seq2seq", "source_vocab": 7, "target_vocab": V, "embed_dim": 3,
            "attention": attention, "bos": 1, "eos": 2, "output": "sequence",
            "output_size": V}
    model = Seq2SeqModel(spec, hidden_size=5, num_layers=1 + seed % 2,
                         bidirectional=bool(seed % 2), seed=seed, dtype=dtype)
    model.params *= scale  # outputs that vary from step to step, EOS now and then
    return model.eval()


def sources(rng, lengths, vocab=7):
    src = np.zeros((max(lengths), len(lengths)), np.int64)
    for b, n in enumerate(lengths):
        src[:n, b] = rng.integers(3, vocab, n)
    return src


@pytest.mark.parametrize("attention", ["general", "dot", "additive"])
def test_search_equals_the_previous_algorithm_exactly(attention):
    rng = np.random.default_rng(2)
    for seed, V in itertools.product(range(2), (3, 6, 11)):
        model = tiny_model(attention, V, seed)
        for K, max_len, alpha in [(1, None, 1.0), (2, 3, 0.0), (4, None, 0.6),
                                  (5, 1, 1.0), (16, 5, 1.0), (3, None, 0.0)]:
            src = sources(rng, [int(n) for n in rng.integers(1, 7, 5)])
            want = previous_search(model, src, K, max_len, alpha)
            got = search(model, src, beam=K, max_len=max_len, alpha=alpha)
            for field in want._fields:
                w, g = getattr(want, field), getattr(got, field)
                assert w.dtype == g.dtype and w.shape == g.shape, field
                np.testing.assert_array_equal(g, w, err_msg=field)


def plain_beam(model, src_one, K, limit, alpha):
    """One sentence's beam as a list of hypotheses (tokens, score, finished, states):
    every live hypothesis is extended by every token, finished ones carry over as they
    are; the K best survive (ties to the earlier hypothesis, then the smaller token id);
    at the end, ranked by score / length^alpha. -> [(tokens without EOS, score,
    finished)], best first."""
    n = np.array([int((src_one[:, 0] != 0).sum())])
    memory, states, threads = model.encode(src_one[:n[0]], n)
    beam = [((), 0.0, False, states)]
    for _ in range(limit):
        live = [h for h in beam if not h[2]]
        if not live:
            break
        rows = np.array([i for i, h in enumerate(beam) if not h[2]])
        stacked = tuple(np.concatenate([h[3][j] for h in live], axis=1)
                        for j in range(len(states)))
        prev = np.array([h[0][-1] if h[0] else model.bos for h in live])
        logp, new_states, _ = model.decoder_step(
            prev, stacked, np.repeat(memory, len(live), axis=1), np.repeat(n, len(live)),
            threads)
        V = logp.shape[1]
        candidates = []
        for k, h in enumerate(beam):
            if h[2]:
                candidates.append((-h[1], k * V + model.eos, h))
        for i, k in enumerate(rows):
            for v in range(V):
                if np.isfinite(logp[i, v]):
                    h = beam[k]
                    candidates.append((-(h[1] + logp[i, v]), k * V + v,
                                       (h[0] + (v,), h[1] + logp[i, v], v == model.eos,
                                        tuple(s[:, i:i + 1] for s in new_states))))
        candidates.sort(key=lambda c: (c[0], c[1]))
        beam = [c[2] for c in candidates[:K]]
    def norm(h):
        return h[1] / max(len(h[0]), 1) ** alpha if alpha else h[1]
    ranked = sorted(beam, key=lambda h: -norm(h))
    return [(h[0][:-1] if h[2] else h[0], h[1], h[2]) for h in ranked]


@pytest.mark.parametrize("attention", ["general", "additive"])
def test_search_agrees_with_a_plain_per_sentence_beam(attention):
    rng = np.random.default_rng(4)
    model = tiny_model(attention, 7, 1, dtype=np.float64, scale=4.0)
    for K, max_len, alpha in [(2, 6, 1.0), (4, None, 0.0), (6, 4, 0.7)]:
        lengths = [int(n) for n in rng.integers(1, 6, 4)]
        src = sources(rng, lengths)
        got = search(model, src, beam=K, max_len=max_len, alpha=alpha)
        for b, length in enumerate(lengths):
            limit = max_len if max_len is not None else 2 * length + 10
            want = plain_beam(model, src[:, b:b + 1], K, limit, alpha)
            assert len(want) == int(np.isfinite(got.scores[b]).sum())
            for k, (tokens, score, finished) in enumerate(want):
                assert got.tokens[b, k, :got.lengths[b, k]].tolist() == list(tokens)
                assert bool(got.finished[b, k]) == finished
                np.testing.assert_allclose(got.scores[b, k], score, rtol=1e-9)


def test_search_attention_rows_follow_each_hypothesis():
    # The traced-back attention of a hypothesis is, at each step, the weights of the row
    # that emitted that step's token: the weights of a teacher-forced replay of it.
    model = tiny_model("general", 6, 1, dtype=np.float64)
    src = sources(np.random.default_rng(5), [5, 3])
    found = search(model, src, beam=3, max_len=7, alpha=0.0)
    for b in range(2):
        one = src[:, b:b + 1]
        n = np.array([int((one[:, 0] != 0).sum())])
        for k in range(3):
            steps = int(found.lengths[b, k]) + int(found.finished[b, k])
            seq = [*found.tokens[b, k, :found.lengths[b, k]], model.eos][:steps]
            memory, states, threads = model.encode(one[:n[0]], n)
            prev = np.array([model.bos])
            for s, token in enumerate(seq):
                _, states, weights = model.decoder_step(prev, states, memory, n, threads)
                np.testing.assert_allclose(found.attention[b, k, s, :n[0]], weights[0],
                                           rtol=1e-9, atol=1e-12)
                prev = np.array([token])


# ---- cached baselines ----------------------------------------------------------------

@pytest.fixture()
def prepared(tmp_path):
    pytest.importorskip("sacrebleu")
    from recurrent_plugins.seq2seq.task import Seq2Seq
    rng = random.Random(3)
    lines = []
    for i in range(400):
        word = "".join(rng.choice("abcdef") for _ in range(rng.randint(1, 8)))
        lines.append(f"{word}{i}\t{word[::-1]}{i}")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n")
    task = Seq2Seq()
    config = {"data": str(path)}
    return task, task.prepare(config), config


def test_baselines_are_scored_once_per_split_and_equal_a_fresh_scoring(prepared,
                                                                       monkeypatch):
    from recurrent_plugins.seq2seq import task as task_module
    task, state, config = prepared
    fresh = {split: task._score_baselines(state, task.pairs(state, split, config), config)
             for split in ("valid", "test")}
    calls = []
    score = metrics.score
    monkeypatch.setattr(metrics, "score", lambda *a: calls.append(1) or score(*a))
    first = task.baselines(state, "valid", config)
    assert first == fresh["valid"] and set(first) == {"majority", "copy"}
    assert len(calls) == 2
    first["majority"]["exact"] = -1  # the caller's copy: the cache keeps its own
    assert task.baselines(state, "valid", config) == fresh["valid"]
    assert len(calls) == 2  # kept in this process
    task_module._baseline_scores.clear()
    assert task.baselines(state, "valid", config) == fresh["valid"]
    assert len(calls) == 2  # and in recurrent.cache
    assert task.baselines(state, "test", config) == fresh["test"] != fresh["valid"]
    assert len(calls) == 4  # another split: scored
    limited = task.baselines(state, "test", {**config, "max_eval": 5})
    assert limited["copy"]["pairs"] == 5 and len(calls) == 6
    assert json.dumps(fresh["test"]) == json.dumps(task.baselines(state, "test", config))
