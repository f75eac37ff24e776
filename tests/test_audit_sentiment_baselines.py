"""Mutation audit, round 2: plugins/sentiment/baselines.py against scikit-learn, which
fits the same models.

- LogisticRegression minimises mean cross-entropy + l2/2 ||W||^2 (bias free): that is
  scikit-learn's multinomial LogisticRegression with C = 1 / (n * l2) (its objective is
  C * summed loss + ||W||^2 / 2, intercept unpenalised), so the probabilities agree.
- NB logistic regression, two classes: a two-class softmax regression on x scaled by the
  NB log-count ratios r (alpha 1), penalised on both weight columns, is the binary
  logistic regression of w = w1 - w0 with penalty l2/4 ||w||^2 (at the optimum w0 = -w1),
  i.e. scikit-learn's binary model with C = 2 / (n * l2) on x * r. Its probabilities
  must equal the returned model's on the unscaled x.
- The L2 strength is chosen by validation accuracy, ties to the stronger penalty."""
import numpy as np
import pytest
import scipy.sparse

from recurrent_plugins.sentiment import baselines as bl

sklearn_lm = pytest.importorskip("sklearn.linear_model",
                                 reason="scikit-learn (the test extra) is not installed")


def _data(n=60, f=7, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, f)) < 0.4).astype(np.float64)
    w = rng.normal(0, 2, (f, classes))
    y = (x @ w + rng.gumbel(size=(n, classes))).argmax(axis=1)
    return scipy.sparse.csr_matrix(x), y


def test_logistic_regression_is_scikit_learns_multinomial_fit():
    x, y = _data(classes=3)
    l2 = 0.05
    ours = bl.LogisticRegression(l2).fit(x, y, 3)
    ref = sklearn_lm.LogisticRegression(C=1 / (x.shape[0] * l2), tol=1e-10,
                                        max_iter=10000).fit(x.toarray(), y)
    np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x.toarray()),
                               atol=2e-4)


def _nb_ratios_by_hand(x, positive):
    x = x.toarray()
    p = 1 + x[positive].sum(axis=0)
    q = 1 + x[~positive].sum(axis=0)
    return np.log(p / p.sum()) - np.log(q / q.sum())


def test_nb_logistic_regression_two_classes_is_scikit_learns_fit_on_scaled_features():
    x, y = _data(seed=1)
    l2 = 0.02
    model = bl.fit_nb_logistic_regression(x, y, x, y, 2, grid=(l2,))
    r = _nb_ratios_by_hand(x, y == 1)
    ref = sklearn_lm.LogisticRegression(C=2 / (x.shape[0] * l2), tol=1e-10,
                                        max_iter=10000).fit(x.toarray() * r, y)
    np.testing.assert_allclose(model.predict_proba(x), ref.predict_proba(x.toarray() * r),
                               atol=2e-4)


def test_nb_logistic_regression_three_classes_is_one_vs_rest_side_by_side():
    x, y = _data(seed=2, classes=3)
    l2 = 0.02
    model = bl.fit_nb_logistic_regression(x, y, x, y, 3, grid=(l2,))
    logits = []
    for k in range(3):
        r = _nb_ratios_by_hand(x, y == k)
        ref = sklearn_lm.LogisticRegression(C=2 / (x.shape[0] * l2), tol=1e-10,
                                            max_iter=10000).fit(x.toarray() * r, y == k)
        logits.append(ref.decision_function(x.toarray() * r))
    logits = np.stack(logits, axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(x), e / e.sum(axis=1, keepdims=True),
                               atol=2e-4)


def test_l2_ties_on_validation_accuracy_go_to_the_stronger_penalty():
    x, y = _data(seed=3)
    grid = (1e-3, 1e-2)
    # validated on the training rows' first row only: both strengths get it right or wrong
    # alike (checked), so the tie keeps 1e-2
    models = {l2: bl.LogisticRegression(l2).fit(x, y, 2) for l2 in grid}
    right = {l2: m.predict_proba(x[:1]).argmax(axis=1)[0] == y[0] for l2, m in models.items()}
    assert right[1e-3] == right[1e-2]
    assert bl.fit_logistic_regression(x, y, x[:1], y[:1], 2, grid=grid).l2 == 1e-2
    nb = bl.fit_nb_logistic_regression(x, y, x[:1], y[:1], 2, grid=grid)
    assert nb.l2 == 1e-2


def test_a_single_fold_holding_every_row_cannot_be_cross_fitted():
    """Cross-fitting fold f fits on the rows outside f: a fold holding every training row
    would leave its model no rows at all (with one fold, nothing else catches it)."""
    with pytest.raises(ValueError, match="fold 0 holds 5 of 5"):
        bl.check_folds(np.zeros(5, np.int64), 1)
    bl.check_folds(np.array([0, 1, 0, 1, 1]), 2)  # some but not all rows each: fine


def test_cross_fitted_fold_models_are_fitted_on_the_other_folds_rows():
    """Fold f's model (the wide part's start for the rows of fold f) is the NB logistic
    regression of the rows OUTSIDE fold f: each equals scikit-learn's fit on those rows
    (ratios from those rows too), so no row's start has seen its own label."""
    x, y = _data(n=80, seed=4)
    folds = np.arange(80) % 2
    l2 = 0.02
    models = bl.cross_fit_nb(x, y, folds, 2, 2, l2)
    for f, model in enumerate(models):
        keep = folds != f
        xt, yt = x[keep], y[keep]
        r = _nb_ratios_by_hand(xt, yt == 1)
        ref = sklearn_lm.LogisticRegression(C=2 / (xt.shape[0] * l2), tol=1e-10,
                                            max_iter=10000).fit(xt.toarray() * r, yt)
        np.testing.assert_allclose(model.predict_proba(x), ref.predict_proba(x.toarray() * r),
                                   atol=2e-4)
