"""recurrent.predict(RUN) gives what `recurrent predict RUN --json` prints, and
recurrent.predict_stream(RUN) answers one input at a time as `recurrent predict RUN
--stream` answers a line (stateful tasks included, across an input that is refused), with
the task's predict options checked as the command line checks them."""
import json
import os

import pytest
from click.testing import CliRunner
from helpers import sunspot_rows

import recurrent
from recurrent.checks import C_INT_MAX
from recurrent.cli import cli
from recurrent.errors import UserError

# per task: predict options (as the API takes them, and as the command line does) and
# inputs, one of which the task cannot read
CASES = {
    "char-lm": ({"top_k": 3}, ["--top-k", "3"], ["to be", "\u20ac\u20ac", "or not"]),
    "sentiment": ({}, [], ["a moving, funny film", "   ", "dull and far too long"]),
    "forecast": ({"steps": 3}, ["--steps", "3"], ["120.5", "x", "80", "95.25"]),
    "seq2seq": ({"beam": 2, "max_len": 6}, ["--beam", "2", "--max-len", "6"],
                ["abc", "", "dcba"]),
}


def cli_answers(run, flags, inputs, precision="fp32"):
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--precision",
                                      precision, *flags], input="\n".join(inputs) + "\n")
    assert result.exit_code == 1, result.output  # one input of each case is refused
    return [json.loads(line) for line in result.stdout.splitlines()]


def api_answers(answer, inputs):
    """answer(line) for each input, a refusal as the command's {"error": line}."""
    got = []
    for line in inputs:
        try:
            got.append(answer(line))
        except UserError as e:
            got.append({"error": str(e)})
    return got


@pytest.mark.parametrize("task", sorted(CASES))
def test_answers_are_the_stream_commands(task_runs, task):
    options, flags, inputs = CASES[task]
    got = api_answers(recurrent.predict_stream(str(task_runs[task]), **options), inputs)
    assert got == cli_answers(task_runs[task], flags, inputs)
    assert sum("error" in a for a in got) == 1


# per task: inputs holding a bare "\r" (and one input the task cannot read)
CARRIAGE_RETURNS = {
    "char-lm": ["to be", "or\rnot", "\u20ac"],
    "sentiment": ["a moving,\rfunny film", "   ", "dull\r\rand far too long"],
    "forecast": ["120.5", "80\r", "9\r5"],
    "seq2seq": ["ab\rc", "", "dcba"],
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_a_carriage_return_inside_a_line_is_read_as_the_command_reads_it(task_runs, task):
    """The command's stdin lines end at "\n" (a "\r" right before it ends a CRLF
    client's line): a "\r" inside a line is one of its characters, answered as the
    task reads it, by the command and the function alike."""
    options, flags, _ = CASES[task]
    inputs = CARRIAGE_RETURNS[task]
    answer = recurrent.predict_stream(str(task_runs[task]), **options)
    got = api_answers(answer, [line.removesuffix("\r") for line in inputs])
    assert got == cli_answers(task_runs[task], flags, inputs)
    if task == "sentiment":  # both texts with a "\r" are answered
        assert [a.get("text") for a in got] == ["a moving,\rfunny film", None,
                                               "dull\r\rand far too long"]
    with pytest.raises(UserError, match="line break"):  # the command's CRLF line break
        answer(inputs[0] + "\r")


def test_int8_answers_are_the_commands(task_runs):
    inputs = ["a moving, funny film", "  ", "dull"]
    answer = recurrent.predict_stream(str(task_runs["sentiment"]), precision="int8")
    assert api_answers(answer, inputs) == cli_answers(task_runs["sentiment"], [], inputs,
                                                      precision="int8")


def test_options_are_checked_as_the_command_line_checks_them(task_runs):
    run = str(task_runs["char-lm"])
    with pytest.raises(UserError, match=r"^predict option top_k=0: 0 is not in the range"):
        recurrent.predict_stream(run, top_k=0)
    with pytest.raises(UserError, match=r"^predict option top_k='x': 'x' is not a valid"):
        recurrent.predict_stream(run, top_k="x")
    with pytest.raises(UserError, match=r"^no predict option 'beam' for this run's task "
                                        r"\(its options: 'prime', "):
        recurrent.predict_stream(run, beam=2)
    with pytest.raises(UserError, match="--temperature does not apply to --stream"):
        recurrent.predict_stream(run, temperature=0.5)
    with pytest.raises(UserError, match="--stream reads one text per line"):
        recurrent.predict_stream(str(task_runs["sentiment"]), texts=("a text",))
    with pytest.raises(UserError, match="precision: expected one of fp32, int8, bf16"):
        recurrent.predict_stream(run, precision="fp16")
    with pytest.raises(UserError, match="does not exist"):
        recurrent.predict_stream(run + "-missing")
    # a prime given here is the command's --prime: the answers continue it
    primed = recurrent.predict_stream(run, prime="to", top_k=2)("be")
    expected = cli_answers(task_runs["char-lm"], ["--prime", "to", "--top-k", "2"],
                           ["be", "\u20ac"])[0]
    assert primed == expected


def test_an_input_is_one_line_of_text(task_runs):
    answer = recurrent.predict_stream(str(task_runs["sentiment"]))
    for bad, message in (("two\nlines", "line break"), ("crlf\r", "line break"),
                         (b"bytes", "is a str, got bytes"), ("bad \udcff", "not UTF-8")):
        with pytest.raises(UserError, match=message):
            answer(bad)


def test_a_forecast_stream_reads_a_data_file_as_the_command_does(task_runs, tmp_path):
    from helpers import write_csv
    rows = sunspot_rows()
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], rows[-60:-2])
    answer = recurrent.predict_stream(str(task_runs["forecast"]), data=str(recent), steps=2)
    got = [answer(str(v)) for _, v in rows[-2:]]
    assert got == cli_answers(task_runs["forecast"], ["--data", str(recent), "--steps", "2"],
                              ["x"] + [str(v) for _, v in rows[-2:]])[1:]
    with pytest.raises(UserError, match="--data - and --stream would both read"):
        recurrent.predict_stream(str(task_runs["forecast"]), data="-")


