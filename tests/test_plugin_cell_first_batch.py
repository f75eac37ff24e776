"""A third-party cell that fails in training is named on the task's first training batch,
before the run directory exists: an exception of any type raised in its forward or its
backward, and outputs holding NaN from finite inputs. A cell whose forward, infer or
backward cannot take the arguments layers pass is refused when it registers."""
import importlib
import sys

import pytest
from helpers import invoke, one_line_error, tiny_text

from recurrent import plugins

CELL = '''import numpy as np
import recurrent
from recurrent.reference import GRUCell


class Broken(GRUCell):
    name = "broken"
    mask_kinds = ()

    def __init__(self):
        self.gate_order = ("r", "z", "n")

{body}


@recurrent.hookimpl
def register_cells(register):
    register(Broken())
'''

BODIES = {
    "forward": '''    def forward(self, x, states, params, lengths, num_threads=1):
        raise IndexError("index 7 is out of bounds for axis 0 with size 4")''',
    "backward": '''    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        raise KeyError("dA")''',
    "nan": '''    def forward(self, x, states, params, lengths, num_threads=1):
        out, finals, cache = super().forward(x, states, params, lengths, num_threads)
        return out * np.nan, finals, cache

    def infer(self, x, states, params, lengths, num_threads=1):
        return self.forward(x, states, params, lengths, num_threads)[:2]''',
    "signature": '''    def backward(self, d_out, d_final_states, cache, grads):
        return super().backward(d_out, d_final_states, cache, grads, 1)''',
}


@pytest.fixture
def broken_cell(tmp_path, monkeypatch, request):
    """The plugin "broken-cell" registering cell 'broken', whose body is BODIES[param]."""
    package = tmp_path / "src" / "broken_cell"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(CELL.format(body=BODIES[request.param]))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    plugins.register_plugin(importlib.import_module("broken_cell"), "broken-cell",
                            version="0.3")
    try:
        yield
    finally:
        plugins.unregister_plugin("broken-cell")
        sys.modules.pop("broken_cell", None)


def _train(tmp_path):
    return invoke("train", "char-lm", "--data", tiny_text(tmp_path), "--cell", "broken",
                  "--hidden", 8, "--steps", 1, "--threads", 1, "--no-plot", "--out", "run")


@pytest.mark.parametrize("broken_cell, problem", [
    ("forward", "IndexError: index 7 is out of bounds for axis 0 with size 4"),
    ("backward", "KeyError: 'dA'"),
    ("nan", "its outputs hold NaN or inf, from finite inputs")], indirect=["broken_cell"])
def test_a_failing_plugin_cell_is_named_before_the_run_directory(broken_cell, tmp_path,
                                                                  problem):
    result = _train(tmp_path)
    one_line_error(result, "cell 'broken' (plugin broken-cell 0.3) failed on task "
                           "'char-lm''s first training batch: " + problem,
                   "recurrent plugins check broken")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("broken_cell", ["signature"], indirect=True)
def test_a_cell_method_of_another_arity_is_refused_when_it_registers(broken_cell, tmp_path):
    assert "broken" not in plugins.cells()
    assert plugins.broken_plugins()["broken-cell"] == (
        "ValueError: cell 'broken': backward(d_out, d_final_states, cache, grads) cannot "
        "take the five arguments layers pass it (d_out, d_final_states, cache, grads, "
        "num_threads: recurrent.protocols.Cell)")
    result = _train(tmp_path)
    one_line_error(result, "cell 'broken' is unavailable: plugin 'broken-cell' is broken: "
                           "ValueError: cell 'broken': backward(d_out, d_final_states, "
                           "cache, grads) cannot take the five arguments")
    assert not (tmp_path / "run").exists()
