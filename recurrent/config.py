"""A training run's options: the shared defaults, how a run's options are resolved,
checked, saved in config.json and changed on resume, and the model, optimizer and loss
they describe.

Resolution: SHARED_DEFAULTS, then the task's defaults(), then overrides (CLI options).
On resume only the options in RESUMABLE may change; any other must keep its value.
"""
from __future__ import annotations

import json
import math
import numbers
import os

import numpy as np

from . import averaging, selection
from .checks import beyond_any_array, one_line
from .checkpoint import saved_json
from .errors import UserError
from .out_paths import home_path, shell_word
from .layers import check_cell_precision
from .model import SequenceModel, check_spec
from .optim import (Schedule, check_optimizer_settings, default_momentum, default_weight_decay,
                    make_optimizer)
from .quant import PRECISIONS, TRAINING_PRECISIONS
from .seq2seq.model import KIND as SEQ2SEQ, Seq2SeqModel
from .seq2seq.model import check_spec as check_seq2seq_spec

FLOAT32_MAX = float(np.finfo(np.float32).max)  # the parameters' type

SHARED_DEFAULTS = {
    "cell": "lstm",
    "hidden": 128,
    "layers": 1,
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "zoneout": 0.0,
    "bidirectional": False,
    "init": "uniform",
    "forget_bias": None,
    "optimizer": "adam",
    "lr": 2e-3,
    "weight_decay": None,  # the optimizer's own (optim.default_weight_decay)
    "momentum": None,  # the optimizer's own (optim.default_momentum)
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
    "average": "off",  # weight averaging (recurrent/averaging.py)
    "select_by": "loss",  # the validation figure that picks the best checkpoint
    "ensemble": 1,  # members trained independently and combined (recurrent/ensemble.py)
    "precision": "fp32",  # of the recurrent layers' products in training and validation
}

# Options whose default (None) is the optimizer's own, by optimizer name.
OPTIMIZER_DEFAULTS = {"weight_decay": default_weight_decay, "momentum": default_momentum}

# Options added after runs were first saved: a config.json without them takes these.
LATER_DEFAULTS = {"recurrent_dropout": 0.0, "zoneout": 0.0, "average": "off",
                  "select_by": "loss", "ensemble": 1, "precision": "fp32"}

# Options that may change when a run is resumed; anything else must match the run.
RESUMABLE = ("epochs", "steps", "patience", "eval_every", "log_every", "quiet", "threads",
             "plot")
# The resumable options that decide what a run trains (how long, and which checkpoint is
# best); the others say how it runs and reports.
PLAN = ("epochs", "steps", "patience", "eval_every")


def plan_changes(before: dict, after: dict) -> str:
    """The PLAN options that differ between two sets of a run's options, as flags with
    their new values ('--steps 60'), or '' when the plan is the same."""
    return " ".join(f"--{key.replace('_', '-')} {after.get(key)}" for key in PLAN
                    if before.get(key) != after.get(key))


def check_part_plan(run, before: dict, after: dict, whole_of, belongs: str,
                    part: str) -> None:
    """UserError when ``run`` (a RunDir) is a part of another run (``whole_of(path)``: that
    run, or None) and resuming it alone would change its plan (plan_changes of ``before``
    and ``after``): every part trains to the whole run's plan. ``belongs``: how the part
    relates to the whole ("a member of the ensemble {whole}, whose members train to one
    plan"), ``part``: the parts' name ("member")."""
    given = plan_changes(before, after)
    whole = whole_of(run.path) if given else None
    if whole is None:
        return
    raise UserError(f"{given}: {run.path} is {belongs.format(whole=whole.path)}; change it "
                    f"for every {part}: `recurrent train --resume {shell_word(whole.path)} "
                    f"{given}`")


# Options that would let a causal task's model read its targets, and why.
SEES_THE_FUTURE = {
    "bidirectional": "would let the model read what it must predict (the reverse direction "
                     "reads the sequence from its end); use --unidirectional",
}


