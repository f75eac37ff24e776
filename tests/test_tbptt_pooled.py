"""Truncated BPTT of pooled outputs (last/mean/max): SequenceModel.forward(truncate=K) and
--tbptt for pooled tasks. The forward pass must equal the untruncated one; the gradient
must equal that of a model whose first len_b - K steps per row are constants, computed
here independently, row by row, and checked by finite differences (float64)."""
import numpy as np
import pytest
from click.testing import CliRunner

import train_toys
from recurrent.cli import cli
from recurrent.conformance import numeric_grad
from recurrent.model import SequenceModel, truncation_plan
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell
from test_train import eval_records, train


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def spec_for(output, tokens):
    if tokens:
        return {"input": "tokens", "vocab_size": 6, "embed_dim": 3, "output": output,
                "output_size": 2}
    return {"input": "features", "input_size": 2, "output": output, "output_size": 2}


def inputs(spec, T, B, rng):
    if spec["input"] == "tokens":
        return rng.integers(0, spec["vocab_size"], (T, B))
    return rng.standard_normal((T, B, spec["input_size"]))


def test_truncation_plan_gathers_each_rows_last_k_steps():
    prefix, suffix, index = truncation_plan(np.array([6, 2, 4]), 6, 3, 3)
    assert list(prefix) == [3, 0, 1] and list(suffix) == [3, 2, 3]
    # row 0: steps 3..5; row 1: steps 0, 1 (then its padding, 2); row 2: steps 1..3
    assert index.tolist() == [[3, 0, 1], [4, 1, 2], [5, 2, 3]]
    prefix, suffix, index = truncation_plan(None, 5, 2, 2)
    assert list(prefix) == [3, 3] and index.tolist() == [[3, 3], [4, 4]]


@pytest.mark.parametrize("output", ["last", "mean", "max"])
@pytest.mark.parametrize("cell, dtype, tol", [("ref", np.float64, 1e-12),
                                              ("kernels", np.float32, 2e-6)])
def test_truncated_forward_equals_untruncated(output, cell, dtype, tol):
    rng = np.random.default_rng(1)
    for tokens in (False, True):
        spec = spec_for(output, tokens)
        lstm = get_reference_cell("lstm") if cell == "ref" else get_cell("lstm")
        model = SequenceModel(spec, cell=lstm, hidden_size=4, num_layers=2, dtype=dtype,
                              seed=2, num_threads=1)
        T, B = 7, 4
        x = inputs(spec, T, B, rng)
        if not tokens:
            x = x.astype(dtype)
        lengths = np.array([7, 2, 5, 4])
        state = tuple(rng.standard_normal((2, B, 4)).astype(dtype) for _ in range(2))
        for lens in (lengths, None):
            full, (h, c) = model.forward(x, lens, state)
            for K in (1, 2, 3, 6, 7, 9):
                truncated, (h_k, c_k) = model.forward(x, lens, state, truncate=K)
                np.testing.assert_allclose(truncated, full, atol=tol, rtol=0)
                np.testing.assert_allclose(h_k, h, atol=tol, rtol=0)
                np.testing.assert_allclose(c_k, c, atol=tol, rtol=0)


@pytest.mark.parametrize("output", ["last", "mean", "max"])
def test_k_covering_every_row_gives_the_full_bptt_gradient(output):
    rng = np.random.default_rng(3)
    model = SequenceModel(spec_for(output, True), cell=get_reference_cell("gru"),
                          hidden_size=3, dtype=np.float64, seed=4)
    x = inputs(model.spec, 6, 3, rng)
    lengths = np.array([4, 2, 3])  # K = 4 = the longest row (< T = 6)
    probe = rng.standard_normal((3, 2))
    grads = []
    for K in (0, 4, 6, 50):
        model.zero_grad()
        model.forward(x, lengths, truncate=K)
        model.backward(probe)
        grads.append(model.grads.copy())
    for g in grads[1:]:
        np.testing.assert_array_equal(g, grads[0])


