"""`recurrent export` / `recurrent import` of encoder-decoder (seq2seq) runs: the encoder
and decoder-step ONNX graphs against Seq2SeqModel.encode and decoder_step, greedy
decoding driven by onnxruntime against recurrent's, docs/export.md's decoding loop against
`predict`, the safetensors names and an imported run's eval and predict, and the
refusals (one line, nothing written)."""
import contextlib
import json
import os
import re

import numpy as np
import pytest
from helpers import (invoke, ok, one_line_error, padded_sources as padded,
                     random_seq2seq as random_model, registered_plugin)

from recurrent.checkpoint import RunDir
from recurrent.export import safetensors as st
from recurrent.export.run import export_run
from recurrent.runs import load_model
from recurrent.seq2seq import greedy
from recurrent.threads import single_threaded_blas

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
from recurrent.export import onnx_seq2seq  # noqa: E402  (needs the onnx package)

TOL = 1e-5
ATTENTIONS = ("general", "dot", "additive")
CELLS = ("lstm", "gru", "rnn_tanh")
SHAPES = [(1, True), (2, True), (2, False)]  # (layers, bidirectional encoder)
# source ids of lengths 5, 1, 0 (nothing left after tokenizing), 3, 2, 4
SOURCES = [[3, 4, 5, 6, 3], [5], [], [6, 3, 4], [4, 4], [6, 5, 4, 3]]
SMALL = ["--hidden", "16", "--embed-dim", "8", "--threads", "1", "--quiet", "--no-plot",
         "--max-train", "400", "--max-eval", "40"]


# ---- helpers ---------------------------------------------------------------------------

def session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess, feeds):
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def onnx_greedy(model, src, lengths, max_len):
    """Greedy decoding with the two graphs through onnxruntime: (tokens per row, EOS
    excluded; whether each row emitted EOS; summed log-probabilities)."""
    encoder = session(onnx_seq2seq.encoder_model(model))
    decoder = session(onnx_seq2seq.decoder_step_model(model))
    names = onnx_seq2seq.states(model)
    enc = run(encoder, {"source": src, "source_lengths": lengths})
    states = {name: enc[name] for name in names}
    B = src.shape[1]
    previous = np.full(B, model.bos, np.int64)
    done, finished = np.zeros(B, bool), np.zeros(B, bool)
    scores, tokens = np.zeros(B), [[] for _ in range(B)]
    for _ in range(max_len):
        out = run(decoder, {"previous": previous, "memory": enc["memory"],
                            "source_lengths": lengths, **states})
        states = {name: out[name[:-2] + "_n"] for name in names}
        previous = out["log_probs"].argmax(axis=1)
        for b in np.flatnonzero(~done):
            scores[b] += out["log_probs"][b, previous[b]]
            if previous[b] == model.eos:
                finished[b] = done[b] = True
            else:
                tokens[b].append(int(previous[b]))
        if done.all():
            break
    return tokens, finished, scores


