"""The example third-party package (examples/recurrent-peephole) end to end: its cell, loss
and command load through the "recurrent" entry point, and its cell works in layers."""
import pathlib
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import installed_env

from recurrent import plugins

peephole = pytest.importorskip(
    "recurrent_peephole",
    reason="examples/recurrent-peephole is not installed (pip install -e examples/recurrent-peephole)")


def test_the_installed_example_is_this_checkouts():
    """The example is installed as a copy (its kernel is compiled at install), so the suite
    tests that copy: it must hold this checkout's sources (reinstall after editing them)."""
    installed = pathlib.Path(peephole.__file__).parent
    source = pathlib.Path(__file__).parents[1] / "examples" / "recurrent-peephole" / "src" / \
        "recurrent_peephole"
    names = sorted(p.name for p in source.iterdir() if p.suffix in (".py", ".h"))
    assert "cell.py" in names and "peephole_gates.h" in names
    if installed == source:
        return  # an editable install runs the sources themselves
    stale = [n for n in names if (installed / n).read_bytes() != (source / n).read_bytes()]
    assert not stale, f"reinstall examples/recurrent-peephole: {stale} differ"


@pytest.fixture
def entry_point_registry(monkeypatch):
    """A fresh registry loading only the example's entry point (the suite's global one has
    entry points turned off)."""
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.setenv("RECURRENT_PLUGINS", "peephole")
    return plugins.Registry(default_plugins=("recurrent_plugins.losses",))


def test_cell_loss_and_command_load_through_the_entry_point(entry_point_registry):
    registry = entry_point_registry
    cell = registry.entries("cell")["peephole_lstm"]
    loss = registry.entries("loss")["huber"]
    command = registry.entries("command")["peephole-trace"]
    for entry in (cell, loss, command):
        assert (entry.plugin, entry.version) == ("peephole", peephole.__version__)
    assert isinstance(cell.obj, peephole.PeepholeLSTMCell)
    assert isinstance(registry.get("loss", "huber"), peephole.HuberLoss)
    assert "mse" in registry.entries("loss")  # built-ins unaffected
    assert registry.broken == {}


