"""The wide part (recurrent/wide.py): n-gram features, alone a logistic regression, and in
SequenceModel an addition to the logits that starts at zero."""
import numpy as np
import pytest

from recurrent.conformance import numeric_grad
from recurrent.model import SequenceModel, check_spec
from recurrent.wide import Wide, ngram_features, row_folds
from recurrent_plugins.sentiment import baselines as bl
from recurrent_plugins.sentiment.text import pad_batch

SPEC = {"input": "tokens", "vocab_size": 9, "embed_dim": 4, "output": "mean",
        "output_size": 3}


def check_grads(model, x, lengths, probe, names):
    """The model's gradients of sum(outputs * probe) for ``names`` match central finite
    differences (float64 models)."""
    def loss():
        return float((model.forward(x, lengths=lengths)[0] * probe).sum())

    model.zero_grad()
    model.forward(x, lengths=lengths)
    model.backward(probe)
    for name in names:
        np.testing.assert_allclose(model.named_grads[name],
                                   numeric_grad(loss, model.named_params[name]), atol=1e-7)


def test_unigram_features_are_the_bag_of_words():
    seqs = [[2, 5, 5, 8], [3], [7, 2, 6]]
    x, lengths = pad_batch(seqs)
    got = ngram_features(x, lengths, 9, 0).toarray()
    np.testing.assert_array_equal(got, bl.bag_of_words(seqs, 9).toarray())


def test_bigrams_see_word_order_and_ignore_padding():
    x, lengths = pad_batch([[2, 3, 4], [4, 3, 2], [2, 3]])
    f = ngram_features(x, lengths, 9, 64).toarray()
    assert f[:, :9].sum(axis=1).tolist() == [3, 3, 2]  # padded steps add no unigram
    assert f[:, 9:].sum(axis=1).tolist() == [2, 2, 1]  # one bigram per neighbouring pair
    assert not np.array_equal(f[0, 9:], f[1, 9:])  # same words, another order
    assert np.all(f[2, 9:] <= f[0, 9:])  # (2, 3) is shared with row 0


def test_wide_alone_is_logistic_regression():
    """Wide logits and weight gradient equal LogisticRegression's on the bag of words."""
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(2, 9, rng.integers(1, 6))) for _ in range(12)]
    y = rng.integers(0, 3, 12)
    wide = Wide(9, 0, 3, np.float64)
    wide.params()["weight"][...] = rng.standard_normal((9, 3))
    x, lengths = pad_batch(seqs)
    logits = wide.forward(x, lengths)
    logreg = bl.LogisticRegression(0.0)
    logreg.weight, logreg.bias = wide.params()["weight"], np.zeros(3)
    bow = bl.bag_of_words(seqs, 9)
    np.testing.assert_allclose(logits, np.asarray(bow @ logreg.weight))
    probs = logreg.predict_proba(bow)
    onehot = np.eye(3)[y]
    wide.backward((probs - onehot) / len(y))  # d mean cross-entropy / d logits
    theta = np.concatenate([logreg.weight.ravel(), logreg.bias])
    _, grad = logreg.objective(theta, bow, onehot)
    np.testing.assert_allclose(wide.grads()["weight"].ravel(), grad[:27], atol=1e-12)


def test_model_with_wide_part_starts_as_the_deep_model_and_differentiates():
    rng = np.random.default_rng(1)
    x, lengths = pad_batch([[2, 3, 4, 5], [6, 7], [8]])
    deep = SequenceModel(SPEC, cell="gru", hidden_size=5, seed=3, dtype=np.float64)
    both = SequenceModel(dict(SPEC, wide_bigrams=16), cell="gru", hidden_size=5, seed=3,
                         dtype=np.float64)
    assert both.param_shapes()["wide.weight"] == (9 + 16, 3)
    np.testing.assert_array_equal(both.forward(x, lengths=lengths)[0],
                                  deep.forward(x, lengths=lengths)[0])
    both.named_params["wide.weight"][...] = rng.standard_normal((25, 3))
    check_grads(both, x, lengths, rng.standard_normal((3, 3)),
                ("wide.weight", "head.bias", "embedding.weight"))


