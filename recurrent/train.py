"""The training loop: the ONE place that orders a step.

    batch from task.batches -> [window] -> model.forward -> loss.value_and_grad (registry
    loss) -> model.backward -> clip (pre-clip norm logged) -> optimizer.step(schedule(step))

Position and exact resume. Training position is (epoch, batch, window, step). Epoch e's
batches come from ``task.batches(..., rng=default_rng([seed, e]))`` and dropout masks of
step s from a generator seeded with (seed, s); so a resumed run regenerates epoch e, skips
the batches and windows already done, restores parameters, optimizer state, the carried
recurrent state and the loss accumulators from last.npz, and then computes exactly what an
uninterrupted run computes (bit-identical at 1 thread).

Recurrent state across batches. A batch with "reset": False starts from the state the
previous batch (or window) ended with (stateful streams); "reset": True (the default), a
change of batch size, and every new epoch start from zeros. No gradient flows into a
carried state: it enters the next forward pass as a constant.

Truncated BPTT (--tbptt K): the gradient of every step reaches back at most K steps.
  Per-step ("sequence") outputs: a batch longer than K steps is cut into consecutive
  windows of K steps, each an optimizer step of its own; the state carries from window to
  window (forward) but no gradient crosses a window boundary. Rows whose sequence ended
  before a window keep their state through it and count nothing in its loss.
  Pooled outputs (last/mean/max): one loss per sequence, so one optimizer step per batch.
  The forward pass computes exactly the outputs of the untruncated model (evaluation sees
  the same model as training); the gradient flows back through at most the last K valid
  steps of EACH row (rows no longer than K: full BPTT). The model runs each row's first
  len_b - K steps without gradient, then the last K from that state; their state, and
  for "mean"/"max" their outputs' sum/maximum, enter the pool as constants (see
  SequenceModel.forward(truncate=K)).
  A bidirectional model is refused: its reverse direction needs the whole sequence.

Evaluation every --eval-every steps (0: at the end of every epoch) and at the end: the
task's metrics on "valid", printed beside its baselines, appended to metrics.jsonl; the
best validation loss keeps best.npz; --patience N stops after N evaluations without
improvement. last.npz is written at every evaluation, at the end and on Ctrl-C (the
first Ctrl-C stops at the next window boundary and saves; a second one aborts at once,
leaving the previous checkpoint). A non-finite loss or gradient norm stops training before
the update with a clear message; the last good checkpoint stays.

Schedules see the step index; the cosine schedule spans the run's planned steps (epochs x
steps per epoch, or --steps if smaller), so changing --epochs/--steps on resume reshapes
its remaining part. --threads N reaches every kernel; numpy's BLAS stays at 1 thread (see fit()).
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time

import numpy as np

from . import __version__
from .checkpoint import BEST, CONFIG_FILE, LAST, RunDir, atomic_write, load_arrays, save_arrays
from .errors import UserError
from .lengths import valid_mask
from .model import SequenceModel
from .optim import Schedule, make_optimizer
from .state import pack_state, state_arrays
from .threads import single_threaded_blas

# Shared training options and their defaults; a task's defaults() override these, CLI
# options override both.
SHARED_DEFAULTS = {
    "cell": "lstm",
    "hidden": 128,
    "layers": 1,
    "dropout": 0.0,
    "bidirectional": False,
    "init": "uniform",
    "forget_bias": None,
    "optimizer": "adam",
    "lr": 2e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "nesterov": False,
    "schedule": "constant",
    "warmup": 0,
    "decay_every": 1000,
    "decay_gamma": 0.5,
    "min_lr": 0.0,
    "epochs": 10,
    "steps": 0,
    "batch_size": 32,
    "seq_len": 100,
    "clip_norm": 5.0,
    "clip_value": None,
    "tbptt": 0,
    "threads": None,
    "seed": 0,
    "patience": 0,
    "eval_every": 0,
    "log_every": 0,
    "quiet": False,
    "plot": True,
    "loss": None,  # None: the task's loss
}

# Options that may change when a run is resumed; anything else must match the run.
RESUMABLE = ("epochs", "steps", "patience", "eval_every", "log_every", "quiet", "threads",
             "plot")


def resolve_config(task, overrides: dict) -> dict:
    """Shared defaults, then the task's defaults, then ``overrides`` (e.g. CLI values)."""
    config = dict(SHARED_DEFAULTS)
    config.update(task.defaults() or {})
    config.update({k: v for k, v in overrides.items()})
    return config


