"""Starting, resuming and loading training runs: the library entry points behind
`recurrent train / eval / predict`. Each checks what it is given once, before anything
is written, and hands a Trainer (or a model) back."""
from __future__ import annotations

import os

import numpy as np

from . import (__version__, averaging, candidates, datafile, ensemble, in_turn, moved_data,
               run_lock, selection, tuning)
from .checkpoint import (BEST, CONFIG_FILE, DIVERGED, LAST, RunCopy, RunDir, kept_state,
                         load_arrays, param_budget, read_json)
from .checks import one_line
from .config import TrainingConfig, check_model_spec, option_flags
from .errors import AllRanksError, UserError, error_line, task_check_hint
from .lengths import valid_mask
from .out_paths import check_outside_runs, shell_word
from .progress import warn_once
from .step import batch_problem, loss_result
from .task_params import PREFIX as TASK_PREFIX
from .task_params import TaskParams, from_arrays, owned
from .trainer import Trainer, check_checkpoint, load_params, nothing_left, task_state_of


def start_run(task, config: dict, out: str, echo=print, world=None) -> Trainer:
    """Prepare the task's data, check the options, create the run directory ``out`` and
    a Trainer for it. ``config``: resolved options (TrainingConfig.resolve). ``world``:
    the ranks of a data-parallel run (see parallel_trainer). A task that names
    candidates for these options (Task.candidates) gets a run that trains each and keeps
    the best on validation (recurrent/candidates.py); each is prepared and checked here,
    and one that cannot be (a window longer than a short series allows) is left out with
    a note on stderr while another can. The new run's training lock is held from its creation on, and the trainer's fit lets
    go of it (recurrent/run_lock.py). ``out`` inside another run's directory is refused
    (out_paths.check_outside_runs)."""
    check_outside_runs("--out", out)
    config = TrainingConfig(config)
    choices = candidates.overrides(task, config)
    prepared = []
    failed = []
    for k, override in enumerate(choices or [{}]):
        settings = TrainingConfig(dict(config, **override))
        try:
            prepared.append((override, settings.to_json(), *_prepared(task, settings)))
        except UserError as e:
            if not choices:
                raise
            failed.append((k, override, e))
    if failed and len(failed) == len(choices):  # the options given fail, whatever the choice
        raise _none_fits(failed)
    for k, override, e in failed:  # those that fit the data are chosen among, said so
        warn_once(f"candidate {k + 1}/{len(choices)} ({candidates.describe(override)}) left "
                  f"out: {e}")
    if failed and len(prepared) == 1:  # nothing left to choose: the plain run of that one
        choices = []
    if choices and ensemble.size(config) > 1:
        raise UserError(f"--ensemble {ensemble.size(config)}: this {task.name} run chooses "
                        f"among candidates ({'; '.join(map(candidates.describe, choices))}); "
                        f"give one of them to ensemble it")
    RunDir.make_directory(out)
    # the lock before any of the run's files: a resume of the run (or of a part) started
    # while they are being made, or a second `train --out` of it, is refused, not run
    keys = run_lock.hold_all([out])
    try:
        try:
            if choices:
                run = candidates.create(out, task, config.to_json(), prepared, __version__)
            else:
                _, settings, task_state, spec = prepared[0]
                if ensemble.size(config) > 1:
                    ensemble.check_members_new(out, config)
                run = RunDir.create(out, task.name, settings, task_state, spec, __version__)
        except UserError:
            # a run at ``out`` (made before, or by another process meanwhile) is refused
            # as the run, not by the first of its parts checked: resuming a part alone
            # would train that part only
            RunDir.check_new(out)
            raise
        if not choices and ensemble.size(config) > 1:
            ensemble.write_members(run, fresh=True)
        return _locked(_trainer(task, run, echo, world), keys)
    except BaseException:
        run_lock.release_all(keys)
        raise


def _none_fits(failed: list) -> UserError:
    """The one error when no candidate can be prepared (``failed``: (index, override,
    UserError) of each): theirs when they all say the same (an option of the user's that
    none can take), else each distinct one in the candidates' order, so that the line
    names what the least demanding candidate needs, not only the first one's."""
    texts = list(dict.fromkeys(str(e) for _, _, e in failed))
    if len(texts) == 1:
        return failed[0][2]
    # the words they all start with said once, before what differs (an option whole)
    head = os.path.commonprefix(texts)
    head = head[:head.rfind(" ") + 1]
    while head.rstrip().rsplit(" ", 1)[-1].startswith("-"):
        head = head.rstrip()[:head.rstrip().rfind(" ") + 1]
    return UserError(f"none of the {len(failed)} candidates fits: {head}"
                     + "; ".join(t[len(head):] for t in texts))


