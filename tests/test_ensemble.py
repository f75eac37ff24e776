"""Ensembles (--ensemble K, recurrent/ensemble.py): members train as the plain runs of
their seeds, resume where they stopped, and eval, predict, StreamPool and ONNX export
combine their outputs as the loss says."""
from __future__ import annotations

import copy
import json
import os
import shutil

import numpy as np
import pytest
from scipy.special import expit
from helpers import (bundled_reviews, checkpoint_params, ctrl_c_around, invoke, ok,
                     one_line_error, same_params, write_reviews)

from recurrent.checkpoint import RunDir
from recurrent.errors import UserError
from recurrent.ensemble import EnsembleModel, MemberStates, member_seed
from recurrent.modules import softmax
from recurrent.config import TrainingConfig
from recurrent.export.run import export_run
from recurrent.plugins import get_loss, get_task
from recurrent.runs import load_model, start_run
from recurrent.streams import EnsemblePool, StreamPool
from recurrent.trainer import Trainer
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.text import tokenize

SMALL = ["--hidden", "8", "--embed-dim", "8", "--batch-size", "64", "--threads", "1",
         "--quiet", "--no-plot"]
ONE = ["--ensemble", "1"]  # a plain run (sentiment's default is an ensemble)
LM = ["--hidden", "16", "--batch-size", "8", "--seq-len", "16", "--threads", "1",
      "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    return root, write_reviews(root / "slice.csv", bundled_reviews(160))


@pytest.fixture(scope="module")
def sentiment_ensemble(data):
    root, csv = data
    run = root / "ens"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "3",
              "--steps", "8", *SMALL))
    return run


def _params(path, name="best.npz"):
    return checkpoint_params(path, name)



def test_members_are_the_plain_runs_of_their_seeds(data, sentiment_ensemble):
    root, csv = data
    run = sentiment_ensemble
    assert sorted(os.listdir(run)) == ["config.json", "member-0", "member-1", "member-2",
                                       "metrics.jsonl"]
    seeds = [json.loads((run / f"member-{k}" / "config.json").read_text())["config"]["seed"]
             for k in range(3)]
    assert seeds == [0, member_seed(0, 1), member_seed(0, 2)] and len(set(seeds)) == 3
    assert member_seed(1, 1) not in seeds  # the ensemble of seed 1 shares no member
    for k in (0, 2):  # member k is, bit for bit, the plain run of its seed
        plain = root / f"plain-{k}"
        ok(invoke("train", "sentiment", "--data", csv, "--out", plain, "--steps", "8",
                  "--seed", seeds[k], *SMALL, *ONE))
        assert same_params(_params(run / f"member-{k}"), _params(plain))
    assert not same_params(_params(run / "member-0"), _params(run / "member-1"))


