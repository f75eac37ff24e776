"""PyTorch twin of `recurrent train char-lm`: same data, model, hyperparameters and metric.

Trains embedding -> LSTM/GRU/RNN stack -> linear head with torch on CPU, on the char-lm
task's own batches (B streams, stateful windows of seq_len, reset at epoch start) and
scores validation with the task's own evaluate(), so the two time-to-quality figures
differ only in the engine. Wall time counts training including batching, and excludes
evaluations, as benchmarks/charlm_quality.py does.

    python benchmarks/charlm_torch.py --threads 2 --target 1.5 [--hidden 256 ...]

Prints one JSON line per evaluation and a summary line (with the median step time and
median x steps, which resist a busy machine); exit code 0 when the target was reached.
Defaults are those of `recurrent train char-lm`, and the torch model starts from the very
initial weights recurrent uses for the same --seed (--torch-init: torch's own init).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from recurrent.extras import torch_hint

try:
    import torch
except ImportError:  # torch is a benchmark extra, never a runtime dependency
    sys.exit(f"charlm_torch.py needs torch: {torch_hint()}")

from recurrent.optim import Schedule
from recurrent.config import SHARED_DEFAULTS, TrainingConfig
from recurrent_plugins.char_lm.task import DEFAULTS as TASK_DEFAULTS, EMBED_DIM, TASK

DEFAULTS = {**SHARED_DEFAULTS, **TASK_DEFAULTS}  # what `recurrent train char-lm` uses

CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}


class TorchCharModel(torch.nn.Module):
    """Embedding (V, E) -> recurrent stack (E -> H) -> Linear (H -> V), time-major."""

    def __init__(self, vocab_size, embed_dim, cell, hidden, layers, dropout):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim)
        # As recurrent's SequenceModel: dropout between stacked layers and before the head.
        self.rnn = CELLS[cell](embed_dim, hidden, num_layers=layers,
                               dropout=dropout if layers > 1 else 0.0)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden, vocab_size)

    def forward(self, x, state=None):  # x (T, B) int64 -> logits (T, B, V)
        out, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(out)), state


class TorchRunner:
    """recurrent.protocols.Runner over the torch model, for the task's evaluate()."""

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def forward(self, x, lengths=None, state=None):
        logits, state = self.model(torch.from_numpy(np.ascontiguousarray(x)), state)
        return logits.numpy(), state

    @torch.no_grad()
    def step(self, x_t, state=None):
        logits, state = self.model(torch.from_numpy(x_t).reshape(1, -1), state)
        return logits[0].numpy(), state


