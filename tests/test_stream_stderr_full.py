"""`predict --stream` whose stderr cannot be written (2>/dev/full): stderr carries notes
and copies of the errors answered on stdout, so the stream answers every line on stdout
and ends with the status the lines give, as with a working stderr."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import installed_env

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def stream(run, lines, stderr):
    return subprocess.run([sys.executable, "-m", "recurrent", "predict", str(run),
                           "--stream", "--top-k", "1"], input="".join(lines).encode(),
                          stdout=subprocess.PIPE, stderr=stderr, env=installed_env(),
                          timeout=300)


def test_a_full_stderr_does_not_end_the_stream(task_runs, tmp_path):
    # a run without best.npz: predict notes that it uses last.npz, before the first line
    run = tmp_path / "run"
    shutil.copytree(task_runs["char-lm"], run)
    (run / "best.npz").unlink()
    lines = ["to be\n", "\u20ac\n", "or not\n", "\u20ac\u20ac\n", "to\n"]
    seen = stream(run, lines, subprocess.PIPE)
    assert seen.returncode == 1
    assert b"note:" in seen.stderr and b"Error: line 2:" in seen.stderr
    with open("/dev/full", "wb") as full:
        blind = stream(run, lines, full)
    assert blind.returncode == 1
    answers = [json.loads(line) for line in blind.stdout.splitlines()]
    assert len(answers) == 5 and [("error" in a) for a in answers] == [False, True, False,
                                                                       True, False]
    assert blind.stdout == seen.stdout
