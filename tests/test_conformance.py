"""The conformance kit passes on every built-in cell and loss, and catches broken ones."""
import numpy as np
import pytest
from click.testing import CliRunner

import recurrent
from recurrent import conformance, plugins
from recurrent.cli_plugins import plugins_group
from recurrent.reference import GRUCell, LSTMCell

from conftest import CELL_NAMES, cell_for
from helpers import registered_plugin

LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae")


def failures(results):
    return {r.name: r.detail for r in results if not r.passed}


@pytest.mark.parametrize("name", CELL_NAMES)
def test_kit_passes_on_builtin_cells(name, backend):
    cell = cell_for(name, backend)
    results = conformance.check_cell(cell)
    assert failures(results) == {}
    names = [r.name for r in results]
    assert "gradient: weight_hh" in names and "lengths: padding invariance" in names
    assert "lengths: a row of length 0" in names
    assert "step: a loop of one-step calls equals the sequence" in names
    mask_checks = {"masks: gradient (recurrent)", "masks: gradient (zoneout)",
                   "masks: ones and zeros change nothing"}
    # the kit checks the masks of every cell that lists them, and only of those
    if cell.mask_kinds:
        assert mask_checks <= set(names)
    else:
        assert not mask_checks & set(names)
    int8 = next(r for r in results if r.name == "int8: infer_int8 beside float32")
    assert "; each mask kind changes int8 as float32 (within " in int8.detail


@pytest.mark.parametrize("backend", ["kernels", "reference"])
def test_int8_check_passes_ln_lstm_on_a_seed_of_ill_conditioned_normalisations(backend):
    # Seed 14 at the kit's 4 units leaves the layer normalisation of c a small spread, which
    # scales int8's error in c past INT8_TOL; the int8 check runs with INT8_H units.
    results = conformance.check_cell(cell_for("ln_lstm", backend), seed=14)
    assert failures(results) == {}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_kit_passes_on_builtin_losses(name):
    results = conformance.check_loss(plugins.get_loss(name))
    assert failures(results) == {}
    # members + 8, and the 2 checks of combine() for the losses that have one
    assert len(results) == 10 + 2 * hasattr(plugins.get_loss(name), "combine")
    assert "sequence outputs (T, B, K)" in {r.name for r in results}


def test_kit_passes_on_example_peephole_cell_and_huber_loss():
    peephole = pytest.importorskip("recurrent_peephole",
                                   reason="examples/recurrent-peephole is not installed")
    results = conformance.check_cell(peephole.PeepholeLSTMCell())
    assert failures(results) == {}
    assert {"gradient: peephole_i", "gradient: peephole_f", "gradient: peephole_o"} <= \
        {r.name for r in results}
    assert failures(conformance.check_loss(peephole.HuberLoss())) == {}


# ---- deliberately broken cells and losses -----------------------------------------------

class WrongRecurrentGradient(LSTMCell):
    """weight_hh gradient 1% too large."""

    mask_kinds = ()  # the broken cells below break one thing each: no mask checks

    def _step_backward(self, d_new_states, step_cache, params, grads):
        before = grads["weight_hh"].copy()
        result = super()._step_backward(d_new_states, step_cache, params, grads)
        grads["weight_hh"] += 0.01 * (grads["weight_hh"] - before)
        return result


class IgnoresLengths(GRUCell):
    mask_kinds = ()

    def forward(self, x, states, params, lengths, num_threads=1):
        full = np.full(x.shape[1], x.shape[0], dtype=np.int64)
        return super().forward(x, states, params, full, num_threads)


class OverwritesGrads(LSTMCell):
    mask_kinds = ()

    def backward(self, d_out, d_final_states, cache, grads, num_threads=1):
        fresh = {k: np.zeros_like(v) for k, v in grads.items()}
        result = super().backward(d_out, d_final_states, cache, fresh, num_threads)
        for k in grads:
            grads[k][...] = fresh[k]
        return result


class ExplodingForward(GRUCell):
    mask_kinds = ()

    def forward(self, x, states, params, lengths, num_threads=1):
        raise RuntimeError("kernel not built")


class MaskBlindBackward(GRUCell):
    """Applies the recurrent-dropout mask forward, forgets it in backward's dh."""

    def _step_backward(self, d_new_states, step_cache, params, grads):
        x_t, h, hm, m, *rest = step_cache
        return super()._step_backward(d_new_states, (x_t, h, hm, None, *rest), params, grads)


