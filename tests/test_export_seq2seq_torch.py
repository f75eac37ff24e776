"""`recurrent export SEQ2SEQ_RUN --format torch`: the printed Seq2Seq module, built by
running the printed code and loaded strictly, against Seq2SeqModel.encode and
decoder_step (every built-in cell and attention, stacked and bidirectional encoders,
zoneout, rows of source length 0), its greedy search against decode.greedy and its beam
search against decode.search; through the CLI, the printed file's greedy and beam outputs
against `recurrent predict`."""
import os
import re
import sys

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, padded_sources, random_seq2seq

from recurrent.checkpoint import RunDir
from recurrent.export import safetensors as st
from recurrent.export import seq2seq_names, torch_names, torch_seq2seq
from recurrent.runs import load_model
from recurrent.seq2seq import greedy, search
from recurrent.threads import single_threaded_blas

torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
pytest.importorskip("onnxruntime", reason="test_export's helpers need onnxruntime")
from test_export import TORCHSCRIPT, printed_module, torch_model  # noqa: E402
from test_export_seq2seq import SOURCES, SMALL, assert_close  # noqa: E402

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
ATTENTIONS = ("general", "dot", "additive")
LONGEST = 3  # the longest training target the printed models are given
# (attention, cell, layers, bidirectional, zoneout): every cell and attention with a
# bidirectional 2-layer encoder; other shapes; zoneout's blend (the additive decoder
# takes none)
GRID = ([(attention, cell, 2, True, 0.0) for attention in ATTENTIONS for cell in CELLS]
        + [("general", "gru", 1, False, 0.0), ("additive", "lstm", 3, True, 0.0),
           ("dot", "ln_lstm", 1, False, 0.0)]
        + [("general", "lstm", 2, True, 0.3), ("dot", "gru", 3, True, 0.3),
           ("general", "ln_lstm", 1, False, 0.2), ("dot", "rnn_relu", 2, True, 0.25)])


def printed(model, tmp_path):
    """(the printed module of ``model`` loaded from its exported file, the file's
    tensors, the printed lines)."""
    path = str(tmp_path / "m.torch.safetensors")
    tensors = seq2seq_names.tensors(model)
    st.write(path, tensors, {})
    source = torch_seq2seq.torch_source(model, path, {"task_state": {"longest_target": LONGEST}})
    return torch_model(source), tensors, source


def tokens_of(hypotheses):
    """Each row's best token ids (EOS excluded) of decode's Hypotheses."""
    return [[int(t) for t in hypotheses.tokens[b, 0, :hypotheses.lengths[b, 0]]]
            for b in range(hypotheses.tokens.shape[0])]


def assert_beam(got, hypotheses, nbest, label):
    """The printed beam's hypotheses ``got`` are decode's first ``nbest`` of each row:
    the same token ids, normalised scores within 1e-4, relative for a score beyond 1 (a
    raw sum over many steps adds up each step's float32 difference), -inf for a
    hypothesis that does not exist."""
    assert len(got) == hypotheses.tokens.shape[0], label
    for b, row in enumerate(got):
        assert len(row) == nbest, label
        for k, (ids, score) in enumerate(row):
            want = [int(t) for t in hypotheses.tokens[b, k, :hypotheses.lengths[b, k]]]
            assert ids == want, f"{label}: row {b} hypothesis {k}"
            normalised = hypotheses.normalised[b, k]
            if np.isneginf(normalised):
                assert np.isneginf(score) and not ids, f"{label}: row {b} hypothesis {k}"
            else:
                assert abs(score - normalised) <= 1e-4 * max(1.0, abs(normalised)), \
                    f"{label}: row {b} hypothesis {k}"