def copy_initial_weights(model, spec, args):
    """Start from the very weights `recurrent train char-lm --seed S` starts from (the same
    seed gives the same initial model there), so both engines run the same computation."""
    ours = TrainingConfig({"cell": args.cell, "hidden": args.hidden, "layers": args.layers,
                           "dropout": args.dropout, "bidirectional": False,
                           "seed": args.seed, "threads": 1}).build_model(spec).named_params
    with torch.no_grad():
        model.embed.weight.copy_(torch.from_numpy(ours["embedding.weight"]))
        for name, param in model.rnn.named_parameters():  # PyTorch's names: weight_ih_l0 ...
            param.copy_(torch.from_numpy(ours[f"rnn.{name}"]))
        model.head.weight.copy_(torch.from_numpy(ours["head.weight"]))
        model.head.bias.copy_(torch.from_numpy(ours["head.bias"]))


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=float, default=1.5, help="validation nats/char to reach")
    p.add_argument("--max-minutes", type=float, default=15.0, help="training time budget")
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--cell", default=DEFAULTS["cell"], choices=sorted(CELLS))
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    p.add_argument("--layers", type=int, default=DEFAULTS["layers"])
    p.add_argument("--embed-dim", type=int, default=EMBED_DIM)
    p.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate [default: the task's for --cell, as `recurrent "
                        "train char-lm --cell CELL` takes it]")
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"])
    p.add_argument("--schedule", default=DEFAULTS["schedule"], choices=Schedule.kinds)
    p.add_argument("--warmup", type=int, default=DEFAULTS["warmup"])
    p.add_argument("--min-lr", type=float, default=DEFAULTS["min_lr"])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--clip-norm", type=float, default=DEFAULTS["clip_norm"])
    p.add_argument("--max-chars", type=int, default=0)
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--torch-init", action="store_true",
                   help="use torch's own random init instead of recurrent's initial weights")
    args = p.parse_args(argv)
    if args.lr is None:  # the task's default for this cell (its cell_defaults)
        args.lr = TrainingConfig.resolve(TASK, {"cell": args.cell}, given={"cell"})["lr"]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = {"batch_size": args.batch_size, "seq_len": args.seq_len,
              "max_chars": args.max_chars, "embed_dim": args.embed_dim}
    state = TASK.prepare(config)
    V = len(state["vocab"])
    model = TorchCharModel(V, args.embed_dim, args.cell, args.hidden, args.layers,
                           args.dropout)
    if not args.torch_init:
        copy_initial_weights(model, TASK.model_spec(state, config), args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # The same step budget and learning-rate schedule as recurrent's trainer.
    per_epoch = sum(1 for _ in TASK.batches(state, "train", config, np.random.default_rng(0)))
    total = args.epochs * per_epoch
    if args.steps:
        total = min(total, args.steps) if args.epochs else args.steps
    schedule = Schedule(args.schedule, args.lr, total_steps=total, warmup=args.warmup,
                        min_lr=args.min_lr)
    runner = TorchRunner(model)

    step, epoch, best = 0, 0, float("inf")
    # Training time = wall time since the start minus evaluations (batching included).
    started, eval_seconds = time.perf_counter(), 0.0
    train_seconds = 0.0
    step_seconds = []  # per optimizer step: the median resists a busy machine
    reached = None
    while reached is None and step < total and train_seconds < 60 * args.max_minutes:
        rng = np.random.default_rng([args.seed, epoch])  # as the trainer seeds each epoch
        epoch += 1
        hidden = None
        for batch in TASK.batches(state, "train", config, rng):
            t_step = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = schedule(step)
            model.train()
            hidden = None if batch["reset"] else detach(hidden)
            logits, hidden = model(torch.from_numpy(batch["x"]), hidden)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                     torch.from_numpy(batch["y"]).reshape(-1))
            opt.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
            opt.step()
            step_seconds.append(time.perf_counter() - t_step)
            train_seconds = time.perf_counter() - started - eval_seconds
            step += 1
            if step % args.eval_every == 0 or step == total:
                t0 = time.perf_counter()
                model.eval()
                metrics = TASK.evaluate(state, "valid", config, runner)
                eval_seconds += time.perf_counter() - t0
                best = min(best, metrics["loss"])
                print(json.dumps({"engine": "torch", "step": step, "epoch": epoch,
                                  "train_seconds": round(train_seconds, 2),
                                  "train_loss": round(loss.item(), 4),
                                  "valid_loss": round(metrics["loss"], 4),
                                  "bits_per_char": round(metrics["bits_per_char"], 4)}),
                      flush=True)
                if metrics["loss"] <= args.target:
                    reached = train_seconds
                    break
            if step >= total or train_seconds >= 60 * args.max_minutes:
                break
    median = statistics.median(step_seconds)
    summary = {"engine": "torch", "threads": args.threads, "target": args.target,
               "reached": reached is not None, "seconds_to_target": reached, "steps": step,
               "median_step_ms": round(1000 * median, 2),
               "median_seconds_to_target": round(median * step, 1) if reached else None,
               "best_valid_loss": best, **{k: getattr(args, k) for k in (
                   "cell", "hidden", "layers", "embed_dim", "seq_len", "batch_size", "lr", "dropout",
                   "schedule", "epochs")}}
    print(json.dumps(summary), flush=True)
    return 0 if reached is not None else 1


if __name__ == "__main__":
    sys.exit(main())
