"""StreamPool.read: one stream advanced by many steps in one call gives what as many
step calls give, across chunk boundaries, for every kind of pooled output, a wide part,
an ensemble and int8; a failed read changes nothing."""
import numpy as np
import pytest
from helpers import read_token_pool

import recurrent
import recurrent.streams
from recurrent.ensemble import EnsembleModel
from recurrent.layers import Recurrent
from recurrent.model import SequenceModel
from recurrent.plugins import get_loss
from recurrent.quant import bf16_available

TOL = dict(rtol=1e-5, atol=1e-6)


def stepped(pool, stream_id, xs):
    """The output after stepping ``xs`` one at a time, and the stream's state."""
    for x in xs[:-1]:
        pool.step_arrays([stream_id], np.asarray(x)[None], outputs=False)
    y = pool.step_arrays([stream_id], np.asarray(xs[-1])[None])[0]
    return y, pool.state(stream_id)


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], **TOL, err_msg=name)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(recurrent.streams, "READ_CHUNK", 7)  # reads cross chunk ends


@pytest.mark.parametrize("pooling, cell, bigrams", [("sequence", "lstm", 0),
                                                    ("mean", "gru", 512),
                                                    ("max", "lstm", 16),
                                                    ("last", "rnn_tanh", 0),
                                                    ("mean", "ln_lstm", 8)])
def test_a_read_equals_its_steps_for_token_models(pooling, cell, bigrams, small_chunks):
    spec = {"input": "tokens", "vocab_size": 13, "embed_dim": 5, "output": pooling,
            "output_size": 4}
    if bigrams:
        spec["wide_bigrams"] = bigrams
    model = SequenceModel(spec, cell=cell, hidden_size=9, num_layers=2, seed=2)
    if bigrams:
        wide = model.named_params["wide.weight"]
        wide[...] = np.random.default_rng(1).standard_normal(wide.shape)
    rng = np.random.default_rng(4)
    first, then = rng.integers(0, 6, 23), rng.integers(0, 13, 16)  # repeats: wide once each
    then[0] = 12  # a bigram across the two reads that the first has not seen
    by_steps = recurrent.StreamPool(model, capacity=2, softmax=True)
    by_read = recurrent.StreamPool(model, capacity=2, softmax=True)
    for pool in (by_steps, by_read):
        pool.open("s")
    stepped(by_steps, "s", first)
    assert by_read.read("s", first, outputs=False) is None
    want, want_state = stepped(by_steps, "s", then)  # a second read continues the first
    got = by_read.read("s", then)
    np.testing.assert_allclose(got, want, **TOL)
    assert_same_state(by_read.state("s"), want_state)
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-12)


def test_a_read_of_features_equals_a_whole_sequence_forward(small_chunks):
    layer = Recurrent("gru", 3, 6, num_layers=2, seed=0, dropout=0.5)  # training: eval'd
    x = np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32)
    pool = recurrent.StreamPool(layer, capacity=3)
    pool.open(1)
    got = pool.read(1, x)
    assert layer.training
    layer.eval()
    out, _ = layer.forward(x[:, None], need_grad=False)  # (T, 1, H)
    np.testing.assert_allclose(got, out[-1, 0], **TOL)


def test_an_ensemble_and_int8_read_as_they_step(small_chunks):
    spec = {"input": "tokens", "vocab_size": 10, "embed_dim": 4, "output": "mean",
            "output_size": 3, "wide_bigrams": 8}
    members = [SequenceModel(spec, hidden_size=8, seed=k) for k in range(3)]
    for k, m in enumerate(members):
        wide = m.named_params["wide.weight"]
        wide[...] = np.random.default_rng(k).standard_normal(wide.shape)
    ids = np.random.default_rng(3).integers(0, 10, 40)
    for model in (EnsembleModel(members, get_loss("cross_entropy")), members[0]):
        for precision in ("fp32", "int8"):
            a, b = (recurrent.StreamPool(model, 1, softmax=True, precision=precision)
                    for _ in range(2))
            a.open(0)
            b.open(0)
            want, want_state = stepped(a, 0, ids)
            np.testing.assert_allclose(b.read(0, ids), want, **TOL)
            assert_same_state(b.state(0), want_state)