def test_outputs_are_the_mean_of_the_members_probabilities(sentiment_ensemble):
    run = sentiment_ensemble
    model, info = load_model(RunDir.open(str(run)))
    assert isinstance(model, EnsembleModel) and len(model.members) == 3
    members = [load_model(RunDir.open(str(run / f"member-{k}")))[0] for k in range(3)]
    state = info["task_state"]
    texts = ["a gorgeous, witty film", "dull , overlong and predictable", "meh"]
    rows = TASK._encode_all(state, [tokenize(t) for t in texts])
    expected = np.mean([TASK.probabilities(m, rows) for m in members], axis=0)
    np.testing.assert_allclose(TASK.probabilities(model, rows), expected, atol=1e-6)
    # eval's metrics are those of the mean probabilities on the test split
    report = json.loads(ok(invoke("eval", run, "--json")))
    test_rows, y = TASK.split_rows(state, "test", info["config"])
    mean = np.mean([TASK.probabilities(m, test_rows) for m in members], axis=0)
    assert report["metrics"]["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y))
    # predict prints the mean probabilities
    line = ok(invoke("predict", run, "--json", texts[0])).splitlines()[0]
    got = json.loads(line)["probabilities"]
    np.testing.assert_allclose(list(got.values()), expected[0], atol=1e-6)
    # the ensemble's validation evaluation is logged in its own metrics
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["eval"] and records[0]["ensemble"] == 3


def test_combine_rules_of_the_losses():
    rng = np.random.default_rng(0)
    outs = [rng.normal(0, 3, (4, 5)).astype(np.float32) for _ in range(3)]
    outs[0][0] = [800, -800, 0, 5, 1]  # extreme logits stay finite
    ce = get_loss("cross_entropy").combine(outs)
    assert ce.dtype == np.float32 and np.isfinite(ce).all()
    np.testing.assert_allclose(softmax(ce), np.mean([softmax(o) for o in outs], axis=0),
                               atol=1e-6)
    bce = get_loss("binary_cross_entropy").combine(outs)
    np.testing.assert_allclose(expit(bce), np.mean([expit(o) for o in outs], axis=0),
                               atol=1e-6)
    from recurrent.ensemble import combine
    np.testing.assert_allclose(combine(get_loss("mse"), outs), np.mean(outs, axis=0),
                               atol=1e-6)


def test_resume_trains_what_is_missing_and_extends_every_member(data, tmp_path):
    _, csv = data
    whole, part = tmp_path / "whole", tmp_path / "part"
    ok(invoke("train", "sentiment", "--data", csv, "--out", whole, "--ensemble", "2",
              "--steps", "12", *SMALL))
    ok(invoke("train", "sentiment", "--data", csv, "--out", part, "--ensemble", "2",
              "--steps", "6", *SMALL))
    # as if stopped before member 1 began: its directory holds only its config
    member = part / "member-1"
    for name in os.listdir(member):
        if name != "config.json":
            os.remove(member / name)
    os.remove(part / "metrics.jsonl")
    ok(invoke("train", "--resume", part, "--steps", "12"))
    for k in range(2):
        assert same_params(_params(whole / f"member-{k}", "last.npz"),
                     _params(part / f"member-{k}", "last.npz"))
        config = json.loads((part / f"member-{k}" / "config.json").read_text())["config"]
        assert config["steps"] == 12 and config["ensemble"] == 1
    # every member is a run of its own: it evaluates and resumes alone, to the ensemble's plan
    ok(invoke("eval", part / "member-1"))
    ok(invoke("train", "--resume", part / "member-1"))


def test_a_member_keeps_the_ensembles_plan(data, tmp_path):
    """A member resumed alone with another --steps (--epochs, --patience, --eval-every) is
    refused in one line naming the ensemble's command: the ensemble's next resume would set
    the member's plan back to its own. Eval, predict and export read every member as
    trained, as before."""
    _, csv = data
    run = tmp_path / "ens"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "2",
              "--steps", "4", *SMALL))
    member = run / "member-1"
    files = {name: (member / name).read_bytes() for name in os.listdir(member)}
    one_line_error(invoke("train", "--resume", member, "--steps", "9"),
                   f"--steps 9: {member} is a member of the ensemble {run}",
                   f"`recurrent train --resume {run} --steps 9`")
    one_line_error(invoke("train", "--resume", member, "--patience", "2"),
                   f"`recurrent train --resume {run} --patience 2`")
    link = tmp_path / "m1"  # the member reached through a symbolic link is still a member
    link.symlink_to(member)
    one_line_error(invoke("train", "--resume", link, "--steps", "9"),
                   f"--steps 9: {link} is a member of the ensemble {run}",
                   f"`recurrent train --resume {run} --steps 9`")
    assert {name: (member / name).read_bytes() for name in os.listdir(member)} == files
    # options that do not change what it trains, and the plan it has, resume alone
    ok(invoke("train", "--resume", member, "--steps", "4", "--threads", "1"))
    ok(invoke("train", "--resume", run, "--steps", "6"))
    for k in range(2):
        config = json.loads((run / f"member-{k}" / "config.json").read_text())["config"]
        assert config["steps"] == 6
    ok(invoke("eval", run))
    ok(invoke("predict", run, "a fine film"))
    ok(invoke("export", run, "--format", "onnx", "--out", tmp_path / "ens.onnx"))


