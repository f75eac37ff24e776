"""Recurrent dropout and zoneout (recurrent/masks.py): the kernels against the numpy
reference and torch, finite differences with the masks fixed, lengths, threads, the
layer's drawing of the masks (training, evaluation, data-parallel rows) and its refusal for
cells that do not take them.

Legend: T time, B batch, I input, H hidden.
"""
import json
from functools import partial

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import one_line_error

import recurrent
from recurrent import conformance, plugins
from recurrent.cli import cli
from recurrent.cellbase import LN_EPS
from recurrent.layers import Recurrent
from recurrent.masks import bernoulli, check_masks, variational_mask, zoneout_mask
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell

_one_line_error = partial(one_line_error, code=1)

CELL_NAMES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
KINDS = ("recurrent", "zoneout", "both", "expectation")
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=2e-5)}


def _masks(cell, kind, T, B, H, dtype, rng, p=0.3):
    """A masks argument: random recurrent-dropout mask, random 0/1 zoneout per state,
    both, or zoneout's expectation (1, B, H)."""
    masks = {}
    if kind in ("recurrent", "both"):
        masks["recurrent"] = variational_mask(rng, B, H, p, dtype)
    if kind in ("zoneout", "both"):
        masks["zoneout"] = tuple(zoneout_mask(rng, T, B, H, p, dtype) for _ in cell.state_names)
    if kind == "expectation":
        masks["zoneout"] = tuple(np.full((1, B, H), p, dtype) for _ in cell.state_names)
    return masks


def _problem(cell, T, B, I, H, dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.uniform(-0.4, 0.4, s).astype(dtype)
              for k, s in cell.param_shapes(I, H).items()}
    x = rng.standard_normal((T, B, I)).astype(dtype)
    states = tuple((0.5 * rng.standard_normal((B, H))).astype(dtype) for _ in cell.state_names)
    lengths = rng.integers(0, T + 1, B).astype(np.int64)
    lengths[-1] = T
    d_out = rng.standard_normal((T, B, H)).astype(dtype)
    d_finals = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in cell.state_names)
    return params, x, states, lengths, d_out, d_finals, _masks(cell, kind, T, B, H, dtype, rng)


