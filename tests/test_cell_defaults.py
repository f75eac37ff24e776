"""A task's defaults for one cell (Task.cell_defaults): a run with that --cell takes them
for the options not given on the command line, an option given beats them, --help names
them, a resumed run keeps what it was started with, and a task whose cell_defaults are
malformed or name no option is a broken plugin saying so."""
import json

import pytest

from helpers import TaskPlugin, invoke, ok, tiny_text, train_tiny
from recurrent import plugins
from recurrent_plugins.char_lm.task import CELL_DEFAULTS, DEFAULTS
from train_toys import ToySign

NAME = "test-cell-defaults"


def saved_options(run):
    return json.loads((run / "config.json").read_text(encoding="utf-8"))["config"]


def test_char_lm_trains_the_gru_at_its_own_learning_rate(tmp_path):
    text = tiny_text(tmp_path)
    assert CELL_DEFAULTS["gru"]["lr"] != DEFAULTS["lr"]
    ok(train_tiny(text, tmp_path / "gru", "--cell", "gru"))
    assert saved_options(tmp_path / "gru")["lr"] == CELL_DEFAULTS["gru"]["lr"]
    ok(train_tiny(text, tmp_path / "lstm"))
    assert saved_options(tmp_path / "lstm")["lr"] == DEFAULTS["lr"]
    # an --lr given beats the cell's default, also when it is the task's default
    ok(train_tiny(text, tmp_path / "given", "--cell", "gru", "--lr", DEFAULTS["lr"]))
    assert saved_options(tmp_path / "given")["lr"] == DEFAULTS["lr"]


def test_a_resumed_gru_run_keeps_its_learning_rate(tmp_path):
    text = tiny_text(tmp_path)
    run = tmp_path / "gru"
    ok(train_tiny(text, run, "--cell", "gru"))
    ok(invoke("train", "char-lm", "--resume", run, "--steps", 3))
    assert saved_options(run)["lr"] == CELL_DEFAULTS["gru"]["lr"]
    # the value the run took, given again, is no change; another is refused
    ok(invoke("train", "char-lm", "--resume", run, "--steps", 4, "--lr",
              CELL_DEFAULTS["gru"]["lr"]))
    result = invoke("train", "char-lm", "--resume", run, "--steps", 5, "--lr", DEFAULTS["lr"])
    assert result.exit_code != 0
    assert "--lr cannot change when resuming (the run has 0.005)" in result.stderr


def test_char_lm_help_names_the_cells_learning_rates():
    listing = ok(invoke("train", "char-lm", "--help"))
    assert ("Learning rate (with --cell gru: 0.005; --cell rnn_tanh: 0.003; --cell "
            "rnn_relu: 0.003).") in " ".join(listing.split())


class _ByCell(ToySign):
    name = "toy-by-cell"
    cell_defaults = {"gru": {"hidden": 5, "samples": 40}}


@pytest.fixture
def by_cell():
    plugins.register_plugin(TaskPlugin(_ByCell()), NAME)
    try:
        yield
    finally:
        plugins.unregister_plugin(NAME)


def test_a_plugin_task_sets_shared_and_own_options_for_one_cell(tmp_path, by_cell):
    ok(invoke("train", "toy-by-cell", "--cell", "gru", "--steps", 1, "--out",
              tmp_path / "lstm"))
    options = saved_options(tmp_path / "lstm")
    assert (options["hidden"], options["samples"]) == (5, 40)
    ok(invoke("train", "toy-by-cell", "--cell", "lstm", "--steps", 1, "--out",
              tmp_path / "other"))
    options = saved_options(tmp_path / "other")
    assert (options["hidden"], options["samples"]) == (8, 192)
    ok(invoke("train", "toy-by-cell", "--cell", "gru", "--samples", 64, "--steps", 1,
              "--out", tmp_path / "given"))
    options = saved_options(tmp_path / "given")
    assert (options["hidden"], options["samples"]) == (5, 64)
    listing = " ".join(ok(invoke("train", "toy-by-cell", "--help")).split())
    assert "Hidden units per layer and direction (with --cell gru: 5)." in listing


class _ByDefaultCell(ToySign):
    """Defaults for the task's default cell (ToySign's ref_gru, a plugin cell)."""
    name = "toy-by-default-cell"
    cell_defaults = {"ref_gru": {"hidden": 5, "lr": 0.02, "samples": 40}}


def test_another_cell_than_the_default_cell_takes_the_tasks_own_defaults(tmp_path):
    import train_toys
    from recurrent.task_conformance import default_config
    task = _ByDefaultCell()
    plugins.register_plugin(TaskPlugin(task), NAME)
    try:
        with train_toys.registered():  # the ref_gru cell
            ok(invoke("train", task.name, "--steps", 1, "--out", tmp_path / "default"))
            ok(invoke("train", task.name, "--cell", "gru", "--steps", 1, "--out",
                      tmp_path / "gru"))
    finally:
        plugins.unregister_plugin(NAME)
    options = saved_options(tmp_path / "default")
    assert (options["cell"], options["hidden"], options["lr"], options["samples"]) == (
        "ref_gru", 5, 0.02, 40)
    # `recurrent plugins check` checks the options a run given nothing has
    checked = default_config(task)
    assert {key: checked[key] for key in ("hidden", "lr", "samples")} == {
        "hidden": 5, "lr": 0.02, "samples": 40}
    options = saved_options(tmp_path / "gru")
    assert (options["cell"], options["hidden"], options["lr"], options["samples"]) == (
        "gru", 8, 0.05, 192)


@pytest.mark.parametrize("cell_defaults,expected", [
    (["gru"], "cell_defaults is ['gru'], expected a dict of {cell name: {option key: "
              "value}}"),
    ({"gru": 0.005}, "cell_defaults is {'gru': 0.005}, expected a dict of {cell name: "
                     "{option key: value}}"),
    ({"gru": {"lrr": 0.005}}, "cell_defaults['gru'] sets 'lrr', not an option of "
                              "`recurrent train toy-bad-cell-defaults` a run keeps (other "
                              "than cell, out, resume, ranks)"),
    ({"gru": {"cell": "lstm"}}, "cell_defaults['gru'] sets 'cell', not an option of "
                                "`recurrent train toy-bad-cell-defaults` a run keeps (other "
                                "than cell, out, resume, ranks)"),
    ({"gru": {"lr": "0.005"}}, "cell_defaults['gru'] sets 'lr' to '0.005', not a number"),
    ({"gru": {"samples": 64.5}}, "cell_defaults['gru'] sets 'samples' to 64.5, not a whole "
                                 "number"),
    ({"gru": {"out": "elsewhere"}}, "cell_defaults['gru'] sets 'out', not an option of "
                                    "`recurrent train toy-bad-cell-defaults` a run keeps"),
    ({"gru": {"lr": -1.0}}, "cell_defaults['gru'] sets 'lr' to -1.0: Invalid value for "
                            "'--lr': -1.0 is not in the range x>0."),
])
def test_malformed_cell_defaults_make_a_broken_plugin(cell_defaults, expected):
    task = type("BadCellDefaults", (ToySign,), {"name": "toy-bad-cell-defaults",
                                                 "cell_defaults": cell_defaults})()
    plugins.register_plugin(TaskPlugin(task), NAME)
    try:
        assert plugins.broken_plugins()[NAME].startswith(
            f"ValueError: task 'toy-bad-cell-defaults': {expected}")
        assert "toy-bad-cell-defaults" not in plugins.tasks()
        ok(invoke("train", "--help"))
    finally:
        plugins.unregister_plugin(NAME)
