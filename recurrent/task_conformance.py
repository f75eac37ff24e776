"""Conformance of a task: does it keep the contract of recurrent.protocols.Task?

`recurrent plugins check NAME` runs these checks for a task, as recurrent.conformance does
for a cell or a loss; a task's author uses them as a test suite. They run the task on its
default options (its data as a new run would read it) with a freshly initialised model:

  members        the protocol's required members are there (the optional ones listed)
  options        options() is a list of click parameters with distinct names; defaults()
                 a dict whose keys are shared training options or the task's own (what it
                 overrides: another key, a misspelt option say, sets no option's
                 default); unused_options names shared options; predict_options()
                 (if present) is one `recurrent predict` takes (predict_api.predict_params)
  prepare        prepare() of the default options returns a dict
  state is JSON  the state survives config.json: every value is a JSON type (or a numpy
                 number or array, saved as a number or list); a set or an object would
                 come back as its text
  check_state    (if present) accepts the state as config.json gives it back
  model spec     model_spec() is a spec the framework can build
  batches SPLIT  per split: batches() of the saved state yields dicts with "x" and "y"
                 that the model and the task's loss take (the checks a training step and
                 an evaluation make), at least one for "train"
  count_batches  (if present) equals the number of batches
  same batches   the same rng seed gives the same batches, and rng None the same order
                 twice (the first BATCHES_COMPARED of "train" and "valid"): what makes a run repeatable, resumable bit for bit and the same at
                 any rank count (batches must draw from ``rng`` alone)
  evaluate       evaluate() on "valid" returns finite numbers with a "loss", the same on
                 a second call
  baselines      (if present) a dict of dicts of JSON values

The checks after prepare, state is JSON and model spec take what those make: a failure
of one of the three ends the list there. Every check returns (name, passed, detail), as
recurrent.conformance's do.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np

from .checkpoint import json_default, not_json, saved_json
from .conformance import CheckResult, CheckRunner, members_check
from .config import SHARED_DEFAULTS, TrainingConfig, check_model_spec, task_options
from .errors import UserError
from .lengths import valid_mask
from .predict_api import predict_params
from .protocols import SPLITS, Task
from .report import baselines_problem
from .step import batch_problem

BATCHES_CHECKED = 3  # per split: batches run through the model and the loss
BATCHES_COMPARED = 20  # per call of "same batches"


def default_config(task, seed: int = 0) -> TrainingConfig:
    """The options of `recurrent train NAME --seed SEED` given nothing else: the shared
    defaults, the task's defaults, its own options' defaults, those of its default cell
    (cell_defaults), and the first candidate's overrides when the task chooses among
    candidates."""
    import click
    # the values the command line gives when no option is given: click's own defaults,
    # converted by each option's type as the CLI converts them
    own = click.Command(task.name, params=task_options(task)).make_context(task.name,
                                                                           []).params
    config = TrainingConfig.resolve(task, {**own, "seed": seed}, given={"seed"})
    choices = task.candidates(config) if hasattr(task, "candidates") else []
    return TrainingConfig(dict(config, **choices[0])) if choices else config


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) if a[k] is not None
               else b[k] is None for k in a)


def check_task(task, seed: int = 0) -> list[CheckResult]:
    runner = CheckRunner()
    runner.run("members", lambda: members_check(task, Task))
    if runner.results[-1].passed is False:
        return runner.results
    facts = {}

    def options():
        import click
        params = list(task.options() or [])
        odd = [p for p in params if not isinstance(p, click.Parameter)]
        if odd:
            return False, f"options() holds {odd[0]!r}, not a click parameter"
        names = [p.name for p in params]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            return False, f"options() names {twice[0]!r} twice"
        defaults = task.defaults() or {}
        if not isinstance(defaults, dict):
            return False, f"defaults() returned {type(defaults).__name__}, not a dict"
        unknown = sorted(set(defaults) - set(SHARED_DEFAULTS) - set(names))
        if unknown:
            return False, (f"defaults() sets {unknown[0]!r}, neither a shared training "
                           f"option nor one of the task's: it sets no option's default "
                           f"(misspelt?)")
        unused = sorted(set(getattr(task, "unused_options", ())) - set(SHARED_DEFAULTS))
        if unused:
            return False, f"unused_options names {unused[0]!r}, not a shared training option"
        if hasattr(task, "moot_options"):
            moot = task.moot_options(dict(default_config(task, seed)))
            if not isinstance(moot, dict):
                return False, f"moot_options() returned {type(moot).__name__}, not a dict"
            odd = sorted(set(moot) - set(names) - set(SHARED_DEFAULTS))
            if odd:
                return False, (f"moot_options() names {odd[0]!r}, neither one of the "
                               f"task's options nor a shared one")
        try:
            predict_params(task)
        except UserError as e:
            return False, str(e)
        return True, f"{len(params)} options of its own, {len(defaults)} defaults"

    def prepare():
        facts["config"] = default_config(task, seed)
        state = task.prepare(facts["config"])
        if not isinstance(state, dict):
            return False, f"prepare() returned {type(state).__name__}, not a dict"
        facts["state"] = state
        return True, f"state keys: {', '.join(sorted(state)) or '(none)'}"

    def state_is_json():
        problem = not_json(facts["state"])
        if problem:
            return False, f"{problem} is not a JSON value: config.json would keep its text"
        facts["saved"] = saved_json(facts["state"])
        return True, f"{len(json.dumps(facts['saved']))} characters in config.json"

    def spec():
        spec = task.model_spec(facts["saved"], facts["config"])
        check_model_spec(spec)
        facts["spec"] = spec  # the checks after this one build the model from it
        return True, json.dumps(spec, sort_keys=True, default=json_default)

    def check_state():
        task.check_state(facts["saved"], facts["spec"])
        return True, "accepts the saved state"

    def batches(split):
        def check():
            config, state = facts["config"], facts["saved"]
            model = config.build_model(facts["spec"])
            model.eval()
            loss = config.loss_function(task)
            count = 0
            for batch in task.batches(state, split, config, _rng(seed)):
                if count < BATCHES_CHECKED:
                    _run_batch(model, loss, batch, count)
                count += 1
            facts.setdefault("counts", {})[split] = count
            if count == 0 and split == "train":
                return False, "no batches: a run would have nothing to train on"
            return True, f"{count} batches; the first {min(count, BATCHES_CHECKED)} run " \
                         f"through the model and --loss {loss.name}"
        return check

    def count_batches():
        wrong = {split: (task.count_batches(facts["saved"], split, facts["config"],
                                            _rng(seed)), n)
                 for split, n in facts["counts"].items()}
        wrong = {s: v for s, v in wrong.items() if v[0] != v[1]}
        if wrong:
            split, (said, made) = next(iter(wrong.items()))
            return False, f"{split}: count_batches says {said}, batches() made {made}"
        return True, "equals the number of batches of every split"

    def same_batches():
        config, state = facts["config"], facts["saved"]
        for split, rng in (("train", lambda: _rng(seed)), ("valid", lambda: None)):
            first = list(itertools.islice(task.batches(state, split, config, rng()),
                                          BATCHES_COMPARED))
            second = list(itertools.islice(task.batches(state, split, config, rng()),
                                           BATCHES_COMPARED))
            if len(first) != len(second) or not all(map(_same, first, second)):
                how = "the same seed" if split == "train" else "rng None"
                return False, (f"{split}: two calls with {how} gave other batches: batches "
                               f"must draw from its rng alone")
        return True, "same seed, same batches; rng None, same order"

    def evaluate():
        config = facts["config"]
        model = config.build_model(facts["spec"])
        model.eval()
        first = task.evaluate(facts["saved"], "valid", config, model.runner())
        if not isinstance(first, dict) or "loss" not in first:
            return False, "evaluate() must return a dict with a 'loss'"
        bad = [k for k, v in first.items() if not _numbers(v)]
        if bad:
            return False, f"evaluate()[{bad[0]!r}] is not a number or a list of numbers"
        if not math.isfinite(float(first["loss"])):
            return False, f"loss {first['loss']} of an untrained model is not finite"
        second = task.evaluate(facts["saved"], "valid", config, model.runner())
        if saved_json(first) != saved_json(second):
            return False, "two calls on the same model gave other figures"
        return True, ", ".join(f"{k} {float(v):.4g}" for k, v in first.items()
                               if np.ndim(v) == 0)

    def baselines():
        result = task.baselines(facts["saved"], "valid", facts["config"])
        problem = baselines_problem(result)
        if problem:
            return False, f"baselines() {problem}"
        return True, ", ".join(sorted(result)) or "(none)"

    runner.run("options", options)
    runner.run("prepare", prepare)
    if "state" not in facts:
        return runner.results
    runner.run("state is JSON", state_is_json)
    if "saved" not in facts:
        return runner.results
    runner.run("model spec", spec)
    if "spec" not in facts:
        return runner.results
    if hasattr(task, "check_state"):
        runner.run("check_state", check_state)
    for split in getattr(task, "splits", SPLITS):
        runner.run(f"batches {split}", batches(split))
    if hasattr(task, "count_batches") and facts.get("counts"):
        runner.run("count_batches", count_batches)
    runner.run("same batches", same_batches)
    runner.run("evaluate", evaluate)
    if hasattr(task, "baselines"):
        runner.run("baselines", baselines)
    return runner.results


def _rng(seed: int) -> np.random.Generator:
    """The generator of a run's first epoch (the trainer seeds [seed, epoch])."""
    return np.random.default_rng([int(seed), 0])


def _numbers(value) -> bool:
    array = np.asarray(value)
    return array.dtype.kind in "biuf" and array.size > 0


def _run_batch(model, loss, batch, index):
    """One batch through the model's forward and the loss, as a training step takes it;
    ValueError naming the batch and what is wrong."""
    problem = batch_problem(batch)
    if problem:
        raise ValueError(f"batch {index} is {problem}")
    lengths = batch.get("lengths")
    lengths = None if lengths is None else np.asarray(lengths, np.int64)  # as training does
    try:
        outputs, _ = model.forward(batch["x"], lengths=lengths, need_grad=False)
        mask = None
        if getattr(model, "output", None) == "sequence" and lengths is not None:
            mask = valid_mask(lengths, outputs.shape[0], outputs.shape[1])
        value, grad = loss.value_and_grad(outputs, batch["y"], mask)
    except ValueError as e:
        raise ValueError(f"batch {index}: {e}") from None
    if np.shape(grad) != np.shape(outputs):
        raise ValueError(f"batch {index}: the loss's gradient has shape {np.shape(grad)}, "
                         f"the outputs {np.shape(outputs)}")
    if not math.isfinite(float(value)):
        raise ValueError(f"batch {index}: the loss of an untrained model is {value}")
