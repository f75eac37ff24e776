"""`recurrent export ENSEMBLE_RUN --format torch` (recurrent/export/torch_ensemble.py):
one safetensors file of every kept member's tensors under "members.{k}.", and a printed
Ensemble module that loads it strictly, compiles with torch.jit.script and gives the
outputs recurrent's EnsembleModel gives (combined as the run's loss combines them) and
the ONNX export's, with each member's final state."""
import shutil

import numpy as np
import pytest
from helpers import invoke, ok, small_sentiment_ensemble

from recurrent.checkpoint import DIVERGED, RunDir
from recurrent.ensemble import EnsembleModel, MemberStates
from recurrent.errors import UserError
from recurrent.export import safetensors as st
from recurrent.export import torch_ensemble, torch_names
from recurrent.plugins import get_loss
from recurrent.runs import load_model

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
from test_export import (TOL, TORCHSCRIPT, onnx_run, printed_args,  # noqa: E402
                         printed_module, random_batch, random_model, states)
import onnx  # noqa: E402
from recurrent.export.onnx import onnx_model  # noqa: E402  (needs the onnx package)

@pytest.fixture(scope="module")
def sentiment_ensemble(tmp_path_factory):
    return small_sentiment_ensemble(tmp_path_factory.mktemp("ensemble_torch"))


def sentiment_batch(model):
    """Token ids and lengths of 4 rows of different lengths."""
    x = np.random.default_rng(2).integers(2, model.spec["vocab_size"], size=(9, 4))
    return x, np.array([9, 4, 1, 6])


def torch_state(state):
    """Our MemberStates as the printed Ensemble takes it: a list of torch states."""
    given = [tuple(torch.as_tensor(s) for s in states(member)) for member in state]
    return [g if len(g) > 1 else g[0] for g in given]


def check_ensemble(tm, model, x, lengths, carried=None, label=""):
    """The printed Ensemble ``tm``, eager and compiled with torch.jit.script, gives the
    outputs and final states of the EnsembleModel ``model`` (within TOL; the compiled
    one the eager one's within 1e-6), from zeros or from our state ``carried``. -> its
    outputs."""
    want, final = model.forward(x, lengths=np.asarray(lengths), state=carried)
    assert np.abs(want).max() > 0.01, label  # not a comparison of zeros
    args = printed_args(model.members[0], x, lengths)
    given = None if carried is None else torch_state(carried)
    scripted = torch.jit.script(tm)
    with torch.no_grad():
        eager, compiled = tm(*args, state=given), scripted(*args, state=given)
    assert isinstance(eager[1], list) and len(eager[1]) == len(model.members)
    for got in (eager, compiled):
        np.testing.assert_allclose(got[0].numpy(), want, atol=TOL, err_msg=label)
        for member, ours in zip(got[1], final):
            for a, b in zip(states(member), states(ours)):
                np.testing.assert_allclose(a.numpy(), b, atol=TOL, err_msg=label)
    np.testing.assert_allclose(compiled[0].numpy(), eager[0].numpy(), rtol=0, atol=1e-6)
    return eager[0].numpy()


