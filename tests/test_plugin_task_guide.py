"""docs/plugins-tasks.md builds a task plugin from an empty folder: its code, taken from
the page as it stands, registers, trains, evaluates (on its splits and on another file),
predicts, and refuses bad input in one line, so the guide a plugin author follows works."""
import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, tiny_text

from recurrent import plugins

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins-tasks.md"
PLUGIN = "test-task-guide"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def _examples(n, seed):
    """label<TAB>symbols lines: DNA-like strings, labelled by whether they hold TATA."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        symbols = "".join(rng.choice(list("ACGT"), int(rng.integers(8, 16))))
        if rng.random() < 0.5:
            at = int(rng.integers(0, len(symbols) - 3))
            symbols = symbols[:at] + "TATA" + symbols[at + 4:]
        lines.append(f"{'motif' if 'TATA' in symbols else 'none'}\t{symbols}")
    return "\n".join(lines) + "\n"


def _register(tmp_path, monkeypatch, task_code=None):
    """The guide's package in tmp_path, registered; ``task_code`` replaces task.py's."""
    init, task = _python_blocks()
    package = tmp_path / "src" / "motif_task"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (package / "task.py").write_text(task if task_code is None else task_code(task))
    (package / "motifs.tsv").write_text(_examples(600, 0))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("motif_task")
    plugins.register_plugin(module, PLUGIN, version="0.1.0")


def _unregister():
    plugins.unregister_plugin(PLUGIN)
    for name in [m for m in sys.modules if m.startswith("motif_task")]:
        del sys.modules[name]


@pytest.fixture
def guide_task(tmp_path, monkeypatch):
    _register(tmp_path, monkeypatch)
    try:
        yield tmp_path
    finally:
        _unregister()


def test_the_guides_task_trains_evaluates_and_predicts(guide_task):
    listing = json.loads(ok(invoke("plugins", "--json")))
    assert any(t["name"] == "motif" for t in listing["tasks"])
    assert "--data" in ok(invoke("train", "motif", "--help"))
    ok(invoke("train", "motif", "--out", "run", "--threads", 1, "--quiet", "--no-plot"))
    report = json.loads(ok(invoke("eval", "run", "--json")))
    model, majority = report["metrics"], report["baselines"]["majority"]
    assert model["accuracy"] > majority["accuracy"] + 0.2, report  # the motif is learnt
    # another file, its labels swapped: scored as that file, not as the test split
    swapped = _examples(50, 1).replace("motif\t", "x\t").replace("none\t", "motif\t")
    (guide_task / "other.tsv").write_text(swapped.replace("x\t", "none\t"))
    other = json.loads(ok(invoke("eval", "run", "--data", "other.tsv", "--json")))
    assert other["metrics"]["accuracy"] < 0.3 < model["accuracy"], other
    lines = ok(invoke("predict", "run", "GGTATAGGCC", "GGCCGGCCGG")).splitlines()
    assert lines == ["GGTATAGGCC\tmotif", "GGCCGGCCGG\tnone"]


def test_the_guides_task_scores_another_file_without_its_own(guide_task):
    """The run's motifs.tsv gone (an environment moved): eval --data scores the file
    alone and says why the majority baseline is left out; eval of the run's own test
    split refuses in one line."""
    ok(invoke("train", "motif", "--out", "run", "--threads", 1, "--quiet", "--no-plot"))
    (guide_task / "other.tsv").write_text(_examples(50, 1))
    with_data = json.loads(ok(invoke("eval", "run", "--data", "other.tsv", "--json")))
    data = guide_task / "src" / "motif_task" / "motifs.tsv"
    data.rename(guide_task / "motifs.tsv")
    alone = json.loads(ok(invoke("eval", "run", "--data", "other.tsv", "--json")))
    assert alone["metrics"] == with_data["metrics"] and alone["baselines"] == {}
    assert f"{data}" in alone["baselines_left_out"]
    assert "the data this run was trained on" in alone["baselines_left_out"]
    one_line_error(invoke("eval", "run"), f"{data}", "the data this run was trained on")


def test_the_guides_task_refuses_bad_input_in_one_line(guide_task):
    (guide_task / "bad.tsv").write_text("motif\tACGT\nno tab here\n")
    one_line_error(invoke("train", "motif", "--data", "bad.tsv", "--out", "r"),
                   "bad.tsv, line 2: expected label<TAB>symbols")
    (guide_task / "one.tsv").write_text("a\tACGT\n" * 20)
    one_line_error(invoke("train", "motif", "--data", "one.tsv", "--out", "r"),
                   "every example has the label 'a'")
    assert not (guide_task / "r").exists()


def test_the_guides_task_passes_the_task_checks(guide_task):
    report = json.loads(ok(invoke("plugins", "check", "motif", "--json")))
    assert report["kind"] == "task" and report["passed"], report
    names = [c["name"] for c in report["checks"]]
    assert names == ["members", "options", "prepare", "state is JSON", "model spec",
                     "check_state", "batches train", "batches valid", "batches test",
                     "same batches", "evaluate", "baselines"]


YIELD = 'yield {"x": x, "lengths": lengths, "y": y}'
ORDER = "order = np.arange(len(examples)) if rng is None else rng.permutation(len(examples))"


@pytest.mark.parametrize("change,check,detail", [
    (lambda t: t.replace(YIELD, YIELD.replace('"x": x', '"x": x.astype(float)')),
     "batches train", "batch 0: token ids: expected an integer array"),
    (lambda t: t.replace(YIELD, YIELD.replace('"y": y', '"y": y + 2')),
     "batches train", "batch 0: targets: class ids must lie in [0, 2)"),
    (lambda t: t.replace(ORDER, "order = np.random.permutation(len(examples))"),
     "same batches", "train: two calls with the same seed gave other batches"),
    (lambda t: t.replace('"classes": classes}', '"classes": classes, "seen": set(classes)}'),
     "state is JSON", "state['seen'] (set) is not a JSON value"),
    (lambda t: t.replace('"batch_size": 32', '"batchsize": 32'),
     "options", "defaults() sets 'batchsize', neither a shared training option"),
    (lambda t: t.replace("    def defaults(self):",
                         "    def moot_options(self, config):\n"
                         "        return {'dat': 'nothing'}\n\n    def defaults(self):"),
     "options", "moot_options() names 'dat', neither one of the task's options nor a "
     "shared one"),
])
def test_the_task_checks_name_what_a_task_gets_wrong(tmp_path, monkeypatch, change, check,
                                                      detail):
    """Mistakes that training takes without a word (batches drawn from numpy's global
    generator make runs unrepeatable; a typo in defaults() is ignored) or refuses in one
    line (a set in the state), each named by its check."""
    _register(tmp_path, monkeypatch, change)
    try:
        result = invoke("plugins", "check", "motif", "--json")
    finally:
        _unregister()
    assert result.exit_code == 1, result.output
    failed = {c["name"]: c["detail"] for c in json.loads(result.stdout)["checks"]
              if not c["passed"]}
    assert next(iter(failed)) == check, failed  # the first check to fail names it
    assert detail in failed[check]


def test_a_batch_the_model_cannot_take_names_the_task(tmp_path, monkeypatch):
    """Training refuses it in one line naming the task and its check, before the run
    directory is made, rather than as an anonymous internal error."""
    _register(tmp_path, monkeypatch,
              lambda t: t.replace(YIELD, YIELD.replace('"x": x', '"x": x.astype(float)')))
    try:
        result = invoke("train", "motif", "--out", "run")
    finally:
        _unregister()
    one_line_error(result, "task 'motif' gave a first training batch the model cannot take: "
                           "token ids: expected an integer array",
                   "recurrent plugins check motif")
    assert not (tmp_path / "run").exists()


def test_eval_data_refused_for_a_task_that_never_reads_it(tmp_path, monkeypatch):
    """A task whose batches ignore config["eval_data"] would score its own test split,
    printed under the file's name: eval --data refuses it in one line."""
    _register(tmp_path, monkeypatch, lambda t: t.replace(
        '        if config.get("eval_data"):\n            return read_examples(config['
        '"eval_data"])\n', ""))
    try:
        ok(invoke("train", "motif", "--out", "run", "--epochs", 1, "--quiet", "--no-plot"))
        (tmp_path / "other.tsv").write_text(_examples(20, 3))
        plain = ok(invoke("eval", "run"))
        result = invoke("eval", "run", "--data", "other.tsv")
    finally:
        _unregister()
    assert "split test" in plain
    one_line_error(result, "task 'motif' does not read --data files", "other.tsv")


