"""--threads is "honoured as given" as an upper bound the kernels lower, up to
MAX_THREAD_OPTION, above any machine's cores: a count beyond a C integer would not reach
the kernels intact, and bench's torch side starts every thread it is given (100000 of
them crash it). Above the bound, train, eval, tune and bench refuse the count in one line
naming the option."""
import pytest
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.threads import MAX_THREAD_OPTION

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
    ok(invoke("eval", run[0], "--threads", MAX_THREAD_OPTION))


@pytest.mark.parametrize("count", [MAX_THREAD_OPTION + 1, 100000])
def test_a_count_no_machine_has_cores_for_is_refused_in_one_line(run, tmp_path, count):
    _, text = run
    _usage_error(invoke("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                        "--threads", count, "--quiet", "--no-plot", "--out", tmp_path / "r"))
    assert not (tmp_path / "r").exists()
    _usage_error(invoke("eval", run[0], "--threads", count))
    one_line_error(invoke("bench", "--cell", "lstm", "--config", "5,2,4,8", "--threads",
                          f"1,{count}", "--repeats", 1, "--rounds", 1),
                   f"--threads: thread counts must be from 1 to {MAX_THREAD_OPTION}")