def _prepared(task, config: TrainingConfig) -> tuple[dict, dict]:
    """(task state, model spec) of these options, every check done that can fail before
    the run directory is made."""
    # fail on bad options before reading the data, and on model settings or loss names
    # before making the run directory
    config.check(task)
    config.check_new(task)
    task_state = kept_state(task.name, "prepare", task.prepare(config))
    spec = task.model_spec(task_state, config)
    try:
        check_model_spec(spec)
    except ValueError as e:
        raise UserError(f"task {task.name!r} gave a bad model spec: {e}") from None
    if hasattr(task, "check_state"):  # every later opening of the run calls it
        try:
            task.check_state(task_state, spec)
        except ValueError as e:
            raise UserError(f"task {task.name!r} refuses the state its own prepare() made: "
                            f"{one_line(e)} ({task_check_hint(task.name)})") from None
    _check_loss_fits(task, task_state, config, spec)
    _check_average_covers(task, task_state, config)
    _check_selection(task, task_state, config, spec)
    ensemble.check(task, owned(task, task_state, config), config, spec)
    return task_state, spec


def _trainer(task, run: RunDir, echo, world):
    """A Trainer for a plain run, an EnsembleTrainer for an ensemble's, a
    CandidatesTrainer for a run still choosing among candidates."""
    info = run.info()
    tuning.use_for_run(info.get("kernel"), run.file(CONFIG_FILE))
    if candidates.pending(info):
        return candidates.CandidatesTrainer(task, run, echo, world)
    if ensemble.size(info["config"]) > 1:
        return ensemble.EnsembleTrainer(task, run, echo, world)
    return Trainer(task, run, echo, world)


def resume_run(task, run: RunDir, echo=print, changes: dict | None = None,
               world=None) -> Trainer:
    """A Trainer continuing ``run``; ``changes``: options given again (only those in
    config.RESUMABLE may differ), saved in the run before it continues. Its checkpoint
    (each part's, in a run of parts) must load; a run (or part) that has none yet
    starts from the beginning with its saved options (Trainer.fit). Refused while
    another process trains ``run`` or one of its parts (recurrent/run_lock.py): their
    locks are taken before anything is written, and the trainer's fit lets go of them
    (a trainer never fitted keeps them until the process ends)."""
    keys = run_lock.hold_all([run.path] + _part_paths(run))
    try:
        return _locked(_resumed(task, run, echo, changes, world), keys)
    except BaseException:
        run_lock.release_all(keys)
        raise


def _part_paths(run: RunDir) -> list[str]:
    """The directories of a run's candidates or members ([] for a plain run)."""
    info = run.info()
    count = len(candidates.pending(info))
    if count:
        return [candidates.candidate_path(run.path, k) for k in range(count)]
    count = ensemble.size(info["config"])
    return [ensemble.member_path(run.path, k) for k in range(count)] if count > 1 else []


def _locked(trainer, keys: list):
    """``trainer`` holding the run locks ``keys`` until its fit returns (run_lock.locked)."""
    trainer.setup_locks = keys
    return trainer


