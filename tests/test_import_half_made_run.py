"""`recurrent import` writes config.json, then best.npz. When best.npz cannot be written
(a full disk, a file-size limit, Ctrl-C) the directory is left with config.json alone: a
"run" that eval and predict misdescribe ("holds best.npz only") and that a second import
refuses ("already holds a run"). A failed import must leave no run behind."""
import os
import resource
import signal
import subprocess
import sys

import pytest
from helpers import installed_env, invoke, ok, tiny_text, train_tiny


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    run = root / "run"
    ok(train_tiny(tiny_text(root), run))
    out = root / "model.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", out))
    return out


def _limited(limit):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_an_import_that_cannot_write_its_checkpoint_leaves_no_run(exported, tmp_path):
    out = tmp_path / "imported"
    # config.json (~1.5 kB) fits, best.npz (~6 kB) does not: a full disk after config.json
    result = subprocess.run([sys.executable, "-m", "recurrent", "import", str(exported),
                             "--out", str(out)], preexec_fn=_limited(3000),
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "best.npz" in result.stderr
    assert not os.path.exists(out / "config.json"), os.listdir(out)
    # the same import, with room to write, then works
    ok(invoke("import", exported, "--out", out))
    ok(invoke("predict", out, "--length", 5))


def test_a_failed_import_into_an_existing_empty_directory_keeps_the_directory(exported,
                                                                              tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = subprocess.run([sys.executable, "-m", "recurrent", "import", str(exported),
                             "--out", str(out)], preexec_fn=_limited(3000),
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 1
    assert out.is_dir() and os.listdir(out) == []
