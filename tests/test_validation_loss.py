"""The validation "loss" of char-lm, sentiment and seq2seq is the run's --loss, not always
cross-entropy: it picks the best checkpoint, so it must be the loss training minimises
(docs/plugins-tasks.md). The loss is a plugin's class loss registered in-process:
label-smoothed cross-entropy, whose mean over a split's rows is (1 - eps) times the
cross-entropy plus eps times the mean over the classes of -log softmax (the same loss
with eps = 1)."""
import json

import numpy as np
import pytest

import recurrent
from helpers import invoke, ok, registered_plugin, tiny_text

EPS = 0.5
SMOOTHED = "label_smoothed_for_test"
UNIFORM = "uniform_smoothed_for_test"  # eps = 1: every class's -log softmax, averaged


class LabelSmoothed:
    """Cross-entropy against (1 - eps) * onehot(target) + eps / V, averaged over the valid
    rows as the built-in cross_entropy is."""

    target_kind = "class"

    def __init__(self, name, eps):
        self.name, self.eps = name, eps

    def value_and_grad(self, outputs, targets, mask=None):
        outputs = np.asarray(outputs)
        width = outputs.shape[-1]
        z = outputs.reshape(-1, width).astype(np.float64)  # (N, V)
        t = np.asarray(targets).reshape(-1)
        valid = np.ones(len(t), bool) if mask is None else np.asarray(mask).reshape(-1) != 0
        n = int(valid.sum())
        if n == 0:
            return 0.0, np.zeros_like(outputs)
        t = np.where(valid, t, 0)  # padding rows may carry any id
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        soft = np.full_like(log_p, self.eps / width)
        soft[np.arange(len(t)), t] += 1 - self.eps
        rows = -(soft * log_p).sum(axis=1)  # (N,)
        grad = (np.exp(log_p) - soft) * (valid / n)[:, None]
        return float(rows[valid].sum() / n), grad.reshape(outputs.shape).astype(outputs.dtype)


class Losses:
    @recurrent.hookimpl
    def register_losses(self, register):
        register(LabelSmoothed(SMOOTHED, EPS))
        register(LabelSmoothed(UNIFORM, 1.0))


