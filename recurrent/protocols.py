"""The plugin contract on one page: Cell, Loss and Task (what plugins provide), Runner (what
tasks are handed), and MEMBERS, the required and optional member names of each.

The classes are typing.Protocol classes: a plugin object does not inherit from them, it just
has these members. Optional members are declared in the class too, so that the whole
contract reads in one place; MEMBERS says which ones may be absent, and the framework reads
an optional member only after checking that it is there. The registry
(recurrent/plugins.py), the layers and the conformance kit (recurrent/conformance.py) take
the member names from MEMBERS, through missing_members(). Everything crossing this boundary
is an int, a str, a numpy array, a tuple of arrays or a plain dict.

Commands are click commands added through the register_commands hook
(recurrent/hookspecs.py); they have no members of their own to check.

Dimension legend: T time steps, B batch rows, I input features, H hidden units,
G = num_gates * H, V vocabulary size, K output features.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, NamedTuple, Protocol

import numpy as np


class Cell(Protocol):
    """One recurrent cell, one direction, one layer: the whole time loop in one call.

    Arrays are C-contiguous and share one dtype (float32 for training, float64 for gradient
    checks). Cells only run forwards in time: the layer feeds a reversed copy of each row's
    valid prefix for the reverse direction.

    lengths is always an int64 (B,) array with values in 0..T (the layer checks it and
    passes full rows as T, never None). Row b is valid for steps t < lengths[b]; past its
    length a row keeps its state unchanged and its output is zero. A row of length 0 is
    valid: its outputs are all zero, its final states are its initial states, and it gets
    zero gradients (dx zero, nothing added to the parameter gradients, and the gradient of
    its initial states is just d_final_states).

    num_threads is always an int >= 1: the layer resolves it where the call enters the
    library. A cell may use fewer threads (e.g. for small sizes), never more, and never
    decides the count itself.
    """

    # ---- required ----

    name: str  # registry key, e.g. "lstm" (plugins.OBJECT_NAME: letters, digits, _ - .)
    num_gates: int  # stacked gate blocks: weight_ih has num_gates * H rows
    state_names: tuple[str, ...]  # ("h",) or ("h", "c"); state 0 is always the output h

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """Parameter shapes by kind, in flat-buffer order, e.g.
        {"weight_ih": (G, I), "weight_hh": (G, H), "bias_ih": (G,), "bias_hh": (G,)}.
        A cell may add kinds of its own (e.g. peephole weights); names must be identifiers."""

    def init_params(self, params: dict[str, np.ndarray], hidden_size: int,
                    rng: np.random.Generator) -> None:
        """Fill ``params`` (views, by kind) in place with the cell's default initialisation."""

    def forward(self, x: np.ndarray, states: tuple[np.ndarray, ...],
                params: dict[str, np.ndarray], lengths: np.ndarray,
                num_threads: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], Any]:
        """Run the sequence.

        x (T, B, I); states: one (B, H) array per state name (never modified);
        params: by kind; lengths: int64 (B,), each in 0..T; num_threads: int >= 1.
        Returns (out (T, B, H), final_states (each (B, H), the state at the row's last valid
        step, or the initial state for a row of length 0), cache). ``cache`` is opaque: it
        is only handed back to ``backward``.
        """

    def backward(self, d_out: np.ndarray, d_final_states: tuple[np.ndarray | None, ...],
                 cache: Any, grads: dict[str, np.ndarray],
                 num_threads: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Backpropagation through time for the forward call that produced ``cache``.

        d_out (T, B, H): gradient w.r.t. out (entries past a row's length are ignored);
        d_final_states: per state, (B, H) or None (None means zero); num_threads: int >= 1.
        Parameter gradients are ADDED into ``grads`` (by kind, same shapes as params).
        Returns (dx (T, B, I), d_states), with d_states the gradient w.r.t. the initial
        states (each (B, H)); dx is zero past a row's length.
        """

    # ---- optional ----

    gate_order: tuple[str, ...]
    """One letter per gate block, in row order of weight_ih / weight_hh, e.g.
    ("i", "f", "g", "o"). An "f" marks a forget gate: the layer's ``forget_bias`` option
    sets that block of the biases. Without it the layer looks the cell's name up in
    recurrent.layout.GATE_ORDER (the built-in cells), and ``forget_bias`` is refused for
    cells it cannot place. The registry refuses a cell whose gate_order has not
    num_gates letters."""

    def infer(self, x: np.ndarray, states: tuple[np.ndarray, ...],
              params: dict[str, np.ndarray], lengths: np.ndarray,
              num_threads: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """forward() without keeping what backward needs (less memory and work): same
        arguments, returns (out, final_states). Layers call it when no gradient is wanted;
        without it they call forward() and drop the cache. The conformance kit checks that
        it agrees with forward()."""

    mask_kinds: tuple[str, ...]
    """The masks the cell takes, from ("recurrent", "zoneout") (recurrent/masks.py:
    variational recurrent dropout and zoneout). A cell that lists any takes a keyword
    argument ``masks`` in forward() (and infer(), if it has one): a dict {"recurrent":
    (B, H), "zoneout": one (T or 1, B, H) array or None per state}, either key optional;
    backward() then differentiates that call, masks fixed. Layers pass ``masks`` only
    when the layer's recurrent_dropout or zoneout option is on, and refuse the option,
    naming the cell, for a cell that does not list its kind (the registry refuses a cell
    that lists some but whose forward() or infer() takes no ``masks`` keyword).
    recurrent.masks.check_masks is the check to call on it."""

    zoneout_flags: tuple
    """The dtypes for which the cell takes zoneout's training draws as bool flags (one
    byte per entry) rather than 0/1 values of the run's dtype (recurrent/masks.py,
    takes_flags); without it, or for a dtype not listed, 0/1 values."""

    precisions: tuple[str, ...]
    """The precisions the cell's matrix products can run in, from ("fp32", "bf16")
    (recurrent/quant.py; without this member, fp32 alone). A cell listing "bf16" takes a
    keyword argument ``precision`` in forward(), infer() (if it has one) and backward():
    "bf16" for float32 arrays whose matrix products it runs with bfloat16 operands and
    float32 sums, activations, states and gradients staying float32; backward() gets
    the precision its forward() call had. Layers pass ``precision`` only when it is not
    "fp32" (a cell without this member is called as before), and refuse precision bf16,
    naming the cell, for a cell that does not list it."""

    def quantize(self, params: dict[str, np.ndarray]) -> Any:
        """The int8 form of float32 params (recurrent/quant.py), whatever infer_int8 takes.
        With infer_int8, it lets a layer run inference in int8 (Recurrent.precision); the
        layer keeps the result while the parameters stay the same."""

    def infer_int8(self, x: np.ndarray, states: tuple[np.ndarray, ...], qparams: Any,
                   lengths: np.ndarray,
                   num_threads: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """infer() with int8 products: x and states float32, qparams from quantize();
        returns (out, final_states) in float32. Layers pass ``masks`` (as to infer())
        when their zoneout option is on; a cell whose infer_int8 takes no such keyword
        runs int8 for layers without zoneout only (the layer refuses the others)."""


class Loss(Protocol):
    """A loss with its gradient computed in the same pass."""

    # ---- required ----

    name: str  # registry key, e.g. "mse" (plugins.OBJECT_NAME, as a cell's)

    def value_and_grad(self, outputs: np.ndarray, targets: np.ndarray,
                       mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Mean loss over the valid elements and d(loss)/d(outputs).

        outputs (..., K) float (logits for classification losses): the model's output as
        it is, (T, B, K) for a task with "sequence" output, (B, K) for a pooled one
        (recurrent/step.py, recurrent/runs.py). targets: for class losses int class ids
        of the outputs' leading shape, (T, B) or (B,); otherwise floats of the outputs'
        shape, (T, B, K) or (B, K). mask: None (every position counts) or bool/0-1 of the
        leading shape; training passes a (T, B) bool mask for sequence output with
        lengths (step t of row b is valid for t < lengths[b]) and None otherwise. Masked
        positions count in no mean, get zero gradient, and may hold any target (e.g. -1
        padding) and any output value. The leading dimensions are just rows: value and
        gradient equal those of the flattened arrays, outputs (N, K), targets (N,) or
        (N, K), mask (N,), N the product of the leading dimensions (the conformance kit
        checks both forms). Returns (loss as a float, d_outputs in the outputs' shape and
        dtype)."""

    # ---- optional ----

    target_kind: str
    """"class" (targets are int class ids (...), the outputs' leading shape) or "dense"
    (float targets (..., K), the outputs' shape). The conformance kit builds its targets
    from it; without it the kit tries dense targets and falls back to class ids.
    `recurrent train` refuses a --loss (not the task's own) of the other kind than the
    task's first batch's targets, told apart by their shape: the outputs' shape is dense
    (0/1 labels held as ints or bools too), integers of their leading shape class ids.
    The registry refuses another value (TARGET_KINDS)."""

    def combine(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The outputs of an ensemble's members (each (..., K), same shape) as one output
        of that shape (recurrent/ensemble.py): e.g. for logits of a softmax, the log of
        the mean of the members' probabilities. Without it an ensemble takes the mean."""


TARGET_KINDS = ("class", "dense")  # the values of Loss.target_kind

SPLITS = ("train", "valid", "test")  # the splits a task's data may hold (Task.splits)


class Task(Protocol):
    """A learning problem runnable from the CLI: `recurrent train NAME`.

    The framework owns the model, optimizer, loop, checkpoints and CLI plumbing. The task
    owns data, its preprocessing state, the model's input/output shape, metrics,
    baselines and what `predict` means. ``config`` is the plain dict of all resolved CLI
    options (shared ones like "batch_size", "seq_len", "seed" and the task's own).
    """

    # ---- required ----

    name: str  # e.g. "char-lm" (plugins.OBJECT_NAME, as a cell's)
    help: str  # one line for `recurrent --help` / `recurrent plugins`
    loss: str  # default loss name, e.g. "cross_entropy"

    def options(self) -> list:
        """Task-specific click.Option objects for `recurrent train NAME` (e.g. --data).
        None may take a flag or a config key of the shared training options, nor the key
        "eval_data" (the registry refuses the task: cli.reserved_train_options)."""

    def defaults(self) -> dict:
        """Overrides of shared training defaults for this task, e.g. {"seq_len": 100}."""

    def prepare(self, config: dict) -> dict:
        """Load and check the data named by ``config``; return the task state: a
        JSON-serialisable dict (vocabulary, scaler, column names, ...) that is saved in the
        run directory and handed back to every later call, the first run's training
        included, as config.json gives it back (tuples and numpy arrays as lists); a
        state config.json cannot keep (a set, an object, a key that is not a string) is
        refused. Raise recurrent.errors.UserError with a one-line message on bad input."""

    def model_spec(self, state: dict, config: dict) -> dict:
        """The model around the recurrent stack, as a plain dict:
        {"input": "tokens", "vocab_size": V, "embed_dim": E}
          or {"input": "features", "input_size": I};
        {"output": "sequence" | "last" | "mean" | "max", "output_size": K}.
        "sequence" emits K values per step; the others pool over valid steps, then K."""

    def batches(self, state: dict, split: str, config: dict,
                rng: np.random.Generator) -> Iterator[dict]:
        """Yield batches of split "train" / "valid" / "test" as plain dicts:
        {"x": (T, B) int64 token ids or (T, B, I) float32,
         "lengths": (B,) int64 or None,
         "y": targets: (T, B) int64 / (T, B, K) float for "sequence" output,
              (B,) int64 / (B, K) float for pooled output; with "sequence" output and
              lengths, the steps past a row's length count in no loss and may hold any
              target (e.g. -1),
         "reset": bool: False to carry the recurrent state over from the previous batch
                  (stateful streams, truncated BPTT); True (default) to start from zeros}"""

    # `recurrent eval RUN --data FILE` sets config["eval_data"] = FILE: then split is "test"
    # and the task reads that whole file with the saved state (vocabulary, scaler, ...);
    # a task that never reads the key is refused (recurrent/key_reads.py).

    def evaluate(self, state: dict, split: str, config: dict, model: "Runner") -> dict:
        """Metrics on ``split`` as a flat dict of floats/ints (lists allowed for matrices).
        Includes the loss the trainer minimises under "loss" (lower is better): the run's
        --loss (config.get("loss"), else the task's), e.g. with recurrent.step.SplitLoss."""

    # ---- optional ----

    causal: bool
    """True for a task whose targets are later inputs of the same sequence (next-step
    prediction, e.g. char-lm): at step t the model may see inputs up to t only. Training
    then refuses options that would show the model its targets (--bidirectional), for
    every task that sets it; without it (or False) the task sees whole sequences."""

    splits: tuple[str, ...]
    """The splits the task's data holds, from SPLITS ("train", "valid", "test"); without
    it all three. `recurrent eval` evaluates "test" by default, or "valid" when the task
    has no test split (and refuses an explicit --split the task lacks, without --data)."""

    cell_defaults: dict[str, dict]
    """Defaults that hold for one cell, {cell name: {option key: value}}, e.g. char-lm's
    {"gru": {"lr": 0.005}}: a run with that --cell takes them for the options not given on
    the command line (they beat defaults(); what is given beats them). Keys must be shared
    training options a run keeps or the task's own, other than "cell" ("out", "resume" and
    "ranks" are not kept), each value one its option takes."""

    unused_options: tuple[str, ...]
    """Shared training options the task never reads (config keys, e.g. ("seq_len",)):
    `recurrent train NAME` does not offer them, so --help lists only what has an effect.
    They keep their shared defaults in ``config``."""

    def moot_options(self, config: dict) -> dict:
        """The options that the other options in ``config`` leave without effect for
        this task, {key: what the option is for} (e.g. forecast's {"es_train": "the
        learned smoothing of --model esrnn (...); --model rnn has none"} under --model
        rnn; char-lm's {"tbptt": ...} for a --tbptt as long as its windows): `recurrent
        train` refuses one given on the command line ("--es-train is for ..."), as it
        refuses the shared ones (--momentum with adam). Called with the resolved options
        before prepare(); without it none is refused. Its keys must be the task's own
        options or shared training options (`recurrent plugins check NAME` checks them on
        the default options)."""

    def count_batches(self, state: dict, split: str, config: dict,
                      rng: np.random.Generator) -> int:
        """How many batches batches() would yield with these arguments, without making
        them: the trainer counts an epoch's steps with it (without it, by making them)."""

    def resolved_options(self, state: dict) -> dict:
        """option key -> the value the task chose for an option a run left at its default
        of None, or of no value for a repeatable one (seq2seq's --target-level, forecast's
        --season, --time-column and --column), from the run's ``state``:
        a resume that gives the option again with that value is not refused as a
        change."""

    def read_files(self, state: dict) -> dict:
        """option key -> the absolute path of the file the run reads for that path option
        (its --data), from the run's ``state``; left out for bundled data. A resume that
        gives the option again is judged by this file, not by the path as typed, which
        names another file (or none) from another working directory."""

    def moved_files(self, state: dict, moved: dict) -> dict:
        """The run's ``state`` reading, for each path option key in ``moved`` (among
        read_files'), the file at ``moved[key]`` (an absolute path) in place of the one
        the run was trained on, which is gone: the run's data moved (`train --resume RUN
        --data NEW`, `eval RUN --split S --data NEW`). Reads the file and raises a
        UserError when it cannot be read or does not hold the data the run was trained
        on (its content differs), as reading the run's data does. Without it a run's
        data cannot move."""

    def check_state(self, state: dict, model_spec: dict) -> None:
        """Raise ValueError naming what is wrong with a saved run's task state: a key
        missing or of the wrong type, a value out of range, a vocabulary of another size
        than ``model_spec``'s (recurrent.schema has the checks). Called whenever a run
        is opened (eval, predict, export, resume, import, ensemble members), so that a
        damaged or hand-edited config.json gives one line naming the entry rather than
        an internal error later, and by `recurrent train` on the state prepare() made,
        before the run directory is made. It must accept every state an earlier version
        of the task saved and still reads. Without it the state is used as it is."""

    def baselines(self, state: dict, split: str, config: dict) -> dict:
        """Trivial baselines' metrics on ``split``, keyed by baseline name:
        {"unigram": {"loss": ..., ...}, "bigram": {...}}, of JSON values (anything else
        is refused in one line). Shown beside every evaluation; without it there are none
        ({})."""

    def paired(self, state: dict, split: str, config: dict, model: "Runner") -> dict:
        """Paired tests of the model against each baseline on ``split``'s items, for
        `recurrent eval` of the test split (one line under the report, "paired" in
        --json): whether a difference is more than the split's sampling noise. Keyed by
        baseline name, each a recurrent.paired.result dict (test, metric, difference
        model - baseline, p, items, unit, and "identical" when the task can say whether
        the two scored every item the same); recurrent.paired has the tests. Without it
        there are none."""

    def format_report(self, state: dict, metrics: dict, baselines: dict) -> list[str]:
        """The human-readable report of `recurrent eval RUN` (without --json), as lines:
        ``metrics`` from evaluate(), ``baselines`` from baselines(). Presentation only: the
        same dicts are printed as they are with --json. recurrent.report has table helpers.
        Without it `recurrent eval RUN` prints recurrent.report.generic_report: one row per
        scalar metric, the model and each baseline as columns."""

    def report_notes(self, state: dict, baselines: dict) -> list[str]:
        """Lines saying what the evaluation lacks and why (a baseline whose package is not
        installed, with the command that installs it): format_report prints them among
        its lines; `recurrent eval --json`, whose stdout is the JSON alone, on stderr.
        ``baselines``: baselines()'s dict, or a backtest's "forecasters". Without it
        there are none."""

    def backtest(self, state: dict, split: str, config: dict, model: "Runner",
                 origins: int) -> dict:
        """Rolling-origin evaluation for `recurrent eval RUN --backtest N` (N >= 2, checked
        by the CLI): ``origins`` forecast origins over ``split``, a JSON-able dict with the
        mean and spread of each metric over them, per forecaster. Without it
        `--backtest` is refused with one line."""

    def candidates(self, config: dict) -> list[dict]:
        """Option values only training can choose between: a list of two or more
        overrides ({option: value}), one per candidate, or [] for a plain run. A new run
        (`recurrent train`, runs.start_run) then prepares and trains one run per override
        and keeps the one whose finished model scores best on the validation split by
        --select-by (recurrent/candidates.py). Called with the resolved options before
        prepare(); without it every run is plain."""

    def initial_params(self, state: dict, config: dict) -> dict:
        """Parameters a fresh run starts from instead of the model's own initialisation,
        {name as in the model's param_shapes(): array of that shape} (any subset; {} for
        none), e.g. a part fitted on the data before training. Not called on resume.
        Without it every parameter keeps the model's initialisation."""

    def trained_params(self, state: dict, config: dict) -> dict:
        """Parameters of the task's own that train with the network, {name: float array}
        of their starting values ({} for none), e.g. coefficients that shape the inputs
        and targets (recurrent/task_params.py). The trainer then updates them in the
        network's step with an optimizer of the same kind, checkpoints them as
        "task/<name>", and calls batches(..., params={name: live array}) on "train": each
        batch is made with the current values and carries "backward", a function
        (d_outputs, d_inputs, rows) -> {name: gradient} of the loss for the batch rows
        ``rows`` (a slice), from the gradients on the model's outputs and on its
        feature inputs (T, B, I). Needs one window per batch. With it, with_params."""

    fixed_params_option: str
    """The option (with its value) that keeps trained_params' parameters fixed, e.g.
    "--es-train first": named when an option that cannot cover them (--average) is
    refused."""

    def with_params(self, state: dict, values: dict) -> dict:
        """The task state with trained_params' values {name: array} folded in (JSON-able),
        as evaluation during training, after_training, eval, predict and export see it."""

    def after_training(self, state: dict, config: dict, model: "Runner") -> dict:
        """Choices that need the trained model, made on the "valid" split (never "test"):
        called once when training ends (not on Ctrl-C) with the best checkpoint's model;
        returns the task state to keep, which replaces the saved one, so that eval,
        predict and backtest use it. Extending a finished run (--resume) calls it again
        at the new end; the evaluations in between see training_state(state) when the
        task has it, else the earlier choice."""

    def training_state(self, state: dict) -> dict:
        """The task state without after_training's choices: what a resumed run trains
        and evaluates with until after_training chooses again (forecast: the blend taken
        out, so checkpoints are compared on the whole correction, as before the choice).
        It also tells a resume of an ended run whether the saved state holds choices that
        changed the model: without it, such a resume scores the finished model once on
        "valid" for its summary figure."""

    def format_backtest(self, state: dict, split: str, result: dict) -> list[str]:
        """The text of `recurrent eval RUN --backtest N` (without --json) as lines, from
        backtest()'s dict; without it the dict is printed as JSON."""

    def predict_options(self) -> list:
        """click.Option / click.Argument objects of `recurrent predict RUN ...`; without it
        the command takes no options. None takes a flag of predict's own (--precision,
        --stream: predict_api.OWN_FLAGS)."""

    def predict(self, state: dict, config: dict, model: "Runner", options: dict) -> Iterable[str]:
        """Run the trained model as the task defines (sample text, classify, forecast);
        yield lines (str) to print; a str returned whole is refused. Without it
        `recurrent predict` says the task has none."""

    def predict_stream(self, state: dict, config: dict, model: "Runner",
                       options: dict) -> Callable[[str], dict]:
        """`recurrent predict RUN --stream`: a function answering one input line of stdin
        (without its line break) with a JSON-able dict, called for each line as it arrives;
        it keeps what it needs between lines (a recurrent state, a window of values). It
        raises recurrent.errors.UserError for a line it cannot read, and must then leave
        its state as it was, so the stream goes on. ``options`` are predict_options()'s:
        read those it uses (or refuses) in this call, not later in the function it
        returns, as `recurrent predict` refuses one given on the command line that this
        call did not read ("--temperature does not apply to --stream"). Without it
        `--stream` is refused for the task."""


class Runner(Protocol):
    """A trained model as tasks see it: numpy in, numpy out, eval mode (no dropout).
    The framework provides it (SequenceModel.runner()); tasks only call it."""

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None,
                state: Any = None) -> tuple[np.ndarray, Any]:
        """x as in a batch -> (outputs, state): outputs (T, B, K) for "sequence" models,
        (B, K) for pooled ones (logits / raw values, before softmax)."""

    def step(self, x_t: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """One step: x_t (B,) token ids or (B, I) -> (outputs (B, K), state)."""


# ---- member names: the data the checks derive from ----------------------------------------

class Members(NamedTuple):
    """The member names of one protocol: those an object must have, those it may have, and
    (optional member, member it needs) pairs: an object with the first must have the
    second too, as the framework then calls both."""
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    needs: tuple[tuple[str, str], ...] = ()


MEMBERS: dict[type, Members] = {
    Cell: Members(required=("name", "num_gates", "state_names", "param_shapes", "init_params",
                            "forward", "backward"),
                  optional=("gate_order", "infer", "mask_kinds", "zoneout_flags", "precisions",
                            "quantize", "infer_int8")),
    Loss: Members(required=("name", "value_and_grad"),
                  optional=("target_kind", "combine")),
    Task: Members(required=("name", "help", "loss", "options", "defaults", "prepare",
                            "model_spec", "batches", "evaluate"),
                  optional=("causal", "splits", "cell_defaults", "unused_options", "check_state", "baselines",
                            "paired", "format_report", "report_notes", "candidates",
                            "initial_params",
                            "trained_params", "fixed_params_option", "with_params",
                            "after_training", "training_state", "backtest", "count_batches",
                            "resolved_options", "read_files", "moved_files", "moot_options",
                            "format_backtest", "predict_options", "predict", "predict_stream"),
                  # the trainer folds the trained values into the state with with_params;
                  # a moved file is found among those read_files names
                  needs=(("trained_params", "with_params"), ("moved_files", "read_files"))),
    Runner: Members(required=("forward", "step")),
}


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The required members of ``protocol`` (Cell, Loss, Task or Runner) that ``obj``
    lacks, in contract order, then each member that one of its optional members needs
    ("with_params (needed with trained_params)"); [] when it has them all."""
    members = MEMBERS[protocol]
    missing = [name for name in members.required if not hasattr(obj, name)]
    return missing + [f"{needed} (needed with {member})" for member, needed in members.needs
                      if hasattr(obj, member) and not hasattr(obj, needed)]
