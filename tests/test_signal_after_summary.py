"""A Ctrl-C or SIGTERM that reaches `recurrent train` after its summary line, while the
process ends, finds the run complete: the command exits with status 0, or, when the
signal lands before the command has returned, with "Aborted." and 128 + the signal; never
killed by the signal itself (no line at all) nor with a traceback. Sent for real to a
training subprocess at several moments after the summary line."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from helpers import installed_env, tiny_text

from recurrent.checkpoint import LAST, load_meta

# seconds after the summary line: from inside the command to the interpreter's shutdown
DELAYS = (0.0, 0.005, 0.01, 0.02, 0.04)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_signal_after_the_summary_leaves_a_complete_run_and_a_clean_exit(tmp_path,
                                                                          signum):
    text = tiny_text(tmp_path)
    for delay in DELAYS:
        run = tmp_path / f"run-{delay}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "recurrent", "train", "char-lm", "--data", str(text),
             "--steps", "2", "--hidden", "8", "--embed-dim", "4", "--seq-len", "16",
             "--threads", "1", "--quiet", "--no-plot", "--out", str(run)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=installed_env(), start_new_session=True)
        try:
            summary = proc.stdout.readline()
            assert summary.startswith("done after 2 steps"), summary
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signum)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode in (0, 128 + signum), (delay, proc.returncode, err)
        assert [line for line in err.splitlines() if line.strip()] in ([], ["Aborted."]), \
            (delay, err)
        assert load_meta(str(run / LAST))["finished"] is True


@pytest.mark.parametrize("how", ["runpy", "cli"])
def test_a_program_running_recurrent_inside_itself_keeps_its_signal_handlers(how):
    """Only the process whose program recurrent is ignores signals once the command has
    ended: a program that runs it inside itself (runpy, as IPython's `%run -m` does, or
    recurrent.cli.main) goes on with its own handlers, a Ctrl-C still stopping it."""
    run = ("runpy.run_module('recurrent', run_name='__main__', alter_sys=True)"
           if how == "runpy" else "__import__('recurrent.cli').cli.main(['info'])")
    code = ("import runpy, signal, sys\n"
            "sys.argv = ['recurrent', 'info']\n"
            "try:\n"
            f"    {run}\n"
            "except SystemExit:\n"
            "    pass\n"
            "print([signal.getsignal(s) for s in "
            "(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)])\n")
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=installed_env(), timeout=120)
    assert job.returncode == 0, job.stderr
    last = job.stdout.strip().splitlines()[-1]
    assert "default_int_handler" in last and "SIG_IGN" not in last, last
