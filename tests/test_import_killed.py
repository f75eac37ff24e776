"""`recurrent import` killed between its two writes (SIGKILL, a power cut: nothing can
clean up). It wrote config.json, then best.npz, so a kill in between left a "run" with
no checkpoint, which eval and predict described as "holds best.npz only" and a second
import refused with "continue it with --resume" (which refuses an imported run too).
config.json must be written last: a kill at any write leaves either the whole run or no
run at all."""
import os
import subprocess
import sys

import pytest
from helpers import installed_env, invoke, ok, tiny_text, train_tiny

# `recurrent import` in a process that dies (os._exit: no cleanup, as SIGKILL) at the
# start of its Nth file write
KILLED_AT_WRITE = """
import os, sys
import recurrent.checkpoint as checkpoint
write = checkpoint._atomic_write
count, kill_at = [0], int(sys.argv[1])
def dying(path, *args, **kwargs):
    count[0] += 1
    if count[0] == kill_at:
        os._exit(9)
    return write(path, *args, **kwargs)
checkpoint._atomic_write = dying
sys.argv = ["recurrent"] + sys.argv[2:]
from recurrent._console import main
main()
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    run = root / "run"
    ok(train_tiny(tiny_text(root), run))
    out = root / "model.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", out))
    return out


@pytest.mark.parametrize("write", [1, 2])
def test_an_import_killed_at_any_write_leaves_no_run_without_its_checkpoint(exported,
                                                                            tmp_path, write):
    out = tmp_path / "imported"
    result = subprocess.run([sys.executable, "-c", KILLED_AT_WRITE, str(write), "import",
                             str(exported), "--out", str(out)],
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 9, result.stderr
    files = set(os.listdir(out)) if out.exists() else set()
    assert "config.json" not in files or "best.npz" in files, files
    if "config.json" not in files:  # not a run: eval says so, without a wrong description
        result = invoke("eval", out)
        assert result.exit_code != 0
        assert "holds best.npz only" not in result.stderr, result.stderr


def test_an_imported_run_without_best_npz_is_described_as_cut_short(exported, tmp_path):
    out = tmp_path / "imported"
    ok(invoke("import", exported, "--out", out))
    os.remove(out / "best.npz")  # what an import killed by an earlier version left
    result = invoke("eval", out)
    assert result.exit_code == 1
    assert "cut short" in result.stderr and "holds best.npz only" not in result.stderr


def test_an_import_that_loses_a_race_changes_nothing(exported, tmp_path, monkeypatch):
    """Another process makes a run at --out between the import's check and its writes."""
    from recurrent.checkpoint import RunDir
    from recurrent.errors import UserError
    from recurrent.export.run import import_file
    out = tmp_path / "imported"
    original = RunDir.make_directory.__func__

    def check_then_lose(cls, path):
        original(cls, path)
        (out / "config.json").write_text("{}")  # the winner's

    monkeypatch.setattr(RunDir, "make_directory", classmethod(check_then_lose))
    with pytest.raises(UserError, match="already holds a run"):
        import_file(str(exported), str(out))
    assert sorted(os.listdir(out)) == ["config.json"]
    assert (out / "config.json").read_text() == "{}"
