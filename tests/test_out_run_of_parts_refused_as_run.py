"""`train --out DIR` where DIR holds an ensemble or a run of candidates (one made before,
or by another `train --out DIR` started at the same moment) is refused as that run:
the one line names DIR and `--resume DIR`, not one of its parts, whose resume alone would
train that part only."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from helpers import installed_env, invoke, ok, one_line_error, tiny_text, train_tiny

SMALL_FORECAST = ["--hidden", "4", "--steps", "2", "--threads", "1", "--quiet", "--no-plot"]


def test_an_ensemble_there_is_refused_as_the_ensemble(tmp_path):
    text = tiny_text(tmp_path)
    run = tmp_path / "ens"
    ok(train_tiny(text, run, "--ensemble", "2"))
    before = sorted(os.listdir(run / "member-0"))
    result = train_tiny(text, run, "--ensemble", "2")
    one_line_error(result, f"{run} already holds a run: continue it with "
                           f"`recurrent train --resume {run}`")
    assert "member-0" not in result.stderr, result.stderr
    assert sorted(os.listdir(run / "member-0")) == before


def test_a_run_of_candidates_there_is_refused_as_that_run(tmp_path):
    run = tmp_path / "chose"
    ok(invoke("train", "forecast", "--out", run, *SMALL_FORECAST))
    result = invoke("train", "forecast", "--out", run, *SMALL_FORECAST)
    one_line_error(result, f"{run} already holds a run: continue it with "
                           f"`recurrent train --resume {run}`")
    assert "candidate-0" not in result.stderr, result.stderr


def test_candidates_left_by_a_stopped_start_are_named_as_such(tmp_path):
    """A `train --out DIR` killed (SIGKILL, a power cut: nothing can clean up) after
    writing candidates' config.json files but before DIR/config.json leaves neither a
    run to resume nor a part worth resuming alone: a new start says what DIR holds and
    leaves it as it is."""
    run = tmp_path / "half"
    ok(invoke("train", "forecast", "--out", run, *SMALL_FORECAST))
    for name in os.listdir(run):  # as the stopped start left it: the candidates' options
        if name.startswith("candidate-"):
            for part in os.listdir(run / name):
                if part != "config.json":
                    os.remove(run / name / part)
        else:
            os.remove(run / name)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    result = invoke("train", "forecast", "--out", run, *SMALL_FORECAST)
    one_line_error(result, f"{run} holds candidate-0 but no config.json: a `train --out "
                           f"{run}` was stopped while it made its candidates; remove {run} "
                           f"or choose another --out")
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before


# `recurrent train` whose process gets a real signal (the first argument's number) once
# the run's candidate-1 is made, before the run's own config.json is.
SIGNALLED_AT_CANDIDATE = """
import os, runpy, sys
from recurrent.checkpoint import RunDir
signum = int(sys.argv.pop(1))
create = RunDir.create.__func__
def create_then_signal(cls, path, *args, **kwargs):
    run = create(cls, path, *args, **kwargs)
    if os.path.basename(path) == "candidate-1":
        os.kill(os.getpid(), signum)
    return run
RunDir.create = classmethod(create_then_signal)
sys.argv = ["recurrent"] + sys.argv[1:]
runpy.run_module("recurrent", run_name="__main__")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_start_stopped_while_it_makes_candidates_takes_them_back(tmp_path, signum):
    """A Ctrl-C or SIGTERM while `train --out DIR` makes its candidates: "Aborted.", and
    DIR holds none of them, so the same command can be given again."""
    run = tmp_path / "stopped"
    result = subprocess.run([sys.executable, "-c", SIGNALLED_AT_CANDIDATE, str(int(signum)),
                             "train", "forecast", "--out", run, *SMALL_FORECAST],
                            capture_output=True, text=True, env=installed_env(), timeout=300)
    assert result.returncode == 128 + signum, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == ["Aborted."]
    assert not run.exists() or os.listdir(run) == []
    ok(invoke("train", "forecast", "--out", run, *SMALL_FORECAST))
