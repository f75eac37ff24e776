"""sentiment task object: prepare/state, splits, batches, baselines on real snippets, and the
error paths that do not need a trained model."""
import json

import numpy as np
import pytest
from helpers import bundled_reviews, write_reviews

from recurrent.errors import UserError
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.dataset import read_csv
from recurrent_plugins.sentiment.text import PAD_ID, UNK_ID, tokenize


@pytest.fixture(scope="module")
def slice_csv(tmp_path_factory):
    """The first 200 fresh and 200 rotten bundled snippets: a small real data set."""
    return write_reviews(tmp_path_factory.mktemp("rt") / "slice.csv", bundled_reviews(200))


def config(**kw):
    base = {"data": None, "text_column": "text", "label_column": "label", "max_vocab": 20000,
            "min_freq": 1, "max_tokens": 100, "pooling": "mean", "embed_dim": 8,
            "valid_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0, "batch_size": 16}
    base.update(kw)
    return base


def test_prepare_state_is_json_and_describes_the_split(slice_csv):
    state = TASK.prepare(config(data=slice_csv))
    assert json.loads(json.dumps(state)) == state
    assert state["classes"] == ["fresh", "rotten"]
    assert state["split_sizes"] == {"train": 320, "valid": 40, "test": 40}
    assert state["vocab"][:2] == ["<pad>", "<unk>"]
    assert state["vocab"][2] in (".", "the", ",")  # the most frequent tokens come first
    spec = TASK.model_spec(state, config(data=slice_csv))
    deep = {"input": "tokens", "vocab_size": len(state["vocab"]), "embed_dim": 8,
            "output": "mean", "output_size": 2}
    # the wide part is on by default, fitted before training (--wide-fit nb) and fixed,
    # its features dropped with probability 0.5 in training; cross-fitting is an option
    assert spec == dict(deep, wide_bigrams=131072, wide_fixed=True, wide_dropout=0.5)
    assert TASK.model_spec(state, config(data=slice_csv, wide_folds=5)) == dict(
        deep, wide_bigrams=131072, wide_fixed=True, wide_folds=5, wide_dropout=0.5)
    assert TASK.model_spec(state, config(data=slice_csv, wide="none")) == deep
    joint = config(data=slice_csv, wide_fit="joint", wide_dropout=0.0)
    assert TASK.model_spec(state, dict(joint, wide="unigrams",
                                       bigram_buckets=8)) == dict(deep, wide_bigrams=0)
    assert TASK.model_spec(state, dict(joint, wide="bigrams",
                                       bigram_buckets=8)) == dict(deep, wide_bigrams=8)
    assert TASK.model_spec(state, dict(joint, wide_dropout=0.25)) == dict(
        deep, wide_bigrams=131072, wide_dropout=0.25)


def test_vocabulary_comes_from_the_training_split_only(slice_csv):
    state = TASK.prepare(config(data=slice_csv))
    index = {tok: i for i, tok in enumerate(state["vocab"])}
    data = read_csv(slice_csv, "text", "label")
    train_seqs, _ = TASK.split_rows(state, "train", {})
    test_seqs, _ = TASK.split_rows(state, "test", {})
    # training rows never hit <unk> at min_freq 1; held-out rows do (unseen words)
    assert all(1 not in seq for seq in train_seqs)
    assert any(1 in seq for seq in test_seqs)
    assert len(index) == len(state["vocab"]) and len(data.texts) == 400


def test_the_default_cut_keeps_a_review_of_three_hundred_tokens_whole(tmp_path):
    """Long reviews are read whole by default: the --max-tokens default, which prepare()
    also falls back to, keeps 300 tokens."""
    default = next(o.default for o in TASK.options() if o.name == "max_tokens")
    # real snippets, each repeated and cut to exactly 300 tokens (more than 200, so a cut
    # at 200 would shorten them)
    reviews = [(" ".join((tokenize(text) * 300)[:300]), label)
               for text, label in bundled_reviews(20)]
    assert {len(tokenize(text)) for text, _ in reviews} == {300}
    path = write_reviews(tmp_path / "long.csv", reviews)
    unset = config(data=path)
    del unset["max_tokens"]
    for cfg in (config(data=path, max_tokens=default), unset):
        sequences, _ = TASK.split_rows(TASK.prepare(cfg), "train", cfg)
        assert {len(seq) for seq in sequences} == {300}


def test_max_vocab_and_min_freq(slice_csv):
    assert len(TASK.prepare(config(data=slice_csv, max_vocab=50))["vocab"]) == 50
    all_words = len(TASK.prepare(config(data=slice_csv, min_freq=1))["vocab"])
    frequent = len(TASK.prepare(config(data=slice_csv, min_freq=3))["vocab"])
    assert frequent < all_words


def test_batches_time_major_with_lengths(slice_csv):
    cfg = config(data=slice_csv, max_tokens=12)
    state = TASK.prepare(cfg)
    batches = list(TASK.batches(state, "train", cfg, np.random.default_rng(0)))
    assert sum(len(b["y"]) for b in batches) == 320
    for b in batches:
        t, n = b["x"].shape
        assert b["x"].dtype == np.int64 and b["lengths"].dtype == np.int64
        assert b["lengths"].shape == (n,) and b["y"].shape == (n,) and n <= 16
        assert t == b["lengths"].max() <= 12 and b["reset"] is True
        for col, length in enumerate(b["lengths"]):
            assert np.all(b["x"][length:, col] == PAD_ID) and np.all(b["x"][:length, col] > PAD_ID)
    again = list(TASK.batches(state, "train", cfg, np.random.default_rng(0)))
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(batches, again))
    valid = list(TASK.batches(state, "valid", cfg, np.random.default_rng(0)))
    assert sum(len(b["y"]) for b in valid) == 40


