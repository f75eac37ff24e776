"""The command line's help as a new user reads it: the quick start's sample fits the
bundled data, command listings are not cut off in an 80-column terminal, and the help
names its arguments as the commands take them."""
import re
import shlex

import click
import pytest
from click.testing import CliRunner

import train_toys
from recurrent import plugins
from recurrent.cli import QUICK_START, RecurrentGroup, cli

from recurrent_plugins.char_lm import text

BUILT_IN_COMMANDS = ("bench", "eval", "export", "import", "info", "plugins", "predict",
                     "train", "tune")


def help_at_80_columns(*args):
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="recurrent",
                                terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def listed(output, heading):
    """The rows (name, text) under ``heading`` in a help page (continuation lines
    joined)."""
    rows, inside = [], False
    for line in output.splitlines():
        if line == f"{heading}:":
            inside = True
        elif inside and re.match(r"  \S", line):
            name, _, rest = line.strip().partition(" ")
            rows.append([name, rest.strip()])
        elif inside and line.startswith("    ") and rows:
            rows[-1][1] += " " + line.strip()
        elif inside and line.strip():
            break
    return dict(rows)


def test_the_quick_start_primes_with_a_speaker_tag_of_the_bundled_text():
    # a prime the text never holds starts the sample from characters the model has
    # hardly seen, and the first line printed is noise
    primes = [shlex.split(line)[shlex.split(line).index("--prime") + 1]
              for line in QUICK_START.splitlines() if "--prime" in line]
    assert primes
    corpus = text.read_text(text.bundled_path())
    for prime in primes:
        assert f"\n{prime}\n" in corpus, prime


@pytest.mark.parametrize("args,heading,names", [
    ((), "Commands", BUILT_IN_COMMANDS),
    (("plugins",), "Commands", ("check",)),
])
def test_command_listings_are_not_cut_off_at_80_columns(args, heading, names):
    rows = listed(help_at_80_columns(*args), heading)
    for name in names:
        assert name in rows, rows
        assert not rows[name].endswith("..."), (name, rows[name])


def test_train_help_names_its_subcommands_tasks():
    output = help_at_80_columns("train")
    assert output.startswith("Usage: recurrent train [OPTIONS] TASK")
    rows = listed(output, "Tasks")
    assert set(plugins.tasks()) <= set(rows), rows
    for name, summary in rows.items():  # each task's own one-line summary, whole
        assert summary.endswith("."), (name, summary)


def test_both_train_helps_say_a_moved_runs_resume_takes_its_datas_new_place():
    """`train --resume RUN --data NEW` works with the task named or not: both help pages
    say so."""
    for args in (("train",), ("train", "char-lm")):
        rows = listed(help_at_80_columns(*args), "Options")
        resume = " ".join(rows["--resume"].split())
        assert "with --data NEW when its data file has moved" in resume, (args, resume)


def test_data_options_name_a_file():
    for name in ("char-lm", "sentiment", "forecast", "seq2seq"):
        command = cli.get_command(None, "train").get_command(None, name)
        data = next(p for p in command.params if p.name == "data")
        assert data.make_metavar(None).startswith("FILE"), name
        task = plugins.get_task(name)
        for param in task.predict_options():
            if param.name == "data":
                assert param.make_metavar(None).startswith("FILE"), name


def test_predict_run_help_lists_the_short_help_flag_it_takes(tmp_path):
    with train_toys.registered():
        run = tmp_path / "lm"
        result = CliRunner().invoke(cli, ["train", "toy-lm", "--out", str(run), "--epochs", "1",
                                          "--threads", "1"])
        assert result.exit_code == 0, result.output
        long = CliRunner().invoke(cli, ["predict", str(run), "--help"])
        short = CliRunner().invoke(cli, ["predict", str(run), "-h"])
    assert long.exit_code == short.exit_code == 0
    assert short.output == long.output
    assert re.search(r"^  -h, --help ", long.output, re.M), long.output


@pytest.mark.parametrize("name", ["char-lm", "sentiment", "forecast", "seq2seq"])
def test_train_help_shows_the_loss_a_run_of_the_task_trains_with(name):
    # a run without --loss records the task's loss in config.json (cli._make_trainer)
    rows = listed(help_at_80_columns("train", name), "Options")
    assert f"[default: {plugins.get_task(name).loss}]" in rows["--loss"], rows["--loss"]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("args", [(), ("train",), ("train", "char-lm"), ("train", "sentiment"),
                                  ("train", "forecast"), ("train", "seq2seq"), ("bench",),
                                  ("tune",), ("export",)])
def test_help_lines_never_break_after_a_hyphen(args, width):
    """An option's name, a default (runs/TASK-DATE-TIME, no-nesterov) or a hyphenated word
    is never cut at its hyphen: "[default: runs/TASK-" on one line and "DATE-TIME]" on the
    next names neither a path nor an option. The words are the same as unwrapped."""
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="recurrent",
                                terminal_width=width)
    assert result.exit_code == 0, result.output
    cut = [line for line in result.output.splitlines() if re.search(r"\w-$", line)]
    assert cut == []
    assert "\u2011" not in result.output
    if args[:1] == ("train",) and args[1:]:
        assert "runs/TASK-DATE-TIME]" in result.output


@pytest.mark.parametrize("width", [40, 80])
def test_a_non_breaking_hyphen_in_a_help_text_stays_one(width):
    """A help text may hold a real non-breaking hyphen (U+2011): the page shows it as
    written, not turned into a plain hyphen by the wrapping that keeps plain hyphens
    from ending a line."""
    group = RecurrentGroup(name="recurrent")

    @group.command("trace", help="The gates of a peephole\u2011LSTM cell, step-by-step.")
    @click.option("--x\u2011axis", "axis", help="The time\u2011axis to plot along.")
    def trace(axis):
        pass

    result = CliRunner().invoke(group, ["trace", "--help"], prog_name="recurrent",
                                terminal_width=width)
    assert result.exit_code == 0, result.output
    assert "peephole\u2011LSTM" in result.output and "step-by-step" in result.output
    assert "--x\u2011axis" in result.output and "time\u2011axis" in result.output
