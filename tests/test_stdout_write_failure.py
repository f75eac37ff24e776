"""Output that cannot be written (stdout redirected to a full disk, to /dev/full, or past a
file-size limit; a character stdout's encoding cannot represent; stdout closed or open
for reading only) is one line naming
standard output and the cause, exit status 1, never "internal error"; the run the command
read is left as it was."""
import os
import subprocess
import sys

import pytest
from helpers import file_size_limit, installed_env, ok, train_tiny


@pytest.fixture
def run(task_runs):
    """The session's tiny char-lm run (read only: a test that edits it copies it first)."""
    return task_runs["char-lm"]


def _recurrent(args, stdout, preexec_fn=None, **env):
    return subprocess.run([sys.executable, "-m", "recurrent", *map(str, args)],
                          stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env=installed_env(**env), preexec_fn=preexec_fn)


def _close_stdout():
    os.close(1)


def _one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("args", [("info",), ("predict", "RUN", "--length", 50),
                                  ("eval", "RUN")])
def test_stdout_on_a_full_device_is_one_line(run, args):
    files = sorted(os.listdir(run))
    with open("/dev/full", "w") as full:
        result = _recurrent([run if a == "RUN" else a for a in args], full)
    assert result.returncode == 1, result.stderr
    assert _one_line(result.stderr) == \
        "Error: cannot write standard output: No space left on device"
    assert sorted(os.listdir(run)) == files


def test_stdout_past_a_file_size_limit_is_one_line(run, tmp_path):
    # a 20,000-character sample does not fit a limit of 1,000 bytes
    with open(tmp_path / "sample.txt", "w") as out:
        result = _recurrent(["predict", run, "--length", 20000], out,
                            preexec_fn=file_size_limit(1000))
    assert result.returncode == 1, result.stderr
    assert _one_line(result.stderr) == "Error: cannot write standard output: File too large"


def test_a_character_stdout_cannot_encode_is_one_line(tmp_path):
    text = tmp_path / "dashes.txt"
    text.write_text("a \u2014 b \u2014 c\n" * 60, encoding="utf-8")
    run = tmp_path / "run"
    ok(train_tiny(text, run))
    # the sample starts with its prime, an em dash, which Latin-1 does not have
    result = _recurrent(["predict", run, "--prime", "\u2014", "--length", 5],
                        subprocess.DEVNULL, PYTHONIOENCODING="latin-1")
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr)
    assert "internal error" not in line, line
    assert line.startswith("Error: standard output's encoding (latin-1) cannot represent "
                           "the character U+2014: use a UTF-8 locale"), line


@pytest.mark.parametrize("args", [("predict", "RUN", "--prime", "\u2014", "--length", 0),
                                  ("eval", "RUN", "--data", "TEXT")])
def test_an_ascii_stdout_gets_the_output_as_utf8(tmp_path, args):
    """A stdout whose encoding is ASCII (PYTHONIOENCODING=ascii) takes UTF-8, as click
    writes it there, in eval and predict as in the other commands."""
    text = tmp_path / "dashes.txt"
    text.write_text("a \u2014 b \u2014 c\n" * 60, encoding="utf-8")
    run = tmp_path / "r\u2014un"  # eval's report names its run
    ok(train_tiny(text, run))
    args = [{"RUN": run, "TEXT": text}.get(a, a) for a in args]
    result = _recurrent(args, subprocess.PIPE, PYTHONIOENCODING="ascii")
    assert result.returncode == 0, result.stderr
    assert "\u2014" in result.stdout


@pytest.mark.parametrize("args", [("info",), ("predict", "RUN", "--length", 50),
                                  ("eval", "RUN"), ("--version",)])
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "read-only"])
def test_stdout_closed_or_read_only_is_refused_in_one_line(run, args, closed):
    """Python leaves sys.stdout None when descriptor 1 is closed, and the output would
    be dropped with exit status 0."""
    files = sorted(os.listdir(run))
    with open(os.devnull) as read_only:
        result = _recurrent([run if a == "RUN" else a for a in args], read_only,
                            preexec_fn=_close_stdout if closed else None)
    state = "closed" if closed else "open for reading only"
    assert result.returncode == 1, result.stderr
    assert _one_line(result.stderr) == (
        f"Error: standard output is {state}: recurrent writes its results there "
        f"(redirect it to /dev/null to discard them)")
    assert sorted(os.listdir(run)) == files