def test_an_interrupted_ensemble_resumes_to_the_uninterrupted_one(data, tmp_path,
                                                                  monkeypatch):
    _, csv = data
    args = ["--data", csv, "--ensemble", "3", "--steps", "6", "--eval-every", "2", *SMALL]
    whole, part = tmp_path / "whole", tmp_path / "part"
    ok(invoke("train", "sentiment", "--out", whole, *args))
    # Ctrl-C during member 1's fourth step: it saves and the summary says where
    member_1 = member_seed(0, 1)
    monkeypatch.setattr(Trainer, "_stop_requested",
                        lambda self: self.seed == member_1 and self.position.step == 4)
    result = invoke("train", "sentiment", "--out", part, *args[:-2])  # not --quiet
    assert result.exit_code == 130, result.output
    assert "interrupted at step 4 of member 2/3" in result.output
    assert not (part / "member-2" / "last.npz").exists()
    monkeypatch.undo()
    ok(invoke("train", "--resume", part))
    for k in range(3):
        for name in ("last.npz", "best.npz"):
            assert same_params(_params(whole / f"member-{k}", name),
                         _params(part / f"member-{k}", name)), (k, name)
    # resuming the finished ensemble changes no member and keeps one combined record
    before = {k: _params(part / f"member-{k}", "last.npz") for k in range(3)}
    out = ok(invoke("train", "--resume", part, "--quiet"))
    assert (f"nothing to train: {part} had already reached its --steps 6 after 3 members "
            f"of 6 steps each (best ensemble valid loss") in out
    assert all(same_params(before[k], _params(part / f"member-{k}", "last.npz")) for k in range(3))
    records = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["member_steps"] == [6, 6, 6]
    first = json.loads((whole / "metrics.jsonl").read_text())
    assert records[0]["metrics"] == first["metrics"]


def test_a_ctrl_c_between_members_stops_before_the_next(data, tmp_path, monkeypatch):
    _, csv = data
    args = ["--data", csv, "--ensemble", "3", "--steps", "4", *SMALL]
    whole, part = tmp_path / "whole", tmp_path / "part"
    ok(invoke("train", "sentiment", "--out", whole, *args))
    ctrl_c_around(monkeypatch, "member-0", "finishing")  # its last checkpoint being written
    result = invoke("train", "sentiment", "--out", part, *args[:-2])  # not --quiet
    assert result.exit_code == 130, result.output
    assert ("interrupted before member 2/3: the members before it are saved; continue "
            f"with `recurrent train sentiment --resume {part}`") in result.output
    assert (part / "member-0" / "last.npz").exists()
    assert not (part / "member-1" / "last.npz").exists()
    monkeypatch.undo()
    ok(invoke("train", "--resume", part))
    for k in range(3):
        assert same_params(_params(whole / f"member-{k}"), _params(part / f"member-{k}")), k


def test_sentiment_trains_an_ensemble_of_three_by_default(data, sentiment_ensemble,
                                                         tmp_path):
    # its default, chosen on validation over ten random splits (benchmarks/README.md)
    _, csv = data
    run = tmp_path / "default"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--steps", "8", *SMALL))
    assert json.loads((run / "config.json").read_text())["config"]["ensemble"] == 3
    for k in range(3):
        assert same_params(_params(run / f"member-{k}"), _params(sentiment_ensemble / f"member-{k}"))
    assert not (run / "member-3").exists()


