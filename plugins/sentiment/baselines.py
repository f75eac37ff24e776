"""The baselines every evaluation is shown beside, all fitted on the training split only:
majority class, bag-of-words logistic regression, and NB logistic regression over
unigrams and bigrams (NBSVM's features, Wang & Manning 2012, with the logistic loss).

Dimension legend: N rows, F features (vocabulary words, or words and hashed bigrams), K
classes.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from recurrent.wide import ngram_features, row_folds

from .text import UNK_ID, pad_batch

# L2 strengths tried for logistic regression; the one with the best validation accuracy wins.
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def majority_class(y_train: np.ndarray, num_classes: int) -> int:
    """The most frequent training class (the lowest class id on a tie)."""
    return int(np.argmax(np.bincount(y_train, minlength=num_classes)))


def bag_of_words(sequences: list[list[int]], vocab_size: int) -> scipy.sparse.csr_matrix:
    """(N, V) 0/1 matrix: word v occurs in row n. <pad> and <unk> columns stay zero."""
    indptr, indices = [0], []
    for seq in sequences:
        words = sorted(set(seq) - {0, UNK_ID})
        indices.extend(words)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(sequences), vocab_size))


class LogisticRegression:
    """Multinomial (softmax) logistic regression with an L2 penalty on the weights.

    Minimises mean cross-entropy + l2/2 * ||W||^2 (the bias is not penalised) with
    full-batch L-BFGS (scipy), using the exact gradient.
    """

    def __init__(self, l2: float, max_iter: int = 500):
        self.l2 = l2
        self.max_iter = max_iter
        self.weight = None  # (F, K)
        self.bias = None  # (K,)

    def _unpack(self, theta, num_features, num_classes):
        weight = theta[:num_features * num_classes].reshape(num_features, num_classes)
        return weight, theta[num_features * num_classes:]

    def objective(self, theta: np.ndarray, x, onehot: np.ndarray):
        """(loss, gradient) at the flat parameters ``theta`` = [W.ravel(), b];
        x (N, F), onehot (N, K) targets."""
        n, f = x.shape
        weight, bias = self._unpack(theta, f, onehot.shape[1])
        logits = x @ weight + bias  # (N, K)
        logits -= logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -np.sum(onehot * log_probs) / n + 0.5 * self.l2 * np.sum(weight * weight)
        d_logits = (np.exp(log_probs) - onehot) / n  # d loss / d logits, (N, K)
        d_weight = x.T @ d_logits + self.l2 * weight  # (F, K)
        d_bias = d_logits.sum(axis=0)  # (K,)
        return loss, np.concatenate([np.ravel(d_weight), d_bias])

    def fit(self, x, y: np.ndarray, num_classes: int, theta0=None) -> "LogisticRegression":
        """Fit from ``theta0`` ([W.ravel(), b]; default zeros).

        Only the columns of x that hold an entry are optimised: an empty column's weights
        have the gradient l2 * w, so from zero they stay zero and the optimum is the same,
        while hashed-bigram matrices are mostly empty columns and L-BFGS's cost grows with
        the number of parameters. Empty columns start from zero whatever ``theta0`` says.
        """
        x = scipy.sparse.csr_matrix(x)
        n, f = x.shape
        used = np.flatnonzero(np.bincount(x.indices, minlength=f))  # (U,) used columns
        onehot = np.zeros((n, num_classes))  # (N, K)
        onehot[np.arange(n), y] = 1.0
        if theta0 is None:
            start = np.zeros(len(used) * num_classes + num_classes)
        else:
            weight0, bias0 = self._unpack(theta0, f, num_classes)
            start = np.concatenate([np.ravel(weight0[used]), bias0])
        from scipy.optimize import minimize  # here: slow to load, and most commands never fit
        result = minimize(self.objective, start, args=(x[:, used], onehot), jac=True,
                          method="L-BFGS-B", options={"maxiter": self.max_iter})
        weight, self.bias = self._unpack(result.x, len(used), num_classes)
        self.weight = np.zeros((f, num_classes))
        self.weight[used] = weight
        return self

    def predict_proba(self, x) -> np.ndarray:
        logits = np.asarray(x @ self.weight) + self.bias  # (N, K)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def fit_logistic_regression(x_train, y_train, x_valid, y_valid, num_classes: int,
                            grid=L2_GRID) -> LogisticRegression:
    """Fit one model per L2 strength on train; keep the best by validation accuracy (ties go
    to the stronger penalty, the simpler model)."""
    best, best_acc = None, -1.0
    for l2 in sorted(grid, reverse=True):
        model = LogisticRegression(l2).fit(x_train, y_train, num_classes)
        acc = float(np.mean(model.predict_proba(x_valid).argmax(axis=1) == y_valid))
        if acc > best_acc:
            best, best_acc = model, acc
    return best


def ngram_matrix(sequences: list[list[int]], vocab_size: int,
                 bigram_buckets: int) -> scipy.sparse.csr_matrix:
    """(N, V + bigram_buckets) 0/1 matrix of each sequence's unigrams and hashed bigrams:
    the features of the model's wide part (recurrent.wide.ngram_features), <unk> included.
    Every sequence must be non-empty."""
    parts = []
    for start in range(0, len(sequences), 1024):
        x, lengths = pad_batch(sequences[start:start + 1024])
        parts.append(ngram_features(x, lengths, vocab_size, bigram_buckets))
    return scipy.sparse.vstack(parts, format="csr")


def sequence_folds(sequences: list[list[int]], folds: int) -> np.ndarray:
    """(N,) fold of each sequence, as the wide part assigns it in training
    (recurrent.wide.row_folds)."""
    parts = []
    for start in range(0, len(sequences), 1024):
        x, lengths = pad_batch(sequences[start:start + 1024])
        parts.append(row_folds(x, lengths, folds))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def check_folds(folds: np.ndarray, num_folds: int) -> None:
    """ValueError unless each of the ``num_folds`` folds holds some but not all rows
    (``folds``: (N,) fold of each row)."""
    counts = np.bincount(folds, minlength=num_folds)
    for f in range(num_folds):
        if counts[f] == 0 or counts[f] == len(folds):
            raise ValueError(f"fold {f} holds {int(counts[f])} of {len(folds)} training "
                             f"rows: too few rows to cross-fit {num_folds} folds")


def cross_fit_nb(x_train, y_train, folds: np.ndarray, num_folds: int, num_classes: int,
                 l2: float) -> list[LogisticRegression]:
    """One NB logistic regression per fold f (at the given L2), fitted on the training rows
    whose fold is not f: the fold models of a cross-fitted wide part."""
    check_folds(folds, num_folds)
    models = []
    for f in range(num_folds):
        held = folds == f
        models.append(fit_nb_logistic_regression(x_train[~held], y_train[~held],
                                                 x_train[held], y_train[held], num_classes,
                                                 grid=(l2,)))
    return models


def nb_ratios(x, positive: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(F,) log-count ratios log((p / |p|_1) / (q / |q|_1)) of binary features x (N, F),
    p and q: alpha plus the feature counts of the rows where ``positive`` is True and
    False (Wang & Manning 2012)."""
    p = alpha + np.asarray(x[positive].sum(axis=0)).ravel()
    q = alpha + np.asarray(x[~positive].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def fit_nb_logistic_regression(x_train, y_train, x_valid, y_valid, num_classes: int,
                               grid=L2_GRID) -> LogisticRegression:
    """NB logistic regression: for each class (one for two classes), a logistic regression
    of "this class or not" on the features scaled by that class's NB log-count ratios;
    the classes' logits side by side, softmax-normalised. One L2 strength for all,
    chosen by validation accuracy (ties to the stronger). Returned as one
    LogisticRegression on the unscaled features: weight (F, K) is the ratios times the
    fitted weights, so predict_proba takes x as it is."""
    classes = [1] if num_classes == 2 else list(range(num_classes))
    ratios = {k: nb_ratios(x_train, y_train == k) for k in classes}
    best, best_acc, thetas = None, -1.0, {}
    for l2 in sorted(grid, reverse=True):  # each fit starts from the previous solution
        model = LogisticRegression(l2)
        model.weight = np.zeros((x_train.shape[1], num_classes))
        model.bias = np.zeros(num_classes)
        for k in classes:
            scale = scipy.sparse.diags(ratios[k])
            one = LogisticRegression(l2).fit(x_train @ scale, (y_train == k).astype(np.int64),
                                             2, thetas.get(k))
            thetas[k] = np.concatenate([one.weight.ravel(), one.bias])
            model.weight[:, k] = ratios[k] * (one.weight[:, 1] - one.weight[:, 0])
            model.bias[k] = one.bias[1] - one.bias[0]
        acc = float(np.mean(model.predict_proba(x_valid).argmax(axis=1) == y_valid))
        if acc > best_acc:
            best, best_acc = model, acc
    return best