def test_word_dropout_replaces_training_tokens_by_unk_only(slice_csv):
    cfg = config(data=slice_csv)  # min_freq 1: no <unk> in training rows without dropout
    state = TASK.prepare(cfg)
    plain = list(TASK.batches(state, "train", cfg, np.random.default_rng(0)))
    dropped = list(TASK.batches(state, "train", dict(cfg, word_dropout=0.25),
                                np.random.default_rng(0)))
    assert len(plain) == len(dropped)
    changed = kept = 0
    for a, b in zip(plain, dropped):  # same rows in the same order, same lengths and labels
        assert np.array_equal(a["lengths"], b["lengths"]) and np.array_equal(a["y"], b["y"])
        assert np.array_equal(a["x"] == PAD_ID, b["x"] == PAD_ID)
        differ = a["x"] != b["x"]
        assert np.all(b["x"][differ] == UNK_ID) and np.all(a["x"][differ] > UNK_ID)
        changed += int(differ.sum())
        kept += int(((a["x"] != PAD_ID) & ~differ).sum())
    assert 0.2 < changed / (changed + kept) < 0.3
    again = list(TASK.batches(state, "train", dict(cfg, word_dropout=0.25),
                              np.random.default_rng(0)))
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(dropped, again))
    other_epoch = list(TASK.batches(state, "train", dict(cfg, word_dropout=0.25),
                                    np.random.default_rng(1)))
    assert not all(np.array_equal(a["x"], b["x"]) for a, b in zip(dropped, other_epoch))
    for split in ("valid", "test"):  # evaluation never drops
        a = list(TASK.batches(state, split, cfg, np.random.default_rng(0)))
        b = list(TASK.batches(state, split, dict(cfg, word_dropout=0.25),
                              np.random.default_rng(0)))
        assert all(np.array_equal(p["x"], q["x"]) for p, q in zip(a, b))


def test_eval_data_reads_the_whole_file_with_saved_labels(slice_csv, tmp_path):
    state = TASK.prepare(config(data=slice_csv))
    other = write_reviews(tmp_path / "other.csv", [("A triumph.", "fresh"), ("Dull.", "rotten"),
                                                   ("Zyzzyva!", "fresh")])
    seqs, y = TASK.split_rows(state, "test", {"eval_data": other})
    assert y.tolist() == [0, 1, 0] and len(seqs) == 3
    bad = write_reviews(tmp_path / "bad.csv", [("Fine.", "neutral"), ("Dull.", "rotten")])
    with pytest.raises(UserError, match="labels the model was not trained on: 'neutral'"):
        TASK.split_rows(state, "test", {"eval_data": bad})