def test_an_empty_row_gets_no_wide_logits():
    model = SequenceModel(dict(SPEC, wide_bigrams=4), cell="gru", hidden_size=3, seed=0)
    model.named_params["wide.weight"][...] = 1.0
    deep = SequenceModel(SPEC, cell="gru", hidden_size=3, seed=0)
    x = np.array([[2, 3], [4, 5]])
    lengths = np.array([0, 2])
    np.testing.assert_array_equal(model.forward(x, lengths=lengths)[0][0],
                                  deep.forward(x, lengths=lengths)[0][0])


def test_wide_spec_is_checked():
    with pytest.raises(ValueError, match="wide_bigrams"):
        check_spec(dict(SPEC, wide_bigrams=-1))
    with pytest.raises(ValueError, match="pooled"):
        check_spec(dict(SPEC, output="sequence", wide_bigrams=0))
    model = SequenceModel(dict(SPEC, output="last", wide_bigrams=0), cell="gru",
                          hidden_size=3)
    with pytest.raises(ValueError, match="wide"):
        model.step(np.array([2]))


def test_feature_dropout_in_training_only_and_differentiated_with_its_mask():
    rng = np.random.default_rng(2)
    seqs = [list(rng.integers(2, 9, rng.integers(3, 8))) for _ in range(40)]
    x, lengths = pad_batch(seqs)
    wide = Wide(9, 32, 3, np.float64, dropout=0.5, rng=np.random.default_rng(5))
    wide.params()["weight"][...] = rng.standard_normal((41, 3))
    plain = ngram_features(x, lengths, 9, 32)
    wide.eval()
    np.testing.assert_allclose(wide.forward(x, lengths), plain @ wide.params()["weight"])
    wide.train()
    dropped = wide._drop(plain)
    assert set(np.unique(dropped.data)) == {2.0}  # kept features scaled by 1 / (1 - p)
    kept = dropped.nnz / plain.nnz
    assert 0.4 < kept < 0.6
    assert (dropped.toarray() <= 2 * plain.toarray()).all()  # only present features kept
    probe = rng.standard_normal((40, 3))

    def loss():
        wide.rng = np.random.default_rng(7)  # the same mask at every call
        return float((wide.forward(x, lengths) * probe).sum())

    loss()
    wide.zero_grad()
    wide.backward(probe)
    np.testing.assert_allclose(wide.grads()["weight"],
                               numeric_grad(loss, wide.params()["weight"]), atol=1e-7)


def test_feature_dropout_of_a_ranks_rows_is_that_of_the_whole_batch():
    """A data-parallel rank holding rows 3:7 of a batch of 7 drops what one process
    drops for those rows."""
    x, lengths = pad_batch([[2, 3, 4], [5, 6], [7, 8, 2, 3], [4, 4, 5], [6, 7, 8], [2], [3, 5]])
    whole = Wide(9, 16, 2, np.float64, dropout=0.3, rng=np.random.default_rng(1))
    whole.params()["weight"][...] = np.arange(50).reshape(25, 2)
    part = Wide(9, 16, 2, np.float64, dropout=0.3, rng=np.random.default_rng(1))
    part.params()["weight"][...] = whole.params()["weight"]
    part.rows = (3, 7, 7)
    np.testing.assert_array_equal(part.forward(x[:, 3:], lengths[3:]),
                                  whole.forward(x, lengths)[3:])


def test_feature_dropout_spec_is_checked():
    with pytest.raises(ValueError, match="wide_dropout: needs a wide part"):
        check_spec(dict(SPEC, wide_dropout=0.5))
    with pytest.raises(ValueError, match="wide_dropout"):
        SequenceModel(dict(SPEC, wide_bigrams=4, wide_dropout=1.0), cell="gru", hidden_size=3)