def check_model_spec(spec: dict) -> dict:
    """A task's model_spec, checked (ValueError naming the bad key): an encoder-decoder's
    ("model": "seq2seq", recurrent.seq2seq.check_spec) or a SequenceModel's."""
    if isinstance(spec, dict) and spec.get("model") == SEQ2SEQ:
        return check_seq2seq_spec(spec)
    return check_spec(spec)


def cell_defaults(task) -> dict:
    """The task's defaults for single cells (Task.cell_defaults), {cell: {key: value}}."""
    return getattr(task, "cell_defaults", None) or {}


def task_options(task) -> list:
    """The task's own options as `recurrent train NAME` offers them: copies of
    task.options(), each taking its default from task.defaults() when that names it."""
    import copy
    defaults = task.defaults() or {}
    params = []
    for param in task.options() or []:
        param = copy.copy(param)
        if param.name in defaults:
            param.default = defaults[param.name]
        params.append(param)
    return params


def run_loss(task, name=None):
    """The registered loss ``name`` (a run's --loss), else the task's own (Task.loss).
    UserError as plugins.get_loss gives it, naming the task when the loss is the task's
    own: a run given no --loss holds the task's loss under that name too, and the user
    typed nothing that could be wrong."""
    from .plugins import get_loss
    name = name or task.loss
    try:
        return get_loss(name)
    except UserError as e:
        if name != task.loss:
            raise
        raise UserError(f"task {task.name!r} trains with its loss {name!r} (Task.loss): "
                        f"{e}") from None


def option_flags(task) -> dict:
    """{key: flag} for the task's own options whose key is not their flag spelled with
    dashes: a click option may store its value under another name (forecast's --model
    as forecast_model), and an error about the option names the flag a user types."""
    flags = {}
    for param in task.options() or []:
        long_flags = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
        if param.name and long_flags and long_flags[0] != f"--{param.name.replace('_', '-')}":
            flags[param.name] = long_flags[0]
    return flags


def option_type_problem(param, value) -> str | None:
    """What ``value`` must be for its click option ``param`` to hold it, when it is not
    (64.5 for an integer option, true for a number, 1 for a flag), or None: "a whole
    number", "a number" or "true or false". Python's and numpy's numbers count as numbers.
    Types only, not ranges; strings and choices (and options of other types) are left to
    the option's own conversion."""
    import click
    if isinstance(param.type, click.types.BoolParamType):
        return None if isinstance(value, (bool, np.bool_)) else "true or false"
    if isinstance(param.type, click.types.IntParamType):
        fits, kind = isinstance(value, numbers.Integral), "a whole number"
    elif isinstance(param.type, click.types.FloatParamType):
        fits, kind = isinstance(value, numbers.Real), "a number"
    else:
        return None
    return None if fits and not isinstance(value, bool) else kind


def saved_option_problem(options: dict, params) -> str | None:
    """What makes a saved option's value one its click option (``params``) could not have
    stored, or None: 64.5 for an integer option (read later as 64), "0.01" or true for a
    number, 1 for a flag, as a hand-edited config.json may hold (option_type_problem).
    Types only, not ranges: a range a later version narrows must not shut its users out of
    their runs. Options with a callback, options of several values (saved as a list:
    multiple, or nargs above one), and strings and choices (refused where they are read),
    are left out."""
    for param in params:
        value = options.get(param.name)
        if (value is None or param.callback is not None or getattr(param, "multiple", False)
                or param.nargs != 1):
            continue
        kind = option_type_problem(param, value)
        if kind:
            flag = next((o for o in param.opts if o.startswith("--")), param.name)
            return f"option {param.name} ({flag}) is {one_line(json.dumps(value))}, not {kind}"
    return None


def _same_file(saved, given) -> bool:
    """Whether two option values are paths of one existing file (`--data ./a.csv` given
    again for a run saved with `--data a.csv`, or its absolute path)."""
    if not (isinstance(saved, str) and isinstance(given, str) and saved and given):
        return False
    try:  # a path saved as typed may begin with ~ (the home directory: out_paths.named)
        return os.path.samefile(home_path(saved), given)
    except (OSError, ValueError):
        return False


