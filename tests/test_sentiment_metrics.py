"""sentiment task: metrics against hand-computed values, and the two baselines."""
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse

from recurrent_plugins.sentiment.baselines import (LogisticRegression, bag_of_words,
                                                   fit_logistic_regression, majority_class)
from recurrent_plugins.sentiment.metrics import (classification_metrics, confusion_matrix,
                                                 cross_entropy, softmax)
from recurrent_plugins.sentiment.report import format_report


def test_three_class_metrics_by_hand():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 1, 0, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # precision = tp / predicted: a 2/2, b 1/2, c 1/2; recall = tp / actual: 2/3, 1/2, 1/1
    assert [m["precision/a"], m["precision/b"], m["precision/c"]] == pytest.approx([1, .5, .5])
    assert [m["recall/a"], m["recall/b"], m["recall/c"]] == pytest.approx([2 / 3, .5, 1])
    # f1 a = 2*1*(2/3)/(5/3) = 0.8; b = 0.5; c = 2*0.5*1/1.5 = 2/3
    assert [m["f1/a"], m["f1/b"], m["f1/c"]] == pytest.approx([0.8, 0.5, 2 / 3])
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert [m["support/a"], m["support/b"], m["support/c"]] == [3, 2, 1]


def test_class_never_predicted_scores_zero_not_nan():
    m = classification_metrics([0, 0, 1], [0, 0, 0], ["pos", "neg"])
    assert m["precision/neg"] == 0.0 and m["recall/neg"] == 0.0 and m["f1/neg"] == 0.0
    assert m["precision/pos"] == pytest.approx(2 / 3) and m["f1/pos"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx(0.4)


def test_macro_f1_averages_only_classes_in_the_true_or_predicted_labels():
    """As scikit-learn's macro average: a class in neither y_true nor y_pred has no F1 to
    average (its per-class rows are still there, as 0.0)."""
    m = classification_metrics([0, 0, 0, 0], [0, 0, 0, 0], ["fresh", "rotten"])
    assert m["macro_f1"] == 1.0 and m["accuracy"] == 1.0
    assert m["f1/rotten"] == 0.0 and m["support/rotten"] == 0
    # "c" only predicted: it counts (F1 0); "d" in neither: it does not
    m = classification_metrics([0, 1, 1], [0, 1, 2], ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["f1/d"] == 0.0 and m["support/d"] == 0


def test_metrics_match_scikit_learn_on_random_labels():
    sklearn_metrics = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn not installed (the test extra)")
    rng = np.random.default_rng(5)
    for _ in range(100):
        k = int(rng.integers(2, 6))
        n = int(rng.integers(1, 12))
        # draw from a random subset of the classes, so some are often absent
        y_true = rng.choice(rng.permutation(k)[:rng.integers(1, k + 1)], n)
        y_pred = rng.choice(rng.permutation(k)[:rng.integers(1, k + 1)], n)
        m = classification_metrics(y_true, y_pred, [f"c{i}" for i in range(k)])
        assert m["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(
            y_true, y_pred, average="macro", zero_division=0))
        assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
        labels = list(range(k))
        for name, score in (("precision", sklearn_metrics.precision_score),
                            ("recall", sklearn_metrics.recall_score),
                            ("f1", sklearn_metrics.f1_score)):
            theirs = score(y_true, y_pred, labels=labels, average=None, zero_division=0)
            assert [m[f"{name}/c{i}"] for i in labels] == pytest.approx(theirs)
        assert m["confusion"] == sklearn_metrics.confusion_matrix(
            y_true, y_pred, labels=labels).tolist()


def test_confusion_rows_true_columns_predicted():
    cm = confusion_matrix(np.array([1, 1, 0]), np.array([0, 1, 0]), 2)
    assert cm.tolist() == [[1, 0], [1, 1]]


def test_softmax_and_cross_entropy():
    probs = softmax(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]]))
    assert probs == pytest.approx(np.array([[0.25, 0.75], [0.5, 0.5]]))
    assert cross_entropy(probs, np.array([1, 0])) == pytest.approx(
        -(np.log(0.75) + np.log(0.5)) / 2)


# ---- baselines -----------------------------------------------------------------------------

def test_majority_class_ties_to_lowest_id():
    assert majority_class(np.array([2, 1, 2, 0]), 3) == 2
    assert majority_class(np.array([1, 0]), 2) == 0


def test_bag_of_words_presence_ignores_pad_and_unk():
    x = bag_of_words([[2, 3, 2, 1], [0, 4]], 5).toarray()
    assert x.tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]


def test_logistic_regression_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = scipy.sparse.csr_matrix((rng.random((12, 5)) < 0.4).astype(float))
    onehot = np.eye(3)[rng.integers(0, 3, 12)]
    model = LogisticRegression(l2=0.1)
    theta = rng.standard_normal(5 * 3 + 3)
    err = scipy.optimize.check_grad(lambda t: model.objective(t, x, onehot)[0],
                                    lambda t: model.objective(t, x, onehot)[1], theta)
    assert err < 1e-5
    # at theta = 0 every class has probability 1/K
    assert model.objective(np.zeros_like(theta), x, onehot)[0] == pytest.approx(np.log(3))