def _resumed(task, run: RunDir, echo, changes, world) -> Trainer:
    """resume_run once the run's training lock is held."""
    info = run.info()
    if info.get("imported_from"):  # its best.npz holds weights only
        raise UserError(f"{run.path} was made by `recurrent import` from "
                        f"{info['imported_from']} and holds no training state: --resume "
                        f"needs the original run")
    config = TrainingConfig.from_json(info["config"], run.file(CONFIG_FILE))
    moved = moved_data.moved_files(task, info["task_state"], changes or {})
    if moved:  # a part's data moves with its run's
        moved_data.check_whole(run.path, ensemble.whole_of(run.path)
                               or candidates.choosing_run_of(run.path), moved,
                               option_flags(task))
    else:
        moved_data.check_present(task, info["task_state"], run.path, "--data NEW")
    if changes:
        resolved = (task.resolved_options(info["task_state"])
                    if hasattr(task, "resolved_options") else {})
        read = task.read_files(info["task_state"]) if hasattr(task, "read_files") else {}
        config = config.resumed(changes, resolved, option_flags(task),
                                (info.get(candidates.CHOSE) or {}).get("given"), read, moved)
    try:
        config.check(task)
    except UserError as e:
        # a value saved in config.json (edited or damaged) is named as read from there;
        # one the user gave again is theirs
        saved = TrainingConfig.from_json(info["config"], run.file(CONFIG_FILE))
        try:
            saved.check(task)
        except UserError as f:
            if str(f) == str(e):
                raise UserError(f"{e} (read from {run.file(CONFIG_FILE)})") from None
        raise
    # rank 0's check (parallel_trainer): the run's data is read again by every rank
    data = config.get("data")
    ranks = world.size if world is not None else 1  # None: one process (the Python API)
    datafile.check_every_rank_reads(data if isinstance(data, str) else None, ranks,
                                    f"the run {run.path}",
                                    "resume it on one process, without --ranks (or mpiexec)")
    if changes:
        ensemble.check_member_plan(run, info["config"], config)
        candidates.check_candidate_plan(run, info["config"], config)
    # the data read from its new place, checked before anything is written; the parts
    # are matched to the run as they will be once it is saved
    present = [RunDir.open(path) for path in _part_paths(run)
               if os.path.isfile(os.path.join(path, CONFIG_FILE))]
    moving = moved_data.moved_runs(task, [run] + present, moved, config, option_flags(task))
    infos = {path: moved_data.moved_info(RunDir(path).info(), entry)
             for path, entry in moving.items()}
    states = {path: state for path, (_, state) in moving.items()}
    # every part checked before anything is written: a refused resume changes no file
    parts = candidates.check(run, infos) if candidates.pending(info) else None
    if parts is not None and candidates.all_diverged(run):
        raise UserError(in_turn.all_diverged_text(run.path, "candidate"))
    if parts is None and ensemble.all_diverged(run):
        raise UserError(in_turn.all_diverged_text(run.path, "member"))
    if parts is not None:
        resumed = parts
    elif ensemble.size(config) > 1:
        resumed = ensemble.member_runs(run, missing_ok=True, infos=infos)
    else:
        resumed = [run]
    left = []  # nothing_left of each part that trains (a diverged one is left out)
    read = None  # last.npz of a plain run as the check read it, for its Trainer
    for part in resumed:  # each checkpoint readable (a part without one starts anew)
        position, read = check_checkpoint(task, part, states.get(part.path))
        if not part.has(DIVERGED):
            left.append((position, nothing_left(position, config)))
        for key, done in (("steps", position.step), ("epochs", position.epoch)):
            limit = int(config.get(key) or 0)
            if changes and changes.get(key) is not None and 0 < limit < done:
                # it would train nothing, yet record a limit its checkpoint has passed
                raise UserError(f"--{key} {limit}: {part.path} has trained {done} {key} "
                                f"already (--{key} counts from the run's start: {done} "
                                f"ends it where it stands, more extends it)")
    # a run with no step left to train (nor candidates left to choose from) is left as
    # it is: the options given, which would change nothing it does, are not saved
    ended = (parts is None and len(resumed) == max(1, ensemble.size(config))
             and all(text for _, text in left)
             and (len(resumed) == 1 or ensemble.combined_record(
                 run, [position.step for position, _ in left]) is not None))
    if changes and not ended:
        run.update_config(config.to_json())
    # the new place is saved even in an ended run, whose other options are not: later
    # commands (eval, predict) read the run's data from it
    for path, (options, state) in moving.items():  # before write_members matches the parts
        part = RunDir(path)
        part.update_info(config=dict(part.info()["config"], **options), task_state=state)
    if parts is not None:
        candidates.update(parts, candidates.pending(info), config.to_json())
    elif ensemble.size(config) > 1 and not ended:
        ensemble.write_members(run, fresh=False)
    trainer = _trainer(task, run, echo, world)
    if resumed == [run]:
        # a plain run restores what its check read; the parts of an ensemble or of a run
        # choosing among candidates read theirs as each trains, so that their
        # checkpoints are not all held at once
        trainer.checkpoint = read
    trainer.plan = config  # the options asked for, which an ended run does not save
    trainer.moved_saved = bool(ended and moving)  # what the ended summary says
    return trainer


