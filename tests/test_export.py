"""`recurrent export` / `recurrent import` and recurrent/export/: round trips ours ->
onnxruntime, ours -> torch (the printed module, strict load, compiled with
torch.jit.script, saved and loaded) and safetensors -> ours, for every task through the
CLI and for every built-in cell kind with lengths, bidirectional and stacked layers; the
refusal of a cell without an ONNX operator; bad input."""
import importlib.util
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import (bundled_reviews, installed_env, invoke, ok, one_line_error,
                     write_reviews)

from recurrent.checkpoint import RunDir
from recurrent.errors import UserError
from recurrent.export import safetensors as st
from recurrent.export import torch_names
from recurrent.model import SequenceModel
from recurrent.runs import load_model
from recurrent.wide import ngram_features
from recurrent_plugins.sentiment.text import tokenize

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
from recurrent.export.onnx import onnx_model  # noqa: E402  (needs the onnx package)

TOL = 1e-5
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
# (cell, zoneout): layers ONNX's RNN/GRU/LSTM operators compute, and layers computed as a
# Scan over the cell's step (ln_lstm; any cell with zoneout's blend)
VARIANTS = [(cell, 0.0) for cell in CELLS] + [
    ("ln_lstm", 0.0), ("ln_lstm", 0.3), ("lstm", 0.3), ("gru", 0.25), ("rnn_tanh", 0.3),
    ("rnn_relu", 0.2)]
TINY = ["--threads", "1", "--quiet", "--no-plot", "--steps", "2", "--eval-every", "0"]


# ---- helpers ---------------------------------------------------------------------------

def onnx_run(proto, x, lengths, tokens, state=None):
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feeds = {"tokens" if tokens else "features": x, "lengths": np.asarray(lengths, np.int64)}
    if state is not None:
        feeds.update(zip(("h_0", "c_0"), states(state)))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def torch_model(source_lines):
    """The torch model that `export --format torch` printed, built and loaded by running
    the printed code itself."""
    scope = {}
    exec("\n".join(source_lines), scope)
    return scope["model"].eval()


_printed_files = itertools.count()


