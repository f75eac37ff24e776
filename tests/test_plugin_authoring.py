"""Mistakes a third-party plugin's author makes, each reported in one line naming the plugin
while every other command keeps working: a hook that returns its objects instead of
registering them, a class registered instead of an instance, two objects in one register()
call, a task whose options() raises (which stopped `recurrent train --help`), prints at
import or in a hook (which went into the JSON on stdout), a task calling the Runner as
recurrent.protocols.Runner states it, a bug in a plugin's own code (in a package declaring
an entry point per module, too), a loss returning a gradient of the wrong shape, and a cell
whose gate_order or mask_kinds contradict its other members."""
import inspect
import json
import sys

import click
import numpy as np
import pytest

import recurrent
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny
from recurrent import plugins
from recurrent.protocols import Runner as RunnerProtocol
from train_toys import ToySign

NAME = "test-authoring"


class _Cell:
    """A registry-only cell (never run)."""
    num_gates, state_names = 1, ("h",)

    def __init__(self, name):
        self.name = name

    def param_shapes(self, input_size, hidden_size):
        return {"weight_ih": (hidden_size, input_size)}

    def init_params(self, params, hidden_size, rng):
        pass

    def forward(self, x, states, params, lengths, num_threads):
        raise NotImplementedError

    def backward(self, d_out, d_final_states, cache, grads, num_threads):
        raise NotImplementedError


class _CellPlugin:
    def __init__(self, how):
        self.how = how

    @recurrent.hookimpl
    def register_cells(self, register):
        if self.how == "return":
            return [_Cell("authoring_returned")]
        if self.how == "class":
            register(type("ClassCell", (_Cell,), {"name": "authoring_class"}))
        if self.how == "two":
            register(_Cell("authoring_two_a"), _Cell("authoring_two_b"))
        return None


def _broken_line(plugin):
    plugins.register_plugin(plugin, NAME)
    try:
        return plugins.broken_plugins().get(NAME)
    finally:
        plugins.unregister_plugin(NAME)


@pytest.mark.parametrize("how,expected", [
    ("return", "ValueError: register_cells returned list: call register(obj) once per "
               "object instead"),
    ("class", "ValueError: cell 'authoring_class': registered the class ClassCell, not an "
              "instance: call register(ClassCell())"),
    ("two", "ValueError: register_cells: register() takes one object per call, got 2"),
])
def test_a_hook_misusing_register_is_a_broken_plugin_saying_how(how, expected):
    assert _broken_line(_CellPlugin(how)) == expected
    assert not any(name.startswith("authoring_") for name in plugins.cells())


class _RaisingOptions(ToySign):
    name = "authoring-options"

    def options(self):
        raise RuntimeError("options exploded")


class _TaskPlugin:
    """helpers.TaskPlugin defined in this module, where its tasks' code is: an internal
    error is put down to the plugin whose module raised it."""

    def __init__(self, task):
        self.task = task

    @recurrent.hookimpl
    def register_tasks(self, register):
        register(self.task)


def test_a_task_whose_options_raise_leaves_train_help_working():
    plugins.register_plugin(_TaskPlugin(_RaisingOptions()), NAME)
    try:
        listing = ok(invoke("train", "--help"))
        assert "char-lm" in listing and "authoring-options" not in listing
        assert plugins.broken_plugins()[NAME] == (
            "ValueError: task 'authoring-options': options() raised RuntimeError: options "
            "exploded")
        one_line_error(invoke("train", "authoring-options"),
                       "task 'authoring-options' is unavailable: plugin 'test-authoring' is "
                       "broken: ValueError: task 'authoring-options': options() raised")
    finally:
        plugins.unregister_plugin(NAME)


class _DefaultsTask(ToySign):
    """ToySign with one option default changed (by defaults() or by options())."""

    name = "authoring-defaults"

    def __init__(self, defaults=None, samples=192):
        self._defaults, self._samples = defaults or {}, samples

    def options(self):
        own = super().options()
        own[0].default = self._samples  # --samples
        return own

    def defaults(self):
        return {**super().defaults(), **self._defaults}