class FirstStepZoneout(LSTMCell):
    """Applies zoneout's values of the first step at every step: consistent in forward and
    backward, so only the loop of one-step calls tells."""

    def forward(self, x, states, params, lengths, num_threads=1, masks=None):
        if masks and masks.get("zoneout") is not None:
            masks = {**masks, "zoneout": tuple(None if k is None else k[:1]
                                               for k in masks["zoneout"])}
        return super().forward(x, states, params, lengths, num_threads, masks=masks)


class Int8IgnoresLengths(LSTMCell):
    """int8 inference that runs every row to the end."""

    def infer_int8(self, x, states, qparams, lengths, num_threads=1, masks=None):
        full = np.full(x.shape[1], x.shape[0], dtype=np.int64)
        return super().infer_int8(x, states, qparams, full, num_threads, masks=masks)


class Int8DropsZoneout(GRUCell):
    """int8 inference that takes masks and leaves zoneout out."""

    def infer_int8(self, x, states, qparams, lengths, num_threads=1, masks=None):
        kept = {k: v for k, v in (masks or {}).items() if k != "zoneout"}
        return super().infer_int8(x, states, qparams, lengths, num_threads, masks=kept)


class Int8DropsRecurrentMask(GRUCell):
    """int8 inference that takes masks and leaves recurrent dropout's out."""

    def infer_int8(self, x, states, qparams, lengths, num_threads=1, masks=None):
        kept = {k: v for k, v in (masks or {}).items() if k != "recurrent"}
        return super().infer_int8(x, states, qparams, lengths, num_threads, masks=kept)


class Int8WithoutInputBias(GRUCell):
    """int8 weights made without b_ih."""

    mask_kinds = ()

    def quantize(self, params):
        return super().quantize({**params, "bias_ih": 0 * params["bias_ih"]})


class Int8Float64States(LSTMCell):
    """int8 inference whose final states come back in float64."""

    def infer_int8(self, x, states, qparams, lengths, num_threads=1, masks=None):
        out, finals = super().infer_int8(x, states, qparams, lengths, num_threads, masks=masks)
        return out, tuple(s.astype(np.float64) for s in finals)


@pytest.mark.parametrize("cell, problem", [
    (Int8IgnoresLengths(), "non-zero outputs past a row's length"),
    (Int8Float64States(), "(3, 16) float64"),
    (Int8DropsZoneout(), "of the largest float32 value (at most 10%)"),
    (Int8DropsRecurrentMask(), "a mask changes the int8 results unlike float32's: 100.0%"),
    (Int8WithoutInputBias(), "of the largest float32 value (at most 10%)")])
def test_kit_catches_broken_int8_inference(cell, problem):
    failed = failures(conformance.check_cell(cell))
    assert set(failed) == {"int8: infer_int8 beside float32"}
    assert problem in failed["int8: infer_int8 beside float32"]


def test_kit_catches_zoneout_read_at_the_wrong_step():
    failed = failures(conformance.check_cell(FirstStepZoneout()))
    assert set(failed) == {"step: a loop of one-step calls equals the sequence"}
    assert "(lengths, masks)" in failed["step: a loop of one-step calls equals the sequence"]


def test_kit_catches_a_mask_forgotten_in_backward():
    failed = failures(conformance.check_cell(MaskBlindBackward()))
    assert set(failed) == {"masks: gradient (recurrent)"}
    assert "rel err" in failed["masks: gradient (recurrent)"]


class TwoGatesThreeRecurrentBlocks(GRUCell):
    """num_gates says 2, weight_ih follows it, weight_hh keeps the GRU's three blocks."""

    num_gates = 2

    def param_shapes(self, input_size, hidden_size):
        shapes = super().param_shapes(input_size, hidden_size)  # num_gates' blocks
        return {**shapes, "weight_hh": (3 * hidden_size, hidden_size)}


def test_kit_names_a_weight_hh_at_odds_with_num_gates():
    failed = failures(conformance.check_cell(TwoGatesThreeRecurrentBlocks()))
    assert "weight_hh (" in failed["parameters"]
    assert "!= (num_gates*H, H) = " in failed["parameters"]
    assert "weight_ih" not in failed["parameters"]


