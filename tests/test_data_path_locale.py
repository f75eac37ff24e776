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
