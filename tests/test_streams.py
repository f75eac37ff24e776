"""StreamPool: streams stepped in any interleaving give what a whole-sequence forward of
each stream gives; states move between pools; bad calls fail with one-line errors."""
import numpy as np
import pytest

import recurrent
from recurrent.layers import Recurrent
from recurrent.model import SequenceModel
from recurrent.modules import softmax

TOL = dict(rtol=1e-6, atol=1e-6)


def interleaved(pool, sequences, rng):
    """Step every sequence through ``pool`` in a random interleaving (random subsets per
    call, in random order): {id: (T, K) outputs}."""
    for i in sequences:
        pool.open(i)
    position = {i: 0 for i in sequences}
    outputs = {i: [] for i in sequences}
    while any(position[i] < len(s) for i, s in sequences.items()):
        live = [i for i, s in sequences.items() if position[i] < len(s) and rng.random() < 0.6]
        rng.shuffle(live)
        ys = pool.step_arrays(live, np.array([sequences[i][position[i]] for i in live]))
        for i, y in zip(live, ys):
            outputs[i].append(np.array(y))
            position[i] += 1
    return {i: np.stack(o) for i, o in outputs.items()}


@pytest.mark.parametrize("cell, layers", [("lstm", 1), ("gru", 2), ("rnn_tanh", 3),
                                          ("lstm", 3), ("ln_lstm", 2)])
def test_interleaved_steps_equal_whole_sequence_forward(cell, layers):
    rng = np.random.default_rng(layers)
    layer = Recurrent(cell, 5, 12, num_layers=layers, seed=7,
                      dropout=0.5 if layers > 1 else 0.0)  # in training mode: dropout on
    seqs = {f"s{k}": rng.standard_normal((int(rng.integers(1, 9)), 5)).astype(np.float32)
            for k in range(6)}
    pool = recurrent.StreamPool(layer, capacity=8)
    got = interleaved(pool, seqs, rng)  # streams run in eval mode
    assert layer.training
    layer.eval()
    for i, x in seqs.items():
        out, _ = layer.forward(x[:, None], need_grad=False)  # (T, 1, H)
        np.testing.assert_allclose(got[i], out[:, 0], **TOL)
        final = pool.state(i)
        _, state = layer.forward(x[:, None], need_grad=False)
        h_n = state[0] if isinstance(state, tuple) else state
        np.testing.assert_allclose(final["h"], h_n[:, 0], **TOL)


def prefix_outputs(model, ids):
    """The model's softmax outputs for every prefix of ``ids``: one padded forward."""
    T = len(ids)
    x = np.tile(np.asarray(ids)[:, None], (1, T))  # (T, T): column b is the prefix b+1
    y, _ = model.forward(x, lengths=np.arange(1, T + 1), need_grad=False)
    return softmax(y)


@pytest.mark.parametrize("pooling, cell, scale", [("mean", "lstm", False),
                                                  ("max", "gru", False),
                                                  ("last", "rnn_relu", False),
                                                  ("mean", "gru", True)])
def test_pooled_token_model_with_wide_part_gives_each_prefix_probabilities(pooling, cell,
                                                                           scale):
    spec = {"input": "tokens", "vocab_size": 11, "embed_dim": 6, "output": pooling,
            "output_size": 3, "wide_bigrams": 16, **({"wide_scale": True} if scale else {})}
    model = SequenceModel(spec, cell=cell, hidden_size=10, num_layers=2, seed=3)
    wide = model.named_params["wide.weight"]
    wide[...] = np.random.default_rng(0).standard_normal(wide.shape)  # trained-looking
    if scale:  # a learned scale multiplies the wide logits in the pool as in forward
        model.named_params["wide.scale"][...] = 3.0
    rng = np.random.default_rng(5)
    # repeated tokens and bigrams: the wide part counts each feature once per stream
    seqs = {k: rng.integers(0, 4, size=int(rng.integers(1, 12))) for k in range(5)}
    pool = recurrent.StreamPool(model.runner(), capacity=5, softmax=True)
    got = interleaved(pool, seqs, rng)
    for k, ids in seqs.items():
        np.testing.assert_allclose(got[k], prefix_outputs(model, ids), **TOL)