def test_changed_training_file_is_refused(tmp_path):
    path = write_reviews(tmp_path / "d.csv", [(f"good film {i}", "pos") for i in range(10)]
                         + [(f"bad film {i}", "neg") for i in range(10)])
    state = TASK.prepare(config(data=path))
    write_reviews(path, [(f"good movie {i}", "pos") for i in range(10)]
                  + [(f"bad movie {i}", "neg") for i in range(10)])
    with pytest.raises(UserError, match="has changed since this run was trained"):
        TASK.split_rows(state, "valid", {})


def test_prepare_error_paths(tmp_path):
    with pytest.raises(UserError, match="single class 'pos'"):
        TASK.prepare(config(data=write_reviews(tmp_path / "one.csv", [("ok", "pos")] * 20)))
    with pytest.raises(UserError, match="columns found: 'review', 'label'"):
        TASK.prepare(config(data=write_reviews(tmp_path / "cols.csv", [("ok", "pos")],
                                               header=("review", "label"))))
    with pytest.raises(UserError, match="not found"):
        TASK.prepare(config(data=str(tmp_path / "missing.csv")))


def test_three_classes_work(tmp_path):
    rows = [(f"great {i}", "positive") for i in range(10)] + \
           [(f"fine {i}", "neutral") for i in range(10)] + \
           [(f"awful {i}", "negative") for i in range(10)]
    state = TASK.prepare(config(data=write_reviews(tmp_path / "three.csv", rows)))
    assert state["classes"] == ["negative", "neutral", "positive"]
    assert TASK.model_spec(state, config())["output_size"] == 3
    base = TASK.baselines(state, "test", {})
    assert base["bow_logreg"]["accuracy"] == 1.0  # one polarity word per class decides it


def test_baselines_on_real_snippets(slice_csv):
    state = TASK.prepare(config(data=slice_csv))
    base = TASK.baselines(state, "valid", {})
    assert set(base) == {"majority", "bow_logreg", "nb_logreg"}
    majority = base["majority"]
    assert majority["accuracy"] == 0.5  # balanced slice: 20 fresh, 20 rotten in valid
    assert majority["loss"] == pytest.approx(np.log(2))
    assert sorted(majority["confusion"][0] + majority["confusion"][1]) == [0, 0, 20, 20]
    assert base["bow_logreg"]["accuracy"] > 0.5 and base["bow_logreg"]["loss"] < np.log(2)
    assert base["nb_logreg"]["accuracy"] > 0.5 and base["nb_logreg"]["loss"] < np.log(2)


def test_fitted_baselines_are_kept_apart_per_label_column(tmp_path, monkeypatch):
    """Two label columns of one file, with the same classes and (max_vocab 3) the same
    vocabulary: each gets baselines fitted on its own labels, in this process and through
    the on-disk cache."""
    from recurrent_plugins.sentiment import task
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path / "cache"))
    rows = [(f"the good film {i}" if i % 4 else f"the bad film {i}",
             "pos" if i % 4 else "neg", "pos" if i % 2 else "neg") for i in range(40)]
    path = write_reviews(tmp_path / "two.csv", rows, header=("text", "label", "label2"))
    states = {c: TASK.prepare(config(data=path, label_column=c, max_vocab=3))
              for c in ("label", "label2")}
    assert states["label"]["vocab"] == states["label2"]["vocab"]
    assert states["label"]["classes"] == states["label2"]["classes"] == ["neg", "pos"]
    for fresh in (False, True):  # fitted in this process, then read from the cache
        for column, state in states.items():
            if fresh:
                for memo in (task._baseline_models, task._nb_models, task._fold_models):
                    memo.clear()
            _, y_train = TASK.split_rows(state, "train", {})
            _, prior, _ = TASK._baseline_models(state)
            np.testing.assert_allclose(prior, np.bincount(y_train, minlength=2) / len(y_train))
            y, probs = TASK.baseline_probabilities(state, "valid", {})
            np.testing.assert_allclose(probs["majority"], np.tile(prior, (len(y), 1)))
    nb = [TASK._nb_model(s, 0) for s in states.values()]
    assert not np.allclose(nb[0].weight, nb[1].weight)
