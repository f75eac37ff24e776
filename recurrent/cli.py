"""The `recurrent` command line: thin click commands over runs.py, checkpoint.py and the
plugin registry.

Error policy: a UserError, a bad option value or an unknown name prints ONE line on stderr
("Error: ...") and exits non-zero (1, or 2 for usage errors); a traceback appears only with
--debug. Plugins add commands through register_commands(cli=cli) at the bottom.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import click
from click.core import ParameterSource

from . import __version__, averaging, candidates, distributed, ensemble, plugins, report
from .checkpoint import json_text
from ._console import debug_asked
from .checks import beyond_any_array, memory_problem, unbroken
from .cli_options import RANK_COUNT, THREAD_COUNT, checkpoint_option
from .errors import AllRanksError, TrainingDataUnavailable, UserError, error_line
from .figures import counted
from .interrupt import Terminated, terminating_as_ctrl_c
from . import datafile, moved_data, out_paths, predict_api, std_streams
from .key_reads import KeyReads
from .progress import aside, share_text, warn_once
from .protocols import SPLITS
from .quant import PRECISION_HELP, PRECISIONS, runs_as
from .threads import env_threads, oversubscription_note, single_threaded_blas
from .tuning import env_vector_level

QUICK_START = """Fast CPU RNN / LSTM / GRU training from the command line.

\b
Quick start (each line runs as-is on the bundled data):
  recurrent train char-lm --steps 300 --out runs/shakespeare
  recurrent predict runs/shakespeare --prime "Romeo." --length 300
  recurrent train sentiment --out runs/reviews
  recurrent eval runs/reviews --split test
  recurrent train forecast --out runs/sunspots
  recurrent predict runs/sunspots --steps 12
  recurrent train --resume runs/shakespeare     # after a Ctrl-C: continues bit for bit
  recurrent plugins          # cells, losses, tasks, commands and who provides them
  recurrent info             # version, OpenMP, threads, BLAS, kernel tuning
  recurrent tune             # measure the kernels' settings on this CPU (seconds)

`recurrent train TASK --help` lists a task's options; every option has a default.
"""


# a plain hyphen while help text is wrapped: a character textwrap never breaks a line
# after, and one no help text holds (a Unicode noncharacter, kept for a program's internal
# use), so that the page written turns back exactly the hyphens this made
_KEPT_HYPHEN = "\ufdd0"


def _kept(text):
    return text.replace("-", _KEPT_HYPHEN) if isinstance(text, str) else text


class _HelpFormatter(click.HelpFormatter):
    """click's help formatter, but a line never breaks after a hyphen: an option's name
    (--select-by), a default ([default: runs/TASK-DATE-TIME], no-nesterov) or a
    hyphenated word goes to the next line whole. click wraps with textwrap, which breaks
    hyphenated words and takes no setting against it, so every hyphen is _KEPT_HYPHEN
    while text is wrapped and a hyphen again in the page written."""

    def write_usage(self, prog, args="", prefix=None):
        super().write_usage(_kept(prog), _kept(args), prefix)

    def write_text(self, text):
        super().write_text(_kept(text))

    def write_dl(self, rows, *args, **kwargs):
        super().write_dl([tuple(_kept(t) for t in row) for row in rows], *args, **kwargs)

    def getvalue(self):
        return super().getvalue().replace(_KEPT_HYPHEN, "-")


class _HelpContext(click.Context):
    """A command's context whose help pages and usage lines _HelpFormatter writes."""
    formatter_class = _HelpFormatter


def _with_help_formatter(command):
    """``command``, and a group's subcommands, with help pages and usage lines written by
    _HelpFormatter; ``command`` returned. click makes each command's context of that
    command's own context_class, so every command of recurrent's (plugins' too) carries
    _HelpContext: click.Context itself, which other click programs of the process and
    other threads use, keeps click's formatter. A context class of the command's own
    keeps its methods, and its formatter when it sets one."""
    own = command.context_class
    if own.formatter_class is click.HelpFormatter:
        command.context_class = _HelpContext if own is click.Context else \
            type(own.__name__, (own,), {"formatter_class": _HelpFormatter})
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_help_formatter(sub)
    return command


