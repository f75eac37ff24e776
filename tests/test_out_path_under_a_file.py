"""An output path whose parent is a file ("a.png/x.png": a slash typed for a dot, or a
file named as a directory): one line naming the file that is not a directory, for every
output a command writes (out_paths.check_out, RunDir.make_directory), and the file kept."""
import pytest

from helpers import invoke, ok, one_line_error


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"not a directory")
    yield path
    assert path.read_bytes() == b"not a directory"


@pytest.mark.parametrize("under", ["x.png", "y/x.png"])
def test_predict_plot_under_a_file(task_runs, a_file, under):
    one_line_error(invoke("predict", task_runs["forecast"], "--plot", a_file / under),
                   f"--plot {a_file / under}: {a_file} is not a directory")


def test_export_out_under_a_file(task_runs, a_file):
    one_line_error(invoke("export", task_runs["char-lm"], "--format", "safetensors",
                          "--out", a_file / "m.safetensors"),
                   f"--out {a_file / 'm.safetensors'}: {a_file} is not a directory")


def test_a_missing_directory_is_still_said_so(task_runs, tmp_path):
    out = tmp_path / "none" / "m.safetensors"
    one_line_error(invoke("export", task_runs["char-lm"], "--format", "safetensors",
                          "--out", out),
                   f"--out {out}: directory {tmp_path / 'none'} does not exist")


@pytest.mark.parametrize("under", ["run", "y/run", ""])
def test_train_and_import_out_under_a_file(task_runs, a_file, tmp_path, under):
    out = f"{a_file}/{under}"
    one_line_error(invoke("train", "char-lm", "--steps", 1, "--hidden", 8, "--quiet",
                          "--out", out),
                   f"cannot create run directory {out}: {a_file} is not a directory")
    weights = tmp_path / "m.safetensors"
    if not weights.exists():
        ok(invoke("export", task_runs["char-lm"], "--format", "safetensors", "--out",
                  weights))
    one_line_error(invoke("import", weights, "--out", out),
                   f"cannot create run directory {out}: {a_file} is not a directory")


def test_train_without_out_where_runs_is_a_file(tmp_path, monkeypatch):
    """Without --out a run goes under ./runs: a file of that name is named as the mistake
    in the error, and kept."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_bytes(b"not a directory")
    one_line_error(invoke("train", "char-lm", "--steps", 1, "--hidden", 8, "--quiet",
                          "--no-plot"),
                   "cannot create the runs directory: runs is not a directory; give --out")
    assert (tmp_path / "runs").read_bytes() == b"not a directory"
