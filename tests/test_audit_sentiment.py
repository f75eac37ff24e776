"""Audit (mutation round 3) of plugins/sentiment: the stratified split's guarantees (every
class keeps a training row; the fallback for many small classes takes its rounded share
and never a class's last row), the shuffled order of training batches, and the version-2
tokenizer keeping combining marks with the punctuation they follow. Split sizes are worked
out by hand from the rule in stratified_split's docstring."""
import numpy as np
import pytest

from recurrent_plugins.sentiment.dataset import stratified_split
from recurrent_plugins.sentiment.text import length_buckets, tokenize


def _sizes(split):
    return {name: len(idx) for name, idx in split.items()}


def _check_partition(split, n):
    everything = np.concatenate([split["train"], split["valid"], split["test"]])
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))


@pytest.mark.parametrize("seed", range(5))
def test_a_single_row_class_stays_in_training_even_at_a_large_test_share(seed):
    """Class a: 1 row, b: 2 rows, c: 10 rows; test 0.6, valid 0.2. Per class
    n_test = min(round(n * 0.6), n - 1): a 0 (round 0.6 = 1, capped), b 1, c 6;
    n_valid = min(round(n * 0.2), n - 1 - n_test): a 0, b 0, c 2. So test 7, valid 2,
    train 4, and each class has a training row."""
    labels = ["a"] + ["b"] * 2 + ["c"] * 10
    split = stratified_split(labels, 0.2, 0.6, seed)
    _check_partition(split, len(labels))
    assert _sizes(split) == {"train": 4, "valid": 2, "test": 7}
    assert {labels[i] for i in split["train"]} == {"a", "b", "c"}


@pytest.mark.parametrize("seed", range(5))
def test_the_validation_share_never_takes_a_class_last_training_row(seed):
    """Class a: 2 rows, c: 10 rows; test and valid 0.3 each. a: n_test = min(round(0.6),
    1) = 1, n_valid = min(round(0.6), 2 - 1 - 1) = 0; c: 3 and 3. So test 4, valid 3,
    train 1 + 4 = 5, with a's second row in training."""
    labels = ["a"] * 2 + ["c"] * 10
    split = stratified_split(labels, 0.3, 0.3, seed)
    _check_partition(split, len(labels))
    assert _sizes(split) == {"train": 5, "valid": 3, "test": 4}
    assert {labels[i] for i in split["train"]} == {"a", "c"}


@pytest.mark.parametrize("seed", range(5))
def test_small_classes_fallback_takes_the_rounded_share_of_all_rows(seed):
    """5 classes of 3 rows, 0.1 each way: every class rounds 0.3 to 0 rows, so the
    fallback takes one row from each of round(15 * 0.1) = round(1.5) = 2 classes for test
    and 2 for valid: sizes 11 / 2 / 2, no class losing its last training row."""
    labels = [c for c in "abcde" for _ in range(3)]
    split = stratified_split(labels, 0.1, 0.1, seed)
    _check_partition(split, len(labels))
    assert _sizes(split) == {"train": 11, "valid": 2, "test": 2}
    assert {labels[i] for i in split["train"]} == set("abcde")


@pytest.mark.parametrize("seed", range(20))
def test_small_classes_fallback_never_empties_a_class_from_training(seed):
    """4 classes of 2 rows and one of 1 row (9 rows), 0.25 each way: every class rounds
    to 0, the fallback wants round(2.25) = 2 rows for test and 2 for valid, taken only
    from classes with more than one row left: a class that gave a row to test has one
    left and cannot give to valid; the one-row class never gives. So 5 / 2 / 2 and all
    five classes in training, whatever the seeded order."""
    labels = ["a", "a", "b", "b", "c", "c", "d", "d", "e"]
    split = stratified_split(labels, 0.25, 0.25, seed)
    _check_partition(split, len(labels))
    assert _sizes(split) == {"train": 5, "valid": 2, "test": 2}
    assert {labels[i] for i in split["train"]} == set("abcde")


def test_training_batches_come_in_a_shuffled_order():
    """40 rows of distinct lengths 0..39 in batches of 4, one pool: the batches are the
    runs {0..3}, {4..7}, ... (sorted within the pool), each row once; their order is
    shuffled per epoch (else every epoch would go from the shortest texts to the
    longest), so it differs between seeds and is not always ascending."""
    lengths = np.arange(40)
    orders = []
    for seed in range(6):
        batches = length_buckets(lengths, 4, np.random.default_rng(seed))
        assert sorted(tuple(sorted(b.tolist())) for b in batches) == \
            [tuple(range(k, k + 4)) for k in range(0, 40, 4)]
        orders.append(tuple(int(b.min()) for b in batches))
    assert len(set(orders)) > 1
    assert any(list(o) != sorted(o) for o in orders)


