"""The conformance kit checks what training really hands a cell or loss: sequence outputs
(T, B, K) for losses, gradients on 2 threads that the kernels really split, and `recurrent
plugins check NAME` says why a name a broken plugin registered is missing."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import registered_plugin

import recurrent
from recurrent import conformance, plugins
from recurrent.cli_plugins import plugins_group
from recurrent.reference import GRUCell, LSTMCell

SEQUENCE = "sequence outputs (T, B, K)"
THREADS = "threads: 1 and 2 agree"


def failures(results):
    return {r.name: r.detail for r in results if not r.passed}


# ---- losses: (T, B, K) outputs, (T, B) targets and mask ---------------------------------

class TwoDimCE:
    """A cross-entropy written to the old protocol text: outputs (N, K) only."""

    name = "two_dim_ce"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        N, K = outputs.shape
        valid = np.ones(N, bool) if mask is None else np.asarray(mask) != 0
        z = outputs - outputs.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - lse[:, None])
        t = np.where(valid, targets, 0)
        n = max(1, int(valid.sum()))
        value = float((lse - z[np.arange(N), t])[valid].sum() / n)
        g = p.copy()
        g[np.arange(N), t] -= 1
        g[~valid] = 0
        return value, (g / n).astype(outputs.dtype)


class FlatGradientMSE:
    """Takes (..., K) but hands the gradient back flattened to (N, K)."""

    name = "flat_gradient_mse"
    target_kind = "dense"

    def value_and_grad(self, outputs, targets, mask=None):
        value, grad = plugins.get_loss("mse").value_and_grad(outputs, targets, mask)
        return value, grad.reshape(-1, outputs.shape[-1])


class BatchMeanMSE:
    """Divides by the batch rows outputs.shape[-2]: right for (N, K), T times too much
    for (T, B, K). Masks are right (their count is the divisor)."""

    name = "batch_mean_mse"
    target_kind = "dense"

    def value_and_grad(self, outputs, targets, mask=None):
        diff = outputs - targets
        keep = np.ones(outputs.shape[:-1], bool) if mask is None else np.asarray(mask) != 0
        n = outputs.shape[-2] if mask is None else int(keep.sum())
        diff = np.where(keep[..., None], diff, 0.0)
        K = outputs.shape[-1]
        return float(np.sum(diff ** 2) / (n * K)), (2 * diff / (n * K)).astype(outputs.dtype)


def test_kit_fails_a_loss_that_takes_2d_outputs_only():
    # passed every check before: 8/8, then failed `recurrent train char-lm --loss ...`
    results = conformance.check_loss(TwoDimCE())
    failed = failures(results)
    assert set(failed) == {SEQUENCE}
    detail = failed[SEQUENCE]
    assert detail.startswith("(3, 2, 4) outputs, (3, 2) targets: raised ValueError: too many "
                             "values to unpack")
    assert "(every case)" in detail and "recurrent.protocols.Loss" in detail
    # the 2-D checks still pass: it is right on the rows it can take
    assert {"gradient", "gradient with mask", "mean over valid rows"} <= \
        {r.name for r in results if r.passed}


def test_kit_fails_a_flattened_gradient_and_a_mean_over_the_wrong_axis():
    flat = failures(conformance.check_loss(FlatGradientMSE()))
    assert set(flat) == {SEQUENCE}
    assert "gradient float64 (6, 4) for (3, 2, 4) outputs (float64, no mask; float64, (T, B) " \
           "mask)" in flat[SEQUENCE]
    wrong_mean = failures(conformance.check_loss(BatchMeanMSE()))
    assert set(wrong_mean) == {SEQUENCE}
    assert "differs from the flattened (6, 4) call's by" in wrong_mean[SEQUENCE]
    assert "(float64, no mask; float32, no mask)" in wrong_mean[SEQUENCE]  # masks are right


@pytest.mark.parametrize("name", ("cross_entropy", "binary_cross_entropy", "mse", "mae"))
def test_builtin_losses_pass_the_sequence_check_as_training_calls_them(name):
    from recurrent.lengths import valid_mask

    loss = plugins.get_loss(name)
    result = {r.name: r for r in conformance.check_loss(loss)}[SEQUENCE]
    assert result.passed, result.detail
    # and exactly the call of recurrent/step.py: float32 (T, B, K), a (T, B) bool mask
    rng = np.random.default_rng(0)
    T, B, K = 5, 3, 4
    outputs = rng.normal(size=(T, B, K)).astype(np.float32)
    y = (rng.integers(0, K, (T, B)) if loss.target_kind == "class"
         else rng.random((T, B, K)).astype(np.float32))
    value, grad = loss.value_and_grad(outputs, y, valid_mask(np.array([5, 2, 0]), T, B))
    assert np.isfinite(value) and grad.shape == (T, B, K) and grad.dtype == np.float32


def test_combine_is_checked_on_sequence_outputs():
    class TwoDimCombine:
        name = "two_dim_combine"
        target_kind = "dense"

        def value_and_grad(self, outputs, targets, mask=None):
            return plugins.get_loss("mse").value_and_grad(outputs, targets, mask)

        def combine(self, outputs):  # keeps only 2-D shapes
            return np.mean(outputs, axis=0).reshape(-1, outputs[0].shape[-1])

    failed = failures(conformance.check_loss(TwoDimCombine()))
    assert set(failed) == {"combine: members' outputs into one"}
    assert "float64 (6, 4) from float64 (3, 2, 4)" in failed["combine: members' outputs into one"]


# ---- threads: gradients too, at sizes the kernels split ---------------------------------

class DoubledGradsOnThreads(LSTMCell):
    """The reviewer's bad_threads_lstm: weight gradients added twice on > 1 thread."""

    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        before = {k: v.copy() for k, v in grads.items()}
        result = super().backward(d_out, d_final_states, cache, grads, num_threads)
        if num_threads > 1:
            for k in grads:
                grads[k] += grads[k] - before[k]
        return result


