"""RECURRENT_NUM_THREADS: a valid value caps the default thread count; a set but invalid one
is a one-line error naming the variable and the value, wherever the count is resolved
(never silently ignored)."""
import json
import subprocess
import sys

import pytest

from helpers import installed_env, invoke, ok, one_line_error
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
    # thousands of digits, beyond what Python converts to an int: a count past any limit
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "9" * 5000)
    assert threads.env_threads() > 2**63
    from recurrent._kernels import ompinfo
    assert threads.max_threads() == ompinfo.thread_limit()


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


@pytest.mark.parametrize("variable", ["RECURRENT_NUM_THREADS", "OMP_NUM_THREADS", None])
def test_the_default_count_stays_within_openmps_thread_limit(variable):
    """OMP_THREAD_LIMIT=1 gives every parallel region one thread: info, tune and the
    default count say 1, whatever else asks for more (read when OpenMP starts: a process
    of its own)."""
    env = installed_env(OMP_THREAD_LIMIT="1", RECURRENT_TUNE="off")
    env.pop("RECURRENT_NUM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    if variable:
        env[variable] = "2"
    script = ("import json; from recurrent import threads, tuning; "
              "from recurrent._kernels import ompinfo; "
              "print(json.dumps([ompinfo.team_size(2), threads.max_threads(), "
              "tuning.default_threads(), threads.resolve_threads(None, 4096, 256)]))")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [1, 1, 1, 1]
    info = subprocess.run([sys.executable, "-m", "recurrent", "info", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["default_threads"] == 1


# OMP_NUM_THREADS values the OpenMP runtime reads as a count, and ones it refuses (it
# prints its own warning and uses its default): what max_threads reads must agree
OMP_VALUES = ["3", "+1", " 2 ", "\t1\n", "02", "+2,1", "2, 1", "2 ,+1", "", "0", "-1",
              "abc", "1.5", "+ 2", "1 2", "2,", ",2", "2,,1", "2,0", "2,abc", "\uff13",
              "99999999999999999999", "9" * 5000, "0" * 5000 + "2"]


def test_omp_num_threads_is_read_as_the_openmp_runtime_reads_it():
    """The runtime's own reading of each value (omp_get_max_threads in a process started
    with it, and its warning for a value it refuses) against omp_env_threads'."""
    if not threads.openmp_enabled():
        pytest.skip("the kernels were built without OpenMP")
    script = ("import json; from recurrent import threads; "
              "from recurrent._kernels import ompinfo; "
              "maps = open('/proc/self/maps').read(); "
              "print(json.dumps(['libgomp' in maps, ompinfo.max_threads(), "
              "threads.omp_env_threads()]))")
    for value in OMP_VALUES:
        env = installed_env(OMP_NUM_THREADS=value)
        env.pop("RECURRENT_NUM_THREADS", None)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        libgomp, runtime, ours = json.loads(out.stdout)
        if not libgomp:
            pytest.skip("the OpenMP runtime is not libgomp")
        refused = "Invalid value for environment variable OMP_NUM_THREADS" in out.stderr
        assert ours == (None if refused else runtime), (value, out.stderr)


def test_a_signed_omp_num_threads_caps_the_default_count(monkeypatch, with_openmp):
    monkeypatch.delenv("RECURRENT_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "+1")
    assert threads.max_threads() == 1
    assert threads.resolve_threads(None, 4096, 256) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2,abc")  # the runtime ignores the whole value
    assert threads.max_threads() == threads.available_cores()
