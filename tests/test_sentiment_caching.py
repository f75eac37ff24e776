"""The sentiment task encodes each split once per file version and state: ensemble members,
evaluations and baselines reuse it, and a changed file or another vocabulary is encoded
anew."""
import os

import numpy as np
import pytest
from helpers import bundled_reviews, write_reviews

from recurrent.errors import UserError
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.task import SentimentTask


class _Counting(SentimentTask):
    """The real task, counting its _encode_all calls."""
    calls = 0

    def _encode_all(self, state, token_lists):
        type(self).calls += 1
        return super()._encode_all(state, token_lists)


def test_each_split_is_encoded_once_and_a_changed_file_again(tmp_path):
    task = _Counting()
    path = tmp_path / "slice.csv"
    data = write_reviews(path, bundled_reviews(60))
    state = task.prepare({"data": data, "min_freq": 1})
    first = {s: task.split_rows(state, s, {}) for s in ("train", "valid", "test")}
    assert _Counting.calls == 3
    for split, (seqs, y) in first.items():
        again = task.split_rows(state, split, {})
        assert again[0] is seqs and again[1] is y
    assert _Counting.calls == 3
    # the same rows as the plain task encodes them
    for split, (seqs, y) in first.items():
        plain = TASK.split_rows(state, split, {})
        assert plain[0] == seqs and np.array_equal(plain[1], y)
    # another vocabulary is another encoding
    small = dict(state, vocab=state["vocab"][:10])
    cut = task.split_rows(small, "train", {})[0]
    assert _Counting.calls == 4 and max(max(s) for s in cut) < 10
    # an evaluation file is encoded once too
    extra = write_reviews(tmp_path / "extra.csv", bundled_reviews(5))
    a = task.split_rows(state, "test", {"eval_data": extra})
    b = task.split_rows(state, "test", {"eval_data": extra})
    assert a[0] is b[0] and _Counting.calls == 5
    # a rewritten training file is read and encoded again (and refused: it changed)
    write_reviews(path, bundled_reviews(61))
    os.utime(path, ns=(1, 1))
    with pytest.raises(UserError, match="has changed since this run was trained"):
        task.split_rows(state, "train", {})


def test_baseline_probabilities_are_computed_once_per_split_and_file(tmp_path):
    data = write_reviews(tmp_path / "slice.csv", bundled_reviews(60))
    state = TASK.prepare({"data": data, "min_freq": 1})
    y, first = TASK.baseline_probabilities(state, "valid", {})
    again = TASK.baseline_probabilities(state, "valid", {})[1]
    assert all(again[name] is first[name] for name in first)
    assert not first["nb_logreg"].flags.writeable  # shared: nobody may change them
    test = TASK.baseline_probabilities(state, "test", {})[1]
    assert test["nb_logreg"] is not first["nb_logreg"]
    extra = write_reviews(tmp_path / "extra.csv", bundled_reviews(5))
    other = TASK.baseline_probabilities(state, "test", {"eval_data": extra})
    assert len(other[0]) == 10 and other[1]["nb_logreg"].shape == (10, 2)
    # the same probabilities as the baselines' own models give
    sequences, _ = TASK.split_rows(state, "valid", {})
    _, _, logreg = TASK._baseline_models(state)
    from recurrent_plugins.sentiment import baselines as bl
    np.testing.assert_array_equal(
        first["bow_logreg"], logreg.predict_proba(bl.bag_of_words(sequences,
                                                                  len(state["vocab"]))))