@pytest.mark.parametrize("task, expected", [
    (_DefaultsTask({"lr": -1.0}), "defaults() sets 'lr' to -1.0: Invalid value for '--lr': "
                                  "-1.0 is not in the range x>0."),
    (_DefaultsTask({"hidden": "8"}), "defaults() sets 'hidden' to '8', not a whole number"),
    (_DefaultsTask({"epochs": 2.5}), "defaults() sets 'epochs' to 2.5, not a whole number"),
    (_DefaultsTask({"pooling": "mode"}), "defaults() sets 'pooling' to 'mode': Invalid "
                                         "value for '--pooling': 'mode' is not one of"),
    (_DefaultsTask(samples="many"), "options() gives --samples the default 'many', not a "
                                    "whole number")])
def test_a_task_default_its_option_refuses_is_a_broken_plugin(task, expected, tmp_path):
    """Such a default would stop every `recurrent train TASK` as if the user had typed it
    (`Error: Invalid value for '--lr'` with no --lr given): the registry refuses it, as
    it refuses a cell_defaults value, naming the task, and the other tasks keep working."""
    plugins.register_plugin(_TaskPlugin(task), NAME)
    try:
        assert plugins.broken_plugins()[NAME].startswith(
            f"ValueError: task 'authoring-defaults': {expected}")
        one_line_error(invoke("train", "authoring-defaults", "--out", tmp_path / "run"),
                       "task 'authoring-defaults' is unavailable: plugin 'test-authoring' "
                       "is broken", expected)
        assert not (tmp_path / "run").exists()
        assert "authoring-defaults" not in ok(invoke("train", "--help"))
    finally:
        plugins.unregister_plugin(NAME)


class _RepeatedOption(_DefaultsTask):
    def options(self):
        return super().options() + [click.Option(["--widths"], type=int, multiple=True,
                                                 default=(2, 3))]


def test_task_defaults_its_options_take_register():
    """A whole number for a number option, None for an option without a value, a flag's
    bool, and a repeatable option's default of several values."""
    task = _RepeatedOption({"lr": 1, "dropout": 0, "interrupt_at": None, "plot": False},
                           samples=64)
    plugins.register_plugin(_TaskPlugin(task), NAME)
    try:
        assert NAME not in plugins.broken_plugins()
        assert "authoring-defaults" in plugins.tasks()
    finally:
        plugins.unregister_plugin(NAME)


class _FileDefaults(_DefaultsTask):
    def options(self):
        return super().options() + [
            click.Option(["--vocab"], type=click.Path(exists=True, dir_okay=False),
                         default="vocab-not-here.txt"),
            click.Option(["--extra"], type=click.File("r"), default="extra-not-here.txt")]


def test_a_default_file_absent_where_the_plugin_registers_is_no_broken_plugin(tmp_path,
                                                                               monkeypatch):
    """A path option's default names a file of the directory the command runs in: one
    absent where the plugin registers is the user's to give, not a broken plugin; the
    command that needs it names it."""
    monkeypatch.chdir(tmp_path)
    plugins.register_plugin(_TaskPlugin(_FileDefaults(samples=64)), NAME)
    try:
        assert NAME not in plugins.broken_plugins()
        assert "authoring-defaults" in plugins.tasks()
        one_line_error(invoke("train", "authoring-defaults", "--out", tmp_path / "run"),
                       "vocab-not-here.txt")
    finally:
        plugins.unregister_plugin(NAME)


class _LossTypo(ToySign):
    name = "authoring-loss-typo"
    loss = "cross_entropyy"


def test_a_task_whose_own_loss_is_not_registered_is_named(tmp_path):
    """The error names the task whose Task.loss it is, as the user typed no loss name;
    a --loss given is named as typed."""
    plugins.register_plugin(_TaskPlugin(_LossTypo()), NAME)
    try:
        own = invoke("train", "authoring-loss-typo", "--cell", "gru", "--out",
                     tmp_path / "own")
        given = invoke("train", "authoring-loss-typo", "--cell", "gru", "--loss", "nosuch",
                       "--out", tmp_path / "given")
    finally:
        plugins.unregister_plugin(NAME)
    one_line_error(own, "task 'authoring-loss-typo' trains with its loss 'cross_entropyy' "
                        "(Task.loss): unknown loss 'cross_entropyy'; known losses: ")
    line = one_line_error(given, "unknown loss 'nosuch'; known losses: ")
    assert "Task.loss" not in line
    assert not (tmp_path / "own").exists() and not (tmp_path / "given").exists()