def test_a_fixed_wide_part_gets_no_gradient_and_is_left_out_of_the_optimizer():
    spec = dict(SPEC, wide_bigrams=8, wide_fixed=True)
    model = SequenceModel(spec, cell="gru", hidden_size=3, seed=0)
    assert model.num_trained == model.layout["wide.weight"][0] == model.num_params - 17 * 3
    model.named_params["wide.weight"][...] = 1.0
    x, lengths = pad_batch([[2, 3, 4], [5, 6]])
    model.forward(x, lengths=lengths)
    model.backward(np.ones((2, 3), np.float32))
    assert not model.named_grads["wide.weight"].any() and model.named_grads["head.bias"].any()
    assert SequenceModel(dict(spec, wide_fixed=False), cell="gru",
                         hidden_size=3).num_trained == model.num_params
    with pytest.raises(ValueError, match="wide_fixed"):
        check_spec(dict(SPEC, wide_fixed=True))


def test_row_folds_depend_on_the_rows_tokens_only():
    """A row's fold is the same alone, padded in any batch, and for a copy of its text;
    over many rows every fold is used about equally."""
    rng = np.random.default_rng(3)
    seqs = [list(rng.integers(2, 500, rng.integers(1, 30))) for _ in range(2000)]
    x, lengths = pad_batch(seqs)
    folds = row_folds(x, lengths, 5)
    assert folds.min() == 0 and folds.max() == 4
    assert (np.bincount(folds) > 300).all()
    alone = [int(row_folds(*pad_batch([s]), 5)[0]) for s in seqs[:50]]
    assert alone == folds[:50].tolist()
    x2, lengths2 = pad_batch(seqs[:3] + [seqs[0]])
    assert row_folds(x2, lengths2, 5)[3] == folds[0]
    # the same words in another order usually land elsewhere: position matters
    swapped = [[s[1], s[0], *s[2:]] for s in seqs[:200] if len(s) > 1 and s[0] != s[1]]
    assert (row_folds(*pad_batch(swapped), 5) != np.array(
        [folds[i] for i, s in enumerate(seqs[:200]) if len(s) > 1 and s[0] != s[1]])).any()


def test_cross_fitted_rows_get_their_fold_models_logits_in_training_only():
    """folds=k: in training each row's logits are its fold model's (weights and bias
    offset), also with feature dropout and on a data-parallel rank's rows; in
    evaluation the full model's."""
    rng = np.random.default_rng(4)
    seqs = [list(rng.integers(2, 9, rng.integers(1, 7))) for _ in range(30)]
    x, lengths = pad_batch(seqs)
    wide = Wide(9, 16, 3, np.float64, fixed=True, folds=3)
    for name, value in wide.params().items():
        value[...] = rng.standard_normal(value.shape)
    p = wide.params()
    feats = ngram_features(x, lengths, 9, 16)
    fold = row_folds(x, lengths, 3)
    assert len(set(fold.tolist())) == 3
    expected = np.stack([feats[b] @ p["fold_weight"][fold[b]] + p["fold_bias"][fold[b]]
                         for b in range(30)])[:, 0]
    np.testing.assert_allclose(wide.forward(x, lengths), expected)
    wide.eval()
    np.testing.assert_allclose(wide.forward(x, lengths), feats @ p["weight"])
    # with feature dropout, a rank holding rows 10:30 gets what one process gets for them
    whole = Wide(9, 16, 3, np.float64, dropout=0.4, rng=np.random.default_rng(1),
                 fixed=True, folds=3)
    part = Wide(9, 16, 3, np.float64, dropout=0.4, rng=np.random.default_rng(1),
                fixed=True, folds=3)
    for name in p:
        whole.params()[name][...] = part.params()[name][...] = p[name]
    part.rows = (10, 30, 30)
    np.testing.assert_array_equal(part.forward(x[:, 10:], lengths[10:]),
                                  whole.forward(x, lengths)[10:])


