"""A tuning cache file a user or an accident damaged, and kernel variables set to values
the kernels do not read: every case is one line (ignored with a note, or refused), never a
crash, a hang or a traceback, and never a setting the kernels cannot use."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import installed_env, invoke, ok, one_line_error

from recurrent import tuning
from recurrent.errors import UserError
from recurrent.layers import LSTM
from recurrent.tuning import Decision, Workload

TINY = (Decision("row_parts", (8, 16), (Workload("gru", True, 4, 4, 8, 16),
                                        Workload("lstm", False, 4, 4, 8, 16))),)


@pytest.fixture
def tuning_on(monkeypatch, tmp_path):
    """Tuning on, with an empty cache directory of this test and a tune of one small
    decision; the defaults again afterwards."""
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECURRENT_TUNE", "on")
    monkeypatch.setattr(tuning, "DECISIONS", TINY)
    monkeypatch.setattr(tuning, "AUTO_BUDGET", 0.05)
    tuning.reset()
    yield tmp_path
    tuning.reset()


@pytest.mark.parametrize("row_parts", [2**31, 2**32])
def test_a_row_count_beyond_a_c_int_is_out_of_range(tuning_on, row_parts):
    """The kernels read row_parts as a C int: 2**32 would wrap to zero (a division by zero
    that kills the process) and 2**31 to a negative count, so a cache holding either is
    ignored and the setting is refused."""
    path = tuning.cache_path()
    tuning.write_cache(path, dict(tuning.defaults(), row_parts=row_parts), {})
    with pytest.raises(tuning.CacheError, match="row_parts.*out of range"):
        tuning.read_cache(path)
    with pytest.raises(ValueError, match="row_parts"):
        tuning._kernels().apply({"row_parts": row_parts})
    assert tuning.current() == tuning.defaults()
    assert tuning.status()["mode"] == "pending"
    tuning.ensure()
    tuning._kernels().apply({"row_parts": 2**31 - 1})  # the largest C int still runs
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))


def test_a_deeply_nested_cache_file_is_ignored_in_one_line(tuning_on, capfd):
    """JSON nested deeper than the parser recurses (RecursionError, not a ValueError)."""
    path = tuning.cache_path()
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("[" * 100_000 + "]" * 100_000)
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "ignoring the tuning cache" in err and path in err
    assert tuning.read_cache(path) == tuning.current()   # replaced by a good one


def test_a_huge_cache_file_is_ignored_unread(tuning_on, capfd):
    """A valid tuning file padded to megabytes would cost every command its reading."""
    path = tuning.cache_path()
    tuning.write_cache(path, dict(tuning.defaults(), row_parts=8), {"pad": "x" * (2 << 20)})
    with pytest.raises(tuning.CacheError, match="too large for a tuning file"):
        tuning.read_cache(path)
    assert tuning.status()["mode"] == "pending"
    assert "too large for a tuning file" in capfd.readouterr().err


def test_a_named_pipe_in_place_of_the_cache_file_is_ignored_not_waited_on(tmp_path):
    """Opening a named pipe waits for a writer: `recurrent info` would never return."""
    env = installed_env(RECURRENT_CACHE_DIR=str(tmp_path), RECURRENT_TUNE="on")
    path = subprocess.run([sys.executable, "-c", "from recurrent import tuning; "
                           "print(tuning.cache_path())"], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    os.makedirs(os.path.dirname(path))
    os.mkfifo(path)
    done = subprocess.run([sys.executable, "-m", "recurrent", "info"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"recurrent: ignoring the tuning cache {path}: not a regular "
                           f"file; the first kernel call tunes again\n")


@pytest.mark.parametrize("value", ["AVX2", "avx512", "sse", " portable", "off"])
def test_a_vector_level_the_kernels_do_not_read_is_refused(monkeypatch, value):
    """The kernels take RECURRENT_VECTOR_LEVEL=avx2, avx_vnni or portable, exactly; any
    other value would run the best vector code the CPU has, as if the variable were
    unset."""
    monkeypatch.setenv("RECURRENT_VECTOR_LEVEL", value)
    one_line_error(invoke("info"), f"RECURRENT_VECTOR_LEVEL={value!r}",
                   "avx2, avx_vnni or portable")
    tuning.reset()  # a library call's first kernel call checks it too
    try:
        with pytest.raises(UserError, match="RECURRENT_VECTOR_LEVEL"):
            LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    finally:
        tuning.reset()


@pytest.mark.parametrize("value", ["avx2", "avx_vnni", "portable", ""])
def test_the_vector_levels_the_kernels_read_are_accepted(monkeypatch, value):
    monkeypatch.setenv("RECURRENT_VECTOR_LEVEL", value)
    assert "tuning" in ok(invoke("info"))


def test_no_home_directory_for_the_cache_is_not_called_turned_off(monkeypatch, tmp_path):
    """A relative HOME gives no cache (recurrent/cache.py): info and tune say so, rather
    than blame a RECURRENT_CACHE_DIR=off nobody set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECURRENT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "home")
    monkeypatch.setenv("RECURRENT_TUNE", "on")
    tuning.reset()
    try:
        out = ok(invoke("info"))
        assert "RECURRENT_CACHE_DIR=off" not in out
        assert "the home directory 'home' is not an absolute path" in out
        one_line_error(invoke("tune", "--off"), "the home directory 'home'",
                       "RECURRENT_CACHE_DIR is not set")
    finally:
        tuning.reset()
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "off")
    assert "(RECURRENT_CACHE_DIR=off)" in ok(invoke("info"))
    # nowhere to keep a tuning: one line, before any measuring is announced
    one_line_error(invoke("tune", "--budget", 1),
                   "tune: the cache is turned off (RECURRENT_CACHE_DIR=off)")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_tune_stopped_by_a_signal_says_so_and_keeps_the_cache(tmp_path, signum, code):
    """Ctrl-C, or a SIGTERM (`timeout`, a scheduler), while `recurrent tune` measures:
    "Aborted." and the signal's exit status, the cache file as it was."""
    env = installed_env(RECURRENT_CACHE_DIR=str(tmp_path), RECURRENT_TUNE="on")
    first = subprocess.run([sys.executable, "-m", "recurrent", "tune", "--budget", "0.01",
                            "--threads", "1"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    path = first.stdout.strip().splitlines()[-1].split()[1]
    with open(path, "rb") as f:
        before = f.read()
    tune = subprocess.Popen([sys.executable, "-m", "recurrent", "tune", "--budget", "600",
                             "--threads", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in tune.stderr:
        if line.startswith("tuning lstm_in_tile_min_rows"):  # measuring now
            break
    tune.send_signal(signum)
    rest = tune.stderr.read()
    tune.wait()
    assert tune.returncode == code and rest.strip().splitlines()[-1] == "Aborted.", rest
    with open(path, "rb") as f:
        assert f.read() == before
    assert sorted(os.listdir(os.path.dirname(path))) == sorted(
        [os.path.basename(path), os.path.basename(path) + ".lock"])