@pytest.mark.parametrize("member, value, expected", [
    ("help", None, "help is None, expected a non-empty str"),
    ("loss", 5, "loss is 5, expected a non-empty str")])
def test_a_task_whose_help_or_loss_is_no_string_is_a_broken_plugin(member, value, expected):
    """help None would read "None" in `recurrent plugins` and `recurrent train --help`."""
    task = type("Odd", (ToySign,), {"name": "authoring-odd", member: value})()
    assert _broken_line(_TaskPlugin(task)) == f"ValueError: task 'authoring-odd': {expected}"
    assert "authoring-odd" not in plugins.tasks()


class _PredictOptions(ToySign):
    name = "authoring-predict-options"

    def __init__(self, options):
        self._options = options

    def predict_options(self):
        return self._options

    def predict(self, state, config, model, options):
        yield f"predicted with {sorted(options)}"


@pytest.mark.parametrize("given, expected", [
    ([click.Option(["--precision"], default="exact")],
     "predict_options() has --precision, an option of `recurrent predict` itself; give "
     "the task's option another name"),
    (["--digits"], "predict_options() returned '--digits', expected a list of click "
                   "options"),
    (click.Option(["--digits"]), "predict_options() returned Option, expected a list of "
                                 "click options"),
    ([click.Option(["--digits"], type=int, default=2)], None),
    (None, None)])
def test_predict_options_predict_cannot_take_are_named(tmp_path, given, expected):
    """Predict options that are no list of click parameters, or that take a flag of
    predict's own (click would warn and parse one of the two), are one line naming the
    task, from `recurrent predict` and from the kit's options check; None is no options."""
    from recurrent.task_conformance import check_task
    checked = next(r for r in check_task(_PredictOptions(given)) if r.name == "options")
    assert checked.passed == (expected is None), checked
    assert expected is None or checked.detail.endswith(expected)
    plugins.register_plugin(_TaskPlugin(_PredictOptions(given)), NAME)
    try:
        ok(invoke("train", "authoring-predict-options", "--cell", "gru", "--epochs", 1,
                  "--out", tmp_path / "run"))
        result = invoke("predict", tmp_path / "run")
    finally:
        plugins.unregister_plugin(NAME)
    if expected is None:
        assert ok(result).startswith("predicted with [")
        assert not result.stderr.strip()
    else:
        one_line_error(result, f"task 'authoring-predict-options': {expected}")


class _Chatty:
    """Prints in its hook, as a plugin left with a debugging print does."""

    @recurrent.hookimpl
    def register_losses(self, register):
        print("registering the chatty loss")


def _flags(params):
    return {flag for param in params for flag in (*param.opts, *param.secondary_opts)}


def test_the_flags_no_task_may_take_are_predicts_own(tmp_path):
    """OWN_FLAGS, which a task's predict options may not take, are the options `recurrent
    predict RUN` lists beside the task's, as its help page shows them: read from the one
    definition the command adds (predict_api.own_options, HELP_FLAGS)."""
    import re

    from recurrent import predict_api
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    page = ok(invoke("predict", run, "--help"))
    listed = {flag for line in page.splitlines()
              if re.match(r"^  -", line)
              for flag in re.findall(r"(?:^|[ ,/] ?)(--?[a-z][\w-]*)",
                                     re.split(r"\s{2,}", line.strip())[0])}
    task = _flags(plugins.get_task("char-lm").predict_options())
    assert task and task <= listed
    assert listed - task == set(predict_api.OWN_FLAGS)
    assert set(predict_api.OWN_FLAGS) == (_flags(predict_api.own_options())
                                          | set(predict_api.HELP_FLAGS))


def test_prints_of_a_plugin_go_to_stderr_not_into_json_output():
    plugins.register_plugin(_Chatty(), NAME)
    try:
        result = invoke("plugins", "--json")
    finally:
        plugins.unregister_plugin(NAME)
    assert json.loads(ok(result))["losses"]  # stdout is the JSON alone
    assert "registering the chatty loss" in result.stderr


