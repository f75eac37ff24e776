"""A trained run's predictions in a program: recurrent.predict (what `recurrent predict RUN
--json` prints, as Python objects) and recurrent.predict_stream (one input at a time, as
`recurrent predict RUN --stream` answers a line), and the handling of the predict options
that the command shares."""
from __future__ import annotations

import contextlib
import contextvars
import copy
import json
import os
from typing import Callable, Iterable

import click

from . import datafile, out_paths, plugins
from .checkpoint import CONFIG_FILE, RunDir, imported, json_text, not_json
from .checks import beyond_any_array, memory_problem, one_line
from .datafile import check_utf8
from .errors import UserError
from .key_reads import KeyReads
from .quant import PRECISION_HELP, PRECISIONS


# the run a prediction reads, as its caller named it (`recurrent predict RUN`, the run
# given to predict() or predict_stream()), for a task's advice to name it (run_word)
_RUN = contextvars.ContextVar("predicted_run", default=None)


@contextlib.contextmanager
def predicting(run):
    """Within it, run_word() names the run ``run`` (a path as its caller gave it)."""
    token = _RUN.set(os.fspath(run))
    try:
        yield
    finally:
        _RUN.reset(token)


def run_word() -> str:
    """The run being predicted (predicting) as a command a user may copy names it
    (out_paths.shell_word), for a task's advice such as `recurrent train --resume RUN
    ...`; "RUN" outside a prediction (a task's own code run by a program)."""
    run = _RUN.get()
    return "RUN" if run is None else out_paths.shell_word(run)


def run_imported() -> bool:
    """Whether the run being predicted (predicting) was made by `recurrent import`: its
    weights only, so a task's advice must not ask to resume it; False outside a
    prediction."""
    run = _RUN.get()
    return run is not None and imported(os.path.join(run, CONFIG_FILE))


STREAM_HELP = ("Read inputs from stdin as they arrive, one per line, and answer each with "
               "one JSON line (flushed). A line the task cannot read gets "
               '{"error": ...} and one line on stderr; the stream goes on and the exit '
               "status is 1 at the end. Options the stream does not use are refused.")

# the flags that show `recurrent predict`'s help page, and a run's task's (cli.py's
# predict_command)
HELP_FLAGS = ("-h", "--help")


def own_options(stream: bool = True) -> list:
    """The click options `recurrent predict RUN` has beside the task's predict options
    (cli.py's predict_command adds them after those): --stream (``stream``: for a task
    with predict_stream) and --precision."""
    return ([click.Option(["--stream"], is_flag=True, help=STREAM_HELP)] if stream else []) + [
        click.Option(["--precision"], type=click.Choice(PRECISIONS), default="fp32",
                     show_default=True, help=PRECISION_HELP)]


# the flags of `recurrent predict RUN` itself, which no task's predict option may take:
# those of own_options and HELP_FLAGS
OWN_FLAGS = (*(flag for option in own_options() for flag in (*option.opts,
                                                              *option.secondary_opts)),
             *HELP_FLAGS)


def predict_params(task, stream: bool = False) -> list:
    """The task's predict options (click Options; none for a task without them). For a
    stream, whose inputs are its lines, none is required: predict()'s required inputs (a
    required argument, say) are left out, and refused when given and predict_stream does
    not read them (check_stream_options). UserError naming the task when
    predict_options() gives no list of click parameters, or one taking a flag of
    OWN_FLAGS (click would warn and parse one of the two)."""
    params = (task.predict_options() if hasattr(task, "predict_options") else None) or []
    if not isinstance(params, (list, tuple)):
        raise UserError(f"task {task.name!r}: predict_options() returned "
                        f"{type(params).__name__}, expected a list of click options")
    for param in params:
        if not isinstance(param, click.Parameter):
            raise UserError(f"task {task.name!r}: predict_options() returned "
                            f"{one_line(repr(param))}, expected a list of click options")
        taken = [flag for flag in (*param.opts, *param.secondary_opts) if flag in OWN_FLAGS]
        if taken:
            raise UserError(f"task {task.name!r}: predict_options() has {taken[0]}, an "
                            f"option of `recurrent predict` itself; give the task's option "
                            f"another name")
    params = list(params)
    if stream:
        params = [_optional(param) for param in params]
    return params


def _optional(param):
    """``param``, or a copy of it that may be left out when it is required."""
    if not param.required:
        return param
    param = copy.copy(param)
    param.required = False
    return param