def test_a_trained_char_lm_run_streams_its_next_character_probabilities(tmp_path):
    from helpers import invoke, ok
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--max-chars", 4000, "--hidden", 24, "--layers", 2,
              "--embed-dim", 8, "--batch-size", 8, "--seq-len", 16, "--steps", 8,
              "--eval-every", 8, "--threads", 1, "--quiet", "--no-plot", "--out", run))
    pool = recurrent.StreamPool(str(run), capacity=3)  # cross_entropy run: probabilities
    model = pool.model
    rng = np.random.default_rng(0)
    seqs = {k: rng.integers(0, model.spec["vocab_size"], size=20) for k in "abc"}
    got = interleaved(pool, seqs, rng)
    for k, ids in seqs.items():
        logits, _ = model.forward(ids[:, None], need_grad=False)  # (T, 1, V)
        np.testing.assert_allclose(got[k], softmax(logits[:, 0]), **TOL)
        np.testing.assert_allclose(got[k].sum(axis=1), 1.0, rtol=1e-12)


def test_a_state_moves_to_another_pool_and_continues_there():
    spec = {"input": "tokens", "vocab_size": 9, "embed_dim": 4, "output": "mean",
            "output_size": 2, "wide_bigrams": 8}
    model = SequenceModel(spec, cell="lstm", hidden_size=8, num_layers=2, seed=1)
    model.named_params["wide.weight"][...] = 0.5
    ids = np.array([1, 2, 1, 2, 3, 1, 2])
    whole = interleaved(recurrent.StreamPool(model, 2), {"x": ids}, np.random.default_rng(0))
    first, second = recurrent.StreamPool(model, 2), recurrent.StreamPool(model, 4)
    first.open("x")
    for t in range(4):
        first.step({"x": ids[t]})
    second.open("other")
    second.step({"other": 5})
    second.restore("x", first.state("x"))  # opens "x" in the second pool
    first.close("x")
    moved = [second.step({"x": t})["x"] for t in ids[4:]]
    np.testing.assert_array_equal(np.stack(moved), whole["x"][4:])
    assert "x" in second and "x" not in first and len(second) == 2 and len(first) == 0


def test_a_closed_row_is_reused_from_the_initial_state():
    layer = Recurrent("gru", 3, 4, seed=0)
    pool = recurrent.StreamPool(layer, capacity=1)
    x = np.ones((1, 3), np.float32)
    pool.open("a")
    first = pool.step_arrays(["a"], x)
    pool.step_arrays(["a"], x)
    pool.close("a")
    pool.open("b")  # the same slab row: starts from zeros again
    np.testing.assert_array_equal(pool.step_arrays(["b"], x), first)