def _run(cell, problem, num_threads=1):
    params, x, states, lengths, d_out, d_finals, masks = problem
    out, finals, cache = cell.forward(x, states, params, lengths, num_threads, masks=masks)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, num_threads)
    return {"out": out, **{f"final{i}": f for i, f in enumerate(finals)}, "dx": dx,
            **{f"d_state{i}": d for i, d in enumerate(d_states)}, **grads}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_kernels_equal_the_reference_with_masks(name, kind, dtype):
    fast, ref = get_cell(name), get_reference_cell(name)
    # B = 2 and 6: the float32 LSTM's hoisted and in-tile steps; H = 20 is not a multiple
    # of a vector width; lengths include 0 and T
    for T, B, I, H in ((5, 2, 3, 20), (6, 6, 4, 20)):
        problem = _problem(fast, T, B, I, H, dtype, kind)
        got, want = _run(fast, problem, 2), _run(ref, problem)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], **TOL[dtype],
                                       err_msg=f"{name} {kind} {key} {(T, B, I, H)}")
        params, x, states, lengths, _, _, masks = problem
        out, finals = fast.infer(x, states, params, lengths, 1, masks=masks)
        np.testing.assert_array_equal(out, got["out"])
        for i, f in enumerate(finals):
            np.testing.assert_array_equal(f, got[f"final{i}"])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_masks_change_the_result_and_no_masks_is_the_plain_cell(name):
    cell = get_cell(name)
    problem = _problem(cell, 6, 5, 3, 16, np.float32, "both")
    plain = _run(cell, problem[:-1] + (None,))
    empty = _run(cell, problem[:-1] + ({},))
    masked = _run(cell, problem)
    for key in plain:
        np.testing.assert_array_equal(plain[key], empty[key])
    assert not np.allclose(plain["out"], masked["out"])
    # zoneout of 0 everywhere and a mask of ones are the plain cell
    params, x, states, lengths, d_out, d_finals, _ = problem
    ones = {"recurrent": np.ones((5, 16), np.float32),
            "zoneout": tuple(np.zeros((6, 5, 16), np.float32) for _ in cell.state_names)}
    neutral = _run(cell, (params, x, states, lengths, d_out, d_finals, ones))
    for key in plain:
        np.testing.assert_allclose(neutral[key], plain[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["recurrent", "zoneout", "both", "expectation"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_finite_differences_with_fixed_masks(name, kind):
    cell = get_cell(name)
    T, B, I, H = 4, 3, 2, 3
    params, x, states, _, d_out, d_finals, masks = _problem(cell, T, B, I, H, np.float64,
                                                            kind, seed=1)
    lengths = np.array([2, 4, 0], np.int64)

    def objective():
        out, finals, _ = cell.forward(x, states, params, lengths, 1, masks=masks)
        return float(np.sum(out * d_out) + sum(np.sum(f * s) for f, s in zip(finals, d_finals)))

    _, _, cache = cell.forward(x, states, params, lengths, 1, masks=masks)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, 1)
    targets = [(dx, x)] + list(zip(d_states, states)) + [(grads[k], params[k]) for k in params]
    for analytic, array in targets:
        numeric = conformance.numeric_grad(objective, array)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_thread_counts_give_identical_results_with_masks(name, dtype):
    # large enough for kernel_threads to use 2 and 3 threads in every region
    cell = get_cell(name)
    problem = _problem(cell, 20, 24, 16, 128, dtype, "both")
    one = _run(cell, problem, 1)
    for num_threads in (2, 3):
        other = _run(cell, problem, num_threads)
        for key in one:
            np.testing.assert_array_equal(one[key], other[key], err_msg=f"{key} {num_threads}")


# ---- torch: loops of its cells with the same masks, autograd gradients ------------------

def _torch_step(torch, name, x_t, h, c, m, p):
    """One step of torch's cell arithmetic with the recurrent product reading h * m."""
    hm = h * m
    if name.startswith("rnn"):
        act = torch.tanh if name == "rnn_tanh" else torch.relu
        return act(x_t @ p["weight_ih"].T + p["bias_ih"] + hm @ p["weight_hh"].T
                   + p["bias_hh"]), None
    if name == "lstm":
        h_new, c_new = torch._VF.lstm_cell(x_t, (hm, c), p["weight_ih"], p["weight_hh"],
                                           p["bias_ih"], p["bias_hh"])
        return h_new, c_new
    if name == "ln_lstm":  # recurrent.reference's equations in torch ops
        F = torch.nn.functional
        B, H = h.shape

        def blocks(v):  # (B, 4H), each gate block normalised on its own
            return F.layer_norm(v.reshape(B, 4, H), (H,), eps=LN_EPS).reshape(B, 4 * H)

        a = (p["ln_gain_ih"] * blocks(x_t @ p["weight_ih"].T) + p["bias_ih"]
             + p["ln_gain_hh"] * blocks(hm @ p["weight_hh"].T) + p["bias_hh"])
        a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
        c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
        h_new = torch.sigmoid(a_o) * torch.tanh(
            F.layer_norm(c_new, (H,), p["ln_gain_c"], p["ln_bias_c"], eps=LN_EPS))
        return h_new, c_new
    # GRU: torch.nn.GRUCell's equations, h * m inside the recurrent product only
    ax = x_t @ p["weight_ih"].T + p["bias_ih"]
    ah = hm @ p["weight_hh"].T + p["bias_hh"]
    H = h.shape[1]
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    return (1 - z) * n + z * h, None


@pytest.mark.parametrize("name", CELL_NAMES)
def test_against_torch_cells_with_the_same_masks(name):
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    cell = get_cell(name)
    T, B, I, H = 6, 4, 3, 5
    params, x, states, _, d_out, d_finals, masks = _problem(cell, T, B, I, H, np.float64,
                                                            "both", seed=2)
    lengths = np.full(B, T, np.int64)
    got = _run(cell, (params, x, states, lengths, d_out, d_finals, masks))
    if name == "gru":  # the same equations through torch.nn.GRUCell, masks off
        gru = torch.nn.GRUCell(I, H).double()
        with torch.no_grad():
            for k, v in params.items():
                getattr(gru, k).copy_(torch.from_numpy(v))
        h0 = torch.from_numpy(states[0])
        ones = torch.ones(B, H, dtype=torch.float64)
        tp = {k: torch.from_numpy(v) for k, v in params.items()}
        np.testing.assert_allclose(
            _torch_step(torch, name, torch.from_numpy(x[0]), h0, None, ones, tp)[0].detach(),
            gru(torch.from_numpy(x[0]), h0).detach(), rtol=1e-12)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    m = torch.from_numpy(masks["recurrent"])
    k = [torch.from_numpy(z) for z in masks["zoneout"]]
    h, c = ts[0], ts[1] if len(ts) > 1 else None
    outs = []
    for t in range(T):
        h_new, c_new = _torch_step(torch, name, tx[t], h, c, m, tp)
        h = k[0][t] * h + (1 - k[0][t]) * h_new          # zoneout of h
        if c is not None:
            c = k[1][t] * c + (1 - k[1][t]) * c_new      # and of an LSTM's c (and ln_lstm's)
        outs.append(h)
    out = torch.stack(outs)
    finals = [h] if c is None else [h, c]
    loss = (out * torch.from_numpy(d_out)).sum() + sum(
        (f * torch.from_numpy(d)).sum() for f, d in zip(finals, d_finals))
    loss.backward()
    np.testing.assert_allclose(got["out"], out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["dx"], tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    for i, s in enumerate(ts):
        np.testing.assert_allclose(got[f"d_state{i}"], s.grad.numpy(), rtol=1e-9, atol=1e-11)
    for key, v in tp.items():
        np.testing.assert_allclose(got[key], v.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=key)


# ---- the layer --------------------------------------------------------------------------

@pytest.mark.parametrize("name", CELL_NAMES)
def test_layer_draws_the_same_masks_for_the_fast_and_the_reference_cell(name):
    # training, two layers, both directions, lengths: the same seeds give the same masks,
    # so the fast stack equals the reference stack; evaluation uses zoneout's expectation
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 4, 3))
    lengths = np.array([7, 3, 0, 5])
    layers = [Recurrent(cell, 3, 6, num_layers=2, bidirectional=True, dtype=np.float64,
                        seed=5, recurrent_dropout=0.3, zoneout=0.2, dropout=0.1)
              for cell in (name, get_reference_cell(name))]
    d_out = rng.standard_normal((7, 4, 12))
    results = []
    for layer in layers:
        layer.reseed_dropout(11)
        out, _ = layer(x, lengths=lengths)
        dx, _ = layer.backward(d_out)
        layer.eval()
        out_eval, _ = layer(x, lengths=lengths)
        results.append((out, dx, layer.grads(), out_eval))
    (a, da, ga, ea), (b, db, gb, eb) = results
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(da, db, rtol=1e-10, atol=1e-12)
    for key in ga:
        np.testing.assert_allclose(ga[key], gb[key], rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(ea, eb, rtol=1e-10, atol=1e-12)
    # evaluation: deterministic, and the reference with the expectation's masks
    layer = layers[1]
    again, _ = layer(x, lengths=lengths)
    np.testing.assert_array_equal(again, eb)
    plain = Recurrent(get_reference_cell(name), 3, 6, num_layers=2, bidirectional=True,
                      dtype=np.float64, seed=5)
    plain.eval()
    assert not np.allclose(plain(x, lengths=lengths)[0], eb)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_masks_follow_the_seed_and_eval_and_steps_use_none(name):
    layer = Recurrent(name, 3, 8, seed=0, recurrent_dropout=0.5, zoneout=0.3)
    x = np.random.default_rng(0).standard_normal((5, 4, 3)).astype(np.float32)
    layer.reseed_dropout(1)
    a, _ = layer(x)
    layer.reseed_dropout(1)
    b, _ = layer(x)
    layer.reseed_dropout(2)
    c, _ = layer(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # need_grad=False and single steps: no recurrent dropout, zoneout's expectation
    no_grad, _ = layer(x, need_grad=False)
    layer.eval()
    evaluated, _ = layer(x)
    np.testing.assert_array_equal(no_grad, evaluated)
    state = None
    for t in range(5):
        out_t, state = layer.step(x[t], state)
        np.testing.assert_allclose(out_t, evaluated[t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", (0.0, 0.1, 0.25, 0.5, 0.3 + 1 / 512, 0.999))
def test_bernoulli_draws_true_with_probability_p(p):
    """The leading-byte draw with ties resolved by a float uniform: the frequency of True
    is p within 5 standard errors on 2e6 draws, also for a p whose own leading byte is
    hit often enough to test the tie path (0.3 + 1/512 lies mid-byte)."""
    n = 2_000_000
    draws = bernoulli(np.random.default_rng(11), (n,), p)
    assert draws.dtype == np.bool_ and draws.shape == (n,)
    se = max(np.sqrt(p * (1 - p) / n), 1 / n)
    assert abs(draws.mean() - p) < 5 * se
    # the entries whose leading byte equals p's are True for the fraction frac(256 p)
    k = int(p * 256)
    lead = np.random.default_rng(11).integers(0, np.iinfo(np.uint64).max, size=n // 8,
                                               dtype=np.uint64, endpoint=True).view(np.uint8)
    tied = draws[lead == k]
    if tied.size > 1000:
        frac = p * 256 - k
        assert abs(tied.mean() - frac) < 5 * np.sqrt(frac * (1 - frac) / tied.size) + 1e-3


def test_data_parallel_rows_are_cut_from_the_whole_batch():
    rng = np.random.default_rng(0)
    whole_m = variational_mask(np.random.default_rng(4), 6, 5, 0.3, np.float32)
    cut_m = variational_mask(np.random.default_rng(4), 2, 5, 0.3, np.float32, rows=(3, 5, 6))
    np.testing.assert_array_equal(whole_m[3:5], cut_m)
    whole_z = zoneout_mask(np.random.default_rng(4), 4, 6, 5, 0.3, np.float32)
    cut_z = zoneout_mask(np.random.default_rng(4), 4, 2, 5, 0.3, np.float32, rows=(3, 5, 6))
    np.testing.assert_array_equal(whole_z[:, 3:5], cut_z)
    assert set(np.unique(whole_z)) == {0.0, 1.0}
    assert 0.15 < whole_z.mean() < 0.45
    # a layer's rows of a batch equal those rows of the whole batch's run
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    layer = Recurrent("gru", 3, 5, seed=0, recurrent_dropout=0.3, zoneout=0.2)
    layer.reseed_dropout(9)
    whole, _ = layer(x)
    layer.reseed_dropout(9, rows=(3, 5, 6))
    part, _ = layer(np.ascontiguousarray(x[:, 3:5]))
    np.testing.assert_array_equal(whole[:, 3:5], part)


class _PlainCell:
    """A protocol cell that declares no mask kinds (the reference LSTM's arithmetic)."""

    def __init__(self):
        self._ref = get_reference_cell("lstm")
        self.name, self.num_gates = "plain_lstm", 4
        self.state_names = self._ref.state_names
        self.param_shapes, self.init_params = self._ref.param_shapes, self._ref.init_params

    def forward(self, x, states, params, lengths, num_threads):
        return self._ref.forward(x, states, params, lengths, num_threads)

    def backward(self, d_out, d_finals, cache, grads, num_threads):
        return self._ref.backward(d_out, d_finals, cache, grads, num_threads)


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
def test_a_cell_without_mask_kinds_is_refused_naming_it(option):
    with pytest.raises(ValueError, match=f"^{option}: cell 'plain_lstm' does not support it"):
        Recurrent(_PlainCell(), 3, 4, **{option: 0.1})
    layer = Recurrent(_PlainCell(), 3, 4, dropout=0.0)  # without the options it runs
    layer(np.zeros((2, 1, 3), np.float32))


def test_check_masks_names_what_is_wrong():
    with pytest.raises(ValueError, match="keys from recurrent, zoneout"):
        check_masks({"dropout": 1}, 1, 2, 3, 4, np.float32)
    with pytest.raises(ValueError, match=r"masks\['recurrent'\]: expected shape \(3, 4\)"):
        check_masks({"recurrent": np.ones((4, 3))}, 1, 2, 3, 4, np.float32)
    with pytest.raises(ValueError, match="expected 2 entries"):
        check_masks({"zoneout": (np.ones((2, 3, 4)),)}, 2, 2, 3, 4, np.float32)
    with pytest.raises(ValueError, match=r"expected shape \(2 or 1, 3, 4\)"):
        check_masks({"zoneout": (np.ones((3, 3, 4)),)}, 1, 2, 3, 4, np.float32)
    rec, zone = check_masks({"zoneout": (None, np.ones((2, 3, 4)))}, 2, 2, 3, 4, np.float32)
    assert rec is None and zone[0].shape == (2, 3, 4) and not zone[0].any()
    assert check_masks({"zoneout": (None,)}, 1, 2, 3, 4, np.float32) == (None, None)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("name", ["lstm", "ln_lstm"])
def test_zoneout_entries_of_one_step_beside_entries_of_every_step(name, precision):
    """A cell with states h and c given zoneout for one state only (None for the other)
    or one state's values per step beside the other's for every step: the same results
    as the same values spelled out as (T, B, H) arrays. The kernels step both states'
    arrays alike, so a mismatch would read the (1, B, H) one past its end."""
    T, B, I, H = 40, 3, 5, 6
    rng = np.random.default_rng(4)
    layer = Recurrent(name, I, H, seed=2)
    params = layer._unit_params(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    states = tuple(rng.uniform(-1, 1, (B, H)).astype(np.float32) for _ in range(2))
    lengths = np.full(B, T, np.int64)
    k = rng.random((T, B, H)).astype(np.float32)
    one = rng.random((1, B, H)).astype(np.float32)
    if precision == "int8":
        qparams = layer.cell.quantize(params)
        run = partial(layer.cell.infer_int8, x, states, qparams, lengths, 1)
    else:
        run = partial(layer.cell.infer, x, states, params, lengths, 1)
    for given, spelled in (((k, None), (k, np.zeros_like(k))),
                           ((None, k), (np.zeros_like(k), k)),
                           ((k, one), (k, np.repeat(one, T, axis=0))),
                           ((one, k), (np.repeat(one, T, axis=0), k))):
        got = run(masks={"zoneout": given})
        want = run(masks={"zoneout": spelled})
        np.testing.assert_array_equal(got[0], want[0])
        for a, b in zip(got[1], want[1]):
            np.testing.assert_array_equal(a, b)


# ---- the command line -------------------------------------------------------------------

class _PlainCellPlugin:
    @recurrent.hookimpl
    def register_cells(self, register):
        register(_PlainCell())


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_refuses_the_options_for_a_cell_without_them_in_one_line(tmp_path):
    plugins.register_plugin(_PlainCellPlugin(), "plain-test")
    try:
        result = _invoke("train", "char-lm", "--cell", "plain_lstm", "--zoneout", "0.1",
                         "--steps", 1, "--out", tmp_path / "run")
    finally:
        plugins.unregister_plugin("plain-test")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: zoneout: cell 'plain_lstm' does not support it (its mask_kinds do not list "
        "'zoneout')"]
    assert not (tmp_path / "run").exists()
    result = _invoke("train", "seq2seq", "--attention", "additive", "--recurrent-dropout", "0.2",
                     "--steps", 1, "--out", tmp_path / "s2s")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: recurrent_dropout, zoneout: the decoder with "
                                    "additive attention")
    bad = _invoke("train", "char-lm", "--zoneout", "1.0", "--steps", 1)
    assert bad.exit_code == 2 and "Invalid value for '--zoneout'" in bad.stderr


# a small, quick char-lm run
TINY = ("--hidden", 8, "--seq-len", 8, "--batch-size", 2, "--threads", 1, "--quiet",
        "--no-plot")


def test_cli_options_are_checked_in_one_line_and_kept_on_resume(tmp_path):
    for option in ("--recurrent-dropout", "--zoneout"):
        for value in ("1", "-0.1", "x"):
            _one_line_error(_invoke("train", "char-lm", option, value, "--steps", 1,
                                    "--out", tmp_path / "bad"),
                            f"Invalid value for '{option}'", code=2)
        _one_line_error(_invoke("train", "char-lm", option, "nan", "--steps", 1,
                                "--out", tmp_path / "bad"),
                        f"{option} must be a finite number, got nan")
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    trained = _invoke("train", "char-lm", "--recurrent-dropout", 0.2, "--zoneout", 0.1,
                      "--steps", 2, *TINY, "--out", run)
    assert trained.exit_code == 0, trained.stderr
    for option, value in (("--zoneout", 0.2), ("--recurrent-dropout", 0)):
        _one_line_error(_invoke("train", "char-lm", "--resume", run, option, value),
                        f"{option} cannot change when resuming")
    resumed = _invoke("train", "char-lm", "--resume", run, "--zoneout", 0.1, "--steps", 3,
                      *TINY)
    assert resumed.exit_code == 0, resumed.stderr


def test_a_run_saved_before_the_options_reads_as_without_them(tmp_path):
    run = tmp_path / "run"
    trained = _invoke("train", "char-lm", "--steps", 2, *TINY, "--out", run)
    assert trained.exit_code == 0, trained.stderr
    before = _invoke("eval", run, "--json")
    assert before.exit_code == 0, before.stderr
    path = run / "config.json"
    saved = json.loads(path.read_text())
    assert saved["config"]["recurrent_dropout"] == 0 and saved["config"]["zoneout"] == 0
    for key in ("recurrent_dropout", "zoneout"):
        del saved["config"][key]
    path.write_text(json.dumps(saved))
    after = _invoke("eval", run, "--json")
    assert after.exit_code == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    resumed = _invoke("train", "char-lm", "--resume", run, "--steps", 3, *TINY)
    assert resumed.exit_code == 0, resumed.stderr


def test_every_format_exports_a_zoneout_run(tmp_path):
    """Every format exports a zoneout run: ONNX as a Scan over the cell's step, torch as
    a printed module that blends the states as zoneout's evaluation does (torch.nn's
    modules do not; tests/test_export.py compares both with the model)."""
    run = tmp_path / "run"
    trained = _invoke("train", "char-lm", "--zoneout", "0.1", "--hidden", 8, "--steps", 2,
                      "--seq-len", 8, "--batch-size", 2, "--threads", 1, "--quiet",
                      "--no-plot", "--out", run)
    assert trained.exit_code == 0, trained.stderr
    for fmt in ("onnx", "safetensors", "torch"):
        kept = _invoke("export", run, "--format", fmt, "--out", tmp_path / f"m.{fmt}")
        assert kept.exit_code == 0, kept.stderr
    assert "new = [0.1 * s + 0.9 * n for s" in kept.stdout   # the printed blend
    # int8 inference blends the states as zoneout's evaluation does (tests/test_int8.py):
    # its evaluation and its int8 weights' export are not refused
    fp32 = json.loads(_invoke("eval", run, "--json").stdout)["metrics"]["loss"]
    int8 = _invoke("eval", run, "--json", "--precision", "int8")
    assert int8.exit_code == 0, int8.stderr
    assert json.loads(int8.stdout)["metrics"]["loss"] == pytest.approx(fp32, rel=0.01)
    exported = _invoke("export", run, "--format", "safetensors", "--precision", "int8",
                       "--out", tmp_path / "m8.st")
    assert exported.exit_code == 0, exported.stderr
    imported = _invoke("import", tmp_path / "m8.st", "--out", tmp_path / "back")
    assert imported.exit_code == 0, imported.stderr
    again = _invoke("eval", tmp_path / "back", "--json", "--precision", "int8")
    assert json.loads(again.stdout)["metrics"] == json.loads(int8.stdout)["metrics"]


# ---- zoneout's training draws as flags ----------------------------------------------------

@pytest.mark.parametrize("name", ["rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_zoneout_flags_give_what_the_same_values_give(name, num_threads):
    """A cell that takes bool flags (rnn, float32) computes what it computes from the same
    draws as 0/1 float32 values (no candidate copy; a byte per entry)."""
    from recurrent.masks import takes_flags
    cell = get_cell(name)
    assert takes_flags(cell, np.float32) and not takes_flags(cell, np.float64)
    params, x, states, lengths, d_out, d_finals, _ = _problem(cell, 7, 5, 3, 21, np.float32,
                                                              "zoneout")
    flags = zoneout_mask(np.random.default_rng(5), 7, 5, 21, 0.4, np.bool_)
    assert flags.dtype == np.bool_ and 0 < flags.mean() < 1
    for rec in (None, variational_mask(np.random.default_rng(6), 5, 21, 0.3, np.float32)):
        results = []
        for k in (flags, flags.astype(np.float32)):
            masks = {"zoneout": (k,), **({"recurrent": rec} if rec is not None else {})}
            results.append(_run(cell, (params, x, states, lengths, d_out, d_finals, masks),
                                num_threads))
        for key in results[0]:
            np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)


def test_zoneout_flags_are_converted_for_cells_and_dtypes_without_them():
    """check_masks keeps bool flags (as uint8) only when asked; float64 rnn and the lstm
    get values, and the float64 kernel refuses flags handed to it directly."""
    from recurrent._kernels import rnn
    flags = zoneout_mask(np.random.default_rng(1), 3, 2, 4, 0.5, np.bool_)
    _, (kept,) = check_masks({"zoneout": (flags,)}, 1, 3, 2, 4, np.float32, flags=True)
    assert kept.dtype == np.uint8 and np.array_equal(kept, flags)
    _, (values,) = check_masks({"zoneout": (flags,)}, 1, 3, 2, 4, np.float32)
    assert values.dtype == np.float32 and np.array_equal(values, flags)
    for name, dtype in (("rnn_tanh", np.float64), ("lstm", np.float32)):
        cell = get_cell(name)
        problem = _problem(cell, 3, 2, 3, 4, dtype, "zoneout")
        masks = {"zoneout": tuple(flags for _ in cell.state_names)}
        as_flags = _run(cell, problem[:-1] + (masks,))
        as_values = _run(cell, problem[:-1] + (
            {"zoneout": tuple(flags.astype(dtype) for _ in cell.state_names)},))
        for key in as_flags:
            np.testing.assert_array_equal(as_flags[key], as_values[key], err_msg=key)
    x = np.zeros((3, 2, 3))
    with pytest.raises(ValueError, match="flags"):
        rnn.forward(np.empty((3, 2, 4)), np.empty((2, 4)), x, np.zeros((2, 4)),
                    np.zeros((4, 3)), np.zeros((4, 4)), np.zeros(4),
                    np.full(2, 3, np.int64), False, 1, None, flags.view(np.uint8), None)