def test_command_runs_on_the_cli(entry_point_registry):
    @click.group()
    def root():
        pass

    entry_point_registry.register_commands(root)
    result = CliRunner().invoke(root, ["peephole-trace", "--hidden", "3", "--steps", "4"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["step", "input", "mean(i)", "mean(f)", "mean(o)", "mean(c)", "mean(h)"]
    assert len(lines) == 5
    gates = np.array([[float(v) for v in line.split()[2:5]] for line in lines[1:]])
    assert np.all((gates > 0) & (gates < 1))  # sigmoid gates
    bad = CliRunner().invoke(root, ["peephole-trace", "--hidden", "0"])
    assert bad.exit_code == 2 and "Invalid value for '--hidden'" in bad.output


def test_command_refuses_a_negative_seed_in_one_line():
    """Through recurrent's own command line, the example loaded by its entry point (a
    plain click group would print click's usage lines above the error)."""
    env = installed_env(RECURRENT_PLUGINS="peephole")
    env.pop("RECURRENT_NO_ENTRYPOINTS", None)
    bad = subprocess.run([sys.executable, "-m", "recurrent", "peephole-trace", "--seed", "-1"],
                         capture_output=True, text=True, env=env)
    assert (bad.returncode, bad.stdout) == (2, ""), bad.stderr
    assert bad.stderr == "Error: Invalid value for '--seed': -1 is not in the range x>=0.\n"


def test_peephole_cell_without_peepholes_is_an_lstm(rng):
    """Zero peephole weights reduce the cell to the standard LSTM (reference cell)."""
    from recurrent.reference import get_reference_cell
    cell = peephole.PeepholeLSTMCell()
    params = {k: np.zeros(s) for k, s in cell.param_shapes(3, 4).items()}
    cell.init_params(params, 4, rng)
    x = rng.normal(size=(5, 2, 3))
    states = (rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    lengths = np.array([5, 3])
    out, finals, _ = cell.forward(x, states, params, lengths)
    lstm_params = {k: params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for k in ("peephole_i", "peephole_f", "peephole_o"):
        params[k][:] = 0
    out0, finals0, _ = cell.forward(x, states, params, lengths)
    ref_out, ref_finals, _ = get_reference_cell("lstm").forward(x, states, lstm_params, lengths)
    np.testing.assert_allclose(out0, ref_out, atol=1e-12)
    np.testing.assert_allclose(finals0[1], ref_finals[1], atol=1e-12)
    assert np.abs(out - out0).max() > 1e-3  # and the peepholes do change the result


def test_peephole_cell_in_a_layer(rng):
    from recurrent import layers
    layer = layers.Recurrent(peephole.PeepholeLSTMCell(), input_size=3, hidden_size=4,
                             num_layers=2, bidirectional=True, seed=0, dtype=np.float64)
    assert "peephole_o_l1_reverse" in layer.state_dict()
    x = rng.normal(size=(5, 2, 3))
    out, (h_n, c_n) = layer(x, lengths=np.array([5, 2]))
    assert out.shape == (5, 2, 8) and h_n.shape == c_n.shape == (4, 2, 4)
    assert np.all(out[2:, 1] == 0)
    layer.zero_grad()
    dx, _ = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape
    assert np.abs(layer.grads()["peephole_f_l0"]).sum() > 0


# ---- through the installed `recurrent` command, entry points on ------------------------

def _recurrent(*args, cwd, plugins_env=True):
    """Run `python -m recurrent ARGS` in a fresh process; entry points on and limited to the
    example (plugins_env) or off. ``cwd`` must not be the repository root, or `-m` would
    import the source tree (without compiled kernels) instead of the installed package."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECURRENT_NO_ENTRYPOINTS", "RECURRENT_PLUGINS")}
    if plugins_env:
        env["RECURRENT_PLUGINS"] = "peephole"
    else:
        env["RECURRENT_NO_ENTRYPOINTS"] = "1"
    return subprocess.run([sys.executable, "-m", "recurrent", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_train_and_eval_with_the_plugin_cell_through_the_cli(tmp_path):
    import json
    run = tmp_path / "peephole-run"
    result = _recurrent("train", "char-lm", "--cell", "peephole_lstm", "--hidden", "16",
                        "--max-chars", "20000", "--batch-size", "8", "--seq-len", "16",
                        "--steps", "40", "--eval-every", "20", "--log-every", "10",
                        "--seed", "0", "--threads", "1", "--quiet", "--out", str(run),
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["config"]["cell"] == "peephole_lstm"
    with np.load(run / "best.npz", allow_pickle=False) as weights:
        assert {"param/rnn.peephole_i_l0", "param/rnn.peephole_o_l0"} <= set(weights.files)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_losses = [r["mean_loss"] for r in records if r.get("kind") == "train"]
    valid_losses = [r["metrics"]["loss"] for r in records if r.get("kind") == "eval"]
    assert len(train_losses) == 4 and len(valid_losses) == 2
    assert train_losses[-1] < train_losses[0] - 0.3  # it learns (from ~ln V = 4.1)
    assert valid_losses[-1] < valid_losses[0]

    evaluated = _recurrent("eval", str(run), "--split", "valid", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["metrics"]["loss"] == pytest.approx(min(valid_losses), rel=1e-6)  # best checkpoint

    # without the plugin the run cannot be loaded: one line naming the missing cell, its
    # plugin and distribution
    missing = _recurrent("eval", str(run), cwd=tmp_path, plugins_env=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert ("this run needs cell 'peephole_lstm' of plugin 'peephole' (recurrent-peephole "
            "0.2.0), which is not loaded (RECURRENT_NO_ENTRYPOINTS is set") in missing.stderr


def test_plugins_listing_and_check_through_the_cli(tmp_path):
    import json
    listed = _recurrent("plugins", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)
    rows = {(kind, row["name"]): row for kind in ("cells", "losses", "commands")
            for row in listing[kind]}
    for key in (("cells", "peephole_lstm"), ("losses", "huber"), ("commands", "peephole-trace")):
        assert (rows[key]["plugin"], rows[key]["version"]) == ("peephole", peephole.__version__)
    assert rows[("commands", "train")]["plugin"] == "recurrent"
    assert listing["broken"] == []

    checked = _recurrent("plugins", "check", "peephole_lstm", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "PASS  gradient: peephole_f" in checked.stdout
    assert checked.stdout.strip().endswith("cell 'peephole_lstm': 23/23 checks passed")


# ---- the compiled cell against its numpy reference --------------------------------------

def _problem(rng, dtype, T=7, B=5, I=3, H=21):
    """Parameters (peepholes scaled up so that they matter), input, states, lengths with a
    row of length 0 and rows shorter than T, d_out and final-state gradients."""
    ref = peephole.ReferencePeepholeLSTMCell()
    params = {k: np.zeros(s, dtype) for k, s in ref.param_shapes(I, H).items()}
    ref.init_params(params, H, rng)
    for kind in ("peephole_i", "peephole_f", "peephole_o"):
        params[kind] *= 4
    x = rng.standard_normal((T, B, I)).astype(dtype)
    states = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    lengths = np.resize([T, 0, 3, T, 1], B)
    d_out = rng.standard_normal((T, B, H)).astype(dtype)
    d_finals = (rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((B, H)).astype(dtype))
    return params, x, states, lengths, d_out, d_finals


def _run(cell, problem, num_threads):
    params, x, states, lengths, d_out, d_finals = problem
    out, finals, cache = cell.forward(x, states, params, lengths, num_threads)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, num_threads)
    return {"out": out, "h_n": finals[0], "c_n": finals[1], "dx": dx, "dh0": d_states[0],
            "dc0": d_states[1], **{f"grad {k}": v for k, v in grads.items()}}


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_compiled_cell_matches_the_numpy_reference(rng, dtype, tol):
    problem = _problem(rng, dtype)
    fast = _run(peephole.PeepholeLSTMCell(), problem, 2)
    ref = _run(peephole.ReferencePeepholeLSTMCell(), problem, 1)
    for name, value in fast.items():
        assert value.dtype == dtype, name
        np.testing.assert_allclose(value, ref[name], rtol=tol, atol=tol, err_msg=name)
    assert np.abs(fast["grad peephole_o"]).max() > 1e-2  # the peepholes do get gradients


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_cell_is_bitwise_equal_for_any_thread_count(rng, dtype):
    # large enough that kernel_threads gives each region more than one thread
    problem = _problem(rng, dtype, T=40, B=9, I=48, H=160)
    one = _run(peephole.PeepholeLSTMCell(), problem, 1)
    for num_threads in (2, 3):
        other = _run(peephole.PeepholeLSTMCell(), problem, num_threads)
        for name, value in one.items():
            assert np.array_equal(value, other[name]), (name, num_threads)


def test_compiled_cell_is_what_the_plugin_registers(entry_point_registry):
    cell = entry_point_registry.get("cell", "peephole_lstm")
    assert type(cell) is peephole.PeepholeLSTMCell
    assert isinstance(cell, peephole.ReferencePeepholeLSTMCell)  # same params and init
    assert "compiled" in repr(cell)


def test_huber_refuses_a_mask_of_the_wrong_shape():
    # was numpy's IndexError ("boolean index did not match") from inside the loss
    import numpy as np
    import pytest
    loss = peephole.HuberLoss()
    outputs = np.zeros((4, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"mask: expected shape \(4, 3\), got \(5,\)"):
        loss.value_and_grad(outputs, outputs, np.ones(5))
    value, _ = loss.value_and_grad(outputs + 1, outputs, np.ones((4, 3)))
    assert value == pytest.approx(0.5)


def test_a_misspelled_allow_list_name_is_listed_as_broken(monkeypatch):
    # RECURRENT_PLUGINS=pephole loaded nothing and said nothing
    monkeypatch.delenv("RECURRENT_NO_ENTRYPOINTS", raising=False)
    monkeypatch.setenv("RECURRENT_PLUGINS", "pephole, peephole")
    registry = plugins.Registry(default_plugins=("recurrent_plugins.losses",))
    assert "huber" in registry.entries("loss")  # the right name still loads
    assert set(registry.broken) == {"pephole"}
    assert registry.broken["pephole"].startswith(
        "named in RECURRENT_PLUGINS, but no installed distribution declares it (declared: ")
    assert "peephole" in registry.broken["pephole"]