def build_model(spec: dict, config: dict) -> SequenceModel:
    """The SequenceModel a config describes (ValueError from layers -> UserError)."""
    try:
        return SequenceModel(spec, cell=config["cell"], hidden_size=config["hidden"],
                             num_layers=config["layers"], dropout=config["dropout"],
                             bidirectional=config["bidirectional"], seed=config["seed"],
                             num_threads=config.get("threads"), init=config.get("init", "uniform"),
                             forget_bias=config.get("forget_bias"))
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None


def build_optimizer(model: SequenceModel, config: dict):
    try:
        return make_optimizer(config["optimizer"], model.params, model.grads, config["lr"],
                              weight_decay=config["weight_decay"], momentum=config["momentum"],
                              nesterov=config["nesterov"])
    except ValueError as e:
        raise UserError(str(e)) from None


def load_model(run: RunDir, which: str = "best", threads=None):
    """(model, info) of a run: the best parameters if any, else the last ones."""
    info = run.info()
    config = dict(info["config"])
    check_saved_options(run, config)
    config["threads"] = threads if threads is not None else config.get("threads")
    model = build_model(info["model_spec"], config)
    name = BEST if which == "best" and run.has(BEST) else LAST
    if not run.has(name):
        raise UserError(f"{run.path} has no checkpoint yet ({LAST} is missing)")
    arrays, _ = load_arrays(run.file(name))
    _load_params(model, arrays, run.file(name))
    model.eval()
    return model, info


def check_saved_options(run: RunDir, config: dict) -> None:
    """UserError naming the shared options a hand-edited or damaged config.json lacks
    (instead of a KeyError deep inside model building)."""
    missing = sorted(key for key in SHARED_DEFAULTS if key not in config)
    if missing:
        raise UserError(f"{run.file(CONFIG_FILE)} is corrupted: its config has no "
                        f"{', '.join(repr(k) for k in missing)}")


def _load_params(model, arrays, path):
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        model.load_state_dict(params)
    except ValueError as e:
        raise UserError(f"checkpoint {path} does not fit this model: {str(e)[:200]}") from None


def check_training_options(task, spec: dict, c: dict) -> None:
    """UserError for options that cannot train this task (checked before a run is made)."""
    tbptt = int(c.get("tbptt") or 0)
    if tbptt < 0:
        raise UserError(f"--tbptt must be >= 0, got {tbptt}")
    if tbptt and c["bidirectional"]:
        raise UserError("--tbptt cannot be used with --bidirectional (add "
                        "--unidirectional): the reverse direction needs the whole sequence")
    for key in ("epochs", "steps", "patience", "eval_every", "log_every"):
        if int(c.get(key) or 0) < 0:
            raise UserError(f"--{key.replace('_', '-')} must be >= 0, got {c[key]}")
    if not int(c.get("epochs") or 0) and not int(c.get("steps") or 0):
        raise UserError("nothing to train: --epochs and --steps are both 0")
    for key in ("lr", "weight_decay", "momentum", "decay_gamma", "min_lr", "clip_norm",
                "clip_value", "forget_bias", "dropout"):
        value = c.get(key)
        if isinstance(value, (int, float)) and not math.isfinite(value):
            raise UserError(f"--{key.replace('_', '-')} must be a finite number, got {value}")
    if c.get("clip_norm") is not None and c["clip_norm"] < 0:
        raise UserError(f"--clip-norm must be >= 0 (0 = off), got {c['clip_norm']}")
    if c.get("clip_value") is not None and not c["clip_value"] > 0:
        raise UserError(f"--clip-value must be > 0, got {c['clip_value']}")
    try:
        Schedule(c["schedule"], c["lr"], total_steps=1, warmup=c["warmup"],
                 step_size=c["decay_every"], gamma=c["decay_gamma"], min_lr=c["min_lr"])
    except ValueError as e:
        raise UserError(str(e)) from None


class NonFinite(Exception):
    pass