def printed_module(source, directory):
    """The torch model that `export --format torch` printed, as a user runs it: its code
    saved as a Python file and imported (torch.jit.script reads the methods' source from
    their file). ``source``: the printed lines, or the whole printed text."""
    name = f"printed_model_{next(_printed_files)}"  # a module of its own per import
    path = directory / f"{name}.py"
    path.write_text(source if isinstance(source, str) else "\n".join(source) + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model.eval()


def torch_forward(tm, model, x, lengths):
    """Our model's computation written with the torch modules of ``tm`` (time-major,
    packed sequences for the lengths, pooling, head, wide part) -> (outputs, h_n)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    T = x.shape[0]
    with torch.no_grad():
        inp = tm.embedding(torch.as_tensor(x)) if model.tokens else torch.as_tensor(x)
        packed = pack_padded_sequence(inp, torch.as_tensor(lengths), enforce_sorted=False)
        out, state = tm.rnn(packed)
        out, _ = pad_packed_sequence(out, total_length=T)  # (T, B, D*H), zeros when padded
        h_n = state[0] if isinstance(state, tuple) else state
        mask = (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :])[:, :, None]
        D = model.num_directions
        if model.output == "sequence":
            y = tm.head(out) * mask
        else:
            if model.output == "last":
                pooled = torch.cat(list(h_n[-D:]), dim=1)
            elif model.output == "mean":
                pooled = out.sum(0) / mask.sum(0)
            else:
                pooled = out.masked_fill(~mask, float("-inf")).amax(0)
            y = tm.head(pooled)
            if model.wide is not None:
                f = ngram_features(x, np.asarray(lengths), model.wide.vocab_size,
                                   model.wide.bigram_buckets)
                y = y + tm.wide(torch.as_tensor(f.indices, dtype=torch.int64),
                                torch.as_tensor(f.indptr[:-1], dtype=torch.int64))
        return y.numpy(), h_n.numpy()


def printed_args(model, x, lengths) -> list:
    """The printed Model's positional arguments for the batch: x, lengths, and the wide
    part's features of each row."""
    args = [torch.as_tensor(x), torch.as_tensor(np.asarray(lengths, dtype=np.int64))]
    if model.wide is not None:
        f = ngram_features(x, np.asarray(lengths), model.wide.vocab_size,
                           model.wide.bigram_buckets)
        args += [torch.as_tensor(f.indices, dtype=torch.int64),
                 torch.as_tensor(f.indptr[:-1], dtype=torch.int64)]
    return args


def printed_forward(tm, model, x, lengths, state=None):
    """The printed Model's own forward -> (outputs, h_n) as numpy; ``state``: the
    initial state in torch's form (a tensor, or (h_0, c_0) for an LSTM)."""
    args = printed_args(model, x, lengths)
    with torch.no_grad():
        y, state = tm(*args, state=state)
    h_n = state[0] if isinstance(state, tuple) else state
    return y.numpy(), h_n.numpy()


def random_model(cell, output, layers, bidirectional, tokens=True, wide=None, seed=0,
                 folds=0, scale=False, zoneout=0.0):
    spec = ({"input": "tokens", "vocab_size": 23, "embed_dim": 5} if tokens
            else {"input": "features", "input_size": 3})
    spec.update({"output": output, "output_size": 4})
    if wide is not None:
        spec["wide_bigrams"] = wide
    if folds:
        spec.update(wide_fixed=True, wide_folds=folds)
    if scale:
        spec["wide_scale"] = True
    model = SequenceModel(spec, cell=cell, hidden_size=6, num_layers=layers,
                          bidirectional=bidirectional, seed=seed, zoneout=zoneout).eval()
    if wide is not None:  # a trained wide part is non-zero; start it so
        rng = np.random.default_rng(seed)
        for name, w in model.named_params.items():
            if name.startswith("wide."):
                w[...] = rng.standard_normal(w.shape)
    return model


def random_batch(model, lengths, seed=1):
    rng = np.random.default_rng(seed)
    T, B = max(lengths), len(lengths)
    if model.tokens:
        return rng.integers(0, model.embedding.num_embeddings, (T, B))
    return rng.standard_normal((T, B, model.rnn.input_size)).astype(np.float32)


def states(state):
    return state if isinstance(state, tuple) else (state,)


# ---- every cell kind, lengths, bidirectional, 1-3 layers -------------------------------

SHAPES = [("sequence", 1, False), ("last", 2, True), ("mean", 3, True), ("max", 2, True),
          ("last", 3, False)]


@pytest.mark.parametrize("cell, zoneout", VARIANTS)
def test_onnx_matches_our_forward_for_every_cell_and_shape(cell, zoneout):
    lengths = [7, 3, 1, 0, 5]  # a row of length 0 too: zeros, pooled to zeros
    for output, layers, bidirectional in SHAPES:
        for tokens in (True, False):
            model = random_model(cell, output, layers, bidirectional, tokens,
                                 zoneout=zoneout)
            x = random_batch(model, lengths)
            y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
            got = onnx_run(onnx_model(model, softmax=True), x, lengths, tokens)
            label = (output, layers, bidirectional, tokens)
            np.testing.assert_allclose(got["outputs"], y, atol=TOL, err_msg=str(label))
            e = np.exp(y - y.max(-1, keepdims=True))
            np.testing.assert_allclose(got["probabilities"], e / e.sum(-1, keepdims=True),
                                       atol=TOL)
            names = ("h_n", "c_n") if cell in ("lstm", "ln_lstm") else ("h_n",)
            assert [n for n in got if n.endswith("_n")] == list(names)
            for name, ours in zip(names, states(state)):
                np.testing.assert_allclose(got[name], ours, atol=TOL, err_msg=name)


@pytest.mark.parametrize("cell, zoneout", VARIANTS)
def test_onnx_takes_a_batch_of_rows_of_length_0_without_steps(cell, zoneout):
    """tokens (0, B), as a caller padding to the longest row makes them when every text
    tokenized to nothing: the outputs of rows of length 0, as recurrent gives them
    beside one padded step, and per-step outputs of no steps."""
    lengths = [0, 0, 0]
    for output, layers, bidirectional in SHAPES:
        for tokens in (True, False):
            model = random_model(cell, output, layers, bidirectional, tokens,
                                 zoneout=zoneout)
            x = random_batch(model, [1, 1, 1])
            y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
            got = onnx_run(onnx_model(model, softmax=True), x[:0], lengths, tokens)
            label = str((output, layers, bidirectional, tokens))
            want = y[:0] if output == "sequence" else y
            np.testing.assert_allclose(got["outputs"], want, atol=TOL, err_msg=label)
            for name, ours in zip(("h_n", "c_n"), states(state)):
                np.testing.assert_allclose(got[name], ours, atol=TOL, err_msg=label)


@pytest.mark.parametrize("cell", CELLS)
def test_printed_torch_model_loads_strictly_and_matches(cell, tmp_path):
    lengths = [6, 2, 4, 1]  # torch_forward packs every row: lengths >= 1
    for output, layers, bidirectional in SHAPES:
        model = random_model(cell, output, layers, bidirectional)
        path = str(tmp_path / "m.safetensors")
        st.write(path, torch_names.tensors(model), {})
        tm = torch_model(torch_names.torch_source(model, path))
        x = random_batch(model, lengths)
        y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
        got, h_n = torch_forward(tm, model, x, lengths)
        np.testing.assert_allclose(got, y, atol=TOL, err_msg=str((output, layers)))
        np.testing.assert_allclose(h_n, states(state)[0], atol=TOL)
        printed, printed_h_n = printed_forward(tm, model, x, lengths)
        np.testing.assert_array_equal(printed, got)  # the same torch operations
        np.testing.assert_array_equal(printed_h_n, h_n)


@pytest.mark.parametrize("cell, zoneout", [v for v in VARIANTS if v not in
                                           [(c, 0.0) for c in CELLS]])
def test_printed_module_computes_ln_lstm_and_zoneout(cell, zoneout, tmp_path):
    """A stack no torch.nn module computes (ln_lstm, zoneout's evaluation blend) is
    printed as a module of its own that steps through time: the printed model loads the
    file strictly and gives our outputs and final states, rows of length 0 included, and
    continues from a state as our forward does."""
    lengths = [7, 3, 1, 0, 5]
    for output, layers, bidirectional in SHAPES:
        for tokens in (True, False):
            model = random_model(cell, output, layers, bidirectional, tokens,
                                 zoneout=zoneout)
            path = str(tmp_path / "m.safetensors")
            st.write(path, torch_names.tensors(model), {})
            source = torch_names.torch_source(model, path)
            assert not any("torch.nn.LSTM" in line or "pack_padded" in line
                           for line in source)
            tm = torch_model(source)
            x = random_batch(model, lengths)
            y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
            label = str((output, layers, bidirectional, tokens))
            args = [torch.as_tensor(x), torch.as_tensor(np.array(lengths))]
            with torch.no_grad():
                got, got_state = tm(*args)
            np.testing.assert_allclose(got.numpy(), y, atol=TOL, err_msg=label)
            for a, b in zip(states(got_state), states(state)):
                np.testing.assert_allclose(a.numpy(), b, atol=TOL, err_msg=label)
    model = random_model(cell, "sequence", 2, True, zoneout=zoneout)
    path = str(tmp_path / "s.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    x = random_batch(model, [8, 8])
    first, carried = model.forward(x[:5], lengths=np.array([5, 5]), need_grad=False)
    want, _ = model.forward(x[5:], lengths=np.array([3, 2]), state=carried, need_grad=False)
    given = (tuple(torch.as_tensor(s) for s in carried) if isinstance(carried, tuple)
             else torch.as_tensor(carried))
    got, _ = printed_forward(tm, model, x[5:], [3, 2], state=given)
    np.testing.assert_allclose(got, want, atol=TOL)


@pytest.mark.parametrize("cell, zoneout", [("ln_lstm", 0.0), ("lstm", 0.3), ("gru", 0.25),
                                           ("lstm", 0.0), ("gru", 0.0)])
def test_printed_last_pools_a_row_of_length_0_to_zeros_from_a_given_state(cell, zoneout,
                                                                          tmp_path):
    """A row of length 0 pools to zeros under "last" as ours does (recurrent/pooling.py;
    its output is the head's bias), also when the call starts from a given state, which
    that row's final state keeps."""
    model = random_model(cell, "last", 2, True, zoneout=zoneout)
    path = str(tmp_path / "m.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    _, carried = model.forward(random_batch(model, [4, 4, 4], seed=5),
                               lengths=np.array([4, 4, 4]), need_grad=False)
    x = random_batch(model, [5, 2, 0])
    want, want_h_n = model.forward(x, lengths=np.array([5, 2, 0]), state=carried,
                                   need_grad=False)
    given = tuple(torch.as_tensor(s) for s in states(carried))
    got, got_h_n = printed_forward(tm, model, x, [5, 2, 0],
                                   state=given if len(given) > 1 else given[0])
    np.testing.assert_allclose(got, want, atol=TOL)
    np.testing.assert_allclose(got_h_n, states(want_h_n)[0], atol=TOL)


@pytest.mark.parametrize("cell, zoneout", [("ln_lstm", 0.0), ("gru", 0.25), ("lstm", 0.0),
                                           ("gru", 0.0)])
def test_printed_module_takes_a_batch_of_rows_of_length_0_without_steps(cell, zoneout,
                                                                          tmp_path):
    """x of 0 steps (every row of length 0, padded to the longest) through the printed
    model, of torch.nn's module or the printed Recurrent: what ours gives such rows
    beside one padded step, for every output kind, as the ONNX graph does."""
    lengths = [0, 0, 0]
    for output, layers, bidirectional in SHAPES:
        model = random_model(cell, output, layers, bidirectional, zoneout=zoneout)
        path = str(tmp_path / "m.safetensors")
        st.write(path, torch_names.tensors(model), {})
        tm = torch_model(torch_names.torch_source(model, path))
        x = random_batch(model, [1, 1, 1])
        y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
        got, h_n = printed_forward(tm, model, x[:0], lengths)
        want = y[:0] if output == "sequence" else y
        np.testing.assert_allclose(got, want, atol=TOL, err_msg=output)
        np.testing.assert_allclose(h_n, states(state)[0], atol=TOL, err_msg=output)


@pytest.mark.parametrize("cell, zoneout", [("ln_lstm", 0.0), ("gru", 0.2)])
def test_printed_module_keeps_every_tensor_on_the_inputs_device(cell, zoneout, tmp_path):
    """The printed model moved to another device (here "meta", which computes shapes
    only and refuses tensors of two devices in one operation, as a GPU run does) makes
    every tensor of its own there: its masks, states and outputs."""
    for output in ("sequence", "last", "mean", "max"):
        model = random_model(cell, output, 2, True, zoneout=zoneout)
        path = str(tmp_path / "d.safetensors")
        st.write(path, torch_names.tensors(model), {})
        tm = torch_model(torch_names.torch_source(model, path)).to("meta")
        x = torch.zeros((7, 3), dtype=torch.int64, device="meta")
        with torch.no_grad():
            y, state = tm(x, torch.tensor([7, 3, 0], device="meta"))
        assert y.device.type == "meta" and y.shape[-1] == 4
        assert all(s.device.type == "meta" for s in states(state))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_printed_forward_continues_from_a_state(cell, tmp_path):
    """Two calls, the second from the first's final state, give what one call over both
    halves gives (char-lm sampling feeds the state back)."""
    model = random_model(cell, "sequence", 2, False)
    path = str(tmp_path / "s.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    x = random_batch(model, [8, 8])
    whole, _ = model.forward(x, lengths=np.array([8, 8]), need_grad=False)
    args = [torch.as_tensor(x[:5]), torch.as_tensor(np.array([5, 5]))]
    with torch.no_grad():
        _, state = tm(*args)
    second, _ = printed_forward(tm, model, x[5:], [3, 3], state=state)
    np.testing.assert_allclose(second, whole[5:], atol=TOL)


def test_printed_forward_runs_a_model_of_features(tmp_path):
    """A forecast-style model (float features, pooled by the last state): the printed
    forward takes the features as they are."""
    lengths = [5, 3, 1]
    model = random_model("gru", "last", 2, False, tokens=False)
    path = str(tmp_path / "f.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    x = random_batch(model, lengths)
    y, _ = model.forward(x, lengths=np.array(lengths), need_grad=False)
    np.testing.assert_allclose(printed_forward(tm, model, x, lengths)[0], y, atol=TOL)


@pytest.mark.parametrize("buckets,folds,scale", [(0, 0, False), (40, 0, False),
                                                 (40, 3, False), (40, 0, True)])
def test_wide_part_in_onnx_and_torch_matches(buckets, folds, scale, tmp_path):
    """The sentiment wide part: unigrams and hashed bigrams computed inside the ONNX graph
    from the token ids; in torch an EmbeddingBag over recurrent.wide's feature ids. A
    cross-fitted wide part exports its full model only (the fold models are for
    training); a learned scale is multiplied into the exported weights."""
    lengths = [9, 4, 1, 7, 9]
    model = random_model("gru", "mean", 1, True, wide=buckets, folds=folds, scale=scale)
    assert ("wide.fold_weight" in model.named_params) == bool(folds)
    assert not any("fold" in name for name in torch_names.tensors(model))
    if scale:
        model.named_params["wide.scale"][...] = 0.37
        model.params_changed()
        exported = torch_names.tensors(model)
        assert "wide.scale" not in exported
        np.testing.assert_allclose(exported["wide.weight"],
                                   0.37 * model.named_params["wide.weight"], rtol=1e-6)
    x = random_batch(model, lengths)
    x[:4, 0] = x[4:8, 0]  # repeated unigrams and bigrams within a row count once
    y, _ = model.forward(x, lengths=np.array(lengths), need_grad=False)
    wide_alone = model.wide.forward(x, np.array(lengths))
    assert np.abs(wide_alone).mean() > 0.5  # the wide part really contributes
    got = onnx_run(onnx_model(model, softmax=False), x, lengths, True)
    assert list(got) == ["outputs", "h_n"]
    np.testing.assert_allclose(got["outputs"], y, atol=TOL)
    path = str(tmp_path / "w.safetensors")
    st.write(path, torch_names.tensors(model), {})
    tm = torch_model(torch_names.torch_source(model, path))
    torch_y, _ = torch_forward(tm, model, x, lengths)
    np.testing.assert_allclose(torch_y, y, atol=TOL)
    np.testing.assert_array_equal(printed_forward(tm, model, x, lengths)[0], torch_y)


def docs_wide_features():
    """docs/export.md's wide_features: the wide part's arguments of the printed forward
    computed without recurrent (its code imports numpy and torch only)."""
    import re
    page = open(os.path.join(os.path.dirname(__file__), "..", "docs", "export.md"),
                encoding="utf-8").read()
    code = next(block for block in re.findall(r"```python\n(.*?)```", page, re.S)
                if "def wide_features" in block)
    assert "recurrent" not in code
    scope = {}
    exec(code.split("\nwide_ids, wide_offsets = ")[0], scope)
    return scope["wide_features"]


@pytest.mark.parametrize("buckets", [0, 40])
def test_docs_wide_features_feed_the_printed_forward_without_recurrent(buckets, tmp_path):
    """The printed docstring names docs/export.md's wide_features with the model's V and
    buckets; its features are ngram_features' (a large vocabulary, whose bigram keys
    overflow 64 bits, too), and the printed forward given them is recurrent's."""
    wide_features = docs_wide_features()
    rng = np.random.default_rng(3)
    lengths = np.array([7, 0, 1, 5, 7])
    x = rng.integers(0, 10001, (7, 5))
    x[:3, 0] = x[3:6, 0]  # repeated unigrams and bigrams within a row count once
    ids, offsets = wide_features(torch.as_tensor(x), torch.as_tensor(lengths), 10001, 131072)
    f = ngram_features(x, lengths, 10001, 131072)
    np.testing.assert_array_equal(ids.numpy(), f.indices)
    np.testing.assert_array_equal(offsets.numpy(), f.indptr[:-1])
    model = random_model("lstm", "max", 1, True, wide=buckets)
    path = str(tmp_path / "w.safetensors")
    st.write(path, torch_names.tensors(model), {})
    source = torch_names.torch_source(model, path)
    call = f"wide_features(x, lengths, {model.wide.vocab_size}, {model.wide.bigram_buckets})"
    assert call in "\n".join(source)
    tm = torch_model(source)
    lengths = [6, 0, 3, 6]
    x = torch.as_tensor(random_batch(model, lengths))
    with torch.no_grad():
        features = wide_features(x, torch.as_tensor(lengths), model.wide.vocab_size,
                                 model.wide.bigram_buckets)
        got, _ = tm(x, torch.as_tensor(lengths), *features)
    y, _ = model.forward(x.numpy(), lengths=np.array(lengths), need_grad=False)
    np.testing.assert_allclose(got.numpy(), y, atol=TOL)


@pytest.mark.parametrize("cell, zoneout", [("lstm", 0.0), ("gru", 0.0), ("ln_lstm", 0.0),
                                           ("lstm", 0.3), ("gru", 0.3)])
def test_onnx_initial_state_input_continues_a_sequence(cell, zoneout):
    """h_0 (and c_0) carry a state in, as model.forward(state=...) does: running two
    halves with the state passed on equals running the whole; length-0 rows keep it."""
    two = cell in ("lstm", "ln_lstm")
    model = random_model(cell, "sequence", 2, False, zoneout=zoneout)
    plain = onnx_model(model, softmax=False)
    proto = onnx_model(model, softmax=False, state_inputs=True)
    assert [v.name for v in plain.graph.input] == ["tokens", "lengths"]
    assert [v.name for v in proto.graph.input][2:] == (["h_0", "c_0"] if two else ["h_0"])
    x = random_batch(model, [8, 8, 8])
    first = onnx_run(plain, x[:5], [5, 5, 5], True)
    carried = tuple(first[n] for n in ("h_n", "c_n") if n in first)
    carried = carried if two else carried[0]
    second = onnx_run(proto, x[5:], [3, 0, 2], True, state=carried)
    y, state = model.forward(x[5:], lengths=np.array([3, 0, 2]), state=carried,
                             need_grad=False)
    np.testing.assert_allclose(second["outputs"], y, atol=TOL)
    for got, ours, given in zip((second[n] for n in ("h_n", "c_n") if n in second),
                                states(state), states(carried)):
        np.testing.assert_allclose(got, ours, atol=TOL)
        np.testing.assert_allclose(got[:, 1], given[:, 1], atol=TOL)  # length 0: kept
    whole, _ = model.forward(x[:7], lengths=np.array([7, 5, 7]), need_grad=False)
    np.testing.assert_allclose(second["outputs"][:2, [0, 2]], whole[5:7, [0, 2]], atol=TOL)

    pooled = random_model(cell, "last", 2, True, zoneout=zoneout)  # pools zeros at length 0
    start = tuple(np.random.default_rng(5).standard_normal((2, 4, 4, 6)).astype(np.float32))
    start = start if two else start[0]
    x = random_batch(pooled, [8, 0, 3, 1])
    got = onnx_run(onnx_model(pooled, softmax=False, state_inputs=True), x, [8, 0, 3, 1],
                   True, state=start)
    y, _ = pooled.forward(x, lengths=np.array([8, 0, 3, 1]), state=start, need_grad=False)
    np.testing.assert_allclose(got["outputs"], y, atol=TOL)


@pytest.mark.parametrize("cell, zoneout", [("ln_lstm", 0.0), ("gru", 0.3)])
def test_scan_graphs_run_in_the_onnx_reference_runtime(cell, zoneout):
    """The Scan graphs of bidirectional stacks hold only what the ONNX project's own
    runtime (onnx.reference) implements, and it computes our forward with them."""
    from onnx.reference import ReferenceEvaluator
    lengths = [5, 2, 0]
    for output in ("sequence", "last"):
        model = random_model(cell, output, 2, True, zoneout=zoneout)
        x = random_batch(model, lengths)
        y, state = model.forward(x, lengths=np.array(lengths), need_grad=False)
        proto = onnx_model(model, softmax=False)
        names = [o.name for o in proto.graph.output]
        got = dict(zip(names, ReferenceEvaluator(proto).run(
            None, {"tokens": x, "lengths": np.array(lengths, np.int64)})))
        np.testing.assert_allclose(got["outputs"], y, atol=TOL, err_msg=output)
        for name, ours in zip(("h_n", "c_n"), states(state)):
            np.testing.assert_allclose(got[name], ours, atol=TOL, err_msg=name)


def test_onnx_graph_has_dynamic_axes_and_the_standard_operators():
    model = random_model("lstm", "sequence", 2, False)
    proto = onnx_model(model, softmax=True)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LSTM") == 2 and "Softmax" in ops
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in proto.graph.input]
    assert dims == [["time", "batch"], ["batch"]]
    lstm = next(n for n in proto.graph.node if n.op_type == "LSTM")
    assert len(lstm.input) == 7 and lstm.input[4]  # sequence_lens and initial h, c wired
    # no operator has ln_lstm or zoneout's blend: one Scan per layer and direction
    for cell, zoneout, op in (("ln_lstm", 0.0, "LayerNormalization"), ("gru", 0.1, "Mul")):
        proto = onnx_model(random_model(cell, "last", 2, True, zoneout=zoneout), False)
        ops = [n.op_type for n in proto.graph.node]
        assert ops.count("Scan") == 4 and not {"LSTM", "GRU", "RNN"} & set(ops)
        scan = next(n for n in proto.graph.node if n.op_type == "Scan")
        assert op in [n.op_type for n in scan.attribute[0].g.node]


# ---- TorchScript: the printed model compiles with torch.jit.script (for libtorch) ------

# torch 2.13 warns that torch.jit's script, save and load are deprecated; they still work
TORCHSCRIPT = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


def check_compiled(tm, model, x, lengths, want, carried=None, label=""):
    """torch.jit.script compiles the printed model ``tm``, and the compiled forward gives
    the eager one's outputs and final states (within 1e-6) and ours, ``want`` (within
    TOL), both started from our state ``carried`` (None: zeros). -> the compiled model."""
    scripted = torch.jit.script(tm)
    given = None
    if carried is not None:
        given = tuple(torch.as_tensor(s) for s in states(carried))
        given = given if len(given) > 1 else given[0]
    args = printed_args(model, x, lengths)
    with torch.no_grad():
        eager, compiled = tm(*args, state=given), scripted(*args, state=given)
    y, state = want
    for a, b, ours in zip([eager[0], *states(eager[1])], [compiled[0], *states(compiled[1])],
                          [y, *states(state)]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-6, err_msg=label)
        np.testing.assert_allclose(b.numpy(), ours, atol=TOL, err_msg=label)
    return scripted


@TORCHSCRIPT
@pytest.mark.parametrize("cell, zoneout", VARIANTS)
def test_printed_model_compiles_with_torch_jit_script(cell, zoneout, tmp_path):
    """The printed model of every cell, with torch.nn's module or the printed Recurrent
    (ln_lstm, zoneout), compiles with torch.jit.script: tokens or features, every output
    kind, 1-3 layers, bidirectional, the wide part, from zeros or a given state, rows of
    length 0 and a batch of no steps. The compiled model gives the eager one's outputs
    and final states, and ours."""
    path = str(tmp_path / "m.safetensors")
    models = [(random_model(cell, output, layers, bidirectional, tokens, zoneout=zoneout),
               (output, layers, bidirectional, tokens))
              for output, layers, bidirectional in SHAPES for tokens in (True, False)]
    models.append((random_model(cell, "mean", 1, True, wide=40, zoneout=zoneout), "wide"))
    for model, label in models:
        label = str(label)
        st.write(path, torch_names.tensors(model), {})
        tm = printed_module(torch_names.torch_source(model, path), tmp_path)
        lengths = [7, 3, 1, 0, 5]
        x = random_batch(model, lengths)
        want = model.forward(x, lengths=np.array(lengths), need_grad=False)
        check_compiled(tm, model, x, lengths, want, label=label)
        _, carried = model.forward(random_batch(model, lengths, seed=2),
                                   lengths=np.array(lengths), need_grad=False)
        want = model.forward(x, lengths=np.array(lengths), state=carried, need_grad=False)
        check_compiled(tm, model, x, lengths, want, carried, label=label)
        # no steps: what ours gives rows of length 0 beside one padded step
        y, state = model.forward(random_batch(model, [1, 1]), lengths=np.array([0, 0]),
                                 need_grad=False)
        want = (y[:0] if model.output == "sequence" else y), state
        check_compiled(tm, model, random_batch(model, [1, 1])[:0], [0, 0], want,
                       label=label)


@TORCHSCRIPT
@pytest.mark.parametrize("cell", CELLS)
def test_printed_torch_nn_model_gives_rows_of_length_0_their_initial_state(cell,
                                                                            tmp_path):
    """torch.nn's module packs rows of length >= 1 only; the printed Model gives a row of
    length 0 what ours does (its initial state kept as its final state, zero outputs,
    pooled to zeros), beside rows with steps, when every row has length 0, and for a
    batch of no steps (T = 0), from a given state: every output kind, tokens or features
    (a forecast), the wide part, eager and compiled."""
    path = str(tmp_path / "m.safetensors")
    models = [(random_model(cell, output, layers, bidirectional, tokens),
               (output, layers, bidirectional, tokens))
              for output, layers, bidirectional in SHAPES for tokens in (True, False)]
    models.append((random_model(cell, "max", 2, True, wide=40), "wide"))
    for model, label in models:
        st.write(path, torch_names.tensors(model), {})
        tm = printed_module(torch_names.torch_source(model, path), tmp_path)
        for lengths, T in (([0, 4, 0, 2, 0], 4), ([0, 0, 0], 3), ([0, 0, 0], 0)):
            B = len(lengths)
            _, carried = model.forward(random_batch(model, [3] * B, seed=2),
                                       lengths=np.full(B, 3), need_grad=False)
            x = random_batch(model, [max(T, 1)] * B)  # ours takes T = 0 as one padded step
            y, state = model.forward(x, lengths=np.array(lengths), state=carried,
                                     need_grad=False)
            want = (y[:T] if model.output == "sequence" else y), state
            check_compiled(tm, model, x[:T], lengths, want, carried,
                           label=str((label, lengths, T)))
            # ours keeps a row of length 0's initial state, which the printed one gave
            for ours, kept in zip(states(state), states(carried)):
                empty = np.array(lengths) == 0
                np.testing.assert_array_equal(ours[:, empty], kept[:, empty])


@TORCHSCRIPT
def test_printed_recurrent_computes_with_parameters_set_anew(tmp_path):
    """The printed Recurrent's forward reads each layer's parameters through a list of
    them: a load with assign=True (new tensors) reaches it, and so does .double() on the
    compiled model saved and loaded (as libtorch's module.to converts it)."""
    from safetensors.torch import load_file
    model = random_model("ln_lstm", "sequence", 2, True, zoneout=0.2)
    path = str(tmp_path / "m.safetensors")
    st.write(path, torch_names.tensors(model), {})
    fresh = type(printed_module(torch_names.torch_source(model, path), tmp_path))()
    fresh.load_state_dict(load_file(path), strict=True, assign=True)
    lengths = [6, 0, 3]
    x = random_batch(model, lengths)
    want, _ = model.forward(x, lengths=np.array(lengths), need_grad=False)
    np.testing.assert_allclose(printed_forward(fresh.eval(), model, x, lengths)[0], want,
                               atol=TOL)
    torch.jit.save(torch.jit.script(fresh), str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt")).double()
    with torch.no_grad():
        y, _ = loaded(*printed_args(model, x, lengths))
    assert y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), want, atol=TOL)


@TORCHSCRIPT
@pytest.mark.parametrize("task, options", [
    ("char-lm", ("--cell", "ln_lstm", "--layers", 2)),
    ("sentiment", ("--zoneout", 0.2, "--bidirectional", "--ensemble", 2, "--embed-dim", 4))])
def test_printed_torch_file_compiles_saves_and_loads_as_torchscript(task, options,
                                                                    tmp_path):
    """The printed file of a real run's export (an ln_lstm char-lm run, a member of a
    zoneout sentiment ensemble), run as a Python file, gives a model torch.jit.script
    compiles and torch.jit.save writes; torch.jit.load reads it back (as libtorch
    does), without the printed code, and gives the same outputs and final states."""
    from helpers import tiny_text
    data = {"char-lm": lambda: tiny_text(tmp_path),
            "sentiment": lambda: write_reviews(tmp_path / "r.csv", bundled_reviews(60))}
    run = tmp_path / "run"
    ok(invoke("train", task, *options, "--data", data[task](), "--hidden", 8, "--steps", 2,
              *TINY[:4], "--out", run))
    exported = run / "member-0" if task == "sentiment" else run
    model, _ = load_model(RunDir.open(str(exported)))
    x, lengths = first_batch(exported)
    want = model.forward(x, lengths=lengths, need_grad=False)
    assert np.abs(want[0]).max() > 0.01  # not a comparison of zeros
    printed = ok(invoke("export", exported, "--format", "torch", "--out",
                        tmp_path / "m.torch.safetensors"))
    scripted = check_compiled(printed_module(printed, tmp_path), model, x, lengths, want)
    torch.jit.save(scripted, str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    args = printed_args(model, x, lengths)
    with torch.no_grad():
        (y, state), (y2, state2) = scripted(*args), loaded(*args)
    for a, b in zip([y, *states(state)], [y2, *states(state2)]):
        np.testing.assert_array_equal(b.numpy(), a.numpy())


# ---- every task through the CLI --------------------------------------------------------

@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """Tiny runs of the three tasks: char-lm (LSTM, 2 layers), sentiment (bidirectional
    GRU, mean pooling, wide bigrams with a learned scale, weight averaging), forecast (bidirectional 2-layer tanh RNN)."""
    root = tmp_path_factory.mktemp("export")
    reviews = write_reviews(root / "reviews.csv", bundled_reviews(60))
    runs = {
        "char-lm": ["--hidden", "12", "--embed-dim", "6", "--layers", "2", "--seq-len", "16",
                    "--batch-size", "4", "--max-chars", "20000"],
        "sentiment": ["--data", reviews, "--hidden", "8", "--embed-dim", "6",
                      "--bigram-buckets", "64", "--batch-size", "32", "--wide-scale",
                      "--average", "ema:0.9", "--ensemble", "1"],
        "forecast": ["--cell", "rnn_tanh", "--hidden", "8", "--layers", "2",
                     "--bidirectional", "--window", "12"],
    }
    for task, args in runs.items():
        ok(invoke("train", task, "--out", root / task, *args, *TINY))
    return root


def first_batch(run):
    from recurrent import plugins
    info = RunDir.open(str(run)).info()
    task = plugins.get_task(info["task"])
    batches = task.batches(info["task_state"], "valid", dict(info["config"]),
                           np.random.default_rng(0))
    batch = next(iter(batches))
    x = batch["x"]
    lengths = batch["lengths"]
    if lengths is None:
        lengths = np.full(x.shape[1], x.shape[0], np.int64)
    if task.name == "char-lm":  # a padded batch: cut rows to different lengths
        lengths = np.maximum(1, x.shape[0] - 3 * np.arange(x.shape[1]))
    return x, np.asarray(lengths, np.int64)


@TORCHSCRIPT
@pytest.mark.parametrize("task", ["char-lm", "sentiment", "forecast"])
def test_every_task_exports_to_onnx_torch_and_back(task, task_runs, tmp_path):
    run = task_runs / task
    model, info = load_model(RunDir.open(str(run)))
    x, lengths = first_batch(run)
    y, state = model.forward(x, lengths=lengths, need_grad=False)

    out = tmp_path / "m.onnx"
    printed = ok(invoke("export", run, "--format", "onnx", "--out", out))
    assert f"wrote {out}" in printed and "lengths (batch)" in printed
    import onnx
    proto = onnx.load(str(out))
    got = onnx_run(proto, x, lengths, model.tokens)
    np.testing.assert_allclose(got["outputs"], y, atol=TOL)
    assert ("probabilities" in got) == (info["config"]["loss"] == "cross_entropy")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["config.json"])["task_state"] == info["task_state"]

    out = tmp_path / "m.torch.safetensors"
    printed = ok(invoke("export", run, "--format", "torch", "--out", out))
    compile(printed, "model.py", "exec")  # `> model.py` keeps a Python file
    source = printed.split("(strict=True):\n", 1)[1].splitlines()
    shapes = dict(line.lstrip("# ").split(" ", 1) for line in
                  printed.split("# shapes:\n")[1].split("\n# a torch")[0].splitlines())
    tm = torch_model(source)
    assert {k: str(tuple(v.shape)) for k, v in tm.state_dict().items()} == shapes
    torch_y, _ = torch_forward(tm, model, x, lengths)
    np.testing.assert_allclose(torch_y, y, atol=TOL)
    np.testing.assert_array_equal(printed_forward(tm, model, x, lengths)[0], torch_y)
    check_compiled(printed_module(printed, tmp_path), model, x, lengths, (y, state))

    out = tmp_path / "m.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", out))
    from safetensors.numpy import load_file  # the file needs nothing of recurrent
    assert set(load_file(str(out))) == set(model.state_dict())
    ok(invoke("import", out, "--out", tmp_path / "back"))
    again, info_again = load_model(RunDir.open(str(tmp_path / "back")))
    for k in ("task", "config", "task_state", "model_spec"):
        assert info_again[k] == info[k]
    y2, state2 = again.forward(x, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(y2, y)
    for a, b in zip(states(state2), states(state)):
        np.testing.assert_array_equal(a, b)


@TORCHSCRIPT
@pytest.mark.parametrize("task, options", [
    ("char-lm", ("--cell", "ln_lstm", "--layers", 2)),
    ("sentiment", ("--zoneout", 0.2, "--bidirectional", "--ensemble", 1, "--embed-dim", 4)),
    ("forecast", ("--cell", "ln_lstm", "--zoneout", 0.1, "--model", "rnn", "--window", 8))])
def test_ln_lstm_and_zoneout_runs_export_to_onnx_and_torch(task, options, tmp_path):
    """Runs whose layers no ONNX recurrent operator or torch.nn module computes (ln_lstm,
    zoneout's blend) export from the CLI their Scan graphs and the printed torch model,
    which give the run's outputs and states."""
    from helpers import bundled_reviews, tiny_text, write_reviews
    data = {"char-lm": lambda: tiny_text(tmp_path),
            "sentiment": lambda: write_reviews(tmp_path / "r.csv", bundled_reviews(60))}
    run = tmp_path / "run"
    ok(invoke("train", task, *options, *(("--data", data[task]()) if task in data else ()),
              "--hidden", 8, "--steps", 2, *TINY[:4], "--out", run))
    model, _ = load_model(RunDir.open(str(run)))
    x, lengths = first_batch(run)
    y, state = model.forward(x, lengths=lengths, need_grad=False)
    out = tmp_path / "m.onnx"
    ok(invoke("export", run, "--format", "onnx", "--out", out))
    import onnx
    got = onnx_run(onnx.load(str(out)), x, lengths, model.tokens)
    assert np.abs(y).max() > 0.01   # not a comparison of zeros
    np.testing.assert_allclose(got["outputs"], y, atol=TOL)
    for name, ours in zip(("h_n", "c_n"), states(state)):
        np.testing.assert_allclose(got[name], ours, atol=TOL, err_msg=name)
    printed = ok(invoke("export", run, "--format", "torch", "--out", tmp_path / "m.st"))
    tm = torch_model(printed.split("(strict=True):\n", 1)[1].splitlines())
    got, h_n = printed_forward(tm, model, x, lengths)
    np.testing.assert_allclose(got, y, atol=TOL)
    np.testing.assert_allclose(h_n, states(state)[0], atol=TOL)
    check_compiled(printed_module(printed, tmp_path), model, x, lengths, (y, state))


@pytest.mark.parametrize("task", ["char-lm", "sentiment", "forecast"])
def test_int8_safetensors_hold_the_int8_weights_and_import_to_the_same_int8_model(
        task, task_runs, tmp_path):
    """--precision int8: the recurrent weights as int8 with a float32 scale per row (the
    quantisation int8 inference does), everything else float32; imported back, the run
    in int8 gives the original run's int8 outputs bit for bit."""
    run = task_runs / task
    model, _ = load_model(RunDir.open(str(run)))
    out = tmp_path / "q.safetensors"
    printed = ok(invoke("export", run, "--format", "safetensors", "--precision", "int8",
                        "--out", out))
    assert "recurrent weights in int8" in printed
    from safetensors import safe_open
    with safe_open(str(out), framework="np") as f:
        assert f.metadata()["precision"] == "int8"
        stored = {name: f.get_tensor(name) for name in f.keys()}
    params = model.state_dict()
    quantised = torch_names.rnn_weights(model)
    assert len(quantised) == 2 * model.rnn.num_layers * model.rnn.num_directions
    assert set(stored) == set(params) | {n + ".scale" for n in quantised}
    for name, value in params.items():
        if name in quantised:
            q, scale = stored[name], stored[name + ".scale"]
            assert q.dtype == np.int8 and scale.shape == (value.shape[0],)
            assert np.abs(q).max() == 127
            step = np.abs(value).max(axis=1) / 127
            assert np.all(np.abs(q * scale[:, None] - value) <= step[:, None] / 2 * 1.001)
        else:
            assert stored[name].dtype == np.float32
            np.testing.assert_array_equal(stored[name], value)
    ok(invoke("import", out, "--out", tmp_path / "back"))
    x, lengths = first_batch(run)
    want, _ = load_model(RunDir.open(str(run)), precision="int8")[0].forward(
        x, lengths=lengths, need_grad=False)
    got, _ = load_model(RunDir.open(str(tmp_path / "back")), precision="int8")[0].forward(
        x, lengths=lengths, need_grad=False)
    np.testing.assert_array_equal(got, want)


def test_int8_export_refusals_are_one_line(task_runs, tmp_path):
    run = task_runs / "char-lm"
    for fmt in ("onnx", "torch"):
        one_line_error(invoke("export", run, "--format", fmt, "--precision", "int8",
                              "--out", tmp_path / "m"),
                       "--precision int8 is for --format safetensors")
    good = tmp_path / "good.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--precision", "int8", "--out", good))
    tensors, info = st.read(str(good))
    from safetensors.numpy import load_file, save_file
    raw = load_file(str(good))
    raw.pop("rnn.weight_hh_l0.scale")
    metadata = {"format": st.FORMAT, st.CONFIG_KEY: json.dumps(info), "precision": "int8"}
    save_file(raw, str(tmp_path / "noscale.safetensors"), metadata=metadata)
    one_line_error(invoke("import", tmp_path / "noscale.safetensors", "--out", tmp_path / "r"),
                   "int8 tensor 'rnn.weight_hh_l0' needs")
    save_file(load_file(str(good)), str(tmp_path / "int4.safetensors"),
              metadata=dict(metadata, precision="int4"))
    one_line_error(invoke("import", tmp_path / "int4.safetensors", "--out", tmp_path / "r"),
                   "precision 'int4'")
    assert not (tmp_path / "r").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "good.safetensors", "int4.safetensors", "noscale.safetensors"]


