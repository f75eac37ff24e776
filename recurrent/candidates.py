"""Runs that choose among candidates: a task may name option values that only training
can decide between (Task.candidates); the run then trains one candidate per value and
keeps the one that scores best on the validation split.

Layout of such a run directory RUN while it trains:
  RUN/config.json      the options as given, with "candidates": the list of option
                       overrides, one per candidate (its task state and model spec are
                       candidate 0's, until the choice)
  RUN/candidate-0 ... RUN/candidate-{n-1}
                       each a complete run directory (recurrent/checkpoint.py) whose
                       options are the run's with that candidate's overrides, prepared
                       and checked on its own, trained with the run's seed: candidate k is
                       the plain run given its overrides explicitly, bit for bit.

When every candidate has trained, each one's finished model (its best checkpoint, with
the task state its after_training left) is evaluated on the validation split and scored
by the run's --select-by, the figure `recurrent eval CANDIDATE --split valid` shows; the
best wins, the lowest or, for NAME:max, the highest (a tie goes to the earlier
candidate). A candidate whose training diverges (a loss or gradient that is not finite:
errors.Diverged) is left out, said in one line, and scored as None; only when every
candidate diverges does the run stop, with the first one's message. RUN then becomes a
copy of the winner: its checkpoints, metrics.jsonl and loss plot, and last its
config.json, with "chose" recording every candidate's overrides and score and the index
kept. From then on RUN is a plain run:
eval, predict, export and --resume (which continues the winner in RUN) treat it as one;
the candidate directories stay as the record.

A Ctrl-C between or within candidates stops with the checkpoints saved; --resume RUN
goes on from there, continuing a candidate that had started and leaving those that had
ended (or diverged: in_turn.py) as they are, so the interrupted run ends as the
uninterrupted one would. Meanwhile a candidate resumed alone keeps the run's plan
(check_candidate_plan), so the candidates compared all trained to it.
"""
from __future__ import annotations

import math
import os
import shutil

from . import in_turn, run_lock
from .checkpoint import (BEST, CONFIG_FILE, LAST, METRICS, RunCopy, RunDir, atomic_write,
                         part_of, write_json)
from .errors import AllRanksError, UserError
from .figures import counted, format_value
from .interrupt import Interrupt
from .loss_plot import PLOT_FILE
from .moved_data import stopped_move
from .selection import improves

CANDIDATE_DIR = "candidate-{}"
PENDING = "candidates"  # config.json key of a run that has not chosen yet
CHOSE = "chose"  # config.json key of the choice a run made
COPIED = (LAST, BEST, METRICS, PLOT_FILE)  # what RUN takes from the winner (config last)
DIVERGED_TEXT = "diverged"  # how a candidate left out is shown in place of its score


def overrides(task, config) -> list[dict]:
    """The option overrides of the candidates ``task`` names for these options
    (Task.candidates), [] for a plain run; UserError for a malformed list (a plugin
    bug)."""
    if not hasattr(task, "candidates"):
        return []
    named = task.candidates(config)
    if not named:
        return []
    if (not isinstance(named, list) or len(named) < 2
            or not all(isinstance(o, dict) and o for o in named)):
        raise UserError(f"task {task.name!r} named bad candidates {named!r}: expected a "
                        f"list of two or more non-empty dicts of option overrides")
    return [dict(o) for o in named]


def describe(override: dict) -> str:
    """'--inputs level': a candidate's overrides as command-line options (a boolean as
    its flag, '--wide-scale' / '--no-wide-scale')."""
    words = []
    for key, value in override.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no-{name}")
        else:
            words.append(f"--{name} {value}")
    return " ".join(words)


def candidate_path(path: str, k: int) -> str:
    return os.path.join(path, CANDIDATE_DIR.format(k))


def pending(info: dict) -> list[dict]:
    """The overrides of a run that still has to train its candidates and choose ([] for a
    plain run or one that has chosen)."""
    return list(info.get(PENDING) or [])


