"""An import that fails or is killed leaves no half-made run. It wrote config.json, then
best.npz: when best.npz could not be written (a full disk, a file-size limit, Ctrl-C) the
directory was left with config.json alone, a "run" that eval and predict misdescribed
("holds best.npz only") and a second import refused ("already holds a run"); a kill
between the writes (SIGKILL, a power cut: nothing can clean up) left the same. It now
writes best.npz first and config.json last, both created, never replaced, so a failure
or kill at any write leaves either the whole run or no run."""
import os
import signal
import subprocess
import sys

import pytest
from helpers import file_size_limit, installed_env, invoke, ok, tiny_text, train_tiny


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    run = root / "run"
    ok(train_tiny(tiny_text(root), run))
    out = root / "model.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", out))
    return out


def test_an_import_that_cannot_write_its_checkpoint_leaves_no_run(exported, tmp_path):
    out = tmp_path / "imported"
    # best.npz (~6 kB) does not fit a limit of 3,000 bytes: a full disk at its write
    result = subprocess.run([sys.executable, "-m", "recurrent", "import", str(exported),
                             "--out", str(out)], preexec_fn=file_size_limit(3000),
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()  # one line naming the file, not a bug's line
    assert len(lines) == 1 and "best.npz" in lines[0], result.stderr
    assert "internal error" not in lines[0], lines[0]
    assert not os.path.exists(out / "config.json"), os.listdir(out)
    # the same import, with room to write, then works
    ok(invoke("import", exported, "--out", out))
    ok(invoke("predict", out, "--length", 5))


def test_a_failed_import_into_an_existing_empty_directory_keeps_the_directory(exported,
                                                                              tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = subprocess.run([sys.executable, "-m", "recurrent", "import", str(exported),
                             "--out", str(out)], preexec_fn=file_size_limit(3000),
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 1
    assert out.is_dir() and os.listdir(out) == []


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


# `recurrent import` whose process gets a real signal (the first argument's number) once
# the run's best.npz is written, before its config.json is.
IMPORT_SIGNALLED = """
import os, runpy, signal, sys
import recurrent.export.run as export_run
signum = int(sys.argv.pop(1))
save_arrays = export_run.save_arrays
def saved_then_signalled(*args, **kwargs):
    save_arrays(*args, **kwargs)
    os.kill(os.getpid(), signum)
export_run.save_arrays = saved_then_signalled
sys.argv = ["recurrent"] + sys.argv[1:]
runpy.run_module("recurrent", run_name="__main__")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_import_leaves_no_half_made_run(exported, tmp_path, signum):
    """A Ctrl-C or SIGTERM just as the imported run's best.npz is in place: "Aborted.",
    and no directory holding it without config.json (which the next import to that
    --out, or any command on it, would refuse)."""
    result = subprocess.run([sys.executable, "-c", IMPORT_SIGNALLED, str(int(signum)),
                             "import", exported, "--out", "imported"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env=installed_env(), timeout=120)
    assert result.returncode == 128 + signum, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == ["Aborted."]
    assert not (tmp_path / "imported").exists()
    ok(invoke("import", exported, "--out", tmp_path / "imported"))  # the name is free
    ok(invoke("predict", tmp_path / "imported", "--length", 5))


# `recurrent import` whose process gets a real signal (the first argument's number) as
# the write of the run's config.json (the second argument), its last file, ends
SIGNALLED_AS_CONFIG_ENDS = """
import os, runpy, sys
import recurrent.checkpoint as checkpoint
signum, last = int(sys.argv.pop(1)), os.path.abspath(sys.argv.pop(1))
write = checkpoint._atomic_write
def written_then_signalled(path, *args, **kwargs):
    write(path, *args, **kwargs)
    if os.path.abspath(path) == last:
        os.kill(os.getpid(), signum)
checkpoint._atomic_write = written_then_signalled
sys.argv = ["recurrent"] + sys.argv[1:]
runpy.run_module("recurrent", run_name="__main__")
"""


@pytest.mark.parametrize("members", [1, 2])
def test_a_signal_as_config_json_is_written_keeps_the_whole_run(tmp_path, members):
    """A Ctrl-C just as the import's last file, config.json, is in place: the run is
    whole and is kept as it is (an ensemble's member directories too), not taken apart
    into a config.json without the files it names."""
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--ensemble", members))
    exported = tmp_path / "model.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", exported))
    out = tmp_path / "imported"
    result = subprocess.run([sys.executable, "-c", SIGNALLED_AS_CONFIG_ENDS,
                             str(int(signal.SIGINT)), str(out / "config.json"),
                             "import", str(exported), "--out", str(out)],
                            capture_output=True, text=True, env=installed_env(), timeout=120)
    assert result.returncode == 130, result.stderr
    assert ok(invoke("predict", out, "--length", 5, "--seed", 1)) == ok(
        invoke("predict", run, "--length", 5, "--seed", 1))