def command_json(run, *args):
    result = CliRunner().invoke(cli, ["predict", str(run), *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_predict_gives_the_commands_json(task_runs, tmp_path):
    from helpers import write_csv
    texts = ["a moving, funny film", "dull and far too long", "fine"]
    assert (recurrent.predict(str(task_runs["sentiment"]), texts=texts)
            == command_json(task_runs["sentiment"], *texts))
    assert (recurrent.predict(str(task_runs["sentiment"]), texts=texts, precision="int8")
            == command_json(task_runs["sentiment"], *texts, "--precision", "int8"))
    assert (recurrent.predict(str(task_runs["seq2seq"]), inputs=["abc", "dd"], beam=3,
                              n_best=2)
            == command_json(task_runs["seq2seq"], "abc", "dd", "--beam", 3, "--n-best", 2))
    rows = sunspot_rows()
    recent = write_csv(tmp_path / "recent.csv", ["year", "sunspots"], rows[-60:])
    got = recurrent.predict(str(task_runs["forecast"]), data=str(recent), steps=4)
    assert got == command_json(task_runs["forecast"], "--data", recent, "--steps", 4)
    assert len(got) == 1 and len(got[0]["forecast"]["sunspots"]) == 4


def test_predict_refuses_what_the_command_refuses(task_runs, tmp_path):
    with pytest.raises(UserError, match="char-lm.: its predict has no --json: use "
                                        "predict_stream"):
        recurrent.predict(str(task_runs["char-lm"]), length=10)
    with pytest.raises(UserError, match="^as_json: predict always gives the --json output"):
        recurrent.predict(str(task_runs["sentiment"]), texts=["a"], as_json=False)
    with pytest.raises(UserError, match="text argument 2 is empty"):
        recurrent.predict(str(task_runs["sentiment"]), texts=["good", "  "])
    with pytest.raises(UserError, match=r"^predict option steps=0: 0 is not in the range"):
        recurrent.predict(str(task_runs["forecast"]), steps=0)
    plot = tmp_path / "f.png"
    recurrent.predict(str(task_runs["forecast"]), steps=2, plot=str(plot))
    assert plot.stat().st_size > 0
    with pytest.raises(UserError, match="the plot is a PNG image; give a file name"):
        recurrent.predict(str(task_runs["forecast"]), plot=str(tmp_path / "f.pdf"))
    assert not (tmp_path / "f.pdf").exists()


def test_options_take_the_values_a_python_caller_gives(task_runs):
    import numpy as np
    s2s = task_runs["seq2seq"]
    expected = command_json(s2s, "abc", "dd", "--beam", 3, "--n-best", 2)
    # a path object for the run, a tuple of inputs, numpy numbers, None for a default
    assert recurrent.predict(s2s, inputs=("abc", "dd"), beam=np.int64(3),
                             n_best=np.int32(2), alpha=None, max_len=None) == expected
    answer = recurrent.predict_stream(task_runs["char-lm"], top_k=2, seed=None)
    assert answer("to") == cli_answers(task_runs["char-lm"], ["--top-k", "2"],
                                       ["to", "\u20ac"])[0]


@pytest.mark.parametrize("options, message", [
    ({"beam": 2.7}, "^predict option beam=2.7: 2.7 is not a whole number$"),
    ({"beam": True}, "^predict option beam=True: True is not a whole number$"),
    ({"alpha": True}, "^predict option alpha=True: True is not a number$"),
    ({"inputs": "abc"}, r"^predict option inputs='abc': a list of strs, not one str "
                        r"\(inputs=\['abc'\]\)$"),
    ({"inputs": ["abc", None]}, r"^predict option inputs=\['abc', None\]: None is not a "
                                r"str$"),
])
def test_options_a_python_caller_gets_wrong_are_refused(task_runs, options, message):
    # the command line refuses --beam 2.7; a float is not read as the integer below it
    with pytest.raises(UserError, match=message):
        recurrent.predict(str(task_runs["seq2seq"]), **{"inputs": ["abc"], **options})


def test_a_text_option_takes_only_a_str(task_runs):
    """prime=5 is refused, not read as the text "5" (a text option takes a str, as
    the inputs do)."""
    with pytest.raises(UserError, match=r"^predict option prime=5: 5 is not a str$"):
        recurrent.predict_stream(task_runs["char-lm"], prime=5)
    assert callable(recurrent.predict_stream(task_runs["char-lm"], prime="to"))


def test_a_stream_refuses_a_float_for_a_whole_number(task_runs):
    with pytest.raises(UserError, match=r"^predict option steps=2.0: 2.0 is not a whole "
                                        r"number$"):
        recurrent.predict_stream(str(task_runs["forecast"]), steps=2.0)


def test_a_request_beyond_memory_is_a_refusal(task_runs):
    """The command says "not enough memory" in one line; a program gets that line as the
    UserError every refusal is, not numpy's MemoryError. The widest beam --beam takes,
    over 10000 inputs, asks for more than any address space holds."""
    with pytest.raises(UserError, match="^not enough memory .*ask for smaller ones"):
        recurrent.predict(str(task_runs["seq2seq"]), inputs=["abcd"] * 10_000,
                          beam=C_INT_MAX)


def test_forecast_steps_beyond_the_bound_are_refused_as_options(task_runs):
    """A forecast's steps beyond the --steps bound is refused as the command refuses
    it, by predict and by predict_stream before any input."""
    from recurrent_plugins.forecast.predict import MAX_STEPS
    for steps in (MAX_STEPS + 1, 10**30):
        with pytest.raises(UserError, match=rf"^predict option steps={steps}: {steps} is "
                                            rf"not in the range 1<=x<={MAX_STEPS}"):
            recurrent.predict(str(task_runs["forecast"]), steps=steps)
        with pytest.raises(UserError, match=rf"^predict option steps={steps}: "):
            recurrent.predict_stream(str(task_runs["forecast"]), steps=steps)


def test_a_run_without_best_checkpoint_is_noted_once_however_often_asked(
        task_runs, tmp_path, capfd):
    """A program asking a run whose best.npz is missing many times is told once on stderr
    (each call reads last.npz all the same)."""
    import shutil
    run = tmp_path / "cut"
    shutil.copytree(task_runs["sentiment"], run)
    os.remove(run / "best.npz")
    answers = [recurrent.predict(run, texts=["a fine film"]) for _ in range(3)]
    answer = recurrent.predict_stream(run)
    answer("dull")
    assert answers[0] == answers[2] and len(answers[0]) == 1
    err = capfd.readouterr().err
    assert err.count("has no best checkpoint") == 1, err
    assert err.startswith(f"note: {run} has no best checkpoint ({run / 'best.npz'} is "
                          f"missing"), err