def test_kit_catches_a_wrong_gradient():
    failed = failures(conformance.check_cell(WrongRecurrentGradient()))
    assert set(failed) == {"gradient: weight_hh"}
    assert "rel err" in failed["gradient: weight_hh"]


def test_kit_catches_ignored_lengths():
    failed = failures(conformance.check_cell(IgnoresLengths()))
    assert {"lengths: zero outputs past length", "lengths: padding invariance",
            "lengths: gradients past length ignored", "lengths: a row of length 0"} <= set(failed)
    # forward and backward ignore lengths consistently: finite differences cannot tell
    assert not any(name.startswith("gradient") for name in failed)


def test_kit_catches_overwritten_gradients():
    assert set(failures(conformance.check_cell(OverwritesGrads()))) == {"gradients accumulate"}


def test_kit_reports_exceptions_as_failures():
    failed = failures(conformance.check_cell(ExplodingForward()))
    assert failed["shapes"] == "raised RuntimeError: kernel not built"
    assert "parameters" not in failed  # param_shapes/init_params still work


class NarrowOutput(GRUCell):
    """Outputs one hidden unit too few."""
    mask_kinds = ()

    def forward(self, x, states, params, lengths, num_threads=1):
        out, finals, cache = super().forward(x, states, params, lengths, num_threads)
        return out[:, :, :-1], finals, cache


def test_kit_names_the_array_of_a_wrong_shape():
    failed = failures(conformance.check_cell(NarrowOutput()))
    assert failed["shapes"].startswith("out float64 (4, 3, 3), expected float64 (4, 3, 4)")


class NaNOutput(GRUCell):
    """Writes NaN into one output element."""
    mask_kinds = ()

    def forward(self, x, states, params, lengths, num_threads=1):
        out, finals, cache = super().forward(x, states, params, lengths, num_threads)
        out = out.copy()
        out[-1, 0, 0] = np.nan
        return out, finals, cache


def test_kit_names_non_finite_outputs_in_the_shapes_check():
    failed = failures(conformance.check_cell(NaNOutput()))
    assert failed["shapes"] == "out float64 holds NaN or inf; out float32 holds NaN or inf"


class NoisyCell(GRUCell):
    """Adds a random draw of numpy's global generator to its outputs."""
    mask_kinds = ()

    def forward(self, x, states, params, lengths, num_threads=1):
        out, finals, cache = super().forward(x, states, params, lengths, num_threads)
        return out + np.random.random() * 1e-3, finals, cache


class NoisyMSE:
    name = "noisy_mse"

    def value_and_grad(self, outputs, targets, mask=None):
        value, grad = plugins.get_loss("mse").value_and_grad(outputs, targets, mask)
        return value + np.random.random() * 1e-3, grad


def test_kit_names_results_that_differ_between_calls():
    assert "same inputs, same results" in failures(conformance.check_cell(NoisyCell()))
    assert failures(conformance.check_loss(NoisyMSE()))["same arguments, same result"] \
        .startswith("two calls on the same arguments differ")


def test_kit_names_missing_and_optional_members():
    methods = {k: getattr(GRUCell, k) for k in ("param_shapes", "init_params", "forward",
                                                 "backward")}
    results = conformance.check_cell(type("Nameless", (), methods)())
    assert results[0] == ("members", False, "lacks name, num_gates, state_names")
    assert not all(r.passed for r in results[1:])  # the other checks still run and fail
    found = conformance.check_cell(cell_for("lstm", "reference"))[0]
    assert found.name == "members" and found.passed and "optional: gate_order" in found.detail
    assert conformance.check_loss(MaskBlindMSE())[0] == ("members", True,
                                                         "all required; optional: none")


class MaskBlindMSE:
    name = "mask_blind_mse"

    def value_and_grad(self, outputs, targets, mask=None):
        diff = outputs - targets
        return float(np.mean(diff ** 2)), 2 * diff / diff.size


class HalfGradientMSE(MaskBlindMSE):
    name = "half_gradient_mse"

    def value_and_grad(self, outputs, targets, mask=None):
        value, grad = plugins.get_loss("mse").value_and_grad(outputs, targets, mask)
        return value, grad / 2


class SummingMSE(MaskBlindMSE):
    name = "summing_mse"

    def value_and_grad(self, outputs, targets, mask=None):
        return plugins.get_loss("mse").value_and_grad(outputs, targets, mask)

    def combine(self, outputs):  # the sum, not an average: three copies score as 3x
        return np.sum(outputs, axis=0).astype(np.float32)