def test_imported_run_predicts_as_the_original(task_runs, tmp_path):
    run = task_runs / "sentiment"
    ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "s.safetensors"))
    ok(invoke("import", tmp_path / "s.safetensors", "--out", tmp_path / "s"))
    texts = ["A gripping, funny film.", "Dull and far too long."]
    assert ok(invoke("predict", tmp_path / "s", *texts)) == ok(invoke("predict", run, *texts))


def test_readme_onnxruntime_snippet_runs_and_agrees_with_predict(task_runs, tmp_path,
                                                                  monkeypatch, capsys):
    import re
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"),
                  encoding="utf-8").read()
    section = readme.split("\n## Export\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    run = task_runs / "sentiment"
    ok(invoke("export", run, "--format", "onnx", "--out", tmp_path / "rt.onnx"))
    monkeypatch.chdir(tmp_path)
    exec(code.replace("runs/rt.onnx", "rt.onnx"), {})
    printed = eval(capsys.readouterr().out)
    texts = ["It\u2019s a gorgeous, witty, seductive movie", "dull\u2026 and far too long"]
    assert texts[0] in code and texts[1] in code
    # the snippet's tokenizer is the task's (version 3), also where versions 1 and 2 differ
    namespace = {}
    exec(code.split("texts = ")[0].replace("runs/rt.onnx", "rt.onnx"), namespace)
    for text in (*texts, "cafe\u0301 \uff27ood \ufb01lm\u00ad! \u2764\ufe0f\u200bok",
                 "\u092b\u093f\u0932\u094d\u092e \u0905\u091a\u094d\u091b\u0940"):
        assert namespace["tokenize"](text) == tokenize(text) != tokenize(text, 1)
    for text in ("\u6620\u753b\u304c\u597d\u304d\u3067\u3059 \uff83\uff9e\uff70\uff80",
                 "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e07\u0e48\u0e32\u0e22 abc",
                 "\u6211\u559c\u6b22\U00020000\u3005 \u1781\u17d2\u1798\u17c2\u179a"):
        assert namespace["tokenize"](text) == tokenize(text) != tokenize(text, 2)
    predicted = [json.loads(line)["probabilities"]
                 for line in ok(invoke("predict", run, *texts, "--json")).splitlines()]
    assert len(printed) == len(predicted) == 2
    for got, want in zip(printed, predicted):
        assert list(got) == list(want)
        assert all(abs(got[c] - want[c]) <= 5e-4 + 1e-6 for c in want)  # printed rounded


def test_default_out_is_beside_the_run(task_runs):
    run = task_runs / "forecast"
    printed = ok(invoke("export", run, "--format", "safetensors"))
    assert f"wrote {run}.safetensors" in printed
    assert os.path.isfile(f"{run}.safetensors")
    os.remove(f"{run}.safetensors")


# ---- refusal and bad input ---------------------------------------------------------------

def test_a_cell_without_onnx_operator_is_refused_but_safetensors_works(tmp_path):
    peephole = pytest.importorskip("recurrent_peephole",
                                   reason="examples/recurrent-peephole is not installed")
    spec = {"input": "tokens", "vocab_size": 9, "embed_dim": 3, "output": "sequence",
            "output_size": 9}
    model = SequenceModel(spec, cell=peephole.PeepholeLSTMCell(), hidden_size=4)
    for call in (lambda: onnx_model(model, softmax=True),
                 lambda: torch_names.torch_source(model, "x")):
        with pytest.raises(UserError, match="cell 'peephole_lstm' has no .* equivalent"):
            call()


def test_cli_refuses_a_plugin_cell_in_one_line(tmp_path):
    pytest.importorskip("recurrent_peephole",
                        reason="examples/recurrent-peephole is not installed")
    from test_example_plugin import _recurrent
    run = tmp_path / "pp"
    trained = _recurrent("train", "char-lm", "--cell", "peephole_lstm", "--hidden", "4",
                         "--embed-dim", "3", "--max-chars", "5000", "--batch-size", "4",
                         "--seq-len", "8", *TINY, "--out", str(run), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    for fmt in ("onnx", "torch"):
        result = _recurrent("export", str(run), "--format", fmt, cwd=tmp_path)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cell 'peephole_lstm' has no" in lines[0], result.stderr
        assert lines[0].endswith("export it with --format safetensors")  # no ONNX graph
        assert not any(p.name.startswith("pp.") for p in tmp_path.iterdir())  # no file
    result = _recurrent("export", str(run), "--format", "safetensors", "--precision", "int8",
                        cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "cell 'peephole_lstm' has no int8 path" in lines[0]
    assert not any(p.name.startswith("pp.") for p in tmp_path.iterdir())
    saved = _recurrent("export", str(run), "--format", "safetensors", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    back = _recurrent("import", f"{run}.safetensors", "--out", str(tmp_path / "pp2"),
                      cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    with np.load(run / "best.npz") as a, np.load(tmp_path / "pp2" / "best.npz") as b:
        for name in a.files:
            if name.startswith("param/"):
                np.testing.assert_array_equal(a[name], b[name])


def test_bad_input_is_one_line_and_writes_nothing(task_runs, tmp_path):
    run = task_runs / "forecast"
    one_line_error(invoke("export", tmp_path / "nope", "--format", "onnx"), "does not exist")
    one_line_error(invoke("export", run, "--format", "keras"), "'keras' is not one of")
    one_line_error(invoke("export", run, "--format", "onnx", "--out", tmp_path / "a" / "m"),
                   "does not exist")
    one_line_error(invoke("export", run, "--format", "onnx", "--out", tmp_path),
                   "is a directory")
    one_line_error(invoke("export", run, "--format", "safetensors", "--out",
                          f"{tmp_path / 'models'}{os.sep}"),
                   f"--out {tmp_path / 'models'}{os.sep} names a directory")
    one_line_error(invoke("export", run, "--format", "torch", "--state-inputs"),
                   "--state-inputs is for --format onnx")
    one_line_error(invoke("import", tmp_path / "none.safetensors", "--out", tmp_path / "r"),
                   "does not exist")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    one_line_error(invoke("import", junk, "--out", tmp_path / "r"), "not a readable")
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "plain.safetensors"))
    one_line_error(invoke("import", tmp_path / "plain.safetensors", "--out", tmp_path / "r"),
                   "holds no recurrent run")
    good = tmp_path / "good.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", good))
    one_line_error(invoke("import", good, "--out", run), "already holds a run")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:-50])
    one_line_error(invoke("import", truncated, "--out", tmp_path / "r"), "not a readable")
    assert not (tmp_path / "r").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cut.safetensors", "good.safetensors", "junk.safetensors", "plain.safetensors"]


