"""The training loop: batches -> windows -> steps, evaluation, early stopping, checkpoints.

Each optimizer step is recurrent.step.train_step on one batch or TBPTT window.

Position and exact resume. Training position is (epoch, batch, window, step). Epoch e's
batches come from ``task.batches(..., rng=default_rng([seed, e]))`` and dropout masks of
step s from a generator seeded with (seed, s); so a resumed run regenerates epoch e, skips
the batches and windows already done, restores parameters, optimizer state, the carried
recurrent state and the Position (recurrent/position.py) from last.npz, and then
computes exactly what an uninterrupted run computes (bit-identical at 1 thread).

Recurrent state across batches. A batch with "reset": False starts from the state the
previous batch (or window) ended with (stateful streams); "reset": True (the default), a
change of batch size, and every new epoch start from zeros. No gradient flows into a
carried state: it enters the next forward pass as a constant.

Truncated BPTT (--tbptt K): the gradient of every step reaches back at most K steps.
  Per-step ("sequence") outputs: a batch longer than K steps is cut into consecutive
  windows of K steps (recurrent.step.windows), each an optimizer step of its own; the
  state carries from window to window (forward) but no gradient crosses a window
  boundary. Rows whose sequence ended before a window keep their state through it and
  count nothing in its loss.
  Pooled outputs (last/mean/max): one loss per sequence, so one optimizer step per batch.
  The forward pass computes exactly the outputs of the untruncated model (evaluation sees
  the same model as training); the gradient flows back through at most the last K valid
  steps of EACH row (rows no longer than K: full BPTT); see recurrent/truncation.py.
  A bidirectional model is refused: its reverse direction needs the whole sequence.

Evaluation every --eval-every steps (0: at the end of every epoch) and at the end: the
task's metrics on "valid", printed beside its baselines, appended to metrics.jsonl; the
best validation loss (or --select-by figure, recurrent/selection.py) keeps best.npz;
--patience N stops after N evaluations without improvement. last.npz is written at every
evaluation, at the end and on Ctrl-C or SIGTERM (recurrent/interrupt.py; one while fit
sets up stops before the first step); resuming a run that has none yet trains it from
the start with its saved options. A non-finite loss or gradient norm stops training
before the update with a clear message; the last good checkpoint stays.

Schedules see the step index; the cosine schedule spans the run's planned steps (epochs x
steps per epoch, or --steps if smaller). Changing --epochs/--steps on resume does not
restart or jump it: from the rate the last step used it anneals to --min-lr over the new
remaining steps (optim.Schedule.continued; the horizons are kept in the Position).
--threads N reaches every kernel; numpy's BLAS stays at 1 thread (see fit()).

Data-parallel runs (mpiexec, recurrent/distributed.py): every rank runs this loop on its
share of each batch (recurrent/data_parallel.py); rank 0 alone writes the run directory
and prints, the other ranks are silent.

Weight averaging (--average ema:D | swa:S, recurrent/averaging.py): after every step the
running average of the trained parameters is updated; evaluation, the choice of best.npz
and the "param/..." arrays of both checkpoints are the averaged parameters, and last.npz
also keeps the trained ones ("train/params") and the count, so a resumed run continues
both exactly.

When training ends (not on Ctrl-C), a task with the optional after_training member makes
its choices that need the trained model on the validation split, with the best
checkpoint's parameters; the task state it returns is saved in the run.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time

import numpy as np

from . import __version__, averaging, in_turn, run_lock, selection
from .averaging import WeightAverage
from .checkpoint import (BEST, LAST, METRICS_FORMAT, PLOT_FILE, RunDir, WriteError,
                         kept_state, load_arrays, load_meta, param_budget, save_arrays)
from .config import TrainingConfig
from .data_parallel import DataParallel
from .distributed import World
from .errors import Diverged, UserError
from .figures import format_value
from .interrupt import Interrupt
from .loss_plot import missing_note, write_loss_plot
from .optim import Schedule
from .position import Position
from .progress import Progress
from .report import baselines_problem, metrics_problem
from .state import pack_state, state_arrays
from .pretrain import Interrupted as PretrainingInterrupted
from .step import NonFinite, train_step, windows
from .task_params import OPTIM_PREFIX, TaskParams, from_arrays, owned
from .threads import single_threaded_blas


def task_state_of(task, state: dict, arrays: dict) -> dict:
    """The task state with the values of the task's trained parameters that a
    checkpoint holds (its "task/<name>" arrays: recurrent/task_params.py), folded in by
    the task's with_params; the state as it is when there are none."""
    values = from_arrays(arrays)
    if not values or not hasattr(task, "with_params"):
        return state
    return task.with_params(state, values)


def load_params(model, arrays: dict, path: str) -> None:
    """The "param/..." arrays of a checkpoint into ``model`` (UserError if they do not fit)."""
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        model.load_state_dict(params)
    except ValueError as e:
        raise UserError(f"checkpoint {path} does not fit this model: {str(e)[:200]}") from None