def checked_answer(task, answer, where: str) -> dict:
    """``answer``, what the task's predict_stream gave for the input ``where`` names, when
    it is a dict of JSON values; UserError naming the task otherwise (its code, not the
    input, is at fault, and a client would take another kind of line, or an object's
    text, for an answer)."""
    name = f"task {task.name!r}" if task is not None else "the task"
    if not isinstance(answer, dict):
        raise UserError(f"{name}: predict_stream()'s answer to {where} is "
                        f"{type(answer).__name__}, not a dict")
    problem = not_json(answer, "answer")
    if problem:
        raise UserError(f"{name}: predict_stream()'s answer to {where}: {problem} is not a "
                        f"JSON value")
    return answer


def prepared(options: dict, run_path: str, stream: bool) -> dict:
    """The built-in tasks' path options made usable, as `recurrent predict` reads them:
    --plot's path named and, without a stream (which refuses --plot itself), checked;
    --data's checked (standard input refused beside a stream, which reads it)."""
    if "plot" in options:
        options["plot"] = out_paths.output_named("--plot", options["plot"], None, "the plot")
    if "data" in options:
        if stream and options["data"] in ("-", datafile.STDIN_PATH):
            raise UserError("--data - and --stream would both read standard input: give "
                            "--data a file")
        options["data"] = datafile.data_path("--data", options["data"])
    if options.get("plot") and not stream:
        out_paths.check_plot(options["plot"], run_path)
    return options


def check_stream_options(unread: set, params) -> None:
    """UserError naming a predict option given to a stream that the task's predict_stream
    never read (recurrent.protocols.Task.predict_stream): it would have no effect on the
    answers."""
    flags = [next((o for o in p.opts if o.startswith("--")), p.opts[0]) for p in params
             if p.name in unread and "--json" not in p.opts]  # stream answers are JSON
    if flags:
        raise UserError(f"{', '.join(flags)} {'does' if len(flags) == 1 else 'do'} not "
                        f"apply to --stream (its answers do not use "
                        f"{'it' if len(flags) == 1 else 'them'}): drop "
                        f"{'it' if len(flags) == 1 else 'them'}")


def checked_lines(task, lines) -> Iterable[str]:
    """The lines a task's predict() gives, each checked to be a str (UserError naming the
    task otherwise)."""
    # a str (returned, not yielded) would print one character per line
    if lines is None or isinstance(lines, (str, bytes, dict)):
        raise UserError(f"task {task.name!r}: predict() returned {type(lines).__name__}, "
                        f"not an iterable of lines (yield each line)")
    for line in lines:
        if not isinstance(line, str):
            raise UserError(f"task {task.name!r}: predict() gave a line that is "
                            f"{type(line).__name__}, not a str")
        yield line


def _options(params, given: dict) -> dict:
    """The predict options' values: each given one (by its key: as_json for --json)
    converted and checked by its click option as the command line's would be, the others
    at their defaults (as are those given as None)."""
    known = {param.name: param for param in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"no predict option {', '.join(map(repr, unknown))} for this run's "
                        f"task (its options: {', '.join(map(repr, known)) or 'none'})")
    ctx = click.Context(click.Command("predict", params=params))
    values = {}
    for name, param in known.items():
        value = given.get(name)
        if value is None:  # not given, or None for "the default", as a Python caller means
            value = param.get_default(ctx)
        else:
            value = _python_value(name, param, value)
        try:
            values[name] = param.process_value(ctx, value)
        except click.UsageError as e:
            raise UserError(f"predict option {name}={value!r}: "
                            f"{one_line(getattr(e, 'message', None) or e.format_message())}"
                            ) from None
    return values


def _python_value(name: str, param, value):
    """``value``, given by a program for the predict option ``param`` (a tuple of its items
    for an option of several values), checked for what the command line cannot give and
    click would take in silence or refuse in puzzling words: one str for the inputs (a
    list of strs), an input or a text option's value that is not a str (prime=5), a
    number of the wrong kind (2.7 for an integer, read as 2; True for a number). A str is
    left to click, as the command line's text is."""
    from .config import option_type_problem
    many = param.nargs != 1 or param.multiple
    texts = isinstance(param.type, click.types.StringParamType)  # a text option
    if many and isinstance(value, (str, bytes)):
        raise UserError(f"predict option {name}={value!r}: a list of strs, not one str "
                        f"({name}=[{value!r}])")
    try:
        items = tuple(value) if many else (value,)
    except TypeError:
        raise UserError(f"predict option {name}={value!r}: a list of "
                        f"{'strs' if texts else 'values'}, not {type(value).__name__}"
                        ) from None
    for item in items:
        if isinstance(item, str):
            continue
        kind = "a str" if texts else option_type_problem(param, item)
        if kind:
            raise UserError(f"predict option {name}={value!r}: {item!r} is not {kind}")
    return items if many else value


@contextlib.contextmanager
def within_memory():
    """A request larger than memory (MemoryError, or numpy's refusal of a size beyond any
    array) as the UserError the command's one line says."""
    try:
        yield
    except (MemoryError, ValueError) as e:
        if isinstance(e, ValueError) and not beyond_any_array(e):
            raise
        raise UserError(memory_problem(e)) from None