def test_a_plugin_printing_at_import_leaves_stdout_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "rec_authoring_prints.py").write_text(
        'import recurrent\nprint("imported!")\n\n\n@recurrent.hookimpl\n'
        'def register_losses(register):\n    pass\n')
    dist = tmp_path / "rec_authoring_prints-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rec-authoring-prints\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[recurrent]\nprints = rec_authoring_prints\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.setenv("RECURRENT_PLUGINS", "prints")
    try:
        registry = plugins.Registry(default_plugins=())
        registry.load()
    finally:
        sys.modules.pop("rec_authoring_prints", None)
    captured = capsys.readouterr()
    assert registry.pm.has_plugin("prints")
    assert captured.out == "" and "imported!" in captured.err


def test_runners_take_lengths_as_the_protocol_states():
    """recurrent.protocols.Runner.forward(x, lengths=None, state=None): a task may pass
    lengths by position; every Runner the framework hands tasks accepts that."""
    from recurrent.data_parallel import ShardedRunner
    from recurrent.model import SequenceModel
    from recurrent.runner import Runner

    def kinds(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    for cls in (Runner, ShardedRunner):
        assert kinds(cls.forward) == kinds(RunnerProtocol.forward), cls
    spec = {"input": "features", "input_size": 2, "output": "last", "output_size": 3}
    model = SequenceModel(spec, cell="lstm", hidden_size=4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3, 2)).astype(np.float32)
    lengths = np.array([5, 2, 4])
    out, _ = model.runner().forward(x, lengths)
    np.testing.assert_array_equal(out, model.runner().forward(x, lengths=lengths)[0])


class _BuggyTask(ToySign):
    name = "authoring-buggy"

    def prepare(self, config):
        return {}["no such key"]


def test_an_internal_error_in_a_plugins_code_names_the_plugin(tmp_path):
    plugins.register_plugin(_TaskPlugin(_BuggyTask()), NAME, version="3.2.1")
    try:
        result = invoke("train", "authoring-buggy", "--out", tmp_path / "run")
    finally:
        plugins.unregister_plugin(NAME)
    one_line_error(result, "Error: internal error in plugin 'test-authoring' (version "
                           "3.2.1) (KeyError: 'no such key'); rerun with --debug", bug=True)


_TWO_ENTRY_POINTS = {
    "buggy": "import recurrent\nfrom train_toys import ToySign\n\n\n"
             "class Buggy(ToySign):\n    name = 'authoring-two-buggy'\n\n"
             "    def prepare(self, config):\n        return {}['no such key']\n\n\n"
             "@recurrent.hookimpl\ndef register_tasks(register):\n    register(Buggy())\n",
    "other": "import recurrent\n\n\n@recurrent.hookimpl\n"
             "def register_losses(register):\n    pass\n",
}


