"""A Ctrl-C that reaches the ranks of a data-parallel job outside its training steps: while
the ranks load the command line (before MPI is started), and after the last step while
rank 0 alone finishes the run. Run for real under the mpiexec of the `mpi` extra (MPICH)."""
from __future__ import annotations

import sys

import pytest
from test_distributed import TINY, _env, _one_line, ctrl_c_at_line, recurrent_cmd
from test_distributed_startup import _run_job

from recurrent.checkpoint import load_arrays

pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
from recurrent.launch import mpiexec  # noqa: E402

# Loaded with the command line (its entry point is read when the CLI is built): with
# CTRL_C_WHILE_LOADING set, the process gets a SIGINT there, as a Ctrl-C that mpiexec
# passes on while this rank is still loading and the other is already starting MPI.
CTRL_C_WHILE_LOADING = '''
import os, signal
if os.environ.get("CTRL_C_WHILE_LOADING"):
    os.kill(os.getpid(), signal.SIGINT)
'''

# A char-lm whose after_training (run by rank 0 alone, after the last step, while the
# other ranks have nothing left to do) takes a few seconds and says when it starts.
SLOW_AFTER_TRAINING = '''
import time
import recurrent
from recurrent_plugins.char_lm import CharLM

class SlowEndLM(CharLM):
    name = "slow-end-lm"
    help = "char-lm whose after_training takes a few seconds (tests only)"

    def after_training(self, state, config, model):
        print("after training", flush=True)
        time.sleep(3)
        return state

@recurrent.hookimpl
def register_tasks(register):
    register(SlowEndLM())
'''


def _plugin(tmp_path, module: str, source: str) -> dict:
    """``source`` as the module ``module`` of a plugin found through a real entry point
    on PYTHONPATH (tmp_path/site, which _env puts there); the environment selecting it."""
    site = tmp_path / "site"
    info = site / f"{module}-0.0.dist-info"
    info.mkdir(parents=True)
    (site / f"{module}.py").write_text(source)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[recurrent]\n{module} = {module}\n")
    return {"RECURRENT_NO_ENTRYPOINTS": "", "RECURRENT_PLUGINS": module}


@pytest.mark.parametrize("interrupted_rank", [0, 1])
def test_a_ctrl_c_while_one_rank_loads_stops_every_rank(tmp_path, interrupted_rank):
    """The interrupted rank ends before starting MPI; the other, already waiting for it
    in MPI's start, is told and stops too (it waited forever), with one line."""
    env = _plugin(tmp_path, "ctrl_c_while_loading", CTRL_C_WHILE_LOADING)
    command = [sys.executable, "-m", "recurrent", "train", "char-lm", *TINY, "--out", "run"]
    ranks = [[mpiexec(), "-n", "1"], [":", "-n", "1"]]
    ranks[interrupted_rank] += ["-env", "CTRL_C_WHILE_LOADING", "1"]
    job = _run_job([*ranks[0], *command, *ranks[1], *command], tmp_path, timeout=30,
                   PYTHONSAFEPATH="1", **env)
    assert job.returncode != 0
    assert _one_line(job.stderr) == ("Aborted." if interrupted_rank == 0
                                     else "Error: rank 1: Aborted.")
    assert not (tmp_path / "run").exists()


def test_a_ctrl_c_while_rank_0_finishes_the_run_lets_it_finish(tmp_path):
    """After the last step rank 0 alone runs the task's after_training; the other rank
    waits for it. A Ctrl-C then changes nothing (the training has ended): the run ends
    done, rather than with the waiting rank killed and rank 0 stopped midway."""
    env = _env(tmp_path, **_plugin(tmp_path, "slow_end_lm", SLOW_AFTER_TRAINING))
    code, out, err = ctrl_c_at_line(
        ["train", "slow-end-lm", *TINY, "--steps", "4", "--out", "run", "--ranks", "2"],
        tmp_path, env, "after training")
    assert (code, err) == (0, ""), err
    assert "done after 4 steps" in out
    _, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    assert meta["step"] == 4 and meta["finished"]


# A char-lm whose validation pass says when it starts and then takes EVALUATION_SECONDS
# (none unless it is set), so that a Ctrl-C during it leaves the ranks busy when a second
# one follows.
SLOW_EVALUATION = '''
import os, time
import recurrent
from recurrent_plugins.char_lm import CharLM

class SlowEvalLM(CharLM):
    name = "slow-eval-lm"
    help = "char-lm whose validation pass takes EVALUATION_SECONDS (tests only)"

    def evaluate(self, state, split, config, model):
        print("evaluating", flush=True)
        time.sleep(float(os.environ.get("EVALUATION_SECONDS", "0")))
        return super().evaluate(state, split, config, model)

@recurrent.hookimpl
def register_tasks(register):
    register(SlowEvalLM())
'''


def test_a_second_ctrl_c_on_the_launcher_aborts_with_one_line(tmp_path):
    """The first Ctrl-C comes during an evaluation (the ranks finish it before they can
    stop), the second while they are still in it: mpiexec then ends the ranks at once, and
    --ranks says so in one line, as a single process does on a second Ctrl-C, instead of
    passing on mpiexec's own messages; the checkpoint saved before is intact. The
    evaluation lasts far longer than the two Ctrl-Cs can take to arrive (the second one
    ends it), so both come during it however late the line reaches the test."""
    plugin = _plugin(tmp_path, "slow_eval_lm", SLOW_EVALUATION)
    env = _env(tmp_path, **plugin, EVALUATION_SECONDS=30)
    code, out, err = ctrl_c_at_line(
        ["train", "slow-eval-lm", *TINY, "--steps", "100", "--out", "run", "--ranks", "2"],
        tmp_path, env, "evaluating", wait=0.5, again=0.5)
    assert (code, _one_line(err)) == (130, "Aborted."), err
    assert (tmp_path / "run" / "config.json").exists()
    resumed = recurrent_cmd(["train", "--resume", "run", "--steps", "4"], tmp_path, **plugin)
    assert resumed.returncode == 0, resumed.stderr
    _, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    assert meta["step"] == 4 and meta["finished"]
