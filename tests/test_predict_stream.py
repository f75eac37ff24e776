"""`recurrent predict RUN --stream`: one JSON line per stdin line, flushed, in a real pipe
(each answer read before the next line is written); answers equal what the model or
`recurrent predict` gives on the whole input; a bad line is answered with an error and the
stream goes on."""
import json
import os
import select
import subprocess
import sys

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.checkpoint import RunDir
from recurrent.modules import softmax
from recurrent.runs import load_model


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "char"
    ok(invoke("train", "char-lm", "--max-chars", 4000, "--hidden", 24, "--layers", 2,
              "--embed-dim", 8, "--batch-size", 8, "--seq-len", 16, "--steps", 6,
              "--eval-every", 6, "--threads", 1, "--quiet", "--no-plot", "--out", path))
    return path


def next_chars(run, text, k):
    """[[char, p], ...] of the k most likely characters after ``text``, from one forward."""
    model, info = load_model(RunDir.open(str(run)))
    vocab = info["task_state"]["vocab"]
    ids = np.array([vocab.index(c) for c in text])
    logits, _ = model.forward(ids[:, None], need_grad=False)  # (T, 1, V)
    p = softmax(logits[-1])[0]
    top = np.argsort(-p, kind="stable")[:k]
    return [[vocab[i], float(p[i])] for i in top]


def test_char_lm_answers_each_line_through_a_pipe_before_the_next_is_sent(char_run, tmp_path):
    env = dict(os.environ, PYTHONSAFEPATH="1")
    proc = subprocess.Popen([sys.executable, "-m", "recurrent", "predict", str(char_run),
                             "--stream", "--top-k", "3", "--prime", "KING"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1, cwd=tmp_path,
                            env=env)
    lines = ["ROMEO:", "é~€", "", "be or not to be"]  # the second is outside the vocabulary
    answers = []
    try:
        for line in lines:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no answer to {line!r} while the pipe is still open"
            answers.append(json.loads(proc.stdout.readline()))
        proc.stdin.close()
        assert proc.wait(60) == 1  # a line was refused
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert stderr.splitlines() == [stderr.splitlines()[0]]
    assert stderr.startswith("Error: line 2: the line has characters not in the model's "
                             "vocabulary") and "Traceback" not in stderr
    assert "error" in answers[1] and "vocabulary" in answers[1]["error"]
    # the refused line read nothing: the text is the prime and the accepted lines
    for answer, text in ((answers[0], "KINGROMEO:"), (answers[2], "KINGROMEO:\n"),
                         (answers[3], "KINGROMEO:\n\nbe or not to be")):
        expected = next_chars(char_run, text, 3)
        assert [c for c, _ in answer["next"]] == [c for c, _ in expected]
        np.testing.assert_allclose([p for _, p in answer["next"]],
                                   [p for _, p in expected], atol=2e-6)
    assert answers[3]["text"] == "be or not to be"


def test_char_lm_stream_without_anything_to_continue_says_so(char_run):
    result = invoke("predict", char_run, "--stream")  # no stdin at all: nothing to answer
    assert result.exit_code == 0 and result.stdout == ""
    from click.testing import CliRunner
    from recurrent.cli import cli
    result = CliRunner().invoke(cli, ["predict", str(char_run), "--stream"], input="\nab\n")
    assert result.exit_code == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "nothing to continue" in first["error"] and second["text"] == "ab"


def test_forecast_stream_appends_rows_and_forecasts_as_predict_does(tmp_path):
    from helpers import sunspot_rows
    rows = sunspot_rows()
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--horizon", 2, "--window", 12, "--steps", 4, "--quiet",
              "--no-plot", "--threads", 1, "--out", run))
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], rows[-40:-3])
    whole = write_csv(tmp_path / "whole.csv", ["year", "sunspots"], rows[-40:])
    from click.testing import CliRunner
    from recurrent.cli import cli
    lines = [str(v) for _, v in rows[-3:]]
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", recent,
                                      "--steps", "3"], input="\n".join(["x"] + lines) + "\n")
    assert result.exit_code == 1, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert "expected 1 finite number (sunspots)" in answers[0]["error"]
    expected = json.loads(ok(invoke("predict", run, "--data", whole, "--steps", 3, "--json")))
    one_line_error(invoke("predict", run, "--stream", "--plot", tmp_path / "f.png"),
                   "--plot", "--stream")
    assert answers[-1]["values"] == [float(rows[-1][1])]
    np.testing.assert_allclose(answers[-1]["forecast"]["sunspots"],
                               expected["forecast"]["sunspots"], rtol=1e-9)


