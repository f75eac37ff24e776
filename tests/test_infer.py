"""Inference without caches: LSTMCell.infer, layers and models with need_grad=False.

infer() must give exactly forward()'s results (the same arithmetic, chunked differently) and
keep nothing for backward; layers fall back to forward() for cells without infer()."""
import tracemalloc

import numpy as np
import pytest

from recurrent import GRU, LSTM, Recurrent, conformance
from recurrent.model import SequenceModel
from recurrent.plugins import get_cell
from recurrent.reference import LSTMCell as ReferenceLSTM


def _problem(name, T, B, I, H, dtype, seed):
    rng = np.random.default_rng(seed)
    cell = get_cell(name)
    params = {k: np.zeros(s, dtype) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    for v in params.values():  # non-zero biases: their split and folding are exercised
        v += dtype(0.1) * rng.standard_normal(v.shape).astype(dtype)
    x = rng.standard_normal((T, B, I)).astype(dtype)                        # (T, B, I)
    states = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in cell.state_names)
    lengths = rng.integers(0, T + 1, B).astype(np.int64)                   # (B,)
    lengths[0] = 0                                      # a row of length 0 among the others
    return cell, x, states, params, lengths


def _lstm_problem(T, B, I, H, dtype, seed):
    return _problem("lstm", T, B, I, H, dtype, seed)