def parallel_trainer(task, world, make) -> Trainer:
    """The Trainer of this rank of a data-parallel run. Rank 0 calls ``make()`` (start_run
    or resume_run with this ``world``: it checks the options and creates or reopens the
    run directory); the other ranks receive what rank 0 knows of the run and train
    silently. A UserError on rank 0 reaches every rank as an AllRanksError, so no rank
    is left waiting."""
    if world.size == 1:
        return make()
    trainer = payload = None
    if world.is_root:
        try:
            trainer = make()
            payload = (None, trainer.run.path, trainer.run.info())
        except UserError as e:
            payload = (str(e), None, None)
    message, path, info = world.bcast(payload, watched=False)  # rank 0 prepares the data
    if message is not None:
        raise AllRanksError(message)
    return trainer or _trainer(task, RunCopy(path, info), lambda line: None, world)


def checkpoint_file(run: RunDir, which: str) -> str:
    """The checkpoint load_model reads for ``which`` ("best" or "last"): best.npz, or
    last.npz when the run has no best one yet (stopped before its first evaluation)."""
    return BEST if which == "best" and run.has(BEST) else LAST


NOT_EVALUATED = "stopped before its first evaluation"


def without_best(model) -> list[RunDir]:
    """The run, or those of an ensemble's members, whose "best" parameters load_model read
    from last.npz (``model``: what it returned). Recorded when it chose the file: a run
    read while it trains may write its first best.npz after that choice."""
    return list(model.best_from_last)


def best_missing_reason(model, config) -> str | None:
    """Why load_model(run, "best") read last.npz of the run or of a member (``model``:
    what it returned; None when it did not): evaluations whose --select-by figure was
    never finite (selection.improves: none of them made a best checkpoint; metrics.jsonl
    records such a figure as null), a best.npz that an evaluation saved and that is gone
    since (load_model's ``best_lost``), else NOT_EVALUATED."""
    missing = without_best(model)
    if not missing:
        return None
    metric = selection.parse(config.get("select_by")).metric
    figures = [r["metrics"].get(metric) for r in missing[0].read_metrics()
               if r.get("kind") == "eval" and isinstance(r.get("metrics"), dict)]
    if model.best_lost:  # saved by an evaluation, gone since (deleted, moved away)
        path = model.best_lost[0].file(BEST) if len(missing) == 1 else BEST
        return (f"{path} is missing, though an evaluation saved it; restore it for the "
                f"best parameters")
    if figures and all(figure is None for figure in figures):
        return f"valid {metric} was not a finite number at any evaluation"
    return NOT_EVALUATED


def best_missing_note(model, config) -> str | None:
    """The note predict and export print (on stderr) when the best parameters they asked
    load_model for (``model``: what it returned) were last.npz's (best_missing_reason),
    else None."""
    reason = best_missing_reason(model, config)
    if reason is None:
        return None
    yet = " yet" if reason == NOT_EVALUATED else ""
    # an ensemble's note names the members that have none (the others use theirs)
    missing = [part.path for part in without_best(model)]
    has = "has" if len(missing) == 1 else "have"
    return (f"note: {', '.join(missing)} {has} no best checkpoint{yet} ({reason}): using "
            f"the latest parameters, {LAST}")


def left_out_note(model) -> str | None:
    """The note predict and export print (on stderr) when the ensemble load_model returned
    (``model``) leaves out members whose training diverged, else None."""
    if not model.left_out:
        return None
    return "note: " + ensemble.left_out_text([m.path for m in model.left_out],
                                             len(model.members))


def diverged_note(run: RunDir) -> str | None:
    """The note on ``run`` read alone when it is an ensemble's member whose training
    diverged (its DIVERGED record, in_turn.train): its parameters are those of its last
    good checkpoint, and the ensemble leaves it out (ensemble.kept_members); else None."""
    if not run.has(DIVERGED):
        return None
    whole = ensemble.whole_of(run.path)
    if whole is None:
        return None
    try:
        step = read_json(run.file(DIVERGED)).get("step")
    except UserError:  # a damaged record: the fact that it diverged is still known
        step = None
    at = (f" after step {step} (its last good step)"
          if isinstance(step, int) and not isinstance(step, bool) else "")
    return (f"note: {run.path} diverged in training{at} and is left out of the ensemble "
            f"{whole.path}")