def _existing(path) -> bool:
    """Whether ``path`` (a Task.read_files entry) names an existing file."""
    return isinstance(path, str) and os.path.isfile(path)


def _same_value(saved, given, read_path) -> bool:
    """Whether ``given`` for an option is the run's ``saved`` value: the file the run reads
    (``read_path``, when it exists) for a path option, else the saved value or a path of
    the same file."""
    if _existing(read_path):
        return _same_file(read_path, given)
    return saved_json(saved) == saved_json(given) or _same_file(saved, given)


# Options written as text whose parser reads several spellings as one setting
# (ema:0.9 and ema:0.90; loss and loss:min): their parsed values are compared on resume.
PARSED_OPTIONS = {"average": averaging.parse, "select_by": selection.parse}


def _same_setting(key, saved, given) -> bool:
    """Whether two values of option ``key`` spell one setting (PARSED_OPTIONS)."""
    parse = PARSED_OPTIONS.get(key)
    if parse is None or saved is None or given is None:
        return False
    try:
        return parse(saved) == parse(given)
    except ValueError:
        return False


class TrainingConfig(dict):
    """A run's resolved options, shared and task-specific, in one dict: tasks receive it
    as their ``config``. Saved as the "config" object of config.json (to_json /
    from_json)."""

    @classmethod
    def resolve(cls, task, overrides: dict, given=None) -> "TrainingConfig":
        """Shared defaults, then the task's defaults, then its defaults for the run's cell
        (cell_defaults), then ``overrides`` (e.g. CLI values). ``given``: the keys of
        ``overrides`` the user gave (the others hold the defaults the command line
        shows, which a cell's own default replaces); None: all of them."""
        config = cls(SHARED_DEFAULTS)
        config.update(task.defaults() or {})
        plain = dict(config)
        config.update(overrides)
        chosen = set(overrides) if given is None else set(given)
        by_cell = cell_defaults(task)
        # the shared options' defaults the command line shows are its default cell's,
        # that cell's cell_defaults included: a run of another cell takes the task's own
        for options in by_cell.values():
            for key in (set(options) - chosen) & set(plain):
                config[key] = plain[key]
        for key, value in by_cell.get(config["cell"], {}).items():
            if key not in chosen:
                config[key] = value
        return config

    # -- saving -------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The "config" object of config.json."""
        return dict(self)

    @classmethod
    def from_json(cls, options: dict, source: str) -> "TrainingConfig":
        """The options saved in ``source`` (a config.json); UserError naming the shared
        options a hand-edited or damaged file lacks."""
        missing = sorted(key for key in SHARED_DEFAULTS
                         if key not in options and key not in LATER_DEFAULTS)
        if missing:
            raise UserError(f"{source} is corrupted: its config has no "
                            f"{', '.join(repr(k) for k in missing)}")
        return cls({**LATER_DEFAULTS, **options})

    def resumed(self, changes: dict, resolved: dict | None = None,
                flags: dict | None = None, given: dict | None = None,
                read: dict | None = None, moved: dict | None = None) -> "TrainingConfig":
        """These options with ``changes`` (options given again to a resumed run) applied:
        those in RESUMABLE may change, any other must keep its value (UserError).
        ``resolved``: the values the task chose for options the run left at a default of
        None or [] (Task.resolved_options); giving one of those again is no change.
        ``flags``: the command-line flag of each option whose key is not its flag
        spelled with dashes (option_flags), for the error to name what was typed.
        ``given``: options the run chose among candidates, with the values it was started
        with (--window auto): giving one of those again is no change either. ``read``:
        the file the run reads for a path option (Task.read_files): while it exists, a
        value given again must name it, however spelled or from wherever. ``moved``: the
        path options whose file is gone and that name the file's new place
        (moved_data.moved_files): they take the value given."""
        config = TrainingConfig(self)
        for key, value in changes.items():
            if key in (given or {}) and saved_json(given[key]) == saved_json(value):
                continue  # the choice asked for again: the run keeps what it chose
            saved = self.get(key)
            # left at its default: None, or [] for a repeatable option given no value
            if saved in (None, []) and key in (resolved or {}):
                saved, chosen = resolved[key], " (its default, chosen from the data)"
            elif saved is None and key in OPTIMIZER_DEFAULTS:  # the optimizer's own default
                saved = OPTIMIZER_DEFAULTS[key](self["optimizer"])
                chosen = f" (the default of --optimizer {self['optimizer']})"
            else:
                chosen = ""
            if key in RESUMABLE or key in (moved or {}):
                config[key] = value
            elif not (_same_value(saved, value, (read or {}).get(key))
                      or _same_setting(key, saved, value)):
                had = (f"the run reads {read[key]!r}" if _existing((read or {}).get(key))
                       else f"the run has {saved!r}{chosen}" if saved is not None
                       else "the run left it at its default")
                flag = (flags or {}).get(key) or f"--{key.replace('_', '-')}"
                raise UserError(f"{flag} cannot change when resuming "
                                f"({had}); start a new run with --out")
        return config

    # -- checks -------------------------------------------------------------------------
    def check(self, task=None) -> None:
        """UserError for options that cannot train (for ``task``, when given); run once
        when a run starts (before its directory is made) and once when it resumes."""
        for key, default in SHARED_DEFAULTS.items():  # e.g. "lr": null in a config.json
            value = self.get(key, default)
            # an option whose default (None) is the optimizer's own is a number when set
            numeric = ((isinstance(default, (int, float)) and not isinstance(default, bool))
                       or (key in OPTIMIZER_DEFAULTS and value is not None))
            if numeric and (isinstance(value, (bool, np.bool_))
                            or not isinstance(value, numbers.Real)):
                raise UserError(f"option {key} must be a number, got {value!r} (a resumed "
                                f"run reads it from its config.json)")
        if task is not None:
            self.check_causal(task)
        tbptt = int(self.get("tbptt") or 0)
        if tbptt < 0:
            raise UserError(f"--tbptt must be >= 0, got {tbptt}")
        if tbptt and self["bidirectional"]:
            raise UserError("--tbptt cannot be used with --bidirectional (add "
                            "--unidirectional): the reverse direction needs the whole sequence")
        for key in ("epochs", "steps", "patience", "eval_every", "log_every"):
            if int(self.get(key) or 0) < 0:
                raise UserError(f"--{key.replace('_', '-')} must be >= 0, got {self[key]}")
        try:
            averaging.parse(self.get("average", "off"))
            selection.parse(self.get("select_by"))
        except ValueError as e:
            raise UserError(str(e)) from None
        if not int(self.get("epochs") or 0) and not int(self.get("steps") or 0):
            raise UserError("nothing to train: --epochs and --steps are both 0")
        self.check_precision()
        # every number option, the task's own too: click's FloatRange lets NaN through
        # (every comparison with it is false), and a NaN rate or fraction would pass the
        # checks after it unseen
        flags = option_flags(task) if task is not None else {}
        for key, value in self.items():
            if isinstance(value, float) and not math.isfinite(value):
                flag = flags.get(key) or f"--{key.replace('_', '-')}"
                raise UserError(f"{flag} must be a finite number, got {value}")
        bias = self.get("forget_bias")  # stored in the float32 parameters as it is
        if isinstance(bias, (int, float)) and abs(bias) > FLOAT32_MAX:
            raise UserError(f"--forget-bias {bias:g} is beyond the parameters' float32 range "
                            f"(+-{FLOAT32_MAX:.3g})")
        if self.get("clip_norm") is not None and self["clip_norm"] < 0:
            raise UserError(f"--clip-norm must be >= 0 (0 = off), got {self['clip_norm']}")
        if self.get("clip_value") is not None and not self["clip_value"] > 0:
            raise UserError(f"--clip-value must be > 0, got {self['clip_value']}")
        try:
            check_optimizer_settings(self["optimizer"], momentum=self["momentum"],
                                     nesterov=self["nesterov"], unused=False)
        except ValueError as e:
            raise UserError(str(e)) from None
        try:
            Schedule.check_settings(self["schedule"], warmup=self["warmup"],
                                    step_size=self["decay_every"], gamma=self["decay_gamma"],
                                    min_lr=self["min_lr"])
        except ValueError as e:
            raise UserError(str(e)) from None
        # the cosine schedule alone ends at --min-lr (check_given refuses it beside another)
        if (self["schedule"] == "cosine" and self.get("min_lr") and self.get("lr") is not None
                and self["min_lr"] > self["lr"]):
            raise UserError(f"--min-lr {self['min_lr']:g} is above --lr {self['lr']:g}: the "
                            f"schedule would raise the rate as it goes")

    def check_precision(self) -> None:
        """UserError unless the run's recurrent layers can train in its --precision
        (quant.TRAINING_PRECISIONS; the cell's own: layers.check_cell_precision)."""
        precision = self.get("precision", "fp32")
        if precision not in PRECISIONS:  # a hand-edited config.json
            raise UserError(f"option precision must be one of {', '.join(PRECISIONS)}, got "
                            f"{precision!r} (a resumed run reads it from its config.json)")
        if precision not in TRAINING_PRECISIONS:
            raise UserError(f"--precision {precision} is for inference only (predict, eval, "
                            f"bench --mode infer); training runs in "
                            f"{' or '.join(TRAINING_PRECISIONS)}")
        if precision == "fp32":
            return
        try:
            check_cell_precision(self["cell"], precision)
        except ValueError as e:  # "precision bf16: ..." or "cell: ...": name the option
            raise UserError(f"--{one_line(e)}") from None

    def check_new(self, task=None) -> None:
        """UserError for options a new run would leave unused (--nesterov beside an
        optimizer that has no Nesterov variant) or read as not given (an empty text, such
        as `--loss ""` from a script's unset variable, which would take the default);
        run when a run starts only: a saved run that holds one has trained so all along
        and still resumes."""
        flags = option_flags(task) if task is not None else {}
        for key, value in self.items():
            if isinstance(value, str) and not value.strip():
                flag = flags.get(key) or f"--{key.replace('_', '-')}"
                raise UserError(f"{flag} is empty: give a value, or leave {flag} out for "
                                f"the default")
        # the run takes at most --steps steps (fewer when --epochs ends it first, which
        # the trainer notes once it has counted an epoch's batches: Trainer._schedule,
        # Trainer._note_average)
        steps = int(self.get("steps") or 0)
        moot = steps and (Schedule.moot_within(self["schedule"], int(self["warmup"]),
                                               int(self["decay_every"]), steps)
                          or averaging.moot_within(self.get("average", averaging.OFF),
                                                   steps))
        if moot:
            raise UserError(moot)
        # a step schedule's decays are to lower the rate: a factor of 1 leaves it constant
        # (as --decay-every beyond the run does), one above 1 raises it at every decay (as
        # --min-lr above --lr would raise a cosine's)
        gamma = self.get("decay_gamma")
        if self["schedule"] == "step" and gamma is not None and gamma >= 1:
            effect = "leave the rate as it is" if gamma == 1 else "raise the rate"
            raise UserError(f"--decay-gamma {gamma:g} is not below 1: every decay of the step "
                            f"schedule would {effect}; give a factor below 1, or --schedule "
                            f"constant")
        try:
            check_optimizer_settings(self["optimizer"], momentum=self["momentum"],
                                     nesterov=self["nesterov"])
        except ValueError as e:
            raise UserError(str(e)) from None

    def check_given(self, given: set, task=None) -> None:
        """UserError for an option given on the command line (``given``: their keys) that
        the other options leave unused: its value would be saved and have no effect. The
        shared options' cases are here; a task names its own (protocols.Task.moot_options)."""
        moot = {
            "momentum": (self["optimizer"] not in ("sgd", "rmsprop"),
                         f"--optimizer sgd or rmsprop; {self['optimizer']} has none"),
            "min_lr": (self["schedule"] != "cosine",
                       f"--schedule cosine (the rate it ends at); {self['schedule']} has none"),
            "decay_every": (self["schedule"] != "step",
                            f"--schedule step; {self['schedule']} has no steps"),
            "decay_gamma": (self["schedule"] != "step",
                            f"--schedule step; {self['schedule']} has no steps"),
        }
        if task is not None and hasattr(task, "moot_options"):
            moot.update({key: (True, why)
                         for key, why in (task.moot_options(dict(self)) or {}).items()})
        flags = option_flags(task) if task is not None else {}
        for key in sorted(given & moot.keys()):
            unused, why = moot[key]
            if unused:
                raise UserError(f"{flags.get(key) or '--' + key.replace('_', '-')} is for "
                                f"{why}")

    def check_causal(self, task) -> None:
        """UserError when ``task`` is causal (protocols.Task.causal: its targets are later
        inputs) and an option would let the model read them."""
        if not (hasattr(task, "causal") and task.causal):
            return
        for key, why in SEES_THE_FUTURE.items():
            if self.get(key):
                raise UserError(f"task {task.name!r} predicts the next step of its input: "
                                f"--{key.replace('_', '-')} {why}")

    # -- what the options describe -----------------------------------------------------
    def build_model(self, spec: dict) -> SequenceModel:
        """The model these options describe for a task's model spec: a SequenceModel, or
        for a spec with "model": "seq2seq" an encoder-decoder (recurrent.seq2seq), which
        takes the same options."""
        model_class = SequenceModel
        if isinstance(spec, dict) and spec.get("model") == SEQ2SEQ:
            model_class = Seq2SeqModel
        try:
            model = model_class(spec, cell=self["cell"], hidden_size=self["hidden"],
                                num_layers=self["layers"], dropout=self["dropout"],
                                bidirectional=self["bidirectional"], seed=self["seed"],
                                num_threads=self.get("threads"),
                                init=self.get("init", "uniform"),
                                forget_bias=self.get("forget_bias"),
                                recurrent_dropout=self.get("recurrent_dropout", 0.0),
                                zoneout=self.get("zoneout", 0.0))
            # the precision the run trains and validates in (--precision)
            if self.get("precision", "fp32") != "fp32":
                model.precision = self["precision"]
            return model
        except ValueError as e:
            if beyond_any_array(e):  # a size (--embed-dim, ...) no memory holds
                raise MemoryError(one_line(e)) from None
            raise UserError(one_line(e)) from None

    def build_optimizer(self, model: SequenceModel):
        """The optimizer these options describe, over the model's flat buffers (their
        first model.num_trained entries: the parameters it trains)."""
        n = model.num_trained
        return self.build_optimizer_over(model.params[:n], model.grads[:n],
                                         weight_decay=self["weight_decay"])

    def build_optimizer_over(self, params, grads, weight_decay=0.0):
        """The optimizer these options describe over flat float32 parameter and gradient
        buffers. Without ``weight_decay`` (a task's trained parameters:
        recurrent/task_params.py) there is no decay: their natural values are not 0 (a
        smoothing coefficient's logit, a seasonal index), so decay would pull them
        towards an arbitrary point."""
        try:
            return make_optimizer(self["optimizer"], params, grads, self["lr"],
                                  weight_decay=weight_decay, momentum=self["momentum"],
                                  nesterov=self["nesterov"])
        except ValueError as e:
            raise UserError(str(e)) from None

    def loss_function(self, task):
        """The registered loss named by --loss, else the task's own (run_loss)."""
        return run_loss(task, self.get("loss"))
