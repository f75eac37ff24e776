"""`recurrent bench` measures in a child process whose stderr is the terminal's: an error in
it that is not a UserError (a --config too large to allocate) and a Ctrl-C while it runs
both printed the child's Python traceback, without --debug. One line instead."""
import os
import signal
import subprocess
import sys

from helpers import installed_env

BENCH = [sys.executable, "-m", "recurrent", "bench", "--vs", "none", "--cell", "lstm",
         "--threads", "1", "--repeats", "1", "--rounds", "1"]


def wait_for_child(process) -> str:
    """The line that says the measuring child is up (it sent its environment: "BLAS
    kernels ..."), read past the lines the parent prints before it (the CPU)."""
    for line in process.stdout:
        if line.startswith("BLAS kernels"):
            return line
    raise AssertionError("bench ended before its measuring child was up")


def test_a_config_too_large_to_allocate_is_one_line():
    result = subprocess.run(BENCH + ["--config", "99999999999,2,3,4"],
                            capture_output=True, text=True, timeout=300,
                            env=installed_env())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "memory" in lines[0] and "--config" in lines[0]


def test_ctrl_c_while_the_child_measures_prints_no_traceback():
    # a terminal's Ctrl-C: SIGINT to the whole foreground process group
    process = subprocess.Popen(BENCH + ["--config", "400,32,128,256", "--repeats", "500"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=installed_env())
    try:
        wait_for_child(process)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == ["Aborted."]


def _long_bench_and_its_children():
    """A bench that measures for minutes, in a session of its own, once its measuring
    child runs: (the bench's process, the pids of its children)."""
    process = subprocess.Popen(BENCH + ["--config", "400,32,128,256", "--repeats", "3000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=installed_env())
    try:
        wait_for_child(process)
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as f:
            return process, [int(pid) for pid in f.read().split()]
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def test_sigterm_to_the_process_group_stops_the_measuring_child_too():
    """The child once ran in its own session to keep Ctrl-C from it: a SIGTERM to the
    group (a closed terminal, a job supervisor) then left it measuring on its own."""
    import time
    process, children = _long_bench_and_its_children()
    try:
        assert children
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in children):
            assert time.monotonic() < deadline, "the measuring child outlived the group"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_measuring_child_killed_by_a_signal_is_named_in_one_line():
    """A child killed by a signal (the out-of-memory killer's SIGKILL, a library's
    segmentation fault) was reported as "exit code -9": the signal by name instead."""
    process, children = _long_bench_and_its_children()
    try:
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["Error: the benchmark process was killed by SIGKILL (as the system "
                     "does when memory runs out)"], err