def test_a_plugin_cell_failing_on_the_first_batch_is_named_not_the_task(tmp_path,
                                                                        monkeypatch):
    """A ValueError raised in a plugin cell's own code names the cell and its plugin,
    not the task's batch (whose `plugins check TASK` passes)."""
    package = tmp_path / "src" / "boom_cell"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import recurrent\n"
        "from recurrent.reference import get_reference_cell\n\n\n"
        "class Boom(type(get_reference_cell('lstm'))):\n"
        "    name = 'boom'\n\n"
        "    def __init__(self):\n"
        "        self.gate_order = get_reference_cell('lstm').gate_order\n\n"
        "    def forward(self, *args, **kwargs):\n"
        "        raise ValueError('bug inside the cell forward')\n\n\n"
        "@recurrent.hookimpl\n"
        "def register_cells(register):\n"
        "    register(Boom())\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    plugins.register_plugin(importlib.import_module("boom_cell"), "boom-cell", version="0.2")
    try:
        result = invoke("train", "char-lm", "--data", tiny_text(tmp_path), "--cell", "boom",
                        "--hidden", 8, "--steps", 1, "--threads", 1, "--out", "run")
    finally:
        plugins.unregister_plugin("boom-cell")
        sys.modules.pop("boom_cell", None)
    one_line_error(result, "cell 'boom' (plugin boom-cell 0.2) failed on task 'char-lm''s "
                           "first training batch: bug inside the cell forward",
                   "recurrent plugins check boom")
    assert "gave a first training batch" not in result.stderr
    assert not (tmp_path / "run").exists()


