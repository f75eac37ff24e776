"""precision="bf16" (issue 17, recurrent/quant.py) from the layer to the commands: the
lstm, gru and Elman cells' bf16 products in training and inference, the refusals of
cells and dtypes without them, fp32 with one note on a CPU without AVX512_BF16, `train
--precision bf16` saved with the run and kept on resume, eval and bench in bf16.

The tests that run bf16 products call the cell kernels with their bf16 keyword
(recurrent._kernels.lstm.forward / infer / backward, bf16=True, and gru's, rnn's); they
are skipped on a CPU without AVX512_BF16 (quant.bf16_available), where bf16 runs fp32.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import installed_env, invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.checkpoint import load_arrays
from recurrent.cli import cli
from recurrent.layers import Recurrent
from recurrent.plugins import get_cell
from recurrent.quant import BF16_FALLBACK, bf16_available

needs_bf16 = pytest.mark.skipif(not bf16_available(),
                                reason="this CPU runs no bf16 products (AVX512_BF16)")
BF16_CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu", "ln_lstm")


@pytest.fixture
def peephole():
    """The example plugin's module (examples/recurrent-peephole): its cell lists no
    precisions, the cell without bf16 these tests refuse."""
    return pytest.importorskip("recurrent_peephole", reason="examples/recurrent-peephole is "
                               "not installed (pip install -e examples/recurrent-peephole)")


def _with_peephole(*args, cwd):
    """`python -m recurrent ARGS` with the example plugin's entry point loaded:
    (returncode, stderr)."""
    env = {k: v for k, v in installed_env(RECURRENT_PLUGINS="peephole").items()
           if k != "RECURRENT_NO_ENTRYPOINTS"}
    done = subprocess.run([sys.executable, "-m", "recurrent", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    return done.returncode, done.stderr

# bf16 keeps 8 bits of mantissa: the largest difference from fp32, relative to the
# largest value, that a short sequence of bf16 products reaches (bench's TOLERANCE too)
BF16_TOLERANCE = 1e-1


def _relative(a, b):
    return float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max()))


def _train_pass(cell, precision, x, **options):
    """(out, dx, parameter gradients) of one forward and backward of a seeded layer of
    ``cell`` in ``precision``."""
    layer = Recurrent(cell, x.shape[2], 16, seed=3, precision=precision, **options)
    out, _ = layer(x)
    dx, _ = layer.backward(np.cos(np.arange(out.size, dtype=np.float32)).reshape(out.shape))
    return out, dx, np.concatenate([g.ravel() for g in layer.grads().values()])


@needs_bf16
@pytest.mark.parametrize("options", [{}, {"num_layers": 2, "bidirectional": True}])
@pytest.mark.parametrize("cell", BF16_CELLS)
def test_a_layer_trains_in_bf16_close_to_fp32_and_not_as_fp32(rng, cell, options):
    """Outputs, dx and every parameter gradient of a bf16 pass are within bf16's
    tolerance of the fp32 pass and differ from it: the products ran in bf16, not the
    fp32 path under another name. rnn_relu's gradients are left out of the tolerance:
    relu's derivative is a step, so units whose pre-activation is within bf16 rounding of
    0 switch it between the passes; and ln_lstm's results altogether: its results move
    far under bf16-sized changes of its inputs and weights, in exact arithmetic too
    (tests/test_cells_bf16.py checks both against the bf16 reference, and ln_lstm against
    that sensitivity)."""
    x = rng.standard_normal((12, 5, 9)).astype(np.float32)
    bf16 = _train_pass(cell, "bf16", x, **options)
    fp32 = _train_pass(cell, "fp32", x, **options)
    for what, ours, theirs in zip(("out", "dx", "grads"), bf16, fp32):
        assert ours.dtype == np.float32, what
        if cell in ("lstm", "gru", "rnn_tanh") or (cell == "rnn_relu" and what == "out"):
            assert _relative(ours, theirs) <= BF16_TOLERANCE, what
        assert not np.array_equal(ours, theirs), what


@needs_bf16
@pytest.mark.parametrize("name", BF16_CELLS)
def test_the_layer_runs_the_cells_bf16_path(rng, name):
    """A one-layer bf16 layer's pass is the cell's own bf16 call, bitwise (the layer
    hands the precision to forward, infer and backward), and its inference runs bf16
    too."""
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    layer = Recurrent(name, 4, 8, seed=1, precision="bf16")
    out, finals_got = layer(x)
    cell = get_cell(name)
    if len(cell.state_names) == 1:   # the layer returns the one state's array itself
        finals_got = (finals_got,)
    params = {kind: layer.state_dict()[f"{kind}_l0"] for kind in cell.param_shapes(4, 8)}
    zeros = (np.zeros((3, 8), np.float32),) * len(cell.state_names)
    lengths = np.full(3, 6, np.int64)
    want, finals, cache = cell.forward(x, zeros, params, lengths, 1, precision="bf16")
    np.testing.assert_array_equal(out, want)
    for got, final in zip(finals_got, finals):
        np.testing.assert_array_equal(got[0], final)
    d_out = np.ones_like(out)
    dx, _ = layer.backward(d_out)
    grads = {kind: np.zeros_like(p) for kind, p in params.items()}
    want_dx, _ = cell.backward(d_out, (None,) * len(zeros), cache, grads, 1,
                               precision="bf16")
    np.testing.assert_array_equal(dx, want_dx)
    inferred, _ = layer(x, need_grad=False)
    layer.precision = "fp32"
    fp32, _ = layer(x, need_grad=False)
    # inference in bf16 too: far nearer the bf16 training pass than fp32 is
    assert _relative(inferred, out) < _relative(fp32, out) / 10


def test_cells_without_bf16_are_refused_naming_the_cell(peephole):
    cell = peephole.PeepholeLSTMCell()
    with pytest.raises(ValueError) as refused:
        Recurrent(cell, 4, 6, precision="bf16")
    assert str(refused.value) == ("precision bf16: cell 'peephole_lstm' has no bf16 path (its "
                                  "precisions do not list bf16)")
    layer = Recurrent(cell, 4, 6)
    with pytest.raises(ValueError, match="cell 'peephole_lstm' has no bf16 path"):
        layer.precision = "bf16"
    assert layer.precision == "fp32"


def test_bf16_needs_a_float32_layer():
    with pytest.raises(ValueError) as refused:
        Recurrent("lstm", 4, 6, dtype=np.float64, precision="bf16")
    assert str(refused.value) == ("precision bf16: needs a float32 layer, this one is "
                                  "float64")


@pytest.mark.parametrize("name", BF16_CELLS)
def test_the_cells_list_bf16_and_refuse_other_precisions(rng, name):
    cell = get_cell(name)
    assert cell.precisions == ("fp32", "bf16")
    x = rng.standard_normal((2, 1, 3)).astype(np.float32)
    params = {kind: np.zeros(shape, np.float32)
              for kind, shape in cell.param_shapes(3, 4).items()}
    states = (np.zeros((1, 4), np.float32),) * len(cell.state_names)
    with pytest.raises(ValueError, match=f"cell '{name}' runs in fp32 or bf16, got 'int8'"):
        cell.forward(x, states, params, np.full(1, 2, np.int64), 1, precision="int8")
    with pytest.raises(ValueError, match="precision bf16: needs float32 arrays, got float64"):
        cell.forward(x.astype(np.float64), tuple(s.astype(np.float64) for s in states),
                     {k: v.astype(np.float64) for k, v in params.items()},
                     np.full(1, 2, np.int64), 1, precision="bf16")


_SEQ2SEQ = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 6, "embed_dim": 3,
            "attention": "general", "bos": 1, "eos": 2, "output": "sequence",
            "output_size": 6}


def _pairs(rng, B=4, T=5):
    """x (T, B, 2): source and target token ids, every row T long."""
    x = rng.integers(3, 6, (T, B, 2))
    return x, np.full(B, T, np.int64)


def test_seq2seq_precision_sets_both_stacks_or_neither(peephole):
    from recurrent.seq2seq import Seq2SeqModel
    model = Seq2SeqModel(_SEQ2SEQ, cell=peephole.PeepholeLSTMCell(), hidden_size=4, seed=0)
    with pytest.raises(ValueError, match="cell 'peephole_lstm' has no bf16 path"):
        model.precision = "bf16"
    assert model.encoder.precision == model.decoder.precision == "fp32"
    model = Seq2SeqModel(_SEQ2SEQ, cell="lstm", hidden_size=4, seed=0)
    model.precision = "bf16"
    assert model.encoder.precision == model.decoder.precision == "bf16"


@needs_bf16
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_trains_in_bf16(rng, cell):
    """A seq2seq model's training pass (both stacks' forward and backward) in bf16:
    within bf16's tolerance of fp32's and not equal to it."""
    from recurrent.seq2seq import Seq2SeqModel
    x, lengths = _pairs(rng)
    results = {}
    for precision in ("fp32", "bf16"):
        model = Seq2SeqModel(_SEQ2SEQ, cell=cell, hidden_size=8, num_layers=2, seed=5)
        model.precision = precision
        y, _ = model.forward(x, lengths=lengths, need_grad=True)
        model.backward(np.ones_like(y))
        results[precision] = (y, model.grads.copy())
    for ours, theirs in zip(results["bf16"], results["fp32"]):
        assert _relative(ours, theirs) <= BF16_TOLERANCE
        assert not np.array_equal(ours, theirs)


_FALLBACK = """
import numpy as np
from recurrent.layers import Recurrent
x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
results = []
for precision in ("bf16", "fp32", "bf16"):
    layer = Recurrent("lstm", 3, 4, seed=2, precision=precision)
    out, _ = layer(x)
    dx, _ = layer.backward(np.ones_like(out))
    results.append(np.concatenate([out.ravel(), dx.ravel(),
                                   *(g.ravel() for g in layer.grads().values())]))