def test_sentiment_stream_answers_each_text_as_predict_json(tmp_path):
    from helpers import bundled_reviews, write_reviews
    data = write_reviews(tmp_path / "reviews.csv", bundled_reviews(40))
    run = tmp_path / "run"
    ok(invoke("train", "sentiment", "--data", data, "--steps", 3, "--batch-size", 16,
              "--quiet", "--no-plot", "--threads", 1, "--out", run))
    texts = ["a moving, funny film", "dull and far too long"]
    from click.testing import CliRunner
    from recurrent.cli import cli
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream"],
                                input=f"{texts[0]}\n   \n{texts[1]}\n")
    assert result.exit_code == 1
    answers = result.stdout.splitlines()
    assert "empty" in json.loads(answers[1])["error"]
    expected = ok(invoke("predict", run, *texts, "--json")).splitlines()
    one_line_error(invoke("predict", run, "--stream", texts[0]), "--stream reads one text")
    for answer, line in zip((answers[0], answers[2]), expected):  # batched with padding
        got, want = json.loads(answer), json.loads(line)            # there: float rounding
        assert (got["label"], got["text"]) == (want["label"], want["text"])
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)


def test_forecast_stream_of_a_dated_series_keeps_its_calendar_features(tmp_path):
    """Rows streamed into a run with calendar features are dated one spacing after the last
    row, as `predict --data` dates them when they are in the file."""
    days = np.arange(np.datetime64("2024-01-01T00"), np.datetime64("2024-01-29T00"),
                     np.timedelta64(1, "h"))  # 4 weeks, hourly: a daily cycle
    t = np.arange(len(days))
    values = 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.01 * t
    rows = [(str(d), f"{v:.4f}") for d, v in zip(days, values)]
    data = write_csv(tmp_path / "hourly.csv", ["time", "load"], rows[:-3])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--horizon", 2, "--window", 24,
              "--steps", 4, "--quiet", "--no-plot", "--threads", 1, "--out", run))
    assert RunDir.open(str(run)).info()["task_state"]["calendar"]  # the daily cycle is used
    whole = write_csv(tmp_path / "whole.csv", ["time", "load"], rows)
    from click.testing import CliRunner

    from recurrent.cli import cli
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", data,
                                      "--steps", "3"],
                                input="\n".join(v for _, v in rows[-3:]) + "\n")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.splitlines()[-1])
    expected = json.loads(ok(invoke("predict", run, "--data", whole, "--steps", 3, "--json")))
    np.testing.assert_allclose(answer["forecast"]["load"], expected["forecast"]["load"],
                               rtol=1e-9)


def test_predict_options_the_stream_does_not_use_are_refused(char_run, task_runs):
    """char-lm's stream answers at temperature 1 with the --top-k most likely characters:
    --temperature, --seed and --length would change nothing, and are refused."""
    from click.testing import CliRunner

    from recurrent.cli import cli

    def stream(run, *options):
        return CliRunner().invoke(cli, ["predict", str(run), "--stream", *options],
                                  input="ab\n")
    one_line_error(stream(char_run, "--temperature", "0.5", "--seed", "3"),
                   "--temperature, --seed do not apply to --stream")
    one_line_error(stream(char_run, "--length", "9"), "--length does not apply to --stream")
    assert stream(char_run, "--top-k", "2").exit_code == 0  # what the stream uses
    assert stream(char_run, "--length", "9", "--seed", "3").stdout == ""  # nothing read
    # --json is what every stream answer is already; seq2seq's decoding options apply
    assert CliRunner().invoke(cli, ["predict", str(task_runs["forecast"]), "--stream",
                                    "--json"], input="1\n").exit_code == 0
    assert CliRunner().invoke(cli, ["predict", str(task_runs["seq2seq"]), "--stream",
                                    "--max-len", "4", "--alpha", "0.5", "--beam", "2"],
                              input="abc\n").exit_code == 0


def test_a_run_trained_on_crlf_text_reads_crlf_between_stream_lines(tmp_path):
    """A text written on Windows ends its lines with \\r\\n: the model learnt "\\r" before
    every "\\n", and the stream put "\\n" alone between two lines, a break the model
    had never read."""
    from click.testing import CliRunner

    from recurrent.cli import cli
    data = tmp_path / "crlf.txt"
    data.write_bytes(("To be, or not to be, that is the question:\r\n" * 120).encode())
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--data", data, "--hidden", 16, "--embed-dim", 8,
              "--batch-size", 4, "--seq-len", 16, "--steps", 3, "--threads", 1, "--quiet",
              "--no-plot", "--out", run))
    assert RunDir.open(str(run)).info()["task_state"]["line_break"] == "\r\n"
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--top-k", "3"],
                                input="To be\nor not\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    want = next_chars(run, "To be\r\nor not", 3)
    assert [c for c, _ in answers[1]["next"]] == [c for c, _ in want]
    assert [p for _, p in answers[1]["next"]] == pytest.approx([p for _, p in want], abs=1e-6)
    # a text with "\n" alone keeps it (and so does a run that does not record one)
    data.write_bytes(("To be, or not to be, that is the question:\n" * 120).encode())
    ok(invoke("train", "char-lm", "--data", data, "--hidden", 16, "--embed-dim", 8,
              "--batch-size", 4, "--seq-len", 16, "--steps", 3, "--threads", 1, "--quiet",
              "--no-plot", "--out", tmp_path / "lf"))
    assert "line_break" not in RunDir.open(str(tmp_path / "lf")).info()["task_state"]