class DxOffOnThreads(GRUCell):
    """dx of the second half of the rows slightly off on > 1 thread (a split bug)."""

    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        dx, d_states = super().backward(d_out, d_final_states, cache, grads, num_threads)
        if num_threads > 1:
            dx[:, dx.shape[1] // 2:] *= 1 + 1e-6
        return dx, d_states


class StatesGradOffOnThreads(LSTMCell):
    """d c0 off on > 1 thread, in float32 only (float64 is right)."""

    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        dx, d_states = super().backward(d_out, d_final_states, cache, grads, num_threads)
        if num_threads > 1 and dx.dtype == np.float32:
            d_states = (d_states[0], d_states[1] * np.float32(1.001))
        return dx, d_states


@pytest.mark.parametrize("cell, where", [
    (DoubledGradsOnThreads(), "(grad weight_ih, float64)"),
    (DxOffOnThreads(), "(dx, float64)"),
    (StatesGradOffOnThreads(), "(d c, float32)"),
])
def test_kit_catches_backward_that_differs_on_two_threads(cell, where):
    # forward agrees on any thread count: the old check (outputs only) passed these
    failed = failures(conformance.check_cell(cell))
    assert set(failed) == {THREADS}
    assert where in failed[THREADS] and "16 rows" in failed[THREADS]


class MaskedGradsOffOnThreads(LSTMCell):
    """Right without masks; with masks, weight_hh's gradient off on > 1 thread."""

    def forward(self, x, states, params, lengths, num_threads=1, masks=None):
        self.masked = bool(masks)
        return super().forward(x, states, params, lengths, num_threads, masks=masks)

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        before = grads["weight_hh"].copy()
        result = super().backward(d_out, d_final_states, cache, grads, num_threads)
        if num_threads > 1 and self.masked:
            grads["weight_hh"] += 1e-3 * (grads["weight_hh"] - before)
        return result


def test_threads_check_runs_with_masks_for_cells_that_take_them():
    assert LSTMCell.mask_kinds  # the reference LSTM takes both kinds
    passed = {r.name: r for r in conformance.check_cell(LSTMCell())}[THREADS]
    assert passed.passed and "float64 and float32, with masks" in passed.detail
    failed = failures(conformance.check_cell(MaskedGradsOffOnThreads()))
    assert set(failed) == {THREADS}
    assert "(grad weight_hh, float64, masks)" in failed[THREADS]


def test_threads_check_restores_the_kernel_setting_even_when_the_cell_raises():
    from recurrent._kernels import tuning as kernel_tuning  # built with recurrent

    class RaisesOnTwoThreads(GRUCell):
        mask_kinds = ()

        def forward(self, x, states, params, lengths, num_threads=1):
            if num_threads > 1:
                raise RuntimeError("no threads here")
            return super().forward(x, states, params, lengths, num_threads)

    before = kernel_tuning.current()
    failed = failures(conformance.check_cell(RaisesOnTwoThreads()))
    assert failed[THREADS] == "raised RuntimeError: no threads here"
    assert kernel_tuning.current() == before


SPLIT_SCRIPT = textwrap.dedent("""
    import os, numpy as np
    from recurrent import conformance
    from recurrent.plugins import get_cell
    from recurrent._kernels import tuning as kernel_tuning

    def threads_alive():
        return len(os.listdir("/proc/self/task"))

    cell = get_cell(NAME)
    T, B, I, H = conformance.T2, conformance.B2, conformance.I2, conformance.H2
    rng = np.random.default_rng(0)
    params = {k: np.zeros(s) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    x = rng.normal(size=(T, B, I))
    states = tuple(rng.normal(size=(B, H)) for _ in cell.state_names)

    def run():
        out, finals, cache = cell.forward(x, states, params, conformance.LENGTHS2, 2)
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        cell.backward(np.ones_like(out), (None,) * len(states), cache, grads, 2)

    saved = kernel_tuning.current()
    first = threads_alive()
    run()  # the check's sizes, the kernels' own threshold: too little work to split
    unsplit = threads_alive()
    with conformance._every_region_parallel():
        run()
    split = threads_alive()
    print(first, unsplit, split, kernel_tuning.current() == saved)
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("name", ("lstm", "gru", "rnn_tanh", "ln_lstm"))
def test_threads_check_really_splits_the_builtin_kernels(name):
    """In a fresh process (OpenMP's team is made once per process): at the check's sizes
    the kernels stay on one thread by their own rule, and start a second one while the
    check lowers min_parallel_flops; the setting is back afterwards."""
    pytest.importorskip("recurrent_plugins.cells", reason="the compiled cells are not built")
    if not recurrent.threads.openmp_enabled():
        pytest.skip("the kernels were built without OpenMP")
    # PYTHONSAFEPATH: the installed (compiled) package, not the source tree in the cwd
    env = {**os.environ, "RECURRENT_TUNE": "off", "OMP_NUM_THREADS": "2",
           "PYTHONSAFEPATH": "1"}
    done = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT.replace("NAME", repr(name))],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    first, unsplit, split, restored = done.stdout.split()
    assert int(unsplit) == int(first)
    assert int(split) == int(first) + 1
    assert restored == "True"


# ---- `recurrent plugins check NAME` for a name a broken plugin registered ---------------

class CellWithoutBackward:
    name = "no_backward_for_test"
    num_gates = 4
    state_names = ("h", "c")

    def param_shapes(self, input_size, hidden_size):
        return LSTMCell().param_shapes(input_size, hidden_size)

    def init_params(self, params, hidden_size, rng):
        LSTMCell().init_params(params, hidden_size, rng)

    def forward(self, x, states, params, lengths, num_threads):
        return LSTMCell().forward(x, states, params, lengths, num_threads)

    def backwards(self, d_out, d_final_states, cache, grads, num_threads):  # misspelt
        return LSTMCell().backward(d_out, d_final_states, cache, grads, num_threads)


class NoBackwardPlugin:
    @recurrent.hookimpl
    def register_cells(self, register):
        register(CellWithoutBackward())


@pytest.fixture
def broken_plugin():
    with registered_plugin(NoBackwardPlugin(), "no-backward-plugin"):
        yield


def test_check_command_says_why_a_broken_plugins_cell_is_missing(broken_plugin):
    result = CliRunner().invoke(plugins_group, ["check", "no_backward_for_test"])
    assert result.exit_code == 2
    assert ("no cell, loss or task named 'no_backward_for_test': plugin 'no-backward-plugin' is "
            "broken: ValueError: cell 'no_backward_for_test' lacks backward (see `recurrent "
            "plugins`); known: ") in " ".join(result.output.split())
    with pytest.raises(recurrent.errors.UserError, match="lacks backward"):
        conformance.check("no_backward_for_test", "cell")


def test_check_command_lists_broken_plugins_for_an_unknown_name(broken_plugin):
    result = CliRunner().invoke(plugins_group, ["check", "lstn"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "no cell, loss or task named 'lstn'; known: " in output
    # (other tests' plugins may be listed beside it, so its entry is looked for alone)
    assert "(broken plugins: " in output and "see `recurrent plugins`)" in output
    assert ("'no-backward-plugin' (ValueError: cell 'no_backward_for_test' lacks "
            "backward)") in output


def test_check_command_given_a_plugins_name_says_what_it_registers(broken_plugin):
    """The entry point's name in place of the objects it registers: the working plugin's
    objects to check, or the broken plugin's error."""
    class Losses:
        @recurrent.hookimpl
        def register_losses(self, register):
            register(_NamedLoss("plugin_named_loss_b"))
            register(_NamedLoss("plugin_named_loss_a"))

    with registered_plugin(Losses(), "losses-plugin"):
        working = CliRunner().invoke(plugins_group, ["check", "losses-plugin"])
    broken = CliRunner().invoke(plugins_group, ["check", "no-backward-plugin"])
    assert working.exit_code == broken.exit_code == 2
    assert ("no cell, loss or task named 'losses-plugin': that is the name of a plugin; "
            "check what it registers: `recurrent plugins check plugin_named_loss_a "
            "plugin_named_loss_b`") in " ".join(working.output.split())
    assert ("no cell, loss or task named 'no-backward-plugin': plugin 'no-backward-plugin' "
            "is broken: ValueError: cell 'no_backward_for_test' lacks backward (see "
            "`recurrent plugins`)") in " ".join(broken.output.split())


class _NamedLoss:
    """A registry-only loss (never run)."""

    def __init__(self, name):
        self.name = name

    def value_and_grad(self, outputs, targets, mask=None):
        raise NotImplementedError


class BareStateGrad(GRUCell):
    """backward returns dh itself for its single state, not the tuple (dh,)."""

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        dx, d_states = super().backward(d_out, d_final_states, cache, grads, num_threads)
        return dx, d_states[0]


def test_the_shapes_check_names_a_backward_that_returns_a_bare_state_gradient():
    """Layers unpack backward's d states as a tuple; the kit said only 'shape (4,) !=
    expected (3, 4)' in other checks, naming no array."""
    failed = failures(conformance.check_cell(BareStateGrad()))
    assert "shapes" in failed, failed
    assert ("backward returned ndarray for the d initial states, expected a tuple of 1 "
            "(B, H) arrays, one per state name ('h',) (a single state too: (dh,))"
            in failed["shapes"])
    assert "shapes" not in failures(conformance.check_cell(GRUCell()))


_CRASHING_CELL = r"""
import os, sys, types
import recurrent
from recurrent import plugins
from recurrent.reference import GRUCell


class Crashing(GRUCell):
    name = "crashing"

    def __init__(self):
        self.gate_order = GRUCell().gate_order

    def backward(self, *args, **kwargs):  # a kernel that kills the process
        sys.stdout.flush()
        os._exit(7)


module = types.ModuleType("crashing_cell")
module.register_cells = recurrent.hookimpl(lambda register: register(Crashing()))
plugins.register_plugin(module, "crashing-cell")
from recurrent.cli import cli
cli(["plugins", "check", "crashing"])
"""


def test_plugins_check_prints_each_line_before_a_crash(tmp_path):
    """A kernel that crashes the process (a write past an array) leaves the lines of the
    checks before the crash: each is printed as its check ends."""
    done = subprocess.run([sys.executable, "-c", _CRASHING_CELL], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120,
                          env=dict(os.environ, PYTHONSAFEPATH="1"))
    assert done.returncode == 7, done.stderr
    lines = done.stdout.splitlines()
    assert lines and lines[0].startswith("PASS  members"), done.stdout
    assert any(line.startswith("PASS  parameters") for line in lines), done.stdout
