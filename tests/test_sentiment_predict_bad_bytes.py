"""Bytes that are not UTF-8 in a sentiment text given on the command line or on stdin
(Python reads them as lone surrogates, surrogateescape) were classified as unknown words
and echoed in the answer, --json's and --stream's holding a lone surrogate escape
("\\udcff") that strict JSON readers refuse. char-lm and seq2seq refuse such input, and
sentiment a --data file that is not UTF-8: the text argument and the stream line are now
refused alike, the stream going on."""
import io
import json

from helpers import invoke, one_line_error

from recurrent import cli
from recurrent.runs import load_model


def test_a_text_argument_that_is_not_utf8_is_refused(task_runs):
    result = invoke("predict", task_runs["sentiment"], "good \udcff")
    one_line_error(result, "text argument 1 is not UTF-8 text (byte 0xff)")


def test_a_stream_line_that_is_not_utf8_is_refused_and_the_stream_goes_on(task_runs, capsys):
    run, _, task = cli._open_run(task_runs["sentiment"])
    model, info = load_model(run, "best")
    answer = task.predict_stream(info["task_state"], info["config"], model.runner(), {})
    status = cli._stream_lines(answer, io.StringIO("good \udcff\ngood\n"))
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert first == {"error": "the line is not UTF-8 text (byte 0xff)"}
    assert second["text"] == "good" and "label" in second