def all_diverged(run: RunDir) -> bool:
    """Whether every candidate of a run still choosing has diverged in training, so that
    a resume cannot finish it (in_turn.all_diverged)."""
    count = len(pending(run.info()))
    return in_turn.all_diverged([candidate_path(run.path, k) for k in range(count)])


def create(path: str, task, config: dict, prepared: list, version: str) -> RunDir:
    """The run directory ``path`` of a run choosing among candidates: first each
    candidate's run directory, then RUN/config.json with the options as given and the
    overrides (the write that makes RUN a run). ``prepared``: (overrides, options, task
    state, model spec) per candidate, already checked."""
    for k in range(len(prepared)):  # all checked before the first write
        _check_candidate_new(path, k)
    RunDir.make_directory(path)
    made = []  # the candidates' directories this call began to make
    try:
        for k, (_, options, task_state, spec) in enumerate(prepared):
            made.append(candidate_path(path, k))
            RunDir.create(made[-1], task.name, options, task_state, spec, version)
        _, _, task_state, spec = prepared[0]
        return RunDir.create(path, task.name, config, task_state, spec, version,
                             extra={PENDING: [o for o, _, _, _ in prepared]})
    except BaseException:
        if not os.path.exists(os.path.join(path, CONFIG_FILE)):
            _remove_made(made)
        raise


def _remove_made(paths: list[str]) -> None:
    """Take back the candidates ``create`` made before it failed or was stopped (a
    Ctrl-C, a SIGTERM, a full disk) ahead of the run's own config.json, so that the
    same --out can be given again: each one's config.json, then its directory when that
    is left empty. Each was checked to hold no run before (_check_candidate_new), and
    the run's lock (runs.start_run) keeps another process from making one meanwhile."""
    for candidate in paths:
        for remove, target in ((os.remove, os.path.join(candidate, CONFIG_FILE)),
                               (os.rmdir, candidate)):
            try:
                remove(target)
            except OSError:
                pass


def _check_candidate_new(path: str, k: int) -> None:
    """UserError unless candidate k of a new run at ``path`` may be made; a candidate left
    by a `train --out` stopped while it made the candidates (before the run's own
    config.json) is named as that, since neither it nor the run can be resumed."""
    candidate = candidate_path(path, k)
    if (os.path.exists(os.path.join(candidate, CONFIG_FILE))
            and not os.path.exists(os.path.join(path, CONFIG_FILE))):
        raise UserError(f"{path} holds {CANDIDATE_DIR.format(k)} but no {CONFIG_FILE}: a "
                        f"`train --out {path}` was stopped while it made its candidates; "
                        f"remove {path} or choose another --out")
    RunDir.check_new(candidate)


def check(run: RunDir, infos: dict | None = None) -> list[RunDir]:
    """Every candidate's run directory, each checked to be there and to belong to the
    run (before a resume writes anything; ``infos``: _matching's)."""
    return [_matching(run, k, infos) for k in range(len(pending(run.info())))]


def update(candidates: list[RunDir], overrides: list[dict], config: dict) -> None:
    """After options changed on resume: each candidate's options brought up to date
    (config.RESUMABLE ones only; ``candidates`` from check())."""
    for candidate, override in zip(candidates, overrides):
        candidate.update_config(dict(config, **override))


def _matching(run: RunDir, k: int, infos: dict | None = None) -> RunDir:
    """Candidate k's run directory, checked to be there and to have the run's task and
    options with its overrides (but those that may change on resume); ``infos``: the
    contents of config.json files to judge by in place of what they hold, by run path
    (those of a resume moving the run's data, once moved: moved_data.moved_runs)."""
    from .config import RESUMABLE
    infos = infos or {}
    info = infos.get(run.path) or run.info()
    override = pending(info)[k]
    path = candidate_path(run.path, k)
    if not os.path.exists(os.path.join(path, CONFIG_FILE)):
        raise UserError(f"{run.path} chooses among {len(pending(info))} candidates and "
                        f"{CANDIDATE_DIR.format(k)} is missing")
    candidate = RunDir.open(path)
    ours, theirs = dict(info["config"], **override), infos.get(path) or candidate.info()
    differs = ["task"] if theirs["task"] != info["task"] else []
    keys = set(ours) | set(theirs["config"])
    differs += [f"option {key}" for key in sorted(keys - set(RESUMABLE))
                if ours.get(key) != theirs["config"].get(key)]
    if differs:
        why = (stopped_move(run.path, info, theirs)
               or f"its {differs[0]} differs from the run's")
        raise UserError(f"{path} does not belong to the run {run.path}: {why}")
    return candidate