def test_logistic_regression_learns_word_polarity():
    # word 2 marks class 1, word 3 marks class 0, word 4 is noise in both
    docs = [[2, 4]] * 20 + [[3, 4]] * 20 + [[2]] * 5 + [[3]] * 5
    y = np.array([1] * 20 + [0] * 20 + [1] * 5 + [0] * 5)
    x = bag_of_words(docs, 5)
    model = fit_logistic_regression(x, y, x, y, 2)
    probs = model.predict_proba(bag_of_words([[2], [3], [4]], 5))
    assert probs[0, 1] > 0.9 and probs[1, 0] > 0.9
    assert probs[2] == pytest.approx([0.5, 0.5], abs=0.05)  # noise word: no evidence
    # the chosen L2 strength is the strongest one reaching the best validation accuracy
    assert model.l2 == 1e-2


def test_stronger_l2_shrinks_weights():
    docs = [[2], [3]] * 10
    y = np.array([1, 0] * 10)
    x = bag_of_words(docs, 4)
    weak = LogisticRegression(1e-4).fit(x, y, 2)
    strong = LogisticRegression(1.0).fit(x, y, 2)
    assert np.abs(strong.weight).sum() < np.abs(weak.weight).sum()


def test_eval_report_lays_out_hand_checked_metrics():
    """The `recurrent eval` text of a 3-class problem, every number checked by hand above:
    model precision 1, .5, .5; recall 2/3, .5, 1; majority (always "neg") precision 3/6."""
    classes = ["neg", "neutral", "pos"]
    y_true = [0, 0, 0, 1, 1, 2]
    model = classification_metrics(y_true, [0, 1, 0, 1, 2, 2], classes)
    model["loss"] = 0.5
    majority = classification_metrics(y_true, [0] * 6, classes)
    assert format_report(classes, model, {"majority": majority}) == [
        "6 texts, classes: neg, neutral, pos",
        "",
        "metric     model  majority",
        "accuracy  0.6667    0.5000",
        "macro_f1  0.6556    0.2222",
        "loss      0.5000         -",  # the baseline has no loss here: a dash, not a zero
        "best accuracy: the model, 0.6667 (next: majority, 0.5000)",
        "best macro_f1: the model, 0.6556 (next: majority, 0.2222)",
        "",
        "class    support  metric      model  majority",
        "neg            3  precision  1.0000    0.5000",
        "                  recall     0.6667    1.0000",
        "                  f1         0.8000    0.6667",
        "neutral        2  precision  0.5000    0.0000",
        "                  recall     0.5000    0.0000",
        "                  f1         0.5000    0.0000",
        "pos            1  precision  0.5000    0.0000",
        "                  recall     1.0000    0.0000",
        "                  f1         0.6667    0.0000",
        "",
        "confusion matrix of model (rows: true class, columns: predicted)",
        "true \\ predicted  neg  neutral  pos",
        "neg                 2        1    0",
        "neutral             0        1    1",
        "pos                 0        0    1",
        "",
        "confusion matrix of majority (rows: true class, columns: predicted)",
        "true \\ predicted  neg  neutral  pos",
        "neg                 3        0    0",
        "neutral             2        0    0",
        "pos                 1        0    0",
    ]


def test_eval_report_says_which_classes_macro_f1_leaves_out():
    """A class without texts among those scored reads 0 in its per-class rows; macro_f1
    leaves it out unless a predictor predicted it, and the report's note says which."""
    classes = ["neg", "neutral", "pos"]
    y_true = [0, 0, 2, 2]  # no neutral text
    model = classification_metrics(y_true, [0, 1, 2, 2], classes)  # predicts neutral once
    majority = classification_metrics(y_true, [0] * 4, classes)
    assert model["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert majority["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    lines = format_report(classes, model, {"majority": majority})
    assert lines[:3] == [
        "4 texts, classes: neg, neutral, pos",
        "note: no texts of class neutral: macro_f1 averages only the classes with a text "
        "or a prediction (as scikit-learn's f1_score(average=\"macro\")): neutral counts, "
        "as an f1 of 0, for model, which predicted it",
        ""]
    only_majority = format_report(classes, majority, {"majority": majority})
    assert only_majority[1].endswith(": neutral is left out")
    # several classes no predictor predicted: one clause for them all
    five = ["1", "2", "3", "4", "5"]
    few = classification_metrics([0, 4, 4], [0, 4, 0], five)
    assert format_report(five, few, {"majority": few})[1].endswith(
        ": 2, 3 and 4 are left out")
    # every class has a text: no note
    everyone = classification_metrics([0, 1, 2], [0, 1, 1], classes)
    assert format_report(classes, everyone, {})[1] == ""


def test_eval_report_quotes_class_names_when_one_holds_a_comma():
    """Classes "bad" and "ok, fine" listed bare would read as three classes."""
    classes = ["bad", "ok, fine"]
    metrics = classification_metrics([0, 1, 1], [0, 1, 0], classes)
    assert format_report(classes, metrics, {})[0] == "3 texts, classes: 'bad', 'ok, fine'"
    plain = classification_metrics([0, 1], [0, 1], ["bad", "good"])
    assert format_report(["bad", "good"], plain, {})[0] == "2 texts, classes: bad, good"