def warn_best_missing(model, config, told: set | None = None) -> None:
    """Say on stderr when the "best" parameters load_model read (``model``: what it
    returned) were last.npz's, and why (best_missing_note), which diverged members
    an ensemble leaves out (left_out_note), and that a member read alone is one
    (diverged_note); ``told``: notes already said, not said again
    (a program's many predictions of one run), the notes added."""
    from .progress import warn_once
    told = set() if told is None else told
    for note in (left_out_note(model), getattr(model, "diverged_note", None),
                 best_missing_note(model, config)):
        if note and note not in told:
            told.add(note)
            warn_once(note)


def load_model(run: RunDir, which: str = "best", threads=None, precision="fp32"):
    """(model, info) of a run in eval mode: the best parameters if any, else the last ones
    (for an ensemble run, an EnsembleModel of its members loaded so, but those whose
    training diverged), whose ``best_from_last`` lists the parts whose best parameters
    were last.npz's (without_best) and ``left_out`` the ensemble's members left out
    (left_out_note). precision: of its inference (SequenceModel.precision); UserError
    for a model or cell without that precision."""
    info = run.info()
    config = TrainingConfig.from_json(info["config"], run.file(CONFIG_FILE))
    tuning.use_for_run(info.get("kernel"), run.file(CONFIG_FILE))
    overrides = candidates.pending(info)
    if overrides and candidates.all_diverged(run):
        raise UserError(in_turn.all_diverged_text(run.path, "candidate"))
    if overrides:
        raise UserError(f"{run.path} is still choosing among {len(overrides)} candidates "
                        f"({'; '.join(map(candidates.describe, overrides))}): finish it "
                        f"with `recurrent train --resume {shell_word(run.path)}`, or use "
                        f"one of its candidates "
                        f"({shell_word(candidates.candidate_path(run.path, 0))} ...)")
    if ensemble.size(config) > 1:
        from .plugins import get_loss
        kept, left_out = ensemble.kept_members(run)
        members = [load_model(member, which, threads, precision)[0] for member in kept]
        model = ensemble.EnsembleModel(members, get_loss(loss_name(info)))
        model.best_from_last = [part for member in members for part in member.best_from_last]
        model.best_lost = [part for member in members for part in member.best_lost]
        model.left_out = left_out
        model.kept = kept  # the member directories of model.members, in order
        return model, info
    config["threads"] = threads if threads is not None else config.get("threads")
    # the checkpoint's parameters replace the initial ones below, so the initial forget-gate
    # bias is not set: a saved value a resume refuses (beyond float32) stays harmless here
    config["forget_bias"] = None
    # the run's --precision is how it trained; inference runs in the one asked for here
    config["precision"] = "fp32"
    name = checkpoint_file(run, which)
    budget = param_budget(run.file(name))  # sizes beyond the checkpoint's: refused
    try:
        with budget:
            model = config.build_model(info["model_spec"])
    except UserError as e:  # only the saved options and spec can be wrong here
        raise UserError(f"{e} (read from {run.file(CONFIG_FILE)})") from None
    if not run.has(name):
        if info.get("imported_from") and run.has(DIVERGED):  # an ensemble's member left out
            raise UserError(f"{run.path} diverged in training and is left out of its "
                            f"ensemble: {info['imported_from']}, which it was imported "
                            f"from, holds no parameters of it")
        if info.get("imported_from") and not run.has(BEST):  # an import cut short
            raise UserError(f"{run.path} was made by `recurrent import` but has no {BEST} "
                            f"(the import was cut short): import {info['imported_from']} "
                            f"again into a new directory")
        if info.get("imported_from"):
            raise UserError(f"{run.path} was made by `recurrent import` and holds {BEST} "
                            f"only (no {LAST}: no training state)")
        if run.has(BEST):  # --checkpoint last, and last.npz removed since
            raise UserError(f"{run.path} has no {LAST} (its {BEST} is there: leave out "
                            f"--checkpoint last)")
        raise UserError(f"{run.path} has no checkpoint yet ({LAST} is missing)")
    arrays, meta = load_arrays(run.file(name))
    load_params(model, arrays, run.file(name))
    _check_task_params(info, config, arrays, run.file(name))
    if any(k.startswith(TASK_PREFIX) for k in arrays):  # the task's trained parameters
        from .plugins import get_task
        info = {**info, "task_state": task_state_of(get_task(info["task"]),
                                                    info["task_state"], arrays)}
    model.eval()
    # the choice made above, for the notes on it (without_best)
    model.best_from_last = [run] if which == "best" and name == LAST else []
    # of those, a run whose last.npz records a best evaluation (its position's best_loss,
    # null until one) and that still has no best.npz: the trainer saves best.npz before
    # the last.npz of that evaluation, so best.npz was there and is gone
    # (best_missing_reason)
    model.best_lost = ([run] if model.best_from_last and meta.get("best_loss") is not None
                       and not run.has(BEST) else [])
    model.left_out = []  # an ensemble's members that diverged (ensemble.kept_members)
    model.diverged_note = diverged_note(run)  # this run is one of those, read alone
    if precision != "fp32":
        if not hasattr(model, "precision"):
            raise UserError(f"--precision {precision}: {info['task']} runs have no "
                            f"{precision} path (fp32 only)")
        try:
            model.precision = precision
        except ValueError as exc:
            raise UserError(one_line(exc)) from None
    return model, info