def choosing_run_of(path: str) -> RunDir | None:
    """The run still choosing among candidates whose candidate ``path`` is (a directory
    named candidate-k inside a run with more than k pending candidates), or None."""
    part = part_of(path, CANDIDATE_DIR)
    if part is None:
        return None
    whole, k = part
    return whole if k < len(pending(whole.info())) else None


def check_candidate_plan(run: RunDir, before: dict, after: dict) -> None:
    """UserError when ``run`` is a candidate of a run still choosing and resuming it alone
    would change its plan (config.PLAN; ``before``, ``after``: its options then and with
    the changes): the candidates are scored against each other, so each trains to the
    run's plan, which a resume of the run passes on to every candidate."""
    from .config import check_part_plan
    check_part_plan(run, before, after, choosing_run_of, "a candidate of the run {whole}, "
                    "still choosing among candidates that train to one plan", "candidate")


def choose(scores: list[float]) -> int:
    """The index of the lowest score (a tie: the earliest); a score that is not finite
    never wins (selection.improves) unless no score is finite."""
    best = 0
    for k, score in enumerate(scores):
        if improves(score, scores[best]):
            best = k
    return best


def adopt(run: RunDir, k: int, scores: list[float], select_by: str) -> None:
    """Make ``run`` a copy of candidate k (module docstring): its files, each written
    whole or not at all, then its config.json with the record of the choice (``scores``:
    each candidate's validation figure as measured, None for one that diverged). Files
    the winner lacks are removed, so a copy cut short and redone leaves nothing of
    another state."""
    info = run.info()
    source = RunDir(candidate_path(run.path, k))
    for name in COPIED:
        if source.has(name):
            with open(source.file(name), "rb") as f:
                atomic_write(run.file(name), lambda out: shutil.copyfileobj(f, out))
        elif run.has(name):
            os.remove(run.file(name))
    chosen = source.info()
    # "given": the values of the chosen options as the run was started with them (e.g.
    # --window auto), which a resume may give again without changing anything
    keys = sorted({key for override in pending(info) for key in override})
    # "diverged": the candidates left out; the others' scores are numbers, or null where
    # the figure was not a finite number (config.json is strict JSON: write_json)
    chosen[CHOSE] = {"candidates": pending(info), "scores": scores, "chosen": k,
                     "select_by": select_by,
                     "diverged": [j for j, score in enumerate(scores) if score is None],
                     "given": {key: info["config"].get(key) for key in keys}}
    write_json(run.file(CONFIG_FILE), chosen)


def chosen_text(info: dict) -> str | None:
    """'chosen on validation: --inputs relative (valid loss 0.2357) over --inputs level
    (valid loss 0.2558)': the choice a run made, for `recurrent eval`; None for a run
    that made none."""
    from . import selection
    record = info.get(CHOSE)
    if not record:
        return None
    metric = selection.parse(record["select_by"]).metric
    # a record without "diverged" (written before it) has null for a diverged one only
    left_out = record.get("diverged")

    def result(k, score):
        if k in left_out if left_out is not None else score is None:
            return DIVERGED_TEXT
        if score is None:
            return f"valid {metric} not a finite number"
        # each score printed as the evaluation lines and the training summary print it
        return f"valid {metric} {format_value(score)}"

    parts = [f"{describe(o)} ({result(k, score)})"
             for k, (o, score) in enumerate(zip(record["candidates"], record["scores"]))]
    kept = parts.pop(record["chosen"])
    return f"chosen on validation: {kept} over {', '.join(parts)}"


