"""A named pipe in place of a run's checkpoint or config.json is refused in one line, not
read (which would wait forever for a writer)."""
import os
import subprocess
import sys

import pytest
from helpers import installed_env, ok, tiny_text, train_tiny


@pytest.mark.parametrize("name", ["best.npz", "config.json"])
def test_a_named_pipe_for_a_run_file_is_refused(tmp_path, name):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    os.remove(run / name)
    os.mkfifo(run / name)
    result = subprocess.run([sys.executable, "-m", "recurrent", "predict", str(run),
                             "--length", "5"], capture_output=True, text=True, timeout=120,
                            env=installed_env(), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].endswith(f"{run / name}: not a regular file"), lines[0]
