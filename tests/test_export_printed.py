"""What `recurrent export` prints: the torch module loads its file by an absolute path,
a given relative --out too, so the saved module imports from any working directory
(plain, seq2seq and ensemble runs); and the lines are printed before the file is moved
into place, so an export whose stdout cannot take them (/dev/full, a pipe whose reader
has closed it) fails and leaves no file written, nor an existing one replaced with
--force, in every format."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import installed_env, invoke, ok, one_line_error, small_sentiment_ensemble

torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")

FULL = "Error: cannot write standard output: No space left on device"


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    return small_sentiment_ensemble(tmp_path_factory.mktemp("printed_ensemble"))


@pytest.mark.parametrize("kind", ["char-lm", "seq2seq", "ensemble"])
def test_the_printed_module_loads_a_relative_out_from_any_directory(kind, task_runs,
                                                                    request, tmp_path,
                                                                    monkeypatch):
    """Exported from one directory with a relative --out, the saved module builds its
    model and loads the file (strict) from another: the code names the absolute path."""
    run = request.getfixturevalue("ensemble") if kind == "ensemble" else task_runs[kind]
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "q").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    printed = ok(invoke("export", run, "--format", "torch", "--out",
                        "q/rel.torch.safetensors"))
    written = Path.cwd() / "q" / "rel.torch.safetensors"  # here, as the process names it
    assert written.is_file()
    assert printed.startswith(f"# wrote {written}: ")
    assert f"load_file({str(written)!r})" in printed
    assert "'q/rel.torch.safetensors'" not in printed  # seq2seq's safe_open line too
    module = tmp_path / "model.py"
    module.write_text(printed, encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    model = runpy.run_path(str(module))["model"]  # loads the file, strict=True
    from safetensors.torch import load_file
    assert set(model.state_dict()) == set(load_file(str(written)))


def _export(stdout, run, fmt, out, *extra):
    return subprocess.run([sys.executable, "-m", "recurrent", "export", str(run),
                           "--format", fmt, "--out", str(out), *extra],
                          stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env=installed_env())


def _to_closed_pipe(*args):
    """_export with stdout a pipe whose reading end is closed before the command starts:
    its print fails with EPIPE, which click ends with exit status 1."""
    read, write = os.pipe()
    os.close(read)
    try:
        return _export(write, *args)
    finally:
        os.close(write)


def _to_full_device(*args):
    with open("/dev/full", "w") as full:
        return _export(full, *args)


CASES = [("char-lm", "torch"), ("char-lm", "safetensors"), ("char-lm", "onnx"),
         ("seq2seq", "torch"), ("seq2seq", "onnx")]  # a seq2seq run's onnx: two files


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("stdout", ["full", "closed-pipe"])
@pytest.mark.parametrize("kind, fmt", CASES)
def test_an_export_whose_print_fails_leaves_no_file(kind, fmt, stdout, task_runs,
                                                    tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="onnx not installed (the onnx extra)")
    folder = tmp_path / "out"
    folder.mkdir()
    result = (_to_full_device if stdout == "full" else _to_closed_pipe)(
        task_runs[kind], fmt, folder / f"m.{fmt}")
    assert result.returncode == 1, result.stderr
    if stdout == "full":
        assert one_line_error(result) == FULL
    else:  # click's own ending at a closed pipe: no line, as `recurrent info | head -0`
        assert result.stderr == ""
    assert os.listdir(folder) == []  # no file, no temporary file
    ok(invoke("export", task_runs[kind], "--format", fmt, "--out",
              folder / f"m.{fmt}"))  # the same export again needs no --force


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("stdout", ["full", "closed-pipe"])
def test_a_forced_export_whose_print_fails_keeps_the_file_it_would_replace(
        stdout, task_runs, tmp_path):
    """The code is printed before the new file is moved over the old one, which stays."""
    out = tmp_path / "m.torch.safetensors"
    out.write_bytes(b"the previous export")
    result = (_to_full_device if stdout == "full" else _to_closed_pipe)(
        task_runs["char-lm"], "torch", out, "--force")
    assert result.returncode == 1, result.stderr
    assert out.read_bytes() == b"the previous export"
    assert os.listdir(tmp_path) == [out.name]
