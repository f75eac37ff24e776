"""--average refused in a run training task parameters: the message reads as a sentence
whether or not the task names its fixed_params_option."""
import pytest

from recurrent.errors import UserError
from recurrent.runs import _check_average_covers


class _Task:
    name = "toy"

    def trained_params(self, state, config):
        return {"alpha": 0.5}


class _Named(_Task):
    fixed_params_option = "--toy-train first"


def _message(task):
    with pytest.raises(UserError) as e:
        _check_average_covers(task, {}, {"average": "ema:0.9"})
    return str(e.value)


def test_without_fixed_params_option():
    text = _message(_Task())
    assert text.endswith("use --average off, or the task's option that keeps them fixed")
    assert "that (keeps" not in text


def test_with_fixed_params_option():
    assert _message(_Named()).endswith("use --average off, or --toy-train first "
                                       "(keeps them fixed)")
