"""`train --out DIR` and `import FILE --out DIR` with DIR inside an existing run's
directory: a run directory holds that run's files only, so both refuse it in the same one
line naming the enclosing run (out_paths.check_outside_runs), and nothing is made there."""
import os

import pytest

from helpers import invoke, ok, one_line_error, tiny_text, train_tiny


@pytest.fixture
def run(tmp_path):
    """A fresh tiny char-lm run (the test may add a directory to it)."""
    path = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), path))
    return path


def _files(path) -> list:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("inner", ["sub", "made", "a/b"])
def test_train_out_inside_a_run_is_refused(run, tmp_path, inner):
    (run / "made").mkdir()
    before = _files(run)
    result = train_tiny(tiny_text(tmp_path), run / inner)
    one_line_error(result, f"--out {run / inner} is inside the run directory {run}")
    assert _files(run) == before


@pytest.mark.parametrize("inner", ["sub", "made", "a/b"])
def test_import_out_inside_a_run_is_refused_as_train_refuses_it(run, tmp_path, inner):
    (run / "made").mkdir()
    exported = tmp_path / "m.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", exported))
    before = _files(run)
    result = invoke("import", exported, "--out", run / inner)
    one_line_error(result, f"--out {run / inner} is inside the run directory {run}")
    assert _files(run) == before


def test_a_link_into_a_run_is_refused_too(run, tmp_path):
    exported = tmp_path / "m.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", exported))
    os.symlink(run, tmp_path / "link")
    result = invoke("import", exported, "--out", tmp_path / "link" / "sub")
    one_line_error(result, f"is inside the run directory {run}")
    assert not (run / "sub").exists()


def test_train_without_out_in_a_run_names_the_default_directory(run, tmp_path, monkeypatch):
    """Without --out the new run would go to runs/ of the working directory: inside a run,
    the line names that default, which the user did not type, and asks for --out."""
    text = tiny_text(tmp_path)
    before = _files(run)
    monkeypatch.chdir(run)
    result = invoke("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                    "--quiet", "--no-plot")
    line = one_line_error(result, f"the default run directory runs{os.sep} is inside the "
                                  f"run directory {run}; give --out outside it")
    assert "--out runs" not in line
    assert _files(run) == before
