"""The plugin registry: built-ins, throwaway plugins, broken plugins, entry points, env vars,
and the `plugins` / `info` commands."""
import json
import sys
import textwrap

import click
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import expected_int8_path

import recurrent
from recurrent import plugins
from recurrent.cli_plugins import info_command, plugins_group
from recurrent.errors import UserError
from recurrent.reference import get_reference_cell


class Named:
    """A minimal loss: mean of outputs, for registry tests that never train."""

    def __init__(self, name):
        self.name = name

    def value_and_grad(self, outputs, targets, mask=None):
        return float(np.mean(outputs)), np.full(outputs.shape, 1.0 / outputs.size)


class LossPlugin:
    def __init__(self, *names):
        self.names = names

    @recurrent.hookimpl
    def register_losses(self, register):
        for name in self.names:
            register(Named(name))


class CellPlugin:
    @recurrent.hookimpl
    def register_cells(self, register):
        register(_renamed_reference_cell("lstm", "test_lstm_copy"))


def _renamed_reference_cell(base, name):
    cell = type(get_reference_cell(base))()
    cell.name = name
    cell.gate_order = get_reference_cell(base).gate_order
    return cell


def test_builtin_losses_registered_with_provider():
    entries = plugins.entries("loss")
    assert {"cross_entropy", "binary_cross_entropy", "mse", "mae"} <= set(entries)
    entry = entries["mse"]
    assert entry.plugin == "recurrent_plugins.losses"
    assert entry.version == recurrent.__version__
    assert plugins.get_loss("mse") is entry.obj


@pytest.mark.parametrize("getter,kind", [(plugins.get_cell, "cell"), (plugins.get_loss, "loss"),
                                         (plugins.get_task, "task")])
def test_unknown_name_lists_known(getter, kind):
    known = sorted(plugins.entries(kind))
    with pytest.raises(UserError, match=f"unknown {kind} 'no_such_thing'; known ") as info:
        getter("no_such_thing")
    message = str(info.value)
    assert "\n" not in message
    assert ", ".join(known) in message


def test_throwaway_plugin_registered_and_unregistered():
    plugins.register_plugin(CellPlugin(), "throwaway-cells", version="9.9")
    try:
        cell = plugins.get_cell("test_lstm_copy")
        assert cell.num_gates == 4
        entry = plugins.entries("cell")["test_lstm_copy"]
        assert (entry.plugin, entry.version) == ("throwaway-cells", "9.9")
        assert plugins.plugin_versions()["throwaway-cells"] == "9.9"
        # the registered cell works in a layer like any other (when layers exist)
        from recurrent import layers
        layer = layers.Recurrent("test_lstm_copy", 2, 3, seed=0, dtype=np.float64)
        out, _ = layer(np.ones((2, 1, 2)))
        assert out.shape == (2, 1, 3)
    finally:
        plugins.unregister_plugin("throwaway-cells")
    assert "test_lstm_copy" not in plugins.cells()
    assert "throwaway-cells" not in plugins.plugin_versions()


def test_lookups_are_cached_until_the_plugin_set_changes():
    first = plugins.entries("loss")
    assert plugins.entries("loss") is first
    plugins.register_plugin(LossPlugin("cache_probe"), "cache-probe")
    try:
        assert "cache_probe" in plugins.entries("loss")
    finally:
        plugins.unregister_plugin("cache-probe")
    assert "cache_probe" not in plugins.entries("loss")


def test_name_clash_marks_only_the_newcomer_broken():
    plugins.register_plugin(LossPlugin("clash_fresh_name", "mse"), "clasher")
    try:
        losses = plugins.losses()
        assert losses["mse"] is plugins.entries("loss")["mse"].obj
        assert plugins.entries("loss")["mse"].plugin == "recurrent_plugins.losses"
        # a broken plugin contributes nothing, not even its non-clashing names
        assert "clash_fresh_name" not in losses
        error = plugins.broken_plugins()["clasher"]
        assert "'mse' is already taken by plugin 'recurrent_plugins.losses'" in error
        with pytest.raises(UserError, match="broken plugins: .*clasher"):
            plugins.get_loss("clash_fresh_name")
    finally:
        plugins.unregister_plugin("clasher")
    assert "clasher" not in plugins.broken_plugins()