def reference_objective(model, x, lengths, K, probe):
    """sum(probe * outputs) of a model whose first len_b - K steps of each row are frozen
    constants (taken at the current parameters), as a function of the parameters: built
    row by row from the model's own pieces, without truncation_plan or pool prefixes."""
    output = model.spec["output"]
    tokens = model.spec["input"] == "tokens"
    rows = []
    for b, length in enumerate(lengths):
        steps = min(K, length)
        p = length - steps
        start, pre_sum, pre_max = None, 0.0, -np.inf
        if p:
            h_in = model.embedding.params()["weight"][x[:p, b:b + 1]] if tokens \
                else x[:p, b:b + 1]
            pre_out, start = model.rnn.forward(h_in)  # (p, 1, H): constants
            start = tuple(s.copy() for s in start) if isinstance(start, tuple) \
                else start.copy()
            pre_sum, pre_max = pre_out.sum(axis=0), pre_out.max(axis=0)
        rows.append((b, p, length, start, pre_sum, pre_max))

    def objective():
        total = 0.0
        for b, p, length, start, pre_sum, pre_max in rows:
            ids_or_x = x[p:length, b:b + 1]
            h_in = model.embedding.params()["weight"][ids_or_x] if tokens else ids_or_x
            out, _ = model.rnn.forward(h_in, state=start)  # (steps, 1, H)
            if output == "last":
                pooled = out[-1]
            elif output == "mean":
                pooled = (pre_sum + out.sum(axis=0)) / length
            else:
                pooled = np.maximum(pre_max, out.max(axis=0))
            total += float((model.head.forward(pooled)[0] * probe[b]).sum())
        return total

    return objective


@pytest.mark.parametrize("output, tokens, layers", [
    ("last", False, 2), ("mean", True, 1), ("max", False, 1), ("mean", False, 2)],
    ids=["last-features-2layers", "mean-tokens", "max-features", "mean-features-2layers"])
def test_truncated_gradient_treats_the_prefix_as_constant(output, tokens, layers):
    rng = np.random.default_rng(5)
    model = SequenceModel(spec_for(output, tokens), cell=get_reference_cell("lstm"),
                          hidden_size=3, num_layers=layers, dtype=np.float64, seed=6)
    T, K = 6, 2
    x = inputs(model.spec, T, 3, rng)
    lengths = np.array([6, 2, 5])  # prefixes 4, 0, 3
    probe = rng.standard_normal((3, 2))
    model.zero_grad()
    model.forward(x, lengths, truncate=K)
    model.backward(probe)
    analytic = model.grads.copy()
    numeric = numeric_grad(reference_objective(model, x, lengths, K, probe), model.params)
    np.testing.assert_allclose(analytic, numeric, atol=1e-7, rtol=1e-5)
    # and it is not the full gradient: the prefix really is cut off
    model.zero_grad()
    model.forward(x, lengths)
    model.backward(probe)
    assert not np.allclose(model.grads, analytic, atol=1e-4)


def test_truncate_is_refused_where_it_has_no_meaning():
    for spec, kwargs, message in (
            (spec_for("mean", False), {"bidirectional": True}, "bidirectional"),
            ({**spec_for("last", False), "output": "sequence"}, {}, "windows")):
        model = SequenceModel(spec, cell=get_reference_cell("gru"), hidden_size=3,
                              dtype=np.float64, **kwargs)
        with pytest.raises(ValueError, match=message):
            model.forward(np.zeros((4, 2, 2)), truncate=2)
    model = SequenceModel(spec_for("max", False), cell=get_reference_cell("gru"),
                          hidden_size=3, dtype=np.float64)
    for lengths in (np.array([5, 1]), np.array([0, 3]), np.array([2.0, 3.0])):
        with pytest.raises(ValueError, match=r"lengths: expected 2 integers in 1..4"):
            model.forward(np.zeros((4, 2, 2)), lengths, truncate=2)
    with pytest.raises(ValueError, match="truncate: expected a positive integer"):
        model.forward(np.zeros((4, 2, 2)), truncate=-1)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_training_a_pooled_task_with_tbptt_reduces_the_loss(tmp_path, pooling):
    trainer, summary = train(tmp_path, "toy-sign", epochs=4, tbptt=3, pooling=pooling)
    untruncated, _ = train(tmp_path, "toy-sign", name="full", epochs=1, pooling=pooling)
    assert summary["status"] == "done"
    assert trainer.step == 4 * untruncated.step  # one optimizer step per batch, no windows
    evals = eval_records(str(tmp_path / "run"))
    assert evals[-1]["metrics"]["loss"] < evals[0]["metrics"]["loss"]
    assert evals[-1]["metrics"]["loss"] < np.log(2)


def test_cli_trains_pooled_toy_tasks_with_tbptt_and_refuses_bidirectional(tmp_path):
    def invoke(*args):
        return CliRunner().invoke(cli, ["train", "toy-sign", *map(str, args), "--epochs", 1,
                                        "--threads", 1, "--quiet"])

    for pooling in ("last", "max"):
        result = invoke("--pooling", pooling, "--tbptt", 3, "--out", tmp_path / pooling)
        assert result.exit_code == 0, result.output + result.stderr
        assert (tmp_path / pooling / "best.npz").exists()
    result = invoke("--tbptt", 3, "--bidirectional", "--out", tmp_path / "bi")
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--bidirectional" in lines[0] and "whole sequence" in lines[0]
    assert not (tmp_path / "bi").exists()