def test_bad_calls_fail_with_one_line_messages():
    layer = Recurrent("lstm", 3, 4, seed=0)
    pool = recurrent.StreamPool(layer, capacity=2)
    pool.open("a")
    cases = [
        (ValueError, "already open", lambda: pool.open("a")),
        (KeyError, "no open stream 'zz'", lambda: pool.step({"zz": np.zeros(3)})),
        (KeyError, "no open stream 'zz'", lambda: pool.close("zz")),
        (KeyError, "no open stream 'zz'", lambda: pool.state("zz")),
        (ValueError, "shape (1, 3)", lambda: pool.step({"a": np.zeros(4)})),
        (ValueError, "NaN", lambda: pool.step({"a": np.full(3, np.nan)})),
        (ValueError, "more than once", lambda: pool.step_arrays(["a", "a"], np.zeros((2, 3)))),
        (ValueError, "different shapes", lambda: pool.step({"a": np.zeros(3),
                                                              "b": np.zeros(2)})),
        (ValueError, "hashable", lambda: pool.open(["a"])),
        (ValueError, "keys", lambda: pool.restore("b", {"h": np.zeros((1, 4))})),
        (ValueError, "shape", lambda: pool.restore("b", {"h": np.zeros((2, 4)),
                                                          "c": np.zeros((1, 4))})),
    ]
    pool.open("b")
    cases.append((ValueError, "pool is full (2 streams open)", lambda: pool.open("c")))
    for kind, fragment, call in cases:
        with pytest.raises(kind) as info:
            call()
        message = str(info.value)
        assert fragment in message and "\n" not in message, message
    tokens = SequenceModel({"input": "tokens", "vocab_size": 5, "embed_dim": 2,
                            "output": "sequence", "output_size": 5}, hidden_size=4)
    token_pool = recurrent.StreamPool(tokens, capacity=1)
    token_pool.open(0)
    with pytest.raises(ValueError, match="values in 0..4"):
        token_pool.step({0: 7})
    with pytest.raises(ValueError, match=r"expected 1 token ids"):
        token_pool.step_arrays([0], np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match="bidirectional .* cannot run one step at a time"):
        recurrent.StreamPool(Recurrent("gru", 3, 4, bidirectional=True), capacity=1)
    with pytest.raises(ValueError, match="capacity: expected a positive integer"):
        recurrent.StreamPool(layer, capacity=0)
    # a failed call changes nothing: the stream continues as if it had not happened
    assert len(pool) == 2 and pool.ids() == ["a", "b"]


@pytest.mark.parametrize("capacity", [10**13, 10**20])  # beyond memory; beyond any array
def test_a_capacity_too_large_for_memory_is_refused_naming_the_capacity(capacity):
    layer = Recurrent("lstm", 3, 4)
    with pytest.raises(MemoryError) as refused:
        recurrent.StreamPool(layer, capacity=capacity)
    message = str(refused.value)
    assert message.startswith(f"StreamPool: capacity {capacity:,} needs more memory")
    assert "\n" not in message, message
    assert len(recurrent.StreamPool(layer, capacity=2)) == 0  # the layer still makes pools


def test_the_stream_benchmark_checks_its_sides_and_prints_the_table(tmp_path):
    import json
    import os
    import subprocess
    import sys
    pytest.importorskip("torch", reason="torch not installed (the test extra)")
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_streams.py")
    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, script, "--cases", "30/7,9/9", "--input", "3",
                             "--hidden", "5", "--rounds", "1", "--seconds", "0.05",
                             "--calls", "4", "--json", str(out)], capture_output=True,
                            text=True, cwd=tmp_path, env=dict(os.environ, PYTHONSAFEPATH="1"),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| 30 / 7")]
    assert [line.split(" | ")[1] for line in table] == ["pool", "torch loop", "torch batched"]
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["max_abs_diff"] < 1e-4 and "layer" in rows[1] and "layer" not in rows[0]
    assert "BLAS (threadpoolctl)" in result.stdout


def test_the_stream_benchmark_in_int8_adds_our_fp32_and_torch_int8(tmp_path):
    import json
    import os
    import subprocess
    import sys
    pytest.importorskip("torch", reason="torch not installed (the test extra)")
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_streams.py")
    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, script, "--cases", "30/7", "--input", "3",
                             "--hidden", "5", "--rounds", "1", "--seconds", "0.05",
                             "--calls", "4", "--precision", "int8", "--json", str(out)],
                            capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONSAFEPATH="1"), timeout=120)
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| 30 / 7")]
    assert [line.split(" | ")[1] for line in table] == [
        "pool (int8)", "pool (fp32)", "torch loop", "torch batched", "torch batched int8"]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["precision"] == "int8" and row["vs_batched_int8"] > 0