# T, B, I, H: one row; odd sizes; several input-projection chunks (B * 4H * 4 bytes per step)
@pytest.mark.parametrize("name", ["lstm", "gru", "ln_lstm"])
@pytest.mark.parametrize("size", [(9, 1, 3, 16), (13, 5, 7, 20), (40, 70, 8, 300)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_infer_is_bitwise_forward(name, size, dtype, num_threads):
    cell, x, states, params, lengths = _problem(name, *size, dtype, seed=sum(size))
    out, finals, _ = cell.forward(x, states, params, lengths, num_threads)
    out_i, finals_i = cell.infer(x, states, params, lengths, num_threads)
    assert out_i.dtype == dtype and out_i.shape == out.shape
    np.testing.assert_array_equal(out_i, out)
    for a, b in zip(finals_i, finals):
        np.testing.assert_array_equal(a, b)


def test_lstm_infer_leaves_inputs_alone():
    cell, x, states, params, lengths = _lstm_problem(6, 3, 4, 16, np.float32, seed=1)
    before = [a.copy() for a in (x, *states, *params.values())]
    cell.infer(x, states, params, lengths, 2)
    for a, b in zip(before, (x, *states, *params.values())):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layer_cls", [LSTM, GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_without_grad_equals_forward_and_refuses_backward(layer_cls, bidirectional):
    rng = np.random.default_rng(3)
    layer = layer_cls(6, 16, num_layers=2, bidirectional=bidirectional, seed=3)
    x = rng.standard_normal((11, 4, 6)).astype(np.float32)  # (T, B, I)
    lengths = np.array([11, 3, 0, 1])
    out, state = layer.forward(x, lengths=lengths)
    out_i, state_i = layer.forward(x, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(out_i, out)
    for a, b in zip(state_i if layer_cls is LSTM else (state_i,),
                    state if layer_cls is LSTM else (state,)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="need_grad=True"):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize("use_model", [False, True])
def test_backward_after_an_inference_pass_says_why_there_is_nothing(use_model):
    """A need_grad=False pass between a training forward and its backward discards the
    training pass's caches: the refusal says so rather than only that there was no forward
    pass, which a caller who ran one (torch keeps its graph across a no_grad pass) reads
    as false."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    if use_model:
        spec = {"input": "features", "input_size": 4, "output_size": 2, "output": "mean"}
        module = SequenceModel(spec, cell="gru", hidden_size=8, seed=0)
    else:
        module = GRU(4, 8, seed=0)
    out, _ = module.forward(x)
    module.forward(x[:, :1], need_grad=False)
    with pytest.raises(ValueError, match=r"no forward pass to differentiate.*no "
                                         r"need_grad=False pass in between"):
        module.backward(np.ones_like(out))
    out, _ = module.forward(x)               # a training pass of its own: backward runs
    module.backward(np.ones_like(out))


def test_a_cell_without_infer_still_runs_without_grad(rng):
    layer = Recurrent(ReferenceLSTM(), 5, 8, dtype=np.float64, seed=2)
    assert not hasattr(layer.cell, "infer")
    x = rng.standard_normal((7, 3, 5))
    out, _ = layer.forward(x)
    out_i, _ = layer.forward(x, need_grad=False)
    np.testing.assert_array_equal(out_i, out)
    with pytest.raises(ValueError, match="need_grad=True"):
        layer.backward(np.ones_like(out))


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_inference_does_not_allocate_the_training_caches():
    T, B, I, H = 60, 32, 16, 128
    rng = np.random.default_rng(0)
    layer = LSTM(I, H, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    layer.forward(x, need_grad=False)  # warm-up: first-call allocations are not the point
    with_grad = _peak_bytes(lambda: layer.forward(x))
    without = _peak_bytes(lambda: layer.forward(x, need_grad=False))
    gate_and_cell_caches = T * B * (4 * H + H) * 4
    # numpy reports its buffers to tracemalloc: the training forward holds both caches
    assert with_grad - without >= 0.9 * gate_and_cell_caches, (with_grad, without)


def test_model_runner_forward_keeps_nothing_for_backward():
    spec = {"input": "features", "input_size": 4, "output_size": 3, "output": "mean"}
    model = SequenceModel(spec, cell="lstm", hidden_size=16, seed=0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 5, 4)).astype(np.float32)
    lengths = np.array([9, 2, 5, 9, 1])
    model.eval()
    y, _ = model.forward(x, lengths=lengths)
    y_run, _ = model.runner().forward(x, lengths=lengths)
    np.testing.assert_array_equal(y_run, y)
    with pytest.raises(ValueError, match="need_grad=True"):
        model.backward(np.ones_like(y_run))


class InferOffByOnePercent:
    """A cell whose infer() disagrees with its forward(): the kit must notice."""

    mask_kinds = ()  # no masks: only infer is broken

    def __init__(self):
        self._cell = get_cell("lstm")
        self.name, self.num_gates = "bad_infer", 4
        self.state_names = self._cell.state_names

    def __getattr__(self, attr):  # everything else from the real LSTM cell
        return getattr(self._cell, attr)

    def infer(self, x, states, params, lengths, num_threads):
        out, finals, _ = self._cell.forward(x, states, params, lengths, num_threads)
        return out * 1.01, finals


def test_conformance_checks_infer_when_a_cell_has_it():
    names = {r.name for r in conformance.check_cell(get_cell("lstm"))}
    assert "infer equals forward" in names
    assert "infer equals forward" not in {r.name for r in conformance.check_cell(ReferenceLSTM())}
    failed = {r.name for r in conformance.check_cell(InferOffByOnePercent()) if not r.passed}
    assert failed == {"infer equals forward"}


def test_runner_calls_run_with_blas_on_one_thread(monkeypatch):
    """Evaluation and prediction (task runners) keep numpy's BLAS on one thread during
    each call, as training does: the model's entry point pins it around the head's GEMMs
    too, and restores the previous count afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits
    spec = {"input": "features", "input_size": 4, "output_size": 3, "output": "mean"}
    model = SequenceModel(spec, cell="lstm", hidden_size=8, seed=0)
    seen = []
    real_head = model.head.forward

    def recording_head(*args, **kwargs):
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return real_head(*args, **kwargs)

    monkeypatch.setattr(model.head, "forward", recording_head)
    x = np.zeros((3, 2, 4), np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        model.runner().forward(x)
        after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert seen and set(seen) == {1}
    assert set(after) == {2}  # restored after the call
