"""The char-lm model trained by recurrent equals the same model trained by PyTorch, step for
step, from the same initial weights on the same batches: the premise of comparing the two
in benchmarks/charlm_quality.py and benchmarks/charlm_torch.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")

from recurrent.optim import Schedule  # noqa: E402
from recurrent.config import TrainingConfig  # noqa: E402
from recurrent.runs import start_run  # noqa: E402
from recurrent_plugins.char_lm.task import TASK  # noqa: E402

STEPS = 6


def torch_twin(spec, config, initial):
    """(Embedding, LSTM, Linear) in torch, loaded with the initial weights ``initial`` of
    the run's model (PyTorch's names and layout)."""
    V, E, H = spec["vocab_size"], spec["embed_dim"], config["hidden"]
    embed, lstm, head = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H), torch.nn.Linear(H, V)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(initial["embedding.weight"]))
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lstm, name).copy_(torch.from_numpy(initial[f"rnn.{name}"]))
        head.weight.copy_(torch.from_numpy(initial["head.weight"]))
        head.bias.copy_(torch.from_numpy(initial["head.bias"]))
    return embed, lstm, head


def _same_weights(final, lstm, head, embed):
    """Our trained weights equal the torch twin's (the recurrent, head and embedding ones)."""
    np.testing.assert_allclose(final["rnn.weight_hh_l0"], lstm.weight_hh_l0.detach().numpy(),
                               atol=2e-5)
    np.testing.assert_allclose(final["head.weight"], head.weight.detach().numpy(), atol=2e-5)
    np.testing.assert_allclose(final["embedding.weight"], embed.weight.detach().numpy(),
                               atol=2e-5)

def test_training_matches_torch_step_for_step(tmp_path):
    config = TrainingConfig.resolve(TASK, {"max_chars": 30_000, "hidden": 24, "embed_dim": 8,
                                   "batch_size": 4, "seq_len": 16, "steps": STEPS,
                                   "epochs": 0, "threads": 1, "log_every": 1, "quiet": True,
                                   "plot": False, "seed": 5})
    config["loss"] = TASK.loss
    trainer = start_run(TASK, config, str(tmp_path / "run"), echo=lambda line: None)
    state, spec = trainer.task_state, trainer.spec
    initial = config.build_model(spec).named_params  # the trainer starts from these

    V = spec["vocab_size"]
    embed, lstm, head = torch_twin(spec, config, initial)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=config["lr"])
    schedule = Schedule(config["schedule"], config["lr"], total_steps=STEPS)

    trainer.fit()
    ours = [r["loss"] for r in trainer.run.read_metrics() if r["kind"] == "train"]

    theirs, hidden = [], None
    batches = TASK.batches(state, "train", config, np.random.default_rng([config["seed"], 0]))
    for step, batch in zip(range(STEPS), batches):
        hidden = None if batch["reset"] else tuple(h.detach() for h in hidden)
        for group in opt.param_groups:
            group["lr"] = schedule(step)
        out, hidden = lstm(embed(torch.from_numpy(batch["x"])), hidden)
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V),
                                                 torch.from_numpy(batch["y"]).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config["clip_norm"])
        opt.step()
        theirs.append(loss.item())

    assert len(ours) == STEPS
    np.testing.assert_allclose(ours, theirs, rtol=2e-5)
    _same_weights(trainer.model.named_params, lstm, head, embed)


@pytest.mark.parametrize("options, optimizer", [
    ({"tbptt": 5}, lambda params, lr: torch.optim.Adam(params, lr=lr)),
    # windows of 4; decay, momentum and both clips as docs/training.md maps them to torch
    ({"tbptt": 4, "optimizer": "sgd", "nesterov": True, "weight_decay": 0.01, "lr": 0.5,
      "clip_value": 0.02, "clip_norm": 0.3, "schedule": "step", "decay_every": 3,
      "warmup": 2},
     lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                                        weight_decay=0.01)),
], ids=["adam", "sgd-nesterov-decay-both-clips-step-schedule"])
def test_tbptt_training_matches_torch_detaching_every_k_steps(tmp_path, options, optimizer):
    """--tbptt K: each batch is cut into windows of K steps, each an optimizer step; the
    state carries into the next window with no gradient across the boundary (torch: the
    hidden state detached before each window). The logged pre-clip gradient norms and
    rates are torch's too."""
    steps = 9  # more than two batches of 16 steps: the state carries across batches too
    config = TrainingConfig.resolve(TASK, {"max_chars": 30_000, "hidden": 12, "embed_dim": 8,
                                   "batch_size": 4, "seq_len": 16, "steps": steps,
                                   "epochs": 0, "threads": 1, "log_every": 1, "quiet": True,
                                   "plot": False, "seed": 5, **options})
    config["loss"] = TASK.loss
    trainer = start_run(TASK, config, str(tmp_path / "run"), echo=lambda line: None)
    state, spec = trainer.task_state, trainer.spec
    embed, lstm, head = torch_twin(spec, config, config.build_model(spec).named_params)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    opt = optimizer(params, config["lr"])
    schedule = Schedule(config["schedule"], config["lr"], total_steps=steps,
                        warmup=config["warmup"], step_size=config["decay_every"],
                        gamma=config["decay_gamma"])

    trainer.fit()
    records = [r for r in trainer.run.read_metrics() if r["kind"] == "train"]

    K, V = config["tbptt"], spec["vocab_size"]
    losses, norms, rates, hidden = [], [], [], None
    for batch in TASK.batches(state, "train", config, np.random.default_rng([config["seed"], 0])):
        hidden = None if batch["reset"] else hidden
        for t0 in range(0, batch["x"].shape[0], K):
            if len(losses) == steps:
                break
            x, y = (torch.from_numpy(np.ascontiguousarray(batch[k][t0:t0 + K])) for k in "xy")
            hidden = None if hidden is None else tuple(h.detach() for h in hidden)
            rates.append(schedule(len(losses)))
            opt.param_groups[0]["lr"] = rates[-1]
            out, hidden = lstm(embed(x), hidden)
            loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            norms.append(float(torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in params]))))
            if config["clip_value"]:
                torch.nn.utils.clip_grad_value_(params, config["clip_value"])
            torch.nn.utils.clip_grad_norm_(params, config["clip_norm"])
            opt.step()
            losses.append(loss.item())
        if len(losses) == steps:
            break

    assert [r["step"] for r in records] == list(range(1, steps + 1))
    np.testing.assert_allclose([r["loss"] for r in records], losses, rtol=2e-5)
    np.testing.assert_allclose([r["grad_norm"] for r in records], norms, rtol=2e-5)
    np.testing.assert_allclose([r["lr"] for r in records], rates, rtol=1e-12)
    _same_weights(trainer.model.named_params, lstm, head, embed)