PREPARED = 'return {"data": os.path.abspath(path),'
SPEC_SIZE = '"output_size": len(state["classes"])}'


@pytest.mark.parametrize("change,message", [
    (lambda t: t.replace('"classes": classes}', '"classes": classes, "seen": set(classes)}'),
     "task 'motif': prepare() returned a state config.json cannot keep: state['seen'] (set) "
     "is not a JSON value"),
    (lambda t: t.replace(PREPARED, PREPARED.replace("{", "[{")).replace(
        '"classes": classes}', '"classes": classes}]'),
     "task 'motif': prepare() returned list, not a dict"),
    (lambda t: t.replace(SPEC_SIZE, SPEC_SIZE.replace(")}", ") + 1}")),
     "task 'motif' refuses the state its own prepare() made: the model's output_size is 3, "
     "but classes gives 2"),
    (lambda t: t.replace(YIELD, YIELD.replace('"y": y', '"y": np.stack([y, y])')),
     "task 'motif' gave a first training batch whose targets its loss cross_entropy cannot "
     "take: targets: expected shape"),
    (lambda t: t.replace(YIELD, YIELD.replace(', "y": y', '')),
     "task 'motif' gave a first training batch that is a dict without 'y'"),
    (lambda t: t.replace(YIELD, 'yield x, lengths, y'),
     "task 'motif' gave a first training batch that is a tuple, not a dict with 'x' and 'y'"),
])
def test_training_refuses_what_a_task_hands_over_wrong(tmp_path, monkeypatch, change,
                                                       message):
    """A state config.json would change or the task's own check_state refuses, and a
    first batch that is no batch or whose targets the task's own loss cannot take: one
    line naming the task (not --loss, which was not given; not an internal error), and
    no run directory, rather than a run that eval then calls corrupted."""
    _register(tmp_path, monkeypatch, change)
    try:
        result = invoke("train", "motif", "--out", "run", "--threads", 1, "--quiet",
                        "--no-plot")
    finally:
        _unregister()
    one_line_error(result, message, "`recurrent plugins check motif` checks the task")
    assert not (tmp_path / "run").exists()