print(int(np.array_equal(results[0], results[1]) and np.array_equal(results[2], results[1])))
"""


@pytest.mark.parametrize("level", ["avx2", "portable"])
def test_without_bf16_instructions_bf16_runs_fp32_with_one_note(level):
    """RECURRENT_VECTOR_LEVEL below AVX-512 counts as a CPU without AVX512_BF16: bf16
    layers train as fp32 (the same results, bitwise), with the note printed once in the
    process however many passes run."""
    done = subprocess.run([sys.executable, "-c", _FALLBACK], capture_output=True, text=True,
                          env=installed_env(RECURRENT_VECTOR_LEVEL=level), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
    assert done.stderr.splitlines() == [BF16_FALLBACK]


_CELL_FALLBACK = """
import numpy as np
from recurrent.plugins import get_cell
same = []
for name in ("lstm", "gru", "rnn_tanh", "rnn_relu", "ln_lstm"):
    cell = get_cell(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    params = {kind: rng.standard_normal(shape).astype(np.float32)
              for kind, shape in cell.param_shapes(3, 4).items()}
    states = (np.zeros((2, 4), np.float32),) * len(cell.state_names)
    lengths = np.full(2, 5, np.int64)
    results = []
    for keywords in ({"precision": "bf16"}, {}):
        out, _, cache = cell.forward(x, states, params, lengths, 1, **keywords)
        inferred, _ = cell.infer(x, states, params, lengths, 1, **keywords)
        grads = {kind: np.zeros_like(p) for kind, p in params.items()}
        dx, _ = cell.backward(np.ones_like(out), (None,) * len(states), cache, grads, 1,
                              **keywords)
        results.append(np.concatenate([out.ravel(), inferred.ravel(), dx.ravel(),
                                       *(g.ravel() for g in grads.values())]))
    same.append(np.array_equal(results[0], results[1]))
print(int(all(same)))
"""


def test_the_cells_called_directly_without_bf16_instructions_run_fp32():
    """The cell's own bf16 calls on a CPU without AVX512_BF16 run fp32 with the layer's
    note (bitwise fp32's results), not the kernels' portable emulation of the
    instructions."""
    done = subprocess.run([sys.executable, "-c", _CELL_FALLBACK], capture_output=True,
                          text=True, env=installed_env(RECURRENT_VECTOR_LEVEL="avx2"),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
    assert done.stderr.splitlines() == [BF16_FALLBACK]


def test_a_data_parallel_run_without_bf16_instructions_notes_it_once(tmp_path):
    """--ranks 2 on a CPU without AVX512_BF16: the job's stderr has the note once (rank
    0's), not once per rank."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
    text = tiny_text(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "recurrent", "train", "char-lm", "--data", str(text),
         "--steps", "2", "--hidden", "8", "--embed-dim", "4", "--seq-len", "16",
         "--threads", "1", "--no-plot", "--quiet", "--precision", "bf16", "--ranks", "2",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=installed_env(RECURRENT_VECTOR_LEVEL="avx2"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines().count(BF16_FALLBACK) == 1, done.stderr


def test_info_says_whether_bf16_runs(monkeypatch):
    line = next(line for line in ok(invoke("info")).splitlines() if line.startswith("bf16"))
    assert ("AVX512_BF16, bfloat16 operands with float32 sums" in line) == bf16_available()
    monkeypatch.setenv("RECURRENT_VECTOR_LEVEL", "avx2")
    assert json.loads(ok(invoke("info", "--json")))["bf16"] is False
    assert "not on this CPU (no AVX512_BF16 in use): --precision bf16 runs fp32" in ok(
        invoke("info"))


# ---- the commands -----------------------------------------------------------------------

def _config(run):
    return json.loads((run / "config.json").read_text(encoding="utf-8"))["config"]


@needs_bf16
def test_train_in_bf16_is_saved_kept_on_resume_and_evaluated(tmp_path):
    text = tiny_text(tmp_path)
    run = tmp_path / "run"
    first = invoke("train", "char-lm", "--data", text, "--steps", 3, "--hidden", 8,
                   "--embed-dim", 4, "--seq-len", 16, "--threads", 1, "--no-plot",
                   "--precision", "bf16", "--out", run)
    assert ", bf16 products" in ok(first).splitlines()[0]   # the training header line
    assert _config(run)["precision"] == "bf16"
    arrays, _ = load_arrays(str(run / "last.npz"))     # master weights: float32
    assert {a.dtype for a in arrays.values() if a.dtype.kind == "f"} == {np.dtype(np.float32)}
    ok(invoke("train", "char-lm", "--resume", run, "--steps", 4, "--quiet"))
    assert _config(run)["precision"] == "bf16"
    one_line_error(invoke("train", "char-lm", "--resume", run, "--steps", 5,
                          "--precision", "fp32"),
                   "--precision cannot change when resuming (the run has 'bf16')")
    # eval runs fp32 unless asked: the run's precision is how it trained
    fp32 = json.loads(ok(invoke("eval", run, "--json", "--threads", 1)))
    bf16 = json.loads(ok(invoke("eval", run, "--json", "--threads", 1, "--precision", "bf16")))
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    loss, loss_bf16 = fp32["metrics"]["loss"], bf16["metrics"]["loss"]
    assert loss_bf16 != loss and abs(loss_bf16 - loss) <= 1e-2 * loss
    header = ok(invoke("eval", run, "--threads", 1, "--precision", "bf16")).splitlines()[0]
    assert header.endswith(", bf16 inference")


@needs_bf16
def test_an_fp32_run_evaluates_and_predicts_in_bf16(task_runs):
    run = task_runs["char-lm"]
    assert _config(run)["precision"] == "fp32"
    result = json.loads(ok(invoke("eval", run, "--json", "--threads", 1,
                                  "--precision", "bf16")))
    assert result["precision"] == "bf16" and np.isfinite(result["metrics"]["loss"])
    ok(invoke("predict", run, "--precision", "bf16", "--length", 5))


def test_without_bf16_instructions_headers_and_json_report_fp32(tmp_path, monkeypatch):
    """On a CPU without AVX512_BF16 a --precision bf16 run trains and evaluates in fp32,
    and says so: no "bf16 products" in the training header, eval's header and --json
    report fp32 (the config keeps what was asked, for a resume on another CPU)."""
    monkeypatch.setenv("RECURRENT_VECTOR_LEVEL", "avx2")
    text = tiny_text(tmp_path)
    run = tmp_path / "run"
    header = ok(invoke("train", "char-lm", "--data", text, "--steps", 3, "--hidden", 8,
                       "--embed-dim", 4, "--seq-len", 16, "--threads", 1, "--no-plot",
                       "--precision", "bf16", "--out", run)).splitlines()[0]
    assert "products" not in header and "lstm x1 hidden 8" in header
    assert _config(run)["precision"] == "bf16"
    result = json.loads(ok(invoke("eval", run, "--json", "--threads", 1,
                                  "--precision", "bf16")))
    assert result["precision"] == "fp32"
    header = ok(invoke("eval", run, "--threads", 1, "--precision", "bf16")).splitlines()[0]
    assert "inference" not in header and "split valid" in header


def test_eval_and_predict_help_offer_bf16(task_runs):
    """The --precision help of eval and predict says what bf16 is and which cells have it,
    as train's does."""
    for args in (("eval", "--help"), ("predict", task_runs["char-lm"], "--help"),
                 ("train", "char-lm", "--help")):
        text = " ".join(ok(invoke(*args)).split())
        assert "multiplies bfloat16 values with float32 sums" in text, args
        assert "(every built-in cell; CPUs with AVX512_BF16" in text, args


def test_train_in_bf16_refuses_a_cell_without_it_before_making_the_run(tmp_path, peephole):
    text = tiny_text(tmp_path)
    run = tmp_path / "run"
    code, stderr = _with_peephole("train", "char-lm", "--data", text, "--steps", "2",
                                  "--no-plot", "--precision", "bf16", "--cell",
                                  "peephole_lstm", "--out", run, cwd=tmp_path)
    assert code == 1 and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("Error: --precision bf16: cell 'peephole_lstm' has no bf16 "
                             "path"), stderr
    assert not run.exists()


def test_export_refuses_bf16_in_one_line(task_runs, tmp_path):
    one_line_error(invoke("export", task_runs["char-lm"], "--format", "safetensors",
                          "--precision", "bf16", "--out", tmp_path / "m.safetensors"),
                   "--precision bf16 is how recurrent multiplies")
    assert not (tmp_path / "m.safetensors").exists()


@needs_bf16
@pytest.mark.parametrize("mode", ["train", "infer"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "ln_lstm"])
def test_bench_times_our_bf16_against_torchs_autocast(tmp_path, cell, mode):
    """--precision bf16 --vs torch: our bf16 cell checked against torch's bf16 autocast
    within bf16's tolerance, then timed beside it and beside our fp32."""
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--precision", "bf16", "--cell", cell,
                                      "--vs", "torch", "--config", "6,2,3,5", "--threads", "1",
                                      "--repeats", "1", "--rounds", "1", "--mode", mode,
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "torch in bf16, recurrent in bf16" in result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["precision"], row["torch_precision"], row["mode"]) == ("bf16", "bf16", mode)
    assert 0 < row["max_rel_diff"] <= BF16_TOLERANCE and row["agreement"] == "tolerance"
    assert row["ours"]["median_ms"] > 0 and row["fp32"]["median_ms"] > 0


@needs_bf16
def test_bench_times_rnn_relu_in_bf16_where_rounding_flips_its_derivative(capfd):
    """relu's derivative is a step: in bf16 some units' pre-activations fall on the other
    side of 0 than in torch's bf16, so dx differs by more than bf16's tolerance while each
    side is as far from the float64 result. Timed with a note, not refused as wrong."""
    pytest.importorskip("torch")
    from recurrent_plugins.bench import TOLERANCE, Problem, check_agreement
    diff, agreement = check_agreement(Problem("rnn_relu", 10, 4, 8, 16), "train", 1, "bf16",
                                      "bf16")
    assert diff > TOLERANCE["bf16"] and agreement == "float64"
    assert ("rnn_relu (10, 4, 8, 16), 1 thread(s): dx differs from torch by"
            in capfd.readouterr().err)


@needs_bf16
def test_bench_says_when_a_chaotic_problem_cannot_be_checked(capfd):
    """ln_lstm at (100, 32, 64, 128) from bench's random weights is chaotic in bf16: both
    sides' results are as far from float64 as their own size, so agreeing with torch
    proves nothing. The note says the timing is unchecked rather than that it agrees."""
    pytest.importorskip("torch")
    from recurrent_plugins.bench import Problem, check_agreement
    assert check_agreement(Problem("ln_lstm", 100, 32, 64, 128), "train", 1, "bf16",
                           "bf16")[1] == "unchecked"
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("note: ln_lstm (100, 32, 64, 128), 1 thread(s): ")
    assert "the problem is chaotic in bf16 at this size" in err
    assert err.rstrip().endswith("timing it unchecked")


@needs_bf16
def test_bench_holds_our_bf16_beside_torch_fp32_to_torch_bf16_too(capfd):
    """ln_lstm at (50, 4, 16, 32) is chaotic in bf16, not in float32: our bf16 output is
    as far from torch's float32 one as its own size, as torch's bf16 output is. Timed with
    the note that it is unchecked, not refused as a wrong result; a wrong bf16 result is
    still refused."""
    pytest.importorskip("torch")
    import recurrent
    from recurrent_plugins.bench import Problem, check_agreement

    class Halved(Problem):  # a kernel that is wrong by half
        def ours(self, mode, num_threads, precision="fp32"):
            run = super().ours(mode, num_threads, precision)
            return lambda: (run()[0] * 0.5, None)

    size = (50, 4, 16, 32)
    check_agreement(Problem("ln_lstm", *size), "infer", 1, "fp32", "bf16")
    err = capfd.readouterr().err
    assert "torch's fp32 and bf16 results are up to" in err
    assert "the problem is chaotic in bf16 at this size" in err
    with pytest.raises(recurrent.UserError, match="output differs from torch"):
        check_agreement(Halved("lstm", 20, 3, 4, 8), "infer", 1, "fp32", "bf16")


def test_bench_bf16_refuses_cells_without_it(tmp_path, peephole):
    code, stderr = _with_peephole("bench", "--precision", "bf16", "--cell",
                                  "lstm,peephole_lstm", "--config", "4,2,3,5", cwd=tmp_path)
    assert code == 1 and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("Error: --precision bf16: cell 'peephole_lstm' has no bf16 "
                             "path"), stderr


def test_bench_bf16_refuses_a_cpu_without_it(monkeypatch):
    """Timings of fp32 under bf16's name would mislead: refused where bf16 cannot run."""
    monkeypatch.setenv("RECURRENT_VECTOR_LEVEL", "avx2")
    result = CliRunner().invoke(cli, ["bench", "--precision", "bf16", "--cell", "lstm",
                                      "--config", "4,2,3,5"])
    one_line_error(result, "--precision bf16: this CPU has no AVX512_BF16 instructions")