def test_hook_that_raises_is_broken_and_isolated():
    class Exploding:
        @recurrent.hookimpl
        def register_losses(self, register):
            register(Named("half_registered"))
            raise RuntimeError("disk on fire\nsecond line never shown")

    plugins.register_plugin(Exploding(), "exploding")
    try:
        assert "half_registered" not in plugins.losses()
        assert "mse" in plugins.losses()
        assert plugins.broken_plugins()["exploding"] == "RuntimeError: disk on fire"
    finally:
        plugins.unregister_plugin("exploding")


def test_malformed_object_is_broken():
    class Incomplete:
        @recurrent.hookimpl
        def register_cells(self, register):
            cell = _renamed_reference_cell("gru", "incomplete")
            register(type("Partial", (), {"name": "incomplete", "num_gates": 3,
                                           "forward": cell.forward})())

    plugins.register_plugin(Incomplete(), "incomplete-plugin")
    try:
        assert "incomplete" not in plugins.cells()
        assert "lacks state_names, param_shapes, init_params, backward" in \
            plugins.broken_plugins()["incomplete-plugin"]
    finally:
        plugins.unregister_plugin("incomplete-plugin")


def test_misspelled_hook_is_refused():
    class Typo:
        @recurrent.hookimpl
        def register_loss(self, register):  # missing "es"
            register(Named("typo_loss"))

    with pytest.raises(UserError, match="unknown hook register_loss; known hooks: register_cells"):
        plugins.register_plugin(Typo(), "typo")
    assert "typo" not in plugins.plugin_versions()
    assert "typo" not in plugins.broken_plugins()


def test_undecorated_hook_is_refused():
    class Forgot:
        def register_losses(self, register):
            register(Named("forgot_loss"))

    with pytest.raises(UserError, match="register_losses lacks the @recurrent.hookimpl decorator"):
        plugins.register_plugin(Forgot(), "forgot")
    assert "forgot_loss" not in plugins.losses()


def test_duplicate_plugin_name_is_refused():
    plugins.register_plugin(LossPlugin("dup_a"), "dup")
    try:
        with pytest.raises(UserError, match="'dup' is already registered"):
            plugins.register_plugin(LossPlugin("dup_b"), "dup")
        assert "dup_a" in plugins.losses()
    finally:
        plugins.unregister_plugin("dup")


# ---- commands ---------------------------------------------------------------------------

def _root_with_train():
    @click.group()
    def root():
        pass

    @root.command("train")
    def train():
        click.echo("core train")
    return root


def test_register_commands_isolates_failures():
    class Good:
        @recurrent.hookimpl
        def register_commands(self, cli):
            @cli.command("hello-test")
            def hello():
                click.echo("hello from a plugin")

    class Squatter:
        @recurrent.hookimpl
        def register_commands(self, cli):
            @cli.command("train")
            def train():
                click.echo("hijacked")

    class Crasher:
        @recurrent.hookimpl
        def register_commands(self, cli):
            raise ImportError("needs a package that is not installed")

    root = _root_with_train()
    registry = plugins.Registry(default_plugins=())
    registry.register_plugin(Good(), "good")
    registry.register_plugin(Squatter(), "squatter")
    registry.register_plugin(Crasher(), "crasher")
    assert set(registry.entries("command")) == {"hello-test", "train"}  # crasher already out
    registry.register_commands(root)
    runner = CliRunner()
    assert runner.invoke(root, ["train"]).output == "core train\n"
    assert runner.invoke(root, ["hello-test"]).output == "hello from a plugin\n"
    assert registry.broken == {"squatter": "ValueError: command name train is already taken",
                               "crasher": "ImportError: needs a package that is not installed"}
    assert set(registry.entries("command")) == {"hello-test"}


# ---- entry points and environment variables ---------------------------------------------