def test_kit_checks_a_losss_combine():
    for name in ("cross_entropy", "binary_cross_entropy"):
        results = {r.name: r.passed for r in conformance.check_loss(plugins.get_loss(name))}
        assert results["combine: members' outputs into one"]
        assert results["combine: identical members score as one"]
    broken = failures(conformance.check_loss(SummingMSE()))
    assert set(broken) == {"combine: members' outputs into one",  # float32 for float64
                           "combine: identical members score as one"}
    assert "combine: members' outputs into one" not in {
        r.name for r in conformance.check_loss(plugins.get_loss("mse"))}  # no combine()


def test_kit_catches_broken_losses():
    blind = failures(conformance.check_loss(MaskBlindMSE()))
    assert {"mask: masked rows ignored", "mean over valid rows"} <= set(blind)
    assert "gradient" not in blind and "gradient with mask" not in blind  # self-consistent
    half = failures(conformance.check_loss(HalfGradientMSE()))
    assert {"gradient", "gradient with mask"} <= set(half)


# ---- `recurrent plugins check NAME` -----------------------------------------------------

class BrokenCellPlugin:
    @recurrent.hookimpl
    def register_cells(self, register):
        cell = WrongRecurrentGradient()
        cell.name = "broken_lstm_for_test"
        register(cell)


class BrokenLossPlugin:
    @recurrent.hookimpl
    def register_losses(self, register):
        clash = MaskBlindMSE()
        clash.name = "mse"  # a built-in loss's name
        register(clash)


def test_check_command_passes_on_a_builtin_loss():
    result = CliRunner().invoke(plugins_group, ["check", "mse"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("PASS  ") for line in lines[:-1])
    assert lines[-1] == "loss 'mse': 10/10 checks passed"


def test_check_command_fails_on_a_broken_cell():
    plugins.register_plugin(BrokenCellPlugin(), "broken-cell-plugin")
    try:
        result = CliRunner().invoke(plugins_group, ["check", "broken_lstm_for_test"])
    finally:
        plugins.unregister_plugin("broken-cell-plugin")
    assert result.exit_code == 1
    assert any(line.startswith("FAIL  gradient: weight_hh") for line in result.output.splitlines())
    assert "PASS  gradient: weight_ih" in result.output


def test_check_command_unknown_name():
    result = CliRunner().invoke(plugins_group, ["check", "lstn"])
    assert result.exit_code == 2
    assert "no cell, loss or task named 'lstn'; known: " in result.output
    assert "cross_entropy" in result.output


def test_check_command_refuses_a_negative_seed():
    result = CliRunner().invoke(plugins_group, ["check", "lstm", "--seed", "-1"])
    assert result.exit_code == 2
    assert "'--seed': -1 is not in the range x>=0" in result.output
    assert "PASS" not in result.output and "FAIL" not in result.output


def test_check_command_all_and_several_names():
    import json
    # a plugin whose loss takes a built-in's name is broken: --all cannot check what it
    # provides, so it fails, naming the plugin on stderr
    with registered_plugin(BrokenLossPlugin(), "clashing-for-test"):
        result = CliRunner().invoke(plugins_group, ["check", "--all", "--json"])
    assert result.exit_code == 1, result.output
    reports = json.loads(result.stdout)
    checked = {(r["kind"], r["name"]) for r in reports}
    expected = {("cell", n) for n in plugins.cells()} | {("loss", n) for n in plugins.losses()}
    assert checked == expected and all(r["passed"] for r in reports)
    assert result.stderr.startswith("not checked, broken plugins: 'clashing-for-test' "
                                    "(ValueError: loss name 'mse' is already taken")

    both = CliRunner().invoke(plugins_group, ["check", "mse", "mae"])
    assert both.exit_code == 0
    assert "== loss mse" in both.output and "loss 'mae': 10/10 checks passed" in both.output

    neither = CliRunner().invoke(plugins_group, ["check"])
    assert neither.exit_code == 2 and "give the NAME of a cell, loss or task to check, or --all" in neither.output

    both_ways = CliRunner().invoke(plugins_group, ["check", "mse", "--all"])
    assert both_ways.exit_code == 2 and "give NAME... or --all, not both" in both_ways.output