def assert_close(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert np.array_equal(np.isfinite(got), np.isfinite(want)), what
    finite = np.isfinite(want)
    assert np.abs(got[finite] - want[finite]).max(initial=0) <= TOL, what


# ---- the graphs against the model ------------------------------------------------------

# (attention, cell, zoneout): ln_lstm and zoneout's blend are Scans over the cell's step
# (onnx.py); the additive decoder takes no zoneout
VARIANTS = ([(attention, cell, 0.0) for attention in ATTENTIONS for cell in CELLS]
            + [(attention, "ln_lstm", 0.0) for attention in ATTENTIONS]
            + [("general", "lstm", 0.3), ("dot", "gru", 0.3), ("general", "ln_lstm", 0.2)])


@pytest.mark.parametrize("layers,bidirectional", SHAPES)
@pytest.mark.parametrize("attention, cell, zoneout", VARIANTS)
def test_graphs_agree_with_encode_and_decoder_step(attention, cell, zoneout, layers,
                                                   bidirectional):
    model = random_model(attention, cell, layers, bidirectional, zoneout=zoneout)
    src, lengths = padded(SOURCES)
    encoder = session(onnx_seq2seq.encoder_model(model))
    decoder = session(onnx_seq2seq.decoder_step_model(model))
    with single_threaded_blas():
        memory, init, threads = model.encode(src, lengths)
    enc = run(encoder, {"source": src, "source_lengths": lengths})
    names = onnx_seq2seq.states(model)
    assert len(names) == len(init) == (1 + (cell in ("lstm", "ln_lstm"))
                                       + (attention == "additive"))
    assert_close(enc["memory"], memory, "memory")
    assert np.abs(memory).max() > 0.1  # not a vacuous comparison of zeros
    for name, want in zip(names, init):
        assert_close(enc[name], want, name)
    # two steps, the second from the first's states (the first's graph outputs fed back)
    states, previous = init, np.full(len(SOURCES), model.bos)
    feeds = {name: enc[name] for name in names}
    for _ in range(2):
        with single_threaded_blas():
            logp, states, weights = model.decoder_step(previous, states, memory, lengths,
                                                       threads)
        out = run(decoder, {"previous": previous, "memory": enc["memory"],
                            "source_lengths": lengths, **feeds})
        assert_close(out["log_probs"], logp, "log_probs")
        assert np.isneginf(out["log_probs"][:, [0, model.bos]]).all()
        assert_close(out["attention"], weights, "attention")
        assert (out["attention"][2] == 0).all()  # the row of source length 0
        for name, want in zip(names, states):
            assert_close(out[name[:-2] + "_n"], want, name)
        feeds = {name: out[name[:-2] + "_n"] for name in names}
        previous = np.argmax(logp, axis=1)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_loop_through_onnxruntime_is_recurrents_greedy(attention, cell):
    for seed in (0, 1):
        model = random_model(attention, cell, 2, True, seed=seed)
        src, lengths = padded(SOURCES)
        max_len = 12
        with single_threaded_blas():
            want = greedy(model, src, max_len=max_len, attention=False)
        tokens, finished, scores = onnx_greedy(model, src, lengths, max_len)
        for b in range(len(SOURCES)):
            n = want.lengths[b, 0]
            assert tokens[b] == want.tokens[b, 0, :n].tolist(), (seed, b)
        np.testing.assert_array_equal(finished, want.finished[:, 0])
        np.testing.assert_allclose(scores, want.scores[:, 0], rtol=0, atol=1e-4)


# ---- runs through the CLI --------------------------------------------------------------

@pytest.fixture(scope="module", params=[("general", "lstm"), ("additive", "gru")],
                ids=lambda p: "-".join(p))
def trained(request, tmp_path_factory):
    """A small g2p run trained for 100 steps on the bundled data: it emits phonemes."""
    attention, cell = request.param
    path = tmp_path_factory.mktemp("s2s") / "g2p"
    ok(invoke("train", "seq2seq", "--attention", attention, "--cell", cell, "--layers", 2,
              "--epochs", 4, "--batch-size", 16, "--lr", 0.01, "--out", path, *SMALL))
    return path


def test_docs_decoding_loop_prints_what_predict_prints(trained, tmp_path, monkeypatch,
                                                       capsys):
    docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "export.md"),
                encoding="utf-8").read()
    section = docs.split("\n## Encoder-decoders (seq2seq)\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = ok(invoke("export", trained, "--format", "onnx", "--out", tmp_path / "g2p.onnx"))
    assert f"wrote {tmp_path / 'g2p.encoder.onnx'}" in printed
    assert f"wrote {tmp_path / 'g2p.decoder.onnx'}" in printed
    monkeypatch.chdir(tmp_path)
    exec(code.replace("runs/g2p", "g2p"), {})
    got = capsys.readouterr().out
    want = ok(invoke("predict", trained, "knight", "phoneme"))
    assert got == want
    assert len(want.split()) > 4  # phonemes, not empty outputs
    meta = ort.InferenceSession(str(tmp_path / "g2p.decoder.onnx")).get_modelmeta()
    info = json.loads(meta.custom_metadata_map["config.json"])
    assert info["task"] == "seq2seq" and meta.custom_metadata_map["graph"] == "decoder_step"


def test_safetensors_names_and_imported_run_evaluates_and_predicts_the_same(trained,
                                                                            tmp_path):
    path = tmp_path / "g2p.safetensors"
    ok(invoke("export", trained, "--format", "safetensors", "--out", path))
    tensors, info = st.read(str(path))
    model, _ = load_model(RunDir.open(str(trained)))
    attention = info["model_spec"]["attention"]
    expected = {"encoder.embedding.weight", "decoder.embedding.weight", "head.weight",
                "head.bias", "attention.weight_c"}
    expected |= ({"attention.weight_a"} if attention == "general" else
                 {"attention.weight_q", "attention.weight_k", "attention.v"})
    for side, directions in (("encoder", ("", "_reverse")), ("decoder", ("",))):
        expected |= {f"{side}.rnn.{kind}_l{k}{d}" for kind in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                     for k in range(2) for d in directions}
    assert set(tensors) == expected
    own = model.state_dict()
    np.testing.assert_array_equal(tensors["encoder.embedding.weight"],
                                  own["source_embedding.weight"])
    np.testing.assert_array_equal(tensors["encoder.rnn.weight_hh_l1_reverse"],
                                  own["encoder.weight_hh_l1_reverse"])
    np.testing.assert_array_equal(tensors["decoder.rnn.weight_ih_l0"],
                                  own["decoder.weight_ih_l0"])
    np.testing.assert_array_equal(tensors["head.weight"], own["head.weight"])
    assert sum(t.size for t in tensors.values()) == model.params.size
    copy = tmp_path / "copy"
    ok(invoke("import", path, "--out", copy))
    original = json.loads(ok(invoke("eval", trained, "--json")))
    imported = json.loads(ok(invoke("eval", copy, "--json")))
    assert original.pop("run") != imported.pop("run")
    assert imported == original and original["metrics"]["pairs"] == 40
    for args in (["knight", "phoneme", "a"], ["knight", "--beam", 3, "--n-best", 3, "--json"]):
        assert ok(invoke("predict", copy, *args)) == ok(invoke("predict", trained, *args))


def test_int8_inference_and_its_export(trained, tmp_path):
    """--precision int8 runs both recurrent stacks in int8 (the Luong decoder through
    run_step, the additive one through its stepping loop): eval's figures near fp32's,
    predictions that decode; the int8 safetensors file holds both stacks' weights as
    int8 and, imported, gives the same int8 results."""
    fp32 = json.loads(ok(invoke("eval", trained, "--json")))
    int8 = json.loads(ok(invoke("eval", trained, "--json", "--precision", "int8")))
    assert int8["precision"] == "int8"
    assert int8["metrics"]["loss"] != fp32["metrics"]["loss"]   # it ran in int8
    assert int8["metrics"]["loss"] == pytest.approx(fp32["metrics"]["loss"], rel=0.02)
    assert abs(int8["metrics"]["per"] - fp32["metrics"]["per"]) <= 0.05
    path = tmp_path / "m.int8.safetensors"
    ok(invoke("export", trained, "--format", "safetensors", "--precision", "int8",
              "--out", path))
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        quantised = sorted(k for k in f.keys() if f.get_tensor(k).dtype == np.int8)
    assert quantised and all(k.startswith(("encoder.rnn.weight_", "decoder.rnn.weight_"))
                             for k in quantised)
    assert {k.split(".")[0] for k in quantised} == {"encoder", "decoder"}
    copy = tmp_path / "copy"
    ok(invoke("import", path, "--out", copy))
    again = json.loads(ok(invoke("eval", copy, "--json", "--precision", "int8")))
    assert again["metrics"] == int8["metrics"]
    for args in (["knight", "phoneme"], ["knight", "--beam", 3, "--n-best", 2, "--json"]):
        assert (ok(invoke("predict", copy, *args, "--precision", "int8"))
                == ok(invoke("predict", trained, *args, "--precision", "int8")))


def test_refusals_are_one_line_and_write_nothing(trained, tmp_path):
    one_line_error(invoke("export", trained, "--format", "onnx", "--state-inputs", "--out",
                          tmp_path / "m.onnx"), "--state-inputs: ")
    assert list(tmp_path.iterdir()) == []
    # an existing decoder file: refused before the encoder's is written, kept as it was
    (tmp_path / "m.decoder.onnx").write_text("keep")
    one_line_error(invoke("export", trained, "--format", "onnx", "--out", tmp_path / "m.onnx"),
                   f"--out {tmp_path / 'm.decoder.onnx'} already exists; give --force")
    assert [p.name for p in tmp_path.iterdir()] == ["m.decoder.onnx"]
    assert (tmp_path / "m.decoder.onnx").read_text() == "keep"
    ok(invoke("export", trained, "--format", "onnx", "--out", tmp_path / "m", "--force"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.decoder.onnx", "m.encoder.onnx"]
    assert ort.InferenceSession(str(tmp_path / "m.decoder.onnx")).get_inputs()[0].name \
        == "previous"
    # a file whose tensors carry the model's own names, not the exported ones
    ok(invoke("export", trained, "--format", "safetensors", "--out", tmp_path / "s.st"))
    tensors, info = st.read(str(tmp_path / "s.st"))
    tensors["source_embedding.weight"] = tensors.pop("encoder.embedding.weight")
    st.write(str(tmp_path / "bad.st"), tensors, info)
    one_line_error(invoke("import", tmp_path / "bad.st", "--out", tmp_path / "r"),
                   "does not fit", "'source_embedding.weight' is no part of an encoder-decoder")
    assert not (tmp_path / "r").exists()


def test_an_out_naming_a_directory_is_refused_and_nothing_is_written(trained, tmp_path):
    """The two files' names extend --out's: a directory given as --out is refused as for
    one file, rather than holding hidden ".encoder.onnx" files or files beside it."""
    models = tmp_path / "models"
    models.mkdir()
    for out in (f"{models}{os.sep}", models):
        one_line_error(invoke("export", trained, "--format", "onnx", "--out", out),
                       f"--out {out} is a directory; give a file name")
    assert list(models.iterdir()) == []
    assert list(tmp_path.iterdir()) == [models]


def test_a_failed_second_file_removes_the_first(trained, tmp_path, monkeypatch):
    import recurrent.export.run as export_module
    real = export_module.atomic_write

    def failing(path, *args, **kwargs):
        if path.endswith(".decoder.onnx"):
            raise OSError("disk full")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(export_module, "atomic_write", failing)
    with pytest.raises(OSError, match="disk full"):
        export_run(str(trained), "onnx", str(tmp_path / "m.onnx"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isfile("/proc/version"), reason="needs Linux's /proc")
def test_a_failed_forced_export_keeps_both_files_as_they_were(trained, tmp_path):
    """--force over an existing pair whose decoder file cannot be written (its name links
    to a file in /proc, where no file can be made): refused in one line, and the encoder
    file is still the one that goes with that decoder."""
    (tmp_path / "m.encoder.onnx").write_text("the encoder of another model")
    (tmp_path / "m.decoder.onnx").symlink_to("/proc/version")
    one_line_error(invoke("export", trained, "--format", "onnx", "--out",
                          tmp_path / "m.onnx", "--force"),
                   f"cannot write {tmp_path / 'm.decoder.onnx'}")
    assert (tmp_path / "m.encoder.onnx").read_text() == "the encoder of another model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.decoder.onnx", "m.encoder.onnx"]


def test_what_onnx_cannot_express_is_refused_and_safetensors_keeps(tmp_path):
    with peephole_registered():
        _refused_and_kept(("--cell", "peephole_lstm"),
                          "cell 'peephole_lstm' has no ONNX equivalent (only rnn_tanh, "
                          "rnn_relu, lstm, gru, ln_lstm do)", tmp_path)


@contextlib.contextmanager
def peephole_registered():
    """The example plugin's cell registered in this process (the suite loads no entry
    points), and unregistered again."""
    peephole = pytest.importorskip("recurrent_peephole",
                                   reason="examples/recurrent-peephole is not installed")
    import recurrent

    class Cells:
        @recurrent.hookimpl
        def register_cells(self, register):
            register(peephole.PeepholeLSTMCell())

    with registered_plugin(Cells(), "test-peephole-cells"):
        yield


def _refused_and_kept(option, refusal, tmp_path):
    run_path = tmp_path / "run"
    ok(invoke("train", "seq2seq", *option, "--steps", 2, "--batch-size", 8, "--out",
              run_path, *SMALL))
    one_line_error(invoke("export", run_path, "--format", "onnx"), refusal)
    one_line_error(invoke("export", run_path, "--format", "torch"),
                   refusal.replace("ONNX", "PyTorch"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    ok(invoke("export", run_path, "--format", "safetensors"))
    ok(invoke("import", f"{run_path}.safetensors", "--out", tmp_path / "back"))
    words = ["knight", "a"]
    assert ok(invoke("predict", tmp_path / "back", *words)) == ok(invoke("predict", run_path,
                                                                         *words))
    with np.load(run_path / "best.npz") as a, np.load(tmp_path / "back" / "best.npz") as b:
        names = [n for n in a.files if n.startswith("param/")]
        assert names and sorted(names) == sorted(n for n in b.files if n.startswith("param/"))
        for name in names:
            np.testing.assert_array_equal(a[name], b[name])


def test_encoder_decoder_paths():
    from recurrent.export import seq2seq_onnx_paths
    assert seq2seq_onnx_paths("runs/g2p.onnx") == ("runs/g2p.encoder.onnx",
                                                   "runs/g2p.decoder.onnx")
    assert seq2seq_onnx_paths("model") == ("model.encoder.onnx", "model.decoder.onnx")
    # the extension in another case is still the extension, kept as written
    assert seq2seq_onnx_paths("runs/G2P.ONNX") == ("runs/G2P.encoder.ONNX",
                                                   "runs/G2P.decoder.ONNX")
    assert seq2seq_onnx_paths("m.Onnx") == ("m.encoder.Onnx", "m.decoder.Onnx")