def test_a_missing_or_foreign_member_is_one_line(data, sentiment_ensemble, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sentiment_ensemble, copy)
    shutil.rmtree(copy / "member-2")
    one_line_error(invoke("eval", copy), "ensemble of 3 members", "member-2 is missing")
    _, csv = data
    # a run of other options in the member's place (train refuses --out inside a run)
    ok(invoke("train", "sentiment", "--data", csv, "--out", tmp_path / "foreign", "--steps",
              "2", "--hidden", "4", *SMALL[2:], *ONE))
    shutil.move(tmp_path / "foreign", copy / "member-2")
    one_line_error(invoke("eval", copy), "does not belong to the ensemble",
                   "option hidden differs")
    one_line_error(invoke("train", "--resume", copy), "does not belong to the ensemble")
    config = json.loads((copy / "config.json").read_text())
    config["config"]["ensemble"] = "two"
    (copy / "config.json").write_text(json.dumps(config))
    one_line_error(invoke("eval", copy), "config.json is corrupted",
                   'option ensemble (--ensemble) is "two", not a whole number')


def test_eval_names_an_ensemble_in_its_first_line(sentiment_ensemble):
    assert ok(invoke("eval", sentiment_ensemble)).splitlines()[0] == \
        f"sentiment run {sentiment_ensemble} (an ensemble of 3 members), split test"


def test_eval_options_reach_every_member(sentiment_ensemble):
    base = json.loads(ok(invoke("eval", sentiment_ensemble, "--json")))["metrics"]
    last = json.loads(ok(invoke("eval", sentiment_ensemble, "--json", "--checkpoint", "last",
                                "--threads", "2")))["metrics"]
    int8 = json.loads(ok(invoke("eval", sentiment_ensemble, "--json", "--precision",
                                "int8")))["metrics"]
    _, info = load_model(RunDir.open(str(sentiment_ensemble)))
    rows, y = TASK.split_rows(info["task_state"], "test", info["config"])

    def by_hand(which, precision):
        """(loss, accuracy) of the mean probabilities of every member loaded so."""
        members = [load_model(RunDir.open(str(sentiment_ensemble / f"member-{k}")), which,
                              precision=precision)[0] for k in range(3)]
        mean = np.mean([TASK.probabilities(m.runner(), rows) for m in members], axis=0)
        return -np.mean(np.log(mean[np.arange(len(y)), y])), np.mean(mean.argmax(1) == y)

    # member 2's last.npz is not its best.npz in this run, and int8 changes every member:
    # the losses differ from the default's
    for metrics, which, precision in ((last, "last", "fp32"), (int8, "best", "int8")):
        loss, accuracy = by_hand(which, precision)
        assert metrics["loss"] != base["loss"]
        assert metrics["loss"] == pytest.approx(loss, rel=1e-6)
        assert metrics["accuracy"] == pytest.approx(accuracy)


@pytest.mark.parametrize("task,extra,fragment", [
    ("forecast", {}, "sets parts of its own state"),
    ("seq2seq", {"max_train": 50, "max_eval": 10}, "encoder-decoder"),
])
def test_tasks_that_cannot_be_ensembled_are_refused_before_the_run_exists(tmp_path, task,
                                                                           extra, fragment):
    out = tmp_path / "run"
    # not offered on the command line ...
    one_line_error(invoke("train", task, "--ensemble", "2", "--out", out),
                   "No such option '--ensemble'")
    # ... and refused through the library
    task = get_task(task)
    options = {p.name: p.default for p in task.options()  # click's own "unset" skipped
               if isinstance(p.default, (int, float, str, type(None)))}
    config = TrainingConfig.resolve(task, {**options, **extra, "ensemble": 2, "steps": 2,
                                           "threads": 1})
    with pytest.raises(UserError, match=f"--ensemble 2: .*{fragment}"):
        start_run(task, config, str(out))
    assert not out.exists()


@pytest.fixture(scope="module")
def lm_ensemble(tmp_path_factory):
    run = tmp_path_factory.mktemp("lm") / "lm"
    ok(invoke("train", "char-lm", "--out", run, "--ensemble", "2", "--steps", "6", *LM))
    return run