@TORCHSCRIPT
def test_a_sentiment_ensemble_exports_to_one_torch_file_and_module(sentiment_ensemble,
                                                                   tmp_path):
    """The default sentiment run to its default file: every member's tensors under its
    prefix, config.json as metadata; the printed Python file, run, loads it strictly
    into an Ensemble whose outputs are the ensemble's and the ONNX export's, with each
    member's final state, from zeros and from a given state, and compiles with
    torch.jit.script."""
    run = sentiment_ensemble
    out = str(run) + ".torch.safetensors"
    printed = ok(invoke("export", run, "--format", "torch"))
    compile(printed, "model.py", "exec")  # `> model.py` keeps a Python file
    assert f"wrote {out}: " in printed and "of 3 members" in printed
    assert ("# outputs: the log of the mean of the members' softmax probabilities"
            in printed)
    assert "#   members.2: member-2" in printed
    model, info = load_model(RunDir.open(str(run)))
    tensors, meta = st.read(out)
    assert meta["config"] == info["config"] and meta["task_state"] == info["task_state"]
    assert sorted(tensors) == sorted(f"members.{k}.{name}" for k in range(3)
                                     for name in torch_names.tensors(model.members[k]))
    for k, member in enumerate(model.members):
        for name, value in torch_names.tensors(member).items():
            np.testing.assert_array_equal(tensors[f"members.{k}.{name}"], value)

    tm = printed_module(printed, tmp_path)  # its last line: load_state_dict(strict=True)
    assert type(tm).__name__ == "Ensemble" and len(tm.members) == 3
    fresh = type(tm)()
    from safetensors.torch import load_file
    fresh.load_state_dict(load_file(out), strict=True)
    x, lengths = sentiment_batch(model)
    y = check_ensemble(tm, model, x, lengths)
    _, carried = model.forward(x[:, ::-1].copy(), lengths=lengths)
    assert isinstance(carried, MemberStates)
    check_ensemble(tm, model, x, lengths, carried, "from a state")

    ok(invoke("export", run, "--format", "onnx", "--out", tmp_path / "ens.onnx"))
    session = ort.InferenceSession(str(tmp_path / "ens.onnx"))
    graph_y = session.run(["outputs"], {"tokens": x, "lengths": lengths})[0]
    np.testing.assert_allclose(y, graph_y, atol=2e-5)


@TORCHSCRIPT
def test_a_member_that_diverged_is_left_out_of_the_torch_export(sentiment_ensemble,
                                                                 tmp_path):
    """member-1 diverged (its DIVERGED record): the file and the Ensemble hold member-0
    and member-2 as members.0 and members.1, the export says member-1 is left out (as
    ONNX's does), and the outputs are those of the two combined."""
    run = tmp_path / "ens"
    shutil.copytree(sentiment_ensemble, run)
    (run / "member-1" / DIVERGED).write_text("{}")
    out = tmp_path / "ens.torch.safetensors"
    result = invoke("export", run, "--format", "torch", "--out", out)
    printed = ok(result)
    note = (f"note: {run / 'member-1'} diverged in training, left out: the ensemble "
            f"combines the other 2 members")
    assert note in result.stderr
    onnx_result = invoke("export", run, "--format", "onnx", "--out", tmp_path / "e.onnx")
    assert note in ok(onnx_result) + onnx_result.stderr
    assert "#   members.1: member-2\n#   member-1: diverged in training, left out" in printed
    tensors, _ = st.read(str(out))
    member_2 = RunDir.open(str(run / "member-2"))
    for name, value in torch_names.tensors(load_model(member_2)[0]).items():
        np.testing.assert_array_equal(tensors[f"members.1.{name}"], value)
    assert not any(name.startswith("members.2.") for name in tensors)
    model, _ = load_model(RunDir.open(str(run)))
    assert len(model.members) == 2
    tm = printed_module(printed, tmp_path)
    assert len(tm.members) == 2
    x, lengths = sentiment_batch(model)
    y = check_ensemble(tm, model, x, lengths)
    graph_y = onnx_run(onnx.load(str(tmp_path / "e.onnx")), x, lengths, True)["outputs"]
    np.testing.assert_allclose(y, graph_y, atol=2e-5)


@TORCHSCRIPT
def test_a_char_lm_ensemble_combines_per_step_outputs_with_padded_steps_zero(tmp_path):
    """A char-lm ensemble (LSTM members, outputs at every step, cross_entropy): the
    printed Ensemble gives its combined outputs, zero at padded steps, and each member's
    (h, c)."""
    run = tmp_path / "lm"
    ok(invoke("train", "char-lm", "--out", run, "--ensemble", 2, "--steps", 4, "--hidden",
              8, "--batch-size", 4, "--seq-len", 12, "--max-chars", 20000, "--threads", 1,
              "--quiet", "--no-plot", "--eval-every", 0))
    printed = ok(invoke("export", run, "--format", "torch", "--out", tmp_path / "lm.st"))
    model, _ = load_model(RunDir.open(str(run)))
    tm = printed_module(printed, tmp_path)
    x = np.random.default_rng(3).integers(0, model.spec["vocab_size"], size=(7, 3))
    lengths = np.array([7, 2, 5])
    y = check_ensemble(tm, model, x, lengths)
    assert (y[2:, 1] == 0).all()
    _, carried = model.forward(x, lengths=lengths)
    check_ensemble(tm, model, x, lengths, carried, "from a state")