def check_checkpoint(task, run: RunDir,
                     task_state: dict | None = None) -> tuple[Position, tuple | None]:
    """UserError when the last.npz of ``run`` cannot be restored (unreadable, or not
    this run's model and optimizer; nothing to restore when it has none yet), when it is
    gone while best.npz is there (the run has trained: starting it again would drop its
    metrics.jsonl and replace its best.npz with an early model), when its best.npz does
    not load into the model (the run's result, whose score last.npz carries on: a
    resume that does not beat it would end with a best checkpoint no command can read),
    or when the task cannot make a training batch (its data file changed since
    training, say) with ``task_state`` (default: the run's). A throwaway Trainer checks,
    and no file is written: a resume checks before it changes anything. Returns the
    checkpoint's position (a fresh one without it) and what was read from last.npz,
    (arrays, meta) or None without one: the Trainer that then resumes the run takes it
    (Trainer.checkpoint) rather than read the file again."""
    trainer = Trainer(task, run, echo=lambda line: None)
    if task_state is not None:
        trainer.task_state = task_state
    read = None
    if run.has(BEST) and not run.has(LAST):
        raise UserError(f"{run.file(LAST)} is missing, while {run.file(BEST)} is there: "
                        f"{run.path} has lost the training state a resume continues from; "
                        f"restore it, or remove {BEST} to train the run again from the "
                        f"start (eval, predict and export still use {BEST} as it is)")
    if run.has(LAST):
        read = trainer.checkpoint = load_arrays(run.file(LAST))
        trainer.restore(check_only=True)
    if run.has(BEST):
        path = run.file(BEST)
        arrays, _ = load_arrays(path)
        load_params(trainer.model, arrays, path)
        try:
            task_state_of(task, trainer.task_state, arrays)
        except (KeyError, ValueError, TypeError) as e:
            raise _corrupted(path, e) from None
    next(iter(trainer._epoch_batches(0)), None)
    return trainer.position, read


def nothing_left(position: Position, config) -> tuple[str, str] | None:
    """Why a run whose checkpoint is at ``position`` has no step left to train under the
    options ``config``: (what it reached, e.g. "--epochs 4", how to train on, e.g. "a
    larger --epochs"), or None when it has. Only a run whose last fit ended and wrote
    its final files (Position.finished) qualifies: one stopped after its last step but
    before them is completed by a resume."""
    if not position.finished:
        return None
    epochs, steps = int(config["epochs"]), int(config.get("steps") or 0)
    reached = [f"--{key} {limit}" for key, limit, done in (
        ("epochs", epochs, position.epoch), ("steps", steps, position.step))
        if limit and done >= limit]
    if reached:
        flags = " and ".join(flag.split()[0] for flag in reached)
        return f"its {' and '.join(reached)}", f"a larger {flags}"
    if patience_spent(position, config):
        return (f"its --patience {int(config['patience'])} (stopped early)",
                "a larger --patience, or --patience 0")
    return None


def patience_spent(position: Position, config) -> bool:
    """Whether --patience evaluations in a row have passed without improvement."""
    patience = int(config.get("patience") or 0)
    return bool(patience and position.bad_evals >= patience)


def _corrupted(path: str, e: Exception) -> UserError:
    """The error for a checkpoint whose records do not hold what restoring needs."""
    return UserError(f"checkpoint {path} is corrupted or incomplete "
                     f"({type(e).__name__}: {e})")


# save()'s default: the carried state gathered there
GATHER = object()

# an extension starting below this share of --lr follows a schedule that had ended
END_OF_SCHEDULE = 0.01