class _Interrupt:
    """First Ctrl-C: ask the loop to stop at the next window boundary and save; a second
    one raises KeyboardInterrupt at once (the previous checkpoint stays)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _Progress:
    """A tqdm bar on a terminal, plain log lines otherwise, nothing with --quiet."""

    def __init__(self, total, initial, unit, quiet, log_every, echo):
        self.unit, self.quiet, self.log_every, self.echo = unit, quiet, log_every, echo
        self.total = total
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step",
                            leave=False)
        self._mark_time, self._mark_items, self._items = time.perf_counter(), 0, 0
        self._start_time, self._start_step = self._mark_time, initial

    def update(self, step, epoch, loss, items, lr, grad_norm):
        self._items += items
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.total:
                rate = self._rate()
                self.bar.set_postfix_str(f"loss {loss:.4f} {rate:,.0f} {self.unit}/s")
        elif not self.quiet and self.log_every and step % self.log_every == 0:
            rate = self._rate()
            elapsed = time.perf_counter() - self._start_time
            done = step - self._start_step
            eta = ""
            if self.total and done > 0:
                eta = f"  ETA {_duration(elapsed / done * max(0, self.total - step))}"
            self.echo(f"step {step}{'/' + str(self.total) if self.total else ''}  "
                      f"epoch {epoch + 1}  loss {loss:.4f}  grad-norm {grad_norm:.3g}  "
                      f"lr {lr:.3g}  {rate:,.0f} {self.unit}/s{eta}")

    def _rate(self):
        now = time.perf_counter()
        rate = (self._items - self._mark_items) / max(now - self._mark_time, 1e-9)
        self._mark_time, self._mark_items = now, self._items
        return rate

    def restart_rate(self):
        """Throughput counts training only: restart the clock after an evaluation."""
        self._mark_time, self._mark_items = time.perf_counter(), self._items

    def write(self, line):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            self.echo(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _duration(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def headline_keys(metrics: dict) -> list:
    """The metrics worth a log line: floats, not per-class ("precision/fresh") entries;
    "loss" first. The rest (counts, matrices, per-class) stays in metrics.jsonl."""
    keys = [k for k, v in metrics.items()
            if isinstance(v, (float, np.floating)) and "/" not in k]
    return sorted(keys, key=lambda k: k != "loss")


def _format_metrics(metrics: dict, keys) -> str:
    return "  ".join(f"{k} {float(metrics[k]):.4f}" for k in keys
                     if isinstance(metrics.get(k), (int, float, np.number)))


class Trainer:
    """Runs (or resumes) one training run in a run directory. ``echo`` prints a line."""

    def __init__(self, task, run: RunDir, loss, echo=print):
        info = run.info()
        self.task, self.run, self.loss, self.echo = task, run, loss, echo
        self.config = info["config"]
        self.task_state = info["task_state"]
        self.spec = info["model_spec"]
        c = self.config
        check_training_options(task, self.spec, c)
        self.sequence_output = self.spec["output"] == "sequence"
        self.tbptt = int(c.get("tbptt") or 0)
        self.model = build_model(self.spec, c)
        self.optimizer = build_optimizer(self.model, c)
        self.seed = int(c["seed"])
        # trainer position and statistics (all saved in last.npz)
        self.epoch = self.batch_index = self.window_index = self.step = 0
        self.carry = None
        self.best_loss = math.inf
        self.bad_evals = 0
        self.clipped_steps = 0
        self.loss_sum, self.loss_count = 0.0, 0  # since the last "train" log record
        self.eval_sum, self.eval_count = 0.0, 0  # since the last evaluation
        self.last_eval_step = -1
        self.finished = False

    # -- checkpoints --------------------------------------------------------------------
    def _meta(self):
        return {"epoch": self.epoch, "batch": self.batch_index, "window": self.window_index,
                "step": self.step, "best_loss": self.best_loss if math.isfinite(self.best_loss)
                else None, "bad_evals": self.bad_evals, "clipped_steps": self.clipped_steps,
                "loss_sum": self.loss_sum, "loss_count": self.loss_count,
                "eval_sum": self.eval_sum, "eval_count": self.eval_count,
                "last_eval_step": self.last_eval_step, "finished": self.finished,
                "optimizer": self.optimizer.name, "version": __version__,
                "carry_states": len(state_arrays(self.carry))}

    def _param_arrays(self):
        return {f"param/{name}": view for name, view in self.model.named_params.items()}

    def save(self, name=LAST):
        arrays = self._param_arrays()
        if name == LAST:
            arrays.update({f"optim/{k}": np.asarray(v)
                           for k, v in self.optimizer.state_dict().items()})
            arrays.update({f"carry/{i}": a for i, a in enumerate(state_arrays(self.carry))})
        save_arrays(self.run.file(name), arrays, self._meta())

    def restore(self):
        path = self.run.file(LAST)
        arrays, meta = load_arrays(path)
        _load_params(self.model, arrays, path)
        try:
            optim_state = {k[len("optim/"):]: v for k, v in arrays.items()
                           if k.startswith("optim/")}
            if meta.get("optimizer") != self.optimizer.name:
                raise ValueError(f"saved by optimizer {meta.get('optimizer')!r}")
            self.optimizer.load_state_dict(optim_state)
            self.carry = pack_state([arrays[f"carry/{i}"]
                                      for i in range(int(meta["carry_states"]))])
            self.epoch, self.batch_index = int(meta["epoch"]), int(meta["batch"])
            self.window_index, self.step = int(meta["window"]), int(meta["step"])
            self.best_loss = math.inf if meta["best_loss"] is None else float(meta["best_loss"])
            self.bad_evals, self.clipped_steps = int(meta["bad_evals"]), int(meta["clipped_steps"])
            self.loss_sum, self.loss_count = float(meta["loss_sum"]), int(meta["loss_count"])
            self.eval_sum, self.eval_count = float(meta["eval_sum"]), int(meta["eval_count"])
            self.last_eval_step = int(meta["last_eval_step"])
            self.run.drop_metrics_after(self.step)
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"checkpoint {path} is corrupted or incomplete "
                            f"({type(e).__name__}: {e})") from None

    # -- data -----------------------------------------------------------------------------
    def _epoch_batches(self, epoch):
        rng = np.random.default_rng([self.seed, epoch])
        return self.task.batches(self.task_state, "train", self.config, rng)

    def _windows(self, batch):
        """The batch as a list of (x, y, lengths) windows (one without --tbptt)."""
        x, y = batch["x"], batch["y"]
        lengths = batch.get("lengths")
        if lengths is not None:
            lengths = np.asarray(lengths, np.int64)
        T = np.shape(x)[0]
        K = self.tbptt
        if not K or K >= T or not self.sequence_output:
            return [(x, y, lengths)]  # pooled outputs truncate inside the model
        out = []
        for t0 in range(0, T, K):
            t1 = min(T, t0 + K)
            lw = None if lengths is None else np.clip(lengths - t0, 0, t1 - t0)
            if lw is not None and not lw.any():
                break  # every row ended before this window
            out.append((np.ascontiguousarray(x[t0:t1]), np.ascontiguousarray(y[t0:t1]), lw))
        return out

    def _count_steps_per_epoch(self):
        return sum(len(self._windows(b)) for b in self._epoch_batches(0))

    # -- one step ---------------------------------------------------------------------------
    def _train_window(self, x, y, lengths, lr):
        """One optimizer step on one window, with the carried state. Returns (loss,
        pre-clip norm, items) where items counts valid tokens (sequence) or rows."""
        B = np.shape(x)[1]
        carry_in = self.carry
        if carry_in is not None and state_arrays(carry_in)[0].shape[1] != B:
            carry_in = None  # batch size changed: nothing to carry
        self.model.reseed_dropout((self.seed, self.step))
        loss, norm, clipped, state = train_step(
            self.model, self.loss, self.optimizer, x, y, lengths, carry_in, lr,
            self.config.get("clip_norm"), self.config.get("clip_value"),
            truncate=0 if self.sequence_output else self.tbptt)
        new_carry = [np.array(a, copy=True) for a in state_arrays(state)]
        if lengths is not None and (lengths == 0).any():
            ended = lengths == 0  # rows finished before this window keep their state
            old = state_arrays(carry_in)
            for i, a in enumerate(new_carry):
                a[:, ended] = old[i][:, ended] if old else 0
        self.carry = pack_state(new_carry)
        self.clipped_steps += int(clipped)
        if not self.sequence_output:
            return loss, norm, B
        return loss, norm, int(np.shape(x)[0] * B if lengths is None else lengths.sum())

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, progress, baselines):
        was_training = self.model.training
        metrics = self.task.evaluate(self.task_state, "valid", self.config, self.model.runner())
        self.model.train(was_training)
        if "loss" not in metrics:
            raise UserError(f"task {self.task.name!r} returned no 'loss' from evaluate()")
        loss = float(metrics["loss"])
        improved = loss < self.best_loss
        if improved:
            self.best_loss, self.bad_evals = loss, 0
        else:
            self.bad_evals += 1
        train_loss = self.eval_sum / self.eval_count if self.eval_count else None
        self.eval_sum, self.eval_count = 0.0, 0
        record = {"kind": "eval", "split": "valid", "step": self.step, "epoch": self.epoch,
                  "metrics": metrics, "train_loss": train_loss,
                  "clipped_fraction": self.clipped_steps / self.step if self.step else 0.0,
                  "best": improved, "time": time.time()}
        self.run.append_metrics(record)
        keys = headline_keys(metrics)
        line = f"eval step {self.step}  valid  {_format_metrics(metrics, keys)}"
        line += "  *best" if improved else ""
        if train_loss is not None:
            line += f"  (train loss {train_loss:.4f}, clipped {record['clipped_fraction']:.0%})"
        progress.write(line)
        width = max([len(name) for name in (baselines or {})] + [0])
        for name, values in (baselines or {}).items():
            progress.write(f"    baseline {name.ljust(width)}  {_format_metrics(values, keys)}")
        progress.restart_rate()
        self.last_eval_step = self.step
        if improved:
            self.save(BEST)
        self.save(LAST)
        patience = int(self.config.get("patience") or 0)
        return bool(patience and self.bad_evals >= patience)

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, resume=False):
        """Train until --epochs / --steps, early stopping, Ctrl-C or a non-finite loss.
        Returns a summary dict: {"status": "done" | "early-stopped" | "interrupted", ...}."""
        c = self.config
        if resume:
            self.restore()
        epochs, max_steps = int(c["epochs"]), int(c.get("steps") or 0)
        # The number of steps is known only by generating an epoch's batches: done when the
        # cosine schedule or the progress display (ETA) needs it.
        total = max_steps or None
        if c["schedule"] == "cosine" or not c.get("quiet"):
            steps_per_epoch = self._count_steps_per_epoch()
            if steps_per_epoch == 0:
                raise UserError(f"task {self.task.name!r} produced no training batches: "
                                f"too little data for --batch-size {c['batch_size']}")
            total = epochs * steps_per_epoch
            if max_steps:
                total = min(total, max_steps) if epochs else max_steps
        try:
            schedule = Schedule(c["schedule"], c["lr"], total_steps=total, warmup=c["warmup"],
                                step_size=c["decay_every"], gamma=c["decay_gamma"],
                                min_lr=c["min_lr"])
        except ValueError as e:
            raise UserError(str(e)) from None
        eval_every = int(c.get("eval_every") or 0)
        log_every = int(c.get("log_every") or 0) or max(1, min(100, (total or 0) // 20))
        baselines = None
        if hasattr(self.task, "baselines"):
            baselines = self.task.baselines(self.task_state, "valid", self.config)
            if not resume:
                self.run.append_metrics({"kind": "baselines", "split": "valid",
                                         "baselines": baselines})
        unit = "tok" if self.sequence_output else "samples"
        progress = _Progress(total, self.step, unit, c.get("quiet"), log_every, self.echo)
        status = "done"
        plot = True
        limits = dict(max_steps=max_steps, eval_every=eval_every, log_every=log_every,
                      schedule=schedule, progress=progress, baselines=baselines)
        # numpy's BLAS (head, embedding, loss) stays on one thread whatever --threads says:
        # OpenBLAS's pthreads spin after each call and then fight the kernels' OpenMP threads
        # for the cores (measured on 2 cores, char-lm defaults, --threads 2, 150 steps:
        # 7.25 s with numpy's BLAS at 2 threads, 3.69 s at 1).
        try:
            with _Interrupt() as interrupt, single_threaded_blas():
                status = self._loop(epochs, interrupt, **limits)
                if status in ("done", "step-limit") and self.last_eval_step != self.step:
                    self.evaluate(progress, baselines)
                if status in ("done", "step-limit"):
                    status = "done"
                    self.finished = True
                self.save(LAST)
        except NonFinite as e:
            progress.close()
            raise UserError(
                f"training stopped at step {self.step + 1}: {e} (try a lower --lr or "
                f"--clip-norm); the last good checkpoint stays in {self.run.file(LAST)}"
                if self.run.has(LAST) else
                f"training stopped at step {self.step + 1}: {e} (try a lower --lr or "
                f"--clip-norm); no checkpoint had been written yet") from None
        except KeyboardInterrupt:  # a second Ctrl-C: leave at once, no plot
            plot = False
            raise
        finally:
            progress.close()
            if plot and c.get("plot") and self.step:
                write_loss_plot(self.run)
        return {"status": status, "step": self.step, "epoch": self.epoch,
                "best_loss": self.best_loss, "run": self.run.path,
                "clipped_fraction": self.clipped_steps / self.step if self.step else 0.0}

    def _loop(self, epochs, interrupt, max_steps, eval_every, log_every, schedule, progress,
              baselines):
        while self.epoch < epochs or (max_steps and not epochs):
            skip_batches = self.batch_index
            seen = 0
            for b_index, batch in enumerate(self._epoch_batches(self.epoch)):
                seen += 1
                if b_index < skip_batches:
                    continue
                windows = self._windows(batch)
                if self.window_index == 0 and batch.get("reset", True):
                    self.carry = None
                for w_index in range(self.window_index, len(windows)):
                    x, y, lengths = windows[w_index]
                    lr = schedule(self.step)
                    loss, norm, items = self._train_window(x, y, lengths, lr)
                    self.step += 1
                    self.loss_sum += loss
                    self.loss_count += 1
                    self.eval_sum += loss
                    self.eval_count += 1
                    last_window = w_index + 1 == len(windows)
                    self.batch_index = b_index + 1 if last_window else b_index
                    self.window_index = 0 if last_window else w_index + 1
                    progress.update(self.step, self.epoch, loss, items, lr, norm)
                    if self.step % log_every == 0:
                        self.run.append_metrics({
                            "kind": "train", "step": self.step, "epoch": self.epoch,
                            "loss": loss, "mean_loss": self.loss_sum / self.loss_count,
                            "grad_norm": norm, "lr": lr,
                            "clipped_fraction": self.clipped_steps / self.step})
                        self.loss_sum, self.loss_count = 0.0, 0
                    if eval_every and self.step % eval_every == 0:
                        if self.evaluate(progress, baselines):
                            progress.write(f"early stopping: no improvement in "
                                           f"{self.bad_evals} evaluations")
                            return "early-stopped"
                    if max_steps and self.step >= max_steps:
                        return "step-limit"
                    if interrupt.requested:
                        return "interrupted"
            if seen == 0:
                raise UserError(f"task {self.task.name!r} produced no training batches in "
                                f"epoch {self.epoch + 1}: too little data for --batch-size "
                                f"{self.config['batch_size']}?")
            # epoch boundary: state resets, the next epoch starts at its first batch
            self.epoch += 1
            self.batch_index = self.window_index = 0
            self.carry = None
            if not eval_every and self.last_eval_step != self.step:
                if self.evaluate(progress, baselines):
                    progress.write(f"early stopping: no improvement in {self.bad_evals} "
                                   f"evaluations")
                    return "early-stopped"
            if interrupt.requested:
                return "interrupted"
        return "done"


def train_step(model, loss_fn, optimizer, x, y, lengths, state, lr, clip_norm=5.0,
               clip_value=None, truncate=0):
    """The ONE place that orders a training step:
    forward -> loss -> backward -> clip -> update.

    x, y, lengths: one batch (or TBPTT window) as a task yields it; rows with length 0 run
    one step that counts in no loss (the caller restores their state). state: the carried
    recurrent state or None. truncate=K: truncated BPTT of a pooled model (see
    SequenceModel.forward). Returns (loss, pre-clip gradient norm, clipped?, new state).
    Raises NonFinite before the update when the loss or the gradient norm is not finite,
    so the parameters stay those of the last good step.
    """
    model.zero_grad()
    run_lengths = None if lengths is None else np.maximum(lengths, 1)
    outputs, new_state = model.forward(x, lengths=run_lengths, state=state, truncate=truncate)
    mask = None
    if model.output == "sequence" and lengths is not None:
        mask = valid_mask(lengths, outputs.shape[0], outputs.shape[1])  # (T, B)
    loss, d_outputs = loss_fn.value_and_grad(outputs, y, mask)
    loss = float(loss)
    if not math.isfinite(loss):
        raise NonFinite(f"loss is {loss}")
    model.backward(d_outputs)
    norm, clipped = clip_gradients(model.grads, clip_norm, clip_value)
    if not math.isfinite(norm):
        raise NonFinite(f"gradient norm is {norm}")
    optimizer.step(lr)
    return loss, norm, clipped, new_state


def clip_gradients(grads, clip_norm=None, clip_value=None):
    """Clip the flat gradient buffer (by value, then by global L2 norm; either may be
    off). Returns (global L2 norm before any clipping, whether anything was clipped)."""
    from .clip import clip_grad_norm, clip_grad_value
    clipped = False
    norm = None
    if clip_value:
        norm = float(np.linalg.norm(grads))
        clipped = bool(grads.size and np.abs(grads).max() > clip_value)
        clip_grad_value([grads], clip_value)
    if clip_norm:
        before = float(clip_grad_norm([grads], clip_norm))  # norm before this clip
        norm = before if norm is None else norm
        clipped = clipped or before > clip_norm
    if norm is None:
        norm = float(np.linalg.norm(grads))
    return norm, clipped


def write_loss_plot(run: RunDir) -> bool:
    """loss.png in the run directory: mean training loss per log interval, validation loss per
    evaluation and the baselines' validation losses as lines. False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    records = run.read_metrics()
    train = {r["step"]: r.get("mean_loss", r["loss"])
             for r in records if r.get("kind") == "train"}
    valid = {r["step"]: r["metrics"]["loss"] for r in records if r.get("kind") == "eval"}
    baselines = next((r["baselines"] for r in records if r.get("kind") == "baselines"), {})
    if not train and not valid:
        return False
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for label, points, style in (("train", train, "-"), ("valid", valid, "o-")):
        finite = sorted((k, v) for k, v in points.items() if v is not None and math.isfinite(v))
        if finite:
            ax.plot(*zip(*finite), style, label=label, markersize=4)
    for name, values in (baselines or {}).items():
        if isinstance(values.get("loss"), (int, float)):
            ax.axhline(values["loss"], linestyle="--", linewidth=1, color="gray")
            ax.annotate(f"{name} (valid)", (0, values["loss"]),
                        xycoords=("axes fraction", "data"), fontsize="small", color="gray",
                        va="bottom")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    atomic_write(run.file("loss.png"), lambda f: figure.savefig(f, format="png", dpi=100))
    return True


