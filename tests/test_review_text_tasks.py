"""Review of the sentiment and char-lm tasks as users drive them: splits of many small
classes, tiny sampling temperatures, and bytes that are not UTF-8 on the command line."""
import warnings

import numpy as np
import pytest

from recurrent.errors import UserError
from recurrent_plugins.char_lm.sampling import next_char_distribution, pick
from recurrent_plugins.char_lm.text import Vocabulary
from recurrent_plugins.sentiment.dataset import stratified_split


def test_split_of_many_small_classes_holds_out_rows():
    labels = [f"intent{c}" for c in range(100) for _ in range(5)]
    split = stratified_split(labels, 0.1, 0.1, seed=0)
    assert len(split["valid"]) == 50 and len(split["test"]) == 50
    assert len(set(split["train"]) | set(split["valid"]) | set(split["test"])) == 500
    assert {labels[i] for i in split["train"]} == set(labels)  # every class still trains
    with pytest.raises(UserError, match="too few"):  # still refused: 0.4 rows to hold out
        stratified_split(["a", "b", "a", "b"], 0.1, 0.1, seed=0)


def test_tiny_temperature_is_argmax_without_nan():
    logits = np.array([1.0, 3.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = next_char_distribution(logits, 1e-320, None)
        assert p.tolist() == [0.0, 1.0, 0.0]
        assert pick(np.array([3.0, 1.0, 2.0]), 1e-320, 2, np.random.default_rng(0)) == 0


def test_text_that_is_not_utf8_is_a_user_error_naming_it():
    # a command-line argument or stdin line with a byte that is not UTF-8 holds a lone
    # surrogate (surrogateescape)
    with pytest.raises(UserError, match=r"the line has characters not in the model's "
                                        r"vocabulary: '\\udcff'"):
        Vocabulary(list("ab")).encode("a\udcff", "the line")
