"""Classification metrics.

Conventions (as scikit-learn's defaults): the confusion matrix has true classes as rows and
predicted classes as columns; a precision or recall whose denominator is zero is 0.0; F1 is
the harmonic mean of precision and recall (0.0 when both are 0); macro-F1 is the unweighted
mean of the per-class F1 values of the classes present in the true or the predicted labels
(a class in neither has no F1 to average; its per-class rows are still reported, as 0.0).
"""
from __future__ import annotations

import numpy as np

from recurrent.modules import softmax  # noqa: F401  (re-exported: the task's probabilities)


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of classes y (N,) under probabilities (N, K)."""
    p = probs[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(p, 1e-300))))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: entry [i, j] = rows of true class i predicted as class j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """Flat dict: accuracy, macro_f1 (over the classes in y_true or y_pred, as
    scikit-learn's f1_score(average="macro")), precision/<c>, recall/<c>, f1/<c>,
    support/<c> (every class of ``classes``), and confusion (list of lists, rows true,
    columns predicted, classes in ``classes`` order)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("no rows to evaluate")
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # column sums: rows predicted as class j
    actual = cm.sum(axis=1)  # row sums: rows truly in class i
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (actual > 0) | (predicted > 0)  # at least one row is in y_true or y_pred
    out = {"accuracy": float(tp.sum() / len(y_true)), "macro_f1": float(f1[present].mean())}
    for i, name in enumerate(classes):
        out[f"precision/{name}"] = float(precision[i])
        out[f"recall/{name}"] = float(recall[i])
        out[f"f1/{name}"] = float(f1[i])
        out[f"support/{name}"] = int(actual[i])
    out["confusion"] = cm.tolist()
    return out