def start_run(task, config: dict, out: str, echo=print) -> Trainer:
    """Prepare the task's data, create the run directory and a Trainer for it."""
    task_state = task.prepare(config)
    spec = task.model_spec(task_state, config)
    try:
        from .model import check_spec
        check_spec(spec)
    except ValueError as e:
        raise UserError(f"task {task.name!r} gave a bad model spec: {e}") from None
    # fail on bad options, model settings or loss names before making the run directory
    check_training_options(task, spec, config)
    model = build_model(spec, config)
    loss = _loss_for(task, config)
    _check_loss_fits(task, task_state, config, model, loss)
    run = RunDir.create(out, task.name, config, task_state, spec, __version__)
    return Trainer(task, run, loss, echo)


def _check_loss_fits(task, task_state, config, model, loss) -> None:
    """UserError when the loss cannot score the task's targets (e.g. --loss mse for
    class ids): one forward pass of a throwaway model on the first training batch,
    before the run directory exists."""
    rng = np.random.default_rng([int(config["seed"]), 0])
    batch = next(iter(task.batches(task_state, "train", config, rng)), None)
    if batch is None:
        return  # the trainer reports a task without training batches
    lengths = batch.get("lengths")
    lengths = None if lengths is None else np.asarray(lengths, np.int64)
    model.eval()
    outputs, _ = model.forward(batch["x"], lengths=None if lengths is None
                               else np.maximum(lengths, 1), need_grad=False)
    mask = None
    if model.output == "sequence" and lengths is not None:
        mask = valid_mask(lengths, outputs.shape[0], outputs.shape[1])  # (T, B)
    try:
        loss.value_and_grad(outputs, batch["y"], mask)
    except ValueError as e:
        raise UserError(f"--loss {loss.name} does not fit task {task.name!r} (its default "
                        f"is {task.loss}): {_first_line(e)}") from None


def _first_line(error) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def resume_run(task, run: RunDir, echo=print) -> Trainer:
    check_saved_options(run, run.info()["config"])
    return Trainer(task, run, _loss_for(task, run.info()["config"]), echo)


def _loss_for(task, config):
    from .plugins import get_loss
    return get_loss(config.get("loss") or task.loss)
