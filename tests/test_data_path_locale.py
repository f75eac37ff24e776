"""A run trained on a data file whose path has non-ASCII characters, then evaluated or
resumed under an ASCII-only locale (LC_ALL=C with PYTHONUTF8=0, where the file-name
encoding is ASCII): the saved path cannot be turned into a file name there, which is one
line saying so and how to fix it, for every task that reads its saved data path; not an
"internal error", nor forecast's "the training data is gone"."""
import os
import subprocess
import sys

import pytest
from helpers import installed_env

NAME = "d\u00e4t\u00e4"  # "data" with two a-umlauts
SENTIMENT = [("text", "label")] + [(f"a fine film {i}", "fresh") for i in range(40)] + \
    [(f"a dull film {i}", "rotten") for i in range(40)]


def _recurrent(args, **env):
    return subprocess.run([sys.executable, "-m", "recurrent", *args], capture_output=True,
                          env=installed_env(**env))


def _utf8(args):
    result = _recurrent(args, PYTHONUTF8="1")
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result


def _ascii(args):
    return _recurrent(args, LC_ALL="C", PYTHONUTF8="0")


def _data(directory: bytes, task: str) -> bytes:
    """A small data file for ``task`` at a path with non-ASCII characters (as UTF-8
    bytes, so the test does not depend on its own locale)."""
    folder = os.path.join(directory, NAME.encode("utf-8"))
    os.mkdir(folder)
    if task == "char-lm":
        path, text = os.path.join(folder, b"text.txt"), "the quick brown fox.\n" * 60
    elif task == "sentiment":
        path = os.path.join(folder, b"reviews.csv")
        text = "".join(f"{t},{label}\n" for t, label in SENTIMENT)
    else:
        path = os.path.join(folder, b"series.csv")
        text = "date,value\n" + "".join(
            f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{10 + (i % 12) + i * 0.1:.2f}\n"
            for i in range(120))
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return path


TASK_OPTIONS = {"char-lm": ["--seq-len", "16", "--embed-dim", "4"],
                "sentiment": ["--ensemble", "1"],
                "forecast": []}


@pytest.mark.parametrize("task", sorted(TASK_OPTIONS))
def test_a_saved_non_ascii_data_path_under_an_ascii_locale_is_one_line(task, tmp_path):
    data = _data(os.fsencode(tmp_path), task)
    run = os.path.join(os.fsencode(tmp_path), b"run")
    _utf8(["train", task, "--data", data, "--steps", "2", "--hidden", "8", "--threads",
           "1", "--quiet", "--no-plot", "--out", run, *TASK_OPTIONS[task]])
    files = sorted(os.listdir(run))
    for args in (["eval", run], ["train", "--resume", run, "--steps", "3"]):
        result = _ascii(args)
        stderr = result.stderr.decode("ascii", "replace")
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert result.returncode == 1, stderr
        assert len(lines) == 1, stderr
        assert "internal error" not in lines[0] and "gone" not in lines[0], lines[0]
        assert "file-name encoding" in lines[0] and "LC_ALL=C.UTF-8" in lines[0], lines[0]
    assert sorted(os.listdir(run)) == files
    _utf8(["eval", run])  # the run is whole: under a UTF-8 locale it reads its data again


def test_text_arguments_under_an_ascii_locale_are_read_as_utf8(tmp_path, task_runs):
    """Under an ASCII locale a UTF-8 argument reaches the program as bytes the locale
    cannot decode; a char-lm --prime and sentiment's text arguments are read as UTF-8
    (as stdin and data files are whatever the locale), so the answers are those of a
    UTF-8 locale, while bytes that are not UTF-8 are still refused in one line."""
    text = tmp_path / "text.txt"
    text.write_text("caf\u00e9 au lait, the caf\u00e9 is open.\n" * 60, encoding="utf-8")
    run = tmp_path / "run"
    _utf8(["train", "char-lm", "--data", str(text), "--steps", "2", "--hidden", "8",
           "--threads", "1", "--quiet", "--no-plot", "--out", str(run),
           *TASK_OPTIONS["char-lm"]])
    prime = "caf\u00e9".encode("utf-8")
    for args in (["predict", os.fsencode(run), "--prime", prime, "--length", "20",
                  "--seed", "1"],
                 ["predict", os.fsencode(task_runs["sentiment"]), b"a caf\xc3\xa9 film"]):
        result = _ascii(args)
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
        assert result.stdout == _utf8(args).stdout
    # seq2seq's inputs too: an unseen é is named as é, not as two undecoded bytes
    s2s = _recurrent(["predict", os.fsencode(task_runs["seq2seq"]), b"ab\xc3\xa9"],
                     LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING="utf-8")
    assert s2s.returncode == 1, s2s.stderr
    assert "never saw in training: '\u00e9'" in s2s.stderr.decode("utf-8"), s2s.stderr
    result = _ascii(["predict", os.fsencode(run), "--prime", b"caf\xe9", "--length", "2"])
    stderr = result.stderr.decode("ascii", "replace")
    assert result.returncode == 1 and stderr.count("\n") == 1, stderr
    assert "--prime is not UTF-8 text (byte 0xe9)" in stderr, stderr