def test_stream_pool_steps_as_the_ensemble_reads_whole_sequences(lm_ensemble):
    model, _ = load_model(RunDir.open(str(lm_ensemble)))
    pool = StreamPool(str(lm_ensemble), capacity=3)
    assert isinstance(pool, EnsemblePool) and pool.softmax
    rng = np.random.default_rng(1)
    x = rng.integers(0, model.spec["vocab_size"], size=(7, 2))
    whole, state = model.forward(x)
    assert isinstance(state, MemberStates) and len(state) == 2
    pool.open("a")
    pool.open("b")
    for t in range(4):
        ys = pool.step({"a": x[t, 0], "b": x[t, 1]})
        np.testing.assert_allclose(ys["a"], softmax(whole[t, :1])[0], atol=1e-5)
        np.testing.assert_allclose(ys["b"], softmax(whole[t, 1:2])[0], atol=1e-5)
    saved = pool.state("a")
    assert sorted(saved) == ["member0.c", "member0.h", "member1.c", "member1.h"]
    pool.close("a")
    pool.restore("moved", saved)
    for t in range(4, 7):
        ys = pool.step({"moved": x[t, 0]})
        np.testing.assert_allclose(ys["moved"], softmax(whole[t, :1])[0], atol=1e-5)
    with pytest.raises(ValueError, match="not a member's state"):
        pool.restore("c", {"h": saved["member0.h"]})
    assert "c" not in pool  # nothing was opened by the refused restore
    # forward continues from a MemberStates exactly as from the whole sequence
    head, carried = model.forward(x[:3])
    tail, _ = model.forward(x[3:], state=carried)
    np.testing.assert_allclose(np.concatenate([head, tail]), whole, atol=1e-5)


def test_a_pool_of_a_pooled_sentiment_ensemble_with_its_wide_part(data, tmp_path):
    _, csv = data
    run = tmp_path / "uni"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "2",
              "--steps", "4", "--unidirectional", *SMALL))
    model, info = load_model(RunDir.open(str(run)))
    assert model.members[0].wide is not None and model.output == "mean"
    rows = TASK._encode_all(info["task_state"], [tokenize("a gorgeous , witty film")])
    tokens = np.array(rows[0])
    pool = StreamPool(model.runner(), capacity=2)
    assert isinstance(pool, EnsemblePool) and pool.softmax is False
    pool.open(7)
    for t, token in enumerate(tokens):  # the prefix's prediction at every step
        y = pool.step({7: token})[7]
        expected, _ = model.forward(tokens[:t + 1, None], lengths=np.array([t + 1]))
        np.testing.assert_allclose(y, expected[0], atol=1e-5)
    for clone in (copy.deepcopy(pool), copy.copy(pool)):  # both make it without arguments
        assert type(clone) is EnsemblePool and clone.ids() == [7]
        np.testing.assert_array_equal(clone.state(7)["member1.wide"],
                                      pool.state(7)["member1.wide"])


