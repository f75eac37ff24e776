"""Plugins that fail in ways an `except Exception` misses or a first line hides: a module
that exits at import (sys.exit, or argparse in a script-style module), and a pluggy
PluginValidationError whose reason is on its last line; and entry points that register
nothing (a module without hooks, a hook function named instead of its module). Each is
listed as broken, in one line, and every command keeps working."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import recurrent
from recurrent import plugins
from recurrent.errors import UserError

MODULES = {
    # a script: argparse at import, with the CLI's own arguments in sys.argv
    "rec_fake_scriptish": """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--size", type=int, default=3)
        args = parser.parse_args()
    """,
    "rec_fake_exits": 'import sys\nsys.exit("plugin exiting")\n',
    "rec_fake_argname": """
        import recurrent

        @recurrent.hookimpl
        def register_cells(registry):
            pass
    """,
    "rec_fake_fine": """
        import numpy as np
        import recurrent

        class Fine:
            name = "fake_fine_loss"
            def value_and_grad(self, outputs, targets, mask=None):
                return 0.0, np.zeros_like(outputs)

        @recurrent.hookimpl
        def register_losses(register):
            register(Fine())
    """,
    "rec_fake_interrupted": "raise KeyboardInterrupt\n",
    # a task's own module named by the entry point instead of the module registering it
    "rec_fake_hookless": """
        class Task:
            name = "hookless_task"
    """,
}
ENTRY_POINTS = {"scriptish": "rec_fake_scriptish", "exits": "rec_fake_exits",
                "argname": "rec_fake_argname", "fine": "rec_fake_fine"}
REASON = ("Argument(s) {'registry'} are declared in the hookimpl but can not be found in "
          "the hookspec")


def _site(root, entry_points):
    """A directory with the MODULES and a dist-info 'recurrent-broken' 0.1 declaring
    ``entry_points`` (name -> module) in the "recurrent" group."""
    for name, text in MODULES.items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))
    dist = root / "recurrent_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: recurrent-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[recurrent]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return root


@pytest.fixture
def broken_distribution(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_site(tmp_path, ENTRY_POINTS)))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.delenv("RECURRENT_PLUGINS", raising=False)
    monkeypatch.setattr(sys, "argv", ["recurrent", "plugins"])  # argparse: unknown argument
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


def test_a_plugin_exiting_at_import_is_broken_not_fatal(broken_distribution, capsys):
    registry = plugins.Registry(default_plugins=("recurrent_plugins.losses",))
    assert {"fake_fine_loss", "mse"} <= set(registry.entries("loss"))  # the rest works
    assert registry.broken["scriptish"] == (
        "SystemExit: the module exited while being imported (exit code 2); a plugin must "
        "not run code such as argparse or sys.exit() at import")
    assert registry.broken["exits"] == (
        "SystemExit: the module exited while being imported (plugin exiting); a plugin "
        "must not run code such as argparse or sys.exit() at import")
    assert not registry.pm.has_plugin("scriptish") and not registry.pm.has_plugin("exits")


def test_a_builtin_exiting_at_import_is_broken_not_fatal(broken_distribution):
    registry = plugins.Registry(default_plugins=("rec_fake_exits", "recurrent_plugins.losses"))
    assert "mse" in registry.entries("loss")
    assert registry.broken["rec_fake_exits"].startswith(
        "SystemExit: the module exited while being imported (plugin exiting)")


def test_ctrl_c_during_a_plugin_import_still_stops(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_site(tmp_path, {"interrupted": "rec_fake_interrupted"})))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.setenv("RECURRENT_PLUGINS", "interrupted")
    try:
        with pytest.raises(KeyboardInterrupt):
            plugins.Registry(default_plugins=()).load()
        with pytest.raises(KeyboardInterrupt):
            plugins.Registry(default_plugins=("rec_fake_interrupted",)).load()
    finally:
        sys.modules.pop("rec_fake_interrupted", None)


def test_a_hookimpl_argument_missing_from_the_hookspec_keeps_its_reason(broken_distribution):
    registry = plugins.Registry(default_plugins=())
    registry.load()
    line = registry.broken["argname"]
    assert "\n" not in line
    assert line.startswith("PluginValidationError: Plugin 'argname' for hook 'register_cells'")
    assert line.endswith(REASON)
    assert "register_cells(registry)" in line  # pluggy's "hookimpl definition" line too


def test_register_plugin_with_a_wrong_hook_argument_says_why():
    class WrongArgument:
        @recurrent.hookimpl
        def register_losses(self, registry):
            pass

    registry = plugins.Registry(default_plugins=())
    with pytest.raises(UserError) as caught:
        registry.register_plugin(WrongArgument(), "wrong-argument")
    message = str(caught.value)
    assert message.startswith("plugin 'wrong-argument' cannot be registered: "
                              "PluginValidationError: Plugin 'wrong-argument' for hook "
                              "'register_losses'")
    assert message.endswith(REASON) and "\n" not in message


def test_every_command_survives_a_script_style_plugin(tmp_path):
    """The reported case end to end: `recurrent plugins` with an installed script-style
    plugin used to print argparse's usage and exit 2."""
    (tmp_path / "site").mkdir()
    site = _site(tmp_path / "site", ENTRY_POINTS)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECURRENT_NO_ENTRYPOINTS", "RECURRENT_PLUGINS")}
    env.update(PYTHONPATH=str(site), PYTHONSAFEPATH="1",
               RECURRENT_PLUGINS="scriptish,exits,argname")
    result = subprocess.run([sys.executable, "-m", "recurrent", "plugins", "--json"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    broken = {row["plugin"]: row["error"] for row in json.loads(result.stdout)["broken"]}
    assert set(broken) == {"scriptish", "exits", "argname"}
    assert broken["scriptish"].startswith("SystemExit: the module exited while being imported")
    assert broken["argname"].endswith(REASON)


def test_an_entry_point_without_hooks_is_listed_as_registering_nothing(tmp_path,
                                                                       monkeypatch):
    """An entry point naming a module without @recurrent.hookimpl functions would add
    nothing without a word: it is listed as broken, saying so."""
    monkeypatch.syspath_prepend(str(_site(tmp_path, {"hookless": "rec_fake_hookless",
                                                     "fine": "rec_fake_fine"})))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.delenv("RECURRENT_PLUGINS", raising=False)
    try:
        registry = plugins.Registry(default_plugins=())
        assert "fake_fine_loss" in registry.entries("loss")
        assert registry.broken["hookless"] == (
            "entry point 'rec_fake_hookless' registers nothing: it has no "
            "@recurrent.hookimpl function (register_cells, register_losses, "
            "register_tasks, register_commands)")
        assert not registry.pm.has_plugin("hookless")
    finally:
        for name in MODULES:
            sys.modules.pop(name, None)


def test_an_entry_point_naming_a_hook_function_says_to_name_its_module(tmp_path, monkeypatch):
    """`function = "rec_fake_fine:register_losses"` loads the hook function itself, whose
    module holds the hooks: the line names the module to declare instead, rather than
    saying the hook it points at is none."""
    monkeypatch.syspath_prepend(str(_site(tmp_path, {
        "function": "rec_fake_fine:register_losses"})))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.delenv("RECURRENT_PLUGINS", raising=False)
    try:
        registry = plugins.Registry(default_plugins=())
        assert "fake_fine_loss" not in registry.entries("loss")
        assert registry.broken["function"] == (
            "entry point 'rec_fake_fine:register_losses' registers nothing: it names the "
            "function register_losses, not the module holding the hooks: declare "
            "function = \"rec_fake_fine\"")
    finally:
        for name in MODULES:
            sys.modules.pop(name, None)