@pytest.mark.parametrize("attention, cell, layers, bidirectional, zoneout", GRID)
def test_printed_model_computes_encode_decoder_step_and_greedy(
        attention, cell, layers, bidirectional, zoneout, tmp_path):
    model = random_seq2seq(attention, cell, layers, bidirectional, zoneout=zoneout)
    tm, tensors, source = printed(model, tmp_path)
    assert list(tm.state_dict()) == list(tensors)  # the file's names, loaded strictly
    assert any(line.startswith("class Recurrent(") for line in source) == \
        torch_names.loops(model.encoder)
    src, lengths = padded_sources(SOURCES)
    t_src, t_len = torch.as_tensor(src), torch.as_tensor(lengths)
    with single_threaded_blas():
        memory, states, threads = model.encode(src, lengths)
    with torch.no_grad():
        t_memory, t_states = tm.encode(t_src, t_len)
    assert_close(t_memory, memory, "memory")
    assert len(t_states) == len(states)
    for got, want in zip(t_states, states):
        assert_close(got, want, "encoded states")
    rng = np.random.default_rng(0)
    previous = np.full(len(SOURCES), model.bos, np.int64)
    for step in range(3):  # each step from the states the step before gave
        with single_threaded_blas():
            log_probs, states, weights = model.decoder_step(previous, states, memory,
                                                            lengths, threads)
        with torch.no_grad():
            t_log_probs, t_states, t_weights = tm.step(torch.as_tensor(previous), t_states,
                                                       t_memory, t_len)
        assert_close(t_log_probs, log_probs, f"log_probs at step {step}")
        assert np.isneginf(t_log_probs[:, [0, model.bos]].numpy()).all()
        for got, want in zip(t_states, states):
            assert_close(got, want, f"states at step {step}")
        assert_close(t_weights, weights, f"attention at step {step}")
        empty = torch.as_tensor(lengths == 0)
        assert not t_weights[empty].any()  # a row without source attends to nothing
        previous = rng.integers(3, 9, len(SOURCES))
    with torch.no_grad():
        assert tm.greedy(t_src, t_len) == tokens_of(greedy(model, src, longest=LONGEST))
        assert tm.greedy(t_src, t_len, max_len=4) == tokens_of(greedy(model, src, max_len=4))


@pytest.mark.parametrize("attention, cell, layers, bidirectional, zoneout", GRID)
def test_printed_beam_finds_decode_searchs_hypotheses(attention, cell, layers, bidirectional,
                                                      zoneout, tmp_path):
    """beam gives decode.search's best hypotheses in its order, their normalised scores
    within 1e-4, for widths 1, 3, 5, raw and length-normalised scores; width 1 is greedy;
    a beam wider than the hypotheses there are ends with empty ones."""
    model = random_seq2seq(attention, cell, layers, bidirectional, zoneout=zoneout)
    tm, _, _ = printed(model, tmp_path)
    src, lengths = padded_sources(SOURCES)
    t_src, t_len = torch.as_tensor(src), torch.as_tensor(lengths)
    for width in (1, 3, 5):
        for alpha in (0.0, torch_seq2seq.ALPHA):
            want = search(model, src, beam=width, alpha=alpha, attention=False,
                          longest=LONGEST)
            for nbest in sorted({1, min(3, width)}):
                with torch.no_grad():
                    got = tm.beam(t_src, t_len, width, alpha, nbest=nbest)
                assert_beam(got, want, nbest, f"width {width}, alpha {alpha}, nbest {nbest}")
    with torch.no_grad():
        assert [row[0][0] for row in tm.beam(t_src, t_len, 1)] == \
            tm.greedy(t_src, t_len)
        # one decoded symbol: 7 of the 9 target ids (not PAD, not BOS), 2 hypotheses none
        got = tm.beam(t_src, t_len, 9, max_len=1, nbest=9)
    want = search(model, src, beam=9, max_len=1, attention=False)
    assert np.isneginf(want.scores[:, 7:]).all()
    assert_beam(got, want, 9, "width 9, max_len 1")



@pytest.mark.parametrize("attention, cell", [("general", "lstm"), ("additive", "gru")])
def test_printed_beam_breaks_ties_as_decode_does(attention, cell, tmp_path):
    """With every weight zero, each step's continuations tie (every target id but PAD
    and BOS equally likely): beam keeps the lower ids, and ranks tied hypotheses, as
    decode.search does."""
    model = random_seq2seq(attention, cell, 2, True)
    model.params[...] = 0.0
    model.params_changed()
    tm, _, _ = printed(model, tmp_path)
    src, lengths = padded_sources(SOURCES)
    for width, alpha in ((3, 0.0), (4, torch_seq2seq.ALPHA), (9, 0.0)):
        want = search(model, src, beam=width, alpha=alpha, max_len=3, attention=False)
        with torch.no_grad():
            got = tm.beam(torch.as_tensor(src), torch.as_tensor(lengths), width, alpha,
                          max_len=3, nbest=width)
        assert_beam(got, want, width, f"width {width}, alpha {alpha}")
    # EOS (2) first, then the lowest ids: the ties' order, not the model's preference
    assert [ids for ids, _ in got[0]] == [[], [3], [4], [3, 3], [3, 3, 3], [3, 3, 4],
                                          [3, 3, 5], [3, 3, 6], [3, 3, 7]]