def test_onnx_export_combines_the_members_in_the_graph(sentiment_ensemble, lm_ensemble,
                                                       tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
    for run, name in ((sentiment_ensemble, "sent"), (lm_ensemble, "lm")):
        out = tmp_path / f"{name}.onnx"
        ok(invoke("export", run, "--format", "onnx", "--out", out))
        model, _ = load_model(RunDir.open(str(run)))
        rng = np.random.default_rng(2)
        x = rng.integers(2, model.spec["vocab_size"], size=(9, 4))
        lengths = np.array([9, 4, 1, 0])
        expected, _ = model.forward(x, lengths=lengths)
        session = ort.InferenceSession(str(out))
        names = [o.name for o in session.get_outputs()]
        assert names == ["outputs", "probabilities"]  # no single network's states
        got = dict(zip(names, session.run(None, {"tokens": x, "lengths": lengths})))
        np.testing.assert_allclose(got["outputs"], expected, atol=2e-5)
        if name == "sent":
            np.testing.assert_allclose(got["probabilities"], softmax(expected), atol=2e-6)
    # an ensemble made through the library, whose options leave the loss to the task
    config = TrainingConfig.resolve(get_task("char-lm"), {
        "ensemble": 2, "steps": 2, "hidden": 8, "seq_len": 8, "threads": 1, "quiet": True,
        "plot": False})
    assert config.get("loss") is None
    start_run(get_task("char-lm"), config, str(tmp_path / "lib"), echo=lambda line: None).fit()
    out, _ = export_run(str(tmp_path / "lib"), "onnx", str(tmp_path / "lib.onnx"))
    model, _ = load_model(RunDir.open(str(tmp_path / "lib")))
    x = np.random.default_rng(3).integers(0, model.spec["vocab_size"], size=(5, 2))
    lengths = np.array([5, 3])
    session = ort.InferenceSession(out)
    got = session.run(None, {"tokens": x, "lengths": lengths})
    np.testing.assert_allclose(got[0], model.forward(x, lengths=lengths)[0], atol=2e-5)
    np.testing.assert_allclose(got[1], softmax(got[0].reshape(-1, got[0].shape[-1]))
                               .reshape(got[0].shape), atol=2e-6)


def test_state_inputs_refuse_an_ensemble(sentiment_ensemble, tmp_path):
    """--state-inputs (one network's state) refuses an ensemble in one line, writing
    nothing (tests/test_export_ensemble_files.py: its safetensors file)."""
    one_line_error(invoke("export", sentiment_ensemble, "--format", "onnx", "--state-inputs",
                          "--out", tmp_path / "y.onnx"), "--state-inputs", "export a member")
    assert os.listdir(tmp_path) == []


def test_bad_ensemble_sizes_and_changes_on_resume(data, sentiment_ensemble, tmp_path):
    _, csv = data
    result = invoke("train", "sentiment", "--data", csv, "--ensemble", "0",
                    "--out", tmp_path / "r")
    assert result.exit_code == 2 and "--ensemble" in result.output
    one_line_error(invoke("train", "--resume", sentiment_ensemble, "--ensemble", "4"),
                   "--ensemble cannot change when resuming")


def test_members_share_the_ensembles_task_state(sentiment_ensemble):
    """One vocabulary, one split, one model spec: prepared once for every member."""
    run = sentiment_ensemble
    root = json.loads((run / "config.json").read_text())
    for k in range(3):
        member = json.loads((run / f"member-{k}" / "config.json").read_text())
        assert member["task_state"] == root["task_state"]
        assert member["model_spec"] == root["model_spec"]
        assert member["config"] == {**root["config"], "seed": member_seed(0, k),
                                    "ensemble": 1}


def test_a_ctrl_c_while_the_members_are_combined_waits_for_the_record(data, tmp_path,
                                                                       monkeypatch):
    import signal

    from recurrent import in_turn
    _, csv = data
    run = tmp_path / "run"
    metrics = in_turn.validation_metrics
    calls = []

    def ctrl_c_then_metrics(task, path):
        if not calls:  # the first member scored: a Ctrl-C, as if pressed now
            signal.raise_signal(signal.SIGINT)
        calls.append(path)
        return metrics(task, path)

    monkeypatch.setattr(in_turn, "validation_metrics", ctrl_c_then_metrics)
    result = invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "2",
                    "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert "done after 2 members of 2 steps each" in result.output
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["member_steps"] == [2, 2]


def test_a_members_export_goes_beside_the_whole_run(sentiment_ensemble, tmp_path):
    """`export RUN/member-0` writes RUN.member-0.safetensors beside RUN, not a file inside
    the ensemble's directory, and no --out inside the ensemble (its config.json, best.npz
    of another member) is written, even with --force."""
    import shutil
    run = tmp_path / "ens"
    shutil.copytree(sentiment_ensemble, run)
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    printed = ok(invoke("export", run / "member-0", "--format", "safetensors"))
    assert printed.startswith(f"wrote {tmp_path / 'ens.member-0.safetensors'}:")
    for inside in (run / "config.json", run / "member-1" / "best.npz", run / "new.bin"):
        one_line_error(invoke("export", run / "member-0", "--format", "safetensors",
                              "--out", inside, "--force"), "is inside the run directory")
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
