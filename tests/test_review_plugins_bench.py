"""Plugins that break a documented contract are caught (conformance kit, registry), and
`recurrent bench` keeps working beside a plugin that prints."""
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import recurrent
from recurrent import conformance, plugins
from recurrent.protocols import MEMBERS, Task, missing_members
from recurrent.reference import LSTMCell

FLOAT32 = "float32 agrees with float64"
THREADS = "threads: 1 and 2 agree"
MASKED = "mask: masked rows ignored"


def failures(results):
    return {r.name: r.detail for r in results if not r.passed}


# ---- cells ------------------------------------------------------------------------------

class Float32WeightGradOff(LSTMCell):
    """float32 backward adds weight_hh's gradient twice (float64, and dx, are right)."""

    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        before = grads["weight_hh"].copy()
        result = super().backward(d_out, d_final_states, cache, grads, num_threads)
        if d_out.dtype == np.float32:
            grads["weight_hh"] += grads["weight_hh"] - before
        return result


class RemainderRowDropped(LSTMCell):
    """On > 1 thread, the rows past the last whole slice (B % threads) get no dx: a row
    split that forgets the remainder."""

    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        dx, d_states = super().backward(d_out, d_final_states, cache, grads, num_threads)
        B = dx.shape[1]
        if num_threads > 1 and B % num_threads:
            dx[:, num_threads * (B // num_threads):] = 0
        return dx, d_states


def test_float32_check_compares_every_gradient_not_just_dx():
    failed = failures(conformance.check_cell(Float32WeightGradOff()))
    assert set(failed) == {FLOAT32}
    assert "weight_hh" in failed[FLOAT32]


def test_threads_check_catches_a_row_split_that_drops_the_remainder():
    failed = failures(conformance.check_cell(RemainderRowDropped()))
    assert set(failed) == {THREADS}
    assert "(dx, float64, 15 rows)" in failed[THREADS]


# ---- losses -----------------------------------------------------------------------------

class RangeCheckedCrossEntropy:
    """Softmax cross-entropy that checks every class id, the padded ones too."""
    name = "range_checked_ce"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        K = outputs.shape[-1]
        x, t = outputs.reshape(-1, K), np.asarray(targets).reshape(-1)
        if t.min() < 0 or t.max() >= K:
            raise ValueError(f"class ids must lie in [0, {K})")
        w = np.ones(len(t)) if mask is None else np.asarray(mask).reshape(-1).astype(float)
        z = x - x.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        n, rows = w.sum(), np.arange(len(t))
        grad = np.exp(log_p)
        grad[rows, t] -= 1
        grad *= (w / n)[:, None]
        return float(-(log_p[rows, t] * w).sum() / n), grad.astype(outputs.dtype).reshape(outputs.shape)


class WeightedMSE:
    """Mean squared error with the mask multiplied in as 0/1 weights: NaN padding leaks."""
    name = "weighted_mse"
    target_kind = "dense"

    def value_and_grad(self, outputs, targets, mask=None):
        K = outputs.shape[-1]
        x, y = outputs.reshape(-1, K), np.asarray(targets).reshape(-1, K)
        w = np.ones(len(x)) if mask is None else np.asarray(mask).reshape(-1).astype(float)
        d = (x - y) * w[:, None]
        n = w.sum() * K
        return float((d ** 2).sum() / n), (2 * d / n).astype(outputs.dtype).reshape(outputs.shape)


@pytest.mark.parametrize("loss", [RangeCheckedCrossEntropy(), WeightedMSE()])
def test_loss_check_fills_masked_targets_with_padding(loss):
    # recurrent.protocols.Loss: masked positions may hold any target (e.g. -1 padding)
    assert set(failures(conformance.check_loss(loss))) == {MASKED}
    built_in = failures(conformance.check_loss(plugins.get_loss(
        "cross_entropy" if loss.target_kind == "class" else "mse")))
    assert built_in == {}


# ---- tasks ------------------------------------------------------------------------------

def test_a_task_with_trained_params_but_no_with_params_is_refused():
    bare = {n: None for n in MEMBERS[Task].required}
    task = types.SimpleNamespace(**bare, trained_params=lambda state, config: {})
    task.name = "no-with-params"
    assert missing_members(task, Task) == ["with_params (needed with trained_params)"]
    assert missing_members(types.SimpleNamespace(**bare, trained_params=None,
                                                 with_params=None), Task) == []

    class Plugin:
        @recurrent.hookimpl
        def register_tasks(self, register):
            register(task)

    plugins.register_plugin(Plugin(), "review-no-with-params")
    try:
        assert "no-with-params" not in plugins.tasks()
        assert "lacks with_params (needed with trained_params)" in \
            plugins.broken_plugins()["review-no-with-params"]
    finally:
        plugins.unregister_plugin("review-no-with-params")


# ---- entry points -----------------------------------------------------------------------

def _distribution(site, dist, module, entry_name, source):
    """An installed-looking distribution under ``site``: the module and its dist-info."""
    (site / module).mkdir()
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[recurrent]\n{entry_name} = {module}\n")


CELL_PLUGIN = """
    import recurrent
    from recurrent.reference import LSTMCell

    class Cell(LSTMCell):
        name = {name!r}

        def __init__(self):
            self.gate_order = ("i", "f", "g", "o")

    {extra}
    @recurrent.hookimpl
    def register_cells(register):
        register(Cell())
"""


def test_two_distributions_claiming_one_entry_point_name_are_reported(tmp_path, monkeypatch):
    for dist in ("alpha", "beta"):
        _distribution(tmp_path, f"review-{dist}", f"review_same_{dist}", "review-same",
                      CELL_PLUGIN.format(name=f"review_cell_{dist}", extra=""))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.setenv("RECURRENT_PLUGINS", "review-same")
    registry = plugins.Registry(default_plugins=())
    cells = registry.entries("cell")
    assert len(cells) == 1  # the first distribution found loads
    loaded = next(iter(cells))[len("review_cell_"):]
    other = "beta" if loaded == "alpha" else "alpha"
    assert registry.broken == {
        f"review-same (review-{other})":
            f"entry point name 'review-same' is already taken by distribution "
            f"'review-{loaded}'; this distribution's plugin is not loaded"}


# ---- bench ------------------------------------------------------------------------------

def test_bench_works_beside_a_plugin_that_prints_to_stdout(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _distribution(site, "review-noisy", "review_noisy", "review-noisy",
                  CELL_PLUGIN.format(name="review_noisy_lstm",
                                     extra='print("review_noisy imported")'))
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONSAFEPATH="1", PYTHONPATH=str(site),
               RECURRENT_PLUGINS="review-noisy", RECURRENT_TUNE="off")
    env.pop("RECURRENT_NO_ENTRYPOINTS", None)
    run = subprocess.run(
        [sys.executable, "-c", "from recurrent.cli import main; main()", "bench", "--cell", "review_noisy_lstm",
         "--config", "2,2,3,4", "--threads", "1", "--vs", "none", "--repeats", "1",
         "--rounds", "1", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["cell"], r["threads"]) for r in rows] == [("review_noisy_lstm", 1)]
    assert "review_noisy imported" in run.stderr  # the child's print, moved out of the rows
