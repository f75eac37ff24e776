"""The command line's help as a new user reads it: the quick start's sample fits the
bundled data, command listings are not cut off in an 80-column terminal, and the help
names its arguments as the commands take them."""
import contextlib
import re
import shlex
import threading

import click
import pytest
from click.testing import CliRunner

import recurrent
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


# a text click's own formatter breaks after a hyphen at 40 columns
HYPHENATED = ("A well-known step-by-step trace of a long-winded run, re-read and "
              "cross-checked line-by-line.")


class _CommandsPlugin:
    """Commands a plugin adds to recurrent's command line: `toy-hold NAME` waits inside
    until the test lets NAME go on; `toy-tools show`, a group's subcommand added after
    the group itself."""

    def __init__(self):
        self.inside = {"a": threading.Event(), "b": threading.Event()}
        self.go_on = {"a": threading.Event(), "b": threading.Event()}

    @recurrent.hookimpl
    def register_commands(self, cli):
        @cli.command("toy-hold", help=HYPHENATED)
        @click.argument("name")
        def hold(name):
            self.inside[name].set()
            self.go_on[name].wait(timeout=120)

        @cli.group("toy-tools", help=HYPHENATED, invoke_without_command=True)
        def tools():
            pass

        @tools.command("show", help=HYPHENATED)
        def show():
            pass


@contextlib.contextmanager
def plugin_commands():
    """_CommandsPlugin's commands on recurrent's command line for the with block."""
    registry = plugins.Registry(default_plugins=())
    plugin = _CommandsPlugin()
    registry.register_plugin(plugin, "test-help-commands")
    before = dict(cli.commands)
    registry.register_commands(cli)
    assert registry.broken == {}
    try:
        yield plugin
    finally:
        cli.commands.clear()
        cli.commands.update(before)


def another_program():
    """A click program that is not recurrent: a group with a hyphenated help text and a
    command recording the formatter its context makes ([click.Context's, its own])."""
    seen = []

    @click.group(help=HYPHENATED)
    def other():
        pass

    @other.command("look")
    def look():
        seen.append([click.Context.formatter_class,
                     type(click.get_current_context().make_formatter())])

    return other, seen


def click_own_help(command, width):
    """``command``'s help page as click's own formatter writes it."""
    ctx = click.Context(command, info_name=command.name, terminal_width=width)
    formatter = click.HelpFormatter(width=width)
    command.format_help(ctx, formatter)
    return formatter.getvalue()


def beside_two_recurrent_runs(action):
    """``action()``'s result while two recurrent commands run at once in threads of this
    program (as in a notebook or a server), and its result after both end (the first to
    start ending first)."""
    codes = {}

    def run(name):
        codes[name] = cli.main(["toy-hold", name], prog_name="recurrent",
                               standalone_mode=False)

    with plugin_commands() as plugin:
        threads = {name: threading.Thread(target=run, args=(name,)) for name in "ab"}
        try:
            for name in "ab":
                threads[name].start()
                assert plugin.inside[name].wait(timeout=120)
            during = action()
        finally:
            for name in "ab":
                plugin.go_on[name].set()
                threads[name].join()
    assert codes == {"a": 0, "b": 0}
    return during, action()


@pytest.fixture
def clicks_formatter(monkeypatch):
    """click.Context's formatter, put back after the test whatever the test leaves."""
    monkeypatch.setattr(click.Context, "formatter_class", click.HelpFormatter)


def test_another_click_command_has_clicks_formatter_beside_recurrent_in_threads(
        clicks_formatter):
    other, seen = another_program()

    def look():
        assert CliRunner().invoke(other, ["look"]).exit_code == 0
        return seen.pop()

    during, after = beside_two_recurrent_runs(look)
    assert during == after == [click.HelpFormatter, click.HelpFormatter]
    assert click.Context.formatter_class is click.HelpFormatter


def test_another_click_programs_help_is_clicks_own_beside_recurrent_in_threads(
        clicks_formatter):
    other, _ = another_program()
    expected = click_own_help(other, 40)
    assert re.search(r"\w-$", expected, re.M)  # click breaks after a hyphen here

    def help_page():
        result = CliRunner().invoke(other, ["--help"], terminal_width=40)
        assert result.exit_code == 0, result.output
        return result.output.rstrip("\n")

    assert beside_two_recurrent_runs(help_page) == (expected.rstrip("\n"),) * 2


@pytest.mark.parametrize("args", [("toy-hold",), ("toy-tools",), ("toy-tools", "show")])
def test_plugin_commands_help_keeps_hyphenated_words_whole(args):
    """A plugin's command (and a subcommand of its group) writes its help as recurrent's
    own commands do, run through recurrent's command line, and read from the command
    object after that (as a documentation generator reads it)."""
    with plugin_commands():
        result = CliRunner().invoke(cli, [*args, "--help"], prog_name="recurrent",
                                    terminal_width=40)
        command = cli
        for name in args:
            command = command.get_command(None, name)
        given = ["x"] if args == ("toy-hold",) else []  # toy-hold's NAME
        ctx = command.make_context(f"recurrent {' '.join(args)}", given, terminal_width=40)
        page = ctx.get_help()
    assert re.search(r"\w-$", click_own_help(command, 40), re.M)
    for shown in (result.output, page):
        assert [line for line in shown.splitlines() if re.search(r"\w-$", line)] == []
        assert HYPHENATED in " ".join(shown.split())
    assert result.exit_code == 0 and result.output.rstrip("\n") == page.rstrip("\n")