def test_import_names_what_the_metadata_lacks(task_runs, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    good = tmp_path / "good.safetensors"
    ok(invoke("export", task_runs / "forecast", "--format", "safetensors", "--out", good))
    with safe_open(str(good), "np") as f:
        metadata = f.metadata()
    tensors = load_file(str(good))
    for name, changed, says in [
            ("other.st", {**metadata, "format": "other"},
             "its metadata names the format 'other', not 'recurrent'"),
            ("unnamed.st", {k: v for k, v in metadata.items() if k != "format"},
             "its metadata has no 'format': 'recurrent'"),
            ("bare.st", {"format": "recurrent"}, "its metadata has no 'config.json'")]:
        save_file(tensors, str(tmp_path / name), changed)
        one_line_error(invoke("import", tmp_path / name, "--out", tmp_path / "r"),
                       f"{tmp_path / name} holds no recurrent run ({says})")
    assert not (tmp_path / "r").exists()


def test_torch_export_to_a_name_that_is_not_utf8_is_refused(task_runs, tmp_path):
    """The printed module loads its file with safetensors' load_file, which refuses a path
    that is not UTF-8: such an --out is refused before anything is written."""
    out = os.fsdecode(os.fsencode(tmp_path) + b"/model-\xff.safetensors")
    from safetensors.numpy import save
    from safetensors.torch import load_file
    with open(out, "wb") as f:  # an existing file, which load_file still refuses
        f.write(save({"w": np.zeros(1, np.float32)}))
    with pytest.raises(Exception, match="not valid UTF-8"):
        load_file(out)
    os.remove(out)
    # a stdout that writes such a name's bytes as they are, so that the lines printed
    # could name it
    result = subprocess.run(
        [sys.executable, "-m", "recurrent", "export", task_runs / "forecast", "--format",
         "torch", "--out", out], capture_output=True, text=True, errors="surrogateescape",
        env=installed_env(PYTHONIOENCODING="utf-8:surrogateescape"))
    one_line_error(result, r"--out $'", r"model-\xff.safetensors'", "UTF-8 paths only")
    assert list(tmp_path.iterdir()) == []


def test_import_of_an_onnx_file_says_import_reads_safetensors(task_runs, tmp_path):
    onnx_file = tmp_path / "model.onnx"
    ok(invoke("export", task_runs / "forecast", "--format", "onnx", "--out", onnx_file))
    one_line_error(invoke("import", onnx_file, "--out", tmp_path / "r"),
                   "its name says an ONNX model", "--format safetensors")
    assert not (tmp_path / "r").exists()


def test_import_refuses_tensors_that_do_not_fit(task_runs, tmp_path):
    run = task_runs / "forecast"
    good = tmp_path / "good.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", good))
    tensors, info = st.read(str(good))
    tensors["head.bias"] = np.zeros(99, np.float32)
    st.write(str(tmp_path / "bad.safetensors"), tensors, info)
    one_line_error(invoke("import", tmp_path / "bad.safetensors", "--out", tmp_path / "r"),
                   "does not fit", "head.bias")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("what", ["cell", "task"])
def test_import_of_a_plugin_not_installed_here_names_the_file(task_runs, tmp_path, what):
    """A file whose metadata names a cell or task no installed plugin registers (exported
    where its plugin is installed): one line naming it and the file, no run made."""
    good = tmp_path / "good.safetensors"
    ok(invoke("export", task_runs / "forecast", "--format", "safetensors", "--out", good))
    tensors, info = st.read(str(good))
    if what == "cell":
        info["config"]["cell"] = "not_installed_lstm"
    else:
        info["task"] = "not-installed-task"
    st.write(str(tmp_path / "other.safetensors"), tensors, info)
    one_line_error(invoke("import", tmp_path / "other.safetensors", "--out", tmp_path / "r"),
                   f"unknown {what} 'not_installed_lstm'" if what == "cell" else
                   f"unknown {what} 'not-installed-task'",
                   f"(read from {tmp_path / 'other.safetensors'}'s metadata)")
    assert not (tmp_path / "r").exists()
