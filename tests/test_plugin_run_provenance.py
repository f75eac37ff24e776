"""A run keeps which installed plugin provides its cell, loss and task, so that opening it
where that plugin is gone names the distribution to install in one line."""
import json
import shutil
import sys
import textwrap

import pytest
from helpers import invoke, ok, one_line_error, registered_plugin, tiny_text, train_tiny

from recurrent import plugins

PLUGIN_MODULE = textwrap.dedent("""
    import recurrent
    from recurrent.reference import get_reference_cell

    @recurrent.hookimpl
    def register_cells(register):
        cell = type(get_reference_cell("rnn_tanh"))()  # the reference RNN, renamed
        cell.name = "gone_rnn"
        cell.gate_order = get_reference_cell("rnn_tanh").gate_order
        register(cell)
""")


@pytest.fixture
def gone_distribution(tmp_path, monkeypatch):
    """The distribution 'recurrent-gone' 1.0 (entry point 'gone': a cell 'gone_rnn')
    installed on sys.path, with the process's registry rebuilt to load it; returns a
    function that uninstalls it (its dist-info removed) and rebuilds the registry."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "rec_gone.py").write_text(PLUGIN_MODULE)
    dist = site / "recurrent_gone-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: recurrent-gone\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[recurrent]\ngone = rec_gone\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.delenv("RECURRENT_PLUGINS", raising=False)
    monkeypatch.setattr(plugins, "_registry", plugins.Registry())

    def uninstall():
        shutil.rmtree(dist)
        sys.modules.pop("rec_gone", None)
        monkeypatch.setattr(plugins, "_registry", plugins.Registry())

    yield uninstall
    sys.modules.pop("rec_gone", None)


def test_run_of_an_uninstalled_or_broken_plugin_names_it(gone_distribution, tmp_path,
                                                         monkeypatch):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--cell", "gone_rnn"))
    saved = json.loads((run / "config.json").read_text())["plugins"]
    assert saved == {"cell": {"name": "gone_rnn", "plugin": "gone",
                              "distribution": "recurrent-gone", "version": "1.0"}}
    ok(invoke("eval", run))

    (tmp_path / "site" / "rec_gone.py").write_text("import numpy_that_does_not_exist\n")
    sys.modules.pop("rec_gone", None)
    monkeypatch.setattr(plugins, "_registry", plugins.Registry())
    one_line_error(invoke("eval", run), "this run needs cell 'gone_rnn' of plugin 'gone' "
                                        "(recurrent-gone 1.0), which is broken: "
                                        "ModuleNotFoundError: No module named "
                                        "'numpy_that_does_not_exist'")
    gone_distribution()
    for args in (("eval", run), ("predict", run, "--length", 5),
                 ("train", "--resume", run, "--steps", 3),
                 ("export", run, "--format", "safetensors", "--out", tmp_path / "x.st")):
        one_line_error(invoke(*args), "this run needs cell 'gone_rnn' of plugin 'gone' "
                                      "(recurrent-gone 1.0), which is not installed",
                       "pip install 'recurrent-gone==1.0'")


def test_run_of_a_plugin_turned_off_names_the_variable(gone_distribution, tmp_path,
                                                       monkeypatch):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--cell", "gone_rnn"))
    monkeypatch.setenv("RECURRENT_NO_ENTRYPOINTS", "1")
    monkeypatch.setattr(plugins, "_registry", plugins.Registry())
    one_line_error(invoke("eval", run), "needs cell 'gone_rnn' of plugin 'gone'",
                   "RECURRENT_NO_ENTRYPOINTS is set")
    one_line_error(invoke("train", "char-lm", "--cell", "gone_rnn", "--out", tmp_path / "b"),
                   "unknown cell 'gone_rnn'", "RECURRENT_NO_ENTRYPOINTS is set")


def test_run_of_built_ins_records_no_plugins(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    assert "plugins" not in json.loads((run / "config.json").read_text())


def test_run_of_a_plugin_registered_in_process_names_its_module(tmp_path, monkeypatch):
    """A plugin registered from Python (register_plugin, no entry point) is recorded with
    its module; opening the run in a process that has not registered it says so in one
    line, naming the module."""
    module = tmp_path / "site" / "rec_inproc.py"
    module.parent.mkdir()
    module.write_text(PLUGIN_MODULE.replace("gone_rnn", "inproc_rnn"))
    monkeypatch.syspath_prepend(str(module.parent))
    import rec_inproc
    run = tmp_path / "run"
    try:
        with registered_plugin(rec_inproc, "inproc"):
            ok(train_tiny(tiny_text(tmp_path), run, "--cell", "inproc_rnn"))
            saved = json.loads((run / "config.json").read_text())["plugins"]
            assert saved == {"cell": {"name": "inproc_rnn", "plugin": "inproc",
                                      "module": "rec_inproc", "version": "-"}}
            ok(invoke("eval", run))
    finally:
        sys.modules.pop("rec_inproc", None)
    for args in (("eval", run), ("predict", run, "--length", 5),
                 ("train", "--resume", run, "--steps", 3),
                 ("export", run, "--format", "safetensors", "--out", tmp_path / "x.st")):
        one_line_error(invoke(*args), "this run needs cell 'inproc_rnn' of plugin 'inproc' "
                                      "(registered in-process from module 'rec_inproc'), "
                                      "which this process has not registered")