def test_an_internal_error_names_the_plugin_of_its_module_among_a_packages_plugins(
        tmp_path, monkeypatch):
    """One package declaring an entry point per module: the plugin whose module raised is
    named, not another plugin of the same package."""
    package = tmp_path / "authoring_two"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in _TWO_ENTRY_POINTS.items():
        (package / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    import authoring_two.buggy
    import authoring_two.other
    plugins.register_plugin(authoring_two.buggy, "authoring-buggy", version="1.0")
    plugins.register_plugin(authoring_two.other, "authoring-other", version="1.0")
    try:
        result = invoke("train", "authoring-two-buggy", "--out", tmp_path / "run")
    finally:
        plugins.unregister_plugin("authoring-buggy")
        plugins.unregister_plugin("authoring-other")
        for module in ("authoring_two", "authoring_two.buggy", "authoring_two.other"):
            sys.modules.pop(module, None)
    one_line_error(result, "Error: internal error in plugin 'authoring-buggy' (version 1.0) "
                           "(KeyError: 'no such key')", bug=True)


class _FlatGradient:
    """A loss whose gradient is flattened: (N * K,) instead of the outputs' shape."""
    name = "authoring_flat"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        return 1.0, np.zeros(outputs.size, outputs.dtype)


class _LossPlugin:
    @recurrent.hookimpl
    def register_losses(self, register):
        register(_FlatGradient())


class _MisspeltKind(_FlatGradient):
    name = "authoring_kind"
    target_kind = "dens"


class _KindPlugin:
    @recurrent.hookimpl
    def register_losses(self, register):
        register(_MisspeltKind())


def test_a_loss_with_a_misspelt_target_kind_is_a_broken_plugin():
    """A misspelt target_kind would leave `recurrent train` to run the loss on targets of
    the other kind, as for a loss declaring none: the registry refuses it."""
    assert _broken_line(_KindPlugin()) == ("ValueError: loss 'authoring_kind': target_kind "
                                           "is 'dens', expected one of 'class', 'dense'")
    assert "authoring_kind" not in plugins.losses()


def test_a_loss_returning_a_gradient_of_the_wrong_shape_is_named(tmp_path):
    plugins.register_plugin(_LossPlugin(), NAME)
    try:
        result = train_tiny(tiny_text(tmp_path), tmp_path / "run", "--loss", "authoring_flat")
    finally:
        plugins.unregister_plugin(NAME)
    one_line_error(result, "loss 'authoring_flat' returned a gradient of shape (",
                   "recurrent plugins check authoring_flat")
    assert "internal error" not in result.stderr


class _ContradictingCell(_Cell):
    """A cell whose optional members contradict the others."""

    def __init__(self, name, **members):
        super().__init__(name)
        for member, value in members.items():
            setattr(self, member, value)


class _ContradictingPlugin:
    def __init__(self, cell):
        self.cell = cell

    @recurrent.hookimpl
    def register_cells(self, register):
        register(self.cell)


@pytest.mark.parametrize("members,expected", [
    # --forget-bias would set bias rows H..2H of a cell with H: none, without a word
    ({"gate_order": ("i", "f")}, "ValueError: cell 'authoring_members': gate_order ('i', "
                                 "'f') does not give one letter per gate block (num_gates 1)"),
    # --recurrent-dropout would fail in the layer's call, naming no plugin
    ({"mask_kinds": ("recurrent",)}, "ValueError: cell 'authoring_members' lists mask_kinds "
                                     "('recurrent',), but its forward() takes no masks "
                                     "keyword"),
    # --precision bf16 would fail in the layer's call, naming no plugin
    ({"precisions": ("fp32", "bf16")}, "ValueError: cell 'authoring_members' lists "
                                       "precisions ('fp32', 'bf16'), but its forward() "
                                       "takes no precision keyword (a cell built on a "
                                       "built-in one inherits its precisions: list "
                                       "precisions = ('fp32',) or take the keyword)"),
    ({"precisions": ("fp32", "fp16")}, "ValueError: cell 'authoring_members': precisions "
                                       "('fp32', 'fp16') is not a tuple from ('fp32', "
                                       "'bf16')"),
])
def test_a_cell_whose_optional_members_contradict_the_others_is_a_broken_plugin(members,
                                                                                expected):
    assert _broken_line(_ContradictingPlugin(_ContradictingCell("authoring_members",
                                                                **members))) == expected
    assert "authoring_members" not in plugins.cells()


@pytest.mark.parametrize("members,expected", [
    # a string count trained on without a word, its weights sized by the layer as text
    ({"num_gates": "2"}, "num_gates '2' is not a positive whole number (the gate blocks "
                         "stacked in weight_ih)"),
    ({"num_gates": 0}, "num_gates 0 is not a positive whole number (the gate blocks "
                       "stacked in weight_ih)"),
    # a string's letters read as one state each; a first state other than h is the output
    ({"state_names": "h"}, "state_names 'h' is not a tuple of distinct names starting with "
                           "'h' (the output state), such as ('h',) or ('h', 'c')"),
    ({"state_names": ("c",)}, "state_names ('c',) is not a tuple of distinct names starting "
                              "with 'h' (the output state), such as ('h',) or ('h', 'c')"),
    ({"state_names": ("h", "h")}, "state_names ('h', 'h') is not a tuple of distinct names "
                                  "starting with 'h' (the output state), such as ('h',) or "
                                  "('h', 'c')"),
])
def test_a_cell_whose_gates_or_states_are_malformed_is_a_broken_plugin(members, expected):
    assert _broken_line(_ContradictingPlugin(_ContradictingCell("authoring_shape",
                                                                **members))) == (
        f"ValueError: cell 'authoring_shape': {expected}")
    assert "authoring_shape" not in plugins.cells()


def test_a_cell_taking_masks_as_a_keyword_registers():
    class Masked(_Cell):
        mask_kinds = ("recurrent",)

        def forward(self, x, states, params, lengths, num_threads, masks=None):
            raise NotImplementedError

    assert _broken_line(_ContradictingPlugin(Masked("authoring_masked"))) is None