@pytest.mark.skipif(not bf16_available(), reason="this CPU runs no bf16 products")
@pytest.mark.parametrize("cell", ["ln_lstm", "gru"])
def test_a_bf16_read_equals_its_steps_and_the_whole_sequence(cell, small_chunks):
    """A pool of a bf16 layer: a read, the same steps one at a time and the layer's
    forward over the whole sequence give the same bits (every product of a step is
    computed the same way whatever steps share the call), and not the fp32 ones."""
    layer = Recurrent(cell, 3, 6, num_layers=2, seed=0, precision="bf16")
    layer.eval()
    x = np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32)
    by_steps, by_read = (recurrent.StreamPool(layer, 1) for _ in range(2))
    by_steps.open(0)
    by_read.open(0)
    stepped_out, stepped_state = stepped(by_steps, 0, x)
    got = by_read.read(0, x)
    out, state = layer.forward(x[:, None], need_grad=False)  # (T, 1, H)
    assert np.array_equal(got, stepped_out) and np.array_equal(got, out[-1, 0])
    for name, value in by_read.state(0).items():
        assert np.array_equal(value, stepped_state[name]), name
    layer.precision = "fp32"
    assert not np.array_equal(got, layer.forward(x[:, None], need_grad=False)[0][-1, 0])


def test_bad_reads_fail_with_one_line_messages_and_change_nothing():
    pool, before = read_token_pool(5, 2, 4, 4, capacity=1, ids=[1, 2, 3])
    cases = [(KeyError, "read: no open stream 'b'", lambda: pool.read("b", [1])),
             (ValueError, "read: no inputs; give at least one step", lambda: pool.read("a", [])),
             (ValueError, "values in 0..4", lambda: pool.read("a", [1, 9])),
             (ValueError, "expected T token ids, one per step (shape (T,)), got shape (2, 2)",
              lambda: pool.read("a", np.zeros((2, 2), np.int64))),
             (ValueError, "got shape ()", lambda: pool.read("a", 3))]
    for kind, fragment, call in cases:
        with pytest.raises(kind) as info:
            call()
        assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert_same_state(pool.state("a"), before)
    layer_pool = recurrent.StreamPool(Recurrent("lstm", 3, 4, seed=0), capacity=1)
    layer_pool.open(0)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(T, 3\), one row of 3 "
                                         r"features per step, got shape \(5,\)"):
        layer_pool.read(0, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        layer_pool.read(0, np.full((4, 3), np.nan, np.float32))


def test_the_read_benchmark_checks_its_sides_and_prints_the_table(tmp_path):
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_stream_read.py")
    result = subprocess.run([sys.executable, script, "--chars", "300", "--vocab", "7",
                             "--rounds", "1"], capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONSAFEPATH="1"), timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ")[0] for line in result.stdout.splitlines()
            if line.startswith("| steps") or line.startswith("| read")]
    assert rows == ["| steps", "| read"] and "x the step loop" in result.stdout
    assert "BLAS (threadpoolctl)" in result.stdout


def test_a_read_leaves_a_layers_forward_backward_pair_alone_as_a_step_does(small_chunks):
    """run_step keeps the layer's backward cache; a read's whole-chunk run() must too: a
    pool of a layer being trained may be read between its forward and backward."""
    layer = Recurrent("gru", 3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    pool = recurrent.StreamPool(layer, capacity=1)
    pool.open(0)
    out, _ = layer.forward(x)
    want = layer.backward(np.ones_like(out))[0]
    out, _ = layer.forward(x)
    pool.read(0, np.ones((10, 3), np.float32))  # two chunks of 7 and 3 steps
    np.testing.assert_allclose(layer.backward(np.ones_like(out))[0], want, **TOL)