class RecurrentGroup(click.Group):
    """The root group: its main() turns every failure into one line on stderr; it and
    every command added to it write their help with _HelpFormatter."""

    context_class = _HelpContext

    def add_command(self, cmd, name=None):
        super().add_command(_with_help_formatter(cmd), name)

    def make_context(self, info_name, args, parent=None, **extra):
        # again for every command as a run starts: a plugin's group may have gained
        # subcommands after it was added here (@cli.group, then @group.command)
        for command in self.commands.values():
            _with_help_formatter(command)
        # the arguments as given, for `train --ranks N` to start its ranks with (main()'s
        # args: sys.argv's only when it was given none)
        given = list(args)
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[ARGS_KEY] = given
        return ctx

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        args = list(sys.argv[1:] if args is None else args)
        debug = debug_asked(args)
        joins_world = distributed.joins_world(args)

        def report(line, code, all_ranks=False):
            return _report(line, code, all_ranks, joins_world)

        def raised(debug, all_ranks=False):
            return _raised_for_debug(debug, joins_world, all_ranks)

        # every command writes its result or summary to stdout: checked before any work,
        # as a write failing only after it (as cat's does) would leave a run directory
        # without its summary, and a closed one would drop the output with exit status 0
        unusable = std_streams.unusable(sys.stdout, writing=True)
        if unusable:
            code = report(f"Error: standard output is {unusable}: recurrent writes its "
                          f"results there (redirect it to /dev/null to discard them)", 1)
            if standalone_mode:
                sys.exit(code)
            return code
        try:
            # BLAS on one thread for the whole command (recurrent/threads.py): the kernels
            # bring their own threads, and what else calls BLAS (the baselines' L-BFGS
            # fits, the paired tests) then gives the same bits on any machine. A SIGTERM
            # or SIGHUP ends every command as a Ctrl-C does (recurrent/interrupt.py), so
            # that no file it was writing is left half-made.
            with single_threaded_blas(), terminating_as_ctrl_c():
                rv = super().main(args, prog_name or "recurrent", complete_var,
                                  standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except (click.exceptions.Abort, KeyboardInterrupt) as e:
            # click turns a Ctrl-C during the command into Abort; one after it (as the
            # with block above ends) arrives as it is
            if raised(debug):
                raise
            cause = e.__cause__ if isinstance(e, click.exceptions.Abort) else e
            # Terminated: a SIGTERM or SIGHUP where a Ctrl-C aborts
            code = report("Aborted.", 128 + (cause.signum if isinstance(cause, Terminated)
                                             else signal.SIGINT))
        except click.exceptions.NoArgsIsHelpError as e:  # bare `recurrent`: the quick start
            click.echo(e.ctx.get_help() if e.ctx else e.format_message())
            code = 0
        except click.ClickException as e:
            if raised(debug):
                raise
            code = report(f"Error: {_click_line(e)}", e.exit_code)
        except AllRanksError as e:
            if raised(debug, all_ranks=True):
                raise
            code = report(f"Error: {unbroken(e)}", 1, all_ranks=True)
        except UserError as e:
            if raised(debug):
                raise
            code = report(f"Error: {unbroken(e)}", 1)
        except MemoryError as e:  # sizes the machine cannot hold (--hidden, --beam, ...)
            if raised(debug):
                raise
            code = report(_memory_line(e), 1)
        except Exception as e:  # a bug, or output that cannot be written: one line
            if raised(debug):
                raise
            failure = _output_failure(e)
            from .extras import missing_dependency
            missing = missing_dependency(e)
            if beyond_any_array(e):
                code = report(_memory_line(e), 1)
            elif failure:
                code = report(f"Error: {failure}", 1)
            elif missing:  # an install that lost one of recurrent's own dependencies
                code = report(f"Error: {missing}", 1)
            else:
                # a plugin's bug names the plugin: the one to fix, update or uninstall
                culprit = plugins.plugin_in_traceback(e)
                where = "" if culprit is None else \
                    f" in plugin {culprit[0]!r} (version {culprit[1]})"
                code = report(f"Error: internal error{where} ({error_line(e)}); "
                              f"rerun with --debug for the traceback", 1)
        if standalone_mode:
            sys.exit(code)
        return code


def _raised_for_debug(debug: bool, joins_world: bool, all_ranks: bool = False) -> bool:
    """Whether the failure being handled leaves the command as an exception, for its
    traceback (--debug). A rank of an MPI job (``joins_world``: a command whose ranks
    meet, under a launcher of more than one rank) prints the traceback and then reports
    the failure as without --debug, which stops every rank: its exception alone would
    end this rank and leave the others waiting for it in a collective. A failure every
    rank meets (``all_ranks``, AllRanksError) shows rank 0's traceback alone, as its
    line."""
    if not debug:
        return False
    if not (joins_world and distributed.in_job()):
        return True
    world = distributed.current()
    if not all_ranks or world is None or world.is_root:
        import traceback
        traceback.print_exc()
    return False


def _click_line(e: click.ClickException) -> str:
    """A click error as one line. A missing option's message lists its choices a line
    each ("Choose from:", then a tab before each), all of them the command's own words:
    joined with spaces, as escaped line breaks would garble the list; any other message
    may quote user input and is escaped (unbroken)."""
    message = e.format_message()
    if isinstance(e, click.MissingParameter):
        return " ".join(line.strip() for line in message.splitlines() if line.strip())
    return unbroken(message)


# ctx.meta's key of the command-line arguments the root group was given.
ARGS_KEY = "recurrent.args"


def _memory_line(e: BaseException) -> str:
    """The error line of a MemoryError, or of a size beyond any array (checks.beyond_any_array)."""
    return f"Error: {memory_problem(e)}"


def _output_failure(e: BaseException) -> str | None:
    """What went wrong when ``e`` is a failed write of the command's output, else None.
    An OSError of a full disk or a file-size limit (std_streams.write_failure). A
    UnicodeEncodeError raised by click.echo's write: a character that stdout's encoding
    (a Latin-1 locale, PYTHONIOENCODING) cannot represent; click itself writes UTF-8
    where that encoding is ASCII. A closed pipe (`| head`) is click's, handled before
    this."""
    if isinstance(e, OSError):
        return std_streams.write_failure(e)
    if isinstance(e, UnicodeEncodeError) and _raised_by(e, click.echo):
        return std_streams.encoding_problem(e.encoding, e.object[e.start])
    return None


def _raised_by(e: BaseException, function) -> bool:
    """Whether the innermost Python frame of ``e``'s traceback is ``function``'s."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code is function.__code__


# the longest failure line printed whole: one quoting a value of a crafted file (a
# config.json whose cell name is megabytes long) keeps its start and end
LONGEST_LINE = 2000


def _shortened(line: str) -> str:
    if len(line) <= LONGEST_LINE:
        return line
    half = LONGEST_LINE // 2
    return f"{line[:half]} ... ({len(line) - 2 * half} characters left out) ... {line[-half:]}"


def _report(line: str, code: int, all_ranks: bool = False, joins_world: bool = False) -> int:
    """Print a failure line (_shortened); in a data-parallel job, also stop the other
    ranks (distributed.report_failure). Returns the exit code. A failure before the
    ranks of an MPI job made their World (click's option checks, a bad
    RECURRENT_MPI_TIMEOUT) is printed by the launcher's rank 0 alone; in a command that
    makes the World (``joins_world``), the ranks that got past it are told, so that none
    waits for this one (distributed.report_early_failure)."""
    line = _shortened(line)
    world = distributed.current()
    if world is None or world.size == 1:
        if distributed.report_early_failure(line, joins_world):
            click.echo(line, err=True)
        return code
    return distributed.report_failure(world, line, code, all_ranks)


@click.group(cls=RecurrentGroup, help=QUICK_START,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="recurrent")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug):
    # every command runs kernels or reports their threads and vector code: a set but
    # invalid RECURRENT_NUM_THREADS or RECURRENT_VECTOR_LEVEL is one line here, before
    # any work, whatever the sizes
    env_threads()
    env_vector_level()
    # a named pipe's content is kept for the reads of one command, never the next's
    from .datafile import forget_pipes
    forget_pipes()


# ---- train --------------------------------------------------------------------------

def _average_option(ctx, param, value):
    """--average checked when the command line is read (averaging.parse)."""
    try:
        averaging.parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1], ctx, param) from None
    return value


def _shared_options(defaults: dict, loss: str | None = None) -> list:
    """The training options every task gets, with the task's defaults filled in; ``loss``:
    the task's default loss, which --loss shows (its default stays None: _make_trainer
    puts the task's loss in its place)."""
    d = defaults
    shown_loss = loss or "the task's"

    def opt(decls, help, **kw):
        name = kw.pop("key")
        return click.Option(decls, default=d.get(name), show_default=True, help=help, **kw)

    return [
        opt(["--cell"], "Recurrent cell (see `recurrent plugins`).", key="cell"),
        opt(["--hidden"], "Hidden units per layer and direction.", key="hidden",
            type=click.IntRange(min=1)),
        opt(["--layers"], "Stacked recurrent layers.", key="layers", type=click.IntRange(min=1)),
        opt(["--dropout"], "Dropout between stacked layers and before the output head.",
            key="dropout", type=click.FloatRange(0, 1, max_open=True)),
        opt(["--recurrent-dropout"], "Variational dropout of the recurrent state: one mask "
            "per sequence on h where it enters the recurrent product (training only).",
            key="recurrent_dropout", type=click.FloatRange(0, 1, max_open=True)),
        opt(["--zoneout"], "Zoneout: each unit of h (and an LSTM's c) keeps its previous "
            "value with this probability at each training step; evaluation uses the "
            "expectation.", key="zoneout", type=click.FloatRange(0, 1, max_open=True)),
        opt(["--bidirectional/--unidirectional"], "Run a reverse direction too.",
            key="bidirectional"),
        opt(["--init"], "Weight initialisation.", key="init",
            type=click.Choice(["uniform", "orthogonal", "glorot"])),
        click.Option(["--loss"], default=None,
                     help=f"Loss (see `recurrent plugins`) [default: {shown_loss}]."),
        opt(["--forget-bias"], "Initial forget-gate bias of cells that have one (LSTM), "
            "e.g. 1.0 (default: the bias --init gives it).", key="forget_bias", type=float),
        opt(["--optimizer"], "Optimizer.", key="optimizer",
            type=click.Choice(["sgd", "adam", "adamw", "rmsprop"])),
        opt(["--lr"], "Learning rate.", key="lr", type=click.FloatRange(min=0, min_open=True)),
        opt(["--weight-decay"], "Weight decay (L2; decoupled for adamw) [default: 0.01 for "
            "adamw, as torch's AdamW; 0 for the others].", key="weight_decay",
            type=click.FloatRange(min=0)),
        opt(["--average"], averaging.HELP, key="average", metavar="off|ema:D|swa:S",
            callback=_average_option),
        opt(["--momentum"], "Momentum of sgd and rmsprop [default: 0.9 for sgd; 0 for "
            "rmsprop, as torch's RMSprop].", key="momentum",
            type=click.FloatRange(0, 1, max_open=True)),
        opt(["--nesterov/--no-nesterov"], "Nesterov momentum (sgd).", key="nesterov"),
        opt(["--schedule"], "Learning-rate schedule after the warm-up.", key="schedule",
            type=click.Choice(["constant", "step", "cosine"])),
        opt(["--warmup"], "Linear warm-up steps.", key="warmup", type=click.IntRange(min=0)),
        opt(["--decay-every"], "Steps between decays of the step schedule.", key="decay_every",
            type=click.IntRange(min=1)),
        opt(["--decay-gamma"], "Factor of each decay of the step schedule (below 1).",
            key="decay_gamma", type=click.FloatRange(min=0, min_open=True)),
        opt(["--min-lr"], "Final learning rate of the cosine schedule.", key="min_lr",
            type=click.FloatRange(min=0)),
        opt(["--epochs"], "Passes over the training data (0 = no limit; on --resume, "
            "counted from the run's start).", key="epochs", type=click.IntRange(min=0)),
        opt(["--steps"], "Stop after this many optimizer steps (0 = no limit; on --resume, "
            "counted from the run's start).", key="steps", type=click.IntRange(min=0)),
        opt(["--batch-size"], "Rows per batch.", key="batch_size", type=click.IntRange(min=1)),
        opt(["--seq-len"], "Time steps per training sequence (tasks that cut streams).",
            key="seq_len", type=click.IntRange(min=1)),
        opt(["--clip-norm"], "Clip the global gradient L2 norm to this (0 = off).",
            key="clip_norm", type=click.FloatRange(min=0)),
        opt(["--clip-value"], "Clip every gradient element to [-v, v] (before --clip-norm, "
            "when both are on; default: off).", key="clip_value",
            type=click.FloatRange(min=0, min_open=True)),
        opt(["--tbptt"], "Truncated BPTT: gradients reach back at most K steps (windows "
            "for per-step outputs, each row's last K steps for pooled ones; 0 = off).",
            key="tbptt", type=click.IntRange(min=0)),
        opt(["--threads"], "Kernel threads (default: recurrent's choice).", key="threads",
            type=THREAD_COUNT),
        opt(["--seed"], "Random seed: same seed, same run (bit-identical at 1 thread).",
            key="seed", type=click.IntRange(min=0)),
        opt(["--patience"], "Stop after N evaluations without improvement (0 = off).",
            key="patience", type=click.IntRange(min=0)),
        opt(["--select-by"], "Validation figure that picks the best checkpoint (and that "
            "--patience watches): loss, or a metric with its direction, NAME:max or "
            "NAME:min (e.g. accuracy:max).", key="select_by",
            metavar="loss|NAME:max|NAME:min"),
        opt(["--ensemble"], "Train this many members, each with its own seed, one after "
            "another; eval, predict and export combine their outputs (the mean of their "
            "probabilities for a softmax loss).", key="ensemble", metavar="K",
            type=click.IntRange(min=1, max=ensemble.MAX_MEMBERS)),
        opt(["--eval-every"], "Evaluate every N steps (0 = after every epoch).",
            key="eval_every", type=click.IntRange(min=0)),
        opt(["--log-every"], "Log the training loss every N steps (0 = auto).",
            key="log_every", type=click.IntRange(min=0)),
        opt(["--quiet"], "Print only the final summary, and errors and notes on stderr.",
            key="quiet", is_flag=True),
        opt(["--plot/--no-plot"], "Write loss.png in the run directory (needs matplotlib).",
            key="plot"),
        click.Option(["--out"], default=None, metavar="RUN",
                     help="Run directory to create [default: runs/TASK-DATE-TIME]."),
        click.Option(["--resume"], default=None, metavar="RUN",
                     help="Continue the run in RUN exactly where it stopped (with --data "
                          "NEW when its data file has moved)."),
        opt(["--precision"], "Precision of the recurrent layers' products in training and "
            "validation: bf16 (every built-in cell; CPUs with AVX512_BF16, else fp32 with a "
            "note) multiplies bfloat16 values with float32 sums, the parameters and "
            "checkpoints staying float32; eval and predict run fp32 unless given "
            "--precision too. int8 is for inference (predict, eval, bench --mode infer).",
            key="precision", type=click.Choice(PRECISIONS)),
        click.Option(["--ranks"], default=None, type=RANK_COUNT, metavar="N",
                     help="Train data-parallel on N processes of the local computer (starts "
                          "mpiexec; needs the mpi extra; docs/distributed.md)."),
    ]


def reserved_train_options() -> tuple[set, set]:
    """(keys, flags) that a task's own options must not take: those of the shared training
    options (a task's --hidden beside the shared one would leave one of them without
    effect, and the framework reads config["hidden"] as the shared option checks it), the
    help flags, and the key "eval_data", which `recurrent eval --data` sets. The registry
    refuses a task whose options() takes one (recurrent/plugins.py)."""
    from .config import SHARED_DEFAULTS
    params = _shared_options(SHARED_DEFAULTS)
    keys = {p.name for p in params} | {"eval_data"}
    flags = {flag for p in params for flag in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
    return keys, flags


def training_params(task) -> list:
    """Every option `recurrent train TASK` declares, shared and the task's own (click
    Options): what a run's saved options are checked against (config.saved_option_problem)."""
    from .config import SHARED_DEFAULTS, task_options
    return _shared_options(SHARED_DEFAULTS) + task_options(task)


def _note_cell_defaults(params, by_cell: dict) -> None:
    """Add to the help of each option in ``params`` the defaults a cell has of its own
    (Task.cell_defaults): "(with --cell gru: 0.005)"."""
    for param in params:
        own = [f"--cell {cell}: {options[param.name]}" for cell, options in by_cell.items()
               if param.name in options]
        if own and isinstance(param, click.Option):
            said = (param.help or "").rstrip().rstrip(".")
            param.help = f"{said} (with {'; '.join(own)}).".lstrip()


def _train_command(task) -> click.Command:
    from .config import TrainingConfig, cell_defaults, task_options
    defaults = TrainingConfig.resolve(task, {})
    task_params = task_options(task)
    # options the task never reads (Task.unused_options) are not offered
    unused = set(task.unused_options if hasattr(task, "unused_options") else ())
    params = [p for p in _shared_options(defaults, task.loss)
              if p.name not in unused] + task_params
    _note_cell_defaults(params, cell_defaults(task))

    def callback(**values):
        ctx = click.get_current_context()
        _train(ctx, task, values)

    return _with_help_formatter(click.Command(
        task.name, params=params, callback=callback,
        help=f"{task.help}\n\nEvery option has a default: `recurrent train "
             f"{task.name}` alone trains on the task's bundled data.",
        short_help=task.help, context_settings={"max_content_width": 100}))


def _default_out(task_name):
    """A new run's default directory, runs/TASK-DATE-TIME (then -2, -3, ...), taken by
    creating it: os.mkdir fails on one that exists, so two trainings started in the same
    second (two shells, a script starting several) never pick the same one, which the
    later one would refuse as holding a run once the first had written there."""
    base = os.path.join("runs", f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.makedirs("runs", exist_ok=True)
    except OSError as e:
        # a file named runs is the mistake to name, which "File exists" would hide
        why = "runs is not a directory" if out_paths.non_directory("runs") else e.strerror
        raise UserError(f"cannot create the runs directory: {why}; give --out") from None
    path, n = base, 1
    while True:
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            n += 1
            path = f"{base}-{n}"
        except OSError as e:
            raise UserError(f"cannot create run directory {path}: {e.strerror}; "
                            f"give --out") from None


def _start_default(task, config, echo, world):
    """start_run in the default directory (_default_out), which is removed again, with
    runs/ if this made it, when the run is refused before anything is written there."""
    from .runs import start_run
    # a working directory inside a run: refused as --out there is (start_run), naming
    # the default the user did not type, before runs/ is made in that run
    out_paths.check_outside_runs("the default run directory", "runs" + os.sep,
                                 "give --out outside it")
    made_runs = not os.path.isdir("runs")
    path = _default_out(task.name)
    try:
        return start_run(task, config, path, echo, world)
    except BaseException:
        for directory in [path] + (["runs"] if made_runs else []):
            try:
                os.rmdir(directory)  # only an empty one: nothing of a run is removed
            except OSError:
                break
        raise


def _train(ctx, task, values):
    from .distributed import world as current_world
    from .runs import parallel_trainer
    out, resume, ranks = values.pop("out"), values.pop("resume"), values.pop("ranks")
    out_paths.not_stdout("--out", out, "a run directory")  # before any rank is started
    if "data" in values:
        values["data"] = datafile.data_path("--data", values["data"])
    for option, path in (("--out", out), ("--resume", resume)):
        if path:  # the run's path is in the first line printed and in the summary
            std_streams.check_printable(f"{option} {path}", out_paths.home_path(path))
    world = current_world()
    datafile.check_every_rank_reads(values.get("data"), max(ranks or 1, world.size))
    if ranks is not None and world.size == 1 and ranks > 1:
        from .launch import launch
        ctx.exit(launch(ranks, ctx.meta.get(ARGS_KEY, sys.argv[1:])))
    if ranks is not None and ranks != world.size:
        raise AllRanksError(f"--ranks {ranks}: this job already runs on {world.size} "
                        f"rank(s); give --ranks without mpiexec, or mpiexec without --ranks")
    distributed.ignore_ctrl_c(world)
    if not world.is_root:
        from .quant import leave_bf16_note_to_rank_0
        leave_bf16_note_to_rank_0()
    trainer = parallel_trainer(task, world, lambda: _make_trainer(
        ctx, task, values, out, resume, world))
    # said once, by the first rank, for the threads of the ranks on its host (a job may
    # span hosts), once the run is made (a refusal stays the one line printed); ranks
    # all on this host that --ranks started (the launcher's directory in their
    # environment) are named by that option
    here = world.local_size
    how = (f"{here} of the job's {world.size} ranks on this host" if here < world.size
           else None if os.environ.get(distributed.LAUNCH_DIR_VARIABLE)
           else f"mpiexec's {here} ranks")
    note = world.is_root and oversubscription_note(values.get("threads"), here, how)
    if note:
        warn_once(note)
    quiet = values.get("quiet") or not world.is_root
    resumed = resume is not None
    if not quiet:
        click.echo(f"{'resuming' if resumed else 'training'} {task.name} in {trainer.run.path}: "
                   f"{trainer.config['cell']} x{trainer.config['layers']} hidden "
                   f"{trainer.config['hidden']}, {trainer.num_params:,} parameters"
                   + (f" in {trainer.size} members" if trainer.size > 1 else "")
                   + (f", {len(trainer.options)} candidates to choose from"
                      if getattr(trainer, "options", None) else "")
                   + (f", data-parallel on {world.size} ranks" if world.size > 1 else "")
                   + (f", {runs_as(trainer.config['precision'])} products"
                      if runs_as(trainer.config.get("precision", "fp32")) != "fp32" else ""))
    summary = trainer.fit(resume=resumed)
    distributed.ignore_ctrl_c(world, training_over=True)
    if world.is_root:
        _print_summary(task, summary, getattr(trainer, "moved_saved", False))
    if summary["status"] == "interrupted":  # 130 after a Ctrl-C, 143 after a SIGTERM
        ctx.exit(128 + _stop_signal(summary))


def _make_trainer(ctx, task, values, out, resume, world):
    """The Trainer of a new run (--out) or of a resumed one (--resume RUN)."""
    from .checkpoint import RunDir
    from .config import TrainingConfig
    from .runs import resume_run, start_run
    quiet = values.get("quiet")

    def echo(line):
        click.echo(line)

    if resume is not None:
        if out is not None:
            raise UserError("give either --out (a new run) or --resume (an existing one)")
        run = RunDir.open(resume)
        info = run.info()
        if info["task"] != task.name:
            raise UserError(f"{resume} is a {info['task']!r} run, not {task.name!r}")
        changes = {key: value for key, value in values.items()
                   if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE}
        changes["quiet"] = quiet  # how this invocation prints, not a property of the run
        return resume_run(task, run, echo, changes, world)
    given = {key for key in values
             if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE}
    config = TrainingConfig.resolve(task, values, given)
    if config.get("loss") is None:  # an empty --loss "" is refused, not read as this
        config["loss"] = task.loss
    config.check(task)  # the options' own values first, then how they go together
    config.check_given(given, task)
    if out is None:
        return _start_default(task, config, echo, world)
    return start_run(task, config, out_paths.named("--out", out, None), echo, world)


def _stop_signal(summary) -> int:
    """The signal an interrupted run's stop was requested with (recurrent/interrupt.py)."""
    return summary.get("signal") or signal.SIGINT


def _print_summary(task, summary, moved_saved=False):
    """The last line of `train`; ``moved_saved``: an ended resume saved its data's new
    place (runs.resume_run)."""
    run = summary["run"]
    word = out_paths.shell_word(run)  # the run in the commands printed
    best_text = (f"best {summary['best']}" if summary.get("best")
                 else summary.get("no_best") or "no evaluation")
    if summary["status"] == "interrupted":
        if summary.get("before"):  # between the parts of a run: none was cut short
            noun = summary["before"].split()[0]
            where = f"before {summary['before']}: the {noun}s before it are saved"
        else:
            part = f" of {summary['part']}" if summary.get("part") else ""
            where = (f"while pretraining{part}, before its first step: nothing of it saved"
                     if summary.get("unsaved") else
                     f"at step {summary['step']}{part}: checkpoint saved")
        how = ("terminated (SIGTERM)" if _stop_signal(summary) == signal.SIGTERM
               else "interrupted")
        click.echo(f"{how} {where}; continue with "
                   f"`recurrent train {task.name} --resume {word}`")
        return
    steps = summary.get("steps_text") or counted(summary["step"], "step")
    # a resume with no step left: it wrote no more than a missing or stale loss.png and
    # the data's new place
    if summary.get("nothing_left"):
        reached, more = summary["nothing_left"]
        done = [f"{', '.join(summary['plotted'])} drawn"] if summary.get("plotted") else []
        if moved_saved:
            done.insert(0, "the data's new place saved")
        written = (f"{' and '.join(done)}, nothing else written" if done
                   else "nothing written")
        click.echo(f"nothing to train: {run} had already reached {reached} after {steps} "
                   f"({best_text}); {written} (to train on, resume it with {more}; "
                   f"next: `recurrent eval {word}`, `recurrent predict {word} ...`)")
        return
    how = "stopped early" if summary["status"] == "early-stopped" else "done"
    if summary.get("limit"):  # why the run has fewer steps than --steps asked for
        steps += f" ({summary['limit']})"
    click.echo(f"{how} after {steps}: {best_text}, clipped "
               f"{share_text(summary['clipped_fraction'])} of steps; run in {run} "
               f"(next: `recurrent eval {word}`, `recurrent predict {word} ...`)")
    if summary.get("stopped_before"):  # a resume that trained nothing, and why
        click.echo("the run had stopped early (--patience): resume it with a larger "
                   "--patience, or --patience 0, to train on")


class TrainGroup(click.Group):
    """`recurrent train TASK`: one subcommand per registered task, built on demand."""

    def list_commands(self, ctx):
        return sorted(plugins.tasks())

    def get_command(self, ctx, name):
        try:
            return _train_command(plugins.get_task(name))
        except UserError:
            return None

    def parse_args(self, ctx, args):
        args = _task_first(args)
        try:
            return super().parse_args(ctx, list(args))  # click's parser consumes its list
        except click.NoSuchOption as e:
            # a task's option given before the task's name (`train --ranks 2 char-lm`):
            # say where it goes. A task's name right after an option is more likely that
            # option's value (`--out forecast char-lm`) than the task, unless no other is
            # named.
            named = [i for i, arg in enumerate(args) if arg in plugins.tasks()]
            after_value = [i for i in named if i == 0 or not _takes_value(args[i - 1])]
            task = args[(after_value or named)[0]] if named else None
            if task is not None:
                e.possibilities = None
                e.message = (f"{e.message.rstrip('.')}: a task's options go after its "
                             f"name (recurrent train {task} {e.option_name} ...)")
            raise

    def format_commands(self, ctx, formatter):
        """The subcommands listed under what they are, the registered tasks (click's own
        listing heads them "Commands")."""
        tasks = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        tasks = [(name, task) for name, task in tasks if task is not None]
        if tasks:
            limit = formatter.width - 6 - max(len(name) for name, _ in tasks)
            with formatter.section("Tasks"):
                formatter.write_dl([(name, task.get_short_help_str(limit))
                                    for name, task in tasks])

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            plugins.get_task(args[0])  # raises the UserError listing the known tasks
        return super().resolve_command(ctx, args)


def _takes_value(arg) -> bool:
    """Whether ``arg`` may be an option that takes the word after it as its value: an
    option (``-x``, ``--name``) without its value attached by "="."""
    return str(arg).startswith("-") and "=" not in str(arg)


def _task_first(args):
    """`train --resume RUN [OPTIONS]` (no task name) as `train TASK --resume RUN [OPTIONS]`,
    the task read from RUN, so the options that may change on resume work in both forms."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--resume" and i + 1 < len(args):
            run, rest = args[i + 1], args[:i] + args[i + 2:]
        elif str(arg).startswith("--resume="):
            run, rest = arg[len("--resume="):], args[:i] + args[i + 1:]
        else:
            continue
        # a task is named: click parses as usual (RUN itself may be a directory named
        # like a task, e.g. `--out forecast`, and names none)
        if any(a in plugins.tasks() for a in rest):
            return args
        return [_task_of_run(run), "--resume", run, *rest]
    return args


def _task_of_run(run):
    """The task name saved in the run directory ``run``. In a data-parallel job the run
    directory is rank 0's (the other ranks may be on machines without it): rank 0 reads
    it and tells the others, and a UserError there reaches every rank (AllRanksError),
    so no rank is left waiting for one that stopped before MPI started."""
    from .checkpoint import RunDir
    from .distributed import world as current_world
    world = current_world()
    if world.size == 1:
        return RunDir.open(run).info()["task"]
    answer = None
    if world.is_root:
        try:
            answer = (RunDir.open(run).info()["task"], None)
        except UserError as e:
            answer = (None, str(e))
    task, message = world.bcast(answer)
    if message is not None:
        raise AllRanksError(message)
    return task


@cli.group("train", cls=TrainGroup, invoke_without_command=True,
           short_help="Train a model for TASK.", subcommand_metavar="TASK [OPTIONS]...",
           context_settings={"max_content_width": 100})
@click.option("--resume", default=None, metavar="RUN",
              help="Continue the run in RUN (its task and options are saved there; "
                   "with --data NEW when its data file has moved).")
@click.pass_context
def train_group(ctx, resume):
    """Train a model for TASK (`recurrent train TASK --help` shows its options)."""
    if ctx.invoked_subcommand is not None:
        if resume:
            raise UserError(f"put --resume after the task name: `recurrent train "
                            f"{ctx.invoked_subcommand} --resume "
                            f"{out_paths.shell_word(resume)} ...`")
        return
    click.echo(ctx.get_help())  # `train --resume RUN ...` went to RUN's task (_task_first)


# ---- eval -----------------------------------------------------------------------------

def _open_run(path):
    from .checkpoint import RunDir
    run = RunDir.open(path)
    info = run.info()
    return run, info, plugins.get_task(info["task"])


def _eval_header(task, run, split, note, checkpoint, evaluated, precision, why=None,
                 members=None, size=1, left_out=()):
    """eval's first line: what was evaluated (``evaluated``: the checkpoint read for the
    one asked for; ``why`` last.npz in place of best.npz: runs.best_missing_reason; for
    an ensemble of ``size`` members, ``members``: the member directories that read it,
    the others reading their best.npz; ``left_out``: the member directories left out
    because their training diverged), with which parameters and precision."""
    from .runs import NOT_EVALUATED
    if evaluated != checkpoint:
        yet = " yet" if why == NOT_EVALUATED else ""
        reason = "" if why == NOT_EVALUATED else f", {why}"
        if members:  # an ensemble: its other members read their best.npz
            has = "has" if len(members) == 1 else "have"
            note += (f" ({', '.join(members)} {has} no best checkpoint{yet}{reason}: "
                     f"{'its' if len(members) == 1 else 'their'} latest parameters, last.npz)")
        else:
            note += f" (no best checkpoint{yet}{reason}: the latest parameters, last.npz)"
    whole = f" (an ensemble of {size} members)" if size > 1 else ""
    if left_out:
        whole = (f" (an ensemble of {size} members; "
                 f"{ensemble.left_out_text(list(left_out), size - len(left_out))})")
    return (f"{task.name} run {run}{whole}, split {split}{note}"
            f"{', the last checkpoint (--checkpoint last)' if checkpoint == 'last' else ''}"
            f"{f', {precision} inference' if precision != 'fp32' else ''}")


@cli.command("eval", short_help="Evaluate a trained RUN beside the task's baselines.")
@click.argument("run")
@click.option("--data", default=None, metavar="FILE",
              help="Evaluate on this file instead (read with the run's vocabulary/scaler); "
                   "with --split, the run's own data from its new place when it has moved.")
@click.option("--split", type=click.Choice(list(SPLITS)), default=None,
              help="Which split of the run's data [default: test, or valid for a task "
                   "whose data has no test split].")
@checkpoint_option
@click.option("--threads", type=THREAD_COUNT, default=None,
              help="Kernel threads (default: recurrent's choice).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help=PRECISION_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print metrics and baselines as JSON.")
@click.option("--backtest", type=int, default=None, metavar="N",
              help="Rolling-origin evaluation: N forecast origins (at least 2) spread over the "
                   "split, the mean and spread of each metric over them (tasks that offer "
                   "it, such as forecast).")
def eval_command(run, data, split, checkpoint, threads, precision, as_json, backtest):
    """Evaluate a trained RUN on a split (or --data FILE) beside the task's baselines."""
    with plugins.command_output() as echo:  # the task's own prints go to stderr
        _evaluate(echo, run, data, split, checkpoint, threads, precision, as_json, backtest)


def _evaluate(echo, run, data, split, checkpoint, threads, precision, as_json, backtest):
    """eval_command, printing its report or JSON with ``echo``."""
    from .runs import best_missing_reason, load_model, without_best
    data = datafile.data_path("--data", data)
    run_dir, info, task = _open_run(run)
    if backtest is not None:
        if not hasattr(task, "backtest"):
            raise UserError(f"task {task.name!r} has no --backtest (rolling-origin "
                            f"evaluation)")
        if backtest < 2:
            raise UserError(f"--backtest {backtest}: need at least 2 forecast origins for "
                            f"a spread")
    model, info = load_model(run_dir, checkpoint, threads, precision)
    precision = runs_as(precision)  # what is reported: bf16 runs as fp32 without bf16
    config = dict(info["config"])
    # the parameters evaluated: those load_model read (last.npz for a run, or a member,
    # that had no best one when it looked)
    why = best_missing_reason(model, config) if checkpoint == "best" else None
    evaluated = "last" if why else checkpoint
    size = ensemble.size(config)
    members = ([os.path.basename(part.path) for part in without_best(model)]
               if why and size > 1 else None)
    members_left_out = [os.path.basename(part.path) for part in model.left_out]
    if getattr(model, "diverged_note", None):  # a member the ensemble leaves out, alone
        from .progress import warn_once
        warn_once(model.diverged_note)
    state = info["task_state"]
    given = data  # --json's "data": the path given, the new place of moved data too
    moved = moved_data.moved_files(task, state, {"data": data}) if split else {}
    if moved:  # the run's data, gone from where it was read: read from its new place
        from .config import option_flags
        state = moved_data.moved_state(task, state, moved, option_flags(task))
        data = None
    if data:
        if split is not None:
            raise UserError(f"--split {split} chooses a split of the run's own data: it "
                            f"does not go with --data (a --data file is scored whole; "
                            f"when the run's data has moved, --data gives its new place)")
        config = KeyReads(config, eval_data=data)  # its reads tell whether the task
        split = "test"                               # took the file (_check_read_data)
    else:
        split = _eval_split(task, split)
        if not moved:
            moved_data.check_present(task, state, run, f"--split {split} --data NEW "
                                     f"(--data FILE alone scores a file whole)")
    if backtest is not None:
        result = task.backtest(state, split, config, model.runner(), backtest)
        _check_read_data(task, config, data)
        if as_json:
            _warn_report_notes(task, state, result.get("forecasters", {}))
            echo(json_text({"run": run, "task": task.name, "split": split,
                            "data": given, "checkpoint": evaluated,
                            "precision": precision, "backtest": result}, indent=2))
            return
        echo(_eval_header(task, run, split, f" ({data})" if data else "", checkpoint,
                          evaluated, precision, why, members, size, members_left_out))
        if hasattr(task, "format_backtest"):
            echo("\n".join(task.format_backtest(state, split, result)))
        else:
            echo(json_text(result, indent=2))
        return
    metrics = task.evaluate(state, split, config, model.runner())
    problem = report.metrics_problem(metrics)
    if problem:
        raise UserError(f"task {task.name!r}: evaluate() {problem}")
    baselines, paired, left_out = _compared(task, state, split, config, model, data)
    _check_read_data(task, config, data)
    chose = info.get(candidates.CHOSE)
    if as_json:
        _warn_report_notes(task, state, baselines)
        if left_out:
            from .progress import warn_once
            warn_once(f"{LEFT_OUT}: {left_out}")
        echo(json_text({"run": run, "task": task.name, "split": split, "data": given,
                        "checkpoint": evaluated, "precision": precision,
                        "metrics": metrics, "baselines": baselines,
                        **({"baselines_left_out": left_out} if left_out else {}),
                        **({"members_left_out": members_left_out}
                           if members_left_out else {}),
                        **({"paired": paired} if paired else {}),
                        **({"chose": chose} if chose else {})}, indent=2))
        return
    note = f" ({data})" if data else ""
    if split == "valid" and evaluated == checkpoint == "best":
        note = " (the split that chose this best checkpoint)"
    echo(_eval_header(task, run, split, note, checkpoint, evaluated, precision, why,
                      members, size, members_left_out))
    if left_out:
        echo(f"{LEFT_OUT}: {left_out}")
    # A task may lay out its own report (labelled per-class rows, matrices, ...); the JSON
    # above is the same either way.
    if hasattr(task, "format_report"):
        lines = task.format_report(state, metrics, baselines)
    else:
        lines = report.generic_report(metrics, baselines)
    tests = report.paired_line(paired)
    echo("\n".join(lines + ["", *tests] if tests else lines))
    if chose:
        echo(candidates.chosen_text(info))


def _compared(task, state, split, config, model, data):
    """(baselines, paired tests, None) of eval on ``split``. Under --data FILE, when the
    run's own data cannot be read (TrainingDataUnavailable: gone, changed, as on another
    machine), the model is scored alone: ({}, {}, why), since the baselines are fitted
    on that data's training split."""
    try:
        baselines = task.baselines(state, split, config) if hasattr(task, "baselines") else {}
        problem = report.baselines_problem(baselines)
        if problem:
            raise UserError(f"task {task.name!r}: baselines() {problem}")
        # Paired tests on the test split only: the validation split chose the checkpoint
        # (and a forecast's blend), and the training rows fitted the baselines.
        paired = (task.paired(state, split, config, model.runner())
                  if hasattr(task, "paired") and split == "test" else {})
    except TrainingDataUnavailable as e:
        if not data:
            raise
        return {}, {}, str(e)
    return baselines, paired, None


# eval's line before the reason the baselines are left out (_compared)
LEFT_OUT = "baselines left out (they are fitted on the run's training split)"


def _warn_report_notes(task, state, baselines):
    """`eval --json`: the task's notes on what the evaluation lacks (Task.report_notes),
    which its text report prints among its lines, on stderr: stdout is the JSON alone."""
    if hasattr(task, "report_notes"):
        from .progress import warn_once
        for note in task.report_notes(state, baselines):
            warn_once(note)


def _check_read_data(task, config, data):
    """UserError when `eval --data FILE` ran a task that never read config["eval_data"]:
    its figures are its own test split's, which must not be printed as FILE's."""
    if data and "eval_data" not in config.read:
        raise UserError(f"task {task.name!r} does not read --data files (config"
                        f"['eval_data']): its figures would be its test split's, not "
                        f"{data}'s; evaluate without --data")


def _eval_split(task, split):
    """The split `eval` scores without --data: the one asked for, else "test", else
    "valid" for a task whose data has no test split (Task.splits); UserError for a split
    the task's data does not have."""
    splits = tuple(task.splits) if hasattr(task, "splits") else SPLITS
    if split is None:
        return "test" if "test" in splits else "valid"
    if split not in splits:
        raise UserError(f"task {task.name!r} has no {split} split (its data has "
                        f"{', '.join(splits)}): choose one of those, or give --data FILE")
    return split


# ---- predict ---------------------------------------------------------------------------

class _PredictCommand(click.Command):
    """Keeps where the command line's "--" was: click's parser consumes it, and the
    task's own options are parsed again from what follows RUN (predict_command)."""

    def parse_args(self, ctx, args):
        args = list(args)
        ctx.meta["predict_after_dashes"] = (len(args) - args.index("--") - 1
                                            if "--" in args else None)
        return super().parse_args(ctx, args)


@cli.command("predict", cls=_PredictCommand, add_help_option=False,
             short_help="Run a trained RUN: sample text, classify, forecast.",
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("run", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(*predict_api.HELP_FLAGS, "show_help", is_flag=True,
              help="Show the task's predict options.")
@click.pass_context
def predict_command(ctx, run, args, show_help):
    """Run a trained RUN as its task defines: sample text, classify, forecast.

    The options after RUN are the task's: `recurrent predict RUN --help` lists them.
    Inputs that begin with "-" go after "--": `recurrent predict RUN -- "-ing"`.
    """
    if run is None:
        if show_help:
            click.echo(ctx.get_help())
            return
        raise click.UsageError("missing argument RUN (a run directory made by `recurrent train`)")
    from .runs import load_model, warn_best_missing
    run_dir, info, task = _open_run(run)
    if not hasattr(task, "predict"):  # optional (recurrent.protocols.Task)
        raise UserError(f"task {task.name!r} has no predict: use `recurrent eval "
                        f"{out_paths.shell_word(run)}`")
    extra = list(args)
    after = ctx.meta.get("predict_after_dashes")
    if after is not None:  # `predict RUN -- -input`: the inputs after "--" stay inputs
        at = max(0, len(extra) - after)
        extra = extra[:at] + ["--"] + extra[at:]
    # before any "--": after it, --help would be read as an input
    extra = (["--help"] if show_help else []) + extra
    if "--stream" in extra and not hasattr(task, "predict_stream"):
        raise UserError(f"task {task.name!r} has no --stream: give its inputs as options")
    params = (predict_api.predict_params(task, stream="--stream" in extra)
              + predict_api.own_options(stream=hasattr(task, "predict_stream")))
    command = _with_help_formatter(click.Command(
        "predict", params=params, help=f"Predict with the {task.name} run {run}.",
        context_settings={"max_content_width": 100,
                          "help_option_names": list(predict_api.HELP_FLAGS)}))
    try:
        sub = command.make_context(f"recurrent predict {run}", extra)
    except click.NoSuchOption as e:
        if e.possibilities or not any(isinstance(p, click.Argument) for p in params):
            raise  # a misspelt option ("Did you mean" says which), or a task without inputs
        # an input that begins with "-" (a text such as "-1 stars") reads as an option
        raise click.UsageError(f"{e.format_message()} An input that begins with \"-\" "
                               f"goes after \"--\": recurrent predict "
                               f"{out_paths.shell_word(run)} -- "
                               f"INPUT...") from None
    options = predict_api.prepared(dict(sub.params), run_dir.path,
                                   bool(sub.params.get("stream")))
    stream = options.pop("stream", False)
    out = sys.stdout  # the real one: within command_output, sys.stdout is stderr
    # the task's own prints go to stderr; its advice names the run as typed
    with plugins.command_output() as echo, predict_api.predicting(run):
        model, info = load_model(run_dir, "best", precision=options.pop("precision"))
        state, config = info["task_state"], dict(info["config"])
        warn_best_missing(model, config)
        if stream:
            given = {key for key in options
                     if sub.get_parameter_source(key) == ParameterSource.COMMANDLINE}
            options = KeyReads(options)
            answer = task.predict_stream(state, config, model.runner(), options)
            predict_api.check_stream_options(given - options.read, params)
            unreadable = std_streams.unusable(sys.stdin, writing=False)
            if unreadable and sys.stdin is not None:  # closed: no lines, as empty input
                raise UserError(f"--stream: standard input is {unreadable}; pipe or "
                                f"redirect the lines into it")
            return _stream_lines(answer, sys.stdin, std_streams.waiting_echo(out, echo), task)
        lines = task.predict(state, config, model.runner(), options)
        for line in predict_api.checked_lines(task, lines):
            echo(line)


def _stream_lines(answer, lines, echo=click.echo, task=None) -> int:
    """`predict --stream`: answer(line) for each line of ``lines`` (a text stream such as
    sys.stdin: _text_lines) as it arrives, one JSON line out per line in, printed with
    ``echo`` and flushed (click.echo flushes). A UserError for a line is answered with
    {"error": message} there and one line on stderr, and the stream goes on; so is a line
    that needs more memory than there is (predict_api.within_memory, as
    recurrent.predict_stream refuses such an input). Returns the exit status: 1 when any
    line was refused, else 0. An answer that is not a dict of
    JSON values ends the stream (predict_api.checked_answer: ``task``'s code, not the
    line, is at fault)."""
    from .datafile import check_utf8
    refused = False
    for number, line in enumerate(_text_lines(lines), 1):
        line = line[:-1] if line.endswith("\n") else line
        line = line[:-1] if line.endswith("\r") else line  # a CRLF client's line break
        try:
            check_utf8(line, "the line")  # every task's stream: _text_lines kept bad bytes
            with predict_api.within_memory():  # a line too large for memory: its error
                result = answer(line)
        except UserError as e:
            refused = True
            message = unbroken(e)
            echo(json.dumps({"error": message}))
            aside(f"Error: line {number}: {message}")  # the answer is on stdout
            continue
        echo(json_text(predict_api.checked_answer(task, result, f"line {number}")))
    return 1 if refused else 0


def _text_lines(stream):
    """The lines of a text stream, each as soon as it has arrived. One with a binary
    buffer (sys.stdin) is read as bytes and each line decoded as UTF-8 on its own, bytes
    that are not UTF-8 becoming lone surrogates (surrogateescape), which the tasks refuse
    as a line's error: the text layer's decoder follows the locale, and with a strict
    one (any UTF-8 locale but C.UTF-8) such a byte would end the whole stream, answers
    to the lines read with it included. None (Python's sys.stdin when the process was
    started with its standard input closed) has no lines, as an empty input. A UTF-8
    byte-order mark opening the stream (a file saved by an editor that writes one) is
    dropped, as datafile.decode drops a data file's: it marks the encoding, it is not
    part of the first line. A non-blocking descriptor's reads wait for the lines
    (std_streams.byte_lines)."""
    if stream is None:
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        lines = iter(stream.readline, "")
    else:
        lines = (raw.decode("utf-8", "surrogateescape")
                 for raw in std_streams.byte_lines(buffer))
    for number, line in enumerate(lines):
        yield line[1:] if number == 0 and line.startswith("\ufeff") else line


# ---- plugins, info and plugin commands ------------------------------------------------

def _add_plugin_listing_commands():
    from .cli_export import export_command, import_command
    from .cli_plugins import info_command, plugins_group, tune_command
    cli.add_command(plugins_group)
    cli.add_command(info_command)
    cli.add_command(tune_command)
    cli.add_command(export_command)
    cli.add_command(import_command)


_add_plugin_listing_commands()
plugins.register_commands(cli=cli)


def main(argv=None):
    """Console-script entry point (`recurrent`)."""
    cli.main(args=argv, prog_name="recurrent")
