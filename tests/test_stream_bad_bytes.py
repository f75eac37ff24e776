"""A `predict --stream` line holding bytes that are not UTF-8 is refused alike by every
task, naming the byte ({"error": "the line is not UTF-8 text (byte 0xff)"}), and the
stream goes on: the stream reader keeps such bytes as lone surrogates, which char-lm and
seq2seq otherwise report as characters outside their vocabulary, shown as '\\udcff'."""
import json

import pytest
from click.testing import CliRunner

from recurrent.cli import cli

GOOD = {"char-lm": "ab", "forecast": "5", "sentiment": "good", "seq2seq": "ab"}


@pytest.mark.parametrize("task", sorted(GOOD))
def test_a_line_that_is_not_utf8_is_named_so_and_the_stream_goes_on(task_runs, task):
    good = GOOD[task].encode()
    result = CliRunner().invoke(cli, ["predict", str(task_runs[task]), "--stream"],
                                input=good + b"\xff" + b"\n" + good + b"\n")
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first == {"error": "the line is not UTF-8 text (byte 0xff)"}, first
    assert "error" not in second, second
    assert result.stderr.strip() == "Error: line 1: the line is not UTF-8 text (byte 0xff)"
    assert result.exit_code == 1