class Trainer:
    """Runs (or resumes) one training run, reading everything from its run directory
    (options, task state, model spec), so that a fresh and a resumed run see the same
    values. The options have been checked by whoever made or reopened the run
    (recurrent/runs.py). ``echo`` prints a line. ``world``: the ranks of a data-parallel
    run (default: this process alone)."""

    def __init__(self, task, run: RunDir, echo=print, world=None):
        info = run.info()
        self.task, self.run, self.echo = task, run, echo
        self.world = world if world is not None else World()
        self.config = TrainingConfig(info["config"])
        self.task_state = info["task_state"]
        self.spec = info["model_spec"]
        with param_budget(run.file(LAST)):  # a resumed run's sizes: its checkpoint's
            self.model = self.config.build_model(self.spec)  # first: it checks the spec
        self.sequence_output = self.spec["output"] == "sequence"
        self.tbptt = int(self.config.get("tbptt") or 0)
        self.optimizer = self.config.build_optimizer(self.model)
        self.task_params = self._task_params()
        self.loss = self.config.loss_function(task)
        self.seed = int(self.config["seed"])
        self.position = Position()
        self.metrics_format = info.get("metrics_format", 1)
        self.carry = None  # the recurrent state carried into the next batch or window
        self.carry_rows = 0  # rows of the whole batch the carry came from (data-parallel)
        self.parallel = (DataParallel(self.world, self.sequence_output)
                         if self.world.size > 1 else None)
        self.interrupt = None
        # (arrays, meta) of last.npz already read on this rank (check_checkpoint), which
        # restore() and _saved_position() use in place of the file; None: read the file
        self.checkpoint = None
        self.setup_cut = False  # a Ctrl-C cut the setup's pretraining: nothing to save
        self.pending_task_state = False  # a resumed run's training_state, not yet saved
        # the options of a resume (runs.resume_run): the saved ones with those given,
        # which nothing_left reads (an ended run does not save them)
        self.plan = self.config
        # --average: evaluation and checkpoints use the average (recurrent/averaging.py)
        self.average = WeightAverage.from_option(self.config.get("average", "off"),
                                                 self.model)
        self.selection = selection.parse(self.config.get("select_by"))

    size = 1  # one model (recurrent/ensemble.py trains several)

    @property
    def num_params(self):
        return self.model.num_params

    def _task_params(self):
        """The task's trained parameters (Task.trained_params, recurrent/task_params.py)
        with an optimizer of their own of the run's kind, or None."""
        values = owned(self.task, self.task_state, self.config)
        if not values:
            return None
        params = TaskParams(values)
        params.optimizer = self.config.build_optimizer_over(params.params, params.grads)
        return params

    def current_task_state(self):
        """The task state with the current values of the task's trained parameters."""
        if self.task_params is None:
            return self.task_state
        return self.task.with_params(self.task_state, self.task_params.values())

    # -- checkpoints --------------------------------------------------------------------
    def save(self, name=LAST, carry=GATHER):
        """best.npz: the parameters (the model's, averaged with --average; the task's);
        last.npz: also the optimizer state, the carried state, the Position and, with
        --average, the trained parameters and the averaging count. ``carry``: the
        carried state as _saved_carry gathered it, when that was done beforehand."""
        if carry is GATHER:
            carry = self._saved_carry() if name == LAST else self.carry
        if not self.world.is_root:
            return
        with self._averaged():
            arrays = {f"param/{name}": view.copy()
                      for name, view in self.model.named_params.items()}
        if self.task_params is not None:
            arrays.update(self.task_params.arrays())
        meta = {**self.position.to_meta(), "optimizer": self.optimizer.name,
                "version": __version__, "carry_states": len(state_arrays(carry))}
        if name == LAST:
            arrays.update({f"optim/{k}": np.asarray(v)
                           for k, v in self.optimizer.state_dict().items()})
            if self.task_params is not None:
                arrays.update({OPTIM_PREFIX + k: np.asarray(v) for k, v in
                               self.task_params.optimizer.state_dict().items()})
            arrays.update({f"carry/{i}": a for i, a in enumerate(state_arrays(carry))})
            if self.average is not None:
                arrays["train/params"] = self.model.params
                meta.update(self.average.to_meta())
        save_arrays(self.run.file(name), arrays, meta)

    def _saved_carry(self):
        """The carried state last.npz keeps: every rank's rows on rank 0 of a
        data-parallel run (every rank takes part)."""
        if self.parallel is not None:
            return self.parallel.global_state(self.carry)
        return self.carry

    def _averaged(self):
        """A context in which the model holds the averaged parameters (--average), or
        its own when averaging is off."""
        if self.average is None:
            return contextlib.nullcontext()
        return self.average.applied(self.model)

    def restore(self, check_only=False):
        """Everything save(LAST) wrote, back from last.npz (``check_only``: into this
        Trainer only, metrics.jsonl left as it is; see check_checkpoint)."""
        path = self.run.file(LAST)
        arrays, meta = (None, None) if not self.world.is_root else (
            self.checkpoint if self.checkpoint is not None else load_arrays(path))
        self.checkpoint = None  # read once: a later restore reads what was saved since
        if self.parallel is not None:
            arrays, meta = self.world.bcast((arrays, meta))
        load_params(self.model, arrays, path)
        try:
            optim_state = {k[len("optim/"):]: v for k, v in arrays.items()
                           if k.startswith("optim/")}
            if meta.get("optimizer") != self.optimizer.name:
                raise ValueError(f"saved by optimizer {meta.get('optimizer')!r}")
            self.optimizer.load_state_dict(optim_state)
            if self.task_params is not None:
                self.task_params.load(from_arrays(arrays), f"checkpoint {path}")
                self.task_params.optimizer.load_state_dict(
                    {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items()
                     if k.startswith(OPTIM_PREFIX)})
            if self.average is not None:  # param/ holds the average, train/ the parameters
                self.average.restore(self.model.params, meta["average_count"])
                trained = arrays["train/params"]
                if trained.shape != self.model.params.shape:
                    raise ValueError(f"train/params has shape {trained.shape}, "
                                     f"expected {self.model.params.shape}")
                self.model.params[...] = trained
                self.model.params_changed()
            self.carry = pack_state([arrays[f"carry/{i}"]
                                     for i in range(int(meta["carry_states"]))])
            if self.carry is not None:
                self.carry_rows = state_arrays(self.carry)[0].shape[1]
                if self.parallel is not None:
                    self.carry = self.parallel.local_state(self.carry, self.carry_rows)
            self.position = Position.from_meta(meta)
            if self.world.is_root and not check_only:
                self.run.drop_metrics_after(self.position.step)
        except (KeyError, ValueError, TypeError) as e:
            raise _corrupted(path, e) from None

    def _saved_position(self) -> Position:
        """The Position last.npz holds, from its meta record alone (the arrays are read
        by restore() when the run trains)."""
        path = self.run.file(LAST)
        meta = None if not self.world.is_root else (
            self.checkpoint[1] if self.checkpoint is not None else load_meta(path))
        if self.parallel is not None:
            meta = self.world.bcast(meta)
        try:
            return Position.from_meta(meta)
        except (KeyError, ValueError, TypeError) as e:
            raise _corrupted(path, e) from None

    # -- data -----------------------------------------------------------------------------
    def _epoch_batches(self, epoch):
        rng = np.random.default_rng([self.seed, epoch])
        if self.task_params is not None:  # each batch made with the values of its step
            return self.task.batches(self.task_state, "train", self.config, rng,
                                     params=self.task_params.named)
        return self.task.batches(self.task_state, "train", self.config, rng)

    def _windows(self, batch):
        return windows(batch, self.tbptt, self.sequence_output)

    def _count_steps_per_epoch(self):
        if hasattr(self.task, "count_batches") and not (self.tbptt and self.sequence_output):
            # one window per batch (step.windows): the task counts its batches
            return self.task.count_batches(self.task_state, "train", self.config,
                                           np.random.default_rng([self.seed, 0]))
        return sum(len(self._windows(b)) for b in self._epoch_batches(0))

    # -- one step ---------------------------------------------------------------------------
    def _train_window(self, x, y, lengths, lr, task_backward=None):
        """One optimizer step on one window, with the carried state. Returns (loss,
        pre-clip norm, items) where items counts valid tokens (sequence) or rows.
        task_backward: the batch's "backward" (the task's trained parameters)."""
        B = batch_rows = np.shape(x)[1]
        items = B if not self.sequence_output else int(
            np.shape(x)[0] * B if lengths is None else lengths.sum())
        reduce = rows = None
        own = slice(0, B)  # the rows of the batch this process computes
        if self.parallel is not None:
            own = share_rows = self.parallel.rows(B)
            rows = (share_rows.start, share_rows.stop, B)  # the dropout masks' rows
            x, y, lengths, share = self.parallel.shard(x, y, lengths)
            B = np.shape(x)[1]
            reduce = self.parallel.reducer(share, lambda: self.interrupt.signal)
        carry_in = self.carry
        # a data-parallel rank's carry holds its share of rows: compare the whole batch's
        if carry_in is not None and (state_arrays(carry_in)[0].shape[1] if self.parallel is None
                                     else self.carry_rows) != batch_rows:
            carry_in = None  # batch size changed: nothing to carry
        self.model.reseed_dropout((self.seed, self.position.step), rows)
        loss, norm, clipped, state = train_step(
            self.model, self.loss, self.optimizer, x, y, lengths, carry_in, lr,
            self.config.get("clip_norm"), self.config.get("clip_value"),
            truncate=0 if self.sequence_output else self.tbptt, reduce=reduce,
            task_params=self.task_params,
            task_backward=None if task_backward is None else (
                lambda d_outputs, d_inputs: task_backward(d_outputs, d_inputs, own)))
        self.carry = pack_state([np.array(a, copy=True) for a in state_arrays(state)])
        self.carry_rows = batch_rows
        self.position.clipped_steps += int(clipped)
        return loss, norm, items

    def _stop_requested(self):
        """Ctrl-C or SIGTERM seen: by this process, or (data-parallel) by any rank at the
        last step."""
        return self.parallel.stop if self.parallel is not None else self.interrupt.requested

    def _stop_signal(self):
        """The signal the stop was requested with (SIGINT, SIGTERM), as _stop_requested
        sees it, or None."""
        return (self.parallel.stop_signal if self.parallel is not None
                else self.interrupt.signal)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, progress, baselines):
        """Validation metrics: logged, best.npz if they improved, last.npz. Returns True
        when --patience says stop."""
        p = self.position
        was_training = self.model.training
        runner = (self.parallel.runner(self.model) if self.parallel is not None
                  else self.model.runner())
        # A validation loss that is not finite stops the run with its own one-line error
        # (NonFinite below); numpy's overflow warnings on the way there would only come
        # before it as noise, as in the training step.
        with self._averaged(), np.errstate(over="ignore", invalid="ignore"):
            metrics = self.task.evaluate(self.current_task_state(), "valid", self.config,
                                         runner)
        if self.parallel is not None:  # rank 0's numbers decide early stopping everywhere
            metrics = self.world.bcast(metrics)
        self.model.train(was_training)
        problem = metrics_problem(metrics)
        if problem:
            raise UserError(f"task {self.task.name!r}: evaluate() {problem}")
        loss = float(metrics["loss"])
        if not math.isfinite(loss):  # no checkpoint can be compared with it: diverged
            raise NonFinite(f"the validation loss is {loss}", evaluated=True)
        score = self.selection.checked_score(metrics)
        # --select-by loss: its best is best_loss itself (runs saved before --select-by
        # existed have no best_score)
        improved = (loss < p.best_loss if self.selection.is_loss
                    else selection.improves(score, p.best_score))
        if improved:
            p.best_loss, p.best_score, p.bad_evals = loss, score, 0
        else:
            p.bad_evals += 1
        train_loss = p.eval_sum / p.eval_count if p.eval_count else None
        p.eval_sum, p.eval_count = 0.0, 0
        record = {"kind": "eval", "split": "valid", "step": p.step,
                  "epoch": self.record_epoch(),
                  "metrics": metrics, "train_loss": train_loss,
                  "clipped_fraction": p.clipped_steps / p.step if p.step else 0.0,
                  "best": improved, "time": time.time()}
        if self.world.is_root:
            self.run.append_metrics(record)
        progress.write_evaluation(p.step, metrics, baselines, improved, train_loss,
                                  record["clipped_fraction"])
        progress.restart_rate()
        p.last_eval_step = p.step
        if improved:
            self.save(BEST)
        self.save(LAST)
        return patience_spent(self.position, self.config)

    def record_epoch(self) -> int:
        """metrics.jsonl's "epoch" for a record of the current step: the epoch the step
        was taken in, counted from 1 (Position.step_epoch); a run made before config.json
        had "metrics_format" goes on counting as its records do (the epochs completed)."""
        if self.metrics_format == METRICS_FORMAT:
            return self.position.step_epoch()
        return self.position.epoch

    def _evaluate_or_stop(self, progress, baselines) -> bool:
        """evaluate() in the training loop; True, said on the progress output, when
        --patience stops the run."""
        if not self.evaluate(progress, baselines):
            return False
        progress.write(f"early stopping: no improvement in {self.position.bad_evals} "
                       f"evaluations")
        return True

    def _best_text(self, finished=None):
        """'valid loss 0.4552' / 'valid accuracy 0.7882': the selected checkpoint's figure,
        or None before any evaluation. ``finished``: the score of the finished model
        when the task's after_training choices changed it, which `recurrent eval RUN
        --split valid` shows: that figure, with the one the training logged beside it."""
        p = self.position
        best = p.best_loss if self.selection.is_loss else p.best_score
        if not math.isfinite(best):
            return None
        text = self.selection.describe(best)
        if finished is None or not math.isfinite(finished):
            return text
        final = self.selection.describe(finished)
        return text if final == text else (
            f"{final} with the choices made after training "
            f"({format_value(self.selection.value(best))} before them)")

    def _no_best_text(self):
        """Why a run that has evaluated has no best checkpoint (its --select-by figure was
        never finite: selection.improves), or None. No evaluation improved, so every one
        of them counts in bad_evals."""
        p = self.position
        if p.last_eval_step < 0 or math.isfinite(p.best_score) or self.selection.is_loss:
            return None
        return self.selection.describe_missing(p.bad_evals)

    def _initial_params(self):
        """A fresh run's parameters that the task's optional initial_params sets (rank 0;
        the others receive rank 0's parameters)."""
        if not hasattr(self.task, "initial_params") or not self.world.is_root:
            return
        try:
            values = self.task.initial_params(self.task_state, self.config)
        except PretrainingInterrupted:  # a Ctrl-C: the run stops before its first step,
            self.setup_cut = True       # saving nothing (fit)
            return
        shapes = self.model.param_shapes()
        for name, value in values.items():
            value = np.asarray(value)
            if shapes.get(name) != value.shape:
                raise UserError(f"task {self.task.name!r} initial_params: {name} has shape "
                                f"{value.shape}, the model's is {shapes.get(name)}")
            self.model.named_params[name][...] = value

    def _after_training(self):
        """The task's optional after_training choices, made with the best parameters
        (the last ones when no evaluation improved) and saved as the run's task state.
        Returns the finished model's validation score when they changed the state (the
        training's evaluations no longer give it), else None."""
        if not hasattr(self.task, "after_training") or not self.world.is_root:
            return None  # (the other ranks of a data-parallel run end here: nothing to keep)
        model, arrays = self._finished_model()
        state = task_state_of(self.task, self.task_state, arrays)
        state = kept_state(self.task.name, "after_training",
                           self.task.after_training(state, self.config, model.runner()))
        if state == self.task_state:
            return None
        self.task_state = state
        self.run.update_task_state(state)
        return self._finished_score(model, state)

    def _finished_model(self):
        """The finished model (its best parameters, the last ones when no evaluation
        improved) in eval mode, and the checkpoint's arrays."""
        model = self.config.build_model(self.spec)
        name = BEST if self.run.has(BEST) else LAST
        arrays, _ = load_arrays(self.run.file(name))
        load_params(model, arrays, self.run.file(name))
        model.eval()
        return model, arrays

    def _finished_score(self, model, state):
        """The validation score of ``model`` with the task state ``state``."""
        with np.errstate(over="ignore", invalid="ignore"):
            metrics = self.task.evaluate(state, "valid", self.config, model.runner())
        return self.selection.checked_score(metrics)

    def _ended_finished_score(self):
        """An ended run's finished score, as _after_training gave it: the score of the
        model with the saved task state (rank 0) when that may hold after_training's
        choices, else None. A task with training_state tells them apart (it leaves them
        out); without it, whether they changed anything is not known, so the model is
        scored whenever the task has after_training (_best_text shows the training's
        figure alone when the two agree)."""
        if not (self.world.is_root and hasattr(self.task, "after_training")):
            return None
        if (hasattr(self.task, "training_state")
                and self.task.training_state(self.task_state) == self.task_state):
            return None
        model, arrays = self._finished_model()
        return self._finished_score(model, task_state_of(self.task, self.task_state, arrays))

    def _undo_after_training(self):
        """A resumed run trains on without the choices its after_training made (the task's
        optional training_state), so that its evaluations compare checkpoints as the
        first part of the run did; saved when the setup has gone through (a resume
        refused during it changes no file), so that an extension stopped before its end
        is what any stopped run is (after_training chooses again at the new end)."""
        if not hasattr(self.task, "training_state"):
            return
        state = self.task.training_state(self.task_state)
        if state != self.task_state:
            self.task_state = state
            self.pending_task_state = True  # saved once the setup has gone through (fit)

    # -- the loop -----------------------------------------------------------------------------
    def _planned_steps(self, epochs, max_steps):
        """The run's total steps for the cosine schedule, the automatic --log-every and
        the progress display (ETA), or None when none needs it (a --quiet run with its
        own --log-every): known only by generating an epoch's batches. --quiet does not
        change the automatic log interval, so metrics.jsonl holds the same records."""
        c = self.config
        total = max_steps or None
        automatic_log = not int(c.get("log_every") or 0)
        if c["schedule"] == "cosine" or not c.get("quiet") or automatic_log:
            steps_per_epoch = self._count_steps_per_epoch()
            if steps_per_epoch == 0:
                raise UserError(f"task {self.task.name!r} produced no training batches: "
                                f"too little data for --batch-size {c['batch_size']}")
            total = epochs * steps_per_epoch
            if max_steps:
                total = min(total, max_steps) if epochs else max_steps
        return total

    def _schedule(self, total, resumed=False):
        """The learning-rate schedule; a cosine keeps the horizon the run started with and
        continues smoothly when --steps / --epochs change it (Schedule.continued).
        ``resumed``: a `train --resume`, which cannot change the schedule's settings."""
        c, p = self.config, self.position
        try:
            schedule = Schedule(c["schedule"], c["lr"], total_steps=p.lr_horizon or total,
                                warmup=c["warmup"], step_size=c["decay_every"],
                                gamma=c["decay_gamma"], min_lr=c["min_lr"],
                                extensions=p.lr_extensions)
        except ValueError as e:
            raise UserError(str(e)) from None
        if total:
            before = len(schedule.extensions)
            schedule = schedule.continued(p.step, total)
            rate = schedule.extensions[-1][1] if len(schedule.extensions) > before else None
            if rate is not None and rate <= END_OF_SCHEDULE * float(c["lr"]) \
                    and self.world.is_root:  # a finished run extended: say what it does
                print(f"note: the cosine schedule had come down to lr {rate:.3g} (from "
                      f"--lr {float(c['lr']):g}) by step {p.step}; the extra steps go on "
                      f"from there without a jump and so change little (docs/training.md); "
                      f"to train on at a useful rate, start a new run", file=sys.stderr)
        p.lr_horizon = schedule.total_steps if schedule.kind == "cosine" else 0
        p.lr_extensions = [list(e) for e in schedule.extensions]
        # a new run with --steps was refused before its directory was made
        # (TrainingConfig.check_new); one that --epochs ends first, or a resumed one, is
        # told here, once its planned steps are known (--steps' count unless --epochs
        # ends the run before it)
        moot = total and Schedule.moot_within(schedule.kind, int(c["warmup"]),
                                              int(c["decay_every"]), total,
                                              self._limit_option(total), resumed)
        if moot and self.world.is_root:
            from .progress import warn_once
            warn_once(f"note: {moot}")
        return schedule

    def _limit_option(self, total) -> str:
        """The option whose count ends a run of ``total`` planned steps: --steps, unless
        --epochs ends the run before it."""
        return "--steps" if total == int(self.config.get("steps") or 0) else "--epochs"

    def _note_average(self, total, resumed=False):
        """The note of an --average swa:S that the run's ``total`` planned steps leave
        without effect (averaging.moot_within): a new run with --steps was refused before
        its directory was made (TrainingConfig.check_new); one that --epochs ends first,
        or a resumed one, is told here, once its planned steps are known."""
        moot = total and averaging.moot_within(self.config.get("average", averaging.OFF),
                                               total, self._limit_option(total), resumed)
        if moot and self.world.is_root:
            from .progress import warn_once
            warn_once(f"note: {moot}")

    def lock_paths(self) -> list[str]:
        """The directories this trainer writes (recurrent/run_lock.py): its run's."""
        return [self.run.path]

    @run_lock.locked
    def fit(self, resume=False):
        """Train until --epochs / --steps, early stopping, Ctrl-C or SIGTERM, or a
        non-finite loss. Returns a summary dict: {"status": "done" | "early-stopped" |
        "interrupted", "signal": the SIGINT or SIGTERM that stopped an interrupted run,
        ...}.
        ``resume`` of a run without a checkpoint yet (stopped or failed before its first
        last.npz) starts it from the beginning with its saved options, as in_turn does
        for a part. The Ctrl-C handler covers the setup too (restoring, counting the
        planned steps, the baselines): a Ctrl-C there stops before the first step, with a
        checkpoint of step 0 to resume from, or, during the task's pretraining, with none
        ("unsaved" in the summary; --resume then starts the run from the beginning)."""
        c = self.config
        root = self.world.is_root
        status = "done"
        plot = True
        progress = None
        trained = False  # the training ended without an error
        stopped_before = False  # resumed after it had stopped early: nothing to train
        limit = None  # which limit ended a run that --epochs ended before --steps
        finished = None  # the finished model's score, when after_training changed it
        try:
            with Interrupt() as self.interrupt:
                if resume and not in_turn.started(self.world, self.run.path):
                    if root:  # a notice: shown even with --quiet
                        print(f"{self.run.path} has no checkpoint yet: training it from "
                              f"the start with its saved options", file=sys.stderr)
                    resume = False
                if resume:
                    ended = self._ended()
                    if ended is not None:
                        return ended
                progress, limits = self._set_up(resume)
                if self.pending_task_state and root:
                    self.run.update_task_state(self.task_state)
                if self.parallel is not None:  # a Ctrl-C during the setup, on any rank
                    self.parallel.agree_to_stop(self.interrupt.signal)
                p = self.position
                # numpy's BLAS (head, embedding, loss) stays on one thread whatever
                # --threads says: OpenBLAS's threads spin after each call and then
                # compete with the kernels' OpenMP threads for the cores.
                with single_threaded_blas():
                    stopped_before = patience_spent(self.position, self.config)
                    if stopped_before:
                        status = "early-stopped"
                    elif self.setup_cut or self._stop_requested():  # a Ctrl-C in the setup
                        status = "interrupted"
                    else:
                        epochs, max_steps = limits["epochs"], limits["max_steps"]
                        status = self._loop(**limits)
                        # _loop's "done": the epochs ran out before --steps was reached
                        if status == "done" and max_steps and p.step < max_steps:
                            limit = (f"--epochs {epochs} ended training before "
                                     f"--steps {max_steps}")
                    if status in ("done", "step-limit") and p.last_eval_step != p.step:
                        self.evaluate(progress, limits["baselines"])
                    if status in ("done", "step-limit"):
                        status = "done"
                    # last.npz is written after after_training's choices, so that one
                    # saying the run finished (nothing_left) means its files are final;
                    # the carried state is gathered first, as every rank does
                    carry = self._saved_carry() if not self.setup_cut else None
                    if status != "interrupted":
                        finished = self._after_training()
                        p.finished = True
                    if not self.setup_cut:
                        self.save(LAST, carry)
            trained = True
        except NonFinite as e:  # every rank of a data-parallel run raises it at this step
            p = self.position
            at = f"after step {p.step}" if e.evaluated else f"at step {p.step + 1}"
            if p.step == 0 and not (e.evaluated or e.updated):
                # no update has run: the initial weights gave it, whatever the step size
                hint = (f"before any update, so not the learning rate's doing: the data, "
                        f"or a plugin's cell or loss (`recurrent plugins check "
                        f"{c['cell']}`, `recurrent plugins check {self.loss.name}`)")
            elif e.evaluated:
                # the step's loss and the updated parameters were finite (else NonFinite
                # would have come from the step): the validation pass itself gave it
                hint = (f"the training loss and the parameters were finite: weights grown "
                        f"too large for the validation data (try a lower --lr or "
                        f"--clip-norm), or the task's evaluate() (`recurrent plugins check "
                        f"{self.task.name}`)")
            else:
                hint = "try a lower --lr or --clip-norm"
            raise Diverged(
                f"training stopped {at}: {e} ({hint}); the last good checkpoint stays in "
                f"{self.run.file(LAST)} for eval and predict (--resume would repeat these "
                f"steps bit for bit: train anew with --out)" if self.run.has(LAST) else
                f"training stopped {at}: {e} ({hint}); no checkpoint had been written yet",
                step=p.step) from None
        except KeyboardInterrupt:  # a second Ctrl-C: leave at once, no plot
            plot = False
            raise
        finally:
            if progress is not None:
                progress.close()
                if plot and c.get("plot") and self.position.step and root:
                    # under the run's Ctrl-C handler again: a first Ctrl-C while the plot
                    # is drawn lets it finish (the run has ended, its summary follows),
                    # a second one aborts, as during training
                    with self.interrupt:
                        self._write_plot(trained)
        return self._summary(status, stopped_before=stopped_before, limit=limit,
                             best=self._best_text(finished), unsaved=self.setup_cut,
                             signal=self._stop_signal() if status == "interrupted" else None)

    def _summary(self, status, **fields) -> dict:
        """fit()'s summary of the run at its position, with ``fields`` added."""
        p = self.position
        return {"status": status, "step": p.step, "epoch": p.epoch,
                "best_loss": p.best_loss, "run": self.run.path, "best": self._best_text(),
                "no_best": self._no_best_text(), "unsaved": False, "signal": None,
                "clipped_fraction": p.clipped_steps / p.step if p.step else 0.0, **fields}

    def _ended(self):
        """The summary of a resume that has nothing left to train (nothing_left), which
        writes nothing: no options, checkpoint or records; loss.png only when it is
        missing or older than last.npz (a run stopped before drawing it), listed in the
        summary's "plotted". None when there are steps left."""
        self.position = p = self._saved_position()
        c = self.plan
        left = nothing_left(p, c)
        if left is None:
            return None
        plotted = []
        if c.get("plot") and self.world.is_root and not self._plot_current():
            if self._write_plot(True):
                plotted.append(self.run.file(PLOT_FILE))
        return self._summary("early-stopped" if patience_spent(p, c) else "done",
                             nothing_left=left, plotted=plotted,
                             best=self._best_text(self._ended_finished_score()))

    def _plot_current(self) -> bool:
        """Whether loss.png exists and was drawn after last.npz was written."""
        try:
            return (os.stat(self.run.file(PLOT_FILE)).st_mtime_ns
                    >= os.stat(self.run.file(LAST)).st_mtime_ns)
        except OSError:
            return False

    def _write_plot(self, trained):
        """write_loss_plot, and the note when matplotlib cannot be imported. When the
        training ended with an error (a checkpoint that could not be written, a
        divergence), a plot that cannot be written either is left out, so that the error
        shown is the one that stopped the run, not the plot's. Returns whether loss.png
        was written."""
        try:
            drawn = write_loss_plot(self.run)
        except WriteError:
            if trained:
                raise
            return False
        note = None if drawn else missing_note(imported=True)
        if note:
            print(note, file=sys.stderr)
        return drawn

    def _set_up(self, resume):
        """The start of fit (under its Ctrl-C handler): the position and parameters
        restored or initialised, the schedule, the baselines. Returns (the Progress
        display, the keyword arguments of _loop)."""
        c = self.config
        if resume:
            self.restore()
            self._undo_after_training()
        else:
            self._initial_params()
        if not resume and self.parallel is not None:  # every replica starts from rank 0's
            # unwatched: rank 0's initial_params may fit or pretrain for a long time
            self.model.params[...] = self.world.bcast(
                self.model.params if self.world.is_root else None, watched=False)
            self.model.params_changed()
            self.setup_cut = self.world.bcast(self.setup_cut)
            if self.task_params is not None:
                self.task_params.params[...] = self.world.bcast(
                    self.task_params.params if self.world.is_root else None)
        p = self.position
        p.finished = False  # until this fit reaches the end
        epochs, max_steps = int(c["epochs"]), int(c.get("steps") or 0)
        total = self._planned_steps(epochs, max_steps)
        schedule = self._schedule(total, resume)
        self._note_average(total, resume)
        eval_every = int(c.get("eval_every") or 0)
        log_every = int(c.get("log_every") or 0) or max(1, min(100, (total or 0) // 20))
        root = self.world.is_root
        baselines = None
        if hasattr(self.task, "baselines"):
            if root:  # computed once, shown by rank 0 only
                baselines = self.task.baselines(self.task_state, "valid", self.config)
                problem = baselines_problem(baselines)
                if problem:
                    raise UserError(f"task {self.task.name!r}: baselines() {problem}")
            if root and not resume:
                self.run.append_metrics({"kind": "baselines", "split": "valid",
                                         "baselines": baselines})
            if self.parallel is not None:  # the others wait, unwatched, while rank 0 fits
                self.world.bcast(None, watched=False)
        note = missing_note() if c.get("plot") and root else None
        if note:
            print(note, file=sys.stderr)  # a warning: shown even with --quiet
        unit = "tok" if self.sequence_output else "samples"
        progress = Progress(total, p.step, unit, c.get("quiet") or not root, log_every,
                            self.echo)
        return progress, dict(epochs=epochs, max_steps=max_steps, eval_every=eval_every,
                              log_every=log_every, schedule=schedule, progress=progress,
                              baselines=baselines)

    def _loop(self, epochs, max_steps, eval_every, log_every, schedule, progress, baselines):
        p = self.position
        while p.epoch < epochs or (max_steps and not epochs):
            if max_steps and p.step >= max_steps:  # resumed at its end: the position and
                return "step-limit"  # carried state stay as the last step left them
            skip_batches = p.batch
            seen = 0
            for b_index, batch in enumerate(self._epoch_batches(p.epoch)):
                seen += 1
                if b_index < skip_batches:
                    continue
                batch_windows = self._windows(batch)
                task_backward = batch.get("backward") if self.task_params is not None else None
                if task_backward is not None and len(batch_windows) > 1:
                    raise UserError(f"task {self.task.name!r} trains parameters of its "
                                    f"own: it needs one window per batch (no --tbptt "
                                    f"shorter than its sequences)")
                if p.window == 0 and batch.get("reset", True):
                    self.carry = None
                for w_index in range(p.window, len(batch_windows)):
                    x, y, lengths = batch_windows[w_index]
                    lr = schedule(p.step)
                    loss, norm, items = self._train_window(x, y, lengths, lr, task_backward)
                    p.step += 1
                    if self.average is not None:
                        self.average.update(self.model.params, p.step)
                    p.loss_sum += loss
                    p.loss_count += 1
                    p.eval_sum += loss
                    p.eval_count += 1
                    last_window = w_index + 1 == len(batch_windows)
                    p.batch = b_index + 1 if last_window else b_index
                    p.window = 0 if last_window else w_index + 1
                    progress.update(p.step, p.epoch, loss, items, lr, norm)
                    if p.step % log_every == 0 and self.world.is_root:
                        self.run.append_metrics({
                            "kind": "train", "step": p.step, "epoch": self.record_epoch(),
                            "loss": loss, "mean_loss": p.loss_sum / p.loss_count,
                            "grad_norm": norm, "lr": lr,
                            "clipped_fraction": p.clipped_steps / p.step})
                        p.loss_sum, p.loss_count = 0.0, 0
                    if eval_every and p.step % eval_every == 0:
                        if self._evaluate_or_stop(progress, baselines):
                            return "early-stopped"
                    if max_steps and p.step >= max_steps:
                        return "step-limit"
                    if self._stop_requested():
                        return "interrupted"
            if seen == 0:
                raise UserError(f"task {self.task.name!r} produced no training batches in "
                                f"epoch {p.epoch + 1}: too little data for --batch-size "
                                f"{self.config['batch_size']}?")
            # epoch boundary: state resets, the next epoch starts at its first batch
            p.epoch += 1
            p.batch = p.window = 0
            self.carry = None
            if not eval_every and p.last_eval_step != p.step:
                if self._evaluate_or_stop(progress, baselines):
                    return "early-stopped"
            if self._stop_requested():
                return "interrupted"
        return "done"