def test_baselines_of_the_wrong_shape_name_the_task(tmp_path, monkeypatch):
    """baselines() returning {name: number} rather than {name: {metric: number}}."""
    _register(tmp_path, monkeypatch, lambda t: t.replace(
        'return {"majority": {"accuracy": scored.count(majority) / len(scored)}}',
        'return {"majority": scored.count(majority) / len(scored)}'))
    try:
        result = invoke("train", "motif", "--out", "run", "--threads", 1, "--quiet",
                        "--no-plot")
    finally:
        _unregister()
    one_line_error(result, "task 'motif': baselines() must return {name: {metric: value}}")


@pytest.mark.parametrize("returned,message", [
    ("[total / count, correct / count]", "returned list, not a dict of figures with a 'loss'"),
    # unchecked, train's float() of it is an internal error, and eval prints it as the loss
    ('{"loss": f"{total / count:.3f}", "accuracy": correct / count}',
     "returned a 'loss' of type str, not a number"),
    # unchecked, metrics.jsonl and eval --json keep its text
    ('{"loss": total / count, "labels": set(state["classes"])}',
     "returned metrics['labels'] (set), which is not a JSON value"),
])
def test_eval_of_an_evaluate_returning_no_dict_of_figures_names_the_task(
        tmp_path, monkeypatch, returned, message):
    """A run trained with the task, evaluated after evaluate() changed to return a list, a
    loss that is no number or a value JSON cannot keep."""
    run = tmp_path / "run"
    _register(tmp_path, monkeypatch)
    try:
        ok(invoke("train", "motif", "--out", run, "--epochs", 1, "--threads", 1, "--quiet",
                  "--no-plot"))
    finally:
        _unregister()
    _register(tmp_path / "changed", monkeypatch, lambda t: t.replace(
        'return {"loss": total / count, "accuracy": correct / count}', f"return {returned}"))
    try:
        result = invoke("eval", run)
        trained = invoke("train", "motif", "--out", tmp_path / "other", "--steps", 1,
                         "--threads", 1, "--quiet", "--no-plot")
    finally:
        _unregister()
    for refused in (result, trained):
        one_line_error(refused, f"task 'motif': evaluate() {message}")
    assert result.stdout == ""


def test_predict_returning_a_string_names_the_task(tmp_path, monkeypatch):
    """A predict() that returns its text instead of yielding lines would print it one
    character per line."""
    _register(tmp_path, monkeypatch, lambda t: t.replace(
        "            yield f\"{symbols}\\t{state['classes'][k]}\"",
        "            return f\"{symbols}\\t{state['classes'][k]}\""))
    try:
        ok(invoke("train", "motif", "--out", "run", "--epochs", 1, "--threads", 1, "--quiet",
                  "--no-plot"))
        result = invoke("predict", "run", "GGTATAGGCC")
    finally:
        _unregister()
    one_line_error(result, "task 'motif': predict() returned str, not an iterable of lines")


def test_stream_leaves_out_the_required_argument_of_the_guides_predict(tmp_path,
                                                                      monkeypatch):
    """The guide's predict takes its strings as a required argument; a predict_stream
    added beside it reads its inputs from stdin, so --stream alone must not stop at the
    missing strings, and strings given with it are refused as the stream's unread
    options are."""
    from click.testing import CliRunner

    from recurrent.cli import cli
    _register(tmp_path, monkeypatch, lambda t: t + (
        "\n    def predict_stream(self, state, config, model, options):\n"
        "        return lambda symbols: {'symbols': symbols}\n"))
    try:
        ok(invoke("train", "motif", "--out", "run", "--steps", 1, "--threads", 1, "--quiet",
                  "--no-plot"))
        streamed = CliRunner().invoke(cli, ["predict", "run", "--stream"],
                                      input="GGTATAGGCC\nGGCC\n")
        given = CliRunner().invoke(cli, ["predict", "run", "--stream", "GGCC"], input="")
        plain = invoke("predict", "run")
    finally:
        _unregister()
    assert [json.loads(line) for line in ok(streamed).splitlines()] == [
        {"symbols": "GGTATAGGCC"}, {"symbols": "GGCC"}]
    one_line_error(given, "Error: strings does not apply to --stream")
    one_line_error(plain, "Missing argument 'STRINGS...'")


