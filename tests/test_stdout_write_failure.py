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
