"""predict of a seq2seq run whose decoder overflows on an input (an unbounded cell,
rnn_relu, with the weights a high learning rate grew: its log-probabilities are NaN)
says so in one line, rather than "internal error (IndexError: list index out of range)"
after a screen of numpy RuntimeWarnings (and, in --json and --stream, an answer with no
hypothesis or an empty output and a null score, as if the model had said nothing)."""
import json
import random
import warnings

import pytest
from click.testing import CliRunner
from helpers import invoke, ok, one_line_error

from recurrent.cli import cli

MESSAGE = "input 'abcde': the model's scores are not finite numbers"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2s")
    rng = random.Random(1)
    lines = []
    for _ in range(200):
        source = "".join(rng.choice("abcdef") for _ in range(5))
        lines.append(f"{source}\t{source[0]}\n")
    (root / "pairs.tsv").write_text("".join(lines), encoding="utf-8")
    path = root / "run"
    ok(invoke("train", "seq2seq", "--data", root / "pairs.tsv", "--cell", "rnn_relu",
              "--steps", 6, "--hidden", 8, "--lr", 1e3, "--optimizer", "sgd",
              "--clip-norm", 0, "--eval-every", 2, "--threads", 1, "--quiet", "--no-plot",
              "--out", path))
    return path


@pytest.mark.parametrize("extra", [(), ("--json",), ("--beam", 3, "--n-best", 2)])
def test_an_input_the_decoder_overflows_on_is_one_line(run, extra):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke("predict", run, "abcde", *extra)
    one_line_error(result, MESSAGE)
    assert [str(w.message) for w in caught] == []


def test_the_stream_answers_that_line_with_an_error_and_goes_on(run):
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream"], input="abcde\nab\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2, result.stdout + result.stderr
    assert MESSAGE in answers[0]["error"]
    # the next line is answered on its own: its output, or its own error
    assert answers[1].get("input") == "ab" or "input 'ab':" in answers[1]["error"]
    assert result.exit_code == 1


def test_eval_counts_the_inputs_with_no_finite_hypothesis(run):
    # eval scores such an input as an empty output, as predict refuses it: the report
    # and its --json say how many there were
    scored = json.loads(ok(invoke("eval", run, "--json")))["metrics"]
    count, pairs = scored.get("no_hypothesis"), scored["pairs"]
    assert isinstance(count, int) and 0 < count <= pairs, scored
    lines = ok(invoke("eval", run)).splitlines()
    assert lines[1].startswith(f"note: {count} of the {pairs} inputs had no finite "
                               f"hypothesis, scored as empty outputs: the model's scores "
                               f"are not finite numbers"), lines
    assert not any(line.startswith("no_hypothesis") for line in lines)  # not a score row