@pytest.mark.parametrize("answer,message", [
    ("symbols", "predict_stream()'s answer to line 1 is str, not a dict"),
    ('{"symbols": set(symbols)}',
     "predict_stream()'s answer to line 1: answer['symbols'] (set) is not a JSON value"),
])
def test_a_stream_answer_that_is_no_dict_of_json_values_names_the_task(tmp_path,
                                                                       monkeypatch, answer,
                                                                       message):
    """A predict_stream() answering with a str, or a dict holding a set: unchecked, the
    client reads a JSON string, or the set's text, as the answer."""
    from click.testing import CliRunner

    from recurrent.cli import cli
    _register(tmp_path, monkeypatch, lambda t: t + (
        "\n    def predict_stream(self, state, config, model, options):\n"
        f"        return lambda symbols: {answer}\n"))
    try:
        ok(invoke("train", "motif", "--out", "run", "--steps", 1, "--threads", 1, "--quiet",
                  "--no-plot"))
        result = CliRunner().invoke(cli, ["predict", "run", "--stream"],
                                    input="GGTATAGGCC\nGGCC\n")
    finally:
        _unregister()
    one_line_error(result, f"Error: task 'motif': {message}")
    assert result.stdout == ""


def test_an_option_taking_a_shared_options_name_breaks_the_plugin(tmp_path, monkeypatch):
    """A task's --hidden beside the shared one would leave one of the two without effect:
    the plugin is listed as broken with the reason, and train names it."""
    _register(tmp_path, monkeypatch, lambda t: t.replace(
        'return [click.Option(["--data"]',
        'return [click.Option(["--hidden"], default=8), click.Option(["--data"]'))
    try:
        listing = json.loads(ok(invoke("plugins", "--json")))
        result = invoke("train", "motif", "--hidden", 4, "--out", "run")
    finally:
        _unregister()
    assert not any(t["name"] == "motif" for t in listing["tasks"])
    broken = {b["plugin"]: b["error"] for b in listing["broken"]}
    assert broken[PLUGIN] == ("ValueError: task 'motif': options() has --hidden, a shared "
                              "option of `recurrent train`; change its default in "
                              "defaults() instead, or give the task's option another name")
    one_line_error(result, "task 'motif'", "options() has --hidden")


def test_the_task_checks_stop_at_a_model_spec_they_cannot_build(tmp_path, monkeypatch):
    """The checks after "model spec" build the model from it: with a bad spec they are
    not run, so the report names the one cause once."""
    _register(tmp_path, monkeypatch, lambda t: t.replace('"output": "last"',
                                                         '"output": "final"'))
    try:
        result = invoke("plugins", "check", "motif", "--json")
    finally:
        _unregister()
    checks = json.loads(result.stdout)["checks"]
    assert [c["name"] for c in checks][-1] == "model spec", checks
    assert [c["name"] for c in checks if not c["passed"]] == ["model spec"]


def test_an_after_training_state_config_json_cannot_keep_names_the_task(tmp_path,
                                                                         monkeypatch):
    """after_training's state is saved as the run's task state like prepare()'s: a value
    config.json would keep only as its text (a set) is refused in one line naming the
    task, and the run's config.json keeps the state training ended with."""
    _register(tmp_path, monkeypatch, lambda t: t.replace(
        "    def baselines(self, state, split, config):",
        "    def after_training(self, state, config, model):\n"
        "        return {**state, \"chosen\": {1, 2}}\n\n"
        "    def baselines(self, state, split, config):"))
    try:
        result = invoke("train", "motif", "--out", "run", "--epochs", 1, "--threads", 1,
                        "--quiet", "--no-plot")
    finally:
        _unregister()
    one_line_error(result, "task 'motif': after_training() returned a state config.json "
                           "cannot keep: state['chosen'] (set) is not a JSON value")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["task_state"]
    assert "chosen" not in saved
