"""NB logistic regression (plugins/sentiment/baselines.py), the nb_logreg baseline and the
--wide-fit nb starting point, on real snippets; and a task's initial_params checked by the
trainer."""
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from helpers import bundled_reviews, write_reviews

from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.runs import start_run
from recurrent_plugins.sentiment import TASK, SentimentTask
from recurrent_plugins.sentiment import baselines as bl


def test_nb_ratios_are_log_count_ratios():
    x = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], float))
    r = bl.nb_ratios(x, np.array([True, True, False]))
    p, q = np.array([3, 2, 1]), np.array([1, 1, 2])  # alpha 1 plus the counts
    np.testing.assert_allclose(r, np.log(p / 6) - np.log(q / 4))


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    """2500 fresh and 2500 rotten bundled snippets (a validation split of 500: with fewer
    the comparison of two good classifiers is a coin toss): their features at 4096 bigram
    buckets, per split."""
    data = write_reviews(tmp_path_factory.mktemp("rt") / "slice.csv", bundled_reviews(2500))
    state = TASK.prepare({"data": data, "min_freq": 1})
    v = len(state["vocab"])
    return {split: (bl.ngram_matrix(seqs, v, 4096), y) for split, (seqs, y) in
            ((s, TASK.split_rows(state, s, {})) for s in ("train", "valid"))}


def test_nb_logistic_regression_beats_bag_of_words_on_snippets(rt):
    (x, y), (xv, yv) = rt["train"], rt["valid"]
    model = bl.fit_nb_logistic_regression(x, y, xv, yv, 2, grid=(1e-3, 3e-3))
    assert model.weight.shape == (x.shape[1], 2) and not model.weight[:, 0].any()
    acc = np.mean(model.predict_proba(xv).argmax(axis=1) == yv)
    bow = bl.fit_logistic_regression(x, y, xv, yv, 2, grid=(1e-3, 3e-3))
    assert acc > np.mean(bow.predict_proba(xv).argmax(axis=1) == yv) and acc > 0.7


def test_nb_logistic_regression_one_vs_rest_for_three_classes(rt):
    """Three classes (fresh snippets split by whether they have a comma): one column per
    class, each fitted against the rest."""
    (x, y), (xv, yv) = rt["train"], rt["valid"]
    comma = np.asarray(x[:, 3].todense()).ravel() > 0  # a frequent token's column
    y3, comma_v = y + 2 * ((y == 0) & comma), np.asarray(xv[:, 3].todense()).ravel() > 0
    yv3 = yv + 2 * ((yv == 0) & comma_v)
    model = bl.fit_nb_logistic_regression(x, y3, xv, yv3, 3, grid=(1e-3,))
    assert model.weight.shape == (x.shape[1], 3) and model.weight.any(axis=0).all()
    assert np.mean(model.predict_proba(xv).argmax(axis=1) == yv3) > 0.6


def test_logistic_regression_fits_only_used_columns_to_the_full_optimum(rt):
    """Columns no training row uses keep zero weights, and the used ones take the values
    L-BFGS reaches over every parameter with the same settings (to rounding): an empty
    column's gradient is l2 * w, zero from a zero start, so the iterates are the same (the
    objective is minimised directly here)."""
    x, y = rt["train"]
    x = x[:, :2000]  # the words and a few bigram buckets; some columns are empty
    empty = np.asarray(x.sum(axis=0)).ravel() == 0
    assert empty.any() and not empty.all()
    model = bl.LogisticRegression(1e-3).fit(x, y, 2)
    assert not model.weight[empty].any()
    onehot = np.eye(2)[y]
    full = scipy.optimize.minimize(model.objective, np.zeros(x.shape[1] * 2 + 2),
                                   args=(x, onehot), jac=True, method="L-BFGS-B",
                                   options={"maxiter": model.max_iter})
    np.testing.assert_allclose(model.weight.ravel(), full.x[:-2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.bias, full.x[-2:], rtol=0, atol=1e-6)
    # a warm start is taken for the used columns only, and ends near the same optimum
    # (within L-BFGS's stopping tolerance)
    warm = bl.LogisticRegression(1e-3).fit(x, y, 2, np.ones(x.shape[1] * 2 + 2))
    assert not warm.weight[empty].any()
    np.testing.assert_allclose(warm.weight, model.weight, rtol=0, atol=1e-2)


class _BadStart(SentimentTask):
    def initial_params(self, state, config):
        return {"head.bias": np.zeros(5)}


def test_initial_params_of_the_wrong_shape_is_one_line(tmp_path):
    task = _BadStart()
    base = {p.name: p.default for p in task.options()}
    config = TrainingConfig.resolve(task, dict(base, threads=1, quiet=True, steps=1,
                                               hidden=4, embed_dim=4))
    trainer = start_run(task, config, str(tmp_path / "run"), echo=lambda line: None)
    with pytest.raises(UserError, match=r"^task 'sentiment' initial_params: head.bias has "
                                        r"shape \(5,\), the model's is \(2,\)$"):
        trainer.fit()