@pytest.mark.parametrize("quiet", [(), ("--quiet",)])
def test_train_with_stdout_closed_makes_no_run_directory(tmp_path, quiet):
    """train writes its summary even with --quiet: refused before the run directory."""
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be\n" * 60, encoding="utf-8")
    out = tmp_path / "run"
    result = _recurrent(["train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                         "--no-plot", "--out", out, *quiet], subprocess.DEVNULL,
                        preexec_fn=_close_stdout)
    assert result.returncode == 1, result.stderr
    assert _one_line(result.stderr).startswith("Error: standard output is closed:")
    assert not out.exists()


def test_train_to_an_out_stdout_cannot_encode_makes_no_run_directory(tmp_path):
    """train prints its run's path in its first line and its summary (even with
    --quiet): a path stdout's encoding lacks a character of is refused before the run
    directory is made, not after training it."""
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be\n" * 60, encoding="utf-8")
    out = tmp_path / "\u6771\u4eac"
    result = _recurrent(["train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                         "--no-plot", "--quiet", "--out", out], subprocess.DEVNULL,
                        PYTHONIOENCODING="latin-1")
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith("Error: --out "), line
    assert "(latin-1) cannot represent the character U+6771" in line, line
    assert not out.exists()


def test_export_and_import_to_a_path_stdout_cannot_encode_write_nothing(run, tmp_path):
    """export and import print the paths they write: refused before writing them."""
    exported = tmp_path / "\u6771.safetensors"
    result = _recurrent(["export", run, "--format", "safetensors", "--out", exported],
                        subprocess.DEVNULL, PYTHONIOENCODING="latin-1")
    assert result.returncode == 1, result.stderr
    assert "cannot represent the character U+6771" in _one_line(result.stderr)
    assert not exported.exists()
    plain = tmp_path / "plain.safetensors"
    assert _recurrent(["export", run, "--format", "safetensors", "--out", plain],
                      subprocess.DEVNULL).returncode == 0
    made = tmp_path / "\u6771"
    result = _recurrent(["import", plain, "--out", made], subprocess.DEVNULL,
                        PYTHONIOENCODING="latin-1")
    assert result.returncode == 1, result.stderr
    assert _one_line(result.stderr).startswith(f"Error: --out {tmp_path}/\\u6771: ")
    assert not made.exists()


def test_a_name_that_is_not_utf8_on_a_strict_utf8_stdout_is_named_as_such(run, tmp_path):
    """A strict UTF-8 stdout (the usual desktop locale) cannot write a byte of a file name
    that is not UTF-8: the line says so, rather than asking for the UTF-8 locale that is
    already there, and export refuses such an --out before writing it."""
    out = tmp_path / os.fsdecode(b"r\xe9")
    result = _recurrent(["export", run, "--format", "safetensors", "--out", out],
                        subprocess.DEVNULL, PYTHONIOENCODING="utf-8:strict")
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr)
    assert "(utf-8) cannot write the byte 0xe9 of a name that is not UTF-8" in line, line
    assert "use a UTF-8 locale" not in line
    assert not out.exists()


def test_tune_with_a_cache_stdout_cannot_name_measures_nothing(tmp_path):
    """tune's last line names the cache file it wrote: refused before measuring."""
    cache = tmp_path / "\u6771"
    result = _recurrent(["tune", "--budget", "0.2", "--threads", 1], subprocess.DEVNULL,
                        PYTHONIOENCODING="latin-1", RECURRENT_CACHE_DIR=str(cache))
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith("Error: tune: standard output's encoding (latin-1)"), line
    assert not (cache / "tuning").exists()
