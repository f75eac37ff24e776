"""Output that cannot be written (stdout redirected to a full disk, to /dev/full, or past a
file-size limit; a character stdout's encoding cannot represent) is one line naming
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