_NOTED: set[str] = set()  # the notes predict and predict_stream printed in this process


def _run_task(run):
    """(RunDir, task) of the run directory ``run``."""
    if not isinstance(run, (str, os.PathLike)):
        raise UserError(f"run: expected a run directory's path, got {type(run).__name__}")
    run_dir = RunDir.open(os.fspath(run))
    return run_dir, plugins.get_task(run_dir.info()["task"])


def _opened(run_dir, task, precision: str, options: dict, stream: bool):
    """(params, option values, model, info) for a program's predictions of ``run_dir``:
    what `recurrent predict` checks and loads."""
    from .quant import PRECISIONS
    from .runs import load_model, warn_best_missing
    if precision not in PRECISIONS:
        raise UserError(f"precision: expected one of {', '.join(PRECISIONS)}, got "
                        f"{precision!r}")
    params = predict_params(task, stream)
    values = prepared(_options(params, options), run_dir.path, stream)
    model, info = load_model(run_dir, "best", precision=precision)
    warn_best_missing(model, info["config"], told=_NOTED)  # told once per process
    return params, values, model, info


def predict(run: str | os.PathLike, *, precision: str = "fp32", **options) -> list:
    """What `recurrent predict RUN --json` prints for the trained run ``run`` (a run
    directory, its best checkpoint), each printed JSON value as a Python object, in
    order: a dict per sentiment text or seq2seq input, the forecast's dict. ``options``:
    the task's predict options by key (``texts=[...]``, ``data="file.csv"``,
    ``steps=12``, ``beam=5``), converted and checked as the command line checks them.
    UserError for a task whose predict has no --json (char-lm's prints sampled text:
    predict_stream gives its next-character probabilities)."""
    run_dir, task = _run_task(run)
    json_key = next((p.name for p in predict_params(task) if "--json" in p.opts), None)
    if not hasattr(task, "predict") or json_key is None:
        raise UserError(f"task {task.name!r}: its predict has no --json: use "
                        f"predict_stream, or the command")
    if json_key in options:
        raise UserError(f"{json_key}: predict always gives the --json output")
    _, values, model, info = _opened(run_dir, task, precision, {**options, json_key: True},
                                     stream=False)
    with within_memory(), predicting(run):
        lines = task.predict(info["task_state"], dict(info["config"]), model.runner(), values)
        text = "\n".join(checked_lines(task, lines))
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError as e:
            raise UserError(f"task {task.name!r}: its --json output is not JSON: "
                            f"{one_line(e)}") from None
        out.append(value)
    return out


def predict_stream(run: str | os.PathLike, *, precision: str = "fp32",
                   **options) -> Callable[[str], dict]:
    """A function answering one input of the trained run ``run`` (a run directory, its
    best checkpoint) as `recurrent predict RUN --stream` answers a line of stdin: a str
    without a line break in (no "\\n", nor the "\\r" at its end that the command reads
    as a CRLF line break; a "\\r" inside is a character, as in the command), the dict
    that the command prints as a JSON line out (a sentiment text's label and
    probabilities, a seq2seq input's best output, the next characters after a char-lm
    line, the forecast after a forecast row). Stateful tasks (char-lm, forecast) carry
    each input into the next answer; an input the task cannot read raises UserError and
    changes nothing. ``options``: the task's predict options
    by key (``top_k=3``, ``beam=5``, ``steps=12``), checked as the command line checks
    them; one the stream does not use is refused. One caller at a time per function."""
    run_dir, task = _run_task(run)
    if not hasattr(task, "predict_stream"):
        raise UserError(f"task {task.name!r} has no --stream: it cannot answer inputs one "
                        f"at a time")
    params, values, model, info = _opened(run_dir, task, precision, options, stream=True)
    reads = KeyReads(values)
    with predicting(run):
        answer = task.predict_stream(info["task_state"], dict(info["config"]),
                                     model.runner(), reads)
    given = {key for key, value in options.items() if value is not None}
    check_stream_options(given - reads.read, params)

    def answered(line: str) -> dict:
        if not isinstance(line, str):
            raise UserError(f"an input is a str, got {type(line).__name__}")
        # a line of the command's stdin: "\n" ends it, and a "\r" before that is the
        # end of a CRLF line break (_stream_lines), while a "\r" inside is a character
        if "\n" in line or line.endswith("\r"):
            raise UserError("an input holds a line break: give one line per call")
        check_utf8(line, "the line")
        # what the command prints, read back: NaN as None, numpy numbers as Python's
        with within_memory():
            result = answer(line)
        return json.loads(json_text(checked_answer(task, result, "the input")))

    return answered