@TORCHSCRIPT
@pytest.mark.parametrize("attention, cell, zoneout", [
    ("general", "lstm", 0.0), ("additive", "gru", 0.0), ("dot", "rnn_relu", 0.0),
    ("dot", "ln_lstm", 0.0), ("general", "gru", 0.3)])
def test_printed_model_compiles_with_torch_jit_script(attention, cell, zoneout, tmp_path):
    """torch.jit.script compiles the printed model, with torch.nn's stacks or the printed
    Recurrent (ln_lstm, zoneout), and its greedy and beam give the same tokens as ours."""
    model = random_seq2seq(attention, cell, 2, True, zoneout=zoneout)
    _, _, source = printed(model, tmp_path)
    scripted = torch.jit.script(printed_module(source, tmp_path))
    src, lengths = padded_sources(SOURCES)
    with torch.no_grad():
        got = scripted.greedy(torch.as_tensor(src), torch.as_tensor(lengths), None)
        beams = scripted.beam(torch.as_tensor(src), torch.as_tensor(lengths), 3, 0.5, None, 2)
    assert got == tokens_of(greedy(model, src, longest=LONGEST))
    assert_beam(beams, search(model, src, beam=3, alpha=0.5, attention=False,
                              longest=LONGEST), 2, "scripted")


@TORCHSCRIPT
@pytest.mark.parametrize("cell", ["lstm", "ln_lstm"])
def test_printed_searches_refuse_inputs_they_cannot_decode(cell, tmp_path):
    """greedy and beam, eager and compiled, raise a ValueError naming what is wrong: a
    max_len below 1 (greedy too, rather than empty outputs), a batch of no rows or no
    source steps, lengths that do not fit the source; a valid call still decodes."""
    model = random_seq2seq("general", cell, 1, True)
    tm, _, source = printed(model, tmp_path)
    scripted = torch.jit.script(printed_module(source, tmp_path))
    src, lengths = padded_sources(SOURCES)
    t_src, t_len = torch.as_tensor(src), torch.as_tensor(lengths)
    S, B = src.shape
    bad = [(t_src, t_len, 0, "max_len: expected at least 1"),
           (t_src, t_len, -2, "max_len: expected at least 1"),
           (t_src[:, :0], t_len[:0], None, "source: expected ids of shape (S, B)"),
           (t_src[:0], torch.zeros(B, dtype=torch.int64), None,
            "source: expected ids of shape (S, B)"),
           (t_src, t_len + S, None, "source_lengths: expected shape (B,), each in 0..S"),
           (t_src, t_len[:-1], None, "source_lengths: expected shape (B,), each in 0..S"),
           (t_src, t_len - 1, None, "source_lengths: expected shape (B,), each in 0..S")]
    for m, error in ((tm, ValueError), (scripted, torch.jit.Error)):
        for x, n, max_len, message in bad:
            with pytest.raises(error, match=re.escape(message)):
                m.greedy(x, n, max_len)
            with pytest.raises(error, match=re.escape(message)):
                m.beam(x, n, 2, 1.0, max_len, 1)
        with torch.no_grad():
            assert m.greedy(t_src, t_len, 1) == tokens_of(greedy(model, src, max_len=1))


# ---- through the CLI -------------------------------------------------------------------

@pytest.fixture(scope="module", params=[("general", "lstm", "0"), ("additive", "gru", "0"),
                                        ("dot", "ln_lstm", "0.1")],
                ids=lambda p: "-".join(p))
def trained(request, tmp_path_factory):
    """A small g2p run trained for 100 steps on the bundled data: it emits phonemes."""
    attention, cell, zoneout = request.param
    path = tmp_path_factory.mktemp("s2s-torch") / "g2p"
    ok(invoke("train", "seq2seq", "--attention", attention, "--cell", cell, "--layers", 2,
              "--zoneout", zoneout, "--epochs", 4, "--batch-size", 16, "--lr", 0.01,
              "--out", path, *SMALL))
    return path


