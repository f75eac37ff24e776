"""A `train --resume RUN` started while another process is still making RUN (its
config.json written, its training not started yet) is refused in one line and changes
nothing: the making process holds the run's lock before it writes the run's first file,
and trains the run as if no resume had been tried. The maker is stopped at that point:
it says so on stdout and waits for a line on stdin."""
from __future__ import annotations

import os
import subprocess
import sys

from helpers import TINY_RUN, installed_env, invoke, one_line_error, tiny_text

STOPPED = "config.json written; waiting"

MAKER = """
import sys
from recurrent import checkpoint
from recurrent.cli import main

out = sys.argv[1]
create = checkpoint.RunDir.create.__func__

def create_then_wait(cls, path, *args, **kwargs):
    run = create(cls, path, *args, **kwargs)
    if path == out:
        print(%r, flush=True)
        sys.stdin.readline()
    return run

checkpoint.RunDir.create = classmethod(create_then_wait)
main(["train", "char-lm"] + sys.argv[2:] + ["--out", out])
""" % STOPPED


def test_a_resume_while_the_run_is_made_is_refused(tmp_path):
    text = tiny_text(tmp_path)
    run = tmp_path / "run"
    maker = subprocess.Popen(
        [sys.executable, "-c", MAKER, str(run), "--data", str(text), *map(str, TINY_RUN),
         "--no-plot"],
        env=installed_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        for line in maker.stdout:  # until the maker stops (or ends: then the run is missing)
            if line.strip() == STOPPED:
                break
        before = sorted(os.listdir(run))
        config = (run / "config.json").read_bytes()
        result = invoke("train", "--resume", run)
        after = sorted(os.listdir(run))
        config_after = (run / "config.json").read_bytes()
    finally:
        out, err = maker.communicate("\n")
    one_line_error(result, f"{run} is being trained by another process")
    assert after == before == ["config.json"]
    assert config_after == config
    assert maker.returncode == 0, err
    assert "done after 2 steps" in out, out
