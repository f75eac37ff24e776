"""The exported graph's wide part (sentiment's unigrams and hashed bigrams) finds each
row's repeated features without comparing every pair of positions: the old graph held
(N, N, B) tensors, N = 2T - 1, 1.3 GB for a batch of 256 texts of 400 tokens in
onnxruntime. Counted with the ONNX reference evaluator's intermediate values; the outputs
still match the model's own forward pass."""
import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx.reference import ReferenceEvaluator  # noqa: E402

from recurrent.export.onnx import onnx_model  # noqa: E402
from recurrent.model import SequenceModel  # noqa: E402


def _model(buckets):
    spec = {"input": "tokens", "vocab_size": 23, "embed_dim": 5, "output": "mean",
            "output_size": 4, "wide_bigrams": buckets}
    model = SequenceModel(spec, cell="lstm", hidden_size=6, num_layers=1,
                          bidirectional=False, seed=0).eval()
    rng = np.random.default_rng(0)
    for name, w in model.named_params.items():
        if name.startswith("wide."):  # a trained wide part is non-zero
            w[...] = rng.standard_normal(w.shape)
    model.params_changed()
    return model


@pytest.mark.parametrize("buckets", [0, 40])
def test_wide_part_intermediates_grow_linearly_with_the_text(buckets):
    model = _model(buckets)
    T, B = 200, 3
    N = 2 * T - 1 if buckets else T
    rng = np.random.default_rng(1)
    x = rng.integers(0, 23, (T, B)).astype(np.int64)  # 23 ids: most features repeat
    lengths = np.array([T, 77, 1], np.int64)
    values = ReferenceEvaluator(onnx_model(model, softmax=False)).run(
        None, {"tokens": x, "lengths": lengths}, intermediate=True)
    largest = max(np.asarray(v).size for v in values.values() if v is not None)
    assert largest <= 20 * N * B, f"an intermediate of {largest} values (N={N}, B={B})"
    y, _ = model.forward(x, lengths=lengths, need_grad=False)
    np.testing.assert_allclose(values["outputs"], y, atol=1e-5)
