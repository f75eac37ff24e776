"""`--data -` names standard input, as `-` does for the input file of most command-line
tools: train, eval and predict read their data from a pipe or a redirect; a terminal
there (which would wait for typed data) and `--stream` (which reads stdin itself) are
refused in one line."""
import os
import pty
import subprocess
import sys
from functools import partial

from helpers import bundled_reviews, one_line_error, tiny_text, write_reviews

_refused = partial(one_line_error, code=1)


def _recurrent(*args, **kwargs):
    # -P: the installed package, not a source tree in the working directory
    return subprocess.run([sys.executable, "-P", "-m", "recurrent", *map(str, args)],
                          capture_output=True, timeout=300, **kwargs)


def test_predict_and_eval_read_data_from_a_pipe(task_runs, tmp_path):
    run = task_runs["sentiment"]
    path = write_reviews(tmp_path / "reviews.csv", bundled_reviews(20))
    with open(path, "rb") as f:
        data = f.read()
    for command in (("predict",), ("eval",)):
        from_file = _recurrent(*command, run, "--data", path)
        piped = _recurrent(*command, run, "--data", "-", input=data)
        assert from_file.returncode == 0, from_file.stderr
        assert piped.returncode == 0, piped.stderr
        if command == ("predict",):
            assert piped.stdout == from_file.stdout
        else:  # the report names the file it read
            assert piped.stdout.replace(b"/dev/stdin", path.encode()) == from_file.stdout


def test_train_reads_its_data_from_a_redirect(tmp_path):
    text = tiny_text(tmp_path)
    with open(text, "rb") as stdin:
        done = _recurrent("train", "char-lm", "--data", "-", "--steps", 2, "--hidden", 8,
                          "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "run",
                          stdin=stdin)
    assert done.returncode == 0, done.stderr
    from_file = _recurrent("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                           "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "file")
    assert from_file.returncode == 0, from_file.stderr
    for name in ("best.npz", "last.npz"):
        assert ((tmp_path / "run" / name).read_bytes()
                == (tmp_path / "file" / name).read_bytes())


def test_a_terminal_on_stdin_is_refused(task_runs):
    controller, terminal = pty.openpty()
    try:
        done = _recurrent("predict", task_runs["sentiment"], "--data", "-", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    _refused(done, "--data -: standard input is a terminal")


def test_stream_and_data_from_stdin_are_refused_together(task_runs):
    done = _recurrent("predict", task_runs["forecast"], "--data", "-", "--stream",
                      input=b"1.0\n")
    _refused(done, "--data - and --stream would both read standard input")


def test_a_run_trained_from_stdin_refuses_a_terminal_when_it_reads_its_data_again(tmp_path):
    # eval (and --resume) of such a run read standard input again: at a terminal they
    # would wait for typed data without a word; piped the same data, they run.
    from helpers import reversal_tsv
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 700)
    run = tmp_path / "run"
    with open(tsv, "rb") as stdin:
        done = _recurrent("train", "seq2seq", "--data", "-", "--steps", 2, "--hidden", 8,
                          "--embed-dim", 4, "--threads", 1, "--quiet", "--no-plot",
                          "--out", run, stdin=stdin)
    assert done.returncode == 0, done.stderr
    controller, terminal = pty.openpty()
    try:
        for command in (("eval", run), ("train", "seq2seq", "--resume", run, "--steps", 3)):
            done = subprocess.run([sys.executable, "-P", "-m", "recurrent",
                                   *map(str, command)], capture_output=True, timeout=120,
                                  stdin=terminal)
            _refused(done, "data file /dev/stdin: standard input is a terminal")
    finally:
        os.close(terminal)
        os.close(controller)
    with open(tsv, "rb") as stdin:
        done = _recurrent("eval", run, stdin=stdin)
    assert done.returncode == 0 and b"pairs" in done.stdout, done.stderr


def test_a_sentiment_run_trained_from_stdin_asks_for_its_data_piped_in_again(tmp_path):
    # its data is /dev/stdin: nothing or other data there is mended by piping the run's
    # data in again, not by restoring a file
    path = write_reviews(tmp_path / "reviews.csv", bundled_reviews(30))
    other = write_reviews(tmp_path / "other.csv", bundled_reviews(20))
    run = tmp_path / "run"
    with open(path, "rb") as stdin:
        done = _recurrent("train", "sentiment", "--data", "-", "--ensemble", 1, "--steps", 2,
                          "--hidden", 4, "--embed-dim", 4, "--threads", 1, "--quiet",
                          "--no-plot", "--out", run, stdin=stdin)
    assert done.returncode == 0, done.stderr
    with open(other, "rb") as stdin:
        line = _refused(_recurrent("eval", run, stdin=stdin),
                        "/dev/stdin has changed since this run was trained",
                        "pipe the data it was trained on into standard input again, "
                        "or evaluate on a file with --data")
    assert "restore" not in line
    line = _refused(_recurrent("train", "sentiment", "--resume", run, "--steps", 3,
                               stdin=subprocess.DEVNULL),
                    "/dev/stdin is empty", "the data this run was trained on",
                    "training goes on with the data it started with: pipe it into "
                    "standard input again")
    assert "restore" not in line
    with open(path, "rb") as stdin:
        done = _recurrent("eval", run, stdin=stdin)
    assert done.returncode == 0 and b"split test" in done.stdout, done.stderr


def test_a_closed_or_write_only_stdin_is_named_as_such(task_runs, tmp_path):
    run = task_runs["sentiment"]
    done = _recurrent("predict", run, "--data", "-", preexec_fn=lambda: os.close(0))
    _refused(done, "--data -: standard input is closed;")
    with open(tmp_path / "out.txt", "wb") as write_only:
        for option in (("--data", "-"), ("--stream",)):
            done = _recurrent("predict", run, *option, stdin=write_only)
            _refused(done, f"{option[0]}{' -' * (len(option) == 2)}: standard input is "
                      f"open for writing only;")