def test_the_test_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    t = rng.integers(0, 4, size=5)
    mask = np.array([1, 1, 0, 1, 1])
    loss = LabelSmoothed(SMOOTHED, EPS)
    _, grad = loss.value_and_grad(z, t, mask)
    numeric = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = 1e-6
        numeric[index] = (loss.value_and_grad(z + step, t, mask)[0]
                          - loss.value_and_grad(z - step, t, mask)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
    assert not grad[2].any()  # a masked row gets no gradient
    # eps = 0 is the built-in cross-entropy
    from recurrent.plugins import get_loss
    assert LabelSmoothed("plain", 0.0).value_and_grad(z, t, mask)[0] == pytest.approx(
        get_loss("cross_entropy").value_and_grad(z, t, mask)[0], rel=1e-12)


def _train_options(task, tmp_path):
    if task == "char-lm":
        return ["--data", tiny_text(tmp_path), "--embed-dim", 4, "--seq-len", 16]
    if task == "sentiment":
        return ["--max-tokens", 20, "--ensemble", 1]
    return ["--max-train", 200, "--max-eval", 40]


@pytest.mark.parametrize("task", ["char-lm", "sentiment", "seq2seq"])
def test_the_validation_loss_is_the_runs_plugin_class_loss(tmp_path, task):
    """The "loss" of each evaluation in metrics.jsonl is the label-smoothed loss the run
    trains with: on the last parameters, (1 - eps) * the validation cross-entropy (the
    task's default loss) + eps * the eps = 1 loss on the same split, not the
    cross-entropy itself."""
    from recurrent.checkpoint import RunDir
    from recurrent.plugins import get_task
    from recurrent.runs import load_model
    run = tmp_path / "run"
    with registered_plugin(Losses(), "label-smoothing-for-test"):
        ok(invoke("train", task, *_train_options(task, tmp_path), "--loss", SMOOTHED,
                  "--hidden", 8, "--steps", 6, "--eval-every", 3, "--threads", 1,
                  "--quiet", "--no-plot", "--out", run))
        records = [json.loads(line) for line in
                   (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
        last = [r for r in records if r["kind"] == "eval"][-1]
        # the last evaluation scored the last parameters
        assert last["step"] == max(r["step"] for r in records if r["kind"] == "train")
        model, info = load_model(RunDir.open(str(run)), "last")

        def valid_loss(loss):
            config = {**info["config"], "loss": loss}
            return get_task(task).evaluate(info["task_state"], "valid", config,
                                           model.runner())["loss"]

        cross_entropy, uniform = valid_loss("cross_entropy"), valid_loss(UNIFORM)
        recorded = last["metrics"]["loss"]
        assert recorded == pytest.approx(valid_loss(SMOOTHED), rel=1e-12)
    assert recorded == pytest.approx((1 - EPS) * cross_entropy + EPS * uniform, rel=1e-6)
    assert abs(recorded - cross_entropy) > 1e-4


@pytest.mark.parametrize("task", ["char-lm", "sentiment", "seq2seq"])
def test_a_run_saved_before_valid_loss_is_scored_by_cross_entropy_in_eval_and_on_resume(
        tmp_path, task):
    """A run saved before its task state recorded "valid_loss" was scored by the task's own
    loss, cross-entropy, whatever its --loss: its recorded figures and best checkpoint are
    cross-entropy's. eval reports cross-entropy for it, and a resumed run compares its new
    evaluations with that best on cross-entropy, so that best.npz stays the evaluation
    with the lowest loss recorded. A run that records "valid_loss" is scored by its
    --loss."""
    from recurrent.checkpoint import RunDir
    from recurrent.plugins import get_task
    from recurrent.runs import load_model
    run, old = tmp_path / "run", tmp_path / "old"
    # seq2seq's 2 epochs of its 200 pairs end before the resumed steps: more epochs
    epochs = ("--epochs", 10) if task == "seq2seq" else ()
    options = (*_train_options(task, tmp_path), *epochs, "--hidden", 8, "--threads", 1,
               "--quiet", "--no-plot")

    def cross_entropy(path, which):
        model, info = load_model(RunDir.open(str(path)), which)
        state = {**info["task_state"], "valid_loss": "run"}
        config = {**info["config"], "loss": "cross_entropy"}
        return get_task(task).evaluate(state, "valid", config, model.runner())["loss"]

    def evaluated(path):
        return json.loads(ok(invoke("eval", path, "--split", "valid", "--json")))["metrics"]

    with registered_plugin(Losses(), "label-smoothing-for-test"):
        ok(invoke("train", task, *options, "--loss", SMOOTHED, "--steps", 3, "--out", run))
        # what an earlier version saved for a run trained with --loss SMOOTHED: its state
        # without "valid_loss", its figures and best checkpoint chosen by cross-entropy
        ok(invoke("train", task, *options, "--steps", 3, "--out", old))
        config_file = old / "config.json"
        info = json.loads(config_file.read_text(encoding="utf-8"))
        info["task_state"].pop("valid_loss", None)
        info["config"]["loss"] = SMOOTHED
        config_file.write_text(json.dumps(info), encoding="utf-8")

        new = evaluated(run)["loss"]
        assert abs(new - cross_entropy(run, "best")) > 1e-4  # its --loss, not cross-entropy
        assert evaluated(old)["loss"] == pytest.approx(cross_entropy(old, "best"), rel=1e-12)
        ok(invoke("train", task, "--resume", old, "--steps", 6, "--eval-every", 1,
                  "--quiet"))
        records = [json.loads(line) for line in
                   (old / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
        evals = [r for r in records if r["kind"] == "eval"]
        resumed = [r for r in evals if r["step"] > 3]
        assert [r["step"] for r in resumed] == [4, 5, 6]
        assert resumed[-1]["metrics"]["loss"] == pytest.approx(cross_entropy(old, "last"),
                                                               rel=1e-12)
        # best.npz is the evaluation with the lowest cross-entropy, before or after resuming
        best = min(r["metrics"]["loss"] for r in evals)
        assert evaluated(old)["loss"] == pytest.approx(best, rel=1e-12)
