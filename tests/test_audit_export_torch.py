"""Audit (mutation testing) of the printed torch forward (export/torch_names.py): a batch
padded beyond its longest row (T > max(lengths), as a batch cut from a longer one is)
keeps its T steps, the padded ones zero, as recurrent's forward gives them."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the test extra)")
pytest.importorskip("onnxruntime", reason="test_export's helpers need onnxruntime")

from recurrent.export import safetensors as st  # noqa: E402
from recurrent.export import torch_names  # noqa: E402
from test_export import (TOL, printed_forward, random_batch, random_model,  # noqa: E402
                         torch_model)


@pytest.mark.parametrize("output", ["sequence", "max", "mean"])
def test_printed_forward_keeps_the_padding_beyond_the_longest_row(output, tmp_path):
    lengths = [5, 3, 2]
    model = random_model("gru", output, 1, output != "sequence")
    path = str(tmp_path / "m.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    x = random_batch(model, lengths)
    x = np.concatenate([x, np.zeros((3, len(lengths)), dtype=x.dtype)])  # T = 8 > 5
    y, _ = model.forward(x, lengths=np.array(lengths), need_grad=False)
    printed, _ = printed_forward(tm, model, x, lengths)
    assert printed.shape == y.shape
    np.testing.assert_allclose(printed, y, atol=TOL)
    if output == "sequence":
        assert printed.shape[0] == 8 and not printed[5:].any()
