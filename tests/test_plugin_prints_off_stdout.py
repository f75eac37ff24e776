"""What a task plugin's code prints while a command runs it (evaluate, baselines, predict,
a stream's answers, the task checks) goes to stderr: stdout holds only what the command
prints for programs, so `eval --json`, `predict --json`, `predict --stream` and
`plugins check --json` stay parseable (docs/plugins-tasks.md)."""
import json

import pytest
from click.testing import CliRunner
from helpers import invoke, ok, registered_plugin

import recurrent
from recurrent.cli import cli
from recurrent_plugins.sentiment import SentimentTask

NOTE = "a chatty plugin's note"


class ChattyTask(SentimentTask):
    """The sentiment task under another name, printing from each member a command calls."""
    name = "chatty-sentiment"

    def evaluate(self, *args, **kwargs):
        print(NOTE)
        return super().evaluate(*args, **kwargs)

    def baselines(self, *args, **kwargs):
        print(NOTE)
        return super().baselines(*args, **kwargs)

    def predict(self, *args, **kwargs):
        print(NOTE)
        for line in super().predict(*args, **kwargs):
            print(NOTE)
            yield line

    def predict_stream(self, *args, **kwargs):
        print(NOTE)
        answer = super().predict_stream(*args, **kwargs)

        def chatty_answer(line):
            print(NOTE)
            return answer(line)
        return chatty_answer


class ChattyPlugin:
    @recurrent.hookimpl
    def register_tasks(self, register):
        register(ChattyTask())


@pytest.fixture
def chatty_run(tmp_path):
    with registered_plugin(ChattyPlugin(), "test-chatty-plugin"):
        run = tmp_path / "run"
        ok(invoke("train", "chatty-sentiment", "--ensemble", 1, "--steps", 3, "--hidden", 8,
                  "--threads", 1, "--quiet", "--no-plot", "--out", run))
        yield run


def _strict(text):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_eval_json_holds_only_the_json(chatty_run):
    result = invoke("eval", chatty_run, "--json")
    report = _strict(ok(result))
    assert report["task"] == "chatty-sentiment" and "accuracy" in report["metrics"]
    assert NOTE in result.stderr


def test_predict_json_lines_hold_only_the_answers(chatty_run):
    result = invoke("predict", chatty_run, "a fine film", "dull", "--json")
    answers = [_strict(line) for line in ok(result).splitlines()]
    assert [a["text"] for a in answers] == ["a fine film", "dull"]
    assert NOTE in result.stderr


def test_stream_answers_one_json_line_per_line_in(chatty_run):
    result = CliRunner().invoke(cli, ["predict", str(chatty_run), "--stream"],
                                input="a fine film\ndull\n")
    answers = [_strict(line) for line in ok(result).splitlines()]
    assert [a["text"] for a in answers] == ["a fine film", "dull"]
    assert NOTE in result.stderr


def test_plugins_check_json_holds_only_the_json(tmp_path):
    with registered_plugin(ChattyPlugin(), "test-chatty-plugin"):
        result = invoke("plugins", "check", "chatty-sentiment", "--json")
    report = _strict(result.stdout)
    assert report["name"] == "chatty-sentiment" and report["checks"], report
    assert NOTE in result.stderr