def test_fold_spec_is_checked():
    spec = dict(SPEC, wide_bigrams=8, wide_fixed=True, wide_folds=4)
    model = SequenceModel(spec, cell="gru", hidden_size=3, seed=0)
    shapes = model.param_shapes()
    assert shapes["wide.fold_weight"] == (4, 17, 3) and shapes["wide.fold_bias"] == (4, 3)
    assert model.num_trained == model.layout["wide.weight"][0]  # fold models are fixed too
    for bad in (1, 0, True, 2.0):
        with pytest.raises(ValueError, match="wide_folds"):
            check_spec(dict(spec, wide_folds=bad))
    with pytest.raises(ValueError, match="wide_folds"):
        check_spec(dict(spec, wide_fixed=False))
    with pytest.raises(ValueError, match="folds"):
        Wide(9, 0, 2, folds=3)


def test_a_learned_scale_multiplies_a_fixed_wide_part_and_is_trained():
    rng = np.random.default_rng(4)
    x, lengths = pad_batch([[2, 3, 4, 5], [6, 7], [8]])
    spec = dict(SPEC, wide_bigrams=16, wide_fixed=True)
    plain = SequenceModel(spec, cell="gru", hidden_size=5, seed=3, dtype=np.float64)
    scaled = SequenceModel(dict(spec, wide_scale=True), cell="gru", hidden_size=5, seed=3,
                           dtype=np.float64)
    weight = rng.standard_normal((25, 3))
    plain.named_params["wide.weight"][...] = weight
    scaled.named_params["wide.weight"][...] = weight
    # starts at 1: the same logits as without it; then scale s gives deep + s * wide
    assert scaled.named_params["wide.scale"][0] == 1.0
    np.testing.assert_array_equal(scaled.forward(x, lengths=lengths)[0],
                                  plain.forward(x, lengths=lengths)[0])
    scaled.named_params["wide.scale"][...] = 0.3
    wide = plain.wide.forward(x, lengths)
    deep = plain.forward(x, lengths=lengths)[0] - wide
    np.testing.assert_allclose(scaled.forward(x, lengths=lengths)[0], deep + 0.3 * wide,
                               atol=1e-12)
    # the scale is trained (inside num_trained), the fixed weights are not
    assert scaled.layout["wide.scale"][0] < scaled.num_trained == \
        scaled.layout["wide.weight"][0]
    check_grads(scaled, x, lengths, rng.standard_normal((3, 3)),
                ("wide.scale", "head.weight", "embedding.weight"))
    assert not scaled.named_grads["wide.weight"].any()
    for bad in ("yes", 1):
        with pytest.raises(ValueError, match="wide_scale"):
            check_spec(dict(spec, wide_scale=bad))
    with pytest.raises(ValueError, match="wide_scale"):
        check_spec(dict(SPEC, wide_scale=True))


def test_a_trained_wide_part_with_a_scale_differentiates_both():
    rng = np.random.default_rng(5)
    x, lengths = pad_batch([[2, 3, 4], [6, 7]])
    model = SequenceModel(dict(SPEC, wide_bigrams=8, wide_scale=True), cell="gru",
                          hidden_size=4, seed=1, dtype=np.float64)
    model.named_params["wide.weight"][...] = rng.standard_normal((17, 3))
    model.named_params["wide.scale"][...] = 0.7
    probe = rng.standard_normal((2, 3))

    def loss():
        return float((model.forward(x, lengths=lengths)[0] * probe).sum())

    model.zero_grad()
    model.forward(x, lengths=lengths)
    model.backward(probe)
    for name in ("wide.scale", "wide.weight"):
        np.testing.assert_allclose(model.named_grads[name],
                                   numeric_grad(loss, model.named_params[name]), atol=1e-7)