@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution 'recurrent-fake' 1.2.3 with three entry points: a working
    plugin, one that fails to import, and one with a misspelled hook."""
    (tmp_path / "rec_fake_good.py").write_text(textwrap.dedent("""
        import numpy as np
        import recurrent

        class Huberish:
            name = "fake_loss"
            def value_and_grad(self, outputs, targets, mask=None):
                return 0.0, np.zeros_like(outputs)

        @recurrent.hookimpl
        def register_losses(register):
            register(Huberish())
    """))
    (tmp_path / "rec_fake_bad_import.py").write_text("import numpy_that_does_not_exist\n")
    (tmp_path / "rec_fake_typo.py").write_text(textwrap.dedent("""
        import recurrent

        @recurrent.hookimpl
        def register_cell(register):
            pass
    """))
    dist = tmp_path / "recurrent_fake-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: recurrent-fake\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        "[recurrent]\ngood = rec_fake_good\nbad-import = rec_fake_bad_import\n"
        "typo = rec_fake_typo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.delenv("RECURRENT_PLUGINS", raising=False)
    yield
    for name in ("rec_fake_good", "rec_fake_bad_import", "rec_fake_typo"):
        sys.modules.pop(name, None)


def test_entry_points_load_with_versions_and_broken_ones_reported(fake_distribution):
    registry = plugins.Registry(default_plugins=("recurrent_plugins.losses",))
    entry = registry.entries("loss")["fake_loss"]
    assert (entry.plugin, entry.version) == ("good", "1.2.3")
    assert "mse" in registry.entries("loss")
    assert registry.broken["bad-import"] == \
        "ModuleNotFoundError: No module named 'numpy_that_does_not_exist'"
    assert registry.broken["typo"].startswith("unknown hook register_cell;")
    assert not registry.pm.has_plugin("typo")


def test_no_entrypoints_env_turns_autoload_off(fake_distribution, monkeypatch):
    monkeypatch.setenv("RECURRENT_NO_ENTRYPOINTS", "1")
    registry = plugins.Registry(default_plugins=("recurrent_plugins.losses",))
    assert "fake_loss" not in registry.entries("loss")
    assert registry.broken == {}


def test_allow_list_env_loads_only_named_entry_points(fake_distribution, monkeypatch):
    monkeypatch.setenv("RECURRENT_PLUGINS", "good, typo")
    registry = plugins.Registry(default_plugins=())
    assert set(registry.entries("loss")) == {"fake_loss"}
    assert set(registry.broken) == {"typo"}  # bad-import was never tried


def test_broken_builtin_does_not_take_the_rest_down():
    registry = plugins.Registry(default_plugins=("recurrent_plugins.losses",
                                                 "recurrent_plugins.no_such_module"))
    assert "mse" in registry.entries("loss")
    assert registry.broken == {
        "recurrent_plugins.no_such_module": "ModuleNotFoundError: No module named "
                                            "'recurrent_plugins.no_such_module'"}


# ---- `recurrent plugins` and `recurrent info` -------------------------------------------

def test_plugins_command_lists_everything_as_json():
    plugins.register_plugin(LossPlugin("listed_loss", "mse"), "listed-broken")
    try:
        result = CliRunner().invoke(plugins_group, ["--json"])
        assert result.exit_code == 0, result.output
        listing = json.loads(result.output)
    finally:
        plugins.unregister_plugin("listed-broken")
    assert set(listing) == {"cells", "losses", "tasks", "commands", "broken"}
    mse = next(row for row in listing["losses"] if row["name"] == "mse")
    assert mse == {"name": "mse", "plugin": "recurrent_plugins.losses",
                   "version": recurrent.__version__, "help": "Mean squared error."}
    assert {"plugin": "listed-broken", "error": "ValueError: loss name 'mse' is already taken "
            "by plugin 'recurrent_plugins.losses'"} in listing["broken"]


def test_plugins_json_gives_each_summary_whole_and_the_table_shortens_it():
    # seq2seq's summary is longer than the table's help column
    summary = plugins.get_task("seq2seq").help
    assert len(summary) > 60
    listing = json.loads(CliRunner().invoke(plugins_group, ["--json"]).output)
    row = next(row for row in listing["tasks"] if row["name"] == "seq2seq")
    assert row["help"] == summary
    table = CliRunner().invoke(plugins_group, []).output
    shown = next(line for line in table.splitlines() if line.split()[:1] == ["seq2seq"])
    assert shown.rstrip().endswith("...") and summary not in shown


def test_plugins_command_table_and_core_commands():
    root = _root_with_train()
    root.add_command(plugins_group)
    result = CliRunner().invoke(root, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Cells:"
    assert any(line.split()[:3] == ["cross_entropy", "recurrent_plugins.losses",
                                    recurrent.__version__] for line in lines)
    # commands the framework defines are listed as provided by recurrent itself
    assert any(line.split()[:2] == ["train", "recurrent"] for line in lines)
    assert any(line.split()[:2] == ["plugins", "recurrent"] for line in lines)


def test_info_command_reports_versions_and_blas():
    result = CliRunner().invoke(info_command, ["--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["recurrent"] == recurrent.__version__
    assert info["numpy"] == np.__version__
    assert info["openmp"] in (True, False, None)
    assert info["blas"], "numpy and scipy link a BLAS that threadpoolctl should see"
    assert {"internal_api", "architecture", "num_threads"} <= set(info["blas"][0])
    from recurrent._kernels import activations
    assert info["int8"] == expected_int8_path(activations.vector_level())
    text = CliRunner().invoke(info_command, [])
    assert text.exit_code == 0
    assert text.output.startswith(f"recurrent   {recurrent.__version__}")
    assert "blas        " in text.output
    assert "int8        inference products: " in text.output


def test_info_names_the_portable_int8_path_without_blaming_the_cpu():
    """RECURRENT_VECTOR_LEVEL=portable runs the portable int8 products on any CPU, one
    with AVX2 too: info says AVX2 is not in use, not that the CPU lacks it."""
    import subprocess
    from helpers import installed_env
    done = subprocess.run([sys.executable, "-m", "recurrent", "info"], capture_output=True,
                          text=True, timeout=120,
                          env=installed_env(RECURRENT_VECTOR_LEVEL="portable"))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("int8 ")]
    assert lines == ["int8        inference products: portable C, exact int32 sums (no AVX2 "
                     "in use)"], done.stdout


def test_hook_wrapper_is_broken():
    class Wrapper:
        @recurrent.hookimpl(wrapper=True)
        def register_losses(self, register):
            register(Named("wrapped_loss"))
            return (yield)

    plugins.register_plugin(Wrapper(), "wrapper")
    try:
        assert "wrapped_loss" not in plugins.losses()
        assert "cannot be a hook wrapper" in plugins.broken_plugins()["wrapper"]
    finally:
        plugins.unregister_plugin("wrapper")


@pytest.mark.parametrize("name", ["soft,sign", "my/task", "two words", "-dash", "_under",
                                  "back\\slash", ""])
def test_a_name_that_cannot_be_typed_marks_the_plugin_broken(name):
    """A loss named "soft,sign" could not be given to `bench --cell a,b`-style lists, a
    task "my/task" breaks its default run directory, one beginning with "-" reads as an
    option: the registry refuses such names when the plugin registers."""
    plugins.register_plugin(LossPlugin(name), "odd-namer")
    try:
        assert name not in plugins.entries("loss")
        error = plugins.broken_plugins()["odd-namer"]
        assert ("is not one to type" in error if name
                else "without a string name" in error), error
    finally:
        plugins.unregister_plugin("odd-namer")


@pytest.mark.parametrize("name", ["huber2", "ln_lstm", "char-lm", "v1.2", "\u00e9t\u00e9"])
def test_names_of_letters_digits_underscores_dashes_and_dots_register(name):
    plugins.register_plugin(LossPlugin(name), "fine-namer")
    try:
        assert name in plugins.entries("loss")
    finally:
        plugins.unregister_plugin("fine-namer")
