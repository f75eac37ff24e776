"""--threads is "honoured as given" as an upper bound the kernels lower, so 100000 works;
but a count beyond a C integer reached the kernels and came back as "internal error
(OverflowError: Python int too large to convert to C long)" from train, eval and tune
(and a traceback from bench's child). A usage error naming the option instead."""
import pytest
from helpers import invoke, ok, tiny_text, train_tiny

HUGE = 10**20


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("threads")
    text, path = tiny_text(root), root / "run"
    ok(train_tiny(text, path))
    return path, text


def _usage_error(result):
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--threads" in lines[0], result.stderr
    assert "internal error" not in result.stderr


def test_train_refuses_a_thread_count_beyond_a_c_int(run, tmp_path):
    _, text = run
    _usage_error(invoke("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                        "--threads", HUGE, "--quiet", "--no-plot", "--out", tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_eval_refuses_it(run):
    _usage_error(invoke("eval", run[0], "--threads", HUGE))


def test_tune_refuses_it():
    _usage_error(invoke("tune", "--threads", HUGE, "--budget", 0.01))


def test_a_large_count_is_still_an_upper_bound(run):
    ok(invoke("eval", run[0], "--threads", 100000))