class CandidatesTrainer:
    """Trains a run's candidates one after another, each with the plain Trainer (so each
    resumes and trains data-parallel as a single run does), then scores them and makes
    the run a copy of the winner (rank 0 alone reads and writes files; the other ranks
    receive each candidate's description from it)."""

    size = 1  # one model at the end (cli's header line)

    def __init__(self, task, run: RunDir, echo=print, world=None):
        from . import selection
        from .distributed import World
        self.task, self.run, self.echo = task, run, echo
        self.world = world if world is not None else World()
        info = run.info()
        self.config = info["config"]
        self.options = pending(info)
        self.selection = selection.parse(self.config.get("select_by"))
        self._spec = info["model_spec"]

    @property
    def num_params(self):
        return in_turn.num_params(self.config, self._spec)

    def _trainer(self, k):
        from .trainer import Trainer
        path = candidate_path(self.run.path, k)
        info = _matching(self.run, k).info() if self.world.is_root else None
        if self.world.size > 1:
            info = self.world.bcast(info)
        return (Trainer(self.task, RunCopy(path, info), self.echo, self.world),
                describe(self.options[k]))

    def lock_paths(self) -> list[str]:
        """The directories this trainer writes (recurrent/run_lock.py): the run's and
        every candidate's."""
        return [self.run.path] + [candidate_path(self.run.path, k)
                                  for k in range(len(self.options))]

    @run_lock.locked
    def fit(self, resume=False):
        quiet = self.config.get("quiet") or not self.world.is_root
        count = len(self.options)
        summaries, stopped = in_turn.train(self._trainer, count, "candidate", self.world,
                                           resume, quiet, self.echo)
        if stopped:
            return {**stopped, "run": self.run.path}
        trained = [k for k, s in enumerate(summaries) if s["status"] != "diverged"]
        if not trained:  # the same on every rank, so each exits alike (no MPI abort)
            raise AllRanksError(f"every candidate's training diverged; candidate 1 "
                                f"({describe(self.options[0])}): {summaries[0]['error']}")
        # the candidates' summaries say whether each had steps left; the run chooses
        # among them, and writes its choice, whatever they say
        if not self.world.is_root:
            return {**summaries[trained[0]], "run": self.run.path, "nothing_left": None}
        with Interrupt():  # a Ctrl-C while scoring or copying waits until RUN is whole
            scores = [self._score(k) if k in trained else math.nan for k in range(count)]
            k = trained[choose([scores[j] for j in trained])]  # a diverged one never wins
            adopt(self.run, k, [self.selection.value(s) if j in trained else None
                                for j, s in enumerate(scores)], self.selection.text)
        if not quiet:
            self.echo("candidates: " + "; ".join(
                f"{describe(o)} "
                f"{self.selection.describe(s) if j in trained else DIVERGED_TEXT}"
                for j, (o, s) in enumerate(zip(self.options, scores)))
                + f"; kept {describe(self.options[k])}")
        steps = [summaries[j]["step"] for j in trained]
        left_out = f" ({count - len(trained)} diverged)" if len(trained) < count else ""
        text = (f"{count} candidates{left_out} of {counted(steps[0], 'step')} each"
                if len(set(steps)) == 1
                else f"{count} candidates{left_out} of {', '.join(map(str, steps))} steps")
        kept = describe(self.options[k])
        if math.isfinite(scores[k]):
            best, no_best = f"{self.selection.describe(scores[k])} with {kept}", None
        else:  # no candidate's figure is finite (choose): none scored better than another
            best, no_best = None, (f"no candidate's valid {self.selection.metric} was a "
                                   f"finite number (kept {kept})")
        return {**summaries[k], "run": self.run.path, "steps_text": text,
                "limit": in_turn.limit_text(summaries),
                "best": best, "no_best": no_best, "nothing_left": None}

    def _score(self, k) -> float:
        """Candidate k's finished model scored on the validation split by --select-by."""
        metrics = in_turn.validation_metrics(self.task, candidate_path(self.run.path, k))
        return float(self.selection.checked_score(metrics))
