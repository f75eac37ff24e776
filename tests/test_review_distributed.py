"""Review tests of data-parallel training (recurrent/launch.py): run for real under the
mpiexec of the `mpi` extra."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")


def test_ranks_import_the_package_the_launcher_runs(tmp_path):
    # a source checkout in the working directory (kernels not built), say: `python -m`
    # would import it on the ranks while the launcher runs the installed package
    (tmp_path / "recurrent").mkdir()
    (tmp_path / "recurrent" / "__init__.py").write_text(
        'raise ImportError("the working directory\'s recurrent")\n')
    env = dict(os.environ)  # the ranks inherit it: no PYTHONSAFEPATH
    env.pop("PYTHONSAFEPATH", None)
    env.pop("RECURRENT_NUM_THREADS", None)
    # the launcher as the `recurrent` script runs: the working directory not on sys.path
    launcher = "import sys; sys.path.pop(0); from recurrent.cli import main; main()"
    job = subprocess.run(
        [sys.executable, "-c", launcher, "train", "char-lm", "--steps", "2",
         "--hidden", "8", "--threads", "1", "--quiet", "--no-plot", "--out", "run",
         "--ranks", "2"], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=120)
    assert job.returncode == 0, job.stderr
    assert "done after 2 steps" in job.stdout


def test_ranks_search_the_launchers_path_in_its_order(monkeypatch):
    # Setting only sys.path[0] to the package's directory put site-packages before the
    # standard library on the ranks (a PyPI backport named like a stdlib module would
    # shadow it there alone): the ranks now get the launcher's whole sys.path.
    from recurrent import launch
    seen = []

    class Captured(Exception):
        pass

    def capture(command, **kwargs):
        seen.append(command)
        raise Captured

    monkeypatch.setattr(launch.subprocess, "Popen", capture)
    with pytest.raises(Captured):
        launch.launch(2, ["train", "char-lm", "--ranks", "2"])
    monkeypatch.undo()  # the real Popen again (launch.subprocess is the module itself)
    code = seen[0][seen[0].index("-c") + 1]
    assert "from recurrent._console import main" in code
    probe = code.replace("from recurrent._console import main; main()",
                         "import json; print(json.dumps(sys.path))")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60)
    import json
    assert json.loads(shown.stdout) == sys.path


def test_ranks_start_with_the_arguments_the_cli_was_given(monkeypatch, tmp_path):
    # `train --ranks N` run in-process (click's CliRunner, a notebook): the ranks get the
    # arguments given to the CLI, not the hosting program's sys.argv
    from helpers import invoke

    from recurrent import launch
    seen = []

    def capture(command, **kwargs):
        seen.append(command)
        raise RuntimeError("not started")

    monkeypatch.setattr(launch.subprocess, "Popen", capture)
    monkeypatch.setattr(sys, "argv", ["host-program", "--host-option"])
    monkeypatch.chdir(tmp_path)
    args = ["train", "char-lm", "--steps", "2", "--out", "run", "--ranks", "2"]
    invoke(*args)
    assert seen, "mpiexec was not started"
    assert seen[0][-6:] == ["train", "char-lm", "--steps", "2", "--out", "run"]