def _check_task_params(info: dict, config, arrays: dict, path: str) -> None:
    """UserError when the task's trained parameters in a checkpoint (its "task/<name>"
    arrays) are not those this run trains: missing, unexpected, misshapen or not finite,
    as a resume checks them (TaskParams.load). An imported run holds them in its task
    state instead, folded in at export, and its checkpoint has none."""
    from .plugins import get_task
    values = from_arrays(arrays)
    expected = owned(get_task(info["task"]), info["task_state"], config)
    if not values and (not expected or info.get("imported_from")):
        return
    try:
        TaskParams(expected).load(values, f"checkpoint {path}")
    except ValueError as e:
        raise UserError(one_line(e)) from None


def loss_name(info: dict) -> str:
    """The loss a run trained with, from its config.json contents (a run made through
    the library may leave it to the task's default), resolved as training resolves it
    (TrainingConfig.loss_function)."""
    from .plugins import get_task
    return TrainingConfig(info["config"]).loss_function(get_task(info["task"])).name


def _check_average_covers(task, task_state, config) -> None:
    """UserError for --average in a run that also trains the task's own parameters
    (Task.trained_params): the average covers the network's parameters only, and a
    checkpoint of averaged network and last task parameters would pair values from
    different points of the trajectory."""
    if averaging.parse(config.get("average", averaging.OFF)) is None:  # off
        return
    own = owned(task, task_state, config)
    if own:
        option = getattr(task, "fixed_params_option", None)
        fixed = f"{option} (keeps them fixed)" if option else \
            "the task's option that keeps them fixed"
        raise UserError(f"--average cannot be used in this {task.name} run: it also trains "
                        f"the task's own parameters ({', '.join(sorted(own))}), which "
                        f"the average does not cover; use --average off, or {fixed}")


def _check_selection(task, task_state, config, spec) -> None:
    """UserError when --select-by names a metric the task's validation metrics lack: one
    evaluation of a throwaway model on the validation split, before the run directory
    exists (only when the choice is not the loss, which every task reports)."""
    chosen = selection.parse(config.get("select_by"))
    if chosen.is_loss:
        return
    model = config.build_model(spec)
    model.eval()
    chosen.checked_score(task.evaluate(task_state, "valid", config, model.runner()))


TARGET_KINDS = {"class": "class ids", "dense": "values of the outputs' shape"}


def _target_kind(targets: np.ndarray, output_shape: tuple) -> str | None:
    """"dense" for targets of the outputs' shape, "class" for integer ones of the outputs'
    leading shape, None for neither (the loss's own check then names the shape)."""
    if targets.shape == tuple(output_shape):
        return "dense"
    if targets.shape == tuple(output_shape[:-1]) and targets.dtype.kind in "iu":
        return "class"
    return None


def _plugin_cell(name: str) -> tuple[str, str] | None:
    """(plugin, version) of the third-party plugin that registered cell ``name``; None
    for a built-in cell."""
    from . import plugins
    entry = plugins.provided({"cell": name}).get("cell")
    return None if entry is None else (entry["plugin"], entry["version"])


def _finite_or_ids(x) -> bool:
    """True when a batch's input ``x`` holds no NaN or inf (token ids always)."""
    x = np.asarray(x)
    return x.dtype.kind != "f" or bool(np.all(np.isfinite(x)))


def _cell_failed(cell: str, plugin: tuple[str, str], task, problem: str) -> str:
    """The one line that names a plugin cell failing on the task's first training batch."""
    return (f"cell {cell!r} (plugin {plugin[0]} {plugin[1]}) failed on task {task.name!r}'s "
            f"first training batch: {problem} (`recurrent plugins check {cell}` checks the "
            f"cell)")