# The combination rules of the losses, on members built directly: (loss, cell, zoneout,
# output, tokens), on a batch with a row of length 0.
RULES = [("binary_cross_entropy", "gru", 0.0, "mean", True),
         ("binary_cross_entropy", "ln_lstm", 0.0, "sequence", True),
         ("mse", "rnn_tanh", 0.0, "last", False),
         ("mse", "lstm", 0.3, "sequence", False),
         ("cross_entropy", "lstm", 0.2, "max", True)]


@TORCHSCRIPT
@pytest.mark.parametrize("loss, cell, zoneout, output, tokens", RULES)
def test_each_loss_rule_matches_the_ensemble_and_the_onnx_graph(loss, cell, zoneout,
                                                                output, tokens, tmp_path):
    """binary_cross_entropy (the logit of the mean sigmoid), mse (the mean, as a
    forecast's loss combines) and cross_entropy, for members of every kind of stack and
    output: the printed Ensemble gives the EnsembleModel's outputs and states, and the
    ONNX graph's outputs."""
    members = [random_model(cell, output, 2, True, tokens, zoneout=zoneout, seed=k)
               for k in range(3)]
    model = EnsembleModel(members, get_loss(loss))
    path = str(tmp_path / "e.safetensors")
    st.write(path, torch_ensemble.tensors(model), {})
    tm = printed_module(torch_ensemble.torch_source(model, path, loss), tmp_path)
    lengths = [6, 3, 0, 1]
    x = random_batch(members[0], lengths)
    y = check_ensemble(tm, model, x, lengths, label=loss)
    _, carried = model.forward(random_batch(members[0], lengths, seed=4),
                               lengths=np.array(lengths))
    check_ensemble(tm, model, x, lengths, carried, label=f"{loss} from a state")
    graph = onnx_run(onnx_model(model, False, loss=loss), x, lengths, tokens)
    np.testing.assert_allclose(y, graph["outputs"], atol=2e-5)


def test_a_loss_combining_its_own_way_is_refused_for_torch_and_onnx():
    """A plugin loss whose combine() no COMBINE rule states has no exported form."""
    class Median:
        def combine(self, outputs):
            return np.median(np.stack(outputs), axis=0)

    model = EnsembleModel([random_model("gru", "last", 1, False, seed=k) for k in range(2)],
                          Median())
    for fmt in ("torch", "onnx"):
        with pytest.raises(UserError, match=f"--format {fmt}: the loss 'median' combines "
                                            f"ensemble members its own way"):
            torch_ensemble.check_combine(model, "median", fmt)
    torch_ensemble.check_combine(EnsembleModel(model.members, get_loss("mse")), "mse",
                                 "torch")



def test_an_ensembles_torch_file_imports_to_the_same_ensemble(sentiment_ensemble,
                                                              tmp_path):
    """`recurrent import` of the --format torch file (its wide scale folded into the wide
    weights) makes an ensemble run that evaluates as the original, within float32
    rounding."""
    out = tmp_path / "ens.torch.safetensors"
    ok(invoke("export", sentiment_ensemble, "--format", "torch", "--out", out))
    ok(invoke("import", out, "--out", tmp_path / "back"))
    original, _ = load_model(RunDir.open(str(sentiment_ensemble)))
    back, _ = load_model(RunDir.open(str(tmp_path / "back")))
    assert len(back.members) == 3
    x, lengths = sentiment_batch(original)
    np.testing.assert_allclose(back.forward(x, lengths=lengths)[0],
                               original.forward(x, lengths=lengths)[0], atol=1e-5)
