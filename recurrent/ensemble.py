"""Ensembles: `recurrent train TASK --ensemble K` trains K members independently, each a
whole run with its own seed, and evaluation, prediction and export use the combination
of their outputs.

Layout of an ensemble run directory RUN:
  RUN/config.json      the ensemble's options ("ensemble": K), task state and model spec
  RUN/metrics.jsonl    the combined model's validation evaluation, (re)written each time
                       every member has been trained
  RUN/member-0 ... RUN/member-{K-1}
                       each a complete run directory (recurrent/checkpoint.py) whose
                       options are the ensemble's with its own seed and "ensemble": 1:
                       it trains, resumes, evaluates and exports on its own (resumed
                       alone, to the ensemble's plan: check_member_plan).

Member 0 has the ensemble's seed, so it trains exactly as the plain run of that seed
would; member k > 0 has member_seed(seed, k), drawn from a SeedSequence of (seed, k), so
the ensembles of different seeds are unlikely to share a member. Every member shares the
task state prepared once for the ensemble (vocabulary, split, fitted baselines).

Combining: the outputs of the members' forward passes are combined by the run's loss
(protocols.Loss.combine; without it, their mean). cross_entropy combines logits into the
log of the mean of the members' softmax probabilities, so the ensemble's probabilities
are the mean of theirs.

A member whose training diverges is left out, as a run's candidate is
(recurrent/candidates.py): it keeps the DIVERGED record in its directory, so that a
resume does not train it again, the other members train on, and the combined model is
theirs (kept_members); eval, predict and export say which members were left out. An
ensemble whose every member diverged holds no model.

A task whose runs change their own task state while or after they train
(Task.trained_params, Task.after_training) cannot be ensembled this way, since each
member would read its inputs through a different state; such runs are refused before
anything is written.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from . import in_turn, run_lock, selection
from .checkpoint import (CONFIG_FILE, DIVERGED, METRICS, RunCopy, RunDir, atomic_write,
                         metrics_line, part_of)
from .errors import AllRanksError, UserError
from .figures import counted
from .interrupt import Interrupt
from .lengths import valid_mask
from .moved_data import stopped_move
from .progress import format_metrics, headline_keys
from .runner import Runner
from .seq2seq.model import KIND as SEQ2SEQ

MEMBER_DIR = "member-{}"
MAX_MEMBERS = 1000  # --ensemble's bound: each member a directory, trained one after another
SHARED = ("task", "task_state", "model_spec")  # what every member has as the ensemble


def size(config) -> int:
    """The number of members a run's options ask for (1: a plain run); UserError for a
    value that is not a whole number >= 1 (a damaged config.json)."""
    value = config.get("ensemble")
    if value is None:  # a run saved before --ensemble existed: a plain run
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MEMBERS:
        raise UserError(f"the run's option ensemble is {value!r}: expected a whole number "
                        f"from 1 to {MAX_MEMBERS} (is its config.json damaged?)")
    return value


def member_seed(seed: int, k: int) -> int:
    """Member k's seed: the run's own for k = 0, else one drawn from (seed, k) (so the
    ensembles of two seeds are unlikely to share a member)."""
    if k == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0] >> 1)


def member_info(info: dict, k: int) -> dict:
    """Member k's config.json contents, from the ensemble's."""
    config = dict(info["config"], seed=member_seed(info["config"]["seed"], k), ensemble=1)
    return {**info, "config": config}


def member_path(path: str, k: int) -> str:
    return os.path.join(path, MEMBER_DIR.format(k))


def whole_of(path: str) -> RunDir | None:
    """The ensemble whose member ``path`` is (a directory named member-k inside an
    ensemble's run directory of more than k members), or None; a parent that cannot be read as a run
    leaves ``path`` a run of its own."""
    part = part_of(path, MEMBER_DIR)
    if part is None:
        return None
    whole, k = part
    try:
        count = size(whole.info()["config"])
    except UserError:
        return None
    return whole if 1 < count and k < count else None


def check_member_plan(run: RunDir, before: dict, after: dict) -> None:
    """UserError when ``run`` is an ensemble's member and resuming it alone would change
    its plan (config.PLAN: --steps, --epochs, ...; ``before``, ``after``: its options
    then and with the changes): every member trains to the ensemble's plan, which the
    ensemble's next resume writes back into each member's options, so a member extended
    alone would record a plan its ensemble does not have."""
    from .config import check_part_plan
    check_part_plan(run, before, after, whole_of, "a member of the ensemble {whole}, whose "
                    "members train to one plan", "member")


def check(task, owned: dict | None, config, spec: dict) -> None:
    """UserError for an ensemble the task cannot have (see the module docstring);
    ``owned``: the task's trained parameters in this run (task_params.owned)."""
    if size(config) == 1:
        return
    if spec.get("model") == SEQ2SEQ:
        raise UserError(f"--ensemble {size(config)}: task {task.name!r} is an "
                        f"encoder-decoder, whose decoding reads one model's states; train "
                        f"separate runs instead")
    if owned or hasattr(task, "after_training"):
        raise UserError(f"--ensemble {size(config)}: task {task.name!r} sets parts of its "
                        f"own state while or after each run trains, so members would read "
                        f"their inputs differently; train separate runs instead")


def check_members_new(path: str, config: dict) -> None:
    """UserError unless every member directory of a new ensemble at ``path`` may be made
    (RunDir.check_new): checked before the ensemble's own config.json is written, so a
    refusal leaves no half-made ensemble behind."""
    for k in range(size(config)):
        RunDir.check_new(member_path(path, k))


def write_members(run: RunDir, fresh: bool) -> None:
    """Create each member's run directory (``fresh``: a new ensemble, refusing any that
    exists), or bring its options up to date with the ensemble's (after options changed
    on resume), creating those never made."""
    info = run.info()
    for k in range(size(info["config"])):
        member = member_info(info, k)
        path = member_path(run.path, k)
        if not fresh and os.path.exists(os.path.join(path, CONFIG_FILE)):
            _matching(run, RunDir.open(path), k).update_config(member["config"])
        else:
            RunDir.create(path, member["task"], member["config"], member["task_state"],
                          member["model_spec"], member["version"],
                          kernel=member.get("kernel"))


def _matching(run: RunDir, member: RunDir, k: int, infos: dict | None = None) -> RunDir:
    """``member``, checked to have the ensemble's task, task state, model spec and
    options (but those that may change on resume: config.RESUMABLE); ``infos``: the
    contents of config.json files to judge by in place of what they hold, by run path
    (those of a resume moving the run's data, once moved: moved_data.moved_runs)."""
    from .config import RESUMABLE
    infos = infos or {}
    ours = member_info(infos.get(run.path) or run.info(), k)
    theirs = infos.get(member.path) or member.info()
    differs = [key.replace("_", " ") for key in SHARED if ours[key] != theirs[key]]
    options = set(ours["config"]) | set(theirs["config"])
    differs += [f"option {key}" for key in sorted(options - set(RESUMABLE))
                if ours["config"].get(key) != theirs["config"].get(key)]
    if differs:
        why = (stopped_move(run.path, ours, theirs)
               or f"its {differs[0]} differs from the ensemble's")
        raise UserError(f"{member.path} does not belong to the ensemble {run.path}: {why}")
    return member


def combined_record(run: RunDir, steps: list[int]) -> dict | None:
    """The ensemble's validation record (EnsembleTrainer._evaluate) when it was made of
    members at ``steps`` (of those not left out, in order), else None: the combination
    is still to be evaluated. Its metrics' nulls (figures that were not finite numbers,
    which metrics_line writes as null) are read back as NaN, as _evaluate scored them."""
    try:
        records = run.read_metrics()
    except UserError:
        return None
    for record in records:
        if record.get("ensemble") and record.get("member_steps") == list(steps) \
                and isinstance(record.get("metrics"), dict):
            return {**record, "metrics": {key: math.nan if value is None else value
                                          for key, value in record["metrics"].items()}}
    return None


def member_runs(run: RunDir, missing_ok: bool = False,
                infos: dict | None = None) -> list[RunDir]:
    """The members' run directories, each checked to be there (``missing_ok``: those
    there, as a resume finds them before it creates the others) and to match
    (``infos``: _matching's)."""
    count = size(run.info()["config"])
    members = []
    for k in range(count):
        path = member_path(run.path, k)
        if not os.path.exists(os.path.join(path, CONFIG_FILE)):
            if missing_ok:
                _check_remade(run, k, count)
                continue
            raise UserError(f"{run.path} is an ensemble of {count} members and "
                            f"{MEMBER_DIR.format(k)} is missing")
        members.append(_matching(run, RunDir.open(path), k, infos))
    return members


def _check_remade(run: RunDir, k: int, count: int) -> None:
    """UserError naming member k, which has no config.json, when a resume cannot make it
    anew (RunDir.check_new): a file in its place, or a run's files that creating it
    would overwrite. Checked with the other members, before the resume writes anything,
    so a refused resume leaves every config.json as it was."""
    path = member_path(run.path, k)
    try:
        RunDir.check_new(path)
    except UserError:
        what = ("is not a directory" if os.path.exists(path) and not os.path.isdir(path)
                else f"holds a run's files without its {CONFIG_FILE}")
        raise UserError(f"{run.path} is an ensemble of {count} members and "
                        f"{MEMBER_DIR.format(k)} {what}: restore it, or remove it to "
                        f"train that member anew") from None


def all_diverged(run: RunDir) -> bool:
    """Whether every member of an ensemble has diverged in training, so that a resume
    cannot make it a model (in_turn.all_diverged)."""
    count = size(run.info()["config"])
    return count > 1 and in_turn.all_diverged([member_path(run.path, k)
                                               for k in range(count)])


def kept_members(run: RunDir) -> tuple[list[RunDir], list[RunDir]]:
    """(the members the combined model is made of, those left out because their
    training diverged), each checked as member_runs does; UserError when every member
    diverged."""
    members = member_runs(run)
    left_out = [m for m in members if m.has(DIVERGED)]
    if len(left_out) == len(members):
        raise UserError(in_turn.all_diverged_text(run.path, "member"))
    return [m for m in members if not m.has(DIVERGED)], left_out


def left_out_text(paths: list[str], kept: int) -> str:
    """'member-1 diverged in training, left out: the ensemble combines the other 2
    members' (``paths``: the members left out, ``kept``: how many are combined)."""
    return (f"{', '.join(paths)} diverged in training, left out: the ensemble combines "
            f"the other {counted(kept, 'member')}")


def combine(loss, outputs: list) -> np.ndarray:
    """The members' outputs, combined as the loss says (its combine(), else the mean)."""
    if hasattr(loss, "combine"):
        return loss.combine(outputs)
    return np.mean(np.stack(outputs), axis=0).astype(outputs[0].dtype, copy=False)


def _every_member(name):
    """A property read from the first member and set on every member."""
    def set_all(self, value):
        for m in self.members:
            setattr(m, name, value)
    return property(lambda self: getattr(self.members[0], name), set_all)


class MemberStates(tuple):
    """An ensemble's recurrent state: one state per member, in member order."""


class EnsembleModel:
    """K trained models whose outputs combine into one (inference only): forward and
    step take and return what a member's do, with the state a MemberStates. Training
    happens member by member (EnsembleTrainer)."""

    def __init__(self, members: list, loss):
        self.members = list(members)
        self.loss = loss
        first = self.members[0]
        self.spec, self.output, self.tokens = first.spec, first.output, first.tokens
        self.num_directions = first.num_directions

    @property
    def training(self):
        return self.members[0].training

    def train(self, mode=True):
        for m in self.members:
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def num_params(self):
        return sum(m.num_params for m in self.members)

    num_threads = _every_member("num_threads")
    precision = _every_member("precision")

    def runner(self):
        return Runner(self)

    def _states(self, state):
        if state is None:
            return (None,) * len(self.members)
        if not isinstance(state, MemberStates) or len(state) != len(self.members):
            raise ValueError(f"state: expected the state an ensemble of {len(self.members)} "
                             f"members returned (one per member)")
        return state

    def forward(self, x, *, lengths=None, state=None, need_grad=False):
        """x -> (combined outputs, MemberStates); no gradients (members train alone)."""
        if need_grad:
            raise ValueError("an ensemble is trained member by member: forward it with "
                             "need_grad=False")
        results = [m.forward(x, lengths=lengths, state=s, need_grad=False)
                   for m, s in zip(self.members, self._states(state))]
        y = combine(self.loss, [out for out, _ in results])
        if self.output == "sequence" and lengths is not None:  # padded steps stay zero
            y = y * valid_mask(np.asarray(lengths), y.shape[0], y.shape[1])[:, :, None]
        return y, MemberStates(final for _, final in results)

    __call__ = forward

    def step(self, x_t, state=None):
        """One time step of every member: x_t -> (combined (B, K), MemberStates)."""
        results = [m.step(x_t, s) for m, s in zip(self.members, self._states(state))]
        return (combine(self.loss, [out for out, _ in results]),
                MemberStates(final for _, final in results))


class EnsembleTrainer:
    """Trains an ensemble run's members one after another, each with the plain Trainer
    (so each resumes, trains data-parallel and keeps checkpoints as a single run does;
    resuming a member that has ended changes nothing), then evaluates the combined model
    on the validation split. Every rank trains from the ensemble's own description of
    each member (member_info); rank 0 alone reads and writes files."""

    def __init__(self, task, run: RunDir, echo=print, world=None):
        from .distributed import World
        self.task, self.run, self.echo = task, run, echo
        self.world = world if world is not None else World()
        info = run.info()
        self.config = info["config"]
        # the options of a resume (runs.resume_run), which an ended run does not save:
        # how this invocation prints (--quiet) is read from them
        self.plan = self.config
        self.size = size(self.config)
        self.selection = selection.parse(self.config.get("select_by"))
        self._infos = [member_info(info, k) for k in range(self.size)]

    @property
    def num_params(self):
        info = self._infos[0]
        return self.size * in_turn.num_params(info["config"], info["model_spec"])

    def _member(self, k):
        from .config import TrainingConfig
        from .trainer import Trainer
        trainer = Trainer(self.task, RunCopy(member_path(self.run.path, k), self._infos[k]),
                          self.echo, self.world)
        # the resume's options as the member's: an ended member draws its loss.png by
        # them (--plot), as a plain run does; one that trains has them saved already
        trainer.plan = TrainingConfig(member_info({"config": dict(self.plan)}, k)["config"])
        return trainer, f"seed {trainer.seed}"

    def lock_paths(self) -> list[str]:
        """The directories this trainer writes (recurrent/run_lock.py): the ensemble's
        and every member's."""
        return [self.run.path] + [member_path(self.run.path, k) for k in range(self.size)]

    @run_lock.locked
    def fit(self, resume=False):
        """Train the members in turn (in_turn.train), then evaluate their combination.
        A resume whose members had nothing left to train (trainer.nothing_left) and
        whose combination is recorded for the members' steps writes nothing."""
        quiet = self.plan.get("quiet") or not self.world.is_root
        summaries, stopped = in_turn.train(self._member, self.size, "member", self.world,
                                           resume, quiet, self.echo)
        if stopped:
            return {**stopped, "run": self.run.path}
        left_out = [MEMBER_DIR.format(k) for k, s in enumerate(summaries)
                    if s["status"] == "diverged"]
        if len(left_out) == self.size:  # the same on every rank: each exits alike
            raise AllRanksError(f"every member's training diverged; member 1 (seed "
                                f"{self._infos[0]['config']['seed']}): "
                                f"{summaries[0]['error']}")
        summaries = [s for s in summaries if s["status"] != "diverged"]
        steps = [s["step"] for s in summaries]  # of the members combined
        early = sum(s["status"] == "early-stopped" for s in summaries)
        text = f"{self.size} members"
        if left_out:
            text += f" ({', '.join(left_out)} diverged, left out)"
        text += (f" of {counted(steps[0], 'step')} each" if len(set(steps)) == 1
                 else f" of {', '.join(map(str, steps))} steps")
        if early:
            text += f" ({early} stopped early)"
        best = no_best = None
        record = None
        if all(s.get("nothing_left") for s in summaries):  # the same on every rank
            record = combined_record(self.run, steps) if self.world.is_root else None
            if self.world.size > 1:
                record = self.world.bcast(record)
        if record is not None:
            best, no_best = self._describe(self.selection.checked_score(record["metrics"]))
        elif self.world.is_root:
            # every member is trained and saved: a Ctrl-C while they are combined waits
            # until the ensemble's validation record is written, and the run ends done
            with Interrupt():
                best, no_best = self._evaluate(quiet, steps, left_out)
        total = sum(steps)
        clipped = sum(s["clipped_fraction"] * s["step"] for s in summaries)
        return {"status": "done", "step": total, "steps_text": text, "run": self.run.path,
                "members": self.size, "best": best, "no_best": no_best,
                "limit": in_turn.limit_text(summaries),
                # a resume some member could not train on (--patience): the summary says why
                "stopped_before": any(s.get("stopped_before") for s in summaries),
                "clipped_fraction": clipped / total if total else 0.0,
                "nothing_left": summaries[0]["nothing_left"] if record is not None else None,
                "plotted": [path for s in summaries for path in s.get("plotted", ())]}

    def _evaluate(self, quiet, steps, left_out):
        """The combined model's validation metrics, written as the ensemble's one
        metrics record (``steps``: of the members combined; ``left_out``: the member
        directories that diverged, recorded when there are any); returns the summary's
        figure ('ensemble valid loss 0.4391') and, when that figure is not a finite
        number, None and what the summary says instead."""
        metrics = in_turn.validation_metrics(self.task, self.run.path)
        score = self.selection.checked_score(metrics)
        record = {"kind": "eval", "split": "valid", "ensemble": self.size,
                  "member_steps": steps, "metrics": metrics, "time": time.time(),
                  **({"left_out": left_out} if left_out else {})}
        line = metrics_line(record)
        atomic_write(self.run.file(METRICS), lambda f: f.write(line.encode("utf-8")))
        if not quiet:
            self.echo(f"ensemble of {counted(len(steps), 'member')}: valid  "
                      f"{format_metrics(metrics, headline_keys(metrics))}")
        return self._describe(score)

    def _describe(self, score):
        """The summary's figure for the combined model's validation ``score`` and, when
        that is not a finite number, None and what the summary says instead."""
        if not math.isfinite(score):  # no figure that a best could be claimed by
            return None, (f"the ensemble's valid {self.selection.metric} is "
                          f"{self.selection.value(score)}, not a finite number (a member "
                          f"with no best checkpoint is used at its last.npz)")
        return f"ensemble {self.selection.describe(score)}", None