def _refuse_failed_cell(exc: BaseException, task, config) -> None:
    """UserError naming the cell when ``exc`` was raised in the code of the plugin that
    registered it (the model's passes run no task code); returns otherwise."""
    from . import plugins
    culprit = plugins.plugin_in_traceback(exc)
    plugin = _plugin_cell(config["cell"])
    if culprit is not None and plugin is not None and culprit[0] == plugin[0]:
        # a ValueError's message says what is wrong; another type is a bug, named by it
        text = one_line(exc) if isinstance(exc, ValueError) else error_line(exc)
        raise UserError(_cell_failed(config["cell"], plugin, task, text)) from None


def _check_loss_fits(task, task_state, config, spec) -> None:
    """UserError when the model settings are bad or the loss cannot score the task's
    targets (e.g. --loss mse for class ids): one forward pass of a throwaway model on the
    first training batch, before the run directory exists."""
    model = config.build_model(spec)
    loss = config.loss_function(task)
    rng = np.random.default_rng([int(config["seed"]), 0])
    batch = next(iter(task.batches(task_state, "train", config, rng)), None)
    if batch is None:
        return  # the trainer reports a task without training batches
    problem = batch_problem(batch)
    if problem:
        raise UserError(f"task {task.name!r} gave a first training batch that is {problem} "
                        f"({task_check_hint(task.name)})")
    lengths = batch.get("lengths")
    lengths = None if lengths is None else np.asarray(lengths, np.int64)
    model.eval()
    try:
        outputs, _ = model.forward(batch["x"], lengths=lengths, need_grad=False)
    except Exception as e:
        _refuse_failed_cell(e, task, config)
        if not isinstance(e, ValueError):
            raise
        # a ValueError outside the cell's plugin: the task's batch, not the user's options
        raise UserError(f"task {task.name!r} gave a first training batch the model cannot "
                        f"take: {one_line(e)} ({task_check_hint(task.name)})") from None
    plugin_cell = _plugin_cell(config["cell"])
    if (plugin_cell is not None and not np.all(np.isfinite(outputs))
            and _finite_or_ids(batch["x"])):
        raise UserError(_cell_failed(config["cell"], plugin_cell, task,
                                     "its outputs hold NaN or inf, from finite inputs and "
                                     "freshly initialised parameters"))
    mask = None
    if model.output == "sequence" and lengths is not None:
        mask = valid_mask(lengths, outputs.shape[0], outputs.shape[1])  # (T, B)
    # A loss declaring the other kind of target (protocols.Loss.target_kind) is refused
    # before it runs: a plugin's loss need not check the targets it is given. The kind is
    # read from the targets' shape, as the protocol defines it: integer or bool 0/1 labels
    # of the outputs' shape (multi-label) are dense targets, not class ids.
    declared = getattr(loss, "target_kind", None)
    given = _target_kind(np.asarray(batch["y"]), np.shape(outputs))
    if (declared in TARGET_KINDS and given is not None and declared != given
            and loss.name != task.loss):
        raise UserError(f"--loss {loss.name} does not fit task {task.name!r} (its default "
                        f"is {task.loss}): it takes {TARGET_KINDS[declared]}, the task's "
                        f"targets are {TARGET_KINDS[given]}")
    try:
        _, d_outputs = loss_result(loss, loss.value_and_grad(outputs, batch["y"], mask),
                                   outputs)
    except ValueError as e:
        if loss.name == task.loss:  # the task's own loss: the task's targets are wrong
            raise UserError(f"task {task.name!r} gave a first training batch whose targets "
                            f"its loss {loss.name} cannot take: {one_line(e)} "
                            f"({task_check_hint(task.name)})") from None
        raise UserError(f"--loss {loss.name} does not fit task {task.name!r} (its default "
                        f"is {task.loss}): {one_line(e)}") from None
    if plugin_cell is not None:
        # a plugin cell's backward, which the forward above did not run: one training
        # pass of the throwaway model, so that a backward raising in the plugin's code
        # is named here rather than after the run directory is made
        try:
            model.forward(batch["x"], lengths=lengths, need_grad=True)
            model.backward(np.asarray(d_outputs, dtype=outputs.dtype))
        except Exception as e:
            _refuse_failed_cell(e, task, config)
            # anything else is left to the trainer, which reports it as it always does