def test_combining_marks_stay_with_the_punctuation_they_follow():
    """Version 2: "any single other non-space character with the combining marks that
    follow it" is one token: "!" + U+0301 (no precomposed form, so NFKC keeps both) is one
    token; version 1 splits it in two."""
    assert tokenize("wow!\u0301 ok", 2) == ["wow", "!\u0301", "ok"]
    assert tokenize("wow!\u0301 ok", 1) == ["wow", "!", "\u0301", "ok"]


def _write(path, rows):
    import csv
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return str(path)


def test_labels_are_read_without_surrounding_blanks(tmp_path):
    """" pos " and "pos" are one class (a spreadsheet's padding must not make a third
    class the model is trained on)."""
    from recurrent_plugins.sentiment.dataset import class_list, read_csv
    path = _write(tmp_path / "d.csv", [["good film", " pos "], ["bad film", "neg"],
                                       ["great film", "pos"], ["dull film", "neg "]])
    data = read_csv(path, "text", "label")
    assert data.labels == ["pos", "neg", "pos", "neg"]
    assert class_list(data.labels, path) == ["neg", "pos"]


def test_split_rows_use_the_run_fractions_for_each_split(tmp_path):
    """20 rows per class, valid 0.2 and test 0.1: per class round(20 * 0.1) = 2 test rows
    and round(20 * 0.2) = 4 validation rows, so test 4, valid 8, train 28 texts, the
    sizes the state records, disjoint, and what split_rows hands to training and scoring."""
    from recurrent_plugins.sentiment import TASK
    rows = [[f"review {k} was {'good' if k % 2 else 'bad'} indeed {k}",
             "pos" if k % 2 else "neg"] for k in range(40)]
    path = _write(tmp_path / "r.csv", rows)
    config = {"data": path, "text_column": "text", "label_column": "label",
              "max_vocab": 0, "min_freq": 1, "max_tokens": 100, "valid_fraction": 0.2,
              "test_fraction": 0.1, "split_seed": 3}
    state = TASK.prepare(config)
    assert state["split_sizes"] == {"train": 28, "valid": 8, "test": 4}
    seen = {}
    for split, n in (("train", 28), ("valid", 8), ("test", 4)):
        sequences, y = TASK.split_rows(state, split, {})
        assert len(sequences) == len(y) == n
        assert np.bincount(y, minlength=2).tolist() == [n // 2, n // 2]
        # the last token is the row number, an id only when the vocabulary holds it
        seen[split] = {tuple(s) for s in sequences}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["valid"]


def test_pad_batch_refuses_an_empty_sequence():
    """A text with no token would be a row of length 0 (nothing for the recurrent pass
    to read, an undefined pooled output): pad_batch refuses it; lengths 1 and 3 pad to
    (3, 2) with <pad>."""
    from recurrent_plugins.sentiment.text import PAD_ID, pad_batch
    with pytest.raises(ValueError, match="no empty sequence"):
        pad_batch([[4, 5], []])
    x, lengths = pad_batch([[7], [4, 5, 6]])
    assert x.tolist() == [[7, 4], [PAD_ID, 5], [PAD_ID, 6]] and lengths.tolist() == [1, 3]


def test_a_row_without_its_text_field_is_a_one_line_error(tmp_path):
    """Header label,text and a row "pos" (no text field at all): the one-line UserError
    for an empty text, naming the line, not an IndexError."""
    from recurrent.errors import UserError
    from recurrent_plugins.sentiment.dataset import read_csv
    path = tmp_path / "short.csv"
    path.write_text("label,text\nneg,bad film\npos\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 3: empty text in column 'text'"):
        read_csv(str(path), "text", "label")


@pytest.mark.parametrize("valid, test", [(0.5, 0.5), (0.3, 0.7), (0.6, 0.5)])
def test_held_out_fractions_must_sum_below_one(valid, test):
    """Validation and test shares summing to 1 (or more) leave no training share: refused
    with a one-line UserError, before any row is drawn."""
    from recurrent.errors import UserError
    labels = ["a"] * 10 + ["b"] * 10
    with pytest.raises(UserError, match="sum below 1"):
        stratified_split(labels, valid, test, 0)