def test_printed_file_and_docs_snippet_decode_what_predict_prints(trained, tmp_path,
                                                                   monkeypatch, capsys):
    """The printed file saved as model.py and docs/export.md's snippet around it print
    what `recurrent predict` prints; its greedy gives decode.greedy's tokens of the run's
    model, for words of other lengths too."""
    docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "export.md"),
                encoding="utf-8").read()
    section = docs.split("\n### The printed torch module\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = tmp_path / "g2p.torch.safetensors"
    text = ok(invoke("export", trained, "--format", "torch", "--out", out))
    assert text.startswith(f"# wrote {out}: ")
    (tmp_path / "model.py").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "model", raising=False)  # each run's own model.py
    scope = {}
    exec(code.replace("runs/g2p", "g2p"), scope)
    want = ok(invoke("predict", trained, "knight", "phoneme"))
    assert capsys.readouterr().out == want
    assert len(want.split()) > 4  # phonemes, not empty outputs
    tm, state = scope["model"], scope["state"]
    assert f", {state['longest_target']} (the longest training target))" in text
    # a symbol the model never saw: the snippet has no id for it, the header says predict
    # refuses it, and predict does
    assert "#" not in scope["source_ids"]
    assert "the model never saw: `recurrent predict` refuses such a text" in text
    one_line_error(invoke("predict", trained, "k#"), "never saw")
    assert tm.longest_target == state["longest_target"]
    ids = scope["source_ids"]
    words = ["a", "knight", "", "phonemes"]
    src, lengths = padded_sources([[ids[c] for c in word] for word in words])
    with torch.no_grad():
        outputs = tm.greedy(torch.as_tensor(src), torch.as_tensor(lengths))
    model, _ = load_model(RunDir.open(str(trained)))
    assert outputs == tokens_of(greedy(model, src, longest=state["longest_target"]))


def test_export_file_rules_hold_for_the_torch_file(trained, tmp_path):
    """An existing --out is refused without --force and replaced with it; --precision
    int8 is for safetensors; --state-inputs for onnx: one line, nothing written."""
    out = tmp_path / "m.torch.safetensors"
    out.write_text("keep")
    one_line_error(invoke("export", trained, "--format", "torch", "--out", out),
                   f"--out {out} already exists; give --force")
    assert out.read_text() == "keep"
    for args, fragment in ((["--precision", "int8"], "--precision int8 is for --format "
                                                     "safetensors"),
                           (["--state-inputs"], "--state-inputs is for --format onnx")):
        one_line_error(invoke("export", trained, "--format", "torch", "--out",
                              tmp_path / "n.safetensors", *args), fragment)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    ok(invoke("export", trained, "--format", "torch", "--out", out, "--force"))
    tensors, _ = st.read(str(out))
    model, _ = load_model(RunDir.open(str(trained)))
    assert sorted(tensors) == sorted(seq2seq_names.tensors(model))


def test_printed_beam_prints_what_predict_prints_with_a_beam(trained, tmp_path):
    """The printed file's beam, width 4, 2 best, gives the hypotheses and normalised scores
    that `recurrent predict RUN --beam 4 --n-best 2` prints (its 4 decimals)."""
    out = tmp_path / "g2p.torch.safetensors"
    tm = printed_module(ok(invoke("export", trained, "--format", "torch", "--out", out)),
                        tmp_path)
    state = st.read(str(out))[1]["task_state"]
    source_ids = {symbol: i for i, symbol in enumerate(state["source_vocab"])}
    words = ["knight", "a", "phonemes", "cat"]
    src, lengths = padded_sources([[source_ids[c] for c in word] for word in words])
    with torch.no_grad():
        found = tm.beam(torch.as_tensor(src), torch.as_tensor(lengths), 4, nbest=2)
    join = " ".join if state["target_level"] == "token" else "".join
    got = [(word, str(k), score, join(state["target_vocab"][i] for i in ids))
           for word, row in zip(words, found) for k, (ids, score) in enumerate(row, 1)]
    printed_lines = ok(invoke("predict", trained, "--beam", 4, "--n-best", 2, *words))
    want = [line.split("\t") for line in printed_lines.splitlines()]
    assert [(w, k, o) for w, k, _, o in got] == [(w, k, o) for w, k, _, o in want]
    assert len({o for *_, o in got}) > 4  # phonemes, not empty outputs
    for (*_, score, _), (*_, shown, _) in zip(got, want):
        assert f"{score:.4f}" == shown or abs(score - float(shown)) <= 1e-4
