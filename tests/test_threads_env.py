"""RECURRENT_NUM_THREADS: a valid value caps the default thread count; a set but invalid one
is a one-line error naming the variable and the value, wherever the count is resolved
(never silently ignored)."""
import pytest

from helpers import invoke, ok, one_line_error
from recurrent import threads
from recurrent.errors import UserError

BAD = ["0", "abc", "-2", "1.5", "2.0", "３"]


@pytest.fixture
def with_openmp(monkeypatch):
    monkeypatch.setattr(threads, "openmp_enabled", lambda: True)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("value", BAD)
def test_invalid_value_is_an_error_naming_variable_and_value(value, monkeypatch, with_openmp):
    monkeypatch.setenv("RECURRENT_NUM_THREADS", value)
    expected = f"RECURRENT_NUM_THREADS={value!r}: expected a positive integer"
    with pytest.raises(UserError, match=expected.replace(".", r"\.")):
        threads.max_threads()
    with pytest.raises(UserError, match="RECURRENT_NUM_THREADS"):  # a size that wants threads
        threads.resolve_threads(None, 4096, 64)
    assert threads.resolve_threads(2, 1, 8) == 2  # an explicit count does not read it


def test_invalid_value_is_an_error_without_openmp_too(monkeypatch):
    monkeypatch.setattr(threads, "openmp_enabled", lambda: False)
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "abc")
    with pytest.raises(UserError, match="RECURRENT_NUM_THREADS='abc'"):
        threads.max_threads()


def test_valid_or_unset_values_keep_working(monkeypatch, with_openmp):
    for value, expected in (("3", 3), (" 4 ", 4), ("2,1", 2)):
        monkeypatch.setenv("RECURRENT_NUM_THREADS", value)
        assert threads.env_threads() == expected
        assert threads.max_threads() == expected
        assert threads.resolve_threads(None, 1, 8) == 1
    for blank in ("", "  "):  # set but empty: the same as unset
        monkeypatch.setenv("RECURRENT_NUM_THREADS", blank)
        assert threads.env_threads() is None
        assert threads.max_threads() == threads.available_cores()
    monkeypatch.delenv("RECURRENT_NUM_THREADS")
    assert threads.env_threads() is None
    assert threads.resolve_threads(None, 1, 8) == 1


def test_info_shows_an_invalid_value_in_one_line(monkeypatch):
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "abc")
    one_line_error(invoke("info"), "RECURRENT_NUM_THREADS='abc'", "positive integer")
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "1")
    assert "threads     1 by default" in ok(invoke("info"))


def test_training_shows_an_invalid_value_in_one_line(tmp_path, monkeypatch):
    # small sizes, where the count is decided by the size alone: the CLI checks it first
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "0")
    run = tmp_path / "run"
    result = invoke("train", "char-lm", "--steps", "2", "--batch-size", "2", "--hidden", "8",
                    "--seq-len", "8", "--max-chars", "5000", "--quiet", "--out", run)
    one_line_error(result, "RECURRENT_NUM_THREADS='0'", "positive integer")
